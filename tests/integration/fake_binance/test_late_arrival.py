"""The recvWindow rule against requests that reach the exchange late: held or late requests older than their
window are refused -1021 and never execute (the "original arrives after the retry" case)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient

ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.004"}


async def test_a_held_original_arrives_after_the_retry_and_is_refused(fake: FakeBinance, client: BinanceClient) -> None:
    hold = fake.faults.hold_next("POST", "/fapi/v1/order")
    original = asyncio.create_task(
        client.signed("POST", "/fapi/v1/order", newClientOrderId="sdca-t-1-enter-1", **ORDER)
    )
    async with asyncio.timeout(3):
        while not fake.requests or fake.requests[-1].fault != "hold":  # noqa: ASYNC110 - server state, no event
            await asyncio.sleep(0.01)
    # meanwhile the client gave up waiting, asked (nothing found) and sent again: that one executes
    missing = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="sdca-t-1-enter-1")
    assert missing.code == -2013
    retry = await client.signed("POST", "/fapi/v1/order", newClientOrderId="sdca-t-1-enter-1", **ORDER)
    assert retry.status == 200
    fake.advance_time_ms(6_000)  # the original only gets through now, past its 5 s recvWindow
    hold.release()
    late = await asyncio.wait_for(original, 3)
    assert (late.status, late.body) == (
        400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
    )  # fmt: skip
    assert [o.client_order_id for o in fake.orders] == ["sdca-t-1-enter-1"]
    assert fake.position("BTCUSDT").qty == Decimal("0.004")
    assert fake.order_counter.total == 1  # refused before the order limiter


async def test_a_held_request_inside_its_window_executes(fake: FakeBinance, client: BinanceClient) -> None:
    hold = fake.faults.hold_next("POST", "/fapi/v1/order")
    task = asyncio.create_task(client.signed("POST", "/fapi/v1/order", **ORDER))
    async with asyncio.timeout(3):
        while hold.hits == 0:  # noqa: ASYNC110 - server state, no event
            await asyncio.sleep(0.01)
    assert fake.orders == []  # held before the matching engine
    hold.release()
    assert (await asyncio.wait_for(task, 3)).status == 200 and len(fake.orders) == 1


async def test_arrive_late_without_waiting(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.arrive_late_next("POST", "/fapi/v1/order", late_ms=7_000)
    refused = await client.signed("POST", "/fapi/v1/order", **ORDER)
    assert refused.code == -1021 and fake.orders == []
    fake.faults.arrive_late_next("POST", "/fapi/v1/order", late_ms=7_000)
    wide = await client.signed("POST", "/fapi/v1/order", recvWindow=10_000, **ORDER)  # 7 s late fits 10 s
    assert wide.status == 200 and len(fake.orders) == 1


async def test_clear_releases_held_requests(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.hold_next("GET", "/fapi/v1/time", timeout_s=10)
    task = asyncio.create_task(client.public("/fapi/v1/time"))
    async with asyncio.timeout(3):
        while not fake.requests:  # noqa: ASYNC110 - server state, no event
            await asyncio.sleep(0.01)
    fake.faults.clear()
    assert (await asyncio.wait_for(task, 3)).status == 200
