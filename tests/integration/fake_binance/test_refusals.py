"""Refusals injected by Binance code, matched on method, path and order parameters; refused requests never execute."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import T0, BinanceClient

D = Decimal
ORDER = "/fapi/v1/order"
ALGO = "/fapi/v1/algoOrder"


def _error_sample(name: str) -> dict:
    return json.loads((BINANCE_SAMPLES / "errors" / name).read_text())


async def market(client: BinanceClient, side: str, qty: str = "0.004", **extra):
    return await client.signed("POST", ORDER, symbol="BTCUSDT", side=side, type="MARKET", quantity=qty, **extra)


async def test_margin_refusal_for_buys_only_for_the_next_n(fake: FakeBinance, client: BinanceClient) -> None:
    rule = fake.faults.refuse("POST", ORDER, -2019, side="BUY", times=2)
    for _ in range(2):
        refused = await market(client, "BUY")
        # the body is byte for byte the one seen from the real API
        assert (refused.status, refused.body) == (400, _error_sample("error_2019_http400.json"))
    assert fake.orders == [] and fake.position("BTCUSDT").qty == 0  # nothing executed
    assert (await market(client, "SELL")).status == 200  # a SELL does not match the rule
    assert rule.hits == 2 and fake.faults.rules == []
    assert (await market(client, "BUY")).status == 200  # used up
    assert fake.position("BTCUSDT").qty == 0 and len(fake.orders) == 2
    assert [r.fault for r in fake.requests if r.path == ORDER] == ["refuse", "refuse", None, None]


async def test_a_refusal_for_some_seconds_of_server_time(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0)
    fake.enforce_recv_window = False  # the client signs with its own clock; the server's is frozen
    fake.faults.refuse("POST", ORDER, -2019, seconds=5)
    assert (await market(client, "BUY")).code == -2019
    fake.advance_time_ms(4_999)
    assert (await market(client, "SELL")).code == -2019  # no side given: every order
    fake.advance_time_ms(1)
    assert (await market(client, "BUY")).status == 200
    assert fake.faults.rules == []


async def test_matching_on_reduce_only_type_and_symbol(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.refuse("POST", ORDER, -2022, reduce_only=True, times=5)
    fake.faults.refuse("POST", ORDER, -4164, symbol="ETHUSDT", type="MARKET")
    assert (await market(client, "BUY", "0.010")).status == 200  # not reduce-only
    closing = await market(client, "SELL", "0.010", reduceOnly="true")
    assert closing.body == {"code": -2022, "msg": "ReduceOnly Order is rejected."}
    assert fake.position("BTCUSDT").qty == D("0.010")
    eth = await client.signed("POST", ORDER, symbol="ETHUSDT", side="BUY", type="MARKET", quantity="1")
    # -4164 carries the symbol's own minimum notional, as the real message does
    assert eth.body == {
        "code": -4164,
        "msg": "Order's notional must be no smaller than 20 (unless you choose reduce only).",
    }
    assert fake.position("ETHUSDT").qty == 0


@pytest.mark.parametrize(
    ("code", "status", "message"),
    [
        (-1111, 400, "Precision is over the maximum defined for this asset."),
        (-1007, 503, "Timeout waiting for response from backend server. Send status unknown; "
                     "execution status unknown."),
        (-1008, 503, "Request throttled by system-level protection. Reduce-only/close-position orders are exempt. "
                     "Please try again."),
        (-1015, 429, "Too many new orders; current limit is 300 orders per 10 SECOND."),
        (-2019, 400, "Margin is insufficient."),
        (-4140, 400, "Invalid symbol status for opening position."),
    ],
)  # fmt: skip
async def test_known_codes_carry_their_real_status_and_message(
    fake: FakeBinance, client: BinanceClient, code: int, status: int, message: str
) -> None:
    fake.faults.refuse("POST", ORDER, code)
    reply = await market(client, "BUY")
    assert (reply.status, reply.body) == (status, {"code": code, "msg": message})
    assert fake.orders == []


async def test_rate_limit_and_ip_ban_codes(fake: FakeBinance, client: BinanceClient) -> None:
    fake.faults.refuse("POST", ORDER, -1003, retry_after=9)
    limited = await market(client, "BUY")
    assert (limited.status, limited.code, limited.headers["Retry-After"]) == (429, -1003, "9")
    assert limited.body["msg"].startswith("Too many requests; current limit is 2400 requests per minute.")
    fake.faults.refuse("POST", ORDER, -1003, status=418, retry_after=120)
    banned = await market(client, "BUY")
    assert (banned.status, banned.code) == (418, -1003) and "IP banned until" in banned.body["msg"]
    assert fake.orders == []
    with pytest.raises(ValueError, match="429 or 418"):
        fake.faults.refuse("POST", ORDER, -1003, status=500)


async def test_algo_refusals_immediate_trigger_and_close_position(fake: FakeBinance, client: BinanceClient) -> None:
    await market(client, "BUY", "0.010")
    stop = {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "triggerPrice": "45000.0", "closePosition": "true", "workingType": "MARK_PRICE",
    }  # fmt: skip
    fake.faults.refuse("POST", ALGO, -2021, close_position=True)
    fake.faults.refuse("POST", ALGO, -4130, close_position=True)
    first = await client.signed("POST", ALGO, clientAlgoId="stop-1", **stop)
    assert first.body == {"code": -2021, "msg": "Order would immediately trigger."}
    second = await client.signed("POST", ALGO, clientAlgoId="stop-1", **stop)
    assert second.body == {
        "code": -4130,
        "msg": "An open stop or take profit order with GTE and closePosition in the direction is existing.",
    }
    assert fake.algo_orders == []
    assert (await client.signed("POST", ALGO, clientAlgoId="stop-1", **stop)).status == 200


async def test_other_codes_need_a_message(fake: FakeBinance, client: BinanceClient) -> None:
    with pytest.raises(ValueError, match="pass msg"):
        fake.faults.refuse("POST", ORDER, -4400)
    text = "Futures Trading Quantitative Rules violated, only reduceOnly order is allowed, please try again later."
    fake.faults.refuse("POST", ORDER, -4400, msg=text, reduce_only=False)
    assert (await market(client, "BUY")).body == {"code": -4400, "msg": text}
    with pytest.raises(ValueError, match="times must be at least 1"):
        fake.faults.refuse("POST", ORDER, -2019, times=0)


async def test_refused_orders_still_count_on_the_order_limit(fake: FakeBinance, client: BinanceClient) -> None:
    # the matching engine's refusals come after the order reached the account's rate limiter
    fake.faults.refuse("POST", ORDER, -2019)
    refused = await market(client, "BUY")
    assert refused.code == -2019 and refused.headers["X-MBX-ORDER-COUNT-10S"] == "1"
    assert fake.order_counts().ten_seconds == 1
