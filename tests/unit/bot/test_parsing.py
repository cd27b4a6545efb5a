from __future__ import annotations

import pytest

from bot.parsing import parse_days
from trading.core.symbols import normalize_symbol


@pytest.mark.parametrize(
    ("typed", "symbol"),
    [
        ("btc", "BTCUSDT"),
        ("BTC", "BTCUSDT"),
        ("btcusdt", "BTCUSDT"),
        ("BTCUSDT", "BTCUSDT"),
        ("eth/usdt", "ETHUSDT"),
        ("ETH-USDT", "ETHUSDT"),
        (" sol ", "SOLUSDT"),
        ("1000pepe", "1000PEPEUSDT"),
        ("币安人生", "币安人生USDT"),  # Binance lists a few non-Latin tickers
    ],
)
def test_symbols_case_insensitive_with_or_without_usdt(typed: str, symbol: str) -> None:
    assert normalize_symbol(typed) == symbol


@pytest.mark.parametrize("typed", ["", "   ", "<b>", "btc;rm", "$$$", "a" * 31, None, "BTC:USDT"])
def test_not_symbols(typed: str | None) -> None:
    assert normalize_symbol(typed) is None


def test_days() -> None:
    assert parse_days(None) == 7
    assert parse_days("30") == 30
    assert parse_days(" 1 ") == 1
    for bad in ("0", "366", "-3", "1.5", "week"):
        assert parse_days(bad) is None
