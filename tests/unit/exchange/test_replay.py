"""MarketReplay over real Binance candle files: event order, no look-ahead, Binance-aligned aggregation."""

from __future__ import annotations

import itertools
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest

from trading.candle_files import find_candle_files, read_candles
from trading.core.models import SymbolRules
from trading.core.series import OHLCV, TIMEFRAME_MS
from trading.exchange.base import KlineEvent, Market, PriceEvent, Side
from trading.exchange.replay import PRICE_OFFSETS_MS, WARMUP_MS, MarketReplay, aggregate
from trading.exchange.simbroker import SimBroker

MIN = 60_000
SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")  # same window (2025-05-04 -> 06-03)


@pytest.fixture(scope="module")
def raw(klines_dir: Path) -> dict[str, OHLCV]:
    files = find_candle_files(klines_dir)
    return {s: read_candles(files[s]) for s in SYMBOLS}


@pytest.fixture
def replay(klines_dir: Path) -> MarketReplay:
    return MarketReplay.from_files(klines_dir, SYMBOLS)


def test_starts_after_the_warm_up_with_binance_rules(replay: MarketReplay, raw: dict[str, OHLCV]) -> None:
    first = min(int(c.open_time[0]) for c in raw.values())
    assert replay.cursor_ms == first + WARMUP_MS
    markets = replay.markets()
    assert markets["BTCUSDT"].rules.min_notional == D(100)
    assert markets["ETHUSDT"].rules.min_notional == D(20)
    assert markets["SOLUSDT"].rules.min_notional == D(5)
    for symbol, candles in raw.items():
        tick = float(markets[symbol].rules.tick_size)
        scaled = candles.low / tick
        assert np.allclose(scaled, np.rint(scaled), atol=1e-6), f"{symbol}: prices off the tick {tick}"
        assert markets[symbol].trading
    assert markets["BTCUSDT"].rules.tick_size == D("0.1")


def test_step_plays_open_nearer_extreme_other_extreme_close_then_the_closed_kline(
    replay: MarketReplay, raw: dict[str, OHLCV]
) -> None:
    for _ in range(30):
        t0 = replay.cursor_ms
        events = replay.step()
        assert events is not None
        assert [e.event_time for e in events] == sorted(e.event_time for e in events)
        for symbol, candles in raw.items():
            i = int(np.searchsorted(candles.open_time, t0))
            o, h, lo, c = (float(a[i]) for a in (candles.open, candles.high, candles.low, candles.close))
            prices = [e for e in events if isinstance(e, PriceEvent) and e.symbol == symbol]
            klines = [e for e in events if isinstance(e, KlineEvent) and e.symbol == symbol]
            nearer, other = (h, lo) if h - o < o - lo else (lo, h)
            assert [float(p.price) for p in prices] == [o, nearer, other, c]
            assert [p.event_time - t0 for p in prices] == list(PRICE_OFFSETS_MS)
            assert {p.kind for p in prices} == {"last"}
            assert len(klines) == 1 and klines[0].kline.closed and klines[0].kline.open_time == t0
            assert (klines[0].kline.high, klines[0].kline.low, klines[0].kline.volume) == (
                h,
                lo,
                float(candles.volume[i]),
            )
            assert events.index(klines[0]) > events.index(prices[-1])
        assert replay.cursor_ms == t0 + MIN


def test_history_is_strictly_before_the_cursor(replay: MarketReplay, raw: dict[str, OHLCV]) -> None:
    for _ in range(5):
        replay.step()
    cursor = replay.cursor_ms
    for interval in TIMEFRAME_MS:
        klines = replay.klines("ETHUSDT", interval, limit=50)
        assert klines and klines[-1].open_time < cursor
    ones = replay.klines("ETHUSDT", "1m", limit=3)
    assert [k.open_time for k in ones] == [cursor - 3 * MIN, cursor - 2 * MIN, cursor - MIN]
    future = replay.klines("ETHUSDT", "1m", start_ms=cursor, limit=10)
    assert future == []  # the data exists in the file, but has not been played
    eth = raw["ETHUSDT"]
    i = int(np.searchsorted(eth.open_time, cursor - MIN))
    assert ones[-1].close == float(eth.close[i])
    replay.step()
    assert replay.klines("ETHUSDT", "1m", limit=1)[0].open_time == cursor


