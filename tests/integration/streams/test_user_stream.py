"""BinanceUserStream over a real WebSocket against the fake Binance on 127.0.0.1."""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlencode

import aiohttp
import pytest

from tests.fakes.binance import FakeBinance, sign
from tests.integration.streams.conftest import Collector, RestListenKeys, eventually
from trading.exchange import streams
from trading.exchange.base import AccountUpdate, OrderStatus, OrderUpdate, RateLimitedError, Side, StreamStatus
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
from trading.exchange.streams import BinanceUserStream


def private_keys(fake: FakeBinance) -> list[str | None]:
    return [c.listen_key for c in fake.ws_clients("private")]


async def test_a_fill_arrives_as_order_and_account_updates(fake: FakeBinance) -> None:
    keys = RestListenKeys(fake.rest_url, fake.api_key)
    stream = BinanceUserStream(fake.ws_url, keys)
    events = Collector(stream.events())
    try:
        await eventually(lambda: private_keys(fake) == keys.created[-1:] and keys.created)
        assert fake.ws_clients("private")[0].path.startswith("/private/ws?listenKey=")
        order = await fake.open_position_by_hand("BTCUSDT", qty="0.01")
        fills = await eventually(
            lambda: [o for o in events.of(OrderUpdate) if o.execution_type == "TRADE" and o.status.final]
        )
        fill = fills[-1]
        assert fill.symbol == "BTCUSDT" and fill.side == Side.BUY and fill.status == OrderStatus.FILLED
        assert fill.client_order_id == order.client_order_id
        assert fill.filled_qty == Decimal("0.01") and fill.last_price == Decimal("50000")
        assert fill.fee > 0 and not fill.reduce_only
        account = await eventually(lambda: [a for a in events.of(AccountUpdate) if a.positions])
        pos = account[-1].positions[0]
        assert pos.symbol == "BTCUSDT" and pos.qty == Decimal("0.01") and pos.entry_price == Decimal("50000")
        assert account[-1].wallet_balance is not None and account[-1].wallet_balance < Decimal(1000)  # fee paid
        assert [s.up for s in events.of(StreamStatus)] == [True]
    finally:
        await events.stop()
        await stream.close()
    assert keys.closed == keys.created[-1:]  # closing the stream releases the key


async def signed_market_buy(fake: FakeBinance, symbol: str, qty: str, client_id: str) -> dict[str, object]:
    """POST /fapi/v1/order like the live adapter would (HMAC-signed query)."""
    params = {
        "symbol": symbol,
        "side": "BUY",
        "type": "MARKET",
        "quantity": qty,
        "newClientOrderId": client_id,
        "newOrderRespType": "RESULT",
        "timestamp": str(fake.now_ms()),
    }
    query = urlencode(params)
    url = f"{fake.rest_url}/fapi/v1/order?{query}&signature={sign(query, fake.api_secret)}"
    async with aiohttp.ClientSession() as s, s.post(url, headers={"X-MBX-APIKEY": fake.api_key}) as r:
        body = await r.json()
        assert r.status == 200, body
        return body


async def test_a_signed_rest_order_fill_reaches_the_user_stream(fake: FakeBinance) -> None:
    keys = RestListenKeys(fake.rest_url, fake.api_key)
    stream = BinanceUserStream(fake.ws_url, keys)
    events = Collector(stream.events())
    try:
        await eventually(lambda: stream.up)
        reply = await signed_market_buy(fake, "ETHUSDT", "0.500", "sdca-7-entry-1")
        assert reply["status"] == "FILLED"
        await fake.flush()
        fills = await eventually(
            lambda: [o for o in events.of(OrderUpdate) if o.client_order_id == "sdca-7-entry-1" and o.status.final]
        )
        assert fills[-1].filled_qty == Decimal("0.5") and fills[-1].avg_price == Decimal(str(reply["avgPrice"]))
        assert str(fills[-1].order_id) == str(reply["orderId"])
    finally:
        await events.stop()
        await stream.close()


