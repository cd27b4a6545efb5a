"""Conditional (algo) orders: placement rules, triggers on mark/contract price, and the user-data events."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient, no_message, recv_json, recv_until, ws_connect

D = Decimal


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


async def buy(client: BinanceClient, qty: str = "0.010") -> None:
    reply = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty)
    assert reply.status == 200, reply.body


async def stop_close(client: BinanceClient, trigger: str, cid: str = "sdca-1-stop-1", **extra):
    params = {
        "algoType": "CONDITIONAL",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "type": "STOP_MARKET",
        "triggerPrice": trigger,
        "closePosition": "true",
        "workingType": "MARK_PRICE",
        "clientAlgoId": cid,
        **extra,
    }
    return await client.signed("POST", "/fapi/v1/algoOrder", **params)


async def private_socket(fake: FakeBinance, client: BinanceClient):
    key = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    return ws_connect(f"{fake.ws_url}/private/ws?listenKey={key}")


async def test_algo_order_reply_has_the_real_shape(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    reply = await stop_close(client, "45000.0")
    assert reply.status == 200, reply.body
    real = _sample("nautilus/crates__futures__http_json__algo_order_response__commit_27a8e54.json")
    assert set(real) <= set(reply.body)
    for key in ("algoId", "createTime", "updateTime", "triggerTime", "goodTillDate"):
        assert isinstance(reply.body[key], int)
    assert (reply.body["algoStatus"], reply.body["orderType"], reply.body["closePosition"]) == (
        "NEW",
        "STOP_MARKET",
        True,
    )
    assert (reply.body["triggerPrice"], reply.body["workingType"], reply.body["clientAlgoId"]) == (
        "45000.00",
        "MARK_PRICE",
        "sdca-1-stop-1",
    )
    listed = (await client.signed("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")).body
    assert [a["clientAlgoId"] for a in listed] == ["sdca-1-stop-1"]
    assert (await client.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")).body == []  # not a regular order
    one = (await client.signed("GET", "/fapi/v1/algoOrder", clientAlgoId="sdca-1-stop-1")).body
    assert one["algoId"] == reply.body["algoId"]


async def test_stop_triggers_on_mark_price_and_streams_the_life_cycle(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    async with await private_socket(fake, client) as ws:
        await stop_close(client, "45000.0")
        new = await recv_json(ws)
        assert (new["e"], new["o"]["X"], new["o"]["caid"], new["o"]["cp"]) == (
            "ALGO_UPDATE",
            "NEW",
            "sdca-1-stop-1",
            True,
        )
        await fake.set_price("BTCUSDT", "45100.0", mark="45050.0")  # mark above the trigger
        assert await no_message(ws)
        await fake.set_price("BTCUSDT", "45100.0", mark="44990.0")  # last still above, mark crosses
        events = [await recv_json(ws) for _ in range(7)]
    kinds = [(e["e"], e["o"]["X"] if "o" in e else e["a"]["m"] if "a" in e else e["c"]) for e in events]
    assert kinds == [
        ("ALGO_UPDATE", "TRIGGERING"),
        ("ALGO_UPDATE", "TRIGGERED"),
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("TRADE_LITE", "sdca-1-stop-1"),
        ("ACCOUNT_UPDATE", "ORDER"),
        ("ORDER_TRADE_UPDATE", "FILLED"),
        ("ALGO_UPDATE", "FINISHED"),
    ]
    fill = events[5]["o"]
    assert (fill["c"], fill["x"], fill["S"], fill["z"], fill["L"], fill["R"], fill["ot"]) == (
        "sdca-1-stop-1",  # the resulting order carries the clientAlgoId
        "TRADE",
        "SELL",
        "0.010",
        "45100.00",
        True,
        "STOP_MARKET",
    )
    assert D(fill["rp"]) == D("-49")  # (45100 - 50000) * 0.01
    assert set(
        _sample("nautilus/tests__ws_messages__ws_futures_order_update_trade_reduce_only_qty.json")["data"]["o"]
    ) <= set(fill)
    account = events[4]["a"]
    assert account["P"][0]["s"] == "BTCUSDT" and account["P"][0]["pa"] == "0" and account["B"][0]["a"] == "USDT"
    finished = events[6]["o"]
    assert (finished["ai"], finished["aq"], finished["ap"]) == (str(fake.orders[-1].order_id), "0.010", "45100.00000")
    assert set(_sample("nautilus/tests__ws_messages__ws_futures_algo_update_finished.json")["data"]["o"]) <= set(
        finished
    )
    assert fake.position("BTCUSDT").qty == 0
    assert fake.algo_orders[-1].status == "FINISHED"


async def test_contract_price_stops_ignore_the_mark(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    await stop_close(client, "45000.0", workingType="CONTRACT_PRICE")
    await fake.set_price("BTCUSDT", "45500.0", mark="44000.0")
    assert fake.algo_orders[-1].status == "NEW"
    await fake.set_price("BTCUSDT", "45000.0", mark="45600.0")
    assert fake.algo_orders[-1].status == "FINISHED" and fake.position("BTCUSDT").qty == 0


async def test_close_position_stop_stays_open_after_a_manual_close(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    await stop_close(client, "45000.0")
    await fake.close_position_by_hand("BTCUSDT")
    assert [a.status for a in fake.algo_orders] == ["NEW"]
    assert len((await client.signed("GET", "/fapi/v1/openAlgoOrders")).body) == 1
    async with await private_socket(fake, client) as ws:
        await fake.set_price("BTCUSDT", "44000.0")  # fires with nothing to close
        _, before = await recv_until(ws, lambda e: e["e"] == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED")
    assert [e["o"]["X"] for e in before] == ["TRIGGERING", "TRIGGERED", "NEW", "EXPIRED"]
    algo = fake.algo_orders[-1]
    assert (algo.status, algo.actual_qty) == ("FINISHED", 0)
    assert fake.position("BTCUSDT").qty == 0 and fake.orders[-1].status == "EXPIRED"


async def test_cancel_by_client_algo_id(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    placed = (await stop_close(client, "45000.0")).body
    reply = await client.signed("DELETE", "/fapi/v1/algoOrder", clientAlgoId="sdca-1-stop-1")
    assert reply.body == {"algoId": placed["algoId"], "clientAlgoId": "sdca-1-stop-1", "code": "200", "msg": "success"}
    assert fake.algo_orders[-1].status == "CANCELED"
    again = await client.signed("DELETE", "/fapi/v1/algoOrder", algoId=placed["algoId"])
    assert again.code == -2011
    assert (await client.signed("GET", "/fapi/v1/algoOrder", algoId=placed["algoId"])).body["algoStatus"] == "CANCELED"
    missing = await client.signed("GET", "/fapi/v1/algoOrder", clientAlgoId="nope")
    assert missing.body == {"code": -2013, "msg": "Order does not exist."}
    await fake.set_price("BTCUSDT", "44000.0")
    assert fake.position("BTCUSDT").qty == D("0.010")  # a cancelled stop never fires


async def test_system_expiry_is_reported(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    async with await private_socket(fake, client) as ws:
        await stop_close(client, "45000.0")
        await recv_json(ws)  # NEW
        await fake.expire_algo_order("sdca-1-stop-1")
        expired = await recv_json(ws)
    assert (expired["e"], expired["o"]["X"], expired["o"]["caid"]) == ("ALGO_UPDATE", "EXPIRED", "sdca-1-stop-1")
    assert fake.open_algo_orders() == []


async def test_placement_refusals(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    no_trigger = await client.signed(
        "POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL", type="STOP_MARKET",
        closePosition="true",
    )  # fmt: skip
    assert no_trigger.body == {
        "code": -1102,
        "msg": "Mandatory parameter 'triggerprice' was not sent, was empty/null, or malformed.",
    }
    with_reduce = await stop_close(client, "45000.0", reduceOnly="true")
    assert with_reduce.body == {"code": -1106, "msg": "Parameter 'reduceOnly' sent when not required."}
    immediate = await stop_close(client, "50000.0")
    assert immediate.body == {"code": -2021, "msg": "Order would immediately trigger."}
    assert (await stop_close(client, "45000.0")).status == 200
    second = await stop_close(client, "44000.0", cid="sdca-1-stop-2")
    assert second.code == -4130  # one closePosition stop per direction
    duplicate = await client.signed(
        "POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL",
        type="TAKE_PROFIT_MARKET", triggerPrice="60000.0", quantity="0.010", reduceOnly="true",
        clientAlgoId="sdca-1-stop-1",
    )  # fmt: skip
    assert duplicate.code == -4116
    assert [a.client_algo_id for a in fake.open_algo_orders()] == ["sdca-1-stop-1"]


async def test_take_profit_with_quantity_reduces(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    reply = await client.signed(
        "POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL",
        type="TAKE_PROFIT_MARKET", triggerPrice="55000.0", quantity="0.004", reduceOnly="true",
        clientAlgoId="tp-1",
    )  # fmt: skip
    assert reply.status == 200, reply.body
    await fake.set_price("BTCUSDT", "54000.0")
    assert fake.algo_orders[-1].status == "NEW"
    await fake.set_price("BTCUSDT", "55100.0")
    assert fake.position("BTCUSDT").qty == D("0.006") and fake.orders[-1].client_order_id == "tp-1"


async def test_mark_only_moves_fire_mark_price_stops(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    await stop_close(client, "45000.0")
    trades_before = len(fake.trades)
    await fake.set_mark_price("BTCUSDT", "46000.0")
    assert fake.algo_orders[-1].status == "NEW" and len(fake.trades) == trades_before
    await fake.set_mark_price("BTCUSDT", "44999.9")
    assert fake.algo_orders[-1].status == "FINISHED" and fake.position("BTCUSDT").qty == 0
    assert fake.trades[-1].price == D("50000.00")  # filled at the last trade price, which did not move
