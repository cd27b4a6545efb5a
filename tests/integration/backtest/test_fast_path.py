"""The fast path (quiet symbol-minutes skipped) gives the full path's trades, leg for leg, on every data file;
and symbols join the replay when their data begins, leave when it ends."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pytest

from tests.conftest import KLINES_DIR
from trading.backtest import BacktestResult, BacktestSpec, load_candle_dir, run_backtest
from trading.backtest.funding import FundingSchedule
from trading.backtest.quiet import may_pass_prefilter, may_signal
from trading.candle_files import find_candle_files, read_candles
from trading.candles import CandleStore, capacities_for, history_needed
from trading.core import signals
from trading.core.config import SignalParams, StrategyConfig
from trading.exchange.base import Kline

PERIOD_GAP_MS = 30 * 86_400_000  # data beginning this much later than another file's is another period


def periods() -> list[list[str]]:
    """The data files grouped by period (files whose data begin within 30 days of each other)."""
    firsts = sorted((int(read_candles(p).open_time[0]), s) for s, p in find_candle_files(KLINES_DIR).items())
    groups: list[list[str]] = []
    start = None
    for first, symbol in firsts:
        if start is None or first - start > PERIOD_GAP_MS:
            groups.append([])
            start = first
        groups[-1].append(symbol)
    return groups


def run(spec: BacktestSpec) -> BacktestResult:
    return asyncio.run(run_backtest(spec))


@pytest.mark.timeout(900)
def test_fast_and_full_paths_make_the_same_trades_on_every_data_file() -> None:
    groups = periods()
    assert sum(len(g) for g in groups) == len(find_candle_files(KLINES_DIR))
    for symbols in groups:
        data = load_candle_dir(KLINES_DIR, symbols)
        spec = BacktestSpec(data=data.data, cfg=StrategyConfig(), funding=FundingSchedule())  # the flat rate
        fast, full = run(spec), run(replace(spec, fast=False))
        assert fast.problems == [] and full.problems == []
        assert len(full.trades) > 0, symbols  # every period trades: the comparison is worth something
        assert fast.trades == full.trades  # every leg: time, side, qty, price, fee, stage, reason, client id
        assert [s.report.at_ms for s in fast.signals] == [s.report.at_ms for s in full.signals]
        assert fast.balance_end == full.balance_end and fast.funding_total == full.funding_total
        assert fast.equity.equity == full.equity.equity
        assert fast.candles == full.candles


def test_the_quiet_flag_never_hides_a_possible_entry() -> None:
    """Feed a real candle store minute by minute and evaluate as the scanner does: wherever the 1h pre-filter
    passes, and wherever the pre-filter and the 15m filter both pass, the vectorised flags are set (three
    files over ten days, the default parameters and looser ones)."""
    loose = SignalParams(prefilter_high_pct=0.01, prefilter_volume_ratio=1.0, min_15m_conditions=2)
    totals = [0, 0]
    for params in (SignalParams(), loose):
        for symbol in ("XMRUSDT", "ENAUSDT", "SUIUSDT"):
            c = read_candles(KLINES_DIR / f"{symbol}-1m.csv.gz")
            pre_flags, flags = may_pass_prefilter(c, params), may_signal(c, params)
            store = CandleStore(capacities_for(history_needed(params)))
            passed = both = 0
            for i in range(min(len(c), 10 * 1440)):
                k = Kline(int(c.open_time[i]), *(float(a[i]) for a in (c.open, c.high, c.low, c.close, c.volume)))
                store.on_closed_1m(symbol, k)
                ok, _ = signals.evaluate_prefilter(store.series(symbol, "1h"), params)
                assert pre_flags[i] or not ok, (symbol, i)
                if not ok:
                    continue
                passed += 1
                report = signals.evaluate(symbol, store.frames(symbol), params, at_ms=k.open_time, full=True)
                if report.filter_15m_ok:
                    both += 1
                    assert flags[i], (symbol, i)
            assert both > 0, (symbol, params)
            totals[0] += passed
            totals[1] += both
    assert totals[0] > totals[1]  # the 15m filter cut some of the pre-filter's minutes


def test_symbols_join_when_their_data_begins() -> None:
    # BTCUSDT's data (2025-05/06) starts the run; XMRUSDT and ZECUSDT begin seven months after it ended.
    data = load_candle_dir(KLINES_DIR, ["BTCUSDT", "XMRUSDT", "ZECUSDT"])
    alone = run(BacktestSpec(data=load_candle_dir(KLINES_DIR, ["XMRUSDT", "ZECUSDT"]).data, cfg=StrategyConfig()))
    result = run(BacktestSpec(data=data.data, cfg=StrategyConfig()))
    assert result.problems == []
    assert sorted(result.joined_after_start) == ["XMRUSDT", "ZECUSDT"]
    assert result.left_before_end == {"BTCUSDT": int(data.data["BTCUSDT"][1].open_time[-1])}
    late = [t for t in result.trades if t.symbol in ("XMRUSDT", "ZECUSDT")]
    assert len(late) >= len(alone.trades) > 0  # the second period trades, as it does on its own
    first_candle = min(int(data.data[s][1].open_time[0]) for s in ("XMRUSDT", "ZECUSDT"))
    assert all(t.opened_ms > first_candle for t in late)
    # no minute of the seven months between the periods was invented
    assert result.candles == sum(len(c) for _, c in data.data.values()) - _before(data.data["BTCUSDT"][1], result)


def _before(candles, result: BacktestResult) -> int:
    return int(np.searchsorted(candles.open_time, result.start_ms))


def test_a_position_whose_symbol_ends_is_settled_at_its_last_price() -> None:
    data = load_candle_dir(KLINES_DIR, ["XMRUSDT", "ZECUSDT"])
    # ZECUSDT holds a position from day 10.8 of its data on; here its data ends at day 11.5, as if it were
    # delisted then: the position is sold at its last close, and the run goes on with XMRUSDT.
    m, c = data.data["ZECUSDT"]
    day0 = int(c.open_time[0])
    short = c.upto(int(np.searchsorted(c.open_time, day0 + 11 * 86_400_000 + 43_200_000)))
    spec = BacktestSpec(data={"XMRUSDT": data.data["XMRUSDT"], "ZECUSDT": (m, short)}, cfg=StrategyConfig())
    result = run(replace(spec, end_ms=day0 + 12 * 86_400_000))
    assert result.problems == []
    assert result.left_before_end == {"ZECUSDT": int(short.open_time[-1])}
    [settled] = [t for t in result.trades if t.symbol == "ZECUSDT" and t.exit_reason == "end_of_data"]
    assert settled.closed_ms == int(short.open_time[-1]) + 60_000 - 1  # at the close of its last candle
    last_close = Decimal(repr(float(short.close[-1])))
    assert last_close * Decimal("0.999") < settled.legs[-1].price <= last_close  # a market sell, less slippage
    assert result.end_ms > settled.closed_ms  # and the run went on
