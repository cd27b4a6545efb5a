"""Fixtures and a small Binance client of our own (aiohttp + HMAC, websockets) for the fake's tests."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import websockets

from tests.fakes.binance import FakeBinance, sign
from tests.fakes.binance.catalog import BTCUSDT
from tests.polling import until

API_KEY = "test-key"
API_SECRET = "test-secret"
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC, a minute boundary


@dataclass
class Reply:
    status: int
    headers: Mapping[str, str]  # case-insensitive, like HTTP
    body: Any

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


class BinanceClient:
    """Signs like the real clients do: everything in the query for GET/DELETE, in the form body for POST/PUT."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, api_key: str = API_KEY, secret: str = API_SECRET):
        self.session = session
        self.base_url = base_url
        self.api_key = api_key
        self.secret = secret

    async def public(self, path: str, **params: Any) -> Reply:
        return await self.raw("GET", path, query=urlencode(params))

    async def signed(
        self,
        method: str,
        path: str,
        *,
        secret: str | None = None,
        api_key: str | None = None,
        timestamp: int | None = None,
        **params: Any,
    ) -> Reply:
        fields = {k: _wire(v) for k, v in params.items()}
        fields.setdefault("recvWindow", "5000")
        fields["timestamp"] = str(timestamp if timestamp is not None else int(time.time() * 1000))
        payload = urlencode(fields)
        payload += "&signature=" + sign(payload, secret or self.secret)
        headers = {"X-MBX-APIKEY": api_key if api_key is not None else self.api_key}
        if method in ("GET", "DELETE"):
            return await self.raw(method, path, query=payload, headers=headers)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.raw(method, path, body=payload, headers=headers)

    async def keyed(self, method: str, path: str, **params: Any) -> Reply:
        return await self.raw(method, path, query=urlencode(params), headers={"X-MBX-APIKEY": self.api_key})

    async def raw(
        self, method: str, path: str, *, query: str = "", body: str | None = None, headers: dict[str, str] | None = None
    ) -> Reply:
        url = self.base_url + path + ("?" + query if query else "")
        async with self.session.request(method, url, data=body, headers=headers or {}) as response:
            text = await response.text()
            try:
                parsed: Any = json.loads(text)
            except ValueError:
                parsed = text
            return Reply(response.status, response.headers.copy(), parsed)


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


async def recv_json(ws: Any, within: float = 2.0) -> Any:
    async with asyncio.timeout(within):
        return json.loads(await ws.recv())


async def recv_until(ws: Any, predicate: Callable[[Any], bool], within: float = 3.0) -> tuple[Any, list[Any]]:
    """Read until a message satisfies ``predicate``; returns it and everything read before it."""
    seen: list[Any] = []
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message, seen
            seen.append(message)


async def no_message(ws: Any, within: float = 0.3) -> bool:
    try:
        async with asyncio.timeout(within):
            await ws.recv()
    except TimeoutError:
        return True
    return False


def ws_connect(url: str, **kwargs: Any) -> Any:
    return websockets.connect(url, proxy=None, open_timeout=5, close_timeout=2, **kwargs)


async def eventually(predicate: Callable[[], Any], within: float = 3.0) -> Any:
    """Poll ``predicate`` (server-side state has no event to wait on) until truthy, for at most ``within`` s."""
    return await until(predicate, within, every=0.01)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key=API_KEY, api_secret=API_SECRET, balance="1000", taker_fee="0.0005")
    fb.add_symbol(**BTCUSDT)
    fb.add_symbol("ETHUSDT", price="3000", tick_size="0.01", step_size="0.001", min_notional="20", max_leverage=100)
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


@pytest.fixture
async def client(fake: FakeBinance) -> AsyncIterator[BinanceClient]:
    async with aiohttp.ClientSession() as session:
        yield BinanceClient(session, fake.rest_url)


async def user_stream(fake: FakeBinance, client: BinanceClient) -> Any:
    """A user-data socket on a fresh listen key (use as ``async with await user_stream(...) as ws``)."""
    key = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    return ws_connect(f"{fake.ws_url}/private/ws?listenKey={key}")


async def drain(ws: Any, within: float = 0.3) -> list[Any]:
    """Every message that arrives until the socket stays quiet for ``within`` seconds."""
    seen: list[Any] = []
    while True:
        try:
            async with asyncio.timeout(within):
                seen.append(json.loads(await ws.recv()))
        except TimeoutError:
            return seen
