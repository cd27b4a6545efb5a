"""Resident memory of the whole service (JSON output). Target (ARCHITECTURE): < 400 MB.

Two runs, each in its own process so one does not inflate the other:

- ``sim``: the real service in sim mode (synthetic market, 150 symbols, as fast as possible), headless: it
  backfills every symbol's candles, streams, scans each minute and trades; RSS after 60 simulated minutes.
- ``live_bot``: the real service in live mode against the loopback fake Binance (150 symbols moving, 10
  positions held) with its Telegram bot on against the loopback fake Bot API, both fakes in a child process
  (their memory is not the service's); the bot is used (/positions, /health, /stats, /why, /risk, /chart) for
  ``--bot-seconds`` while the market moves. Importing aiogram alone costs ~150 MB, so this is the figure that
  matters for a user with Telegram.

RSS is read from /proc/self/status after the run, with the high-water mark over it.

    .venv/bin/python bench/bench_memory.py [--symbols 150] [--minutes 60] [--bot-seconds 60] [--only sim|live_bot]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.bench_hot_path import live_settings  # noqa: E402
from trading.engine import Engine  # noqa: E402
from trading.service import Service  # noqa: E402
from trading.settings import Settings  # noqa: E402


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return -1.0


class Started:
    """The real service, started with the process's RSS read before and after its start."""

    def __init__(self, service: Service, engine: Engine, rss_before: float, t0: float) -> None:
        self.service, self.engine, self.rss_before, self.t0 = service, engine, rss_before, t0
        self.start_s = time.perf_counter() - t0
        self.rss_started = _status_mb("VmRSS")

    @classmethod
    async def start(cls, settings: Settings) -> Started:
        rss_before = _status_mb("VmRSS")
        service = Service(settings)
        t0 = time.perf_counter()
        await service.start()
        assert service.engine is not None
        return cls(service, service.engine, rss_before, t0)

    def figures(self) -> dict[str, object]:
        """What both runs report, read now."""
        return {
            "open_positions": len(self.engine.ctx.book),
            "rss_mb_before_start": self.rss_before,
            "rss_mb_after_start": self.rss_started,
            "rss_mb_after_run": _status_mb("VmRSS"),
            "rss_mb_peak": _status_mb("VmHWM"),
            "candle_store_mb": round(self.engine.candles.memory_bytes() / 1e6, 1),
            "start_s": round(self.start_s, 1),
            "wall_s": round(time.perf_counter() - self.t0, 1),
            "target_mb": 400,
        }


async def run(symbols: int, minutes: int) -> dict[str, object]:
    tmp = Path(tempfile.mkdtemp(prefix="surgedca-mem-"))
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        trading_mode="sim",
        db_path=tmp / "db.sqlite3",
        sim_symbols=symbols,
        sim_speed=0,
        log_level="WARNING",
    )
    started = await Started.start(settings)
    engine = started.engine
    sim_start = engine.ctx.clock.now_ms()
    for _ in range(7200):  # at most an hour of wall time
        if engine.ctx.clock.now_ms() >= sim_start + minutes * 60_000:
            break
        await asyncio.sleep(0.5)
    result = {
        "benchmark": "resident memory after simulated time",
        "symbols": symbols,
        "simulated_minutes": minutes,
        **started.figures(),
    }
    await started.service.shutdown("bench done")
    return result


# ---------------------------------------------------------------------- live mode with the Telegram bot on
CHAT = 408258968
COMMANDS = ("/positions", "/health", "/stats", "/why BTCUSDT", "/risk", "/chart ETHUSDT")


def _history(price: float, days: float, rng: object) -> list[tuple[int, str, str, str, str, str]]:
    """``days`` of 1m candles up to the current minute: a random walk around ``price`` (the service backfills
    them over REST as live, so its candle store holds what it would hold for real)."""
    import random

    assert isinstance(rng, random.Random)
    now = int(time.time() * 1000) // 60_000 * 60_000
    n = int(days * 1440)
    rows = []
    p = price
    for i in range(n):
        o = p
        p = max(p * (1 + rng.gauss(0, 0.001)), price * 0.2)
        hi, lo = max(o, p) * 1.0005, min(o, p) * 0.9995
        rows.append((now - (n - i) * 60_000, f"{o:.6g}", f"{hi:.6g}", f"{lo:.6g}", f"{p:.6g}", "1000"))
    return rows


