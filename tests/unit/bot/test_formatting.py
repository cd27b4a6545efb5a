"""Numbers, escaping and the 4,096-character split."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.formatting import (
    esc,
    fmt_bytes,
    fmt_duration,
    fmt_pct,
    fmt_price,
    fmt_qty,
    fmt_usdt,
    split_message,
)
from tests.fakes.telegram.html_check import parse_html


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("64210.50"), "64,210.5"),
        (Decimal("64210.123456"), "64,210.12"),
        (Decimal("2461.7333333333"), "2,461.733"),
        (Decimal("1.23456789"), "1.234568"),
        (Decimal("0.000012345678"), "0.00001234568"),
        (Decimal("0.2"), "0.2"),
        (Decimal("0"), "0"),
        (None, "—"),
        (1.5, "1.5"),
    ],
)
def test_price_keeps_about_seven_significant_digits(value: Decimal | float | None, text: str) -> None:
    assert fmt_price(value) == text


def test_quantities_are_exact_without_float_noise() -> None:
    assert fmt_qty(Decimal("0.0820")) == "0.082"
    assert fmt_qty(Decimal("1200")) == "1,200"
    assert fmt_qty(0.1 + 0.2) == "0.3"


def test_usdt_and_percent() -> None:
    assert fmt_usdt(Decimal("-17.805")) == "-17.81"  # half up, away from zero
    assert fmt_usdt(Decimal("1234.5"), signed=True) == "+1,234.50"
    assert fmt_usdt(Decimal("-0.001"), signed=True) == "0.00"
    assert fmt_pct(Decimal("0.0341"), signed=True) == "+3.41%"
    assert fmt_pct(Decimal("-0.7")) == "-70.00%"
    assert fmt_pct(Decimal("0.2805"), places=1) == "28.1%"
    assert fmt_pct(Decimal("-0.00001")) == "0.00%"


def test_durations_and_sizes() -> None:
    assert fmt_duration(0.42) == "0.4s"
    assert fmt_duration(75) == "1m 15s"
    assert fmt_duration(3 * 3600 + 60) == "3h 1m"
    assert fmt_duration(2 * 86400 + 5 * 3600) == "2d 5h"
    assert fmt_duration(None) == "—"
    assert fmt_bytes(3_250_000) == "3.1 MB"
    assert fmt_bytes(512) == "512 B"


def test_esc_covers_markup_and_quotes() -> None:
    assert esc('<a href="x">&\'') == "&lt;a href=&quot;x&quot;&gt;&amp;&#x27;"


def test_short_text_is_one_chunk() -> None:
    assert split_message("hello\nworld") == ["hello\nworld"]


def test_split_on_lines_keeps_every_line_and_the_limit() -> None:
    lines = [f"<b>line {i}</b> " + "x" * (i % 150) + " &amp; done" for i in range(400)]
    text = "\n".join(lines)
    chunks = split_message(text, limit=4096)
    assert len(chunks) > 1
    assert all(len(c) <= 4096 for c in chunks)
    assert "\n".join(chunks) == text  # nothing lost, nothing reordered
    for c in chunks:
        parse_html(c)  # each chunk is valid HTML on its own


def test_an_overlong_single_line_is_cut_outside_entities() -> None:
    line = "<b>head</b> " + "&amp;" * 3000  # 15,000 characters, no newline
    chunks = split_message(line, limit=4096)
    assert all(len(c) <= 4096 for c in chunks)
    plain = "".join(parse_html(c) for c in chunks)
    assert plain == "head " + "&" * 3000


@given(st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300), max_size=80))
def test_split_property_any_escaped_text(lines: list[str]) -> None:
    text = "\n".join(esc(line) for line in lines)
    chunks = split_message(text, limit=500)
    assert all(len(c) <= 500 for c in chunks)
    for c in chunks:
        parse_html(c)
    # Whitespace-only chunks are dropped (Telegram refuses empty text); nothing else is lost.
    joined_plain = "".join("".join(parse_html(c).split()) for c in chunks)
    assert joined_plain == "".join(parse_html(text).split())
