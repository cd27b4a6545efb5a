"""Steady-state REST request weight of the real service with 150 symbols and 10 open positions (JSON output).

Target (ARCHITECTURE): < 5% of Binance's 2,400/min. Candles come from the WebSocket, not polling; what remains
is the reconciler (positions every 15 s, backstops per held symbol, the balance every minute, a full sweep of
open orders every 5 minutes), the hourly universe refresh and the listen-key keep-alive. The fake Binance runs
in a child process (the one of ``bench_hot_path.py``) and counts the weight of every request it serves, with
Binance's weights; the figure is taken after start-up (backfill is a one-off) over ``--minutes`` of wall time.

    .venv/bin/python bench/bench_service_weight.py [--minutes 6]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_hot_path import Child, live_settings  # noqa: E402
from trading.service import Service  # noqa: E402


async def run(minutes: float) -> dict[str, object]:
    child, info = await Child.spawn()
    for sym in info["held"]:
        await child.ask(cmd="open", symbol=sym, qty="10", price="100")
    settings = live_settings(info, "surgedca-weight-")  # the default strategy: the cadence measured is the real one
    service = Service(settings)
    await service.start()
    await asyncio.sleep(20)  # start-up work (backfill, first reconcile, backstops) settles
    before = await child.ask(cmd="weight")
    await asyncio.sleep(minutes * 60)
    after = await child.ask(cmd="weight")
    await service.shutdown("bench done")
    await child.tell(cmd="stop")
    await child.proc.wait()
    per_min = (after["total"] - before["total"]) / minutes
    return {
        "benchmark": "steady-state REST weight of the service",
        "symbols_streamed": 150,
        "open_positions": len(info["held"]),
        "minutes_measured": minutes,
        "requests": after["requests"] - before["requests"],
        "weight_per_minute": round(per_min, 1),
        "percent_of_2400": round(per_min / 2400 * 100, 2),
        "target_percent": 5.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=6.0)
    args = ap.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(asyncio.run(run(args.minutes)), indent=2))


if __name__ == "__main__":
    main()
