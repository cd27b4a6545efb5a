"""Every msgid in the code is translated (non-empty, not fuzzy) in both catalogues, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from bot.i18n import DOMAIN, LOCALES_DIR, SUPPORTED_LOCALES
from tests.fakes.telegram.html_check import HtmlParseError, parse_html

REPO = Path(__file__).resolve().parents[3]
KEYWORDS = {
    "_": None,
    "gettext": None,
    "N_": None,
    "lazy_gettext": None,
    "__": None,
    "ngettext": (1, 2),
    "lazy_ngettext": (1, 2),
}
_PLACEHOLDER = re.compile(r"\{(\w*)\}")
_TAG = re.compile(r"</?[a-z-]+[^>]*>")


def code_msgids() -> set[str | tuple[str, ...]]:
    found: set[str | tuple[str, ...]] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        REPO / "bot", method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        found.add(message)
    return found


def load(locale: str) -> Catalog:
    with (LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as fh:
        return read_po(fh, locale=locale)


def test_the_code_has_messages() -> None:
    ids = code_msgids()
    assert len(ids) > 150
    assert "🔄 Refresh" in ids  # keyboard labels are extracted too


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_msgid_is_translated(locale: str) -> None:
    catalog = load(locale)
    problems = []
    for msgid in sorted(code_msgids(), key=str):
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        entry = catalog.get(key)
        if entry is None:
            problems.append(f"missing: {key!r}")
            continue
        if entry.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if not all(s and s.strip() for s in strings):
            problems.append(f"untranslated: {key!r}")
        ids = msgid if isinstance(msgid, tuple) else (msgid,)
        wanted = {p for i in ids for p in _PLACEHOLDER.findall(i)}
        for s in strings:
            if set(_PLACEHOLDER.findall(s or "")) != wanted:
                problems.append(f"placeholders differ: {key!r} -> {s!r}")
            if sorted(_TAG.findall(s or "")) != sorted(_TAG.findall(ids[0])):
                problems.append(f"markup differs: {key!r} -> {s!r}")
            try:
                parse_html(_PLACEHOLDER.sub("x", s or ""))  # Telegram HTML mode: no bare < > &
            except HtmlParseError as exc:
                problems.append(f"not valid Telegram HTML ({exc}): {s!r}")
    assert not problems, "\n".join(problems)


def test_template_lists_every_msgid() -> None:
    with (LOCALES_DIR / "messages.pot").open("rb") as fh:
        template = read_po(fh)
    in_template = {m.id[0] if isinstance(m.id, tuple) else m.id for m in template if m.id}
    in_code = {m[0] if isinstance(m, tuple) else m for m in code_msgids()}
    assert in_code <= in_template, sorted(in_code - in_template)


def test_no_stale_entries_left_behind() -> None:
    in_code = {m[0] if isinstance(m, tuple) else m for m in code_msgids()}
    for locale in SUPPORTED_LOCALES:
        stale = {m.id[0] if isinstance(m.id, tuple) else m.id for m in load(locale) if m.id} - in_code
        assert not stale, f"{locale}: not used by the code any more: {sorted(stale)}"
