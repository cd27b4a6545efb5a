"""Indicators (SPEC 1) against plain loops, pandas rolling windows and the ``ta`` package."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ta.volatility import BollingerBands

from tests.unit.core import signal_reference as ref
from trading.core import indicators as ind

# ------------------------------------------------------------------ series generators
# Price-like series: a positive start and multiplicative steps of at most 5%, at any
# price level from 1e-6 (meme coins) to 1e5 (BTC). Steps drawn from a few values make
# flat stretches and exact ties likely; float steps make ties that only hold up to
# rounding.
_levels = st.sampled_from([1e-6, 0.0123, 1.0, 37.5, 101.3, 98_765.4])
_steps = st.one_of(
    st.lists(st.sampled_from([-0.01, 0.0, 0.0, 0.01, 0.02]), max_size=90),
    st.lists(st.floats(-0.05, 0.05, allow_nan=False), max_size=90),
)


@st.composite
def price_series(draw: st.DrawFn) -> np.ndarray:
    level = draw(_levels)
    steps = draw(_steps)
    out = [level]
    for s in steps:
        out.append(out[-1] * (1 + s))
    return np.asarray(out, dtype=np.float64)


@st.composite
def tick_series(draw: st.DrawFn) -> np.ndarray:
    """Prices on a tick grid (0.5, so sums are exact): many exact ties between averages."""
    ticks = draw(st.lists(st.integers(190, 210), max_size=80))
    return np.asarray(ticks, dtype=np.float64) * 0.5


def _close(a: float, b: float | None) -> bool:
    if b is None:
        return math.isnan(a)
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)


# ------------------------------------------------------------------ moving averages and bands
@settings(max_examples=300, deadline=None)
@given(x=st.one_of(price_series(), tick_series()), n=st.integers(1, 30), m=st.integers(1, 40))
def test_sma_tail_matches_plain_loop(x: np.ndarray, n: int, m: int) -> None:
    got = ind.sma_tail(x, n, m)
    closes = x.tolist()
    want = ref.ma_tail(closes, n, m)
    assert got.shape == (m,)
    for g, w in zip(got.tolist(), want, strict=True):
        assert _close(g, w), (g, w)


@settings(max_examples=300, deadline=None)
@given(
    x=st.one_of(price_series(), tick_series()),
    n=st.integers(2, 30),
    m=st.integers(1, 40),
    k=st.sampled_from([0.5, 1.5, 2.0, 2.5]),
)
def test_upper_band_matches_plain_loop(x: np.ndarray, n: int, m: int, k: float) -> None:
    rc = ind.RollingCloses(x, n + m - 1)
    got = rc.upper_band(n, k, m)
    bands = rc.bands(n, k, m)
    want = ref.band_tail(x.tolist(), n, k, m)
    for g, b, w in zip(got.tolist(), bands.upper.tolist(), want, strict=True):
        assert _close(g, w), (g, w)
        assert _close(b, w), (b, w)
    # the lower band mirrors the upper one around the MA
    np.testing.assert_allclose(bands.mid - bands.lower, bands.upper - bands.mid, rtol=1e-12, atol=0)


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=120),
    n=st.integers(1, 40),
)
def test_sma_precision_on_arbitrary_floats(values: list[float], n: int) -> None:
    """Outside price-like data the error stays within a few ulps of the largest value involved."""
    x = np.asarray(values)
    m = len(values)
    got = ind.sma_tail(x, n, m)
    scale = float(np.max(np.abs(x))) or 1.0
    for g, w in zip(got.tolist(), ref.ma_tail(values, n, m), strict=True):
        if w is None:
            assert math.isnan(g)
        else:
            assert abs(g - w) <= 1e-13 * scale * len(values)


def _exact_upper(closes: list[float], n: int, k: float, i: int) -> float:
    """Upper band at bar i from correctly rounded sums (math.fsum): the yardstick for precision."""
    window = closes[i - n + 1 : i + 1]
    mean = math.fsum(window) / n
    return mean + k * math.sqrt(math.fsum((x - mean) ** 2 for x in window) / n)


@st.composite
def regime_series(draw: st.DrawFn) -> np.ndarray:
    """Trends, flat stretches at several levels and noise: where prefix-sum variances lose digits."""
    level = draw(_levels)
    out: list[float] = []
    price = level
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flat", "trend", "noise"]))
        length = draw(st.integers(1, 60))
        if kind == "flat":
            out += [price] * length
        elif kind == "trend":
            step = draw(st.floats(-0.02, 0.02, allow_nan=False))
            for _ in range(length):
                price *= 1 + step
                out.append(price)
        else:
            for _ in range(length):
                price *= 1 + draw(st.floats(-0.001, 0.001, allow_nan=False))
                out.append(price)
    return np.asarray(out)


@settings(max_examples=300, deadline=None)
@given(x=regime_series(), n=st.integers(2, 40), k=st.sampled_from([1.5, 2.0]))
def test_band_error_is_far_below_the_tie_tolerance(x: np.ndarray, n: int, k: float) -> None:
    """The fast variance keeps k*std within 1e-12 of the price of the exact value, flat stretches included."""
    m = max(1, len(x) - n + 1)
    got = ind.RollingCloses(x, len(x)).upper_band(n, k, m)
    closes = x.tolist()
    for j, g in enumerate(got.tolist()):
        i = len(x) - m + j
        if i < n - 1:
            assert math.isnan(g)
            continue
        want = _exact_upper(closes, n, k, i)
        assert abs(g - want) <= 2e-12 * abs(want), (i, g, want)


def test_ma_and_bands_agree_with_pandas_and_ta() -> None:
    rng = np.random.default_rng(7)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.004, 1500)))
    s = pd.Series(close)
    for n in (5, 20, 80, 200, 480):
        m = len(close) - n + 1
        np.testing.assert_allclose(ind.sma_tail(close, n, m), s.rolling(n).mean().to_numpy()[-m:], rtol=1e-11)
    for n, k in ((200, 2.0), (480, 1.5), (20, 2.0)):
        m = len(close) - n + 1
        bands = ind.bollinger_tail(close, n, k, m)
        mid = s.rolling(n).mean()
        std = s.rolling(n).std(ddof=0)
        np.testing.assert_allclose(bands.upper, (mid + k * std).to_numpy()[-m:], rtol=1e-11)
        np.testing.assert_allclose(bands.lower, (mid - k * std).to_numpy()[-m:], rtol=1e-11)
        bb = BollingerBands(s, window=n, window_dev=k)
        np.testing.assert_allclose(bands.upper, bb.bollinger_hband().to_numpy()[-m:], rtol=1e-11)
        np.testing.assert_allclose(bands.mid, bb.bollinger_mavg().to_numpy()[-m:], rtol=1e-11)
        np.testing.assert_allclose(bands.lower, bb.bollinger_lband().to_numpy()[-m:], rtol=1e-11)
    # ta pads the first n-1 bars with NaN, as the tail does for bars without a full window
    head = ind.bollinger_tail(close[:250], 200, 2.0, 100).upper
    ta_head = BollingerBands(pd.Series(close[:250]), window=200, window_dev=2).bollinger_hband().to_numpy()[-100:]
    np.testing.assert_array_equal(np.isnan(head), np.isnan(ta_head))
    assert int(np.isnan(head).sum()) == 49


def test_tail_reads_only_the_closes_it_needs() -> None:
    """MA480 over 151 bars depends on the last 630 closes and nothing older."""
    rng = np.random.default_rng(3)
    close = 10 + rng.random(2000)
    before = ind.sma_tail(close, 480, 151)
    garbage = close.copy()
    garbage[: 2000 - 630] = np.nan
    np.testing.assert_array_equal(ind.sma_tail(garbage, 480, 151), before)
    np.testing.assert_array_equal(
        ind.bollinger_tail(garbage, 480, 1.5, 151).upper, ind.bollinger_tail(close, 480, 1.5, 151).upper
    )


def test_strided_and_read_only_inputs() -> None:
    """Candle stores may hand over columns of a 2-D buffer or frozen arrays: same numbers, nothing written."""
    rng = np.random.default_rng(11)
    table = 1000 + np.cumsum(rng.normal(0, 1, (900, 6)), axis=0)
    column = table[:, 4]
    assert not column.flags["C_CONTIGUOUS"]
    frozen = column.copy()
    frozen.flags.writeable = False
    before = table.copy()
    for close in (column, frozen):
        rc = ind.RollingCloses(close, 630)
        want = [ref.upper_band(close.tolist(), 480, 1.5, i) for i in range(900 - 151, 900)]
        got = rc.upper_band(480, 1.5, 151).tolist()
        assert all(_close(g, w) for g, w in zip(got, want, strict=True))
    np.testing.assert_array_equal(table, before)


def test_flat_series_gives_exact_equal_averages_and_zero_width() -> None:
    for price in (0.1, 0.0123, 37.37, 98_765.43):
        close = np.full(700, price)
        rc = ind.RollingCloses(close, 630)
        for n in (5, 20, 80, 480):
            assert rc.sma(n, 151).tolist() == [price] * 151
        assert rc.upper_band(480, 1.5, 151).tolist() == [price] * 151
        assert rc.upper_band(200, 2.0, 151).tolist() == [price] * 151


def test_exact_ties_hold_up_to_rounding_and_compare_equal() -> None:
    """A period-5 price pattern makes MA5 == MA20 exactly in arithmetic, not in floats: comparisons say equal."""
    rng = np.random.default_rng(1)
    level = 0.3
    pattern = np.tile(np.array([1.0, 1.01, 1.0, 1.02, 0.99]) * level, 60)
    close = np.concatenate([level * (1 + rng.normal(0, 0.01, 330)), pattern])
    naive5 = [sum(close[i - 4 : i + 1].tolist()) / 5 for i in range(530, 630)]
    naive20 = [sum(close[i - 19 : i + 1].tolist()) / 20 for i in range(530, 630)]
    assert any(x != y for x, y in zip(naive5, naive20, strict=True))  # the float noise is real
    rc = ind.RollingCloses(close, 630)
    for pair in (
        zip(rc.sma(5, 100).tolist(), rc.sma(20, 100).tolist(), strict=True),
        zip(naive5, naive20, strict=True),
    ):
        for a, b in pair:
            assert ind.le(a, b) and ind.ge(a, b)
            assert not ind.gt(a, b) and not ind.lt(a, b)
    assert ind.cross_up_bars_ago(rc.sma(5, 100), rc.sma(20, 100)) is None
    assert ind.cross_down_bars_ago(rc.sma(5, 100), rc.sma(20, 100)) is None


def test_insufficient_data_is_nan_not_an_error() -> None:
    close = np.arange(1.0, 11.0)
    assert np.isnan(ind.sma_tail(close, 20, 3)).all()
    tail = ind.sma_tail(close, 8, 5)
    assert np.isnan(tail[:2]).all() and tail[2:].tolist() == [4.5, 5.5, 6.5]
    assert np.isnan(ind.bollinger_tail(close, 11, 2.0, 2).upper).all()
    empty = np.empty(0)
    assert np.isnan(ind.sma_tail(empty, 1, 4)).all()
    assert np.isnan(ind.bollinger_tail(empty, 2, 2.0, 4).upper).all()


def test_rolling_closes_refuses_requests_beyond_its_span() -> None:
    rc = ind.RollingCloses(np.arange(1.0, 101.0), 30)
    with pytest.raises(ValueError, match="cannot give MA"):
        rc.sma(20, 12)
    with pytest.raises(ValueError, match="cannot give MA"):
        rc.upper_band(31, 2.0, 1)
    with pytest.raises(ValueError, match=">= 1"):
        rc.sma(0, 1)
    with pytest.raises(ValueError, match="span"):
        ind.RollingCloses(np.arange(3.0), 0)
    # a whole (untruncated) series may be asked anything: missing bars are NaN
    whole = ind.RollingCloses(np.arange(1.0, 11.0), 50)
    assert np.isnan(whole.sma(20, 5)).all()


# ------------------------------------------------------------------ comparisons with tolerance
@settings(max_examples=300, deadline=None)
@given(
    a=st.floats(1e-8, 1e6, allow_nan=False),
    rel=st.sampled_from([0.0, 1e-13, -1e-13, 1e-11, -1e-11, 2e-10, -2e-10, 1e-6, -1e-6]),
)
def test_comparisons_are_consistent_and_tolerant(a: float, rel: float) -> None:
    b = a * (1 + rel)
    assert ind.gt(a, b) is (not ind.le(a, b))
    assert ind.lt(a, b) is (not ind.ge(a, b))
    assert not (ind.gt(a, b) and ind.lt(a, b))
    if abs(rel) <= 1e-11:  # rounding-sized differences are ties
        assert ind.le(a, b) and ind.ge(a, b)
    if abs(rel) >= 2e-10:  # anything a tick can produce is a real difference
        assert ind.gt(b, a) or ind.lt(b, a)
    arr_a, arr_b = np.array([a]), np.array([b])
    assert bool(ind.gt_array(arr_a, arr_b)[0]) is ind.gt(a, b)
    assert bool(ind.lt_array(arr_a, arr_b)[0]) is ind.lt(a, b)
    assert bool(ind.ge_array(arr_a, arr_b)[0]) is ind.ge(a, b)
    assert bool(ind.le_array(arr_a, arr_b)[0]) is ind.le(a, b)


def test_nan_compares_false_every_way() -> None:
    nan = float("nan")
    for f in (ind.gt, ind.lt, ind.ge, ind.le):
        assert f(nan, 1.0) is False
        assert f(1.0, nan) is False
        assert f(nan, nan) is False
    for g in (ind.gt_array, ind.lt_array, ind.ge_array, ind.le_array):
        assert not g(np.array([nan, 1.0]), np.array([1.0, nan])).any()


def test_disparity_and_spread() -> None:
    assert ind.disparity(103.0, 100.0) == pytest.approx(0.03)
    assert ind.disparity(97.0, 100.0) == pytest.approx(0.03)
    assert ind.spread(97.0, 100.0) == pytest.approx(-0.03)
    for bad in (0.0, -1.0, float("nan")):
        assert math.isnan(ind.disparity(1.0, bad))
        assert math.isnan(ind.spread(1.0, bad))
    assert math.isnan(ind.disparity(float("nan"), 1.0))


# ------------------------------------------------------------------ crosses and trends
_pair_values = st.lists(
    st.tuples(st.sampled_from([float("nan"), 1.0, 2.0, 2.0, 3.0]), st.sampled_from([1.0, 2.0, 2.0, 3.0])),
    min_size=1,
    max_size=25,
)


def _loop_bars_ago(a: list[float], b: list[float], golden: bool) -> int | None:
    av = [None if math.isnan(v) else v for v in a]
    bv = [None if math.isnan(v) else v for v in b]
    return ref.bars_since_cross(av, bv, len(a) - 1, golden)


@settings(max_examples=400, deadline=None)
@given(pairs=_pair_values)
def test_crosses_match_a_loop_over_bars(pairs: list[tuple[float, float]]) -> None:
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    assert ind.cross_up_bars_ago(a, b) == _loop_bars_ago(a.tolist(), b.tolist(), True)
    assert ind.cross_down_bars_ago(a, b) == _loop_bars_ago(a.tolist(), b.tolist(), False)


def test_cross_counts_bars_from_the_newest() -> None:
    a = np.array([1.0, 1.0, 3.0, 3.0, 3.0])
    b = np.full(5, 2.0)
    assert ind.cross_up_bars_ago(a, b) == 2  # crossed at index 2; newest index 4
    assert ind.cross_up_bars_ago(a[-3:], b[-3:]) is None  # index 2 is the first of the tail: no bar before it
    assert ind.cross_down_bars_ago(b, a) == 2
    # touching (equal) then above is a cross; above then equal is not a dead cross of a under b
    assert ind.cross_up_bars_ago(np.array([2.0, 2.5]), np.array([2.0, 2.0])) == 0
    assert ind.cross_down_bars_ago(np.array([2.5, 2.0]), np.array([2.0, 2.0])) is None
    # the newest of several crosses is reported
    assert ind.cross_up_bars_ago(np.array([1.0, 3.0, 1.0, 3.0, 3.0]), np.full(5, 2.0)) == 1


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.sampled_from([float("nan"), 1.0, 2.0, 3.0, 4.0]), min_size=1, max_size=6))
def test_falling_each_matches_a_loop(values: list[float]) -> None:
    want = len(values) >= 2 and all(
        ref.below(None if math.isnan(values[i + 1]) else values[i + 1], None if math.isnan(values[i]) else values[i])
        for i in range(len(values) - 1)
    )
    assert ind.falling_each(np.array(values)) is want
