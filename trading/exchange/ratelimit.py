"""REST request weight: one budget per IP that every REST caller draws from; the account's order counts.

Binance counts request weight per IP and UTC minute (2,400 on USD-M) and reports the minute's count in
``X-MBX-USED-WEIGHT-1M``. The exchange adapter owns the ``WeightBudget`` and feeds it that header; the
candle keeper and ``surgedca download`` draw from the same object. Each caller has its share of the minute:

* exits (reduce-only market orders, cancels, the protective stop, price polling) never wait, so that a
  rate limit can never keep a position from closing;
* the adapter's other requests: up to 80% (the soft limit);
* the candle keeper's backfill and repairs: up to 60%, so a start-up backfill leaves room to trade;
* ``surgedca download``: up to 50%, leaving the rest to a service running beside it.

A request that would take the minute past its share waits for the next minute, when Binance resets the
count; after a 429/418 everything but the exits waits until ``Retry-After`` has passed. The minute's count
is the higher of the header's highest reading and the weight drawn this minute by callers that know their
requests' weight (so pacing holds where no header comes back).

Time is passed in, so the rules are tested with plain numbers.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from trading.exchange.base import RateLimitedError

log = logging.getLogger(__name__)

T = TypeVar("T")

WEIGHT_LIMIT_1M = 2400
SOFT_LIMIT_FRACTION = 0.8
MINUTE_MS = 60_000
_MINUTE_MARGIN_S = 0.05  # wake just after the minute turns, not just before


@dataclass(frozen=True, slots=True)
class Share:
    """A caller's part of the minute's weight; ``fraction`` None: never held back (exits)."""

    name: str
    fraction: float | None

    def __post_init__(self) -> None:
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"a share of the weight must be in (0, 1], got {self.fraction}")


BACKFILL_FRACTION = 0.6
DOWNLOAD_FRACTION = 0.5
EXITS = Share("exits", None)
QUERIES = Share("queries", SOFT_LIMIT_FRACTION)
BACKFILL = Share("candles", BACKFILL_FRACTION)
DOWNLOAD = Share("download", DOWNLOAD_FRACTION)


def budget_of(port: object) -> WeightBudget | None:
    """The port's request-weight budget: the live adapter's (paper mode: its public data's); None for a
    simulated exchange, which spends no weight."""
    budget = getattr(port, "weight_budget", None)
    return budget if isinstance(budget, WeightBudget) else None


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


class WeightBudget:
    """The IP's request weight of the current minute, and the pause after a 429/418.

    ``now_ms`` is the exchange's time (its minutes are Binance's); ``monotonic`` and ``sleep`` time the
    pauses. The pure methods take the times as arguments.
    """

    def __init__(
        self,
        weight_limit: int = WEIGHT_LIMIT_1M,
        *,
        now_ms: Callable[[], int] = _wall_ms,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        minute_margin_s: float = _MINUTE_MARGIN_S,
    ) -> None:
        if weight_limit < 1:
            raise ValueError(f"weight_limit must be at least 1, got {weight_limit}")
        self.weight_limit = weight_limit
        self.now_ms = now_ms
        self.monotonic = monotonic
        self.sleep = sleep
        self.minute_margin_s = minute_margin_s
        self.waits = 0  # how many times a caller had to wait for the next minute (tests, /health)
        self._blocked_until = 0.0  # monotonic seconds
        self._last = 0  # the last reading, as reported
        self._weight = 0  # the highest reading of ``_weight_minute``, for pacing
        self._weight_minute = -1  # exchange minute (ms // 60,000) the weight was read in
        self._drawn = 0  # weight drawn in ``_drawn_minute`` by callers that declare it
        self._drawn_minute = -1

    # ---- the minute's count
    def cap(self, share: Share) -> int | None:
        return None if share.fraction is None else int(self.weight_limit * share.fraction)

    @property
    def soft_limit(self) -> int:
        return int(self.weight_limit * SOFT_LIMIT_FRACTION)

    def used_weight(self) -> int:
        """The last ``X-MBX-USED-WEIGHT-1M`` reading (/health)."""
        return self._last

    def record_weight(self, weight: int, exchange_ms: int | None = None) -> None:
        """A ``X-MBX-USED-WEIGHT-1M`` value read from a response at exchange time ``exchange_ms``."""
        self._last = weight
        minute = (self.now_ms() if exchange_ms is None else exchange_ms) // MINUTE_MS
        if minute > self._weight_minute:
            self._weight, self._weight_minute = weight, minute
        elif minute == self._weight_minute:
            # Replies can arrive out of order inside one minute: pace on the highest count.
            self._weight = max(self._weight, weight)

    def used(self, exchange_ms: int) -> int:
        """This minute's count: the highest reading, or what was drawn if that is more."""
        minute = exchange_ms // MINUTE_MS
        read = self._weight if self._weight_minute == minute else 0
        drawn = self._drawn if self._drawn_minute == minute else 0
        return max(read, drawn)

    # ---- 429/418
    def block_for(self, seconds: float, now: float | None = None) -> None:
        """A 429/418 told us to wait ``seconds`` (monotonic ``now``); never shortens an earlier wait."""
        at = self.monotonic() if now is None else now
        self._blocked_until = max(self._blocked_until, at + max(0.0, seconds))

    def blocked_for(self, now: float | None = None) -> float:
        return max(0.0, self._blocked_until - (self.monotonic() if now is None else now))

    # ---- a caller's turn
    def wait_time(self, share: Share, *, weight: int = 1, now: float, exchange_ms: int) -> float:
        """Seconds a request of ``weight`` in ``share`` must wait before it is sent (0 for exits).

        The minute is full for a share when one more request would take the count past the share's cap; a
        request larger than a whole share still goes when nothing has been used this minute.
        """
        cap = self.cap(share)
        if cap is None:
            return 0.0
        wait = self.blocked_for(now)
        used = self.used(exchange_ms)
        if used > 0 and used + weight > cap:
            wait = max(wait, (MINUTE_MS - exchange_ms % MINUTE_MS) / 1000.0 + self.minute_margin_s)
        return wait

    async def wait_turn(self, share: Share, weight: int = 1) -> None:
        """Wait until a request of ``weight`` fits in ``share``; nothing is counted (the header will)."""
        if share.fraction is None:
            return  # exits: at once, without even reading the clock
        while True:
            now, exchange_ms = self.monotonic(), self.now_ms()
            wait = self.wait_time(share, weight=weight, now=now, exchange_ms=exchange_ms)
            if wait <= 0:
                return
            if wait > self.blocked_for(now):  # the minute is full (not only a 429's pause)
                self.waits += 1
                log.info(
                    "REST weight %d/%d this minute (%s): pausing %.1f s",
                    self.used(exchange_ms),
                    self.cap(share),
                    share.name,
                    wait,
                )
            await self.sleep(wait)  # then look again: another 429 may have extended the pause

    async def draw(self, share: Share, weight: int) -> None:
        """Wait for the turn of a request of ``weight``, then count it as spent this minute."""
        await self.wait_turn(share, weight)
        minute = self.now_ms() // MINUTE_MS
        if minute != self._drawn_minute:
            self._drawn, self._drawn_minute = 0, minute
        self._drawn += weight

    async def call(
        self,
        request: Callable[[], Awaitable[T]],
        *,
        share: Share,
        weight: int,
        tries: int,
        min_wait_s: float = 0.0,
        reading: Callable[[], int] | None = None,
        what: str = "request",
    ) -> T:
        """One request of known ``weight`` in ``share``; a 429/418 pauses every caller but the exits for its
        ``Retry-After`` (at least ``min_wait_s``) and the request goes again, ``tries`` times in all.

        ``reading``: the port's ``used_weight()``, noted after each reply when this budget is not the one the
        port itself feeds from the header.
        """
        if tries < 1:
            raise ValueError(f"tries must be at least 1, got {tries}")
        for attempt in range(1, tries + 1):
            await self.draw(share, weight)
            try:
                return await request()
            except RateLimitedError as exc:
                if attempt == tries:
                    raise
                wait = max(exc.retry_after, min_wait_s)
                log.warning("%s: rate limited (%s); waiting %.1f s", what, exc, wait)
                self.block_for(wait)
            finally:
                if reading is not None:
                    try:
                        self.record_weight(int(reading()))
                    except Exception:  # a port without the header reports nothing: count what was drawn
                        log.debug("no weight reading from the port")
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


