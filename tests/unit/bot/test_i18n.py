"""Catalogues compile at start when the .mo is missing or stale, even from a read-only checkout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from bot import i18n as i18n_module
from bot.i18n import LOCALES_DIR, _, ensure_compiled, make_i18n, ngettext


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "locales"
    shutil.copytree(LOCALES_DIR, dst, ignore=shutil.ignore_patterns("*.mo"))
    return dst


def test_compiles_missing_and_stale_catalogues(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    assert ensure_compiled(path) == path
    mo = path / "ko" / "LC_MESSAGES" / "messages.mo"
    assert mo.exists()
    first = mo.stat().st_mtime_ns
    assert ensure_compiled(path) == path and mo.stat().st_mtime_ns == first  # up to date: untouched
    po = mo.with_suffix(".po")
    os.utime(po, ns=(first + 10**9, first + 10**9))
    ensure_compiled(path)
    assert mo.stat().st_mtime_ns > first


def test_read_only_checkout_compiles_into_a_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _copy(tmp_path)
    real_compile = i18n_module._compile

    def compile_or_refuse(po: Path, mo: Path) -> None:
        if path in mo.parents:  # the checkout is read-only (chmod does not stop root, so refuse here)
            raise PermissionError(13, "Permission denied", str(mo))
        real_compile(po, mo)

    monkeypatch.setattr(i18n_module, "_compile", compile_or_refuse)
    used = ensure_compiled(path)
    assert used != path
    assert (used / "ko" / "LC_MESSAGES" / "messages.mo").exists()
    assert not (path / "ko" / "LC_MESSAGES" / "messages.mo").exists()


def test_translations_and_fallbacks() -> None:
    i18n = make_i18n("ko")
    assert set(i18n.available_locales) >= {"ko", "en"}
    assert _("🔄 Refresh") == "🔄 Refresh"  # no context: the English source
    with i18n.context():
        assert _("🔄 Refresh") == "🔄 새로고침"
        with i18n.use_locale("en"):
            assert _("🔄 Refresh") == "🔄 Refresh"
            assert ngettext(
                "⚠️ {n} alert was dropped while Telegram could not be reached.",
                "⚠️ {n} alerts were dropped while Telegram could not be reached.",
                2,
            ).startswith("⚠️ {n} alerts")
    with pytest.raises(ValueError, match="LOCALE must be one of"):
        make_i18n("fr")
