"""What a chart shows, from a position: its lines are the ladder's own prices, its marks the fills, its window and
overlays the candles'."""

from __future__ import annotations

import itertools
import pickle
from decimal import Decimal

import numpy as np
import pytest

from trading.core import ladder
from trading.core.chart import (
    MAX_BARS,
    MIN_BARS,
    ChartLabels,
    ChartRequest,
    FillMark,
    FillPoint,
    LineKind,
    MarkKind,
    condition_notes,
    fill_marks,
    format_price,
    lookback_bars,
    place_marks,
    plan,
    position_lines,
    spread_labels,
    window_size,
)
from trading.core.config import StrategyConfig
from trading.core.models import Dca, Fill, PositionState, Sell, Stage, SymbolRules
from trading.core.reports import Condition, SignalReport
from trading.core.series import OHLCV

D = Decimal
CFG = StrategyConfig()
RULES = SymbolRules("SOLUSDT", D("0.01"), D("0.01"), D("0.01"), D("5"))
T0 = 1_768_300_020_000 - 1_768_300_020_000 % 180_000


def _entered(price: str = "100", qty: str = "1") -> PositionState:
    return ladder.new_position("SOLUSDT", Fill("BUY", D(price), D(qty), stage=Stage.INITIAL))


def _kinds(lines: tuple) -> dict[LineKind, float]:
    return {ln.kind: ln.price for ln in lines}


def test_initial_stage_lines_are_the_ladders_prices() -> None:
    state = _entered()
    lines = _kinds(position_lines(state, CFG, backstop=D("90")))
    assert lines == {
        LineKind.AVG: 100.0,
        LineKind.STOP: 90.0,
        LineKind.BACKSTOP: 90.0,
        LineKind.NEXT_DCA: 97.0,
        LineKind.TAKE_HALF: 110.0,
    }
    # The lines are where the ladder acts: a DCA at the drawn DCA price, nothing a tick above it,
    # a take-half sell at the drawn take-half price.
    act = ladder.decide(state, D("97"), cfg=CFG, rules=RULES, balance=D("1000"))
    assert isinstance(act, Dca) and act.level is Stage.FIRST_DCA
    assert ladder.decide(state, D("97.01"), cfg=CFG, rules=RULES, balance=D("1000")) is None
    act = ladder.decide(state, D("110"), cfg=CFG, rules=RULES, balance=D("1000"))
    assert isinstance(act, Sell) and act.reason.value == "take_half"


def test_no_backstop_line_when_none_rests() -> None:
    assert LineKind.BACKSTOP not in _kinds(position_lines(_entered(), CFG, backstop=None))


def test_after_the_first_dca_the_lines_move_with_the_average() -> None:
    state = ladder.apply_fill(_entered(), Fill("BUY", D("97"), D("1"), stage=Stage.FIRST_DCA))
    lines = _kinds(position_lines(state, CFG, backstop=None))
    assert lines[LineKind.AVG] == pytest.approx(98.5)
    assert lines[LineKind.STOP] == pytest.approx(98.5 * 0.93)  # the first-DCA stage's stop
    assert lines[LineKind.NEXT_DCA] == pytest.approx(94.0)  # second DCA, from the initial entry
    assert lines[LineKind.RECOVERY] == pytest.approx(100.0)  # the DCA lot is sold when 100 is regained
    assert lines[LineKind.TAKE_HALF] == pytest.approx(98.5 * 1.10)
    assert float(ladder.stop_price(state, CFG)) == lines[LineKind.STOP]


def test_a_runner_shows_its_trailing_stop_and_no_dca_or_take_half() -> None:
    state = ladder.apply_fill(_entered(), Fill("SELL", D("110"), D("0.5"), reason=ladder.ExitReason.TAKE_HALF))
    state = ladder.with_peak(state, D("120"))
    lines = _kinds(position_lines(state, CFG, backstop=D("90")))
    assert set(lines) == {LineKind.AVG, LineKind.STOP, LineKind.BACKSTOP, LineKind.TRAILING}
    assert lines[LineKind.TRAILING] == pytest.approx(120 * 0.97)


def test_fill_marks_one_per_order_with_its_kind() -> None:
    fills = [
        FillPoint("sdca-1-entry-1", "BUY", 100.0, 0.6, T0 + 1_000, Stage.INITIAL),
        FillPoint("sdca-1-entry-1", "BUY", 100.5, 0.4, T0 + 1_100, Stage.INITIAL),  # the same order, second trade
        FillPoint("sdca-1-dca1-1", "BUY", 97.0, 1.0, T0 + 600_000, Stage.FIRST_DCA),
        FillPoint("sdca-1-rec1-1", "SELL", 100.1, 1.0, T0 + 900_000, reason="recovery_first_dca"),
        FillPoint("sdca-1-half-1", "SELL", 110.0, 0.5, T0 + 1_200_000, reason="take_half"),
        FillPoint("sdca-1-stop-1", "SELL", 106.0, 0.5, T0 + 1_500_000, reason="trailing_stop"),
        FillPoint("sdca-1-zero-1", "SELL", 1.0, 0.0, T0, reason="manual"),  # nothing filled: no mark
    ]
    marks = fill_marks(reversed(fills))
    assert [(m.kind, m.ts_ms) for m in marks] == [
        (MarkKind.ENTRY, T0 + 1_000),
        (MarkKind.DCA, T0 + 600_000),
        (MarkKind.SELL, T0 + 900_000),
        (MarkKind.SELL, T0 + 1_200_000),
        (MarkKind.CLOSE, T0 + 1_500_000),
    ]
    assert marks[0].qty == pytest.approx(1.0) and marks[0].price == pytest.approx(100.2)  # quantity-weighted


