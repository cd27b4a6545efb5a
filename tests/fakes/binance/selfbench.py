"""How fast is the fake itself? (so it is never mistaken for the service's bottleneck)

    python -m tests.fakes.binance.selfbench [--symbols 150] [--ticks 3000] [--orders 300]

Prints one JSON object: set_price -> message received on a 150-stream market socket, a signed
MARKET order's REST round trip, and set_price throughput. Run by hand, not part of pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from urllib.parse import urlencode

import aiohttp
import websockets

from tests.fakes.binance.feed import synthetic_symbols
from tests.fakes.binance.server import FakeBinance
from tests.fakes.binance.signing import sign


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


async def run(symbols: int, ticks: int, orders: int) -> dict[str, object]:
    fake = FakeBinance(balance="100000000")
    rng = random.Random(1)
    for spec in synthetic_symbols(symbols, rng):
        spec["min_notional"] = "0"
        fake.add_symbol(spec.pop("symbol"), **spec)
    names = list(fake.exchange.specs)
    async with fake:
        streams = "/".join(f"{s.lower()}@kline_1m" for s in names[:150])
        async with websockets.connect(f"{fake.ws_url}/market/stream?streams={streams}", proxy=None) as ws:
            assert fake.ws_clients("market"), "subscribed before the handshake completes"
            latencies = []
            for i in range(ticks):
                symbol = names[i % min(len(names), 150)]
                spec = fake.exchange.specs[symbol]
                price = fake.price(symbol) + spec.tick_size * (1 if i % 2 else -1)
                started = time.perf_counter()
                await fake.set_price(symbol, price)
                await ws.recv()
                latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            for i in range(ticks):
                symbol = names[i % len(names)]
                spec = fake.exchange.specs[symbol]
                await fake.set_price(symbol, fake.price(symbol) + spec.tick_size * (1 if i % 2 else -1))
            throughput = ticks / (time.perf_counter() - started)

        async with aiohttp.ClientSession() as session:
            round_trips = []
            for i in range(orders):
                side = "BUY" if i % 2 == 0 else "SELL"
                query = urlencode(
                    {
                        "symbol": "BTCUSDT",
                        "side": side,
                        "type": "MARKET",
                        "quantity": "0.001",
                        "newOrderRespType": "RESULT",
                        "timestamp": fake.now_ms(),
                    }
                )
                body = query + "&signature=" + sign(query, fake.api_secret)
                headers = {"X-MBX-APIKEY": fake.api_key, "Content-Type": "application/x-www-form-urlencoded"}
                started = time.perf_counter()
                async with session.post(f"{fake.rest_url}/fapi/v1/order", data=body, headers=headers) as reply:
                    await reply.read()
                    assert reply.status == 200, await reply.text()
                round_trips.append(time.perf_counter() - started)
    return {
        "bench": "fake_binance_self",
        "symbols": symbols,
        "set_price_to_ws_recv_ms": {
            "p50": _pct(latencies, 0.5),
            "p99": _pct(latencies, 0.99),
            "mean": round(statistics.fmean(latencies) * 1000, 3),
        },
        "set_price_per_s_no_reader_wait": round(throughput),
        "market_order_round_trip_ms": {"p50": _pct(round_trips, 0.5), "p99": _pct(round_trips, 0.99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=150)
    parser.add_argument("--ticks", type=int, default=3000)
    parser.add_argument("--orders", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.symbols, args.ticks, args.orders))))


if __name__ == "__main__":
    main()