ORDER_LIMIT_10S = 300  # Binance USD-M defaults (exchangeInfo rateLimits, ORDERS); read from the exchange when known
ORDER_LIMIT_1M = 1200
ORDER_SHARE = 0.5  # entries and DCA never use more than half of the account's order limits
EXIT_SHARE = 0.9  # exits and stops may use what entries left, short of the wall (the header lags one order)
ORDER_COUNT_10S_HEADER = "x-mbx-order-count-10s"
ORDER_COUNT_1M_HEADER = "x-mbx-order-count-1m"


@dataclass
class OrderBudget:
    """The account's order-count limits (per 10 s and per minute), with a share kept free for exits.

    Counts are what this process sent (sliding windows) or what Binance last reported in the
    ``X-MBX-ORDER-COUNT-*`` headers (which also count other programs on the account), whichever is higher.
    Exceeding the limit is answered with ``-1015`` and then 429/418 for every request, stops included:
    staying at half for everything but exits means a storm of entries or DCA can never lock the exits out.
    """

    limit_10s: int = ORDER_LIMIT_10S
    limit_1m: int = ORDER_LIMIT_1M
    _sent: deque[float] = field(default_factory=deque)  # monotonic seconds of our orders in the last minute
    _reported: dict[int, tuple[int, float]] = field(default_factory=dict)  # window s -> (count, read at)

    def note_sent(self, now: float) -> None:
        self._sent.append(now)
        while self._sent and self._sent[0] < now - 60.0:
            self._sent.popleft()

    def record(self, count_10s: int | None, count_1m: int | None, now: float) -> None:
        if count_10s is not None:
            self._reported[10] = (count_10s, now)
        if count_1m is not None:
            self._reported[60] = (count_1m, now)

    def used(self, window_s: int, now: float) -> int:
        mine = len(self._sent) - bisect.bisect_right(self._sent, now - window_s)
        count, at = self._reported.get(window_s, (0, -1e18))
        return max(mine, count if now - at < window_s else 0)

    def refusal(self, *, priority: bool, now: float) -> str | None:
        """Why one more order must not be sent now (None: it may)."""
        share = EXIT_SHARE if priority else ORDER_SHARE
        for window, limit in ((10, self.limit_10s), (60, self.limit_1m)):
            used = self.used(window, now)
            if used + 1 > int(limit * share):
                who = "exits" if priority else "entries and DCA"
                return f"{used} orders in the last {window} s: the share for {who} ({share:.0%} of {limit}) is used"
        return None