def _candles(n: int, step_ms: int = 180_000, start: float = 100.0) -> OHLCV:
    rng = np.random.default_rng(7)
    close = start * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    return OHLCV(
        np.arange(n, dtype=np.int64) * step_ms + T0,
        open_,
        np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999,
        close,
        rng.uniform(10, 20, n),
    )


def test_the_window_reaches_back_to_the_first_fill_within_bounds() -> None:
    t = _candles(1000).open_time
    assert window_size(t, None) == MIN_BARS
    assert window_size(t, int(t[-50])) == MIN_BARS  # a recent entry: the usual window
    assert window_size(t, int(t[-200]) + 5) == 200 + 8  # the entry and a few candles before it
    assert window_size(t, int(t[0])) == MAX_BARS  # a long position: its last MAX_BARS candles
    assert window_size(t[:40], None) == 40  # fewer candles than a window


def test_marks_sit_on_their_candle_and_outside_ones_are_handled() -> None:
    t = _candles(10).open_time
    marks = [
        FillMark(MarkKind.ENTRY, int(t[0]) - 1, 1.0, 1.0),  # before the window: left out
        FillMark(MarkKind.DCA, int(t[3]) + 179_999, 1.0, 1.0),  # the last ms of candle 3
        FillMark(MarkKind.CLOSE, int(t[-1]) + 10 * 180_000, 1.0, 1.0),  # after the last candle: on it
    ]
    assert [(m.kind, m.bar) for m in place_marks(marks, t)] == [(MarkKind.DCA, 3), (MarkKind.CLOSE, 9)]


def test_plan_of_a_held_position() -> None:
    c = _candles(900)
    entry_ts = int(c.open_time[-150]) + 30_000
    state = _entered(f"{c.close[-150]:.2f}")
    req = ChartRequest(
        symbol="SOLUSDT",
        interval="3m",
        candles=c,
        params=CFG.signals,
        lines=position_lines(state, CFG, backstop=ladder.backstop_price(state, CFG, RULES)),
        fills=(FillPoint("e", "BUY", float(state.initial_price), 1.0, entry_ts, Stage.INITIAL),),
        held=True,
        last_price=float(c.close[-1]),
    )
    p = plan(pickle.loads(pickle.dumps(req)))  # it crosses to the rendering process
    assert len(p.candles) == 158 and p.candles.open_time[-1] == c.open_time[-1]
    assert [o.name for o in p.averages] == ["MA5", "MA20", "MA80", "MA480"]
    assert all(len(o.values) == len(p.candles) for o in p.averages)
    # every average is computed over the full history: no NaN at the window's left edge
    assert all(np.isfinite(o.values).all() for o in p.averages)
    assert p.averages[0].values[-1] == pytest.approx(c.close[-5:].mean())
    lower, upper = p.band  # type: ignore[misc]
    assert upper.values[-1] == pytest.approx(c.close[-200:].mean() + 2 * c.close[-200:].std())
    assert (lower.values < upper.values).all()
    assert [(m.kind, m.bar) for m in p.marks] == [(MarkKind.ENTRY, 158 - 150)]
    assert p.notes == ()  # a held symbol shows its lines, not the entry conditions
    lo, hi = p.y_range  # the stop (-10%) and the take-half (+10%) are in view however calm the candles
    assert lo < float(state.initial_price) * 0.9 and hi > float(state.initial_price) * 1.1


def test_plan_of_a_symbol_not_held_shows_the_entry_conditions() -> None:
    c = _candles(300)  # fewer candles than MA480 needs: that average is not drawn (NaN), the others are
    report = SignalReport(
        "DOGEUSDT",
        int(c.open_time[-1]),
        prefilter=(Condition("H1", True), Condition("H2", True)),
        m1=(Condition("M1", True), Condition("M2", False), Condition("M3", True)),
        prefilter_ok=True,
    )
    labels = ChartLabels(prefilter="1시간봉 사전 필터", signal_no="진입 없음")
    p = plan(ChartRequest("DOGEUSDT", "1m", c, CFG.signals, signal=report, labels=(labels,)), labels)
    assert [(n.text, n.ok) for n in p.notes] == [
        ("1시간봉 사전 필터 2/2", True),
        ("1m strategy 2/3", False),
        ("진입 없음", False),
    ]
    assert not np.isfinite(p.averages[3].values).any() and np.isfinite(p.averages[2].values[-1])
    assert p.lines == () and p.marks == ()
    assert condition_notes(None, ChartLabels())[0].text == "not evaluated yet"


def test_lookback_covers_the_longest_average() -> None:
    assert lookback_bars(CFG.signals) == 480


@pytest.mark.parametrize(
    ("wanted", "gap"),
    [([0.5, 0.51, 0.52], 0.05), ([0.99, 0.98, 0.97], 0.05), ([0.1, 0.9, 0.5], 0.05), ([0.2], 0.1), ([], 0.1)],
)
def test_spread_labels_keeps_order_distance_and_bounds(wanted: list[float], gap: float) -> None:
    got = spread_labels(wanted, gap)
    assert len(got) == len(wanted)
    order = sorted(range(len(wanted)), key=lambda i: wanted[i])
    placed = [got[i] for i in order]
    assert all(b - a >= gap - 1e-12 for a, b in itertools.pairwise(placed))
    assert all(0.0 <= y <= 1.0 for y in got)
    if all(b - a >= gap for a, b in itertools.pairwise(sorted(wanted))):
        assert got == wanted  # labels far apart stay on their lines


@pytest.mark.parametrize(
    ("x", "text"),
    [(0.0000123, "0.0000123"), (1.23456, "1.2346"), (98765.4, "98,765"), (100.0, "100"), (0.0, "0")],
)
def test_format_price(x: float, text: str) -> None:
    assert format_price(x) == text
