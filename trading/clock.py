"""Clocks: the system clock for the service, a controllable one for tests and backtests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Wall-clock time in ms since the epoch (UTC)."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary origin, never going backwards."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ManualClock:
    """Time moves only when told to (backtests, deterministic tests)."""

    def __init__(self, start_ms: int = 0) -> None:
        self._ms = start_ms

    def now_ms(self) -> int:
        return self._ms

    def monotonic(self) -> float:
        return self._ms / 1000.0

    def set(self, ms: int) -> None:
        if ms < self._ms:
            raise ValueError("a ManualClock never goes backwards")
        self._ms = ms

    def advance(self, seconds: float) -> None:
        self._ms += int(seconds * 1000)

    async def sleep(self, seconds: float) -> None:
        # Sleeping advances simulated time and yields once so other tasks run.
        self.advance(seconds)
        await asyncio.sleep(0)


class ExchangeClock:
    """The system clock corrected to the exchange's server time (measured at start and on demand).

    Candle periods, cooldowns and the journal's request-window checks then follow the exchange's
    minute boundaries even when the host's clock is off.
    """

    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def sync(self, server_time_ms: Callable[[], Awaitable[int]]) -> int:
        """Measure the offset (round-trip halved); returns it."""
        t0 = time.time_ns() // 1_000_000
        server = await server_time_ms()
        t1 = time.time_ns() // 1_000_000
        self.offset_ms = server - (t0 + t1) // 2
        return self.offset_ms
