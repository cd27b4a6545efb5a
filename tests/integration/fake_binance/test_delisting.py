"""Delistings: exchangeInfo's deliveryDate and status, the close-only time, and settlement at the delivery time."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import T0, BinanceClient, recv_json, recv_until, user_stream, ws_connect

D = Decimal
HOUR = 3_600_000


def _symbol_info(info: dict, symbol: str) -> dict:
    return next(s for s in info["symbols"] if s["symbol"] == symbol)


async def buy(client: BinanceClient, qty: str = "0.010", **extra):
    return await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity=qty,
                               **extra)  # fmt: skip


async def test_a_perpetual_carries_the_far_delivery_date_until_announced(
    fake: FakeBinance, client: BinanceClient
) -> None:
    # a 2026 sample (the 2022 one still carried 4133404802000)
    real = json.loads(
        (BINANCE_SAMPLES / "nautilus/crates__futures__http_json__exchange_info_usdm__commit_27a8e54.json").read_text()
    )
    real_btc = _symbol_info(real, "BTCUSDT")
    fake.set_time_ms(T0)
    info = (await client.public("/fapi/v1/exchangeInfo")).body
    btc = _symbol_info(info, "BTCUSDT")
    assert (btc["deliveryDate"], btc["status"], btc["contractType"]) == (real_btc["deliveryDate"], "TRADING",
                                                                        "PERPETUAL")  # fmt: skip
    fake.announce_delisting("BTCUSDT", T0 + 2 * HOUR)
    btc = _symbol_info((await client.public("/fapi/v1/exchangeInfo")).body, "BTCUSDT")
    assert (btc["deliveryDate"], btc["status"]) == (T0 + 2 * HOUR, "TRADING")


async def test_close_only_window_then_settlement(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0)
    fake.enforce_recv_window = False
    assert (await buy(client)).status == 200
    backstop = {"type": "STOP_MARKET", "triggerPrice": "40000.0", "closePosition": "true", "clientAlgoId": "bs-1"}
    await client.signed("POST", "/fapi/v1/algoOrder", algoType="CONDITIONAL", symbol="BTCUSDT", side="SELL", **backstop)
    fake.announce_delisting("BTCUSDT", T0 + 2 * HOUR)
    fake.set_time_ms(T0 + 2 * HOUR - 30 * 60_000)  # the last half hour: no new positions
    opening = await buy(client, "0.004")
    assert opening.body == {"code": -4140, "msg": "Invalid symbol status for opening position."}
    reducing = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET",
                                   quantity="0.004", reduceOnly="true")  # fmt: skip
    assert reducing.status == 200 and fake.position("BTCUSDT").qty == D("0.006")
    await fake.set_price("BTCUSDT", "50500.0", mark="50400.0")
    async with await user_stream(fake, client) as ws:
        fake.set_time_ms(T0 + 2 * HOUR)
        info = (await client.public("/fapi/v1/exchangeInfo")).body  # any request after the time settles it
        settled, before = await recv_until(
            ws, lambda e: e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["X"] == "FILLED", within=3
        )
    assert _symbol_info(info, "BTCUSDT")["status"] == "CLOSE"
    assert fake.position("BTCUSDT").qty == 0
    order = settled["o"]
    assert order["c"].startswith("settlement_autoclose-") and (order["S"], order["z"], order["L"]) == (
        "SELL", "0.006", "50400.00",
    )  # fmt: skip   # closed at the mark (the settlement price)
    kinds = [(e["e"], e.get("o", {}).get("X") or e.get("a", {}).get("m")) for e in before]
    assert ("ALGO_UPDATE", "EXPIRED") in kinds  # the backstop was cancelled by the system
    assert ("ACCOUNT_UPDATE", "ORDER") in kinds
    assert fake.algo_orders[-1].status == "EXPIRED"
    closed = await buy(client)
    assert closed.body == {"code": -4141, "msg": "Symbol is closed."}
    trades = (await client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT")).body
    assert trades[-1]["price"] == "50400.00" and D(trades[-1]["realizedPnl"]) == D("2.4")  # 0.006 * 400


async def test_settle_by_hand_and_status_changes(fake: FakeBinance, client: BinanceClient) -> None:
    await fake.open_position_by_hand("ETHUSDT", "-1.000", price="3000.00")
    fake.set_symbol_status("ETHUSDT", "SETTLING")
    refused = await client.signed("POST", "/fapi/v1/order", symbol="ETHUSDT", side="SELL", type="MARKET",
                                  quantity="0.100")  # fmt: skip
    assert refused.code == -4140
    orders = await fake.settle_symbol("ETHUSDT", price="2990.00")
    assert [o.side for o in orders] == ["BUY"] and orders[0].client_order_id.startswith("settlement_autoclose-")
    assert fake.position("ETHUSDT").qty == 0 and fake.trades[-1].realized_pnl == D("10")
    eth = _symbol_info((await client.public("/fapi/v1/exchangeInfo")).body, "ETHUSDT")
    assert eth["status"] == "CLOSE"


async def test_contract_info_stream_tells_the_delisting(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0)
    real = json.loads(
        (BINANCE_SAMPLES / "docs-examples-json/public_websocket_api__Contract_Info_Stream.json").read_text()
    )
    async with ws_connect(f"{fake.ws_url}/market/stream?streams=!contractInfo") as ws:
        fake.announce_delisting("BTCUSDT", T0 + HOUR)
        await fake.flush()
        announced = (await recv_json(ws))["data"]
        await fake.settle_symbol("BTCUSDT")
        settling, closed = (await recv_json(ws))["data"], (await recv_json(ws))["data"]
    assert set(real) == set(announced) and set(real["bks"][0]) == set(announced["bks"][0])
    assert (announced["s"], announced["ct"], announced["dt"], announced["cs"]) == ("BTCUSDT", "PERPETUAL", T0 + HOUR,
                                                                                   "TRADING")  # fmt: skip
    assert (settling["cs"], closed["cs"]) == ("SETTLING", "CLOSE")
