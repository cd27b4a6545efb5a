"""The vectorised signal core against the plain-loop reference, on random candles.

Every condition (H1-H4, M1-M7, T1-T5, F1-F4), every value behind it and every
flag of the report is compared. Small random periods make crosses, ties and
"too few candles" frequent; one test also runs the SPEC's default periods.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core import signal_reference as ref
from trading.core.config import SignalParams
from trading.core.series import OHLCV
from trading.core.signals import FRAMES, evaluate, evaluate_prefilter

AT_MS = 1_747_958_400_000 + (13 * 60 + 37) * 60_000  # 2025-05-23 13:37 UTC: not on an hour or day boundary


# ------------------------------------------------------------------ generators
@st.composite
def small_params(draw: st.DrawFn) -> SignalParams:
    fast = draw(st.integers(1, 3))
    short = fast + draw(st.integers(1, 3))
    mid = short + draw(st.integers(1, 4))
    long_ = mid + draw(st.integers(1, 6))
    bars = draw(st.integers(1, 5))
    disp = st.sampled_from([0.0, 0.005, 0.02, 0.05])
    return SignalParams(
        prefilter_bars=bars,
        prefilter_high_pct=draw(st.sampled_from([0.005, 0.03])),
        prefilter_volume_ratio=draw(st.sampled_from([0.0, 1.0, 1.5])),
        prefilter_volume_lookback=draw(st.integers(1, 6)),
        prefilter_min_bullish=draw(st.integers(0, bars)),
        ma_fast=fast,
        ma_short=short,
        ma_mid=mid,
        ma_long=long_,
        bb_fast_n=draw(st.integers(2, 8)),
        bb_fast_k=draw(st.sampled_from([1.0, 2.0])),
        bb_slow_n=draw(st.integers(2, 12)),
        bb_slow_k=draw(st.sampled_from([0.5, 1.5])),
        cross_lookback=draw(st.integers(1, 12)),
        dead_cross_lookback=draw(st.integers(1, 8)),
        fast_cross_lookback=draw(st.integers(1, 5)),
        min_1m_conditions=draw(st.integers(1, 7)),
        m2_min_spread=draw(st.sampled_from([0.0, 0.005, 0.02])),
        m3_max_disp=draw(disp),
        m6_daily_surge=draw(st.sampled_from([0.02, 0.15])),
        m6_days=draw(st.integers(1, 5)),
        t2_max_disp=draw(disp),
        t4_max_disp=draw(disp),
        min_15m_conditions=draw(st.integers(1, 4)),
        f1_max_disp=draw(disp),
        f2_max_disp=draw(disp),
        f4_falling_bars=draw(st.integers(1, 4)),
    )


_GRID_BAR = st.tuples(
    st.sampled_from([-0.02, -0.01, 0.0, 0.0, 0.01, 0.02, 0.03]),  # close move
    st.sampled_from([0.0, 0.0, -0.005, 0.005]),  # open versus the previous close
    st.sampled_from([0.0, 0.01, 0.04, 0.2]),  # upper wick
    st.sampled_from([0.0, 1.0, 3.0, 10.0, 1234.5]),  # volume
)
_FLOAT_BAR = st.tuples(
    st.floats(-0.03, 0.03, allow_nan=False),
    st.floats(-0.005, 0.005, allow_nan=False),
    st.sampled_from([0.0, 0.01, 0.04, 0.2]),
    st.floats(0, 1e6, allow_nan=False),
)


@st.composite
def candles(draw: st.DrawFn, tf: str, max_len: int) -> OHLCV:
    """Random candles on a tick-like grid (exact ties likely) or with float moves (ties up to rounding)."""
    bars = draw(st.lists(_GRID_BAR if draw(st.booleans()) else _FLOAT_BAR, max_size=max_len))
    price = draw(st.sampled_from([0.0123, 1.0, 101.3, 64_000.0]))
    closes, opens, highs, lows, vols = [], [], [], [], []
    for move, gap, wick, vol in bars:
        o = price * (1 + gap)
        c = price * (1 + move)
        opens.append(o)
        closes.append(c)
        highs.append(max(o, c) * (1 + wick))
        lows.append(min(o, c) * 0.99)
        vols.append(vol)
        price = c
    return ref.frame(tf, AT_MS, closes, open_=opens, high=highs, low=lows, volume=vols)


@st.composite
def cases(draw: st.DrawFn) -> tuple[SignalParams, dict[str, OHLCV]]:
    p = draw(small_params())
    longest = max(p.ma_long, p.bb_fast_n, p.bb_slow_n) + max(p.cross_lookback, p.dead_cross_lookback) + 3
    frames = {
        "1m": draw(candles("1m", longest)),
        "3m": draw(candles("3m", longest)),
        "15m": draw(candles("15m", longest)),
        "1h": draw(candles("1h", p.prefilter_bars + p.prefilter_volume_lookback + 2)),
        "1d": draw(candles("1d", p.m6_days + 2)),
    }
    return p, frames


def _check(symbol: str, frames: dict[str, OHLCV], p: SignalParams) -> object:
    report = evaluate(symbol, frames, p, at_ms=AT_MS)
    want = ref.evaluate({tf: ref.candles_of(frames[tf]) for tf in FRAMES}, p)
    problems = ref.mismatches(report, want)
    assert not problems, "\n".join(problems)
    assert report.symbol == symbol and report.at_ms == AT_MS
    return report


# ------------------------------------------------------------------ property tests
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=cases())
def test_report_matches_reference_on_random_candles(case: tuple[SignalParams, dict[str, OHLCV]]) -> None:
    p, frames = case
    _check("RANDUSDT", frames, p)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(p=small_params(), h1=candles("1h", 16))
def test_prefilter_matches_reference(p: SignalParams, h1: OHLCV) -> None:
    ok, conds = evaluate_prefilter(h1, p)
    want = ref.prefilter(ref.candles_of(h1), p)
    assert ok == all(c.ok for c in want)
    for got, exp in zip(conds, want, strict=True):
        assert got.name == exp.name and got.ok == exp.ok, (got, exp)
        assert set(got.values) == set(exp.values)


def _walk(rng: np.random.Generator, n: int, level: float, vol: float) -> dict[str, list[float]]:
    """A random walk with regime changes (so crosses of long averages happen) and real wicks."""
    drift = np.repeat(rng.normal(0, vol, n // 50 + 1), 50)[:n]
    close = level * np.exp(np.cumsum(drift + rng.normal(0, vol, n)))
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + rng.normal(0, vol / 4, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol, n)))
    volume = rng.gamma(2.0, 100.0, n) * (rng.random(n) > 0.05)
    return {"close": close.tolist(), "open_": open_.tolist(), "high": high.tolist(), "low": low.tolist(),
            "volume": volume.tolist()}  # fmt: skip


def _frames_default_sizes(rng: np.random.Generator, sizes: dict[str, int], vol: float) -> dict[str, OHLCV]:
    level = float(rng.choice([0.0123, 2.5, 64_000.0]))
    return {tf: ref.frame(tf, AT_MS, **_walk(rng, n, level, vol)) for tf, n in sizes.items()}


def test_default_periods_match_reference_on_random_walks() -> None:
    """The SPEC's periods (MA480, BB480, 150-bar look-back) on long random walks, some too short on purpose."""
    p = SignalParams()
    rng = np.random.default_rng(20251029)
    seen: Counter[str] = Counter()
    for case in range(24):
        if case % 6 == 5:  # a young listing: every long-window condition lacks candles
            sizes = {"1m": 300, "3m": 100, "15m": 20, "1h": 5, "1d": 1}
        else:
            sizes = {"1m": 760, "3m": 700, "15m": 520, "1h": 30, "1d": 9}
        frames = _frames_default_sizes(rng, sizes, vol=float(rng.choice([0.001, 0.004, 0.02])))
        report = _check("WALKUSDT", frames, p)
        for c in report.conditions:  # type: ignore[attr-defined]
            seen[f"{c.name}={c.ok}"] += 1
    # the walks exercise both outcomes of the long-window conditions, not just "false"
    names = ["H1", "H2", "H3", "H4", "M1", "M2", "M3", "M4", "M5", "M7", "T1", "T2", "T3", "T4", "T5"]
    for name in [*names, "F1", "F2", "F3", "F4"]:
        assert seen[f"{name}=True"] and seen[f"{name}=False"], (name, seen)


