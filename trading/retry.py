"""Trying again with back-off: the one way the service retries anything.

* ``Backoff`` (``trading.core.backoff``): the policy, how long to wait after n failures.
* ``Attempts``: one caller's running count of failures under a policy (``next_delay`` after a failure,
  ``reset`` once things work again), for loops that do more than call one thing again: the streams'
  reconnects, the candle keeper's retries and repairs, the exchange adapter's choke point, the bot's
  reading of the updates that waited.
* ``retry``: call until it succeeds, sleeping the policy's delays between tries of the retriable errors;
  a wait the other side asked for (Telegram's ``retry_after``) replaces the back-off for that try.

Orders are never retried (order-safety rule 2): an order whose outcome is unknown is asked about by its
client id, never sent again blindly. Nothing that sends an order goes through ``retry`` or ``Attempts``;
the exchange adapter retries queries only.

Time and randomness are passed in (``sleep``, ``rng``), so the loops are tested with plain values.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from trading.core.backoff import Backoff

__all__ = ["Attempts", "Backoff", "retry"]

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]
Draw = Callable[[], float]  # uniform in [0, 1)


class Attempts:
    """Failures counted under one policy: each ``next_delay`` is the wait after one more failure."""

    def __init__(self, policy: Backoff, rng: Draw = random.random) -> None:
        self.policy = policy
        self.failures = 0
        self._rng = rng

    def next_delay(self) -> float:
        """Count one more failure; the seconds to wait before trying again."""
        delay = self.policy.delay(self.failures, self._rng())
        self.failures += 1
        return delay

    def reset(self) -> None:
        """It works again: the next failure starts from the first delay."""
        self.failures = 0


async def retry(
    call: Callable[[], Awaitable[T]],
    policy: Backoff | Callable[[BaseException], Backoff] | None,
    *,
    retriable: tuple[type[BaseException], ...] | Callable[[BaseException], bool],
    tries: int | None = None,
    asked_wait: Callable[[BaseException], float | None] | None = None,
    on_retry: Callable[[BaseException, float], None] | None = None,
    sleep: Sleep = asyncio.sleep,
    rng: Draw = random.random,
) -> T:
    """``call()`` until it returns. A ``retriable`` error (one of these types, or one the predicate accepts)
    waits and tries again; anything else propagates.

    ``tries``: at most this many calls, then the last error propagates (None: until it succeeds).
    ``asked_wait(exc)``: seconds the other side asked for (a 429's ``retry_after``); when not None it is
    waited instead of the back-off, which does not advance.
    ``policy`` may depend on the error (a longer cap for a rejected token than for a network outage); None when
    every retriable error says how long to wait (an error that does not then propagates).
    ``on_retry(exc, delay)`` hears of each wait before it starts (logging).
    """
    if tries is not None and tries < 1:
        raise ValueError(f"tries must be at least 1, got {tries}")
    accepts = retriable if callable(retriable) else lambda exc: isinstance(exc, retriable)
    calls = 0
    failures = 0  # back-off steps taken (asked waits do not count)
    while True:
        calls += 1
        try:
            return await call()
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError) or not accepts(exc):
                raise
            if tries is not None and calls >= tries:
                raise
            asked = asked_wait(exc) if asked_wait is not None else None
            if asked is not None:
                delay = max(asked, 0.0)
            elif policy is None:
                raise
            else:
                rule = policy if isinstance(policy, Backoff) else policy(exc)
                delay = rule.delay(failures, rng())
                failures += 1
            if on_retry is not None:
                on_retry(exc, delay)
            await sleep(delay)
