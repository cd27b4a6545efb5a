"""One rendering worker for every chart, behind a small cache; the event loop only waits for it.

Drawing a chart is ~0.1-0.3 s of Python inside matplotlib. In a thread it would
hold the GIL for most of that time and delay the price updates of the hot path;
in a worker *process* it runs on the other core and the loop only sends the
candles and receives a PNG. The process is started on first use (or by
:meth:`ChartRenderer.warm`) with the ``spawn`` method (never ``fork`` from a
process that runs threads and sockets), and a process that dies is replaced
at the next request.

Charts are cached per key (symbol, interval, minute, position state,
labels): asking again within the minute costs nothing, and identical
requests in flight share one rendering.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import multiprocessing
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from enum import StrEnum

from trading.charts.render import Rendered, render_request, warm_up
from trading.core.chart import ChartRequest

log = logging.getLogger("surgedca.charts")


class WorkerKind(StrEnum):
    PROCESS = "process"  # the service: rendering never competes with the loop for the GIL
    THREAD = "thread"  # tests and the benchmark's comparison


class ChartError(Exception):
    """The chart could not be drawn (the worker failed or was too slow)."""


@dataclass(frozen=True, slots=True)
class ChartResult:
    png: bytes
    render_ms: float
    cached: bool


class ChartRenderer:
    def __init__(self, *, kind: WorkerKind = WorkerKind.PROCESS, cache_size: int = 32) -> None:
        self.kind = kind
        self.cache_size = cache_size
        self._pool: concurrent.futures.Executor | None = None
        self._done: OrderedDict[Hashable, Rendered] = OrderedDict()
        self._in_flight: dict[Hashable, asyncio.Future[Rendered]] = {}
        self._tasks: set[asyncio.Task[None]] = set()  # asyncio keeps only weak references to tasks
        self._closed = False
        self.renders = 0  # drawn (cache misses), for /health-style counters and tests

    # ---- the worker
    def _executor(self) -> concurrent.futures.Executor:
        if self._closed:
            raise ChartError("the chart renderer is closed")
        if self._pool is None:
            if self.kind is WorkerKind.PROCESS:
                self._pool = concurrent.futures.ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"), initializer=warm_up
                )
            else:
                self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="chart")
        return self._pool

    def warm(self) -> None:
        """Start the worker now (and import matplotlib there), so the first chart does not wait for it."""
        try:
            self._executor().submit(warm_up)
        except (ChartError, RuntimeError) as exc:
            log.warning("chart worker not started: %s", exc)

    def close(self) -> None:
        """Stop the worker (a chart being drawn is abandoned); later requests fail with ``ChartError``."""
        self._closed = True
        for fut in self._in_flight.values():
            fut.cancel()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    # ---- requests
    def cached(self, key: Hashable) -> bool:
        return key in self._done

    async def render(self, key: Hashable, build: Callable[[], ChartRequest], *, timeout_s: float) -> ChartResult:
        """The chart ``build()`` asks for (from the cache when ``key`` was drawn already: ``build`` is then not
        called); ``ChartError`` when the worker fails or does not answer within ``timeout_s``. A late chart is
        still finished and cached."""
        hit = self._done.get(key)
        if hit is not None:
            self._done.move_to_end(key)
            return ChartResult(hit.png, hit.render_ms, True)
        fut = self._in_flight.get(key)
        if fut is None:
            fut = self._start(build(), key)
        try:
            async with asyncio.timeout(timeout_s):
                rendered = await asyncio.shield(fut)
        except TimeoutError:
            raise ChartError(f"no chart within {timeout_s:g} s") from None
        except asyncio.CancelledError:
            if fut.cancelled():  # the renderer was closed under us, not our caller cancelled
                raise ChartError("the chart renderer was closed") from None
            raise
        return ChartResult(rendered.png, rendered.render_ms, False)

    def _start(self, request: ChartRequest, key: Hashable) -> asyncio.Future[Rendered]:
        loop = asyncio.get_running_loop()
        result: asyncio.Future[Rendered] = loop.create_future()
        self._in_flight[key] = result

        async def run() -> None:
            try:
                rendered = await self._run(request)
            except asyncio.CancelledError:
                result.cancel()
                raise
            except Exception as exc:  # handed to whoever waits for this chart
                if not result.done():
                    result.set_exception(
                        exc if isinstance(exc, ChartError) else ChartError(f"{type(exc).__name__}: {exc}")
                    )
            else:
                self.renders += 1
                self._done[key] = rendered
                while len(self._done) > self.cache_size:
                    self._done.popitem(last=False)
                if not result.done():
                    result.set_result(rendered)
            finally:
                if self._in_flight.get(key) is result:
                    del self._in_flight[key]

        task = loop.create_task(run(), name=f"chart {request.symbol} {request.interval}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        result.add_done_callback(lambda f: f.exception() if not f.cancelled() else None)  # never "never retrieved"
        return result

    async def _run(self, request: ChartRequest) -> Rendered:
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            pool = self._executor()
            try:
                return await loop.run_in_executor(pool, render_request, request)
            except BrokenProcessPool:
                # The worker died (killed, out of memory): a new one for this chart, then give up.
                log.warning("chart worker died; starting a new one (attempt %d)", attempt)
                if self._pool is pool:
                    self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
        raise ChartError("the chart worker keeps dying")
