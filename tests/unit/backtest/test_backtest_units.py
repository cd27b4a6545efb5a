"""Small pure parts of the backtest and the downloader: times, windows, gaps, progress, equity samples."""

from __future__ import annotations

import io
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from trading.backtest.data import BacktestInputError, cut, parse_time, warmup_ms
from trading.backtest.progress import ProgressBar
from trading.backtest.results import EquityCurve
from trading.backtest.runner import Progress
from trading.core.config import SignalParams
from trading.core.series import OHLCV
from trading.download import MINUTE_MS, missing_ranges, parse_symbols
from trading.exchange.replay import file_market

DAY = 86_400_000


def test_times_are_utc_dates_or_iso_times() -> None:
    assert parse_time("2026-01-12", "--from") == 1_768_176_000_000
    assert parse_time("2026-01-12T08:30", "--from") == 1_768_176_000_000 + 8.5 * 3_600_000
    assert parse_time("2026-01-12T08:30Z", "--from") == parse_time("2026-01-12T09:30+01:00", "--from")
    with pytest.raises(BacktestInputError, match="--to 'soon' is not a date"):
        parse_time("soon", "--to")


def test_warm_up_covers_the_longest_history_the_signals_read() -> None:
    assert warmup_ms(SignalParams()) == 7 * DAY  # the 1d M6 condition: 7 daily candles
    assert warmup_ms(replace(SignalParams(), m6_days=10)) == 10 * DAY


def test_cut_keeps_candles_before_the_end_only() -> None:
    def candles(first: int, n: int) -> OHLCV:
        t = np.arange(first, first + n * MINUTE_MS, MINUTE_MS, dtype=np.int64)
        f = np.full(n, 1.0)
        return OHLCV(t, f, f, f, f, f)

    a, b = candles(0, 10), candles(20 * MINUTE_MS, 10)
    data = {"AUSDT": (file_market("AUSDT", a), a), "BUSDT": (file_market("BUSDT", b), b)}
    out = cut(data, 5 * MINUTE_MS)
    assert list(out) == ["AUSDT"] and out["AUSDT"][1].open_time.tolist() == [i * MINUTE_MS for i in range(5)]
    assert cut(data, None).keys() == data.keys()


@pytest.mark.parametrize(
    ("have", "expected"),
    [
        ([], [(0, 9)]),
        (list(range(10)), []),
        ([0, 1, 2, 7, 8, 9], [(3, 6)]),
        ([3, 4], [(0, 2), (5, 9)]),
        ([-5, -4, 12], [(0, 9)]),  # minutes outside the window do not count
        ([0, 2, 4, 6, 8], [(1, 1), (3, 3), (5, 5), (7, 7), (9, 9)]),
    ],
)
def test_missing_ranges(have: list[int], expected: list[tuple[int, int]]) -> None:
    t = np.array(have, dtype=np.int64) * MINUTE_MS
    got = missing_ranges(t, 0, 9 * MINUTE_MS)
    assert got == [(a * MINUTE_MS, b * MINUTE_MS) for a, b in expected]
    assert missing_ranges(t, 5 * MINUTE_MS, 4 * MINUTE_MS) == []


def test_symbols_are_normalised() -> None:
    assert parse_symbols(" btcusdt, ETHUSDT,btcusdt ") == ["BTCUSDT", "ETHUSDT"]
    with pytest.raises(ValueError, match="not a symbol"):
        parse_symbols("BTC/USDT")


def test_progress_bar_on_a_terminal_and_in_a_log() -> None:
    tty = io.StringIO()
    bar = ProgressBar("A", tty, tty=True)
    bar(Progress(50, 100, 3_000_000, 60.0))
    bar.close()
    text = tty.getvalue()
    assert text.startswith("\rA [###############...............]  50.0%  50/100 min  3.00M candles/min")
    assert text.endswith("\n")

    log = io.StringIO()
    bar = ProgressBar("", log, tty=False)
    for done in range(0, 101, 5):
        bar(Progress(done, 100, done * 10, 1.0))
    lines = log.getvalue().splitlines()
    assert len(lines) == 11  # one per 10%, no carriage returns
    assert "\r" not in log.getvalue() and lines[-1].startswith("[" + "#" * 30 + "] 100.0%")


def test_equity_samples_at_the_same_time_replace_each_other() -> None:
    eq = EquityCurve()
    eq.add(1, Decimal(1000), Decimal(1000))
    eq.add(2, Decimal(999), Decimal(1001))
    eq.add(2, Decimal(998), Decimal(1002))
    assert (eq.times_ms, eq.wallet, eq.equity) == ([1, 2], [1000.0, 998.0], [1000.0, 1002.0])
