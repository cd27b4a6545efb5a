"""Replay + simulated broker speed: minutes of 20 symbols per second, the backtest's inner loop.

Prints one JSON object. Target (ARCHITECTURE): the backtest handles >= 1,000,000
1m candles per minute of wall time; this measures the market side alone (the
replay's events and every price through the broker, with a position and a
resting stop on each symbol so the stop check is exercised), i.e. the budget
left for the engine is what this leaves of a minute.

    .venv/bin/python bench/bench_replay.py [--symbols 20] [--minutes 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from decimal import Decimal

from trading.core.models import floor_to
from trading.exchange.base import Side
from trading.exchange.replay import MarketReplay
from trading.exchange.simbroker import SimBroker
from trading.exchange.synthetic import SyntheticMarket


def _setup(symbols: int) -> tuple[MarketReplay, SimBroker]:
    synth = SyntheticMarket(7, symbols)
    broker = SimBroker(None, markets=synth.markets(), balance=Decimal(10_000_000))
    replay = MarketReplay.synthetic(7, broker=broker, market=synth)
    replay.step()
    for i, symbol in enumerate(replay.symbols):
        rules = broker.markets[symbol].rules
        price = broker.last_price(symbol)
        assert price is not None
        qty = max(rules.round_qty(Decimal(200) / price), rules.min_qty)
        broker.market_order(symbol, Side.BUY, qty, client_order_id=f"b-{i}")
        broker.place_stop_close(symbol, floor_to(price * Decimal("0.5"), rules.tick_size), client_algo_id=f"s-{i}")
    return replay, broker


def _run(replay: MarketReplay, minutes: int) -> tuple[float, int]:
    events = 0
    t0 = time.perf_counter()
    for _ in range(minutes):
        batch = replay.step()
        assert batch is not None
        events += len(batch)
    return time.perf_counter() - t0, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=20)
    ap.add_argument("--minutes", type=int, default=20_000, help="simulated minutes per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    t0 = time.perf_counter()
    replay, _ = _setup(args.symbols)
    setup_s = time.perf_counter() - t0
    steps_per_s = []
    events = 0
    for _ in range(args.rounds):
        elapsed, events = _run(replay, args.minutes)
        steps_per_s.append(args.minutes / elapsed)
    best = max(steps_per_s)
    median = statistics.median(steps_per_s)
    print(
        json.dumps(
            {
                "bench": "replay+broker",
                "symbols": args.symbols,
                "minutes_per_round": args.minutes,
                "rounds": args.rounds,
                "events_per_step": events // args.minutes,
                "setup_s": round(setup_s, 3),
                "steps_per_s_median": round(median, 1),
                "steps_per_s_best": round(best, 1),
                "candles_per_wall_minute_median": round(median * args.symbols * 60),
                "target_candles_per_wall_minute": 1_000_000,
                "ok": median * args.symbols * 60 >= 1_000_000,
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    main()
