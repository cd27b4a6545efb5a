"""Run the fake as a standalone process (manual runs, benchmarks).

    python -m tests.fakes.binance --port 0 --symbols 150 --tick-ms 250

prints one JSON line (URLs, credentials, symbols) and serves until Ctrl-C / SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
from decimal import Decimal

from tests.fakes.binance.feed import RandomWalkFeed, synthetic_history, synthetic_symbols
from tests.fakes.binance.server import FakeBinance


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes.binance", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = a free port")
    parser.add_argument("--symbols", type=int, default=20, help="number of USDT perpetuals (BTCUSDT, ETHUSDT, ...)")
    parser.add_argument("--balance", default="1000")
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--api-secret", default="test-secret")
    parser.add_argument("--tick-ms", type=int, default=0, help="random-walk price feed period; 0 = no feed")
    parser.add_argument("--history-minutes", type=int, default=0, help="synthetic 1m candles preloaded per symbol")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--orders-per-10s", type=int, default=None, help="order-count limit (real: 300)")
    parser.add_argument("--orders-per-minute", type=int, default=None, help="order-count limit (real: 1200)")
    args = parser.parse_args(argv)
    if args.symbols < 1:
        parser.error("--symbols must be at least 1")
    if args.tick_ms < 0 or args.history_minutes < 0:
        parser.error("--tick-ms and --history-minutes cannot be negative")
    if any(v is not None and v < 1 for v in (args.orders_per_10s, args.orders_per_minute)):
        parser.error("order limits must be at least 1")
    return args


async def serve(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    fake = FakeBinance(api_key=args.api_key, api_secret=args.api_secret, balance=args.balance, port=args.port)
    fake.host = args.host
    fake.set_order_limits(per_10s=args.orders_per_10s, per_1m=args.orders_per_minute)
    for spec in synthetic_symbols(args.symbols, rng):
        fake.add_symbol(spec.pop("symbol"), **spec)
    if args.history_minutes:
        now = fake.now_ms()
        for symbol in list(fake.exchange.specs):
            spec = fake.exchange.specs[symbol]
            rows = synthetic_history(Decimal(fake.price(symbol)), spec.tick_size, now, args.history_minutes, rng)
            fake.load_klines(symbol, "1m", rows)
    await fake.start()
    feed = RandomWalkFeed(fake, period_ms=args.tick_ms, rng=rng) if args.tick_ms else None
    if feed is not None:
        feed.start()
    print(json.dumps({**fake.describe(), "tick_ms": args.tick_ms}), flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        if feed is not None:
            await feed.stop()
        await fake.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
