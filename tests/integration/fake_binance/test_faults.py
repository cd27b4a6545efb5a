"""Injected REST faults and the weight limit."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import aiohttp
import pytest

from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.004"}


async def test_fail_next_answers_without_executing(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.fail_next("POST", "/fapi/v1/order", status=503)
    reply = await client.signed("POST", "/fapi/v1/order", newClientOrderId="c-1", **ORDER)
    assert reply.status == 503 and reply.code == -1007
    assert "execution status unknown" in reply.body["msg"]
    assert fake.orders == [] and fake.requests[-1].fault == "fail"
    assert (await client.signed("POST", "/fapi/v1/order", newClientOrderId="c-1", **ORDER)).status == 200  # once only


async def test_fail_next_with_execution_hides_a_real_fill(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.fail_next("POST", "/fapi/v1/order", status=503, execute=True)
    reply = await client.signed("POST", "/fapi/v1/order", newClientOrderId="c-2", **ORDER)
    assert reply.status == 503
    found = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="c-2")
    assert found.body["status"] == "FILLED" and fake.position("BTCUSDT").qty == Decimal("0.004")


async def test_fail_next_custom_body_and_times(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.fail_next("GET", "/fapi/v1/time", status=500, body={"code": -1001, "msg": "Internal error."}, times=2)
    first, second, third = [await client.public("/fapi/v1/time") for _ in range(3)]
    assert [first.status, second.status, third.status] == [500, 500, 200]
    assert first.body == {"code": -1001, "msg": "Internal error."}


async def test_rate_limit_next_429_and_418(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.rate_limit_next("GET", "/fapi/v1/klines", retry_after=7, status=429)
    reply = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m")
    assert (reply.status, reply.code, reply.headers["Retry-After"]) == (429, -1003, "7")
    assert "X-MBX-USED-WEIGHT-1M" in reply.headers
    fake.faults.rate_limit_next("GET", "/fapi/v1/klines", retry_after=60, status=418)
    banned = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m")
    assert (banned.status, banned.code) == (418, -1003) and "banned" in banned.body["msg"]
    assert (await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m")).status == 200
    with pytest.raises(ValueError, match="429 or 418"):
        fake.faults.rate_limit_next("GET", "/fapi/v1/klines", status=500)


async def test_lost_response_executes_then_drops_the_connection(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.lose_response_next("POST", "/fapi/v1/order")
    with pytest.raises(aiohttp.ClientError):
        await client.signed("POST", "/fapi/v1/order", newClientOrderId="lost-1", **ORDER)
    # the order went through: asking by client id finds it (rule 2 of the order-safety rules)
    found = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="lost-1")
    assert found.status == 200 and found.body["status"] == "FILLED"
    assert fake.requests[-2].fault == "lose_response"


async def test_delay_holds_the_request(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.delay("POST", "/fapi/v1/order", seconds=0.4)
    started = time.monotonic()
    task_reply = await client.signed("POST", "/fapi/v1/order", **ORDER)
    assert task_reply.status == 200 and time.monotonic() - started >= 0.4
    assert fake.requests[-1].fault == "delay"
    await client.signed("POST", "/fapi/v1/order", **ORDER)
    assert fake.requests[-1].fault is None and fake.faults.rules == []  # used up


async def test_delay_after_execution_lets_a_client_timeout_miss_a_fill(
    fake: FakeBinance, client: BinanceClient
) -> None:
    fake.faults.delay("POST", "/fapi/v1/order", seconds=1.0, after=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await client.signed("POST", "/fapi/v1/order", newClientOrderId="slow-1", **ORDER)
    assert fake.orders[-1].client_order_id == "slow-1" and fake.orders[-1].status == "FILLED"


async def test_clear_removes_every_fault(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.fail_next("GET", "/fapi/v1/ping", times=5)
    fake.faults.silence_market(30)
    fake.faults.clear()
    assert (await client.public("/fapi/v1/ping")).status == 200
    assert not fake.faults.market_silent()


async def test_weight_over_the_limit_gets_429_with_retry_after() -> None:
    fake = FakeBinance(weight_limit=50)
    fake.add_symbol("BTCUSDT", price="50000", tick_size="0.10")
    async with fake, aiohttp.ClientSession() as session:
        client = BinanceClient(session, fake.rest_url)
        assert (await client.public("/fapi/v1/ticker/24hr")).status == 200  # 40
        assert (await client.public("/fapi/v1/ticker/price")).status == 200  # 42
        last_fit = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1000)  # 47
        assert (last_fit.status, last_fit.headers["X-MBX-USED-WEIGHT-1M"]) == (200, "47")
        over = await client.public("/fapi/v1/ticker/24hr")  # 87 > 50
        assert (over.status, over.code) == (429, -1003)
        assert "current limit is 50 requests per minute" in over.body["msg"]
        assert 1 <= int(over.headers["Retry-After"]) <= 60
        fake.reset_weight()
        assert (await client.public("/fapi/v1/ping")).status == 200
