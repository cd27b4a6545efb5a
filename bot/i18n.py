"""Gettext plumbing: compiled catalogues, the aiogram ``I18n`` and the translation helpers.

English source strings are the message ids. ``.mo`` files are build output
(git-ignored), so :func:`ensure_compiled` compiles ``.po`` -> ``.mo`` with
Babel when a ``.mo`` is missing or older than its ``.po``; tests and
``surgedca run`` then work without ``pybabel compile``.

Translation helpers work inside and outside an aiogram handler: with no
``I18n`` context set (a unit test, the console notifier) they return the
English source text.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

if TYPE_CHECKING:
    from aiogram.utils.i18n import I18n

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parents[1] / "locales"
DOMAIN = "messages"
SUPPORTED_LOCALES: tuple[str, ...] = ("ko", "en")
DEFAULT_LOCALE = "ko"


def _current() -> I18n | None:
    """The ``I18n`` of the handler being run, if any. aiogram is imported only when the bot runs: importing it
    costs ~150 MB of memory, which a headless service (console alerts) does not need to pay."""
    core = sys.modules.get("aiogram.utils.i18n.core")
    return core.I18n.get_current(no_error=True) if core is not None else None


def gettext(message: str) -> str:
    i18n = _current()
    return i18n.gettext(message) if i18n is not None else message


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    i18n = _current()
    if i18n is None:
        return singular if n == 1 else plural
    return i18n.gettext(singular, plural, n)


def N_(message: str) -> str:  # the gettext convention for "mark for extraction only"
    """Marks a string for extraction; it is translated later, where the locale is known."""
    return message


def translate(message: str, locale: str, i18n: I18n) -> str:
    """One string in an explicit locale (setMyCommands, alerts outside any handler)."""
    return i18n.gettext(message, locale=locale)


# ------------------------------------------------------------------ catalogues
def _catalogues(path: Path) -> list[tuple[str, Path]]:
    out = []
    for po in sorted(path.glob(f"*/LC_MESSAGES/{DOMAIN}.po")):
        out.append((po.parents[1].name, po))
    return out


def _compile(po: Path, mo: Path) -> None:
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=po.parents[1].name, domain=DOMAIN)
    mo.parent.mkdir(parents=True, exist_ok=True)
    # Atomic replace: several processes (parallel test runs) may compile at once.
    fd, tmp = tempfile.mkstemp(dir=mo.parent, prefix=f".{mo.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            write_mo(out, catalog, use_fuzzy=False)
        os.replace(tmp, mo)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _stale(po: Path, mo: Path) -> bool:
    return not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime


def ensure_compiled(path: Path = LOCALES_DIR) -> Path:
    """Compile stale catalogues; return the directory holding up-to-date ``.mo`` files.

    That is ``path`` itself, or a per-user cache directory when ``path`` is
    read-only (e.g. a container image built without ``make locales``).
    """
    catalogues = _catalogues(path)
    if not catalogues:
        raise FileNotFoundError(f"no gettext catalogues ({DOMAIN}.po) under {path}")
    try:
        for _locale, po in catalogues:
            mo = po.with_suffix(".mo")
            if _stale(po, mo):
                _compile(po, mo)
                log.info("compiled %s", mo)
        return path
    except OSError as exc:
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
        cache = Path(tempfile.gettempdir()) / f"surgedca-locales-{os.getuid()}-{digest}"
        log.warning("cannot write compiled catalogues beside %s (%s); using %s", path, exc, cache)
        for locale, po in catalogues:
            mo = cache / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
            if _stale(po, mo):
                _compile(po, mo)
        return cache


def make_i18n(default_locale: str = DEFAULT_LOCALE, path: Path = LOCALES_DIR) -> I18n:
    """aiogram's ``I18n`` over our catalogues (compiled first if needed); ``default_locale`` is ``LOCALE``."""
    from aiogram.utils.i18n import I18n

    if default_locale not in SUPPORTED_LOCALES:
        raise ValueError(f"LOCALE must be one of {', '.join(SUPPORTED_LOCALES)}, got {default_locale!r}")
    return I18n(path=ensure_compiled(path), default_locale=default_locale, domain=DOMAIN)


build_i18n = make_i18n  # the name the service's composition code uses
