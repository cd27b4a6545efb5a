"""Kline history per symbol and interval, served with Binance's startTime/endTime/limit rules."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.fakes.binance.models import ZERO, to_decimal

MINUTE = 60_000
DAY = 1_440 * MINUTE
# Fixed-length intervals only: "1M" (calendar month) is not simulated.
INTERVAL_MS: dict[str, int] = {
    "1m": MINUTE,
    "3m": 3 * MINUTE,
    "5m": 5 * MINUTE,
    "15m": 15 * MINUTE,
    "30m": 30 * MINUTE,
    "1h": 60 * MINUTE,
    "2h": 120 * MINUTE,
    "4h": 240 * MINUTE,
    "6h": 360 * MINUTE,
    "8h": 480 * MINUTE,
    "12h": 720 * MINUTE,
    "1d": DAY,
    "3d": 3 * DAY,
    "1w": 7 * DAY,
}
_MONDAY_OFFSET = 4 * DAY  # 1970-01-01 was a Thursday; Binance weeks open on Monday 00:00 UTC


def open_time_of(ts_ms: int, interval: str) -> int:
    """Open time of the candle of ``interval`` that contains ``ts_ms``."""
    length = INTERVAL_MS[interval]
    if interval == "1w":
        return (ts_ms - _MONDAY_OFFSET) // length * length + _MONDAY_OFFSET
    return ts_ms // length * length


def kline_weight(limit: int) -> int:
    """Binance's weight of GET /fapi/v1/klines by ``limit``."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


@dataclass(slots=True)
class Candle:
    open_time: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal | None = None  # computed from volume * close when not given
    trades: int = 0
    taker_base: Decimal = ZERO
    taker_quote: Decimal = ZERO

    def rest_row(self, interval_ms: int) -> list[Any]:
        quote = self.quote_volume if self.quote_volume is not None else self.volume * self.close
        return [
            self.open_time,
            format(self.open, "f"),
            format(self.high, "f"),
            format(self.low, "f"),
            format(self.close, "f"),
            format(self.volume, "f"),
            self.open_time + interval_ms - 1,
            format(quote, "f"),
            self.trades,
            format(self.taker_base, "f"),
            format(self.taker_quote, "f"),
            "0",
        ]

    def stream_k(self, symbol: str, interval: str, closed: bool) -> dict[str, Any]:
        quote = self.quote_volume if self.quote_volume is not None else self.volume * self.close
        return {
            "t": self.open_time,
            "T": self.open_time + INTERVAL_MS[interval] - 1,
            "s": symbol,
            "i": interval,
            "f": 0,
            "L": 0,
            "o": format(self.open, "f"),
            "c": format(self.close, "f"),
            "h": format(self.high, "f"),
            "l": format(self.low, "f"),
            "v": format(self.volume, "f"),
            "n": self.trades,
            "x": closed,
            "q": format(quote, "f"),
            "V": format(self.taker_base, "f"),
            "Q": format(self.taker_quote, "f"),
            "B": "0",
        }


def candle_from_row(row: Sequence[Any]) -> Candle:
    """(open_time, o, h, l, c, v[, close_time, quote_volume, trades, taker_base, taker_quote, ...])."""
    if len(row) < 6:
        raise ValueError(f"a kline row needs at least 6 columns (open_time, o, h, l, c, v), got {row!r}")
    open_time = int(row[0])
    o, h, low, c, v = (to_decimal(x, "kline value") for x in row[1:6])
    if not (low <= min(o, c) and h >= max(o, c)):
        raise ValueError(f"inconsistent kline at {open_time}: o={o} h={h} l={low} c={c}")
    candle = Candle(open_time, o, h, low, c, v)
    if len(row) >= 11:
        candle.quote_volume = to_decimal(row[7], "quote volume")
        candle.trades = int(row[8])
        candle.taker_base = to_decimal(row[9], "taker base volume")
        candle.taker_quote = to_decimal(row[10], "taker quote volume")
    return candle