@pytest.mark.parametrize("interval", ["3m", "15m", "1h", "1d"])
def test_higher_timeframes_are_binance_aligned_aggregates(
    replay: MarketReplay, raw: dict[str, OHLCV], interval: str
) -> None:
    for _ in range(77):  # leave the newest bucket in progress
        replay.step()
    tf = TIMEFRAME_MS[interval]
    cursor = replay.cursor_ms
    klines = replay.klines("SOLUSDT", interval, limit=20)
    sol = raw["SOLUSDT"]
    for k in klines:
        assert k.open_time % tf == 0
        m = (sol.open_time >= k.open_time) & (sol.open_time < min(k.open_time + tf, cursor))
        assert k.open == float(sol.open[m][0]) and k.close == float(sol.close[m][-1])
        assert k.high == float(sol.high[m].max()) and k.low == float(sol.low[m].min())
        assert k.volume == pytest.approx(float(sol.volume[m].sum()), rel=1e-12)
        assert k.closed == (k.open_time + tf <= cursor)
    assert not klines[-1].closed or cursor % tf == 0
    assert all(b.open_time - a.open_time == tf for a, b in itertools.pairwise(klines))


def test_klines_follow_binance_start_end_limit_semantics(replay: MarketReplay) -> None:
    for _ in range(120):
        replay.step()
    cursor = replay.cursor_ms
    h = 3_600_000
    last = replay.klines("BTCUSDT", "1h", limit=5)
    assert len(last) == 5 and last[-1].open_time == cursor - cursor % h
    start = last[1].open_time
    forward = replay.klines("BTCUSDT", "1h", start_ms=start + 1, limit=2)  # first bucket opening at/after start
    assert [k.open_time for k in forward] == [last[2].open_time, last[3].open_time]
    ending = replay.klines("BTCUSDT", "1h", end_ms=last[2].open_time, limit=2)
    assert [k.open_time for k in ending] == [last[1].open_time, last[2].open_time]
    window = replay.klines("BTCUSDT", "15m", start_ms=start, end_ms=start + h - 1, limit=500)
    assert [k.open_time for k in window] == [start + i * 900_000 for i in range(4)]
    with pytest.raises(ValueError, match="limit"):
        replay.klines("BTCUSDT", "1m", limit=1501)
    with pytest.raises(ValueError, match="interval"):
        replay.klines("BTCUSDT", "2m")
    with pytest.raises(KeyError):
        replay.klines("NOPEUSDT", "1m")


def test_frame_matches_klines(replay: MarketReplay) -> None:
    for _ in range(33):
        replay.step()
    for interval in ("1m", "15m", "1d"):
        frame = replay.frame("ETHUSDT", interval, 8)
        klines = replay.klines("ETHUSDT", interval, limit=8)
        assert frame.open_time.tolist() == [k.open_time for k in klines]
        assert frame.close.tolist() == [k.close for k in klines]


def test_tickers_quote_volume_is_the_last_day_of_close_times_volume(
    replay: MarketReplay, raw: dict[str, OHLCV]
) -> None:
    replay.step()
    cursor = replay.cursor_ms
    tickers = {t.symbol: t for t in replay.tickers_24h()}
    assert set(tickers) == set(SYMBOLS)
    btc = raw["BTCUSDT"]
    m = (btc.open_time >= cursor - 86_400_000) & (btc.open_time < cursor)
    assert m.sum() == 1440
    assert tickers["BTCUSDT"].quote_volume == pytest.approx(float(np.dot(btc.close[m], btc.volume[m])))
    assert tickers["BTCUSDT"].last_price == float(btc.close[m][-1])
    expected_pct = (float(btc.close[m][-1]) / float(btc.open[m][0]) - 1) * 100
    assert tickers["BTCUSDT"].price_change_pct == pytest.approx(expected_pct)


def test_resume_from_a_cursor(klines_dir: Path, replay: MarketReplay) -> None:
    for _ in range(10):
        replay.step()
    cursor = replay.cursor_ms
    expected = replay.step()
    resumed = MarketReplay.from_files(klines_dir, SYMBOLS, start_ms=cursor)
    assert resumed.cursor_ms == cursor
    assert resumed.step() == expected


def test_symbols_with_other_windows_wait_and_gaps_are_skipped(klines_dir: Path) -> None:
    # DOGE trades 2026-01-04 -> 02-06, BTC 2025-05-04 -> 06-03: months of nothing in between.
    replay = MarketReplay.from_files(klines_dir, ["BTCUSDT", "DOGEUSDT"])
    assert replay.markets()["DOGEUSDT"].status == "PENDING_TRADING"
    btc_end = int(read_candles(find_candle_files(klines_dir)["BTCUSDT"]).open_time[-1])
    replay.seek(btc_end)
    events = replay.step()
    assert events is not None and {e.symbol for e in events} == {"BTCUSDT"}  # type: ignore[union-attr]
    events = replay.step()  # next minute with data: DOGE's first, seven months later
    assert events is not None and {e.symbol for e in events} == {"DOGEUSDT"}  # type: ignore[union-attr]
    markets = replay.markets()
    assert markets["DOGEUSDT"].status == "TRADING" and markets["BTCUSDT"].status == "CLOSE"
    assert replay.klines("BTCUSDT", "1m", limit=1)[0].open_time == btc_end