def test_seeded_sweep_covers_both_outcomes_of_every_condition() -> None:
    """Many seeded cases with small periods: every condition and flag is seen true and false, all matching."""
    p = SignalParams(
        prefilter_bars=3,
        prefilter_volume_lookback=4,
        prefilter_high_pct=0.01,
        ma_fast=2,
        ma_short=3,
        ma_mid=5,
        ma_long=8,
        bb_fast_n=4,
        bb_slow_n=7,
        cross_lookback=6,
        dead_cross_lookback=4,
        fast_cross_lookback=3,
        min_1m_conditions=4,
        m6_daily_surge=0.03,
        m6_days=3,
        min_15m_conditions=2,
    )
    rng = np.random.default_rng(7)
    seen: Counter[str] = Counter()
    for _ in range(600):
        sizes = {"1m": 24, "3m": 24, "15m": 24, "1h": 9, "1d": 4}
        frames = _frames_default_sizes(rng, sizes, vol=float(rng.choice([0.003, 0.01, 0.03])))
        report = _check("SWEEPUSDT", frames, p)
        for c in report.conditions:  # type: ignore[attr-defined]
            seen[f"{c.name}={c.ok}"] += 1
        for flag in ("prefilter_ok", "strategy_1m_ok", "strategy_3m_ok", "filter_15m_ok", "entry"):
            seen[f"{flag}={getattr(report, flag)}"] += 1
    names = [f"H{i}" for i in range(1, 5)] + [f"M{i}" for i in range(1, 8)]
    names += [f"T{i}" for i in range(1, 6)] + [f"F{i}" for i in range(1, 5)]
    names += ["prefilter_ok", "strategy_1m_ok", "strategy_3m_ok", "filter_15m_ok", "entry"]
    missing = [f"{n}={v}" for n in names for v in (True, False) if not seen[f"{n}={v}"]]
    assert not missing, missing
