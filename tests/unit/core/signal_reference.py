"""A plain-loop reading of SPEC 1-3, written straight from the text, to check the vectorised core against.

Nothing here imports ``trading.core.indicators`` or ``trading.core.signals``:
every MA is ``sum(window) / n`` over Python lists, every cross is a loop over
bars, every "not enough candles" is an explicit ``None``. Slow on purpose.

Shared conventions (documented in ``trading/core/indicators.py`` and the
README), re-stated here independently:
- comparing computed numbers, a difference within 1e-10 of the right-hand
  side counts as equality (1e-10 absolute for dimensionless ratios against
  a threshold); raw candle prices are compared exactly;
- a value that cannot be computed is None, and any comparison with None is
  false.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from trading.core.config import SignalParams
from trading.core.series import OHLCV, TIMEFRAME_MS

TOLERANCE = 1e-10
Value = float | int | bool | None


# ------------------------------------------------------------------ comparisons
def above(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return False
    return a - b > TOLERANCE * abs(b)


def below(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return False
    return b - a > TOLERANCE * abs(b)


def at_least(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and not below(a, b)


def at_most(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and not above(a, b)


def ratio_at_least(r: float | None, threshold: float) -> bool:
    """Dimensionless ratios (rise, spread, disparity) against a threshold: 1e-10 is absolute."""
    return r is not None and threshold - r <= TOLERANCE


def ratio_at_most(r: float | None, threshold: float) -> bool:
    return r is not None and r - threshold <= TOLERANCE


# ------------------------------------------------------------------ indicators, one bar at a time
def moving_average(closes: list[float], n: int, i: int) -> float | None:
    """MA(n) at bar i: mean of closes[i-n+1 .. i]."""
    if i < n - 1 or i >= len(closes):
        return None
    return sum(closes[i - n + 1 : i + 1]) / n


def upper_band(closes: list[float], n: int, k: float, i: int) -> float | None:
    """Upper Bollinger band at bar i: mean + k * population standard deviation of the n closes."""
    if i < n - 1 or i >= len(closes):
        return None
    window = closes[i - n + 1 : i + 1]
    mean = sum(window) / n
    variance = sum((x - mean) ** 2 for x in window) / n
    return mean + k * math.sqrt(variance)


def disparity(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return abs(a - b) / b


def ma_tail(closes: list[float], n: int, bars: int) -> list[float | None]:
    """MA(n) at each of the last `bars` bars, oldest first (None before the first candle)."""
    return [moving_average(closes, n, i) for i in range(len(closes) - bars, len(closes))]


def band_tail(closes: list[float], n: int, k: float, bars: int) -> list[float | None]:
    return [upper_band(closes, n, k, i) for i in range(len(closes) - bars, len(closes))]


def bars_since_cross(a: list[float | None], b: list[float | None], within: int, golden: bool) -> int | None:
    """Bars ago (0 = newest) of the newest cross of a over b (golden) or under b (dead) in the last `within` bars."""
    last = len(a) - 1
    for ago in range(within):
        i = last - ago
        if i < 1:
            break
        if golden and at_most(a[i - 1], b[i - 1]) and above(a[i], b[i]):
            return ago
        if not golden and at_least(a[i - 1], b[i - 1]) and below(a[i], b[i]):
            return ago
    return None


def band_keys(p: SignalParams) -> tuple[str, str]:
    """Report keys of the two upper bands: "bb200_upper", or "bb20x2_upper"/"bb20x1.5_upper" when n is shared."""
    if p.bb_fast_n == p.bb_slow_n:
        return f"bb{p.bb_fast_n}x{p.bb_fast_k:g}_upper", f"bb{p.bb_slow_n}x{p.bb_slow_k:g}_upper"
    return f"bb{p.bb_fast_n}_upper", f"bb{p.bb_slow_n}_upper"


# ------------------------------------------------------------------ reports
@dataclass
class RefCondition:
    name: str
    ok: bool
    values: dict[str, Value] = field(default_factory=dict)


@dataclass
class RefReport:
    prefilter: list[RefCondition]
    m1: list[RefCondition]
    m3: list[RefCondition]
    f15: list[RefCondition]
    prefilter_ok: bool
    strategy_1m_ok: bool
    strategy_3m_ok: bool
    filter_15m_ok: bool
    entry: bool
    price: float | None


@dataclass
class Candles:
    """One timeframe as plain lists."""

    open: list[float]
    high: list[float]
    low: list[float]
    close: list[float]
    volume: list[float]


def prefilter(h1: Candles, p: SignalParams) -> list[RefCondition]:
    nb, lb = p.prefilter_bars, p.prefilter_volume_lookback
    count = len(h1.close)
    out: list[RefCondition] = []
    if count < nb:
        out.append(RefCondition("H1", False, {"max_rise": None, "min_rise": p.prefilter_high_pct}))
        out.append(RefCondition("H2", False, {"open_first": None, "close_last": None}))
    else:
        first = count - nb
        best = None
        hit = False
        for j in range(first, count):
            if h1.open[j] > 0:
                rise = (h1.high[j] - h1.open[j]) / h1.open[j]
                if best is None or rise > best:
                    best = rise
                if ratio_at_least(rise, p.prefilter_high_pct):
                    hit = True
        out.append(RefCondition("H1", hit, {"max_rise": best, "min_rise": p.prefilter_high_pct}))
        out.append(
            RefCondition(
                "H2",
                h1.close[count - 1] > h1.open[first],
                {"open_first": h1.open[first], "close_last": h1.close[count - 1]},
            )
        )
    if count < nb + lb:
        out.append(
            RefCondition(
                "H3",
                False,
                {"volume_mean": None, "volume_mean_before": None, "ratio": None, "min_ratio": p.prefilter_volume_ratio},
            )
        )
    else:
        recent = sum(h1.volume[count - nb :]) / nb
        before = sum(h1.volume[count - nb - lb : count - nb]) / lb
        out.append(
            RefCondition(
                "H3",
                at_least(recent, p.prefilter_volume_ratio * before),
                {
                    "volume_mean": recent,
                    "volume_mean_before": before,
                    "ratio": recent / before if before > 0 else None,
                    "min_ratio": p.prefilter_volume_ratio,
                },
            )
        )
    if count < nb:
        out.append(RefCondition("H4", False, {"bullish": None, "min_bullish": p.prefilter_min_bullish}))
    else:
        bullish = 0
        for j in range(count - nb, count):
            if h1.close[j] > h1.open[j]:
                bullish += 1
        out.append(
            RefCondition(
                "H4",
                bullish >= p.prefilter_min_bullish,
                {"bullish": bullish, "min_bullish": p.prefilter_min_bullish},
            )
        )
    return out


def strategy_1m(m1: Candles, d1: Candles, p: SignalParams) -> list[RefCondition]:
    c = m1.close
    last = len(c) - 1
    mid_n, long_n, short_n, fast_n = p.ma_mid, p.ma_long, p.ma_short, p.ma_fast
    mid, long_, fast = moving_average(c, mid_n, last), moving_average(c, long_n, last), moving_average(c, fast_n, last)
    short = moving_average(c, short_n, last)
    look = p.cross_lookback + 1
    golden = bars_since_cross(ma_tail(c, mid_n, look), ma_tail(c, long_n, look), p.cross_lookback, True)
    up_f = band_tail(c, p.bb_fast_n, p.bb_fast_k, look)
    up_s = band_tail(c, p.bb_slow_n, p.bb_slow_k, look)
    bb_cross = bars_since_cross(up_f, up_s, p.cross_lookback, True)
    bb_disp = disparity(up_f[-1], up_s[-1])
    dl = p.dead_cross_lookback + 1
    dead = bars_since_cross(ma_tail(c, short_n, dl), ma_tail(c, mid_n, dl), p.dead_cross_lookback, False)
    spread = (mid - long_) / long_ if mid is not None and long_ is not None and long_ > 0 else None

    trend_up = above(mid, long_)
    fast_under = below(fast, mid)
    prev_o = m1.open[last - 1] if last >= 1 else None
    prev_c = m1.close[last - 1] if last >= 1 else None
    new_o = m1.open[last] if last >= 0 else None
    new_c = m1.close[last] if last >= 0 else None
    prev_bear = prev_o is not None and prev_c is not None and prev_c < prev_o
    new_bear = new_o is not None and new_c is not None and new_c < new_o

    days = min(len(d1.open), p.m6_days)
    max_rise = None
    surge = False
    if days >= p.m6_days:
        for j in range(len(d1.open) - days, len(d1.open)):
            if d1.open[j] > 0:
                r = (d1.high[j] - d1.open[j]) / d1.open[j]
                max_rise = r if max_rise is None else max(max_rise, r)
                surge = surge or ratio_at_least(r, p.m6_daily_surge)

    L = f"ma{long_n}"
    M = f"ma{mid_n}"
    S = f"ma{short_n}"
    F = f"ma{fast_n}"
    BF, BS = band_keys(p)
    return [
        RefCondition(
            "M1",
            trend_up or golden is not None,
            {M: mid, L: long_, "cross_bars_ago": golden, "lookback": p.cross_lookback},
        ),
        RefCondition(
            "M2",
            ratio_at_least(spread, p.m2_min_spread),
            {M: mid, L: long_, "spread": spread, "min_spread": p.m2_min_spread},
        ),
        RefCondition(
            "M3",
            bb_cross is not None or ratio_at_most(bb_disp, p.m3_max_disp),
            {
                BF: up_f[-1],
                BS: up_s[-1],
                "disp": bb_disp,
                "max_disp": p.m3_max_disp,
                "cross_bars_ago": bb_cross,
                "lookback": p.cross_lookback,
            },
        ),
        RefCondition(
            "M4", dead is not None, {S: short, M: mid, "cross_bars_ago": dead, "lookback": p.dead_cross_lookback}
        ),
        RefCondition(
            "M5",
            trend_up and fast_under and prev_bear,
            {F: fast, M: mid, L: long_, "open": prev_o, "close": prev_c, "bearish": prev_bear},
        ),
        RefCondition("M6", surge, {"max_rise": max_rise, "min_rise": p.m6_daily_surge, "days": days}),
        RefCondition(
            "M7",
            trend_up and fast_under and new_bear,
            {F: fast, M: mid, L: long_, "open": new_o, "close": new_c, "bearish": new_bear},
        ),
    ]


def strategy_3m(m3: Candles, p: SignalParams) -> list[RefCondition]:
    c = m3.close
    last = len(c) - 1
    cl, dl, fl = p.cross_lookback, p.dead_cross_lookback, p.fast_cross_lookback
    mid_t, long_t = ma_tail(c, p.ma_mid, cl + 1), ma_tail(c, p.ma_long, cl + 1)
    golden = bars_since_cross(mid_t, long_t, cl, True)
    up_f, up_s = band_tail(c, p.bb_fast_n, p.bb_fast_k, cl + 1), band_tail(c, p.bb_slow_n, p.bb_slow_k, cl + 1)
    bb_cross = bars_since_cross(up_f, up_s, cl, True)
    bb_disp = disparity(up_f[-1], up_s[-1])
    dead = bars_since_cross(ma_tail(c, p.ma_short, dl + 1), ma_tail(c, p.ma_mid, dl + 1), dl, False)
    fast_cross = bars_since_cross(ma_tail(c, p.ma_fast, fl + 1), ma_tail(c, p.ma_short, fl + 1), fl, True)
    fast, long_ = moving_average(c, p.ma_fast, last), moving_average(c, p.ma_long, last)
    mid, short = moving_average(c, p.ma_mid, last), moving_average(c, p.ma_short, last)
    fl_disp = disparity(fast, long_)

    L, M, S, F = f"ma{p.ma_long}", f"ma{p.ma_mid}", f"ma{p.ma_short}", f"ma{p.ma_fast}"
    BF, BS = band_keys(p)
    return [
        RefCondition("T1", golden is not None, {M: mid, L: long_, "cross_bars_ago": golden, "lookback": cl}),
        RefCondition(
            "T2",
            bb_cross is not None or ratio_at_most(bb_disp, p.t2_max_disp),
            {
                BF: up_f[-1],
                BS: up_s[-1],
                "disp": bb_disp,
                "max_disp": p.t2_max_disp,
                "cross_bars_ago": bb_cross,
                "lookback": cl,
            },
        ),
        RefCondition("T3", dead is not None, {S: short, M: mid, "cross_bars_ago": dead, "lookback": dl}),
        RefCondition(
            "T4",
            above(fast, long_) or ratio_at_most(fl_disp, p.t4_max_disp),
            {F: fast, L: long_, "disp": fl_disp, "max_disp": p.t4_max_disp},
        ),
        RefCondition("T5", fast_cross is not None, {F: fast, S: short, "cross_bars_ago": fast_cross, "lookback": fl}),
    ]


def filter_15m(m15: Candles, p: SignalParams) -> list[RefCondition]:
    c = m15.close
    last = len(c) - 1
    mid, long_ = moving_average(c, p.ma_mid, last), moving_average(c, p.ma_long, last)
    fast = moving_average(c, p.ma_fast, last)
    up_f, up_s = upper_band(c, p.bb_fast_n, p.bb_fast_k, last), upper_band(c, p.bb_slow_n, p.bb_slow_k, last)
    ml_disp, fl_disp = disparity(mid, long_), disparity(fast, long_)
    shorts = [moving_average(c, p.ma_short, last - j) if last - j >= 0 else None for j in range(p.f4_falling_bars + 1)]
    falling = all(below(shorts[j], shorts[j + 1]) for j in range(p.f4_falling_bars))

    L, M, S, F = f"ma{p.ma_long}", f"ma{p.ma_mid}", f"ma{p.ma_short}", f"ma{p.ma_fast}"
    f4_values: dict[str, Value] = {f"{S}[-{j + 1}]": shorts[j] for j in range(p.f4_falling_bars + 1)}
    f4_values["bars"] = p.f4_falling_bars
    return [
        RefCondition(
            "F1",
            above(mid, long_) or (below(mid, long_) and ratio_at_most(ml_disp, p.f1_max_disp)),
            {M: mid, L: long_, "disp": ml_disp, "max_disp": p.f1_max_disp},
        ),
        RefCondition(
            "F2",
            above(fast, long_) or ratio_at_most(fl_disp, p.f2_max_disp),
            {F: fast, L: long_, "disp": fl_disp, "max_disp": p.f2_max_disp},
        ),
        RefCondition("F3", above(up_f, up_s), dict(zip(band_keys(p), (up_f, up_s), strict=True))),
        RefCondition("F4", falling, f4_values),
    ]


def evaluate(frames: dict[str, Candles], p: SignalParams) -> RefReport:
    pre = prefilter(frames["1h"], p)
    m1 = strategy_1m(frames["1m"], frames["1d"], p)
    m3 = strategy_3m(frames["3m"], p)
    f15 = filter_15m(frames["15m"], p)
    pre_ok = all(c.ok for c in pre)
    s1 = len([c for c in m1 if c.ok]) >= p.min_1m_conditions
    s3 = all(c.ok for c in m3)
    f = len([c for c in f15 if c.ok]) >= p.min_15m_conditions
    closes = frames["1m"].close
    return RefReport(
        prefilter=pre,
        m1=m1,
        m3=m3,
        f15=f15,
        prefilter_ok=pre_ok,
        strategy_1m_ok=s1,
        strategy_3m_ok=s3,
        filter_15m_ok=f,
        entry=pre_ok and (s1 or s3) and f,
        price=closes[-1] if closes else None,
    )


# ------------------------------------------------------------------ comparing with the core's report
def candles_of(series) -> Candles:  # type: ignore[no-untyped-def]
    """Plain lists from an ``OHLCV`` (the reference never sees numpy)."""
    return Candles(
        series.open.tolist(), series.high.tolist(), series.low.tolist(), series.close.tolist(), series.volume.tolist()
    )


def _same_value(a: Value, b: Value) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    # The core sums in another order than sum(): agree to far better than any tick.
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)


def mismatches(report, ref: RefReport) -> list[str]:  # type: ignore[no-untyped-def]
    """Every difference between a ``SignalReport`` and the reference (empty when they agree)."""
    out: list[str] = []
    for group in ("prefilter", "m1", "m3", "f15"):
        got, want = getattr(report, group), getattr(ref, group)
        if [c.name for c in got] != [c.name for c in want]:
            out.append(f"{group}: names {[c.name for c in got]} != {[c.name for c in want]}")
            continue
        for g, w in zip(got, want, strict=True):
            if g.ok != w.ok:
                out.append(f"{g.name}: ok {g.ok} != reference {w.ok} (core {g.values}, reference {w.values})")
            if set(g.values) != set(w.values):
                out.append(f"{g.name}: value keys {sorted(g.values)} != {sorted(w.values)}")
                continue
            for key, value in g.values.items():
                if type(value) is not type(w.values[key]) and not (
                    isinstance(value, float) and isinstance(w.values[key], float | int)
                ):
                    out.append(f"{g.name}.{key}: type {type(value).__name__} != {type(w.values[key]).__name__}")
                elif not _same_value(value, w.values[key]):
                    out.append(f"{g.name}.{key}: {value!r} != reference {w.values[key]!r}")
    for flag in ("prefilter_ok", "strategy_1m_ok", "strategy_3m_ok", "filter_15m_ok", "entry"):
        if getattr(report, flag) != getattr(ref, flag):
            out.append(f"{flag}: {getattr(report, flag)} != reference {getattr(ref, flag)}")
    if not _same_value(report.price, ref.price):
        out.append(f"price: {report.price} != reference {ref.price}")
    return out


# ------------------------------------------------------------------ building inputs
def frame(
    tf: str,
    at_ms: int,
    close: list[float],
    *,
    open_: list[float] | None = None,
    high: list[float] | None = None,
    low: list[float] | None = None,
    volume: list[float] | None = None,
) -> OHLCV:
    """Candles of one timeframe whose last bar contains the minute ``at_ms`` (SPEC 1).

    Missing columns default to neutral candles: open = close, high/low = the
    larger/smaller of the two, volume 1.
    """
    n = len(close)
    o = list(close) if open_ is None else open_
    h = [max(a, b) for a, b in zip(o, close, strict=True)] if high is None else high
    lo = [min(a, b) for a, b in zip(o, close, strict=True)] if low is None else low
    v = [1.0] * n if volume is None else volume
    step = TIMEFRAME_MS[tf]
    last_open = at_ms // step * step
    times = np.array([last_open - (n - 1 - i) * step for i in range(n)], dtype=np.int64)
    as_f = lambda xs: np.asarray(xs, dtype=np.float64)  # noqa: E731
    return OHLCV(times, as_f(o), as_f(h), as_f(lo), as_f(close), as_f(v))
