"""CandleKeeper: paced REST backfill, background gap repair, retries, stream intake.

The exchange here is a small in-memory klines server over real 1m candles (higher timeframes
built with pandas), counting request weight per UTC minute as Binance does.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pytest

from tests.conftest import KLINES_DIR
from trading.candle_files import read_candles
from trading.candles import (
    HIGHER_TIMEFRAMES,
    KLINES_CHUNK,
    CandleKeeper,
    CandleStore,
    history_needed,
    klines_weight,
)
from trading.clock import ManualClock
from trading.core.config import SignalParams
from trading.core.series import OHLCV, TIMEFRAME_MS
from trading.exchange.base import Kline, KlineEvent, RateLimitedError, RetriableError

RULES = {"3m": "3min", "15m": "15min", "1h": "1h", "1d": "1D"}
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}


@cache
def real(file_symbol: str) -> OHLCV:
    return read_candles(KLINES_DIR / f"{file_symbol}-1m.csv.gz")


@cache
def resampled(file_symbol: str, tf: str) -> pd.DataFrame:
    c = real(file_symbol)
    df = pd.DataFrame(
        {"open": c.open, "high": c.high, "low": c.low, "close": c.close, "volume": c.volume},
        index=pd.to_datetime(c.open_time, unit="ms"),
    )
    out = df.resample(RULES[tf], label="left", closed="left").agg(AGG).dropna()
    out.index = out.index.as_unit("ms").asi8
    return out


@dataclass
class Call:
    symbol: str
    tf: str
    start_ms: int
    end_ms: int
    limit: int
    at_ms: int


class MemoryKlines:
    """The klines part of an exchange port. Symbols map to real candle files."""

    name = "memory"

    def __init__(self, clock: ManualClock, files: dict[str, str]) -> None:
        self.clock = clock
        self.files = files
        self.calls: list[Call] = []
        self.weight_by_minute: dict[int, int] = defaultdict(int)
        self.other_weight_by_minute: dict[int, int] = defaultdict(int)  # spent by "other components"
        self.fail: dict[str, list[Exception]] = defaultdict(list)  # raised on the next calls for a symbol
        self.gate = asyncio.Event()
        self.gate.set()
        self.holes: list[tuple[int, int]] = []  # 1m minutes the exchange itself does not have

    def used_weight(self) -> int:
        m = self.clock.now_ms() // 60_000
        return self.weight_by_minute[m] + self.other_weight_by_minute[m]

    async def fetch_klines(
        self, symbol: str, interval: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[Kline]:
        assert start_ms is not None and end_ms is not None and 1 <= limit <= 1500
        self.calls.append(Call(symbol, interval, start_ms, end_ms, limit, self.clock.now_ms()))
        self.weight_by_minute[self.clock.now_ms() // 60_000] += klines_weight(limit)
        await self.gate.wait()
        if self.fail[symbol]:
            raise self.fail[symbol].pop(0)
        now = self.clock.now_ms()
        size = TIMEFRAME_MS[interval]
        c = real(self.files[symbol])
        if interval == "1m":
            t = c.open_time
            sel = np.flatnonzero((t >= start_ms) & (t <= end_ms) & (t <= now))[:limit]
            out = [
                Kline(
                    int(t[i]),
                    float(c.open[i]),
                    float(c.high[i]),
                    float(c.low[i]),
                    float(c.close[i]),
                    float(c.volume[i]),
                    closed=int(t[i]) + size <= now,
                )
                for i in sel
                if not any(a <= t[i] <= b for a, b in self.holes)
            ]
            return out
        r = resampled(self.files[symbol], interval)
        r = r[(r.index >= start_ms) & (r.index <= end_ms) & (r.index <= now)].iloc[:limit]
        return [
            Kline(int(t), x.open, x.high, x.low, x.close, x.volume, closed=int(t) + size <= now)
            for t, x in zip(r.index, r.itertuples(), strict=True)
        ]


def event(symbol: str, c: OHLCV, i: int) -> KlineEvent:
    k = Kline(
        int(c.open_time[i]), float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]), float(c.volume[i])
    )
    return KlineEvent(symbol, "1m", k, k.open_time + 60_000)


def assert_matches_exchange(store: CandleStore, symbol: str, file_symbol: str, upto_ms: int) -> None:
    for tf in HIGHER_TIMEFRAMES:
        s = store.series(symbol, tf)
        r = resampled(file_symbol, tf)
        last_p = upto_ms - upto_ms % TIMEFRAME_MS[tf]
        closed = r[r.index < last_p].iloc[-(len(s) - 1) :]
        assert np.array_equal(s.open_time[:-1], closed.index.to_numpy(np.int64)), tf
        for name in ("open", "high", "low", "close"):
            assert np.array_equal(getattr(s, name)[:-1], closed[name].to_numpy()), (tf, name)
        np.testing.assert_allclose(s.volume[:-1], closed["volume"].to_numpy(), rtol=1e-9)
        # The in-progress candle: its 1m candles up to and including the newest minute.
        c = real(file_symbol)
        m = (c.open_time >= last_p) & (c.open_time <= upto_ms)
        assert int(s.open_time[-1]) == last_p
        assert s.open[-1] == c.open[m][0] and s.close[-1] == c.close[m][-1]
        assert s.high[-1] == c.high[m].max() and s.low[-1] == c.low[m].min()
        assert np.isclose(s.volume[-1], c.volume[m].sum(), rtol=1e-9)


FILES = {s: s for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "LAYERUSDT", "ENAUSDT")}


def start_ms(minutes_in: int = 12 * 1440 + 7 * 60 + 13) -> int:
    return int(real("BTCUSDT").open_time[0]) + minutes_in * 60_000 + 25_000  # 25 s into a minute


# ------------------------------------------------------------------ backfill
async def test_backfill_loads_everything_the_signals_need_within_the_weight_budget() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    store = CandleStore()
    # A tight budget (60 weight per minute) so that 5 symbols must be spread over several minutes.
    keeper = CandleKeeper(store, port, clock=clock, limit_per_minute=100, target_fraction=0.6)  # type: ignore[arg-type]
    result = await keeper.backfill(list(FILES), now)
    assert sorted(result.done) == sorted(FILES) and result.failed == {}
    need = history_needed(SignalParams())
    last_closed = now - now % 60_000 - 60_000
    for s, file_symbol in FILES.items():
        assert store.ready(s, need), s
        assert store.last_open_time(s) == last_closed
        assert_matches_exchange(store, s, file_symbol, last_closed)
    assert max(port.weight_by_minute.values()) <= 60
    assert len(port.weight_by_minute) >= 2 and keeper.budget.waits >= 1
    assert all(call.limit <= KLINES_CHUNK for call in port.calls)
    await keeper.close()


async def test_backfill_slows_down_when_other_components_used_the_weight() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    port.other_weight_by_minute[now // 60_000] = 1_500  # above 60% of 2,400 already
    keeper = CandleKeeper(CandleStore(), port, clock=clock)  # type: ignore[arg-type]
    result = await keeper.backfill(["BTCUSDT", "ETHUSDT"], now)
    assert sorted(result.done) == ["BTCUSDT", "ETHUSDT"]
    # Only the first request went out in the busy minute (nothing else is known about it before a reply).
    assert port.weight_by_minute[now // 60_000] <= 10
    assert sum(port.weight_by_minute.values()) > 10
    await keeper.close()


async def test_a_failing_symbol_is_retried_later_and_does_not_stop_the_others() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    port.fail["SOLUSDT"] = [RetriableError("timeout"), RetriableError("timeout again")]
    store = CandleStore()
    keeper = CandleKeeper(store, port, clock=clock, retry_delays_s=(5, 10))  # type: ignore[arg-type]
    result = await keeper.backfill(["BTCUSDT", "SOLUSDT", "LAYERUSDT"], now)
    assert sorted(result.done) == ["BTCUSDT", "LAYERUSDT"]
    assert "timeout" in result.failed["SOLUSDT"]
    assert "timeout" in keeper.failed()["SOLUSDT"]
    await keeper.wait_idle()
    assert keeper.failed() == {}
    assert store.ready("SOLUSDT", history_needed(SignalParams()))
    await keeper.close()


async def test_rate_limited_requests_back_off_and_succeed() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    port.fail["ETHUSDT"] = [RateLimitedError("429", retry_after=7.0, code=-1003, http_status=429)]
    keeper = CandleKeeper(CandleStore(), port, clock=clock)  # type: ignore[arg-type]
    result = await keeper.backfill(["ETHUSDT"], now)
    assert result.done == ("ETHUSDT",)
    assert clock.now_ms() - now >= 7_000
    await keeper.close()


# ------------------------------------------------------------------ stream intake and gap repair
async def test_gap_is_repaired_in_the_background_with_exactly_the_missing_minutes() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    store = CandleStore()
    keeper = CandleKeeper(store, port, clock=clock)  # type: ignore[arg-type]
    await keeper.backfill(["BTCUSDT"], now)
    c = real("BTCUSDT")
    i = int(np.searchsorted(c.open_time, now - now % 60_000))  # the minute in progress at `now`
    for j in range(i, i + 30):
        clock.set(int(c.open_time[j]) + 60_100)
        assert keeper.on_kline_event(event("BTCUSDT", c, j)) == 0
    calls_before = len(port.calls)
    port.gate.clear()  # the exchange hangs: the stream side must not wait for it
    clock.set(int(c.open_time[i + 36]) + 60_100)
    assert keeper.on_kline_event(event("BTCUSDT", c, i + 36)) == 6
    assert store.last_open_time("BTCUSDT") == int(c.open_time[i + 36])
    for j in range(i + 37, i + 40):
        clock.set(int(c.open_time[j]) + 60_100)
        assert keeper.on_kline_event(event("BTCUSDT", c, j)) == 0
    assert not store.ready("BTCUSDT", history_needed(SignalParams()))
    await asyncio.sleep(0)
    assert keeper.busy()
    port.gate.set()
    await keeper.wait_idle()
    repair = port.calls[calls_before:]
    assert [(x.tf, x.start_ms, x.end_ms, x.limit) for x in repair] == [
        ("1m", int(c.open_time[i + 30]), int(c.open_time[i + 35]), 6)
    ]
    assert store.missing_minutes("BTCUSDT") == []
    assert store.ready("BTCUSDT", history_needed(SignalParams()))
    assert_matches_exchange(store, "BTCUSDT", "BTCUSDT", int(c.open_time[i + 39]))
    await keeper.close()


async def test_a_symbol_is_complete_only_when_its_backfill_or_repair_is_done() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    port.fail["SOLUSDT"] = [RetriableError("timeout")]
    store = CandleStore()
    completed: list[str] = []
    store.completion_listeners.append(completed.append)
    keeper = CandleKeeper(store, port, clock=clock, retry_delays_s=(5,))  # type: ignore[arg-type]
    port.gate.clear()
    loading = asyncio.ensure_future(keeper.backfill(["BTCUSDT", "SOLUSDT"], now))
    await asyncio.sleep(0.01)
    assert store.incomplete("BTCUSDT") == "no candles"
    port.gate.set()
    result = await loading
    assert result.done == ("BTCUSDT",) and store.complete("BTCUSDT")
    # The failed one is not complete, even after klines arrived from the stream, until its retry succeeds.
    c = real("SOLUSDT")
    i = int(np.searchsorted(c.open_time, now - now % 60_000))
    keeper.on_kline_event(event("SOLUSDT", c, i))
    assert store.incomplete("SOLUSDT") == "backfill in progress"
    await keeper.wait_idle()
    assert store.complete("SOLUSDT") and sorted(completed) == ["BTCUSDT", "SOLUSDT"]

    # A missed minute: incomplete from the moment it is seen until the REST repair has filled it.
    b = real("BTCUSDT")
    j = int(np.searchsorted(b.open_time, now - now % 60_000))
    port.gate.clear()
    clock.set(int(b.open_time[j + 2]) + 60_100)
    assert keeper.on_kline_event(event("BTCUSDT", b, j + 2)) == 2
    assert "2 missing 1m candle(s)" in (store.incomplete("BTCUSDT") or "")
    port.gate.set()
    await keeper.wait_idle()
    assert store.complete("BTCUSDT") and completed[-1] == "BTCUSDT" and len(completed) == 3
    await keeper.close()


async def test_a_hole_the_exchange_does_not_have_is_accepted() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    store = CandleStore()
    keeper = CandleKeeper(store, port, clock=clock)  # type: ignore[arg-type]
    await keeper.backfill(["ETHUSDT"], now)
    c = real("ETHUSDT")
    i = int(np.searchsorted(c.open_time, now - now % 60_000))
    port.holes.append((int(c.open_time[i + 1]), int(c.open_time[i + 2])))  # e.g. exchange maintenance
    for j in (i, i + 3, i + 4):
        clock.set(int(c.open_time[j]) + 60_100)
        keeper.on_kline_event(event("ETHUSDT", c, j))
    await keeper.wait_idle()
    assert store.missing_minutes("ETHUSDT") == []
    assert store.ready("ETHUSDT", history_needed(SignalParams()))
    await keeper.close()


async def test_repair_refreshes_a_closed_day_the_1m_buffer_no_longer_covers() -> None:
    files = {"PEPE": "1000PEPEUSDT"}  # starts at 00:00 UTC
    c = real("1000PEPEUSDT")
    day = 86_400_000
    d1 = int(c.open_time[0]) + day  # a whole day of history before it
    now = d1 + 23 * 3_600_000 + 10_000  # day 1, 23:00:10
    clock = ManualClock(now)
    port = MemoryKlines(clock, files)
    store = CandleStore({"1m": 1440})
    need = {"1m": 100, "3m": 20, "15m": 20, "1h": 10, "1d": 1}
    keeper = CandleKeeper(store, port, clock=clock, need=need)  # type: ignore[arg-type]
    await keeper.backfill(["PEPE"], now)
    assert store.ready("PEPE", need)
    i = int(np.searchsorted(c.open_time, now - now % 60_000))
    for j in range(i, i + 50):  # 23:00 .. 23:49
        clock.set(int(c.open_time[j]) + 60_100)
        keeper.on_kline_event(event("PEPE", c, j))
    port.gate.clear()
    # 23:50 .. 23:54 never arrive; the repair stalls until 00:20 of the next day.
    for j in range(i + 55, i + 81):
        clock.set(int(c.open_time[j]) + 60_100)
        keeper.on_kline_event(event("PEPE", c, j))
    calls_before = len(port.calls)
    port.gate.set()
    await keeper.wait_idle()
    assert store.missing_minutes("PEPE") == []
    # Day 1 began before the buffer's first minute: it is fetched again, not rebuilt from partial 1m.
    assert [(x.tf, x.start_ms, x.end_ms) for x in port.calls[calls_before:] if x.tf != "1m"] == [("1d", d1, d1)]
    assert_matches_exchange(store, "PEPE", "1000PEPEUSDT", int(c.open_time[i + 80]))
    await keeper.close()


async def test_events_of_untracked_symbols_and_unclosed_klines_are_ignored() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    store = CandleStore()
    keeper = CandleKeeper(store, port, clock=clock)  # type: ignore[arg-type]
    c = real("LAYERUSDT")
    assert keeper.on_kline_event(event("LAYERUSDT", c, 5)) == 0
    assert "LAYERUSDT" not in store
    await keeper.backfill(["LAYERUSDT"], now)
    last = store.last_open_time("LAYERUSDT")
    i = int(np.searchsorted(c.open_time, now - now % 60_000))
    ev = event("LAYERUSDT", c, i)
    unclosed = Kline(ev.kline.open_time, 1, 1, 1, 1, 1, closed=False)
    assert keeper.on_kline_event(KlineEvent(ev.symbol, "1m", unclosed, 0)) == 0
    keeper.on_kline_event(KlineEvent(ev.symbol, "3m", ev.kline, 0))
    assert store.last_open_time("LAYERUSDT") == last
    keeper.on_kline_event(ev)
    assert store.last_open_time("LAYERUSDT") == ev.kline.open_time
    await keeper.close()


async def test_add_and_remove_symbols() -> None:
    now = start_ms()
    clock = ManualClock(now)
    port = MemoryKlines(clock, FILES)
    store = CandleStore()
    keeper = CandleKeeper(store, port, clock=clock)  # type: ignore[arg-type]
    await keeper.add_symbols(["BTCUSDT", "ENAUSDT"])
    assert keeper.symbols() == {"BTCUSDT", "ENAUSDT"} and set(store.symbols()) == {"BTCUSDT", "ENAUSDT"}
    calls = len(port.calls)
    await keeper.add_symbols(["BTCUSDT"])  # already there: no REST call
    assert len(port.calls) == calls
    c = real("ENAUSDT")
    i = int(np.searchsorted(c.open_time, now - now % 60_000))
    port.gate.clear()
    clock.set(int(c.open_time[i + 5]) + 60_100)
    assert keeper.on_kline_event(event("ENAUSDT", c, i + 5)) == 5
    await asyncio.sleep(0)
    keeper.remove_symbols(["ENAUSDT"])  # cancels the stalled repair and forgets the candles
    port.gate.set()
    await keeper.wait_idle()
    assert keeper.symbols() == {"BTCUSDT"} and store.symbols() == ["BTCUSDT"]
    await keeper.close()


def test_keeper_refuses_needs_beyond_the_store_capacity() -> None:
    clock = ManualClock(0)
    with pytest.raises(ValueError, match="15m"):
        CandleKeeper(CandleStore({"15m": 100}), MemoryKlines(clock, {}), clock=clock)  # type: ignore[arg-type]


def test_klines_weight_follows_binance() -> None:
    assert [klines_weight(n) for n in (1, 99, 100, 499, 500, 1000, 1001, 1500)] == [1, 1, 2, 2, 5, 5, 10, 10]
