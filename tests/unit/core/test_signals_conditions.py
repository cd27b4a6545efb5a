"""Hand-made candles for each condition of SPEC 2-3: true, false, and exactly at the boundaries."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from tests.unit.core import signal_reference as ref
from trading.core.config import SignalParams, parse_config
from trading.core.reports import Condition, SignalReport
from trading.core.series import OHLCV
from trading.core.signals import SignalInputError, evaluate, evaluate_prefilter, runner_ma

P = SignalParams()  # the SPEC defaults
AT = 1_747_958_400_000 + (13 * 60 + 37) * 60_000  # 2025-05-23 13:37 UTC

Series = list[float] | OHLCV


def flat(n: int, level: float = 100.0) -> list[float]:
    return [level] * n


def ramp(start: float, step: float, n: int) -> list[float]:
    """n closes after ``start``, each ``step`` further."""
    return [start + step * (i + 1) for i in range(n)]


def _as_frame(tf: str, data: Series | None) -> OHLCV:
    if data is None:
        return ref.frame(tf, AT, [100.0])
    if isinstance(data, OHLCV):
        return data
    return ref.frame(tf, AT, data)


def run(
    p: SignalParams = P,
    *,
    m1: Series | None = None,
    m3: Series | None = None,
    m15: Series | None = None,
    h1: Series | None = None,
    d1: Series | None = None,
    full: bool = True,
) -> SignalReport:
    frames = {
        "1m": _as_frame("1m", m1),
        "3m": _as_frame("3m", m3),
        "15m": _as_frame("15m", m15),
        "1h": _as_frame("1h", h1),
        "1d": _as_frame("1d", d1),
    }
    return evaluate("TESTUSDT", frames, p, at_ms=AT, full=full)


def cond(report: SignalReport, name: str) -> Condition:
    found = [c for c in report.conditions if c.name == name]
    assert len(found) == 1, name
    return found[0]


# ------------------------------------------------------------------ golden / dead crosses "within N bars"
@pytest.mark.parametrize("lookback", [150, 40])
def test_t1_golden_cross_exactly_at_the_oldest_of_the_last_n_bars(lookback: int) -> None:
    """Flat, then a steady rise: MA80 crosses MA480 on the first rising bar, and stays above."""
    p = dataclasses.replace(P, cross_lookback=lookback)
    inside = run(p, m3=flat(700) + ramp(100, 0.1, lookback))  # cross at the oldest of the last N bars
    assert cond(inside, "T1").ok
    assert cond(inside, "T1").values["cross_bars_ago"] == lookback - 1
    outside = run(p, m3=flat(700) + ramp(100, 0.1, lookback + 1))  # one bar earlier: not within N
    assert not cond(outside, "T1").ok
    assert cond(outside, "T1").values["cross_bars_ago"] is None
    newest = run(p, m3=flat(700) + ramp(100, 0.1, 1))
    assert cond(newest, "T1").ok and cond(newest, "T1").values["cross_bars_ago"] == 0


def test_t1_needs_a_cross_not_just_the_state() -> None:
    # MA80 above MA480 for longer than the look-back: the state holds, but no cross is recent
    report = run(m3=flat(500) + ramp(100, 0.1, 300))
    c = cond(report, "T1")
    assert c.values["ma80"] > c.values["ma480"]  # type: ignore[operator]
    assert not c.ok


def test_m1_state_or_recent_cross() -> None:
    up = run(m1=flat(700) + ramp(100, 0.1, 300))  # above for 300 bars, cross long ago: state alone suffices
    assert cond(up, "M1").ok and cond(up, "M1").values["cross_bars_ago"] is None

    # a rise then a sharp fall: MA80 is back under MA480, but the golden cross was 69 bars ago
    closes = flat(700) + ramp(100, 1.0, 30) + ramp(130, -3.0, 40)
    c = cond(run(m1=closes), "M1")
    assert c.values["ma80"] < c.values["ma480"]  # type: ignore[operator]
    assert c.ok and c.values["cross_bars_ago"] == 69

    down = cond(run(m1=flat(700) + ramp(100, -0.1, 50)), "M1")
    assert not down.ok and down.values["cross_bars_ago"] is None
    level = cond(run(m1=flat(700)), "M1")  # equal averages: neither above nor a cross
    assert not level.ok and level.values["ma80"] == level.values["ma480"] == 100.0


@pytest.mark.parametrize(("bars", "within"), [(20, True), (21, False), (1, True)])
def test_m4_and_t3_dead_cross_boundaries(bars: int, within: bool) -> None:
    """Flat, then a fall: MA20 drops under MA80 on the first falling bar."""
    closes = flat(700) + ramp(100, -0.1, bars)
    report = run(m1=closes, m3=closes)
    for name in ("M4", "T3"):
        c = cond(report, name)
        assert c.ok is within, name
        assert c.values["cross_bars_ago"] == (bars - 1 if within else None)
        assert c.values["lookback"] == 20


@pytest.mark.parametrize(("bars", "within"), [(5, True), (6, False)])
def test_t5_fast_golden_cross_boundaries(bars: int, within: bool) -> None:
    c = cond(run(m3=flat(60) + ramp(100, 0.5, bars)), "T5")
    assert c.ok is within
    assert c.values["cross_bars_ago"] == (bars - 1 if within else None)


def test_touching_is_not_crossing() -> None:
    """MA5 rising to exactly meet MA20 and staying equal is no golden cross; equal then above is one."""
    base = flat(40, 100.0)
    meet = cond(run(m3=base), "T5")
    assert not meet.ok
    dip_then_up = flat(40) + [99.0] * 5 + [110.0]  # MA5 under MA20, then above at the newest bar
    c = cond(run(m3=dip_then_up), "T5")
    assert c.ok and c.values["cross_bars_ago"] == 0


# ------------------------------------------------------------------ M2: spread of MA80 over MA480
def test_m2_spread_boundary() -> None:
    # 400 closes at 99.9 and 80 at 100.5: MA480 = 100, MA80 = 100.5, spread exactly 0.5%
    at = cond(run(m1=flat(400, 99.9) + flat(80, 100.5)), "M2")
    assert at.ok and at.values["spread"] == pytest.approx(0.005, abs=1e-12)
    below = cond(run(m1=flat(400, 99.9) + flat(80, 100.49)), "M2")
    assert not below.ok
    assert below.values["spread"] == pytest.approx(0.0049, rel=0.01)
    negative = cond(run(m1=flat(400, 101.0) + flat(80, 99.0)), "M2")
    assert not negative.ok and negative.values["spread"] < 0  # type: ignore[operator]


# ------------------------------------------------------------------ M3 / T2: Bollinger upper bands
def _spike_then_calm(extra: list[float] | None = None) -> list[float]:
    """A spike 400 bars back: inside every BB480 window of the look-back, outside every BB200 window."""
    closes = [*flat(300), 200.0, *flat(399)]
    return closes + (extra or [])


def test_bb_disparity_branch() -> None:
    calm = run(m1=flat(700), m3=flat(700))
    for name in ("M3", "T2"):
        c = cond(calm, name)
        assert c.ok and c.values["disp"] == 0.0 and c.values["cross_bars_ago"] is None

    spiky = run(m1=_spike_then_calm(), m3=_spike_then_calm())
    for name in ("M3", "T2"):
        c = cond(spiky, name)
        assert c.values["bb200_upper"] == 100.0  # std 0 over the calm 200 bars
        assert c.values["disp"] > 0.03  # type: ignore[operator]
        assert c.values["cross_bars_ago"] is None
        assert not c.ok


def test_bb_cross_branch_when_disparity_is_too_wide() -> None:
    closes = _spike_then_calm(ramp(100, 1.5, 30))
    n = len(closes)
    upper_f = ref.band_tail(closes, 200, 2.0, 151)
    upper_s = ref.band_tail(closes, 480, 1.5, 151)
    assert ref.disparity(upper_f[-1], upper_s[-1]) > 0.03  # type: ignore[operator]
    assert upper_f[-31] < upper_s[-31] and n > 630  # type: ignore[operator]  # below before the rally
    for name in ("M3", "T2"):
        c = cond(run(m1=closes, m3=closes), name)
        assert c.ok, c
        assert c.values["cross_bars_ago"] is not None and c.values["cross_bars_ago"] < 30  # type: ignore[operator]


def test_m3_and_t2_use_their_own_disparity_limits() -> None:
    closes = _spike_then_calm()
    last = len(closes) - 1
    d = ref.disparity(ref.upper_band(closes, 200, 2.0, last), ref.upper_band(closes, 480, 1.5, last))
    assert d is not None
    p = dataclasses.replace(P, m3_max_disp=d + 0.001, t2_max_disp=d - 0.001)
    report = run(p, m1=closes, m3=closes)
    assert cond(report, "M3").ok and not cond(report, "T2").ok
    p = dataclasses.replace(P, m3_max_disp=d - 0.001, t2_max_disp=d + 0.001)
    report = run(p, m1=closes, m3=closes)
    assert not cond(report, "M3").ok and cond(report, "T2").ok


# ------------------------------------------------------------------ M5 / M7: buy point on a dip
def _dip(prev_bearish: bool, newest_bearish: bool, dip: bool = True) -> OHLCV:
    closes = flat(600) + ramp(100, 0.1, 100)  # MA80 above MA480
    closes += [104.0] * 5 if dip else [111.0] * 5  # MA5 under MA80 (or not)
    opens = list(closes)
    opens[-2] = closes[-2] + (0.5 if prev_bearish else -0.5)
    opens[-1] = closes[-1] + (0.5 if newest_bearish else -0.5)
    return ref.frame("1m", AT, closes, open_=opens)


@pytest.mark.parametrize(
    ("prev_bearish", "newest_bearish", "dip", "m5", "m7"),
    [
        (True, False, True, True, False),
        (False, True, True, False, True),
        (True, True, True, True, True),
        (False, False, True, False, False),
        (True, True, False, False, False),  # no dip: MA5 above MA80
    ],
)
def test_m5_looks_at_the_previous_candle_and_m7_at_the_newest(
    prev_bearish: bool, newest_bearish: bool, dip: bool, m5: bool, m7: bool
) -> None:
    report = run(m1=_dip(prev_bearish, newest_bearish, dip))
    assert cond(report, "M5").ok is m5
    assert cond(report, "M7").ok is m7
    assert cond(report, "M5").values["bearish"] is prev_bearish
    assert cond(report, "M7").values["bearish"] is newest_bearish


def test_m5_m7_need_the_trend() -> None:
    closes = flat(600) + ramp(100, -0.1, 100) + [80.0] * 5  # MA80 under MA480
    opens = [c + 0.5 for c in closes]  # every candle bearish
    report = run(m1=ref.frame("1m", AT, closes, open_=opens))
    assert not cond(report, "M5").ok and not cond(report, "M7").ok


def test_a_doji_is_not_bearish() -> None:
    closes = flat(600) + ramp(100, 0.1, 100) + [104.0] * 5
    report = run(m1=ref.frame("1m", AT, closes, open_=list(closes)))
    assert not cond(report, "M5").ok and not cond(report, "M7").ok


# ------------------------------------------------------------------ M6: daily surge history
def _days(highs: list[float]) -> OHLCV:
    n = len(highs)
    return ref.frame("1d", AT, [100.0] * n, open_=[100.0] * n, high=highs, low=[99.0] * n)


def test_m6_daily_surge_boundary_and_window() -> None:
    assert cond(run(d1=_days([101.0] * 6 + [115.0])), "M6").ok  # exactly +15% on today's candle
    assert cond(run(d1=_days([115.0] + [101.0] * 6)), "M6").ok  # on the oldest of the seven
    miss = cond(run(d1=_days([101.0] * 6 + [114.99])), "M6")
    assert not miss.ok and miss.values["max_rise"] == pytest.approx(0.1499)
    old = cond(run(d1=_days([130.0] + [101.0] * 7)), "M6")  # eight days back: outside the seven
    assert not old.ok and old.values["max_rise"] == pytest.approx(0.01)
    young = cond(run(d1=_days([101.0] * 5 + [130.0])), "M6")  # only 6 daily candles
    assert not young.ok and young.values == {"max_rise": None, "min_rise": 0.15, "days": 6}


# ------------------------------------------------------------------ T4 / F2: MA5 against MA480
def _ma5_vs_ma480(ma5: float) -> list[float]:
    """475 closes then 5 at ``ma5``, the 475 chosen so that MA480 is 100."""
    head = (48_000.0 - 5 * ma5) / 475
    return flat(475, head) + flat(5, ma5)


@pytest.mark.parametrize(("ma5", "ok"), [(101.0, True), (98.0, True), (97.99, False), (100.0, True)])
def test_t4_and_f2_boundaries(ma5: float, ok: bool) -> None:
    closes = _ma5_vs_ma480(ma5)
    report = run(m3=closes, m15=closes)
    for name in ("T4", "F2"):
        c = cond(report, name)
        assert c.ok is ok, (name, c)
        assert c.values["ma480"] == pytest.approx(100.0)
        assert c.values["disp"] == pytest.approx(abs(ma5 - 100) / 100, abs=1e-12)


# ------------------------------------------------------------------ F1: MA80 against MA480 on 15m
def _ma80_vs_ma480(ma80: float) -> list[float]:
    head = (48_000.0 - 80 * ma80) / 400
    return flat(400, head) + flat(80, ma80)


@pytest.mark.parametrize(("ma80", "ok"), [(100.5, True), (95.0, True), (94.99, False), (100.0, False)])
def test_f1_trend_or_close_below(ma80: float, ok: bool) -> None:
    c = cond(run(m15=_ma80_vs_ma480(ma80)), "F1")
    assert c.ok is ok, c
    if ma80 == 100.0:  # equal averages are neither above nor below (SPEC's literal reading)
        assert c.values["disp"] == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------ F3 / F4 on 15m
def test_f3_compares_upper_bands_at_the_newest_bar() -> None:
    calm = cond(run(m15=_spike_then_calm()), "F3")  # the spike widens only BB480
    assert not calm.ok and calm.values["bb200_upper"] < calm.values["bb480_upper"]  # type: ignore[operator]
    wild = cond(run(m15=flat(700) + ramp(100, 1.0, 40)), "F3")  # a fresh rally widens BB200 more
    assert wild.ok and wild.values["bb200_upper"] > wild.values["bb480_upper"]  # type: ignore[operator]
    assert not cond(run(m15=flat(700)), "F3").ok  # equal bands


@pytest.mark.parametrize(
    ("tail", "ok"),
    [
        ([99.0, 98.0], True),  # MA20 falls on each of the last 2 bars
        ([99.0, 99.0], True),  # both bars still pull MA20 down (100s leave the window)
        ([99.0, 100.0], False),  # the newest bar brings MA20 back to the flat stretch
        ([100.0, 99.0], False),  # only the newest bar falls
    ],
)
def test_f4_falling_on_each_of_the_last_bars(tail: list[float], ok: bool) -> None:
    c = cond(run(m15=flat(40) + tail), "F4")
    assert c.ok is ok, c
    assert set(c.values) == {"ma20[-1]", "ma20[-2]", "ma20[-3]", "bars"}


def test_f4_bar_count_comes_from_config() -> None:
    p = dataclasses.replace(P, f4_falling_bars=3)
    two = cond(run(p, m15=[*flat(40), 99.0, 98.0]), "F4")
    three = cond(run(p, m15=[*flat(40), 99.5, 99.0, 98.0]), "F4")
    assert not two.ok and three.ok
    assert three.values["bars"] == 3 and "ma20[-4]" in three.values


# ------------------------------------------------------------------ SPEC 2: the 1h pre-filter
def _hours(
    opens: list[float], highs: list[float], closes: list[float], volumes: list[float], before: int = 20
) -> OHLCV:
    o = [100.0] * before + opens
    return ref.frame(
        "1h",
        AT,
        [100.0] * before + closes,
        open_=o,
        high=[100.0] * before + highs,
        low=[min(a, b) for a, b in zip(o, [100.0] * before + closes, strict=True)],
        volume=[10.0] * before + volumes,
    )


SURGE = _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 102, 101, 104], [15, 15, 15, 15])


def test_prefilter_all_four_hold() -> None:
    ok, conds = evaluate_prefilter(SURGE, P)
    assert ok, conds
    assert [c.name for c in conds] == ["H1", "H2", "H3", "H4"]
    assert conds[0].values["max_rise"] == pytest.approx(0.03)
    assert conds[2].values["ratio"] == pytest.approx(1.5)
    assert conds[3].values["bullish"] == 3


@pytest.mark.parametrize(
    ("name", "hours"),
    [
        ("H1", _hours([100, 101, 102, 103], [102.99, 102, 103, 104], [101, 102, 101, 104], [15] * 4)),
        ("H2", _hours([104, 101, 102, 103], [108, 102, 103, 104], [101, 102, 101, 104], [15] * 4)),
        ("H3", _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 102, 101, 104], [15, 15, 15, 14.99])),
        ("H4", _hours([100, 101, 102, 103], [103, 102, 103, 104], [99, 100, 101, 104], [15] * 4)),
    ],
)
def test_prefilter_each_condition_can_fail_alone(name: str, hours: OHLCV) -> None:
    ok, conds = evaluate_prefilter(hours, P)
    assert not ok
    assert [c.name for c in conds if not c.ok] == [name]


def test_prefilter_surge_must_be_in_the_last_four() -> None:
    hours = _hours([100, 100, 101, 102, 103], [110, 101, 102, 103, 103.5], [100, 101, 102, 101, 104], [15] * 5, 19)
    _ok, conds = evaluate_prefilter(hours, P)
    assert not conds[0].ok and conds[0].values["max_rise"] == pytest.approx(0.01)


def test_prefilter_doji_is_not_bullish_and_equal_close_is_not_higher() -> None:
    hours = _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 101, 102, 100], [15] * 4)
    _, conds = evaluate_prefilter(hours, P)
    assert conds[1].ok is False  # close(last) == open(first)
    assert conds[3].ok is False and conds[3].values["bullish"] == 1


def test_prefilter_with_too_few_candles() -> None:
    short = _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 102, 101, 104], [15] * 4, before=19)
    ok, conds = evaluate_prefilter(short, P)
    assert not ok
    assert [c.ok for c in conds] == [True, True, False, True]  # only H3 lacks its 20 earlier candles
    assert conds[2].values["volume_mean_before"] is None
    ok, conds = evaluate_prefilter(short.tail(3), P)
    assert not ok and not any(c.ok for c in conds)
    assert conds[0].values["max_rise"] is None and conds[3].values["bullish"] is None
    ok, conds = evaluate_prefilter(OHLCV.empty(), P)
    assert not ok and not any(c.ok for c in conds)


def test_prefilter_zero_volume() -> None:
    dead = _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 102, 101, 104], [0.0] * 4)
    dead = dataclasses.replace(dead, volume=np.zeros(len(dead)))
    _, conds = evaluate_prefilter(dead, P)
    # 0 >= 1.5 x 0 holds literally; the ratio itself is undefined
    assert conds[2].ok and conds[2].values["ratio"] is None
    woke = dataclasses.replace(dead, volume=np.concatenate([np.zeros(20), np.full(4, 5.0)]))
    _, conds = evaluate_prefilter(woke, P)
    assert conds[2].ok and conds[2].values["ratio"] is None
    quiet = dataclasses.replace(dead, volume=np.concatenate([np.full(20, 5.0), np.zeros(4)]))
    _, conds = evaluate_prefilter(quiet, P)
    assert not conds[2].ok and conds[2].values["ratio"] == 0.0


# ------------------------------------------------------------------ the whole report
def _names(report: SignalReport) -> list[str]:
    return [c.name for c in report.conditions]


ALL_NAMES = ["H1", "H2", "H3", "H4", "M1", "M2", "M3", "M4", "M5", "M6", "M7"]
ALL_NAMES += ["T1", "T2", "T3", "T4", "T5", "F1", "F2", "F3", "F4"]


CONFIG_KEYS = {"min_rise", "min_ratio", "min_bullish", "min_spread", "max_disp", "lookback", "bars", "days"}


def test_every_condition_is_false_without_candles() -> None:
    empty = OHLCV.empty()
    report = run(m1=empty, m3=empty, m15=empty, h1=empty, d1=empty)
    assert _names(report) == ALL_NAMES
    assert not any(c.ok for c in report.conditions)
    assert not (report.prefilter_ok or report.strategy_1m_ok or report.strategy_3m_ok or report.filter_15m_ok)
    assert not report.entry and report.price is None
    for c in report.conditions:
        assert c.note, c.name
        for key, value in c.values.items():
            if key not in CONFIG_KEYS:  # every market number is "not computable"
                assert value is None or value is False, (c.name, key, value)
    one = ref.frame("1m", AT, [100.0])
    report = run(m1=one, m3=[100.0], m15=OHLCV.empty(), h1=OHLCV.empty(), d1=OHLCV.empty())
    assert not any(c.ok for c in report.conditions) and report.price == 100.0


@pytest.mark.parametrize("short_by", [1, 0])
def test_one_candle_short_is_false_and_enough_is_computed(short_by: int) -> None:
    """MA480 with a 150-bar look-back: 480 candles give the state, fewer give nothing."""
    rising = ramp(50, 0.1, 480 - short_by)
    report = run(m1=rising, m3=rising, m15=rising)
    for name in ("M1", "M2", "F1"):
        c = cond(report, name)
        assert c.ok is (short_by == 0), name
        assert (c.values["ma480"] is None) is (short_by == 1)
    # every bar but the newest lacks MA480: no cross can be seen
    assert cond(report, "T1").values["cross_bars_ago"] is None


def test_constant_series_gives_numbers_not_nan() -> None:
    closes = flat(700, 0.0123)
    hours = ref.frame("1h", AT, flat(30, 0.0123), volume=[7.0] * 30)
    days = ref.frame("1d", AT, flat(10, 0.0123))
    report = run(m1=closes, m3=closes, m15=closes, h1=hours, d1=days)
    for c in report.conditions:
        for key, value in c.values.items():
            if isinstance(value, float):
                assert math.isfinite(value), (c.name, key)
        assert all(v is not None for k, v in c.values.items() if k not in ("cross_bars_ago", "ratio")), c
    truth = {c.name: c.ok for c in report.conditions}
    # equal averages and zero-width bands: only the "disparity within x%" conditions hold
    assert {n for n, ok in truth.items() if ok} == {"M3", "T2", "T4", "F2"}
    assert report.price == 0.0123


def test_entry_combines_prefilter_strategies_and_filter() -> None:
    """Small thresholds make the strategy counts obvious: constant 1m/15m candles give M3 and F2."""
    p = dataclasses.replace(P, min_1m_conditions=1, min_15m_conditions=1)
    calm = flat(500)
    ok = run(p, m1=calm, m15=calm, h1=SURGE)
    assert ok.prefilter_ok and ok.strategy_1m_ok and ok.filter_15m_ok and not ok.strategy_3m_ok
    assert ok.entry

    strict = dataclasses.replace(p, min_1m_conditions=2)
    assert not run(strict, m1=calm, m15=calm, h1=SURGE).entry  # neither strategy
    no_filter = dataclasses.replace(p, min_15m_conditions=2)
    assert not run(no_filter, m1=calm, m15=calm, h1=SURGE).entry
    quiet_hours = _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 102, 101, 104], [10] * 4)
    assert not run(p, m1=calm, m15=calm, h1=quiet_hours).entry


def test_full_false_stops_after_a_failed_prefilter() -> None:
    quiet_hours = _hours([100, 101, 102, 103], [103, 102, 103, 104], [101, 102, 101, 104], [10] * 4)
    fast = run(m1=flat(40), h1=quiet_hours, full=False)
    assert not fast.prefilter_ok and not fast.entry
    assert fast.m1 == () and fast.m3 == () and fast.f15 == ()
    assert [c.name for c in fast.prefilter] == ["H1", "H2", "H3", "H4"]
    assert fast.price == 100.0
    slow = run(m1=flat(40), h1=quiet_hours, full=True)
    assert slow.prefilter == fast.prefilter
    assert len(slow.m1) == 7 and len(slow.m3) == 5 and len(slow.f15) == 4
    passed = run(m1=flat(40), h1=SURGE, full=False)  # a passing pre-filter evaluates everything
    assert passed.prefilter_ok and len(passed.m1) == 7


def test_notes_describe_the_configured_rule() -> None:
    report = run()
    assert all(c.note for c in report.conditions)
    assert "MA80" in cond(report, "M1").note and "150" in cond(report, "M1").note
    cfg = parse_config({"signals": {"ma_mid": 60, "cross_lookback": 90, "m3_max_disp": 0.025}})
    custom = run(cfg.signals)
    assert "MA60" in cond(custom, "M1").note and "90 bars" in cond(custom, "M1").note
    assert "2.5%" in cond(custom, "M3").note
    assert "ma60" in cond(custom, "M1").values


# ------------------------------------------------------------------ input checks
def test_frames_must_describe_the_minute_evaluated() -> None:
    good = {tf: _as_frame(tf, None) for tf in ("1m", "3m", "15m", "1h", "1d")}
    evaluate("X", good, P, at_ms=AT)
    with pytest.raises(SignalInputError, match="lack timeframe"):
        evaluate("X", {k: v for k, v in good.items() if k != "15m"}, P, at_ms=AT)
    with pytest.raises(SignalInputError, match="1m candles end"):
        evaluate("X", good, P, at_ms=AT + 60_000)
    stale_3m = dict(good, **{"3m": ref.frame("3m", AT - 180_000, [100.0])})
    with pytest.raises(SignalInputError, match="3m candles"):
        evaluate("X", stale_3m, P, at_ms=AT)
    yesterday = dict(good, **{"1d": ref.frame("1d", AT - 86_400_000, [100.0])})
    with pytest.raises(SignalInputError, match="1d candles"):
        evaluate("X", yesterday, P, at_ms=AT)


# ------------------------------------------------------------------ runner exit input
def test_runner_ma_values_and_dead_cross() -> None:
    m3 = ref.frame("3m", AT, [float(i) for i in range(1, 26)])
    r = runner_ma(m3, 5, 20)
    assert r is not None
    assert (r.fast_prev, r.slow_prev, r.fast_now, r.slow_now) == (22.0, 14.5, 23.0, 15.5)
    assert not r.dead_cross
    falling = runner_ma(ref.frame("3m", AT, [*flat(30), 90.0]), 5, 20)
    assert falling is not None and falling.dead_cross
    assert runner_ma(m3.tail(20), 5, 20) is None  # MA20 of the previous bar needs 21 candles
    assert runner_ma(m3.tail(21), 5, 20) is not None
    assert runner_ma(OHLCV.empty(), 5, 20) is None


def test_a_missing_close_makes_conditions_false_without_warnings() -> None:
    """A NaN that slipped into the candles (a gap filled badly) must not raise, warn or fabricate a signal."""
    rng = np.random.default_rng(0)
    closes = (100 + np.cumsum(rng.normal(0, 0.1, 800))).tolist()
    closes[700] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = run(m1=closes, m3=closes, m15=closes)
    for name in ("M1", "M2", "M3", "M4", "M5", "M7", "T1", "T2", "T3", "T4", "T5", "F1", "F2", "F3", "F4"):
        assert not cond(report, name).ok, name


def test_bands_sharing_a_window_keep_both_values() -> None:
    p = dataclasses.replace(P, bb_fast_n=200, bb_slow_n=200)
    values = cond(run(p, m1=flat(700), m15=flat(700)), "M3").values
    assert {"bb200x2_upper", "bb200x1.5_upper"} <= set(values)
    assert {"bb200x2_upper", "bb200x1.5_upper"} <= set(cond(run(p, m15=flat(700)), "F3").values)
