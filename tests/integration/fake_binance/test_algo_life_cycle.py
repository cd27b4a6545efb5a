"""Algo orders beyond the happy path: cancelled in the app, expired by the system, a close-all stop that finds
nothing, several reduce-only quantity stops per symbol, and a reduce-only stop larger than the position."""

from __future__ import annotations

import json
from decimal import Decimal

import aiohttp

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import BinanceClient, recv_json, recv_until, user_stream

D = Decimal
ALGO = "/fapi/v1/algoOrder"


def _algo_sample(name: str) -> dict:
    return json.loads((BINANCE_SAMPLES / "nautilus" / name).read_text())["data"]


async def buy(client: BinanceClient, qty: str = "0.010") -> None:
    reply = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty)
    assert reply.status == 200, reply.body


async def stop(client: BinanceClient, cid: str, trigger: str, qty: str | None = None, **extra):
    params = {
        "algoType": "CONDITIONAL", "symbol": "BTCUSDT", "side": "SELL", "type": "STOP_MARKET",
        "triggerPrice": trigger, "clientAlgoId": cid, **extra,
    }  # fmt: skip
    if qty is None:
        params["closePosition"] = "true"
    else:
        params.update(quantity=qty, reduceOnly="true")
    return await client.signed("POST", ALGO, **params)


