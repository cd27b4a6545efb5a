"""Hand-built candle paths through the backtest: each exit reason gives exactly the trade SPEC 4-5 call for.

Each file holds a flat day at 100 (history for the backfill; flat volume keeps
the 1h pre-filter false, so the scanner never enters by itself), then the
scenario. The position is opened through the engine's own executor at the
first scenario minute; from there the replay drives the ladder. Expected fills
are worked out here from the rules: buys fill at price x (1 + slippage) rounded
up to the tick, sells at price x (1 - slippage) rounded down, quantities are
rounded down to the step, fees are 0.05% of the fill's notional.

Within a candle the replay visits open -> the extreme nearer the open -> the
other extreme -> close (a tie visits the low first).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal
from pathlib import Path

import numpy as np
import pytest

from trading.backtest import Backtest, BacktestResult, BacktestSpec, load_candle_dir
from trading.core.config import StrategyConfig
from trading.core.models import Stage

D = Decimal
SYMBOL = "TESTUSDT"
MIN = 60_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
WARMUP = 1_440  # flat minutes before the scenario
TICK, STEP = D("0.01"), D("0.01")  # what file_market gives a symbol priced ~100 with 2 decimals
SLIP, FEE = D("0.0005"), D("0.0005")
CFG = StrategyConfig()

Candle = tuple[float, float, float, float]  # open, high, low, close


def write_file(tmp_path: Path, scenario: Sequence[Candle]) -> Path:
    """Flat warm-up at 100, one flat minute to enter on, the scenario, then one flat minute at its last close."""
    rows = [(100.0, 100.0, 100.0, 100.0)] * (WARMUP + 1) + list(scenario)
    last = rows[-1][3]
    rows.append((last, last, last, last))
    lines = ["open_time,open,high,low,close,volume"]
    lines += [f"{T0 + i * MIN},{o!r},{h!r},{lo!r},{c!r},1.0" for i, (o, h, lo, c) in enumerate(rows)]
    d = tmp_path / "klines"
    d.mkdir()
    (d / f"{SYMBOL}-1m.csv").write_text("\n".join(lines) + "\n")
    return d


async def run_path(tmp_path: Path, scenario: Sequence[Candle]) -> BacktestResult:
    data = load_candle_dir(write_file(tmp_path, scenario))
    market = data.data[SYMBOL][0]
    assert (market.rules.tick_size, market.rules.step_size) == (TICK, STEP)
    bt = Backtest(BacktestSpec(data=data.data, cfg=CFG, start_ms=T0 + WARMUP * MIN, slippage=SLIP))
    try:
        await bt.start()
        assert await bt.step_minute()  # the entry minute: the broker now has a price (100)
        assert await bt.engine.executor.enter(SYMBOL, D(100)) is not None
        await bt.run()
        result = await bt.finish()
    finally:
        await bt.keeper.close()
        bt.close()
    assert result.problems == [], result.problems
    assert len(result.signals) == 0  # nothing but our own entry
    return result


# ---------------------------------------------------------------------- the rules, written out
def buy_px(p: str | Decimal) -> Decimal:
    return (D(p) * (1 + SLIP) / TICK).to_integral_value(ROUND_UP) * TICK


def sell_px(p: str | Decimal) -> Decimal:
    return (D(p) * (1 - SLIP) / TICK).to_integral_value(ROUND_DOWN) * TICK


def size(wallet: Decimal, weight: Decimal, price: str | Decimal) -> Decimal:
    return (wallet * weight * CFG.leverage / D(price) / STEP).to_integral_value(ROUND_DOWN) * STEP


def fee(price: Decimal, qty: Decimal) -> Decimal:
    return (price * qty * FEE).quantize(D("0.00000001"), ROUND_HALF_UP)


def legs(result: BacktestResult) -> list[tuple[str, Decimal, Decimal, str | None]]:
    [trade] = result.trades
    return [(leg.side, leg.qty, leg.price, leg.stage or leg.reason) for leg in trade.legs]


ENTRY_QTY = size(D(1000), CFG.weight_for(Stage.INITIAL), 100)
ENTRY_PX = buy_px(100)  # 100.05
STOP = ENTRY_PX * D("0.90")  # initial stage stop (-10% from the average)


def test_the_rules_written_out_match_spec_defaults() -> None:
    assert CFG.weight_for(Stage.INITIAL) == D("0.015")
    assert (D("1.5"), D("100.05")) == (ENTRY_QTY, ENTRY_PX)


# ---------------------------------------------------------------------- scenarios
async def test_stop_loss(tmp_path: Path) -> None:
    # 100 -> 100.2 (nearer) -> 88 -> 89: 88 is below the stop (90.045): everything is sold at 88.
    result = await run_path(tmp_path, [(100, 100.2, 88, 89)])
    assert legs(result) == [("BUY", ENTRY_QTY, ENTRY_PX, "initial"), ("SELL", ENTRY_QTY, sell_px(88), "stop_loss")]
    [trade] = result.trades
    assert trade.exit_reason == "stop_loss" and trade.max_stage == "initial"
    assert trade.closed_ms == T0 + (WARMUP + 1) * MIN + 40_000  # the other extreme is visited at +40 s
    assert trade.pnl == (sell_px(88) - ENTRY_PX) * ENTRY_QTY - fee(ENTRY_PX, ENTRY_QTY) - fee(sell_px(88), ENTRY_QTY)
    assert result.summary["exit_reasons"] == {"stop_loss": 1}
    assert result.balance_end == D(1000) + trade.pnl


async def test_both_dca_levels_and_both_staged_recovery_sells(tmp_path: Path) -> None:
    scenario = [
        (100, 100, 97, 97),  # 97 <= 100.05 x 0.97: first DCA
        (97, 97, 94, 94),  # 94 <= 100.05 x 0.94: second DCA
        (94, 97.1, 94, 97.1),  # 97.1 >= first DCA fill (97.05): sell the second DCA lot
        (97.1, 100.1, 97.1, 100.1),  # 100.1 >= initial fill (100.05): sell the first DCA lot
    ]
    result = await run_path(tmp_path, scenario)
    wallet = D(1000) - fee(ENTRY_PX, ENTRY_QTY)
    q1, p1 = size(wallet, D("0.02"), 97), buy_px(97)
    wallet -= fee(p1, q1)
    q2, p2 = size(wallet, D("0.02"), 94), buy_px(94)
    assert (q1, p1, q2, p2) == (D("2.06"), D("97.05"), D("2.12"), D("94.05"))
    assert legs(result) == [
        ("BUY", ENTRY_QTY, ENTRY_PX, "initial"),
        ("BUY", q1, p1, "first_dca"),
        ("BUY", q2, p2, "second_dca"),
        ("SELL", q2, sell_px("97.1"), "recovery_second_dca"),
        ("SELL", q1, sell_px("100.1"), "recovery_first_dca"),
        ("SELL", ENTRY_QTY, sell_px("100.1"), "end_of_data"),  # what is left is sold when the data ends
    ]
    [trade] = result.trades
    assert trade.max_stage == "second_dca" and trade.exit_reason == "end_of_data"
    assert result.summary["partial_exits"] == {"recovery_first_dca": 1, "recovery_second_dca": 1}
    # each ladder buy was sized from the wallet of its moment
    assert [leg.wallet_before for leg in trade.legs if leg.side == "BUY"] == [
        D(1000),
        D(1000) - fee(ENTRY_PX, ENTRY_QTY),
        wallet,
    ]


async def test_take_half_then_trailing_stop(tmp_path: Path) -> None:
    scenario = [
        (100, 110.1, 100, 110.1),  # low first (nearer): 110.1 >= 100.05 x 1.10: sell half
        (110.1, 112, 110.1, 112),  # new high: the runner's peak is 112
        (112, 112, 108.6, 108.6),  # 108.6 <= 112 x 0.97 = 108.64: the rest goes
    ]
    result = await run_path(tmp_path, scenario)
    half = (ENTRY_QTY * D("0.5") / STEP).to_integral_value(ROUND_DOWN) * STEP
    assert legs(result) == [
        ("BUY", ENTRY_QTY, ENTRY_PX, "initial"),
        ("SELL", half, sell_px("110.1"), "take_half"),
        ("SELL", ENTRY_QTY - half, sell_px("108.6"), "trailing_stop"),
    ]
    assert result.trades[0].exit_reason == "trailing_stop"


def first_dead_cross(closes: Sequence[float], first_minute_ms: int, after_ms: int) -> int:
    """Open time of the first 1m candle (opening at or after ``after_ms``) at whose close the 3m MA5 crosses
    below the 3m MA20, the newest 3m bar being the one in progress (SPEC 1, 5.4)."""
    t = first_minute_ms + MIN * np.arange(len(closes))
    for i in range(len(closes)):
        if t[i] < after_ms:
            continue
        bucket = (t[: i + 1] - t[: i + 1] % (3 * MIN)).tolist()
        bars: dict[int, float] = {}
        for b, c in zip(bucket, closes[: i + 1], strict=True):
            bars[b] = c  # the last close of each bucket so far
        c3 = np.array(list(bars.values()))
        if len(c3) < 21:
            continue
        ma5 = [c3[k - 5 : k].mean() for k in (len(c3) - 1, len(c3))]
        ma20 = [c3[k - 20 : k].mean() for k in (len(c3) - 1, len(c3))]
        if ma5[0] >= ma20[0] - 1e-9 and ma5[1] < ma20[1] - 1e-9:
            return int(t[i])
    raise AssertionError("no dead cross in the path")


async def test_take_half_then_dead_cross_on_3m(tmp_path: Path) -> None:
    flat = [(110.1, 110.1, 110.1, 110.1)] * 90  # 30 flat 3m bars: MA5 == MA20
    decline = [(110.1 - 0.02 * k, 110.1 - 0.02 * k, 110.08 - 0.02 * k, 110.08 - 0.02 * k) for k in range(10)]
    scenario = [(100, 110.1, 100, 110.1), *flat, *decline]
    result = await run_path(tmp_path, scenario)
    closes = [100.0] * (WARMUP + 1) + [c for _, _, _, c in scenario]
    cross_at = first_dead_cross(closes, T0, T0 + (WARMUP + 2) * MIN)
    close_px = next(c for i, (_, _, _, c) in enumerate(scenario) if T0 + (WARMUP + 1 + i) * MIN == cross_at)
    half = (ENTRY_QTY * D("0.5") / STEP).to_integral_value(ROUND_DOWN) * STEP
    assert legs(result) == [
        ("BUY", ENTRY_QTY, ENTRY_PX, "initial"),
        ("SELL", half, sell_px("110.1"), "take_half"),
        ("SELL", ENTRY_QTY - half, sell_px(repr(close_px)), "dead_cross"),
    ]
    [trade] = result.trades
    assert trade.closed_ms == cross_at + 59_999  # judged on the closed 1m candle
    # the trailing stop (3% under the peak) was nowhere near
    assert close_px > 110.1 * 0.97


# ---------------------------------------------------------------------- intrabar order
@pytest.mark.parametrize(
    ("candle", "expected"),
    [
        # high and low equally far from the open: the low is visited first -> the stop, no take-half
        ((100, 111, 89, 100), [("SELL", D("1.5"), "89", "stop_loss")]),
        # the low is nearer: the stop first
        ((100, 112, 89, 100), [("SELL", D("1.5"), "89", "stop_loss")]),
        # the high is nearer: take-half at 111 first, then the stop at 88 closes the rest
        ((100, 111, 88, 100), [("SELL", D("0.75"), "111", "take_half"), ("SELL", D("0.75"), "88", "stop_loss")]),
    ],
)
async def test_a_candle_touching_stop_and_take_half_resolves_in_path_order(
    tmp_path: Path, candle: Candle, expected: list[tuple[str, Decimal, str, str]]
) -> None:
    assert candle[2] < float(STOP) and candle[1] > float(ENTRY_PX * D("1.1"))  # it does touch both
    result = await run_path(tmp_path, [candle])
    assert legs(result) == [
        ("BUY", ENTRY_QTY, ENTRY_PX, "initial"),
        *((side, qty, sell_px(px), why) for side, qty, px, why in expected),
    ]
