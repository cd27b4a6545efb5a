"""Market stream benchmark: messages parsed and dispatched per second, CPU per message.

    .venv/bin/python bench/bench_streams.py [--symbols 150] [--held 10] [--seconds 10] [--no-live]

Two measurements, printed as one JSON object:
- ``dispatch``: the reader's per-message work alone (no socket), on Binance-shaped combined-stream
  messages for ``--symbols`` symbols: in-progress klines (most of the traffic; skipped unparsed unless
  held), closed klines, aggTrades and mark prices of the held symbols.
- ``live``: a real WebSocket on 127.0.0.1 to the fake Binance in standalone mode (a child process with
  a random-walk feed, ``<sym>@kline_1m`` for every symbol plus aggTrade/markPrice for the held ones);
  CPU time of this process only (the fake runs in its own process).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from trading.exchange.base import KlineEvent, PriceEvent  # noqa: E402
from trading.exchange.streams import BinanceMarketStream  # noqa: E402


def _kline(symbol: str, t: int, price: float, closed: bool) -> dict[str, Any]:
    p = f"{price:.4f}"
    return {
        "e": "kline",
        "E": t + 1234,
        "s": symbol,
        "k": {
            "t": t,
            "T": t + 59_999,
            "s": symbol,
            "i": "1m",
            "f": 1,
            "L": 9,
            "o": p,
            "c": p,
            "h": p,
            "l": p,
            "v": "12.5",
            "n": 9,
            "x": closed,
            "q": "100.0",
            "V": "6.1",
            "Q": "50.0",
            "B": "0",
        },
    }


def _wrap(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def build_messages(symbols: list[str], held: set[str]) -> list[str]:
    """One minute of traffic: 4 in-progress klines per second per symbol, 1 closed kline per symbol,
    10 aggTrades and 1 mark price per second per held symbol."""
    t = 1_767_225_600_000
    msgs: list[str] = []
    for second in range(60):
        for s in symbols:
            low = s.lower()
            for q in range(4):
                msgs.append(_wrap(f"{low}@kline_1m", _kline(s, t, 100 + second / 100 + q / 1000, False)))
            if s in held:
                for q in range(10):
                    agg = {
                        "e": "aggTrade",
                        "E": t + q,
                        "a": q,
                        "s": s,
                        "p": f"{100 + q / 100:.2f}",
                        "q": "1",
                        "f": q,
                        "l": q,
                        "T": t + q,
                        "m": False,
                    }
                    msgs.append(_wrap(f"{low}@aggTrade", agg))
                mark = {
                    "e": "markPriceUpdate",
                    "E": t,
                    "s": s,
                    "p": "100.00000000",
                    "i": "100.0",
                    "P": "100.0",
                    "r": "0.0001",
                    "T": t + 28_800_000,
                }
                msgs.append(_wrap(f"{low}@markPrice@1s", mark))
    for s in symbols:
        msgs.append(_wrap(f"{s.lower()}@kline_1m", _kline(s, t, 100.5, True)))
    return msgs


def bench_dispatch(symbols: list[str], held: set[str], rounds: int) -> dict[str, Any]:
    stream = BinanceMarketStream("ws://127.0.0.1:9")
    consumer = stream.events()
    stream._held, stream._held_lower = frozenset(held), frozenset(s.lower() for s in held)
    conn: Any = SimpleNamespace(name="bench", on_reply=lambda msg: None)
    msgs = build_messages(symbols, held)
    delivered = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(rounds):
        for raw in msgs:
            stream._on_raw(raw, conn)
        while consumer.buffer.get_nowait() is not None:  # a consumer that keeps up once per minute
            delivered += 1
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(msgs) * rounds
    return {
        "messages": n,
        "messages_per_s": round(n / wall),
        "cpu_us_per_message": round(cpu / n * 1e6, 2),
        "events_delivered": delivered,
        "share_skipped_unparsed": round(
            sum('"x":false' in m and not any(f'"{h.lower()}@' in m for h in held) for m in msgs) / len(msgs), 3
        ),
    }


async def bench_live(n_symbols: int, n_held: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.binance",
        "--symbols",
        str(n_symbols),
        "--tick-ms",
        "250",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        async with aiohttp.ClientSession() as s, s.get(f"{info['rest_url']}/fapi/v1/exchangeInfo") as r:
            symbols = [x["symbol"] for x in (await r.json())["symbols"]]
        stream = BinanceMarketStream(info["ws_url"])
        events = stream.events()
        counts = {"kline_closed": 0, "price": 0, "other": 0}

        async def consume() -> None:
            async for ev in events:
                if isinstance(ev, KlineEvent):
                    counts["kline_closed"] += 1
                elif isinstance(ev, PriceEvent):
                    counts["price"] += 1
                else:
                    counts["other"] += 1

        task = asyncio.get_running_loop().create_task(consume())
        await stream.set_symbols(symbols, symbols[:n_held])
        await asyncio.sleep(2.0)  # connect and subscribe first
        m0, t0, c0 = stream.messages, time.perf_counter(), time.process_time()
        await asyncio.sleep(seconds)
        m1, t1, c1 = stream.messages, time.perf_counter(), time.process_time()
        connections = stream.connections()
        await stream.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        n = m1 - m0
        return {
            "symbols": len(symbols),
            "held": n_held,
            "connections": connections,
            "seconds": round(t1 - t0, 2),
            "messages": n,
            "messages_per_s": round(n / (t1 - t0)),
            "client_cpu_us_per_message": round((c1 - c0) / max(n, 1) * 1e6, 2),
            "client_cpu_share": round((c1 - c0) / (t1 - t0), 3),
            "events": counts,
            "parse_errors": stream.parse_errors,
            "note": "message rate is bounded by the fake's random-walk feed, not by the client",
        }
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=150)
    ap.add_argument("--held", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--no-live", action="store_true", help="skip the loopback measurement")
    args = ap.parse_args()
    symbols = [f"SYM{i:03d}USDT" for i in range(args.symbols)]
    result: dict[str, Any] = {"dispatch": bench_dispatch(symbols, set(symbols[: args.held]), args.rounds)}
    if not args.no_live:
        result["live"] = asyncio.run(bench_live(args.symbols, args.held, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
