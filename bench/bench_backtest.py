"""Backtest speed: the fast path (quiet symbol-minutes skipped) beside the full path (every symbol's every minute
through the engine, as before the fast path), in one run. Prints one JSON object.

1. ``files``: every candle file as it is (two periods, 2025-05/06 and 2026-01/02; symbols join when their data
   begins): candles per wall minute of each path, their trades per period, and whether the trades are equal.
2. ``universe_150``: 150 symbols x ``--days`` (30) days after the 7-day warm-up: the 25 files under six names
   each (as bench_scan.py builds its universe), the 2025 candles moved forward by whole days so that all play
   at once, each file followed by its own candles again (scaled to continue from its last close) where it
   is shorter than the warm-up plus the days asked for. The fast path runs all of it (target: under 60 s of
   replay, about 6.5 M candles per wall minute, on one core); the full path runs the first ``--full-days``
   (2) days only, and so does the fast path again, for the speed ratio on the same candles.

No funding is charged (the paths are compared, not the strategy). ``--profile`` adds cProfile hot spots of
the fast path's 150-symbol run.

``--data`` is a directory of ``SYMBOL-1m.csv[.gz]`` files (default ``tests/data``; the figures in the README
come from 25 symbols of 30-42 days each, in two periods, as ``surgedca download`` fetches them).

    .venv/bin/python bench/bench_backtest.py [--data DIR] [--days 30] [--full-days 2] [--skip-files] [--profile]
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
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trading.backtest import BacktestResult, BacktestSpec, load_candle_dir, run_backtest  # noqa: E402
from trading.core.config import StrategyConfig  # noqa: E402
from trading.core.series import OHLCV  # noqa: E402
from trading.exchange.base import Market  # noqa: E402
from trading.exchange.replay import file_market  # noqa: E402

DEFAULT_DATA = REPO / "tests" / "data"
COPIES = 6
DAY_MS = 86_400_000
WARMUP_DAYS = 7
TARGET_WALL_S = 60.0


def aligned(data: dict[str, tuple[Market, OHLCV]]) -> dict[str, OHLCV]:
    """The earlier period moved forward by whole days (UTC days stay days) to start with the later one."""
    latest = max(int(c.open_time[0]) for _, c in data.values())
    out = {}
    for symbol, (_, candles) in data.items():
        days = (latest - int(candles.open_time[0])) // DAY_MS
        c = candles
        if days > 30:  # another period, not a late listing
            c = OHLCV(c.open_time + days * DAY_MS, c.open, c.high, c.low, c.close, c.volume)
        out[symbol] = c
    return out


def extended(c: OHLCV, minutes: int) -> OHLCV:
    """At least ``minutes`` candles: the file's own candles again after its last one (the next minute on),
    scaled to open at its last close, as often as needed (the files hold 30-33 days; the bench replays 30
    after a 7-day warm-up)."""
    parts = [c]
    n = len(c)
    while n < minutes:
        prev = parts[-1]
        shift = int(prev.open_time[-1]) + 60_000 - int(c.open_time[0])
        scale = float(prev.close[-1]) / float(c.open[0])
        parts.append(
            OHLCV(c.open_time + shift, c.open * scale, c.high * scale, c.low * scale, c.close * scale, c.volume)
        )
        n += len(c)
    if len(parts) == 1:
        return c
    cat = [
        np.concatenate([getattr(p, f) for p in parts]) for f in ("open_time", "open", "high", "low", "close", "volume")
    ]
    return OHLCV(*cat)


def universe(data: dict[str, tuple[Market, OHLCV]], days: float) -> dict[str, tuple[Market, OHLCV]]:
    minutes = int((WARMUP_DAYS + days) * 1440) + 1440
    base = {s: extended(c, minutes) for s, c in aligned(data).items()}
    out = {}
    for k in range(COPIES):
        for symbol, c in base.items():
            name = symbol if k == 0 else f"{symbol[:-4]}{k}USDT"
            out[name] = (file_market(name, c), c)
    return out


def run(spec: BacktestSpec, profile: cProfile.Profile | None = None) -> tuple[BacktestResult, float]:
    t0 = time.perf_counter()
    if profile is not None:
        profile.enable()
    result = asyncio.run(run_backtest(spec))
    if profile is not None:
        profile.disable()
    return result, time.perf_counter() - t0


def figures(result: BacktestResult, total_s: float) -> dict[str, object]:
    loop_s = result.wall_s
    return {
        "candles": result.candles,
        "replay_loop_s": round(loop_s, 2),
        "run_total_s": round(total_s, 2),
        "candles_per_wall_minute": round(result.candles / loop_s * 60) if loop_s > 0 else None,
        "trades": len(result.trades),
        "checks": result.summary["checks"],
    }


def by_period(result: BacktestResult) -> dict[str, int]:
    years = Counter(time.gmtime(t.opened_ms / 1000).tm_year for t in result.trades)
    return {"2025-05/06": years.get(2025, 0), "2026-01/02": years.get(2026, 0)}


def hot_spots(profile: cProfile.Profile, top: int = 20) -> list[dict[str, object]]:
    stats = pstats.Stats(profile)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    rows = []
    for (path, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(path).name}:{line}({func})",
                "calls": calls,
                "own_share": round(tottime / total, 4) if total else 0.0,
                "cumulative_share": round(cumtime / total, 4) if total else 0.0,
            }
        )
    rows.sort(key=lambda r: r["own_share"], reverse=True)  # type: ignore[arg-type,return-value]
    return rows[:top]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="directory of SYMBOL-1m.csv[.gz] files")
    ap.add_argument("--days", type=float, default=30.0, help="days replayed after the warm-up, 150 symbols")
    ap.add_argument("--full-days", type=float, default=2.0, help="days the full path replays, 150 symbols")
    ap.add_argument("--skip-files", action="store_true", help="skip part 1 (the files as they are)")
    ap.add_argument("--profile", action="store_true", help="cProfile hot spots of the fast 150-symbol run")
    args = ap.parse_args()
    cfg = StrategyConfig()
    out: dict[str, object] = {"bench": "backtest", "python": platform.python_version(), "data": args.data.name}

    loaded = load_candle_dir(args.data)
    if not args.skip_files:
        spec = BacktestSpec(data=loaded.data, cfg=cfg, name="files")
        fast, fast_s = run(spec)
        full, full_s = run(replace(spec, fast=False))
        out["files"] = {
            "symbols": len(loaded.data),
            "fast": {**figures(fast, fast_s), "trades_by_period": by_period(fast)},
            "full": {**figures(full, full_s), "trades_by_period": by_period(full)},
            "same_trades": fast.trades == full.trades,
            "speedup": round(full.wall_s / fast.wall_s, 2),
        }

    data = universe(loaded.data, max(args.days, args.full_days))
    first = min(int(c.open_time[0]) for _, c in data.values())
    start = first + WARMUP_DAYS * DAY_MS
    spec = BacktestSpec(data=data, cfg=cfg, name="universe", end_ms=int(start + args.days * DAY_MS))
    short = replace(spec, end_ms=int(start + args.full_days * DAY_MS))
    profile = cProfile.Profile() if args.profile else None
    fast, fast_s = run(spec, profile)
    fast_short, fast_short_s = run(short)
    full_short, full_short_s = run(replace(short, fast=False))
    out["universe_150"] = {
        "symbols": len(data),
        "days": args.days,
        "fast": figures(fast, fast_s),
        "target_replay_s": TARGET_WALL_S,
        "ok": fast.wall_s < TARGET_WALL_S,
        "same_days_fast_vs_full": {
            "days": args.full_days,
            "fast": figures(fast_short, fast_short_s),
            "full": figures(full_short, full_short_s),
            "same_trades": fast_short.trades == full_short.trades,
            "speedup": round(full_short.wall_s / fast_short.wall_s, 2),
        },
    }
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    if profile is not None:
        out["hot_spots"] = hot_spots(profile)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
