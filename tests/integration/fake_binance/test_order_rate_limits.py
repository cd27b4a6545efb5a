"""The account's order-count limiters: X-MBX-ORDER-COUNT-10S / -1M headers, exchangeInfo's limits, -1015."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import T0, BinanceClient

ORDER = {"symbol": "BTCUSDT", "type": "MARKET", "quantity": "0.004"}


async def order(client: BinanceClient, side: str = "BUY"):
    return await client.signed("POST", "/fapi/v1/order", side=side, **ORDER)


async def test_order_replies_carry_both_counts(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0)
    fake.enforce_recv_window = False
    first, second = await order(client), await order(client, "SELL")
    assert (first.headers["X-MBX-ORDER-COUNT-10S"], first.headers["X-MBX-ORDER-COUNT-1M"]) == ("1", "1")
    assert (second.headers["x-mbx-order-count-10s"], second.headers["x-mbx-order-count-1m"]) == ("2", "2")
    await order(client)  # a position to protect
    algo = await client.signed(
        "POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL", type="STOP_MARKET",
        triggerPrice="45000.0", closePosition="true",
    )  # fmt: skip
    # New Algo Order counts on the order limiters too (Binance's 2026 change), with IP weight 0
    assert algo.status == 200 and algo.headers["X-MBX-ORDER-COUNT-10S"] == "4"
    assert algo.headers["X-MBX-USED-WEIGHT-1M"] == "0"
    listed = await client.signed("GET", "/fapi/v1/openOrders")
    assert "X-MBX-ORDER-COUNT-10S" not in listed.headers and "X-MBX-ORDER-COUNT-1M" not in listed.headers
    fake.advance_time_ms(10_000)  # a new 10-second window, the same minute
    third = await order(client)
    assert (third.headers["X-MBX-ORDER-COUNT-10S"], third.headers["X-MBX-ORDER-COUNT-1M"]) == ("1", "5")
    assert fake.order_counts() == (1, 5)


async def test_exchange_info_publishes_the_real_limits(fake: FakeBinance, client: BinanceClient) -> None:
    info = (await client.public("/fapi/v1/exchangeInfo")).body
    real = json.loads(
        (BINANCE_SAMPLES / "nautilus/tests__http_responses__http_futures_market_exchange_info.json").read_text()
    )
    orders = [r for r in info["rateLimits"] if r["rateLimitType"] == "ORDERS"]
    assert orders == [r for r in real["rateLimits"] if r["rateLimitType"] == "ORDERS"]  # 1200 / 1 min, 300 / 10 s
    fake.set_order_limits(per_10s=3, per_1m=7)
    info = (await client.public("/fapi/v1/exchangeInfo")).body
    assert {
        (r["interval"], r["intervalNum"], r["limit"]) for r in info["rateLimits"] if r["rateLimitType"] == "ORDERS"
    } == {
        ("SECOND", 10, 3),
        ("MINUTE", 1, 7),
    }


async def test_ten_second_limit_refuses_with_1015_and_nothing_executes(
    fake: FakeBinance, client: BinanceClient
) -> None:
    fake.set_time_ms(T0)
    fake.enforce_recv_window = False
    fake.set_order_limits(per_10s=3)
    for _ in range(3):
        assert (await order(client)).status == 200
    refused = await order(client)
    assert (refused.status, refused.body) == (
        429,
        {"code": -1015, "msg": "Too many new orders; current limit is 3 orders per 10 SECOND."},
    )
    assert "Retry-After" not in refused.headers  # documented for the IP limits only
    assert refused.headers["X-MBX-ORDER-COUNT-10S"] == "3"  # the refusal itself does not count
    assert len(fake.orders) == 3 and fake.position("BTCUSDT").qty == Decimal("0.012")
    fake.advance_time_ms(9_999)
    assert (await order(client)).code == -1015
    fake.advance_time_ms(1)
    assert (await order(client)).status == 200
    assert fake.order_counter.total == 4


async def test_minute_limit(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0)
    fake.enforce_recv_window = False
    fake.set_order_limits(per_10s=100, per_1m=4)
    for step in range(4):
        fake.advance_time_ms(10_000 if step else 0)  # four different 10-second windows
        assert (await order(client)).status == 200
    refused = await order(client)
    assert refused.body == {"code": -1015, "msg": "Too many new orders; current limit is 4 orders per 1 MINUTE."}
    fake.set_time_ms(T0 + 60_000)
    assert (await order(client)).status == 200
    assert fake.order_counts() == (1, 1)


async def test_unauthenticated_orders_do_not_count(fake: FakeBinance, client: BinanceClient) -> None:
    bad = await client.signed("POST", "/fapi/v1/order", secret="wrong", side="BUY", **ORDER)
    assert bad.code == -1022 and "X-MBX-ORDER-COUNT-10S" not in bad.headers
    assert fake.order_counts() == (0, 0)