async def test_a_stop_cancelled_by_hand_in_the_app(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    async with await user_stream(fake, client) as ws:
        assert (await stop(client, "sdca-t-1-stop-1", "45000.0")).status == 200
        await recv_json(ws)  # NEW
        cancelled = await fake.cancel_algo_by_hand("sdca-t-1-stop-1")
        event = await recv_json(ws)
    assert cancelled.status == "CANCELED"
    assert (event["e"], event["o"]["X"], event["o"]["caid"], event["o"]["cp"]) == (
        "ALGO_UPDATE", "CANCELED", "sdca-t-1-stop-1", True,
    )  # fmt: skip
    assert set(_algo_sample("tests__ws_messages__ws_futures_algo_update_triggering.json")["o"]) <= set(event["o"])
    assert (await client.signed("GET", "/fapi/v1/openAlgoOrders")).body == []
    again = await client.signed("DELETE", ALGO, clientAlgoId="sdca-t-1-stop-1")
    assert again.body == {"code": -2011, "msg": "Unknown order sent."}
    await fake.set_price("BTCUSDT", "44000.0")
    assert fake.position("BTCUSDT").qty == D("0.010")  # a cancelled backstop never fires


async def test_system_expiry_event_and_query(fake: FakeBinance, client: BinanceClient) -> None:
    await buy(client)
    placed = (await stop(client, "sdca-t-1-stop-1", "45000.0")).body
    async with await user_stream(fake, client) as ws:
        await fake.expire_algo_order("sdca-t-1-stop-1")
        event = await recv_json(ws)
    assert (event["o"]["X"], event["o"]["aid"], event["o"]["ai"]) == ("EXPIRED", placed["algoId"], "")
    queried = (await client.signed("GET", ALGO, algoId=placed["algoId"])).body
    assert queried["algoStatus"] == "EXPIRED"


async def test_close_all_stop_with_no_position_finishes_empty(fake: FakeBinance, client: BinanceClient) -> None:
    # the Algo Service accepts a close-all stop while flat; when it fires there is nothing to close
    assert (await stop(client, "sdca-t-2-stop-1", "45000.0")).status == 200
    async with await user_stream(fake, client) as ws:
        await fake.set_price("BTCUSDT", "44900.0")
        finished, before = await recv_until(ws, lambda e: e["e"] == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED")
    assert [(e["e"], e["o"]["X"]) for e in before] == [
        ("ALGO_UPDATE", "TRIGGERING"),
        ("ALGO_UPDATE", "TRIGGERED"),
        ("ORDER_TRADE_UPDATE", "NEW"),
        ("ORDER_TRADE_UPDATE", "EXPIRED"),
    ]
    order = before[2]["o"]
    assert (order["c"], order["o"], order["ot"], order["cp"], order["sp"]) == (
        "sdca-t-2-stop-1", "MARKET", "STOP_MARKET", True, "45000.00",
    )  # fmt: skip
    real = _algo_sample("tests__ws_messages__ws_futures_algo_update_finished_canceled.json")["o"]
    assert set(real) <= set(finished["o"])
    assert (finished["o"]["aq"], finished["o"]["ap"], finished["o"]["ai"]) == ("0", "0", str(order["i"]))
    triggered = before[1]["o"]
    assert set(_algo_sample("tests__ws_messages__ws_futures_algo_update_triggered.json")["o"]) <= set(triggered)
    assert triggered["ai"] == str(order["i"]) and triggered["aq"] == "0"
    assert fake.position("BTCUSDT").qty == 0 and fake.trades == []


async def test_several_reduce_only_stops_rest_and_the_last_one_closes_only_what_is_left(
    fake: FakeBinance, client: BinanceClient
) -> None:
    await buy(client, "0.010")
    for n, trigger in enumerate(("46000.0", "45000.0", "44000.0"), start=1):
        reply = await stop(client, f"sdca-t-3-cut-{n}", trigger, qty="0.004")
        assert reply.status == 200 and reply.body["reduceOnly"] is True and reply.body["closePosition"] is False
    assert (await stop(client, "sdca-t-3-stop-1", "43000.0")).status == 200  # a close-all stop beside them
    assert len((await client.signed("GET", "/fapi/v1/openAlgoOrders", symbol="BTCUSDT")).body) == 4
    async with await user_stream(fake, client) as ws:
        await fake.set_price("BTCUSDT", "45900.0")
        await fake.set_price("BTCUSDT", "44900.0")
        assert fake.position("BTCUSDT").qty == D("0.002")
        await fake.set_price("BTCUSDT", "43900.0")  # the third wants 0.004, only 0.002 is left
        last, _ = await recv_until(
            ws, lambda e: e["e"] == "ALGO_UPDATE" and e["o"]["caid"] == "sdca-t-3-cut-3" and e["o"]["X"] == "FINISHED"
        )
    assert fake.position("BTCUSDT").qty == 0  # reduced to zero, never short
    assert last["o"]["aq"] == "0.002" and last["o"]["q"] == "0.004"
    third = next(o for o in fake.orders if o.client_order_id == "sdca-t-3-cut-3")
    assert (third.executed_qty, third.status, third.reduce_only) == (D("0.002"), "FILLED", True)
    assert [t.side for t in fake.trades] == ["BUY", "SELL", "SELL", "SELL"]


async def test_reduce_only_stop_with_no_position_is_rejected(fake: FakeBinance, client: BinanceClient) -> None:
    assert (await stop(client, "sdca-t-4-cut-1", "45000.0", qty="0.004")).status == 200  # accepted while flat
    async with await user_stream(fake, client) as ws:
        await fake.set_price("BTCUSDT", "44000.0")
        rejected, before = await recv_until(ws, lambda e: e["e"] == "ALGO_UPDATE" and e["o"]["X"] == "REJECTED")
    assert [e["o"]["X"] for e in before] == ["TRIGGERING"]
    assert rejected["o"]["rm"] == "Reduce Only reject" and rejected["o"]["ai"] == ""
    assert fake.orders == [] and fake.position("BTCUSDT").qty == 0


async def test_max_num_algo_orders_per_symbol() -> None:
    fake = FakeBinance()
    fake.add_symbol("BTCUSDT", price="50000", tick_size="0.10", step_size="0.001", min_notional="100",
                    max_algo_orders=3)  # fmt: skip
    async with fake, aiohttp.ClientSession() as session:
        client = BinanceClient(session, fake.rest_url)
        info = (await client.public("/fapi/v1/exchangeInfo")).body["symbols"][0]
        assert {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 3} in info["filters"]
        await buy(client)
        for n in range(3):
            assert (await stop(client, f"cut-{n}", f"4{n}000.0", qty="0.001")).status == 200
        fourth = await stop(client, "cut-3", "39000.0", qty="0.001")
        assert fourth.body == {"code": -4045, "msg": "Reach max stop order limit."}
