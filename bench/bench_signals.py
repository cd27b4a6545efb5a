"""Signal evaluation speed (SPEC 2-3): one symbol, and a 150-symbol scan from cached candles.

Prints one JSON object. Target (ARCHITECTURE): a full scan of 150 symbols,
all timeframes, under 250 ms on a 2-core machine.

    .venv/bin/python bench/bench_signals.py [--symbols 150] [--candles 1000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np

from trading.core.config import SignalParams
from trading.core.series import OHLCV, TIMEFRAME_MS
from trading.core.signals import FRAMES, evaluate, evaluate_prefilter

AT_MS = 1_747_958_400_000 + (13 * 60 + 37) * 60_000


def _series(rng: np.random.Generator, tf: str, n: int, level: float) -> OHLCV:
    """A random walk with regime changes, ending with the bar that contains AT_MS."""
    step = TIMEFRAME_MS[tf]
    vol = 0.002 * np.sqrt(step / 60_000)
    drift = np.repeat(rng.normal(0, vol, n // 40 + 1), 40)[:n]
    close = level * np.exp(np.cumsum(drift + rng.normal(0, vol, n)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, vol, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, vol, n)))
    volume = rng.gamma(2.0, 1000.0, n)
    last = AT_MS // step * step
    times = last - step * np.arange(n - 1, -1, -1, dtype=np.int64)
    return OHLCV(times, open_, high, low, close, volume)


def _symbol(rng: np.random.Generator, n: int) -> dict[str, OHLCV]:
    level = float(rng.choice([0.0123, 1.7, 64_000.0]))
    return {tf: _series(rng, tf, n, level) for tf in FRAMES}


def _timings(fn: Callable[[], object], calls: int, rounds: int, unit: float) -> dict[str, float]:
    """Wall time (median, best) and CPU time of this process (best) per call, in ``unit`` ns.

    CPU time is reported too because the machine is shared: wall time also
    counts the moments another process held the core.
    """
    wall, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        for _ in range(calls):
            fn()
        wall.append((time.perf_counter_ns() - t0) / calls / unit)
        cpu.append((time.process_time_ns() - c0) / calls / unit)
    return {
        "wall_median": round(statistics.median(wall), 2),
        "wall_best": round(min(wall), 2),
        "cpu_best": round(min(cpu), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=150)
    ap.add_argument("--candles", type=int, default=1000, help="candles per timeframe")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()

    p = SignalParams()
    rng = np.random.default_rng(1)
    universe = [_symbol(rng, args.candles) for _ in range(args.symbols)]
    one = universe[0]

    evaluate("W", one, p, at_ms=AT_MS)  # warm the per-parameter plan cache
    full = _timings(lambda: evaluate("B", one, p, at_ms=AT_MS, full=True), 300, args.rounds, 1e3)
    pre = _timings(lambda: evaluate_prefilter(one["1h"], p), 3000, args.rounds, 1e3)
    fast = _timings(lambda: evaluate("B", one, p, at_ms=AT_MS, full=False), 3000, args.rounds, 1e3)

    def scan(full_eval: bool) -> None:
        for i, frames in enumerate(universe):
            evaluate(f"S{i}", frames, p, at_ms=AT_MS, full=full_eval)

    scan_full = _timings(lambda: scan(True), 1, args.rounds, 1e6)
    scan_fast = _timings(lambda: scan(False), 1, args.rounds, 1e6)
    passed = sum(evaluate("S", f, p, at_ms=AT_MS).prefilter_ok for f in universe)
    conditions = 20  # H1-H4, M1-M7, T1-T5, F1-F4

    print(
        json.dumps(
            {
                "benchmark": "signals",
                "python": platform.python_version(),
                "numpy": np.__version__,
                "candles_per_timeframe": args.candles,
                "evaluate_full_us": full,
                "evaluate_full_cpu_us_per_condition": round(full["cpu_best"] / conditions, 2),
                "prefilter_us": pre,
                "evaluate_prefilter_failed_fast_path_us": fast,
                "scan_symbols": args.symbols,
                "scan_full_ms": scan_full,
                "scan_full_projected_ms": round(full["wall_median"] * args.symbols / 1000, 2),
                "scan_fast_path_ms": scan_fast,
                "symbols_passing_prefilter": int(passed),
                "target_scan_ms": 250,
                "meets_target": scan_full["wall_median"] < 250,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
