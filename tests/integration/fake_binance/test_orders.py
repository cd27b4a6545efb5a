"""Orders and the account over REST: fills, fees, PnL, refusals, queries and settings."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient

D = Decimal


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


async def market(client: BinanceClient, side: str, qty: str, **extra):
    params = {"symbol": "BTCUSDT", "side": side, "type": "MARKET", "quantity": qty, **extra}
    return await client.signed("POST", "/fapi/v1/order", **params)


async def test_market_order_with_result_fills_and_moves_wallet_position_and_fees(
    fake: FakeBinance, client: BinanceClient
) -> None:
    reply = await market(client, "BUY", "0.010", newClientOrderId="sdca-7-enter-1", newOrderRespType="RESULT")
    assert reply.status == 200, reply.body
    body = reply.body
    assert (body["status"], body["executedQty"], body["avgPrice"], body["cumQuote"]) == (
        "FILLED",
        "0.010",
        "50000.00000",
        "500.00000",
    )
    assert body["clientOrderId"] == "sdca-7-enter-1" and isinstance(body["orderId"], int)
    real = _sample("nautilus/crates__futures__http_json__order_response.json")
    assert set(real) - {"time"} <= set(body)
    assert fake.position("BTCUSDT") == (D("0.010"), D("50000.00"))
    assert fake.wallet_balance == D("1000") - D("500") * D("0.0005")  # 0.25 USDT taker fee
    trade = fake.trades[-1]
    assert (trade.qty, trade.price, trade.commission, trade.realized_pnl) == (D("0.010"), D("50000"), D("0.25"), 0)
    order = fake.orders[-1]
    assert (order.client_order_id, order.status, order.avg_price, order.reduce_only) == (
        "sdca-7-enter-1",
        "FILLED",
        D("50000"),
        False,
    )


async def test_default_ack_reply_reports_new_with_nothing_executed(fake: FakeBinance, client: BinanceClient) -> None:
    reply = await market(client, "BUY", "0.004")
    assert (reply.body["status"], reply.body["executedQty"], reply.body["avgPrice"]) == ("NEW", "0.000", "0.00000")
    assert fake.orders[-1].status == "FILLED"  # it did execute; only the reply says less
    queried = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=reply.body["orderId"])
    assert queried.body["status"] == "FILLED" and queried.body["executedQty"] == "0.004"


async def test_reduce_realizes_pnl_with_entry_unchanged(fake: FakeBinance, client: BinanceClient) -> None:
    await market(client, "BUY", "0.010")
    await fake.set_price("BTCUSDT", "52000.0")
    await market(client, "BUY", "0.010")  # entry averages to 51000
    assert fake.position("BTCUSDT") == (D("0.020"), D("51000"))
    await fake.set_price("BTCUSDT", "53000.0")
    wallet_before = fake.wallet_balance
    reply = await market(client, "SELL", "0.005", reduceOnly="true", newOrderRespType="RESULT")
    assert reply.body["status"] == "FILLED"
    assert fake.position("BTCUSDT") == (D("0.015"), D("51000"))  # average-cost rule
    trade = fake.trades[-1]
    assert trade.realized_pnl == D("10")  # (53000 - 51000) * 0.005
    assert fake.wallet_balance == wallet_before + D("10") - D("265") * D("0.0005")
    risk = (await client.signed("GET", "/fapi/v3/positionRisk", symbol="BTCUSDT")).body
    assert risk[0]["positionAmt"] == "0.015" and D(risk[0]["entryPrice"]) == D("51000")
    assert D(risk[0]["unRealizedProfit"]) == D("30")  # 0.015 * (53000 - 51000)
    trades = (await client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).body
    assert [t["realizedPnl"] for t in trades] == ["0.00000000", "0.00000000", "10.00000000"]
    assert set(_sample("ccxt-static/swap_fetchMyTrades__GET_fapi_v1_userTrades.json")[0]) <= set(trades[0])


async def test_the_fake_engine_goes_short_and_flips(fake: FakeBinance, client: BinanceClient) -> None:
    await market(client, "SELL", "0.004")
    assert fake.position("BTCUSDT") == (D("-0.004"), D("50000.00"))
    await fake.set_price("BTCUSDT", "49000.0")
    await market(client, "BUY", "0.010")  # closes the short with +4 USDT and opens 0.006 long at 49000
    assert fake.position("BTCUSDT") == (D("0.006"), D("49000.0"))
    assert fake.trades[-1].realized_pnl == D("4")


async def test_conditional_types_on_the_order_endpoint_get_4120(client: BinanceClient) -> None:
    for order_type in ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TRAILING_STOP_MARKET"):
        reply = await client.signed(
            "POST",
            "/fapi/v1/order",
            symbol="BTCUSDT",
            side="SELL",
            type=order_type,
            stopPrice="45000",
            closePosition="true",
        )
        assert (reply.status, reply.body) == (
            400,
            {
                "code": -4120,
                "msg": "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead.",
            },
        )


async def test_duplicate_client_id_is_refused_only_while_the_first_order_is_open(
    fake: FakeBinance, client: BinanceClient
) -> None:
    limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "price": "40000.0"}
    first = await client.signed("POST", "/fapi/v1/order", quantity="0.003", newClientOrderId="dup-1", **limit)
    assert first.body["status"] == "NEW"
    again = await client.signed("POST", "/fapi/v1/order", quantity="0.003", newClientOrderId="dup-1", **limit)
    assert (again.status, again.body) == (400, {"code": -4116, "msg": "ClientOrderId is duplicated."})
    assert [o["clientOrderId"] for o in (await client.signed("GET", "/fapi/v1/openOrders")).body] == ["dup-1"]
    cancel = await client.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="dup-1")
    assert cancel.body["status"] == "CANCELED"
    assert (
        await client.signed("POST", "/fapi/v1/order", quantity="0.003", newClientOrderId="dup-1", **limit)
    ).status == 200

    # a filled MARKET order's id can be reused, and the second one fills again (the dangerous real behaviour)
    assert (await market(client, "BUY", "0.002", newClientOrderId="mkt-1")).status == 200
    assert (await market(client, "BUY", "0.002", newClientOrderId="mkt-1")).status == 200
    assert fake.position("BTCUSDT").qty == D("0.004")
    assert [o.status for o in fake.orders if o.client_order_id == "mkt-1"] == ["FILLED", "FILLED"]
    latest = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="mkt-1")
    assert latest.body["orderId"] == fake.orders[-1].order_id  # a reused id answers with the latest order


async def test_min_notional_except_reduce_only(fake: FakeBinance, client: BinanceClient) -> None:
    small = await market(client, "BUY", "0.001")  # 50 USDT < 100
    assert small.body == {
        "code": -4164,
        "msg": "Order's notional must be no smaller than 100 (unless you choose reduce only).",
    }
    eth = await client.signed("POST", "/fapi/v1/order", symbol="ETHUSDT", side="BUY", type="MARKET", quantity="0.005")
    assert eth.code == -4164 and "no smaller than 20 " in eth.body["msg"]
    await market(client, "BUY", "0.003")
    closing = await market(client, "SELL", "0.001", reduceOnly="true")
    assert closing.status == 200 and fake.position("BTCUSDT").qty == D("0.002")


async def test_reduce_only_that_would_open_or_increase_is_refused(fake: FakeBinance, client: BinanceClient) -> None:
    flat = await market(client, "SELL", "0.002", reduceOnly="true")
    assert flat.body == {"code": -2022, "msg": "ReduceOnly Order is rejected."}
    await market(client, "BUY", "0.002")
    same_side = await market(client, "BUY", "0.002", reduceOnly="true")
    assert same_side.code == -2022
    over = await market(client, "SELL", "0.010", reduceOnly="true")  # would flip the position short
    assert over.code == -2022 and fake.position("BTCUSDT").qty == Decimal("0.002")
    exact = await market(client, "SELL", "0.002", reduceOnly="true", newOrderRespType="RESULT")
    assert (exact.body["status"], exact.body["executedQty"]) == ("FILLED", "0.002")
    assert fake.position("BTCUSDT").qty == 0


async def test_insufficient_margin_is_refused(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_leverage("BTCUSDT", 2)
    too_big = await market(client, "BUY", "0.050")  # 2500 notional / 2 = 1250 margin > 1000
    assert too_big.body == {"code": -2019, "msg": "Margin is insufficient."}
    assert fake.position("BTCUSDT").qty == 0 and fake.orders == []
    assert (await market(client, "BUY", "0.030")).status == 200  # 750 margin fits


async def test_slippage_moves_market_fills_against_the_taker() -> None:
    fake = FakeBinance(slippage="0.001")
    fake.add_symbol("BTCUSDT", price="50000", tick_size="0.10", step_size="0.001", min_notional="100")
    async with fake, aiohttp.ClientSession() as session:
        client = BinanceClient(session, fake.rest_url)
        await market(client, "BUY", "0.010")
        await market(client, "SELL", "0.010", reduceOnly="true")
    assert [t.price for t in fake.trades] == [D("50050.0"), D("49950.0")]
    assert fake.trades[-1].realized_pnl == D("-1.000")


async def test_quantity_filters(client: BinanceClient) -> None:
    assert (await market(client, "BUY", "0.0025")).code == -1111
    assert (await market(client, "BUY", "0")).code == -4003


async def test_unknown_orders(client: BinanceClient) -> None:
    missing = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="never-sent")
    assert (missing.status, missing.body) == (400, {"code": -2013, "msg": "Order does not exist."})
    cancel = await client.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="never-sent")
    assert (cancel.status, cancel.body) == (400, {"code": -2011, "msg": "Unknown order sent."})


async def test_limit_orders_rest_and_fill_when_crossed(fake: FakeBinance, client: BinanceClient) -> None:
    reply = await client.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", price="49000.0",
        quantity="0.004", newClientOrderId="lim-1",
    )  # fmt: skip
    assert reply.body["status"] == "NEW"
    await fake.set_price("BTCUSDT", "49500.0")
    assert fake.orders[-1].status == "NEW"
    await fake.set_price("BTCUSDT", "48900.0")
    order = fake.orders[-1]
    assert (order.status, order.avg_price) == ("FILLED", D("49000.0"))
    assert fake.trades[-1].maker is True and fake.trades[-1].commission == D("196") * D("0.0002")
    assert (await client.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")).body == []
    history = (await client.signed("GET", "/fapi/v1/allOrders", symbol="BTCUSDT")).body
    assert [o["status"] for o in history] == ["FILLED"]


async def test_account_balance_and_position_endpoints(fake: FakeBinance, client: BinanceClient) -> None:
    await market(client, "BUY", "0.010")
    await fake.set_price("BTCUSDT", "51000.0", mark="51000.0")
    v3 = (await client.signed("GET", "/fapi/v3/account")).body
    real_v3 = _sample("ccxt-static/swap_fetchPositions__GET_fapi_v3_account.json")
    assert set(real_v3) <= set(v3) and set(real_v3["positions"][0]) <= set(v3["positions"][0])
    assert v3["totalWalletBalance"] == "999.75000000" and v3["totalUnrealizedProfit"] == "10.00000000"
    assert [p["symbol"] for p in v3["positions"]] == ["BTCUSDT"]  # v3 lists only open positions
    v2 = (await client.signed("GET", "/fapi/v2/account")).body
    real_v2 = _sample("docs-examples-json/private_rest_api__Account_Information_V2_USER_DATA.json")
    assert set(real_v2) <= set(v2) and set(real_v2["positions"][0]) <= set(v2["positions"][0])
    assert {p["symbol"] for p in v2["positions"]} == {"BTCUSDT", "ETHUSDT"}
    balance = (await client.signed("GET", "/fapi/v2/balance")).body
    assert set(_sample("docs-examples-json/private_rest_api__Futures_Account_Balance_V2_USER_DATA.json")[0]) <= set(
        balance[0]
    )
    risk_v2 = (await client.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")).body[0]
    real_risk_v2 = _sample("docs-examples-json/private_rest_api__Position_Information_V2_USER_DATA.json")[0]
    assert set(real_risk_v2) <= set(risk_v2) and risk_v2["leverage"] == "20" and risk_v2["marginType"] == "cross"
    risk_v3 = (await client.signed("GET", "/fapi/v3/positionRisk")).body[0]
    assert set(_sample("ccxt-static/swap_fetchPositions__GET_fapi_v3_positionRisk.json")[0]) <= set(risk_v3)
    assert "leverage" not in risk_v3  # positionRisk v3 carries no leverage


async def test_leverage_margin_type_and_brackets(fake: FakeBinance, client: BinanceClient) -> None:
    lev = await client.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=10)
    assert (
        lev.body["leverage"] == 10 and lev.body["symbol"] == "BTCUSDT" and isinstance(lev.body["maxNotionalValue"], str)
    )
    assert fake.leverage("BTCUSDT") == 10
    assert (await client.signed("POST", "/fapi/v1/leverage", symbol="BTCUSDT", leverage=126)).code == -4028
    iso = await client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    assert iso.body == {"code": 200, "msg": "success"} and fake.margin_mode("BTCUSDT") == "isolated"
    again = await client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    assert again.body == {"code": -4046, "msg": "No need to change margin type."}
    await market(client, "BUY", "0.004")
    locked = await client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="CROSSED")
    assert locked.code == -4048
    config = (await client.signed("GET", "/fapi/v1/symbolConfig", symbol="BTCUSDT")).body
    assert config == [
        {
            "symbol": "BTCUSDT",
            "marginType": "ISOLATED",
            "isAutoAddMargin": False,
            "leverage": 10,
            "maxNotionalValue": config[0]["maxNotionalValue"],
        }
    ]
    brackets = (await client.signed("GET", "/fapi/v1/leverageBracket")).body
    btc = next(b for b in brackets if b["symbol"] == "BTCUSDT")
    assert btc["brackets"][0]["initialLeverage"] == 125 and btc["brackets"][0]["notionalFloor"] == 0
    caps = [b["notionalCap"] for b in btc["brackets"]]
    assert caps == sorted(caps) and all(isinstance(c, int) for c in caps)
    single = (await client.signed("GET", "/fapi/v1/leverageBracket", symbol="ETHUSDT")).body
    assert single["symbol"] == "ETHUSDT" and single["brackets"][0]["initialLeverage"] == 100
    rate = (await client.signed("GET", "/fapi/v1/commissionRate", symbol="BTCUSDT")).body
    assert (rate["takerCommissionRate"], rate["makerCommissionRate"]) == ("0.0005", "0.0002")


async def test_manual_fills_use_web_client_ids(fake: FakeBinance, client: BinanceClient) -> None:
    order = await fake.open_position_by_hand("ETHUSDT", qty="0.5", price="3100.00")
    assert order.client_order_id.startswith("web_") and fake.position("ETHUSDT") == (D("0.500"), D("3100.00"))
    closed = await fake.close_position_by_hand("ETHUSDT")
    assert closed is not None and closed.reduce_only and fake.position("ETHUSDT").qty == 0
    assert await fake.close_position_by_hand("ETHUSDT") is None
    history = (await client.signed("GET", "/fapi/v1/allOrders", symbol="ETHUSDT")).body
    assert [o["clientOrderId"][:4] for o in history] == ["web_", "web_"]
