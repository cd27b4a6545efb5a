"""The synthetic market: deterministic, well-formed candles, and the moves the strategy trades."""

from __future__ import annotations

from decimal import Decimal as D

import numpy as np
import pytest

from trading.exchange.replay import MarketReplay
from trading.exchange.synthetic import DAY_MINUTES, SYNTH_START_MS, WARMUP_DAYS, DayCandles, SyntheticMarket

DAYS = 9  # the warm-up and two days of replay


@pytest.fixture(scope="module")
def market() -> SyntheticMarket:
    return SyntheticMarket(7)


@pytest.fixture(scope="module")
def candles(market: SyntheticMarket) -> DayCandles:
    return market.candles(DAYS)


def _arrays(d: DayCandles) -> list[np.ndarray]:
    return [d.open_time, d.open, d.high, d.low, d.close, d.volume]


def test_same_seed_gives_identical_arrays(candles: DayCandles) -> None:
    again = SyntheticMarket(7).candles(DAYS)
    for a, b in zip(_arrays(candles), _arrays(again), strict=True):
        assert np.array_equal(a, b)


def test_other_seeds_differ(candles: DayCandles) -> None:
    other = SyntheticMarket(8).candles(DAYS)
    assert not np.array_equal(candles.close, other.close)
    assert [s.symbol for s in SyntheticMarket(8).symbols] == [s.symbol for s in SyntheticMarket(7).symbols]


def test_a_symbol_does_not_depend_on_how_many_others_there_are(candles: DayCandles) -> None:
    few = SyntheticMarket(7, 5).candles(3)
    assert np.array_equal(few.close, candles.close[:5, : 3 * DAY_MINUTES])
    assert SyntheticMarket(7, 45).symbols[44].symbol.endswith("USDT")


def test_days_are_continuous_and_regenerable(market: SyntheticMarket, candles: DayCandles) -> None:
    day3 = market.day(3)
    assert np.array_equal(day3.close, candles.close[:, 3 * DAY_MINUTES : 4 * DAY_MINUTES])
    assert day3.open_time[0] == SYNTH_START_MS + 3 * 86_400_000
    assert np.all(np.diff(candles.open_time) == 60_000)


def test_symbols_cover_the_price_range_with_matching_rules(market: SyntheticMarket) -> None:
    assert len(market.symbols) == 20 and len({s.symbol for s in market.symbols}) == 20
    prices = [s.price0 for s in market.symbols]
    assert 0.001 <= min(prices) < 0.01 and 10_000 < max(prices) <= 50_000
    notionals = sorted(s.min_notional for s in market.symbols)
    assert notionals == [D(5)] * 19 + [D(100)]
    for s in market.symbols:
        rules = s.market().rules
        assert s.symbol.endswith("USDT") and rules.tick_size == s.tick
        # five or six significant digits of price; one step worth at most ~1 USDT (or the 0.001 floor)
        assert 1e-5 < float(s.tick) / s.price0 <= 1e-4
        assert float(s.step) * s.price0 <= 1.0 or s.step == D("0.001")
        assert rules.tradable(rules.round_qty(D(150) / D(repr(s.price0))), D(repr(s.price0)))


def test_candles_respect_ohlc_invariants_ticks_and_continuity(market: SyntheticMarket, candles: DayCandles) -> None:
    o, h, lo, c, v = candles.open, candles.high, candles.low, candles.close, candles.volume
    assert np.all(h >= np.maximum(o, c)) and np.all(lo <= np.minimum(o, c)) and np.all(lo > 0)
    assert np.all(v >= 0) and np.all(v.sum(axis=1) > 0)
    assert np.array_equal(o[:, 1:], c[:, :-1])  # each minute opens at the previous close
    for i, s in enumerate(market.symbols):
        tick = float(s.tick)
        for arr in (o[i], h[i], lo[i], c[i]):
            scaled = arr / tick
            assert np.allclose(scaled, np.rint(scaled), rtol=0, atol=1e-6)
        # printed with the tick's decimals, the floats are the exact decimal prices
        assert float(f"{c[i, -1]:.{s.decimals}f}") == c[i, -1]


def _max_move_within_a_day(close: np.ndarray, high: np.ndarray, low: np.ndarray) -> tuple[float, float]:
    """Largest rise (to a later high) and fall (to a later low) from a close within 24 h, on a 10-minute grid."""
    best_up = best_down = 0.0
    for t in range(0, close.shape[0] - 1, 10):
        window = slice(t + 1, min(t + 1 + DAY_MINUTES, close.shape[0]))
        best_up = max(best_up, float(high[window].max() / close[t] - 1))
        best_down = max(best_down, float(1 - low[window].min() / close[t]))
    return best_up, best_down


def test_contains_surges_and_crashes_of_10_to_30_percent_within_a_day(candles: DayCandles) -> None:
    ups, downs = [], []
    for i in range(candles.close.shape[0]):
        up, down = _max_move_within_a_day(candles.close[i], candles.high[i], candles.low[i])
        ups.append(up)
        downs.append(down)
    assert sum(u >= 0.10 for u in ups) >= 10  # most symbols have a 10%+ surge (pumps, continuations)
    assert sum(d >= 0.10 for d in downs) >= 3  # and some crash 10%+ (crash outcomes, pump retraces)
    assert max(ups) < 0.8 and max(downs) < 0.5  # nothing absurd


def test_surges_come_with_volume_spikes() -> None:
    market = SyntheticMarket(7)
    candles = market.candles(DAYS)
    index = {s.symbol: i for i, s in enumerate(market.symbols)}
    surges = spikes = 0
    for event in market.log_events:
        symbol = event.symbol
        surge = int(event.detail.get("surge_at", -1))
        if event.kind != "setup" or not DAY_MINUTES <= surge < (DAYS - 1) * DAY_MINUTES:
            continue
        vol = candles.volume[index[symbol]]
        surges += 1
        spikes += vol[surge : surge + 15].mean() > 3 * vol[surge - 24 * 60 : surge - 60].mean()
        rise = candles.high[index[symbol], surge : surge + 60].max() / candles.open[index[symbol], surge] - 1
        assert rise > 0.03  # the +3% hour of the 1h pre-filter
    assert surges >= 15 and spikes >= 0.9 * surges


def test_prices_stay_in_range_over_months() -> None:
    market = SyntheticMarket(3, 4)
    ratios = []
    for k, day in enumerate(market.days()):
        ratios.append(day.close[:, -1] / np.array([s.price0 for s in market.symbols]))
        if k == 90:
            break
    r = np.array(ratios)
    assert r.min() > 0.2 and r.max() < 5


def test_replay_of_the_synthetic_market_starts_after_the_warm_up(market: SyntheticMarket) -> None:
    replay = MarketReplay.synthetic(7)
    assert replay.cursor_ms == SYNTH_START_MS + WARMUP_DAYS * 86_400_000 == market.replay_start_ms
    assert len(replay.klines("ZORBUSDT", "1d", limit=30)) == WARMUP_DAYS
    assert len(replay.klines("ZORBUSDT", "15m", limit=1000)) == WARMUP_DAYS * 96 >= 480 + 150
    assert replay.markets() == market.markets()
    events = replay.step()
    assert events is not None and len(events) == 20 * 5
