"""``python -m tests.fakes.binance`` serves a synthetic market until it is told to stop."""

from __future__ import annotations

import asyncio
import json
import signal
import sys

import aiohttp

from tests.conftest import REPO
from tests.integration.fake_binance.conftest import BinanceClient, recv_json, ws_connect


async def test_standalone_process_prints_urls_and_streams_a_random_walk() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.binance",
        "--port",
        "0",
        "--symbols",
        "5",
        "--tick-ms",
        "50",
        "--history-minutes",
        "30",
        "--seed",
        "7",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            line = await process.stdout.readline()  # type: ignore[union-attr]
        info = json.loads(line)
        assert info["symbols"] == 5 and info["rest_url"].startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session:
            client = BinanceClient(session, info["rest_url"], info["api_key"], info["api_secret"])
            symbols = [s["symbol"] for s in (await client.public("/fapi/v1/exchangeInfo")).body["symbols"]]
            assert symbols[:2] == ["BTCUSDT", "ETHUSDT"] and len(symbols) == 5
            klines = (await client.public("/fapi/v1/klines", symbol=symbols[2], interval="1m", limit=100)).body
            assert 30 <= len(klines) <= 32  # the history plus the in-progress minute(s)
            assert (await client.signed("GET", "/fapi/v3/account")).status == 200
        async with ws_connect(f"{info['ws_url']}/market/ws/{symbols[3].lower()}@aggTrade") as ws:
            first, second = await recv_json(ws, 3), await recv_json(ws, 3)
            assert first["s"] == symbols[3] and second["a"] > first["a"]
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            code = await process.wait()
    assert code == 0
