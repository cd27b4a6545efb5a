"""Chart rendering: its time for 300 candles, and what it does to the hot path while it runs (JSON output).

1. Render time: a 1m chart of a held position with a 300-candle window (the most a chart shows), its
   fills and every line, drawn N times by the chart worker (``--renders``): p50/max inside the worker and
   as the event loop waits for it (the cache is bypassed: each request has its own key). Target: < 1 s.
2. Hot path: ``bench_hot_path.py``'s measurement (price update on the socket -> exit order on the wire,
   the real service, 10 positions, 150 streamed symbols, the fake Binance in a child process), run
   without charts, then while the service draws charts back to back through its API (``/chart``'s path:
   gathering on the loop, drawing in the worker), with the worker as a process (the service's choice)
   and, for comparison, as a thread. Reported as ratios of p50 and p99 to the run without charts.

    .venv/bin/python bench/bench_chart.py [--rounds 6] [--renders 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import time
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_hot_path import Child, _poll, child_main, live_settings  # noqa: E402
from trading.charts.renderer import ChartRenderer, WorkerKind  # noqa: E402
from trading.core import ladder  # noqa: E402
from trading.core.chart import MAX_BARS, ChartLabels, ChartRequest, FillPoint, position_lines  # noqa: E402
from trading.core.config import StrategyConfig  # noqa: E402
from trading.core.models import Fill, Stage  # noqa: E402
from trading.core.series import OHLCV  # noqa: E402
from trading.exchange.base import Kline  # noqa: E402

MINUTE = 60_000


def _walk(n: int, end_ms: int, start: float = 100.0, seed: int = 5) -> OHLCV:
    rng = np.random.default_rng(seed)
    close = start * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    times = end_ms - end_ms % MINUTE - np.arange(n, 0, -1, dtype=np.int64) * MINUTE
    return OHLCV(
        times,
        open_,
        np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999,
        close,
        rng.uniform(1e3, 1e4, n),
    )


def _pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


# ---------------------------------------------------------------------- 1. render time
async def render_times(renders: int, kind: WorkerKind) -> dict[str, Any]:
    cfg = StrategyConfig()
    candles = _walk(MAX_BARS + 480, int(time.time() * 1000))
    state = ladder.new_position("SOLUSDT", Fill("BUY", Decimal("100"), Decimal("1"), stage=Stage.INITIAL))
    state = ladder.apply_fill(state, Fill("BUY", Decimal("97"), Decimal("1.3"), stage=Stage.FIRST_DCA))
    fills = (
        FillPoint("e", "BUY", 100.0, 1.0, int(candles.open_time[-MAX_BARS]), Stage.INITIAL),
        FillPoint("d", "BUY", 97.0, 1.3, int(candles.open_time[-150]), Stage.FIRST_DCA),
    )
    request = ChartRequest(
        "SOLUSDT",
        "1m",
        candles,
        cfg.signals,
        position_lines(state, cfg, backstop=Decimal("91")),
        fills,
        held=True,
        last_price=float(candles.close[-1]),
        timezone="Asia/Seoul",
    )
    renderer = ChartRenderer(kind=kind)
    inside: list[float] = []
    waited: list[float] = []
    try:
        t0 = time.perf_counter()
        await renderer.render("warm", lambda: request, timeout_s=60)  # worker start and imports
        first_s = time.perf_counter() - t0
        for i in range(renders):
            t0 = time.perf_counter()
            out = await renderer.render(i, lambda: request, timeout_s=60)
            waited.append((time.perf_counter() - t0) * 1000)
            inside.append(out.render_ms)
        png_bytes = len(out.png)
    finally:
        renderer.close()
    return {
        "worker": kind.value,
        "candles": MAX_BARS,
        "renders": renders,
        "first_chart_s_incl_worker_start": round(first_s, 2),
        "render_ms_p50": round(statistics.median(inside), 1),
        "render_ms_max": round(max(inside), 1),
        "wait_on_loop_ms_p50": round(statistics.median(waited), 1),
        "wait_on_loop_ms_max": round(max(waited), 1),
        "png_kb": round(png_bytes / 1024, 1),
        "target_ms": 1000,
    }


# ---------------------------------------------------------------------- 2. hot path with charts
async def hot_path(rounds: int) -> dict[str, Any]:
    import trading.service as service_mod
    from trading.service import Service
    from trading.settings import Settings

    child, info = await Child.spawn()
    held: list[str] = info["held"]
    sent: list[int] = []

    async def on_headers(_s: aiohttp.ClientSession, _c: object, params: aiohttp.TraceRequestHeadersSentParams) -> None:
        if params.method == "POST" and params.url.path == "/fapi/v1/order":
            sent.append(time.monotonic_ns())

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(on_headers)
    original = service_mod.build_bundle

    async def traced_bundle(settings: Settings, db: Any, **kw: Any) -> Any:
        bundle = await original(settings, db, **kw)
        bundle.port._trace_configs.append(trace)
        return bundle

    service_mod.build_bundle = traced_bundle  # type: ignore[assignment]
    settings = live_settings(info, "surgedca-bench-", "reconcile_interval_s = 3600\nfallback_poll_interval_s = 3\n")
    logging.basicConfig(level=logging.WARNING)
    for sym in held:
        await child.ask(cmd="open", symbol=sym, qty="10", price="100")
    service = Service(settings)
    await service.start()
    engine = service.engine
    api = service.api
    assert engine is not None and api is not None
    # Candles to draw: 780 closed minutes of the charted symbols (the fake has no history to backfill).
    chart_symbols = held[:3]
    now = engine.ctx.clock.now_ms()
    for sym in chart_symbols:
        c = _walk(MAX_BARS + 480, now - MINUTE, seed=hash(sym) % 1000)
        klines = [
            Kline(int(t), float(o), float(h), float(lo), float(cl), float(v))
            for t, o, h, lo, cl, v in zip(c.open_time, c.open, c.high, c.low, c.close, c.volume, strict=True)
        ]
        engine.candles.backfill(sym, "1m", klines, now_ms=now)

    async def measure() -> list[float]:
        out: list[float] = []
        for _ in range(rounds):
            deadline = time.monotonic() + 30
            while len(engine.ctx.book) < len(held):
                if time.monotonic() > deadline:
                    raise RuntimeError("positions were not adopted")
                await engine.reconciler.run()
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)
            for sym in held:
                entry = engine.ctx.book.get(sym)
                rules = engine.ctx.rules(sym)
                assert entry is not None and entry.triggers is not None and rules is not None
                stop = entry.triggers.stop
                last = (stop * Decimal("0.99") / rules.tick_size).to_integral_value(ROUND_DOWN) * rules.tick_size
                mark = (stop * Decimal("1.02") / rules.tick_size).to_integral_value(ROUND_DOWN) * rules.tick_size
                n_before = len(sent)
                t0 = (await child.ask(cmd="price", symbol=sym, price=str(last), mark=str(mark)))["t"]
                if await _poll(lambda n=n_before: len(sent) > n, 5.0, 0.001):
                    out.append((sent[n_before] - t0) / 1e6)
                await asyncio.sleep(0.05)
            await _poll(lambda: not len(engine.ctx.book), 15.0, 0.05)
            for sym in held:
                await child.ask(cmd="open", symbol=sym, qty="10", price="100")
        return out

    drawn = 0

    async def draw_forever() -> None:
        nonlocal drawn
        i = 0
        while True:
            i += 1
            labels = (ChartLabels(avg=f"Avg {i}"),)  # a key of its own: never from the cache
            with contextlib.suppress(Exception):
                await api.chart(chart_symbols[i % len(chart_symbols)], "1m", labels=labels, timeout_s=30)
                drawn += 1

    results: dict[str, Any] = {}
    try:
        runs: list[tuple[str, WorkerKind | None]] = [
            ("none", None),
            ("process", WorkerKind.PROCESS),
            ("thread", WorkerKind.THREAD),
        ]
        for name, kind in runs:
            task = None
            drawn = 0
            if kind is not None:
                api.charts.close()
                api.charts = ChartRenderer(kind=kind)
                await api.chart(chart_symbols[0], "1m", labels=(ChartLabels(avg="warm"),), timeout_s=60)
                task = asyncio.create_task(draw_forever())
            t0 = time.monotonic()
            lat = await measure()
            elapsed = time.monotonic() - t0
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            results[name] = {
                "samples": len(lat),
                "p50_ms": round(statistics.median(lat), 3),
                "p99_ms": round(_pct(lat, 0.99), 3),
                "max_ms": round(max(lat), 3),
                "charts_drawn_meanwhile": drawn,
                "charts_per_s": round(drawn / elapsed, 2),
            }
    finally:
        await service.shutdown("bench done")
        with contextlib.suppress(Exception):
            await child.tell(cmd="stop")
        await child.proc.wait()
    base = results["none"]
    for name in ("process", "thread"):
        r = results[name]
        r["p50_ratio_to_no_charts"] = round(r["p50_ms"] / base["p50_ms"], 2)
        r["p99_ratio_to_no_charts"] = round(r["p99_ms"] / base["p99_ms"], 2)
    return results


async def main_async(rounds: int, renders: int) -> dict[str, Any]:
    return {
        "benchmark": "chart rendering (300 candles) and the hot path while charts render",
        "render": [await render_times(renders, WorkerKind.PROCESS), await render_times(renders, WorkerKind.THREAD)],
        "hot_path_price_to_order": await hot_path(rounds),
        "hot_path_target_p99_ms": 5.0,
    }


def main() -> None:
    if "--child" in sys.argv:
        asyncio.run(child_main())
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--renders", type=int, default=20)
    args = ap.parse_args()
    print(json.dumps(asyncio.run(main_async(args.rounds, args.renders)), indent=2))


if __name__ == "__main__":
    main()
