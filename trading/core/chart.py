"""What a chart shows, as plain values: the candle window, the strategy's averages and bands, the position's
price lines and fills, or the entry conditions of a symbol that is not held.

Pure (numpy and the core only): the service gathers the inputs on the event
loop (a copy of the candles, the position's state and fills), and
:func:`plan` turns them into a :class:`ChartPlan` inside the rendering
worker, which draws it (``trading/charts/render.py``).

The position's prices come from the ladder itself (``ladder.triggers``,
``ladder.stop_price``), so the chart shows exactly the prices the monitor acts on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

import numpy as np

from trading.core import ladder
from trading.core.config import SignalParams, StrategyConfig
from trading.core.indicators import bollinger_tail, sma_tail
from trading.core.models import ExitReason, PositionState, Stage
from trading.core.reports import SignalReport
from trading.core.series import OHLCV

CHART_INTERVALS: tuple[str, ...] = ("1m", "3m", "15m", "1h")
DEFAULT_INTERVAL = "3m"
MIN_BARS = 120  # what a phone shows legibly
MAX_BARS = 300  # a longer position is shown from its last 300 candles
LEAD_BARS = 8  # candles shown before the position's first fill


class LineKind(StrEnum):
    AVG = "avg"
    STOP = "stop"
    BACKSTOP = "backstop"
    NEXT_DCA = "next_dca"
    RECOVERY = "recovery"
    TAKE_HALF = "take_half"
    TRAILING = "trailing"


class MarkKind(StrEnum):
    ENTRY = "entry"
    DCA = "dca"
    SELL = "sell"  # a partial sell (staged recovery, take-half)
    CLOSE = "close"  # the sell that closed the position


@dataclass(frozen=True, slots=True)
class PriceLine:
    kind: LineKind
    price: float


@dataclass(frozen=True, slots=True)
class FillPoint:
    """One recorded fill (a trade of an order), as the chart needs it."""

    order_id: str
    side: str  # "BUY" | "SELL"
    price: float
    qty: float
    ts_ms: int
    stage: Stage | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class FillMark:
    """One order's fills (trades summed) at its average price, on the candle it happened in."""

    kind: MarkKind
    ts_ms: int
    price: float
    qty: float
    bar: int = -1  # index in the plan's window; -1 until placed


