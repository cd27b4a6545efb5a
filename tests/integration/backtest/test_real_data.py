"""A backtest over real candles completes and its figures hold together."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import KLINES_DIR
from trading.backtest import BacktestResult, BacktestSpec, load_candle_dir, run_backtest
from trading.backtest.data import parse_time
from trading.core.config import StrategyConfig
from trading.core.models import Stage
from trading.reporting import max_drawdown

SYMBOLS = ["1000PEPEUSDT", "DOGEUSDT", "SUIUSDT", "XMRUSDT", "ZECUSDT"]
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def result() -> BacktestResult:
    """One run shared by the tests of this module (its own event loop, like the CLI)."""
    data = load_candle_dir(KLINES_DIR, SYMBOLS)
    spec = BacktestSpec(data=data.data, cfg=StrategyConfig(), end_ms=parse_time("2026-01-16", "--to"))
    return asyncio.run(run_backtest(spec))


def test_the_run_trades_and_its_checks_pass(result: BacktestResult) -> None:
    assert result.problems == []
    assert result.checks["balance"] == "ok" and result.checks["legs"] == "ok" and result.checks["sizes"] == "ok"
    assert len(result.trades) >= 5
    assert result.symbols == sorted(SYMBOLS)
    # the default start is the data's first minute + the 7-day warm-up
    assert result.start_ms == parse_time("2026-01-11", "--from")
    assert result.end_ms == parse_time("2026-01-16", "--to")
    assert result.candles == len(SYMBOLS) * 5 * 1440 == result.minutes * len(SYMBOLS)


def test_the_books_balance(result: BacktestResult) -> None:
    s = result.summary
    trades = result.closed_trades
    assert len(trades) == len(result.trades) == s["trades"]  # everything was closed at the end
    gross = sum((t.gross for t in trades), Decimal(0))
    fees = sum((t.fees for t in trades), Decimal(0))
    assert abs(result.balance_end - (result.balance_start + gross - fees)) < CENT
    assert s["realized_pnl"] == pytest.approx(float(gross), abs=1e-8)
    assert s["fees"] == pytest.approx(float(fees), abs=1e-8)
    assert s["net_pnl"] == pytest.approx(s["balance_end"] - s["balance_start"], abs=0.01)
    assert s["return_pct"] == pytest.approx((s["balance_end"] / s["balance_start"] - 1) * 100, abs=1e-3)
    # the equity curve starts at the starting balance and ends at the final wallet (nothing left open)
    assert result.equity.equity[0] == float(result.balance_start)
    assert result.equity.equity[-1] == pytest.approx(float(result.balance_end), abs=1e-6)
    assert s["max_drawdown_pct"] == pytest.approx(max_drawdown(result.equity.equity) * 100, abs=1e-4)


def test_trades_follow_the_ladder(result: BacktestResult) -> None:
    cfg = StrategyConfig()
    for t in result.trades:
        assert t.bought == t.sold > 0
        first = t.legs[0]
        assert (first.side, first.stage) == ("BUY", "initial")
        buys = [leg for leg in t.legs if leg.side == "BUY"]
        assert [leg.stage for leg in buys] == ["initial", "first_dca", "second_dca"][: len(buys)]
        assert t.max_stage == buys[-1].stage
        half = [i for i, leg in enumerate(t.legs) if leg.reason == "take_half"]
        if half:  # a runner is never averaged down or reduced by a recovery sell
            assert all(
                leg.side == "SELL" and not (leg.reason or "").startswith("recovery") for leg in t.legs[half[0] :]
            )
        for leg in buys:
            assert leg.wallet_before is not None
            limit = cfg.weight_for(Stage(leg.stage)) * leg.wallet_before * cfg.leverage
            assert leg.qty * leg.price <= limit * Decimal("1.0005") + leg.qty * Decimal("0.01")
        assert t.legs[-1].reason == t.exit_reason


def test_summary_counts_agree_with_the_trades(result: BacktestResult) -> None:
    s = result.summary
    trades = result.trades
    assert sum(s["exit_reasons"].values()) == len(trades)
    assert s["exit_reasons"] == dict(Counter(t.exit_reason for t in trades))
    assert s["max_stage_reached"] == {st.value: sum(t.max_stage == st.value for t in trades) for st in Stage}
    assert s["wins"] == sum(t.pnl > 0 for t in trades) and s["wins"] + s["losses"] == len(trades)
    holds = [t.hold_ms for t in trades if t.hold_ms is not None]
    assert s["avg_hold_minutes"] == pytest.approx(sum(holds) / len(holds) / 60_000, abs=0.05)
    assert 0 < s["max_margin_in_use_pct"] <= StrategyConfig().max_margin_usage * 100
    assert s["max_open_positions"] <= len(SYMBOLS)
    # every trade began on an entry signal of the scanner at the minute it opened
    entered = {(sig.report.symbol, sig.report.at_ms // 60_000) for sig in result.signals if sig.entered}
    assert {(t.symbol, t.opened_ms // 60_000) for t in trades} == entered
    assert s["entry_signals"] == len(result.signals) >= len(trades)


def test_unknown_symbols_are_refused_clearly(tmp_path: Path) -> None:
    from trading.backtest import BacktestInputError

    with pytest.raises(BacktestInputError, match="no candle file for NOPEUSDT"):
        load_candle_dir(KLINES_DIR, ["XMRUSDT", "nopeusdt"])
    with pytest.raises(BacktestInputError, match=r"no SYMBOL-1m\.csv"):
        load_candle_dir(tmp_path)
