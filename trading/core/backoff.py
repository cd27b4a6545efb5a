"""The back-off policy: how long to wait before the next try, after ``attempt`` failures.

Pure: the random draw that spreads the jitter is passed in (``u`` in [0, 1)), so the policy is tested
with plain numbers; ``trading.retry`` draws it and sleeps. Every retry loop of the service takes its
delays from here (streams, the exchange adapter's queries, the notifier, the bot's start-up, the
candle keeper, refused orders' rest periods).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    """``initial_s`` x ``factor`` ** attempt, at most ``cap_s`` (or the ``steps`` table, its last step repeating),
    times a jitter factor between ``jitter[0]`` and ``jitter[1]``; the result never exceeds ``cap_s``."""

    initial_s: float = 1.0
    factor: float = 2.0
    cap_s: float = math.inf
    jitter: tuple[float, float] = (1.0, 1.0)
    steps: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not self.initial_s >= 0 or not self.factor >= 1 or not self.cap_s >= 0:
            raise ValueError(f"back-off needs initial_s >= 0, factor >= 1, cap_s >= 0: {self}")
        lo, hi = self.jitter
        if not 0 <= lo <= hi:
            raise ValueError(f"jitter must be 0 <= low <= high, got {self.jitter}")
        if any(not s >= 0 for s in self.steps):
            raise ValueError(f"steps must be >= 0, got {self.steps}")

    def base(self, attempt: int) -> float:
        """The delay before jitter after ``attempt`` (0-based) failures."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        if self.steps:
            return self.steps[min(attempt, len(self.steps) - 1)]
        try:
            raw = self.initial_s * self.factor**attempt
        except OverflowError:  # a connection down for days: thousands of failures, far past the cap
            raw = math.inf if self.initial_s > 0 else 0.0
        return min(self.cap_s, raw)

    def delay(self, attempt: int, u: float = 0.5) -> float:
        """Seconds to wait after ``attempt`` (0-based) failures; ``u`` (uniform in [0, 1)) picks the jitter."""
        lo, hi = self.jitter
        return min(self.cap_s, self.base(attempt) * (lo + (hi - lo) * u))
