"""Request pacing shared by every REST call of one adapter (Binance limits weight per IP).

Two rules, both waived for exits (reduce-only market orders, cancels, the
protective stop) so that a rate limit can never keep a position from closing:

* after a 429/418 every other request waits until ``Retry-After`` has passed;
* when the used weight of the current minute passes the soft limit (80% of
  2,400 by default) other requests wait for the next minute, when Binance
  resets the counter.

Time is passed in, so the rules are tested with plain numbers.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

WEIGHT_LIMIT_1M = 2400
SOFT_LIMIT_FRACTION = 0.8
MINUTE_MS = 60_000
_MINUTE_MARGIN_S = 0.05  # wake just after the minute turns, not just before


@dataclass
class RequestGate:
    weight_limit: int = WEIGHT_LIMIT_1M
    soft_fraction: float = SOFT_LIMIT_FRACTION
    _blocked_until: float = 0.0  # monotonic seconds
    _last: int = 0  # the last reading, as reported
    _weight: int = 0  # the highest reading of ``_weight_minute``, for pacing
    _weight_minute: int = -1  # exchange minute (ms // 60,000) the weight was read in

    @property
    def soft_limit(self) -> int:
        return int(self.weight_limit * self.soft_fraction)

    def used_weight(self) -> int:
        return self._last

    def record_weight(self, weight: int, exchange_ms: int) -> None:
        """A ``X-MBX-USED-WEIGHT-1M`` value read from a response at exchange time ``exchange_ms``."""
        self._last = weight
        minute = exchange_ms // MINUTE_MS
        if minute > self._weight_minute:
            self._weight, self._weight_minute = weight, minute
        elif minute == self._weight_minute:
            # Replies can arrive out of order inside one minute: pace on the highest count.
            self._weight = max(self._weight, weight)

    def block_for(self, seconds: float, now: float) -> None:
        """A 429/418 told us to wait ``seconds`` (monotonic ``now``); never shortens an earlier wait."""
        self._blocked_until = max(self._blocked_until, now + max(0.0, seconds))

    def blocked_for(self, now: float) -> float:
        return max(0.0, self._blocked_until - now)

    def wait_time(self, *, priority: bool, now: float, exchange_ms: int) -> float:
        """Seconds a request must wait before it is sent (0 for exits)."""
        if priority:
            return 0.0
        wait = self.blocked_for(now)
        if self._weight_minute == exchange_ms // MINUTE_MS and self._weight >= self.soft_limit:
            wait = max(wait, (MINUTE_MS - exchange_ms % MINUTE_MS) / 1000.0 + _MINUTE_MARGIN_S)
        return wait


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