async def test_listen_key_expiry_recreates_the_key_and_reconnects(fake: FakeBinance) -> None:
    keys = RestListenKeys(fake.rest_url, fake.api_key)
    stream = BinanceUserStream(fake.ws_url, keys)
    events = Collector(stream.events())
    try:
        await eventually(lambda: private_keys(fake) == keys.created[-1:] and keys.created)
        old = keys.created[-1]
        fake.expire_listen_key()
        await eventually(lambda: len(keys.created) == 2 and private_keys(fake) == [keys.created[-1]])
        assert keys.created[-1] != old
        await eventually(lambda: [s.up for s in events.of(StreamStatus)] == [True, False, True])
        assert "expired" in events.of(StreamStatus)[1].detail
        await fake.open_position_by_hand("ETHUSDT", qty="1")
        await eventually(lambda: [o for o in events.of(OrderUpdate) if o.symbol == "ETHUSDT"])
    finally:
        await events.stop()
        await stream.close()


async def test_a_failed_keepalive_recreates_the_key(fake: FakeBinance) -> None:
    keys = RestListenKeys(fake.rest_url, fake.api_key)
    stream = BinanceUserStream(fake.ws_url, keys, keepalive_s=0.2)
    events = Collector(stream.events())
    try:
        await eventually(lambda: keys.keepalives >= 2, what="keepalives go out")
        assert len(keys.created) == 1
        keys.fail_keepalive = 1
        await eventually(lambda: len(keys.created) == 2 and stream.up)
        await eventually(lambda: [s.up for s in events.of(StreamStatus)] == [True, False, True])
        assert "keepalive" in events.of(StreamStatus)[1].detail
    finally:
        await events.stop()
        await stream.close()


async def test_a_dropped_private_socket_reconnects(fake: FakeBinance) -> None:
    keys = RestListenKeys(fake.rest_url, fake.api_key)
    stream = BinanceUserStream(fake.ws_url, keys)
    events = Collector(stream.events())
    try:
        await eventually(lambda: fake.ws_clients("private"))
        first = fake.ws_clients("private")[0].client_id
        await fake.drop_ws_connections("private")
        await eventually(lambda: fake.ws_clients("private") and fake.ws_clients("private")[0].client_id != first)
        await eventually(lambda: [s.up for s in events.of(StreamStatus)] == [True, False, True])
        await fake.open_position_by_hand("SOLUSDT", qty="2")
        await eventually(lambda: [o for o in events.of(OrderUpdate) if o.symbol == "SOLUSDT"])
        assert stream.last_message_age() is not None
    finally:
        await events.stop()
        await stream.close()


async def test_unreachable_listen_key_endpoint_is_retried(fake: FakeBinance) -> None:
    keys = RestListenKeys(fake.rest_url + "/nowhere", fake.api_key)
    stream = BinanceUserStream(fake.ws_url, keys, backoff_initial_s=0.05, backoff_max_s=0.1)
    events = Collector(stream.events())
    try:
        await eventually(lambda: events.of(StreamStatus))
        down = events.of(StreamStatus)[0]
        assert not down.up and "cannot connect" in down.detail
        keys.url = f"{fake.rest_url}/fapi/v1/listenKey"  # the endpoint comes back
        await eventually(lambda: [s.up for s in events.of(StreamStatus)] == [False, True])
    finally:
        await events.stop()
        await stream.close()


async def test_closing_never_waits_out_a_rate_limit_pause(fake: FakeBinance, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 429 (or a 418 ban) pauses every non-exit request for Retry-After; the stop must not wait for it just to
    delete the listen key (an unused key expires by itself). It used to hold a service's stop for the whole
    pause, past the shutdown budget the container manager allows."""
    monkeypatch.setattr(streams, "LISTEN_KEY_CLOSE_TIMEOUT_S", 0.5)  # the bound, shortened for the test
    adapter = CcxtBinanceAdapter(api_key=fake.api_key, api_secret=fake.api_secret, rest_url=fake.rest_url)
    stream = BinanceUserStream(fake.ws_url, adapter)
    events = Collector(stream.events())
    try:
        await eventually(lambda: stream.listen_key is not None and fake.ws_clients("private"))
        fake.faults.rate_limit_next("GET", "/fapi/v3/account", retry_after=60)
        with pytest.raises(RateLimitedError):
            await adapter.fetch_balance()
        assert adapter.rate_limited_for() > 50
        await events.stop()
        t0 = time.monotonic()
        await stream.close()
        assert time.monotonic() - t0 < 2.0  # not 60 s
    finally:
        await adapter.close()
