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

from dataclasses import dataclass

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
