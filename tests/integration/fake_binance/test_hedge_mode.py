"""Hedge mode (positionSide/dual), per-side position rows, multi-assets mode and the account configuration."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient, recv_until, user_stream

D = Decimal
DUAL = "/fapi/v1/positionSide/dual"


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


async def order(client: BinanceClient, side: str, qty: str, **extra):
    return await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side=side, type="MARKET", quantity=qty,
                               **extra)  # fmt: skip


async def test_switching_position_mode_and_its_refusals(fake: FakeBinance, client: BinanceClient) -> None:
    assert (await client.signed("GET", DUAL)).body == {"dualSidePosition": False}
    same = await client.signed("POST", DUAL, dualSidePosition="false")
    assert (same.status, same.body) == (400, {"code": -4059, "msg": "No need to change position side."})
    await order(client, "BUY", "0.004")
    held = await client.signed("POST", DUAL, dualSidePosition="true")
    assert held.body == {"code": -4068, "msg": "Position side cannot be changed if there exists position."}
    await order(client, "SELL", "0.004", reduceOnly="true")
    await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                        price="40000.0", quantity="0.004", newClientOrderId="rest-1")  # fmt: skip
    resting = await client.signed("POST", DUAL, dualSidePosition="true")
    assert resting.body == {"code": -4067, "msg": "Position side cannot be changed if there exists open orders."}
    await client.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="rest-1")
    backstop = {"type": "STOP_MARKET", "triggerPrice": "40000.0", "closePosition": "true", "clientAlgoId": "bs-1"}
    await client.signed("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL", **backstop)
    assert (await client.signed("POST", DUAL, dualSidePosition="true")).code == -4067  # algo orders count too
    await client.signed("DELETE", "/fapi/v1/algoOrder", clientAlgoId="bs-1")
    switched = await client.signed("POST", DUAL, dualSidePosition="true")
    assert switched.body == _sample("docs-examples-json/private_rest_api__Change_Position_Mode_TRADE.json")
    assert (await client.signed("GET", DUAL)).body == {"dualSidePosition": True}
    config = (await client.signed("GET", "/fapi/v1/accountConfig")).body
    real = _sample("docs-examples-json/private_rest_api__Futures_Account_Configuration_USER_DATA.json")
    assert set(config) == set(real) and (config["dualSidePosition"], config["multiAssetsMargin"]) == (True, False)
    assert fake.hedge_mode


async def test_orders_in_hedge_mode_need_their_side(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_position_mode(dual_side=True)
    missing = await order(client, "BUY", "0.004")
    assert missing.body == {"code": -4061, "msg": "Order's position side does not match user's setting."}
    assert (await order(client, "BUY", "0.004", positionSide="BOTH")).code == -4061
    reduce = await order(client, "SELL", "0.004", positionSide="LONG", reduceOnly="true")
    assert reduce.body == {"code": -1106, "msg": "Parameter 'reduceOnly' sent when not required."}
    assert fake.orders == []
    assert (await order(client, "BUY", "0.010", positionSide="LONG")).status == 200
    assert (await order(client, "SELL", "0.004", positionSide="SHORT")).status == 200
    assert fake.position("BTCUSDT", "LONG") == (D("0.010"), D("50000.00"))
    assert fake.position("BTCUSDT", "SHORT").qty == D("-0.004")
    too_much = await order(client, "SELL", "0.020", positionSide="LONG")  # closing more than the leg holds
    assert too_much.code == -2022 and fake.position("BTCUSDT", "LONG").qty == D("0.010")
    await fake.set_price("BTCUSDT", "51000.0")
    close = await order(client, "SELL", "0.010", positionSide="LONG", newOrderRespType="RESULT")
    assert (close.body["positionSide"], close.body["status"]) == ("LONG", "FILLED")
    assert fake.position("BTCUSDT", "LONG").qty == 0 and fake.position("BTCUSDT", "SHORT").qty == D("-0.004")
    trades = (await client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).body
    assert [(t["side"], t["positionSide"]) for t in trades] == [("BUY", "LONG"), ("SELL", "SHORT"), ("SELL", "LONG")]
    assert trades[-1]["realizedPnl"] == "10.00000000"  # (51000 - 50000) * 0.010
    with pytest.raises(ValueError, match="hedge mode"):
        fake.position("BTCUSDT")


async def test_position_rows_per_side(fake: FakeBinance, client: BinanceClient) -> None:
    await fake.open_hedge_position_by_hand("BTCUSDT", "LONG", "0.010", price="50000.0")
    await fake.open_position_by_hand("BTCUSDT", "0.004", position_side="SHORT")
    v3 = (await client.signed("GET", "/fapi/v3/positionRisk")).body
    assert [(r["symbol"], r["positionSide"], r["positionAmt"]) for r in v3] == [
        ("BTCUSDT", "LONG", "0.010"),
        ("BTCUSDT", "SHORT", "-0.004"),
    ]
    assert set(_sample("docs-examples-json/private_rest_api__Position_Information_V3_USER_DATA__2.json")[0]) <= set(
        v3[0]
    )
    v2 = (await client.signed("GET", "/fapi/v2/positionRisk")).body
    assert [(r["symbol"], r["positionSide"]) for r in v2] == [
        ("BTCUSDT", "LONG"), ("BTCUSDT", "SHORT"), ("ETHUSDT", "LONG"), ("ETHUSDT", "SHORT"),
    ]  # fmt: skip
    real_v2 = _sample("docs-examples-json/private_rest_api__Position_Information_V2_USER_DATA__2.json")
    assert [r["positionSide"] for r in real_v2] == ["LONG", "SHORT"] and set(real_v2[0]) <= set(v2[0])
    assert D(v2[1]["notional"]) == D("-200")  # a short's notional is negative, as in the real sample
    account = (await client.signed("GET", "/fapi/v3/account")).body
    assert [(p["positionSide"], p["positionAmt"]) for p in account["positions"]] == [("LONG", "0.010"),
                                                                                    ("SHORT", "-0.004")]  # fmt: skip
    v2_account = (await client.signed("GET", "/fapi/v2/account")).body
    assert {p["positionSide"] for p in v2_account["positions"]} == {"LONG", "SHORT"}


async def test_account_update_carries_position_sides(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_position_mode(dual_side=True)
    async with await user_stream(fake, client) as ws:
        await order(client, "SELL", "0.004", positionSide="SHORT")
        update, _ = await recv_until(ws, lambda e: e["e"] == "ACCOUNT_UPDATE")
        filled, _ = await recv_until(ws, lambda e: e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED")
    rows = {p["ps"]: p for p in update["a"]["P"]}
    assert set(rows) == {"LONG", "SHORT"}  # both legs of the symbol, like the docs' example
    assert (rows["SHORT"]["pa"], rows["LONG"]["pa"]) == ("-0.004", "0")
    real = _sample("nautilus/crates__futures__user_data_json__account_update.json")["a"]["P"][1]
    assert set(real) == set(rows["SHORT"])
    assert filled["o"]["ps"] == "SHORT"


async def test_algo_orders_in_hedge_mode(fake: FakeBinance, client: BinanceClient) -> None:
    await fake.open_hedge_position_by_hand("BTCUSDT", "LONG", "0.010")
    await fake.open_hedge_position_by_hand("BTCUSDT", "SHORT", "0.004")
    params = {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "triggerPrice": "45000.0", "closePosition": "true",
    }  # fmt: skip
    assert (await client.signed("POST", "/fapi/v1/algoOrder", **params)).code == -4061
    placed = await client.signed("POST", "/fapi/v1/algoOrder", positionSide="LONG", clientAlgoId="bs-long", **params)
    assert placed.status == 200 and placed.body["positionSide"] == "LONG"
    await fake.set_price("BTCUSDT", "44900.0")
    # the long's close-all stop closed the long only
    assert fake.position("BTCUSDT", "LONG").qty == 0 and fake.position("BTCUSDT", "SHORT").qty == D("-0.004")
    assert fake.orders[-1].position_side == "LONG" and fake.algo_orders[-1].status == "FINISHED"


async def test_one_way_mode_refuses_sides(fake: FakeBinance, client: BinanceClient) -> None:
    assert (await order(client, "BUY", "0.004", positionSide="LONG")).code == -4061
    invalid = await order(client, "BUY", "0.004", positionSide="UP")
    assert invalid.body == {"code": -4060, "msg": "Invalid position side."}
    with pytest.raises(ValueError, match="one-way"):
        fake.position("BTCUSDT", "LONG")


async def test_multi_assets_mode(fake: FakeBinance, client: BinanceClient) -> None:
    path = "/fapi/v1/multiAssetsMargin"
    assert (await client.signed("GET", path)).body == {"multiAssetsMargin": False}
    async with await user_stream(fake, client) as ws:
        on = await client.signed("POST", path, multiAssetsMargin="true")
        assert on.body == {"code": 200, "msg": "success"}
        event, _ = await recv_until(ws, lambda e: e["e"] == "ACCOUNT_CONFIG_UPDATE")
    assert event["ai"] == {"j": True}
    assert (await client.signed("POST", path, multiAssetsMargin="true")).code == -4171
    isolated = await client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")
    assert isolated.code == -4168
    fake.set_multi_assets_mode(False)
    assert (await client.signed("POST", "/fapi/v1/marginType", symbol="BTCUSDT", marginType="ISOLATED")).status == 200
    refused = await client.signed("POST", path, multiAssetsMargin="true")
    assert refused.code == -4167
    assert (await client.signed("GET", "/fapi/v1/accountConfig")).body["multiAssetsMargin"] is False
