"""Backtest speed and memory: the whole engine over real 1m candles of many symbols.

Prints one JSON object: 1m candles replayed per minute of wall time (target >= 1,000,000), the
wall time of the replay loop, the set-up, and the peak resident memory. ``--profile`` adds the
hot spots (cProfile: own time per function and its share of the run); ``--tracemalloc`` adds the
peak of Python allocations (it slows the run, so the speed figures are then not comparable).

    .venv/bin/python bench/bench_backtest.py [--data DIR] [--symbols 20] [--profile] [--tracemalloc]

``--data`` is a directory of ``SYMBOL-1m.csv[.gz]`` files: by default ``tests/data`` (10 symbols of two
periods, 12-17 days each), or what ``surgedca download`` writes (e.g. 20 symbols, ``--days 30``) for a
longer run. Files whose first candles lie more than 30 days apart belong to different periods: the
symbols are taken in turn from each period, and the earlier periods are moved forward by whole days so
that all symbols play at once (the engine loads the exchange's markets once, at start: symbols whose
data began later would never be traded, and the run would measure idle candles). The replay starts
after the 7-day warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import platform
import pstats
import resource
import sys
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._data import add_data_option, candle_files, shown  # noqa: E402
from trading.backtest import BacktestSpec, load_candle_dir, run_backtest  # noqa: E402
from trading.core.config import StrategyConfig  # noqa: E402
from trading.core.series import OHLCV  # noqa: E402
from trading.exchange.base import Market  # noqa: E402

TARGET = 1_000_000
DAY_MS = 86_400_000
PERIOD_GAP_DAYS = 30


def by_period(data: dict[str, tuple[Market, OHLCV]], n: int) -> list[str]:
    """Up to ``n`` symbols, taken in turn from each period (files starting within 30 days of each other)."""
    firsts = {s: int(c.open_time[0]) for s, (_, c) in data.items() if len(c)}
    periods: list[list[str]] = []
    for symbol in sorted(firsts, key=lambda s: (firsts[s], s)):
        if periods and firsts[symbol] - firsts[periods[-1][0]] <= PERIOD_GAP_DAYS * DAY_MS:
            periods[-1].append(symbol)
        else:
            periods.append([symbol])
    queues = [sorted(p) for p in periods]
    chosen: list[str] = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return sorted(chosen)


def aligned(data: dict[str, tuple[Market, OHLCV]]) -> tuple[dict[str, tuple[Market, OHLCV]], int]:
    """The earlier period moved forward by whole days (UTC days stay days) to start with the later one."""
    firsts = {s: int(c.open_time[0]) for s, (_, c) in data.items()}
    latest = max(firsts.values())
    out = {}
    shift_days = 0
    for symbol, (market, candles) in data.items():
        days = (latest - firsts[symbol]) // DAY_MS
        c = candles
        if days > PERIOD_GAP_DAYS:  # another period, not a late listing
            shift_days = max(shift_days, int(days))
            c = OHLCV(c.open_time + days * DAY_MS, c.open, c.high, c.low, c.close, c.volume)
        out[symbol] = (market, c)
    return out, shift_days


def hot_spots(profile: cProfile.Profile, top: int = 25) -> list[dict[str, object]]:
    stats = pstats.Stats(profile)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(path).name}:{line}({func})",
                "calls": calls,
                "own_s": round(tottime, 3),
                "own_share": round(tottime / total, 4) if total else 0.0,
                "cumulative_s": round(cumtime, 3),
                "cumulative_share": round(cumtime / total, 4) if total else 0.0,
            }
        )
    rows.sort(key=lambda r: r["own_s"], reverse=True)  # type: ignore[arg-type,return-value]
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(ap)
    ap.add_argument("--symbols", type=int, default=20, help="how many at most (in turn from each period)")
    ap.add_argument("--profile", action="store_true", help="add cProfile hot spots (slower run)")
    ap.add_argument("--tracemalloc", action="store_true", help="add the Python allocation peak (slower run)")
    args = ap.parse_args()

    candle_files(args.data)  # a clear message when the directory holds no candle file
    t0 = time.perf_counter()
    loaded = load_candle_dir(args.data)
    symbols = by_period(loaded.data, args.symbols)
    data, shift_days = aligned({s: loaded.data[s] for s in symbols})
    load_s = time.perf_counter() - t0
    spec = BacktestSpec(data=data, cfg=StrategyConfig(), name="bench")

    profile = cProfile.Profile() if args.profile else None
    if args.tracemalloc:
        tracemalloc.start()
    t1 = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = asyncio.run(run_backtest(spec))
    if profile is not None:
        profile.disable()
    total_s = time.perf_counter() - t1
    loop_s = result.wall_s  # the replay loop alone (from the first minute to the last)
    per_min = result.candles / loop_s * 60
    out: dict[str, object] = {
        "bench": "backtest",
        "data": shown(args.data),
        "symbols": len(result.symbols),
        "days_per_symbol": round(sum(len(c) for _, c in data.values()) / len(data) / 1440, 1),
        "earlier_period_shifted_days": shift_days,
        "candles_replayed": result.candles,
        "simulated_minutes": result.minutes,
        "trades": len(result.trades),
        "entry_signals": len(result.signals),
        "load_files_s": round(load_s, 3),
        "replay_loop_s": round(loop_s, 3),
        "run_total_s": round(total_s, 3),  # + engine start, backfill, closing at the end, results
        "candles_per_wall_minute": round(per_min),
        "target_candles_per_wall_minute": TARGET,
        "ok": per_min >= TARGET,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "checks": result.summary["checks"],
        "python": platform.python_version(),
        "profiled": profile is not None,
    }
    if args.tracemalloc:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["tracemalloc_peak_mb"] = round(peak / 2**20, 1)
    if profile is not None:
        out["hot_spots"] = hot_spots(profile)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
