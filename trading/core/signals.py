"""Entry signals: the 1h pre-filter (SPEC 2) and the entry conditions (SPEC 3).

``evaluate`` reads the five timeframes of one symbol at one 1m close and
returns a ``SignalReport`` holding every condition with the numbers behind
it; the scanner acts on ``report.entry``, ``/why`` shows the whole report.

Readings of the SPEC taken here (all from SPEC 1 and 3 **Interpretation**):
- "golden cross" without a window (M5, M7, F1) is the state ``MA80 > MA480``
  at the newest bar; "BB line" is the upper band; F3 compares the upper
  bands at the newest bar;
- M5 looks at the candle before the newest, M7 at the newest;
- a cross "within N bars" counts at any of the last N bars where the two
  values at that bar and at the bar before are computable (a new listing
  whose MA480 exists for 20 bars can cross in those 20 bars);
- comparisons of computed values use ``indicators.TIE_TOLERANCE``; raw
  candle prices (bullish/bearish candles, H2) are compared exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from trading.core.config import SignalParams
from trading.core.indicators import (
    RollingCloses,
    cross_down_bars_ago,
    cross_up_bars_ago,
    disparity,
    falling_each,
    ge,
    gt,
    lt,
    ratio_ge,
    ratio_le,
    spread,
)
from trading.core.ladder import RunnerMA
from trading.core.reports import Condition, SignalReport
from trading.core.series import OHLCV, TIMEFRAME_MS

FRAMES = ("1m", "3m", "15m", "1h", "1d")


class SignalInputError(ValueError):
    """Frames that do not describe the minute being evaluated (a caller's bug, not a market state)."""


def _f(x: float) -> float | None:
    """A report value: a plain float, None when not computable."""
    x = float(x)
    return None if math.isnan(x) else x


# ------------------------------------------------------------------ plan (per SignalParams, cached)
@dataclass(frozen=True, slots=True)
class _Plan:
    """What each timeframe needs, derived once per parameter set."""

    cross_m: int  # tail length for "cross within cross_lookback"
    dead_m: int
    fast_m: int
    falling_m: int
    span_1m: int  # closes read per timeframe
    span_3m: int
    span_15m: int
    fast: str  # value labels, e.g. "ma5"
    short: str
    mid: str
    long: str
    bbf: str
    bbs: str
    notes: Mapping[str, str]


def _pct(x: float) -> str:
    return f"{x * 100:g}%"


def _span(*needs: tuple[int, int]) -> int:
    return max(n + m - 1 for n, m in needs)


def _band_label(n: int, k: float, same_n: bool) -> str:
    """Value key of an upper band, e.g. "bb200_upper"; with the k too when both bands share n."""
    return f"bb{n}x{k:g}_upper" if same_n else f"bb{n}_upper"


@lru_cache(maxsize=32)
def _plan(p: SignalParams) -> _Plan:
    cm, dm, fm, km = p.cross_lookback + 1, p.dead_cross_lookback + 1, p.fast_cross_lookback + 1, p.f4_falling_bars + 1
    f, s, mi, lo = p.ma_fast, p.ma_short, p.ma_mid, p.ma_long
    bbf = f"BB({p.bb_fast_n},{p.bb_fast_k:g})"
    bbs = f"BB({p.bb_slow_n},{p.bb_slow_k:g})"
    golden = f"MA{mi} > MA{lo}"
    notes = {
        "H1": f"one of the last {p.prefilter_bars} 1h candles has (high - open) / open >= {_pct(p.prefilter_high_pct)}",
        "H2": f"close of the last 1h candle > open of the first of the last {p.prefilter_bars}",
        "H3": f"mean volume of the last {p.prefilter_bars} 1h candles >= {p.prefilter_volume_ratio:g} x the mean "
        f"of the {p.prefilter_volume_lookback} before them",
        "H4": f"at least {p.prefilter_min_bullish} of the last {p.prefilter_bars} 1h candles are bullish",
        "M1": f"1m {golden}, or golden cross MA{mi}/MA{lo} within {p.cross_lookback} bars",
        "M2": f"1m (MA{mi} - MA{lo}) / MA{lo} >= {_pct(p.m2_min_spread)}",
        "M3": f"1m golden cross of upper {bbf} over upper {bbs} within {p.cross_lookback} bars, "
        f"or their disparity <= {_pct(p.m3_max_disp)}",
        "M4": f"1m dead cross MA{s}/MA{mi} within {p.dead_cross_lookback} bars",
        "M5": f"1m {golden}, MA{f} < MA{mi} and the candle before the newest is bearish",
        "M6": f"one of the last {p.m6_days} 1d candles has (high - open) / open >= {_pct(p.m6_daily_surge)}",
        "M7": f"1m {golden}, MA{f} < MA{mi} and the newest candle is bearish",
        "T1": f"3m golden cross MA{mi}/MA{lo} within {p.cross_lookback} bars",
        "T2": f"3m golden cross of upper {bbf} over upper {bbs} within {p.cross_lookback} bars, "
        f"or their disparity <= {_pct(p.t2_max_disp)}",
        "T3": f"3m dead cross MA{s}/MA{mi} within {p.dead_cross_lookback} bars",
        "T4": f"3m MA{f} > MA{lo}, or disparity(MA{f}, MA{lo}) <= {_pct(p.t4_max_disp)}",
        "T5": f"3m golden cross MA{f}/MA{s} within {p.fast_cross_lookback} bars",
        "F1": f"15m {golden}, or MA{mi} < MA{lo} with disparity <= {_pct(p.f1_max_disp)}",
        "F2": f"15m MA{f} > MA{lo}, or disparity(MA{f}, MA{lo}) <= {_pct(p.f2_max_disp)}",
        "F3": f"15m upper {bbf} > upper {bbs} at the newest bar",
        "F4": f"15m MA{s} falling on each of the last {p.f4_falling_bars} bars",
    }
    bb_needs = ((p.bb_fast_n, cm), (p.bb_slow_n, cm))
    return _Plan(
        cross_m=cm,
        dead_m=dm,
        fast_m=fm,
        falling_m=km,
        span_1m=_span((lo, cm), (mi, max(cm, dm)), (s, dm), (f, 1), *bb_needs),
        span_3m=_span((lo, cm), (mi, max(cm, dm)), (s, max(dm, fm)), (f, fm), *bb_needs),
        span_15m=_span((lo, 1), (mi, 1), (s, km), (f, 1), (p.bb_fast_n, 1), (p.bb_slow_n, 1)),
        fast=f"ma{f}",
        short=f"ma{s}",
        mid=f"ma{mi}",
        long=f"ma{lo}",
        bbf=_band_label(p.bb_fast_n, p.bb_fast_k, p.bb_fast_n == p.bb_slow_n),
        bbs=_band_label(p.bb_slow_n, p.bb_slow_k, p.bb_fast_n == p.bb_slow_n),
        notes=notes,
    )


# ------------------------------------------------------------------ SPEC 2: 1h pre-filter
def evaluate_prefilter(h1: OHLCV, p: SignalParams) -> tuple[bool, tuple[Condition, ...]]:
    """H1-H4 on the last ``prefilter_bars`` 1h candles (the in-progress one included)."""
    notes = _plan(p).notes
    nb, lb = p.prefilter_bars, p.prefilter_volume_lookback
    size = len(h1)
    enough = size >= nb
    if enough:
        # A handful of candles: plain floats are cheaper than numpy calls here.
        o = h1.open[size - nb :].tolist()
        h = h1.high[size - nb :].tolist()
        c = h1.close[size - nb :].tolist()
        rises = [(hi - op) / op for hi, op in zip(h, o, strict=True) if op > 0]
        max_rise = max(rises) if rises else None
        h1_ok = max_rise is not None and ratio_ge(max_rise, p.prefilter_high_pct)
        h2_ok = c[-1] > o[0]
        bullish = sum(1 for op, cl in zip(o, c, strict=True) if cl > op)
        h4_ok = bullish >= p.prefilter_min_bullish
        open_first, close_last = o[0], c[-1]
    else:
        max_rise = open_first = close_last = None
        bullish = None
        h1_ok = h2_ok = h4_ok = False

    mean_now = mean_before = ratio = None
    h3_ok = False
    if size >= nb + lb:
        vol = h1.volume[size - nb - lb :].tolist()
        mean_before = sum(vol[:lb]) / lb
        mean_now = sum(vol[lb:]) / nb
        ratio = mean_now / mean_before if mean_before > 0 else None
        h3_ok = ge(mean_now, p.prefilter_volume_ratio * mean_before)

    conds = (
        Condition("H1", h1_ok, {"max_rise": max_rise, "min_rise": p.prefilter_high_pct}, notes["H1"]),
        Condition("H2", h2_ok, {"open_first": open_first, "close_last": close_last}, notes["H2"]),
        Condition(
            "H3",
            h3_ok,
            {
                "volume_mean": mean_now,
                "volume_mean_before": mean_before,
                "ratio": ratio,
                "min_ratio": p.prefilter_volume_ratio,
            },
            notes["H3"],
        ),
        Condition("H4", h4_ok, {"bullish": bullish, "min_bullish": p.prefilter_min_bullish}, notes["H4"]),
    )
    return h1_ok and h2_ok and h3_ok and h4_ok, conds


# ------------------------------------------------------------------ SPEC 3: 1m strategy
def _strategy_1m(m1: OHLCV, d1: OHLCV, p: SignalParams, plan: _Plan) -> tuple[Condition, ...]:
    notes = plan.notes
    cm, dm = plan.cross_m, plan.dead_m
    rc = RollingCloses(m1.close, plan.span_1m)
    ma_mid = rc.sma(p.ma_mid, max(cm, dm))
    ma_long = rc.sma(p.ma_long, cm)
    ma_short = rc.sma(p.ma_short, dm)
    fast = float(rc.sma(p.ma_fast, 1)[0])
    bbf = rc.upper_band(p.bb_fast_n, p.bb_fast_k, cm)
    bbs = rc.upper_band(p.bb_slow_n, p.bb_slow_k, cm)
    mid, long_ = float(ma_mid[-1]), float(ma_long[-1])
    bbf_now, bbs_now = float(bbf[-1]), float(bbs[-1])

    above = gt(mid, long_)
    golden = cross_up_bars_ago(ma_mid[-cm:], ma_long)
    m1_ok = above or golden is not None

    spr = spread(mid, long_)
    m2_ok = ratio_ge(spr, p.m2_min_spread)

    bb_cross = cross_up_bars_ago(bbf, bbs)
    bb_disp = disparity(bbf_now, bbs_now)
    m3_ok = bb_cross is not None or ratio_le(bb_disp, p.m3_max_disp)

    dead = cross_down_bars_ago(ma_short, ma_mid[-dm:])
    m4_ok = dead is not None

    fast_below = lt(fast, mid)
    size = len(m1)
    prev_o, prev_c = (float(m1.open[-2]), float(m1.close[-2])) if size >= 2 else (None, None)
    new_o, new_c = (float(m1.open[-1]), float(m1.close[-1])) if size >= 1 else (None, None)
    prev_bearish = prev_o is not None and prev_c is not None and prev_c < prev_o
    new_bearish = new_o is not None and new_c is not None and new_c < new_o
    m5_ok = above and fast_below and prev_bearish
    m7_ok = above and fast_below and new_bearish

    days = min(len(d1), p.m6_days)
    max_rise = None
    m6_ok = False
    if days >= p.m6_days:
        o = d1.open[len(d1) - days :].tolist()
        h = d1.high[len(d1) - days :].tolist()
        rises = [(hi - op) / op for hi, op in zip(h, o, strict=True) if op > 0]
        max_rise = max(rises) if rises else None
        m6_ok = max_rise is not None and ratio_ge(max_rise, p.m6_daily_surge)

    mid_v, long_v, fast_v = _f(mid), _f(long_), _f(fast)
    return (
        Condition(
            "M1",
            m1_ok,
            {plan.mid: mid_v, plan.long: long_v, "cross_bars_ago": golden, "lookback": p.cross_lookback},
            notes["M1"],
        ),
        Condition(
            "M2",
            m2_ok,
            {plan.mid: mid_v, plan.long: long_v, "spread": _f(spr), "min_spread": p.m2_min_spread},
            notes["M2"],
        ),
        Condition(
            "M3",
            m3_ok,
            {
                plan.bbf: _f(bbf_now),
                plan.bbs: _f(bbs_now),
                "disp": _f(bb_disp),
                "max_disp": p.m3_max_disp,
                "cross_bars_ago": bb_cross,
                "lookback": p.cross_lookback,
            },
            notes["M3"],
        ),
        Condition(
            "M4",
            m4_ok,
            {plan.short: _f(ma_short[-1]), plan.mid: mid_v, "cross_bars_ago": dead, "lookback": p.dead_cross_lookback},
            notes["M4"],
        ),
        Condition(
            "M5",
            m5_ok,
            {
                plan.fast: fast_v,
                plan.mid: mid_v,
                plan.long: long_v,
                "open": prev_o,
                "close": prev_c,
                "bearish": prev_bearish,
            },
            notes["M5"],
        ),
        Condition("M6", m6_ok, {"max_rise": max_rise, "min_rise": p.m6_daily_surge, "days": days}, notes["M6"]),
        Condition(
            "M7",
            m7_ok,
            {
                plan.fast: fast_v,
                plan.mid: mid_v,
                plan.long: long_v,
                "open": new_o,
                "close": new_c,
                "bearish": new_bearish,
            },
            notes["M7"],
        ),
    )


# ------------------------------------------------------------------ SPEC 3: 3m strategy
def _strategy_3m(m3: OHLCV, p: SignalParams, plan: _Plan) -> tuple[Condition, ...]:
    notes = plan.notes
    cm, dm, fm = plan.cross_m, plan.dead_m, plan.fast_m
    rc = RollingCloses(m3.close, plan.span_3m)
    ma_mid = rc.sma(p.ma_mid, max(cm, dm))
    ma_long = rc.sma(p.ma_long, cm)
    ma_short = rc.sma(p.ma_short, max(dm, fm))
    ma_fast = rc.sma(p.ma_fast, fm)
    bbf = rc.upper_band(p.bb_fast_n, p.bb_fast_k, cm)
    bbs = rc.upper_band(p.bb_slow_n, p.bb_slow_k, cm)
    mid, long_, short, fast = float(ma_mid[-1]), float(ma_long[-1]), float(ma_short[-1]), float(ma_fast[-1])
    bbf_now, bbs_now = float(bbf[-1]), float(bbs[-1])

    golden = cross_up_bars_ago(ma_mid[-cm:], ma_long)
    bb_cross = cross_up_bars_ago(bbf, bbs)
    bb_disp = disparity(bbf_now, bbs_now)
    t2_ok = bb_cross is not None or ratio_le(bb_disp, p.t2_max_disp)
    dead = cross_down_bars_ago(ma_short[-dm:], ma_mid[-dm:])
    fl_disp = disparity(fast, long_)
    t4_ok = gt(fast, long_) or ratio_le(fl_disp, p.t4_max_disp)
    fast_cross = cross_up_bars_ago(ma_fast, ma_short[-fm:])

    mid_v, long_v = _f(mid), _f(long_)
    return (
        Condition(
            "T1",
            golden is not None,
            {plan.mid: mid_v, plan.long: long_v, "cross_bars_ago": golden, "lookback": p.cross_lookback},
            notes["T1"],
        ),
        Condition(
            "T2",
            t2_ok,
            {
                plan.bbf: _f(bbf_now),
                plan.bbs: _f(bbs_now),
                "disp": _f(bb_disp),
                "max_disp": p.t2_max_disp,
                "cross_bars_ago": bb_cross,
                "lookback": p.cross_lookback,
            },
            notes["T2"],
        ),
        Condition(
            "T3",
            dead is not None,
            {plan.short: _f(short), plan.mid: mid_v, "cross_bars_ago": dead, "lookback": p.dead_cross_lookback},
            notes["T3"],
        ),
        Condition(
            "T4",
            t4_ok,
            {plan.fast: _f(fast), plan.long: long_v, "disp": _f(fl_disp), "max_disp": p.t4_max_disp},
            notes["T4"],
        ),
        Condition(
            "T5",
            fast_cross is not None,
            {
                plan.fast: _f(fast),
                plan.short: _f(short),
                "cross_bars_ago": fast_cross,
                "lookback": p.fast_cross_lookback,
            },
            notes["T5"],
        ),
    )


# ------------------------------------------------------------------ SPEC 3: 15m filter
def _filter_15m(m15: OHLCV, p: SignalParams, plan: _Plan) -> tuple[Condition, ...]:
    notes = plan.notes
    rc = RollingCloses(m15.close, plan.span_15m)
    mid = float(rc.sma(p.ma_mid, 1)[0])
    long_ = float(rc.sma(p.ma_long, 1)[0])
    fast = float(rc.sma(p.ma_fast, 1)[0])
    short_tail = rc.sma(p.ma_short, plan.falling_m)
    bbf = float(rc.upper_band(p.bb_fast_n, p.bb_fast_k, 1)[0])
    bbs = float(rc.upper_band(p.bb_slow_n, p.bb_slow_k, 1)[0])

    ml_disp = disparity(mid, long_)
    f1_ok = gt(mid, long_) or (lt(mid, long_) and ratio_le(ml_disp, p.f1_max_disp))
    fl_disp = disparity(fast, long_)
    f2_ok = gt(fast, long_) or ratio_le(fl_disp, p.f2_max_disp)
    f3_ok = gt(bbf, bbs)
    f4_ok = falling_each(short_tail)
    # F4 shows MA20 at [-1], [-2], ... newest first, as the SPEC writes it.
    f4_values: dict[str, float | int | bool | None] = {
        f"{plan.short}[-{i + 1}]": _f(v) for i, v in enumerate(short_tail[::-1].tolist())
    }
    f4_values["bars"] = p.f4_falling_bars

    long_v = _f(long_)
    return (
        Condition(
            "F1",
            f1_ok,
            {plan.mid: _f(mid), plan.long: long_v, "disp": _f(ml_disp), "max_disp": p.f1_max_disp},
            notes["F1"],
        ),
        Condition(
            "F2",
            f2_ok,
            {plan.fast: _f(fast), plan.long: long_v, "disp": _f(fl_disp), "max_disp": p.f2_max_disp},
            notes["F2"],
        ),
        Condition("F3", f3_ok, {plan.bbf: _f(bbf), plan.bbs: _f(bbs)}, notes["F3"]),
        Condition("F4", f4_ok, f4_values, notes["F4"]),
    )


# ------------------------------------------------------------------ the whole evaluation
def _check_frames(frames: Mapping[str, OHLCV], at_ms: int) -> None:
    missing = [tf for tf in FRAMES if tf not in frames]
    if missing:
        raise SignalInputError(f"frames lack timeframe(s) {', '.join(missing)}; expected {', '.join(FRAMES)}")
    for tf in FRAMES:
        series = frames[tf]
        if len(series) == 0:
            continue
        last = int(series.open_time[-1])
        if tf == "1m":
            if last != at_ms:
                raise SignalInputError(f"1m candles end at {last}, expected the minute evaluated ({at_ms})")
        elif not last <= at_ms < last + TIMEFRAME_MS[tf]:
            raise SignalInputError(
                f"{tf} candles end with the bar opened at {last}, which does not contain the minute {at_ms}"
            )


def evaluate(
    symbol: str, frames: Mapping[str, OHLCV], p: SignalParams, *, at_ms: int, full: bool = True
) -> SignalReport:
    """SPEC 2-3 for one symbol at the close of the 1m candle opened at ``at_ms``.

    ``frames`` maps "1m", "3m", "15m", "1h" and "1d" to candles ending with the
    bar that contains that minute (SPEC 1). With ``full=False`` a failed
    pre-filter ends the evaluation (the scanner's fast path).
    Raises ``SignalInputError`` when a timeframe is missing or does not end at
    that minute; too few candles only make conditions false.
    """
    _check_frames(frames, at_ms)
    plan = _plan(p)
    m1 = frames["1m"]
    price = float(m1.close[-1]) if len(m1) else None
    pre_ok, pre = evaluate_prefilter(frames["1h"], p)
    if not pre_ok and not full:
        return SignalReport(symbol=symbol, at_ms=at_ms, prefilter=pre, price=price)

    c1 = _strategy_1m(m1, frames["1d"], p, plan)
    c3 = _strategy_3m(frames["3m"], p, plan)
    c15 = _filter_15m(frames["15m"], p, plan)
    s1 = sum(c.ok for c in c1) >= p.min_1m_conditions
    s3 = all(c.ok for c in c3)
    f15 = sum(c.ok for c in c15) >= p.min_15m_conditions
    return SignalReport(
        symbol=symbol,
        at_ms=at_ms,
        prefilter=pre,
        m1=c1,
        m3=c3,
        f15=c15,
        prefilter_ok=pre_ok,
        strategy_1m_ok=s1,
        strategy_3m_ok=s3,
        filter_15m_ok=f15,
        entry=pre_ok and (s1 or s3) and f15,
        price=price,
    )


# ------------------------------------------------------------------ runner exit input (SPEC 5)
def runner_ma(m3: OHLCV, fast: int, slow: int) -> RunnerMA | None:
    """3m MA(fast)/MA(slow) at the previous and the newest bar; None with too few candles."""
    if len(m3) < max(fast, slow) + 1:
        return None
    rc = RollingCloses(m3.close, max(fast, slow) + 1)
    f = rc.sma(fast, 2)
    s = rc.sma(slow, 2)
    return RunnerMA(fast_prev=float(f[0]), slow_prev=float(s[0]), fast_now=float(f[1]), slow_now=float(s[1]))


__all__ = ["FRAMES", "SignalInputError", "evaluate", "evaluate_prefilter", "runner_ma"]