class KlineSeries:
    """Candles of one symbol and interval, kept sorted by open time."""

    def __init__(self, interval: str) -> None:
        self.interval = interval
        self.interval_ms = INTERVAL_MS[interval]
        self.times: list[int] = []
        self.candles: dict[int, Candle] = {}

    def upsert(self, candle: Candle) -> None:
        if candle.open_time % MINUTE:
            raise ValueError(f"open time {candle.open_time} is not on a minute boundary")
        if candle.open_time not in self.candles:
            if not self.times or candle.open_time > self.times[-1]:
                self.times.append(candle.open_time)
            else:
                bisect.insort(self.times, candle.open_time)
        self.candles[candle.open_time] = candle

    def extend(self, candles: Iterable[Candle]) -> None:
        for candle in candles:
            self.upsert(candle)

    def get(self, open_time: int) -> Candle | None:
        return self.candles.get(open_time)

    def query(self, *, start: int | None, end: int | None, limit: int, now: int) -> list[Candle]:
        """Binance's rules: from ``start`` forwards, else back from ``end``/now; never candles not yet opened."""
        hi_time = now if end is None else min(end, now)
        hi = bisect.bisect_right(self.times, hi_time)
        if start is not None:
            lo = bisect.bisect_left(self.times, start)
            chosen = self.times[lo : min(hi, lo + limit)]
        else:
            chosen = self.times[max(0, hi - limit) : hi]
        return [self.candles[t] for t in chosen]


def aggregate(open_time: int, candles: Sequence[Candle]) -> Candle:
    """One candle of a longer interval from its 1m candles (in time order)."""
    quote = sum((c.quote_volume if c.quote_volume is not None else c.volume * c.close for c in candles), ZERO)
    return Candle(
        open_time=open_time,
        open=candles[0].open,
        high=max(c.high for c in candles),
        low=min(c.low for c in candles),
        close=candles[-1].close,
        volume=sum((c.volume for c in candles), ZERO),
        quote_volume=quote,
        trades=sum(c.trades for c in candles),
        taker_base=sum((c.taker_base for c in candles), ZERO),
        taker_quote=sum((c.taker_quote for c in candles), ZERO),
    )


KlineEvent = tuple[str, Candle, bool]  # interval, candle, closed


