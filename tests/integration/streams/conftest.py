"""Fixtures for the stream clients against the loopback fake Binance (127.0.0.1 only)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from tests.fakes.binance import FakeBinance
from tests.polling import until

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT")


async def eventually(predicate: Callable[[], Any], within: float = 5.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy (bounded)."""
    return await until(predicate, within, what, every=0.01)


class Collector:
    """Reads an ``events()`` iterator into a list in the background (a consumer that keeps up)."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.items: list[Any] = []
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for ev in self.events:
            self.items.append(ev)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.items if isinstance(e, kind)]

    async def stop(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class RestListenKeys:
    """A tiny ``ListenKeyAPI`` over the fake's REST endpoints (the real adapter lives elsewhere)."""

    def __init__(self, rest_url: str, api_key: str) -> None:
        self.url = f"{rest_url}/fapi/v1/listenKey"
        self.headers = {"X-MBX-APIKEY": api_key}
        self.created: list[str] = []
        self.keepalives = 0
        self.closed: list[str] = []
        self.fail_keepalive = 0  # the next n keepalives raise

    async def _call(self, method: str, params: dict[str, str] | None = None) -> dict[str, Any]:
        async with aiohttp.ClientSession() as s, s.request(method, self.url, headers=self.headers, params=params) as r:
            body = await r.json(content_type=None)
            if r.status != 200:
                raise RuntimeError(f"listenKey {method} -> {r.status} {body}")
            return body

    async def create_listen_key(self) -> str:
        key = (await self._call("POST"))["listenKey"]
        self.created.append(key)
        return key

    async def keepalive_listen_key(self, listen_key: str) -> None:
        if self.fail_keepalive:
            self.fail_keepalive -= 1
            raise RuntimeError("keepalive refused (-1125 This listenKey does not exist.)")
        await self._call("PUT", {"listenKey": listen_key})
        self.keepalives += 1

    async def close_listen_key(self, listen_key: str) -> None:
        await self._call("DELETE", {"listenKey": listen_key})
        self.closed.append(listen_key)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key="test-key", api_secret="test-secret", balance="1000")
    fb.add_symbol("BTCUSDT", price="50000", tick_size="0.10", step_size="0.001", min_qty="0.001", min_notional="100")
    for sym in SYMBOLS[1:]:
        fb.add_symbol(sym, price="100", tick_size="0.01", step_size="0.001")
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()