@dataclass(frozen=True, slots=True)
class ChartLabels:
    """Every word drawn in the picture (the bot fills them in the chat's language; English by default)."""

    avg: str = "Avg"
    stop: str = "Stop"
    backstop: str = "Backstop"
    next_dca: str = "Next DCA"
    recovery: str = "Recovery sell"
    take_half: str = "Take half"
    trailing: str = "Trailing stop"
    entry: str = "Entry"
    dca: str = "DCA"
    sell: str = "Sell"
    close: str = "Close"
    volume: str = "Volume"
    last: str = "Last"
    prefilter: str = "1h pre-filter"
    strategy_1m: str = "1m strategy"
    strategy_3m: str = "3m strategy"
    filter_15m: str = "15m filter"
    signal_yes: str = "entry signal"
    signal_no: str = "no entry"
    not_evaluated: str = "not evaluated yet"

    def line(self, kind: LineKind) -> str:
        return str(getattr(self, kind.value))

    def mark(self, kind: MarkKind) -> str:
        return str(getattr(self, kind.value))

    def texts(self) -> tuple[str, ...]:
        return tuple(str(getattr(self, name)) for name in self.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class NoteLine:
    text: str
    ok: bool | None = None  # None: neutral


@dataclass(frozen=True, slots=True)
class ChartRequest:
    """Everything gathered on the event loop for one chart (picklable: it crosses to the rendering process)."""

    symbol: str
    interval: str
    candles: OHLCV  # oldest first, with enough history before the window for the longest average
    params: SignalParams
    lines: tuple[PriceLine, ...] = ()
    fills: tuple[FillPoint, ...] = ()
    signal: SignalReport | None = None
    held: bool = False
    last_price: float | None = None
    labels: tuple[ChartLabels, ...] = (ChartLabels(),)  # the first one the fonts can draw is used
    timezone: str = "UTC"  # times on the axis (the strategy's report_timezone)


@dataclass(frozen=True, slots=True)
class Overlay:
    name: str  # "MA5", "BB(200, 2)"...
    values: np.ndarray  # one per candle of the window (NaN where not computable)


@dataclass(frozen=True, slots=True)
class ChartPlan:
    symbol: str
    interval: str
    candles: OHLCV  # the window
    averages: tuple[Overlay, ...]
    band: tuple[Overlay, Overlay] | None  # lower and upper of the fast Bollinger band
    slow_upper: Overlay | None  # the slow band's upper line (the strategy compares with it)
    lines: tuple[PriceLine, ...]
    marks: tuple[FillMark, ...]
    notes: tuple[NoteLine, ...]
    last_price: float | None
    y_range: tuple[float, float]
    labels: ChartLabels = field(default_factory=ChartLabels)


# ------------------------------------------------------------------ the position
def position_lines(state: PositionState, cfg: StrategyConfig, *, backstop: Decimal | None) -> tuple[PriceLine, ...]:
    """The prices the ladder acts on, from ``ladder.triggers`` (the same band the monitor compares with).

    ``backstop`` is the stop resting on the exchange (None when none rests): the chart shows what protects
    the position, not what should.
    """
    t = ladder.triggers(state, cfg)
    lines = [PriceLine(LineKind.AVG, float(state.avg_price)), PriceLine(LineKind.STOP, float(t.stop))]
    if backstop is not None:
        lines.append(PriceLine(LineKind.BACKSTOP, float(backstop)))
    for stage in (Stage.FIRST_DCA, Stage.SECOND_DCA):
        if stage.value in t.extra:
            lines.append(PriceLine(LineKind.NEXT_DCA, float(t.extra[stage.value])))
    if "recovery" in t.extra:
        lines.append(PriceLine(LineKind.RECOVERY, float(t.extra["recovery"])))
    if "take_half" in t.extra:
        lines.append(PriceLine(LineKind.TAKE_HALF, float(t.extra["take_half"])))
    if t.trailing is not None:
        lines.append(PriceLine(LineKind.TRAILING, float(t.trailing)))
    return tuple(lines)


def fill_marks(fills: Iterable[FillPoint]) -> tuple[FillMark, ...]:
    """One mark per order (its trades summed, at their average price), oldest first."""
    orders: dict[str, list[FillPoint]] = {}
    for f in fills:
        if f.qty > 0:
            orders.setdefault(f.order_id, []).append(f)
    marks = []
    for trades in orders.values():
        qty = sum(t.qty for t in trades)
        price = sum(t.price * t.qty for t in trades) / qty
        marks.append(FillMark(_mark_kind(trades[0]), min(t.ts_ms for t in trades), price, qty))
    return tuple(sorted(marks, key=lambda m: m.ts_ms))


def _mark_kind(f: FillPoint) -> MarkKind:
    if f.side == "BUY":
        return MarkKind.DCA if f.stage in (Stage.FIRST_DCA, Stage.SECOND_DCA) else MarkKind.ENTRY
    if f.reason is not None and f.reason in ExitReason._value2member_map_ and not ExitReason(f.reason).closes_all:
        return MarkKind.SELL
    return MarkKind.CLOSE


# ------------------------------------------------------------------ the window
def lookback_bars(p: SignalParams) -> int:
    """Candles needed before the window so that every drawn average starts at its left edge."""
    return max(p.ma_fast, p.ma_short, p.ma_mid, p.ma_long, p.bb_fast_n, p.bb_slow_n)


def window_size(open_time: np.ndarray, first_fill_ms: int | None) -> int:
    """Candles to show: at least ``MIN_BARS``, more to reach back to the first fill, at most ``MAX_BARS``."""
    n = len(open_time)
    bars = MIN_BARS
    if first_fill_ms is not None and n:
        first = int(np.searchsorted(open_time, first_fill_ms, side="right")) - 1
        bars = max(bars, n - max(first, 0) + LEAD_BARS)
    return max(0, min(n, bars, MAX_BARS))


def place_marks(marks: Sequence[FillMark], open_time: np.ndarray) -> tuple[FillMark, ...]:
    """Marks on the candle that contains them; fills before the window are left out, fills after its last candle
    (the minute in progress) sit on the last one."""
    n = len(open_time)
    if not n:
        return ()
    start = int(open_time[0])
    placed = []
    for m in marks:
        if m.ts_ms < start:
            continue
        bar = min(int(np.searchsorted(open_time, m.ts_ms, side="right")) - 1, n - 1)
        placed.append(FillMark(m.kind, m.ts_ms, m.price, m.qty, bar))
    return tuple(placed)


def condition_notes(report: SignalReport | None, labels: ChartLabels) -> tuple[NoteLine, ...]:
    """The entry conditions' state (as ``/why`` shows it), one line per group, then the verdict."""
    if report is None:
        return (NoteLine(labels.not_evaluated, None),)
    groups = (
        (labels.prefilter, report.prefilter, report.prefilter_ok),
        (labels.strategy_1m, report.m1, report.strategy_1m_ok),
        (labels.strategy_3m, report.m3, report.strategy_3m_ok),
        (labels.filter_15m, report.f15, report.filter_15m_ok),
    )
    notes = [
        NoteLine(f"{title} {sum(1 for c in conds if c.ok)}/{len(conds)}", ok) for title, conds, ok in groups if conds
    ]
    notes.append(NoteLine(labels.signal_yes if report.entry else labels.signal_no, report.entry))
    return tuple(notes)


def y_range(candles: OHLCV, prices: Iterable[float], pad: float = 0.04) -> tuple[float, float]:
    """The candles' range widened to every line and mark (a trader wants to see the stop and the take-half even
    when the price is far from them), with a margin."""
    values = [float(np.nanmin(candles.low)), float(np.nanmax(candles.high))] if len(candles) else []
    values += [p for p in prices if np.isfinite(p) and p > 0]
    if not values:
        return (0.0, 1.0)
    lo, hi = min(values), max(values)
    span = hi - lo if hi > lo else abs(hi) * 0.01 or 1.0
    return (lo - span * pad, hi + span * pad)


def plan(request: ChartRequest, labels: ChartLabels | None = None) -> ChartPlan:
    """The chart of ``request``: window, overlays computed on the full history, marks placed, y range."""
    labels = labels or request.labels[0]
    c = request.candles
    p = request.params
    fills = fill_marks(request.fills)
    first_fill = fills[0].ts_ms if fills else None
    bars = window_size(c.open_time, first_fill)
    window = c.tail(bars)
    averages = tuple(
        Overlay(f"MA{n}", sma_tail(c.close, n, bars)) for n in (p.ma_fast, p.ma_short, p.ma_mid, p.ma_long) if bars
    )
    band = slow = None
    if bars:
        fast = bollinger_tail(c.close, p.bb_fast_n, p.bb_fast_k, bars)
        name = f"BB({p.bb_fast_n}, {p.bb_fast_k:g})"
        band = (Overlay(name, fast.lower), Overlay(name, fast.upper))
        slow_upper = bollinger_tail(c.close, p.bb_slow_n, p.bb_slow_k, bars).upper
        slow = Overlay(f"BB({p.bb_slow_n}, {p.bb_slow_k:g})", slow_upper)
    marks = place_marks(fills, window.open_time)
    prices = [ln.price for ln in request.lines] + [m.price for m in marks]
    if request.last_price is not None:
        prices.append(request.last_price)
    notes = () if request.held else condition_notes(request.signal, labels)
    return ChartPlan(
        symbol=request.symbol,
        interval=request.interval,
        candles=window,
        averages=averages,
        band=band,
        slow_upper=slow,
        lines=request.lines,
        marks=marks,
        notes=notes,
        last_price=request.last_price,
        y_range=y_range(window, prices),
        labels=labels,
    )


# ------------------------------------------------------------------ text helpers
def spread_labels(positions: Sequence[float], min_gap: float) -> list[float]:
    """Label positions (axes fractions, 0..1) moved apart by at least ``min_gap``, each as close as possible to
    its line, order kept; the result stays within [0, 1] when there is room for all of them."""
    if not positions:
        return []
    order = sorted(range(len(positions)), key=lambda i: positions[i])
    ys = [positions[i] for i in order]
    for i in range(1, len(ys)):  # push up
        ys[i] = max(ys[i], ys[i - 1] + min_gap)
    top = 1.0 - min_gap / 2
    if ys[-1] > top:  # then down from the top, if the stack ran out of the axes
        ys[-1] = top
        for i in range(len(ys) - 2, -1, -1):
            ys[i] = min(ys[i], ys[i + 1] - min_gap)
    out = [0.0] * len(ys)
    for rank, i in enumerate(order):
        out[i] = ys[rank]
    return out


def format_price(x: float) -> str:
    """About five significant digits, no trailing zeros (0.0000123, 1.2345, 98,765)."""
    if not np.isfinite(x):
        return "—"
    ax = abs(x)
    if ax == 0:
        return "0"
    digits = max(0, 4 - int(np.floor(np.log10(ax))))
    text = f"{x:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
