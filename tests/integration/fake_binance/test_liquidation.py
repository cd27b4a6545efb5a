"""Liquidation and ADL: the exchange's own closing order on the user stream, forceOrders and userTrades."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient, recv_until, user_stream

D = Decimal


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


async def test_liquidation_closes_the_position_and_says_so(fake: FakeBinance, client: BinanceClient) -> None:
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000.0")
    await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC",
                        price="45000.0", quantity="0.004", newClientOrderId="dca-1")  # fmt: skip
    await fake.set_price("BTCUSDT", "46000.0", mark="46010.0")
    wallet = fake.wallet_balance
    async with await user_stream(fake, client) as ws:
        order = await fake.liquidate("BTCUSDT", price="45800.0")
        done, before = await recv_until(ws, lambda e: e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED")
    assert fake.position("BTCUSDT").qty == 0 and order.client_order_id.startswith("autoclose-")
    kinds = [(e["e"], e["o"]["c"] if "o" in e else e["a"]["m"], e.get("o", {}).get("x")) for e in before]
    assert kinds == [
        ("ORDER_TRADE_UPDATE", "dca-1", "CANCELED"),  # the liquidation engine cancels the open orders first
        ("ORDER_TRADE_UPDATE", order.client_order_id, "NEW"),
        ("ACCOUNT_UPDATE", "ORDER", None),
    ]
    assert all(e["e"] != "TRADE_LITE" for e in before)  # TRADE_LITE carries TRADE executions only
    o = done["o"]
    assert (o["x"], o["X"], o["S"], o["o"], o["f"], o["z"], o["L"]) == (
        "CALCULATED", "FILLED", "SELL", "LIMIT", "IOC", "0.010", "45800.00",
    )  # fmt: skip
    real = _sample("nautilus/tests__ws_messages__ws_futures_order_update_liquidation.json")["data"]["o"]
    assert set(real) <= set(o)
    assert before[-1]["a"]["P"][0]["pa"] == "0"
    assert fake.wallet_balance == wallet - D("42") - D("458") * D("0.0005")  # (45800 - 50000) x 0.010, fee
    forced = (await client.signed("GET", "/fapi/v1/forceOrders", symbol="BTCUSDT")).body
    assert [f["clientOrderId"] for f in forced] == [order.client_order_id]
    row = forced[0]
    assert (row["status"], row["type"], row["timeInForce"], row["executedQty"], row["avgPrice"]) == (
        "FILLED", "LIMIT", "IOC", "0.010", "45800.00000",
    )  # fmt: skip
    docs_fields = {"orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty",
                   "cumQuote", "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide",
                   "stopPrice", "workingType", "origType", "time", "updateTime"}  # fmt: skip  # User's Force Orders
    assert set(row) == docs_fields
    trades = (await client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).body
    assert trades[-1]["orderId"] == order.order_id and trades[-1]["realizedPnl"] == "-42.00000000"


async def test_adl_and_the_force_order_filters(fake: FakeBinance, client: BinanceClient) -> None:
    await fake.open_position_by_hand("ETHUSDT", "-1.000", price="3000.00")
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000.0")
    adl = await fake.liquidate("ETHUSDT", price="3100.00", adl=True)
    liquidation = await fake.liquidate("BTCUSDT")
    assert adl.client_order_id == "adl_autoclose" and (adl.side, adl.position_side) == ("BUY", "BOTH")
    both = (await client.signed("GET", "/fapi/v1/forceOrders")).body
    assert [r["clientOrderId"] for r in both] == ["adl_autoclose", liquidation.client_order_id]
    only_adl = (await client.signed("GET", "/fapi/v1/forceOrders", autoCloseType="ADL")).body
    assert [r["symbol"] for r in only_adl] == ["ETHUSDT"]
    only_liq = (await client.signed("GET", "/fapi/v1/forceOrders", autoCloseType="LIQUIDATION")).body
    assert [r["symbol"] for r in only_liq] == ["BTCUSDT"]
    assert (await client.signed("GET", "/fapi/v1/forceOrders", autoCloseType="OTHER")).code == -1130
    assert (await client.signed("GET", "/fapi/v1/forceOrders", limit=101)).code == -1130
    ancient = await client.signed("GET", "/fapi/v1/forceOrders", endTime=fake.now_ms() - 8 * 86_400_000)
    assert ancient.body == []  # without startTime only the 7 days before endTime are searched


async def test_hedge_leg_liquidation_needs_a_side_when_both_are_open(fake: FakeBinance) -> None:
    await fake.open_hedge_position_by_hand("BTCUSDT", "LONG", "0.010", price="50000.0")
    await fake.open_hedge_position_by_hand("BTCUSDT", "SHORT", "0.004")
    with pytest.raises(ValueError, match="say which"):
        await fake.liquidate("BTCUSDT")
    order = await fake.liquidate("BTCUSDT", position_side="SHORT")
    assert (order.side, order.position_side) == ("BUY", "SHORT")
    assert fake.position("BTCUSDT", "SHORT").qty == 0 and fake.position("BTCUSDT", "LONG").qty == D("0.010")
    with pytest.raises(ValueError, match="no open"):
        await fake.liquidate("ETHUSDT")
