"""How engine work runs: as tasks (the live service) or to completion in place (replays and backtests).

Decided once, where the engine is built. Live, a price handler must never wait
for an order's round trip, so order work becomes a task. In a replay the next
price must not exist before the last decision is done, so the same work is
awaited. Timers (``later``) exist only live: in a replay the next event
decides instead, which keeps replays deterministic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger("surgedca.runner")

Work = Coroutine[Any, Any, object]  # what the work returns is not used


class WorkRunner:
    def __init__(self, *, inline: bool, on_error: Callable[[BaseException], None] | None = None) -> None:
        self.inline = inline
        self._on_error = on_error
        self._tasks: set[asyncio.Task[object]] = set()
        self._timers: set[asyncio.TimerHandle] = set()

    async def run(self, work: Work) -> None:
        """Run ``work``: awaited in place (inline) or as a task whose failure is reported."""
        if self.inline:
            await work
        else:
            self.spawn(work)

    def spawn(self, work: Work) -> asyncio.Task[object]:
        """Always a task (work that must never hold up its caller, in every mode)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def later(self, delay_s: float, make: Callable[[], Work]) -> None:
        """Start ``make()`` as a task after ``delay_s`` of wall time (live only; a replay's next event decides)."""
        if self.inline:
            return
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            if handle is not None:
                self._timers.discard(handle)
            self.spawn(make())

        handle = loop.call_later(max(0.0, delay_s), fire)
        self._timers.add(handle)

    def _done(self, task: asyncio.Task[object]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("engine task failed", exc_info=exc)
            if self._on_error is not None:
                self._on_error(exc)

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def drain(self, within_s: float) -> bool:
        """Stop the timers and wait for the work in flight (graceful stop); False if some is still running."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_s)
        return not pending
