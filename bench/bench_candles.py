"""Candle store benchmark: cost of one closed 1m candle and of ``frames()``, memory for 150 symbols.

    .venv/bin/python bench/bench_candles.py [--data DIR] [--symbols 150] [--minutes 3000]

Prints one JSON object. Real candles from ``--data`` (default ``tests/data``; a ``surgedca download``
directory works too) are replayed under as many symbol names as asked (the store's cost does not depend
on the prices).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench._data import add_data_option, candle_files, shown  # noqa: E402
from trading.candle_files import read_candles  # noqa: E402
from trading.candles import DEFAULT_CAPACITY, CandleStore, history_needed  # noqa: E402
from trading.core.config import SignalParams  # noqa: E402
from trading.exchange.base import Kline  # noqa: E402


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_option(ap)
    ap.add_argument("--symbols", type=int, default=150)
    ap.add_argument("--minutes", type=int, default=3000, help="minutes replayed per symbol (> 1m capacity)")
    args = ap.parse_args()

    files = sorted(candle_files(args.data).items())
    sources = [read_candles(path) for _, path in files]
    klines_by_source = [
        [
            Kline(int(t), float(o), float(h), float(lo), float(c), float(v))
            for t, o, h, lo, c, v in zip(
                s.open_time[: args.minutes],
                s.open[: args.minutes],
                s.high[: args.minutes],
                s.low[: args.minutes],
                s.close[: args.minutes],
                s.volume[: args.minutes],
                strict=True,
            )
        ]
        for s in sources
    ]
    names = [f"SYM{i:03d}USDT" for i in range(args.symbols)]
    gc.collect()
    rss_before = rss_mb()
    store = CandleStore()
    warm = min(args.minutes, DEFAULT_CAPACITY["1m"] + 200)  # fill every buffer first: steady-state costs below

    for i, name in enumerate(names):
        for k in klines_by_source[i % len(klines_by_source)][:warm]:
            store.on_closed_1m(name, k)

    # Steady state: one closed minute for every symbol, minute after minute (as the live service sees them).
    updates = 0
    t0 = time.perf_counter()
    for m in range(warm, args.minutes):
        for i, name in enumerate(names):
            store.on_closed_1m(name, klines_by_source[i % len(klines_by_source)][m])
            updates += 1
    update_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_frames = 0
    for _ in range(20):
        for name in names:
            store.frames(name)
            n_frames += 1
    frames_s = time.perf_counter() - t0

    # ready() with the signals' needs capped to what this replay could fill (so that it runs every check).
    need = {tf: min(n, len(store.series(names[0], tf))) for tf, n in history_needed(SignalParams()).items()}
    t0 = time.perf_counter()
    ready = sum(store.ready(name, need) for name in names)
    ready_s = time.perf_counter() - t0

    # A cold backfill of one symbol: REST-sized 1m history merged, higher timeframes rebuilt.
    src = klines_by_source[0][: DEFAULT_CAPACITY["1m"]]
    t0 = time.perf_counter()
    fresh = CandleStore()
    fresh.backfill("COLD", "1m", src)
    backfill_s = time.perf_counter() - t0

    gc.collect()
    result = {
        "data": shown(args.data),
        "symbols": args.symbols,
        "on_closed_1m_us": round(update_s / max(updates, 1) * 1e6, 2),
        "updates_measured": updates,
        "frames_us": round(frames_s / n_frames * 1e6, 2),
        "ready_us": round(ready_s / len(names) * 1e6, 2),
        "ready_symbols": ready,
        "backfill_1m_1600_rows_ms": round(backfill_s * 1e3, 2),
        "one_minute_all_symbols_ms": round(update_s / max(args.minutes - warm, 1) * 1e3, 3),
        "store_memory_mb": round(store.memory_bytes() / 2**20, 1),
        "store_memory_per_symbol_kb": round(store.memory_bytes() / args.symbols / 1024, 1),
        "process_rss_mb": round(rss_mb(), 1),
        "rss_growth_mb": round(rss_mb() - rss_before, 1),
        "capacities": DEFAULT_CAPACITY,
        "target": "whole service < 400 MB RSS with 150 symbols",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