def _one_symbol(candles: list[tuple[float, float, float, float]], t0: int = 0) -> MarketReplay:
    rows = [(t0 + i * MIN, o, h, lo, c, 1.0) for i, (o, h, lo, c) in enumerate(candles)]
    rules = SymbolRules("TESTUSDT", D("0.01"), D("0.001"), D("0.001"), D(5))
    market = Market("TESTUSDT", "TEST", "USDT", "TRADING", rules, 20)
    return MarketReplay({"TESTUSDT": (market, OHLCV.from_rows(rows))}, start_ms=t0 + MIN, warmup_ms=0)


def test_stop_fires_on_the_intrabar_low_even_if_the_candle_closes_above() -> None:
    replay = _one_symbol([(100, 100, 100, 100), (100, 100.5, 94, 99.5), (99.5, 99.6, 99.4, 99.5)])
    broker = SimBroker(None, markets=replay.markets(), balance=D(1000))
    broker.on_price("TESTUSDT", "100", 0)
    broker.market_order("TESTUSDT", Side.BUY, D("1"), client_order_id="e")
    broker.place_stop_close("TESTUSDT", D("96"), client_algo_id="stop")
    replay.broker = broker
    events = replay.step()  # 100 -> 100.5 (nearer) -> 94 -> 99.5: the low crosses 96, the close does not
    assert events is not None
    fill = broker.order("TESTUSDT", "stop")
    assert fill is not None and broker.positions == {}
    assert fill.update_time == MIN + PRICE_OFFSETS_MS[2]  # at the low, the third price of the path
    assert fill.avg_price == D("93.95")  # min(96, 94) - 0.05% -> down to the tick


def test_the_nearer_extreme_comes_first_and_ties_go_low_first() -> None:
    replay = _one_symbol([(10, 10, 10, 10), (10, 10.2, 9.5, 10), (10, 10.5, 9.9, 10), (10, 10.3, 9.7, 10)])
    paths = []
    for _ in range(3):
        events = replay.step()
        assert events is not None
        paths.append([float(e.price) for e in events if isinstance(e, PriceEvent)])
    assert paths == [[10, 10.2, 9.5, 10], [10, 9.9, 10.5, 10], [10, 9.7, 10.3, 10]]


def test_aggregate_of_nothing_is_nothing() -> None:
    assert len(aggregate(OHLCV.empty(), 900_000)) == 0


def test_end_of_data_returns_none() -> None:
    replay = _one_symbol([(1, 1, 1, 1), (1, 1, 1, 1)])
    assert replay.step() is not None
    assert replay.step() is None


def test_step_split_plays_the_awake_symbols_as_step_does_and_keeps_every_candle(klines_dir: Path) -> None:
    full = MarketReplay.from_files(klines_dir, SYMBOLS)
    split = MarketReplay.from_files(klines_dir, SYMBOLS)
    n = max(len(read_candles(find_candle_files(klines_dir)[s])) for s in SYMBOLS)
    flags = {"ETHUSDT": np.zeros(n, dtype=bool), "SOLUSDT": np.zeros(n, dtype=bool)}
    for minute in range(20):
        flags["SOLUSDT"][split._by_name["SOLUSDT"].played] = minute % 3 == 0  # awake every third minute
        events = full.step()
        got = split.step_split({"BTCUSDT"}, flags)  # BTCUSDT held: always awake; ETHUSDT never flagged
        assert events is not None and got is not None
        prices, closes, klines = got
        awake = {"BTCUSDT", "SOLUSDT"} if minute % 3 == 0 else {"BTCUSDT"}
        assert prices == [e for e in events if isinstance(e, PriceEvent) and e.symbol in awake]
        assert [k for k, _ in klines] == [e for e in events if isinstance(e, KlineEvent)]
        assert [(k.symbol, up) for k, up in klines] == [(s, s in awake) for s in SYMBOLS]
        last = {e.symbol: e.price for e in events if isinstance(e, PriceEvent)}  # the close, as step() writes it
        assert closes == [(s, last[s]) for s in SYMBOLS if s not in awake]
        assert split.cursor_ms == full.cursor_ms
    a, b = split.history("ETHUSDT"), full.history("ETHUSDT")
    assert len(a) == len(b) and np.array_equal(a.close, b.close)