async def fakes_main(symbols: int, history_days: float) -> None:
    """Child: the fake Binance (``symbols`` moving, 10 positions opened by hand) and the fake Bot API."""
    import random
    from decimal import Decimal

    from tests.fakes.binance.feed import _round_to, synthetic_symbols
    from tests.fakes.binance.server import FakeBinance
    from tests.fakes.telegram.server import FakeTelegram

    rng = random.Random(5)
    fake = FakeBinance(api_key="k", api_secret="s", balance="100000")
    for spec in synthetic_symbols(symbols, rng):
        fake.add_symbol(spec.pop("symbol"), **spec)
    fake.weights.limit = 10**9  # the backfill's pacing is the service's own; the fake never refuses it
    for sym in fake.exchange.specs:
        fake.load_klines(sym, "1m", _history(float(fake.price(sym)), history_days, rng))
    await fake.start()
    tg = FakeTelegram()
    await tg.start()
    names = sorted(fake.exchange.specs)
    for sym in names[:10]:  # about 50 USDT each: the service adopts them
        qty = _round_to(Decimal(50) / fake.price(sym), fake.exchange.specs[sym].step_size)
        await fake.open_position_by_hand(sym, str(qty))

    async def feed() -> None:
        while True:
            for sym in names:
                spec = fake.exchange.specs[sym]
                step = Decimal(str(1 + rng.gauss(0, 0.0005)))
                await fake.set_price(sym, _round_to(fake.price(sym) * step, spec.tick_size))
            await asyncio.sleep(0.5)

    task = asyncio.create_task(feed())
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(json.dumps({"rest": fake.rest_url, "ws": fake.ws_url, "tg": tg.base_url, "token": tg.token}), flush=True)
    while line := await reader.readline():
        cmd = json.loads(line)
        if cmd["cmd"] == "say":
            tg.push_message(CHAT, CHAT, cmd["text"])
            print(json.dumps({"ok": True}), flush=True)
        elif cmd["cmd"] == "replies":
            print(json.dumps({"n": len(tg.bot_messages(CHAT))}), flush=True)
        elif cmd["cmd"] == "stop":
            break
    task.cancel()
    await tg.stop()
    await fake.stop()


async def run_live_bot(symbols: int, bot_seconds: float, history_days: float) -> dict[str, object]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--fakes",
        "--symbols",
        str(symbols),
        "--history-days",
        str(history_days),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    info = json.loads(await proc.stdout.readline())

    async def ask(**cmd: object) -> dict[str, object]:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        return json.loads(await proc.stdout.readline())

    settings = live_settings(  # the 10 positions are managed, not asked about
        info,
        "surgedca-mem-",
        telegram_bot_token=info["token"],
        telegram_api_url=info["tg"],
        telegram_allowed_chat_ids=[CHAT],
    )
    started = await Started.start(settings)
    asked = 0
    deadline = time.monotonic() + bot_seconds
    while time.monotonic() < deadline:
        for text in COMMANDS:
            await ask(cmd="say", text=text)
            asked += 1
            await asyncio.sleep(bot_seconds / 30)
    replies = (await ask(cmd="replies"))["n"]
    result = {
        "benchmark": "resident memory, live mode with the Telegram bot on",
        "symbols": symbols,
        "commands_sent": asked,
        "bot_replies": replies,
        **started.figures(),
    }
    await started.service.shutdown("bench done")
    with contextlib.suppress(Exception):
        proc.stdin.write(b'{"cmd": "stop"}\n')
        await proc.stdin.drain()
    await proc.wait()
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--symbols", type=int, default=150)
    ap.add_argument("--minutes", type=int, default=60)
    ap.add_argument("--bot-seconds", type=float, default=60.0)
    ap.add_argument("--history-days", type=float, default=7.0, help="1m history each symbol has to backfill")
    ap.add_argument("--only", choices=("sim", "live_bot"))
    ap.add_argument("--fakes", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--one", choices=("sim", "live_bot"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.fakes:
        asyncio.run(fakes_main(args.symbols, args.history_days))
        return
    if args.one == "sim":
        print(json.dumps(asyncio.run(run(args.symbols, args.minutes))))
        return
    if args.one == "live_bot":
        print(json.dumps(asyncio.run(run_live_bot(args.symbols, args.bot_seconds, args.history_days))))
        return
    out = {}
    for name in ("sim", "live_bot"):
        if args.only not in (None, name):
            continue
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--one",
                name,
                "--symbols",
                str(args.symbols),
                "--minutes",
                str(args.minutes),
                "--bot-seconds",
                str(args.bot_seconds),
                "--history-days",
                str(args.history_days),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
