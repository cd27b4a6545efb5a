"""The streams' one reconnect loop (``_Reconnecting``), driven by a manual clock: back-off, reset, close.

The real sockets of both streams are exercised in ``tests/integration/streams``; here the loop's timing
is checked with plain numbers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from trading.clock import ManualClock
from trading.core.backoff import Backoff
from trading.exchange.streams import (
    BinanceMarketStream,
    BinanceUserStream,
    _MarketConnection,
    _Reconnecting,
    reconnect_policy,
)
from trading.retry import Attempts


class Socket:
    def __init__(self) -> None:
        self.closed = False

    async def close(self) -> None:
        self.closed = True


class Clock(ManualClock):
    def __init__(self) -> None:
        super().__init__(0)
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


class Loop(_Reconnecting):
    """Opens fail while ``failing`` > 0; a served socket lasts ``lasts`` seconds of the clock."""

    def __init__(self, clock: Clock, *, failing: int, lasts: list[float]) -> None:
        super().__init__(clock, Backoff(1.0, cap_s=60.0), stable_after_s=60.0)
        self.backoff = Attempts(self.backoff.policy, rng=lambda: 0.5)  # no jitter: plain numbers
        self.failing = failing
        self.lasts = lasts
        self.sockets: list[Socket] = []
        self.events: list[str] = []
        self.on_serve: Callable[[], None] = lambda: None

    async def _open(self) -> Socket:  # type: ignore[override]
        if self.failing:
            self.failing -= 1
            raise OSError("refused")
        self.sockets.append(Socket())
        return self.sockets[-1]

    def _on_up(self, ws: object) -> None:
        self.events.append("up")

    def _on_down(self) -> None:
        self.events.append("down")

    async def _serve(self, ws: object) -> str:  # type: ignore[override]
        self.on_serve()
        if not self.lasts:
            self.closing = True
            return "done"
        await self.clock.sleep(self.lasts.pop(0))
        return "dropped"

    def _status(self, up: bool, detail: str) -> None:
        self.events.append(f"status {up} {detail}")


async def test_failures_back_off_doubling_and_each_socket_is_closed() -> None:
    clock = Clock()
    loop = Loop(clock, failing=3, lasts=[5.0, 5.0])
    await asyncio.wait_for(loop._run(), 5)
    # three refused opens, then two short connections: the delays keep doubling (never stable)
    assert clock.sleeps == [1.0, 2.0, 4.0, 5.0, 8.0, 5.0, 16.0]
    assert loop.reconnects == 2 and all(s.closed for s in loop.sockets) and len(loop.sockets) == 3
    assert loop.events[0] == "status False cannot connect: OSError: refused"
    assert loop.events[3:7] == ["up", "down", "status False dropped", "up"]
    assert not loop.up


async def test_a_stable_connection_starts_the_back_off_again() -> None:
    clock = Clock()
    loop = Loop(clock, failing=4, lasts=[60.0])
    await asyncio.wait_for(loop._run(), 5)
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 60.0, 1.0]


async def test_closing_while_connected_ends_the_loop_without_a_wait() -> None:
    clock = Clock()
    loop = Loop(clock, failing=0, lasts=[])
    await asyncio.wait_for(loop._run(), 5)
    assert clock.sleeps == [] and loop.reconnects == 0 and loop.sockets[0].closed


async def test_a_connection_is_up_only_while_it_is_served() -> None:
    clock = Clock()
    loop = Loop(clock, failing=0, lasts=[1.0])
    seen: list[tuple[bool, float | None]] = []
    loop.on_serve = lambda: seen.append((loop.up, loop.connected_at))
    await asyncio.wait_for(loop._run(), 5)
    assert seen == [(True, 0.0), (True, 2.0)] and not loop.up


def test_both_streams_run_the_same_loop_with_the_documented_policy() -> None:
    market = BinanceMarketStream("ws://127.0.0.1:1")
    user = BinanceUserStream("ws://127.0.0.1:1", listen_keys=None)  # type: ignore[arg-type]
    assert isinstance(user, _Reconnecting) and issubclass(_MarketConnection, _Reconnecting)
    assert reconnect_policy(market.backoff_initial_s, market.backoff_max_s) == user.backoff.policy
    assert user.backoff.policy == Backoff(1.0, factor=2.0, cap_s=60.0, jitter=(0.5, 1.5))  # README: 1 s to 60 s
