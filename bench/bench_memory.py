"""Resident memory of the whole service after an hour of simulated time with 150 symbols (JSON output).

Target (ARCHITECTURE): < 400 MB. The real service runs in sim mode (synthetic market, 150 symbols, as fast as
possible), backfills every symbol's candles, streams, scans each minute and trades; RSS is read from
/proc/self/status after 60 simulated minutes (and the high-water mark over the run).

    .venv/bin/python bench/bench_memory.py [--symbols 150] [--minutes 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trading.service import Service  # noqa: E402
from trading.settings import Settings  # noqa: E402


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


async def run(symbols: int, minutes: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="surgedca-mem-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        trading_mode="sim", db_path=tmp / "db.sqlite3", sim_symbols=symbols, sim_speed=0, log_level="WARNING",
    )
    rss_before = _status_mb("VmRSS")
    service = Service(settings)
    t0 = time.perf_counter()
    await service.start()
    start_s = time.perf_counter() - t0
    engine = service.engine
    assert engine is not None
    sim_start = engine.ctx.clock.now_ms()
    rss_started = _status_mb("VmRSS")
    for _ in range(7200):  # at most an hour of wall time
        if engine.ctx.clock.now_ms() >= sim_start + minutes * 60_000:
            break
        await asyncio.sleep(0.5)
    wall = time.perf_counter() - t0
    result = {
        "benchmark": "resident memory after simulated time",
        "symbols": symbols,
        "simulated_minutes": minutes,
        "rss_mb_before_start": rss_before,
        "rss_mb_after_start": rss_started,
        "rss_mb_after_run": _status_mb("VmRSS"),
        "rss_mb_peak": _status_mb("VmHWM"),
        "candle_store_mb": round(engine.candles.memory_bytes() / 1e6, 1),
        "open_positions": len(engine.ctx.book),
        "start_s": round(start_s, 1),
        "wall_s": round(wall, 1),
        "target_mb": 400,
    }
    await service.shutdown("bench done")
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=150)
    ap.add_argument("--minutes", type=int, default=60)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(asyncio.run(run(args.symbols, args.minutes)), indent=2))


if __name__ == "__main__":
    main()