class KlineBook:
    """All candles of the fake.

    1m candles are stored per symbol. A longer interval is stored only when a test loads or
    pushes it explicitly; otherwise it is built from the 1m candles whenever it is asked for,
    so a history loaded once at 1m serves every timeframe (REST and streams alike).
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str], KlineSeries] = {}
        self._live: dict[tuple[str, str], int] = {}  # open time of the in-progress candle last streamed
        self._intervals: dict[str, set[str]] = {}  # symbol -> stored intervals

    def _stored(self, symbol: str, interval: str) -> KlineSeries:
        key = (symbol, interval)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = KlineSeries(interval)
            self._intervals.setdefault(symbol, {"1m"}).add(interval)
        return series

    def is_stored(self, symbol: str, interval: str) -> bool:
        return interval == "1m" or (symbol, interval) in self.series

    def stored_intervals(self, symbol: str) -> set[str]:
        return self._intervals.get(symbol) or {"1m"}

    def load(self, symbol: str, interval: str, candles: Iterable[Candle]) -> None:
        self._stored(symbol, interval).extend(candles)

    # ------------------------------------------------------------------ reading
    def candle_at(self, symbol: str, interval: str, open_time: int) -> Candle | None:
        if self.is_stored(symbol, interval):
            series = self.series.get((symbol, interval))
            return series.get(open_time) if series else None
        base = self.series.get((symbol, "1m"))
        if base is None:
            return None
        members = base.query(
            start=open_time,
            end=open_time + INTERVAL_MS[interval] - 1,
            limit=10_080,
            now=open_time + INTERVAL_MS[interval],
        )
        return aggregate(open_time, members) if members else None

    def query(
        self, symbol: str, interval: str, *, start: int | None, end: int | None, limit: int, now: int
    ) -> list[Candle]:
        if self.is_stored(symbol, interval):
            series = self.series.get((symbol, interval))
            return series.query(start=start, end=end, limit=limit, now=now) if series else []
        base = self.series.get((symbol, "1m"))
        if base is None:
            return []
        length = INTERVAL_MS[interval]
        hi_time = now if end is None else min(end, now)
        last_open = open_time_of(hi_time, interval)
        if start is not None:
            first_open = open_time_of(start, interval)
            if first_open < start:
                first_open += length
            last_open = min(last_open, first_open + (limit - 1) * length)
        else:
            first_open = last_open - (limit - 1) * length
        if first_open > last_open:
            return []
        members = base.query(start=first_open, end=min(hi_time, last_open + length - 1), limit=1 << 30, now=now)
        return list(self._grouped(members, interval))

    @staticmethod
    def _grouped(members: list[Candle], interval: str) -> Iterator[Candle]:
        group: list[Candle] = []
        group_open = None
        for candle in members:
            opening = open_time_of(candle.open_time, interval)
            if opening != group_open and group:
                yield aggregate(group_open, group)  # type: ignore[arg-type]
                group = []
            group_open = opening
            group.append(candle)
        if group:
            yield aggregate(group_open, group)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ live updates
    def ensure_current(self, symbol: str, price: Decimal, now: int) -> None:
        """Binance always has an in-progress candle: make sure the stored intervals have one at ``now``."""
        for interval in self.stored_intervals(symbol):
            series = self._stored(symbol, interval)
            open_time = open_time_of(now, interval)
            if series.get(open_time) is None:
                series.upsert(Candle(open_time, price, price, price, price, ZERO))

    def tick(self, symbol: str, price: Decimal, qty: Decimal, now: int, streamed: set[str]) -> list[KlineEvent]:
        """A trade at ``now``: update the in-progress candles; events for the ``streamed`` intervals,
        with the previous candle marked closed when the interval rolled over."""
        for interval in self.stored_intervals(symbol):
            series = self._stored(symbol, interval)
            open_time = open_time_of(now, interval)
            candle = series.get(open_time)
            if candle is None:
                candle = Candle(open_time, price, price, price, price, ZERO)
                series.upsert(candle)
            candle.high, candle.low, candle.close = max(candle.high, price), min(candle.low, price), price
            candle.volume += qty
            if candle.quote_volume is not None:
                candle.quote_volume += qty * price
            candle.trades += 1
        events: list[KlineEvent] = []
        for interval in sorted(streamed, key=INTERVAL_MS.__getitem__):
            key = (symbol, interval)
            open_time = open_time_of(now, interval)
            previous = self._live.get(key)
            if previous is not None and previous != open_time:
                done = self.candle_at(symbol, interval, previous)
                if done is not None:
                    events.append((interval, done, True))
            current = self.candle_at(symbol, interval, open_time)
            if current is not None:
                events.append((interval, current, False))
            self._live[key] = open_time
        return events

    def push(self, symbol: str, interval: str, candle: Candle, closed: bool, streamed: set[str]) -> list[KlineEvent]:
        """A candle given by a test: stored, streamed as is, and folded into the derived intervals."""
        self._stored(symbol, interval).upsert(candle)
        events: list[KlineEvent] = [(interval, candle, closed)]
        key = (symbol, interval)
        if closed and self._live.get(key) == candle.open_time:
            del self._live[key]
        if interval == "1m":
            for other in sorted(streamed - {"1m"}, key=INTERVAL_MS.__getitem__):
                if self.is_stored(symbol, other):
                    continue
                open_time = open_time_of(candle.open_time, other)
                derived = self.candle_at(symbol, other, open_time)
                if derived is None:
                    continue
                # the derived candle is final with its last minute
                last_minute = candle.open_time + MINUTE == open_time + INTERVAL_MS[other]
                events.append((other, derived, closed and last_minute))
        return events
