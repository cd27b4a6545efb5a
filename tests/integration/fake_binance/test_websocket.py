"""The routed WebSocket roots: live subscriptions, formats, limits, drops, and the user-data stream."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
import websockets

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import (
    T0,
    BinanceClient,
    eventually,
    no_message,
    recv_json,
    recv_until,
    ws_connect,
)

MINUTE = 60_000


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


async def test_subscribe_unsubscribe_and_list(fake: FakeBinance) -> None:
    async with ws_connect(f"{fake.ws_url}/market/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade", "btcusdt@markPrice"], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
        assert await recv_json(ws) == {"result": ["btcusdt@aggTrade", "btcusdt@markPrice"], "id": 2}
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 3}))
        assert await recv_json(ws) == {"result": None, "id": 3}
        await fake.set_price("BTCUSDT", "50100.0", mark="50090.0")
        mark = await recv_json(ws)  # raw stream: the payload itself, no wrapper
        assert (mark["e"], mark["s"], mark["p"]) == ("markPriceUpdate", "BTCUSDT", "50090.00000000")
        assert set(_sample("docs-examples-json/public_websocket_api__Mark_Price_Stream_for_All_market.json")[0]) <= set(
            mark
        )
        assert await no_message(ws)  # aggTrade was unsubscribed
        await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 4}))
        assert await recv_json(ws) == {"result": ["btcusdt@markPrice"], "id": 4}
    sent = [m.json() for m in fake.ws_client_messages if m.kind == "market"]
    assert [m["id"] for m in sent] == [1, 2, 3, 4]


async def test_bad_requests_get_error_replies(fake: FakeBinance) -> None:
    async with ws_connect(f"{fake.ws_url}/market/ws") as ws:
        await ws.send("{not json")
        assert (await recv_json(ws))["error"]["code"] == 3
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": "x"}))
        reply = await recv_json(ws)
        assert reply["error"] == {"code": 2, "msg": "Invalid request: request ID must be an unsigned integer"}
        await ws.send(json.dumps({"method": "SUBSCRIBE_ALL", "params": [], "id": 5}))
        reply = await recv_json(ws)
        assert reply["id"] == 5 and reply["error"]["code"] == 2 and "unknown variant" in reply["error"]["msg"]


async def test_combined_stream_wraps_messages(fake: FakeBinance) -> None:
    url = f"{fake.ws_url}/market/stream?streams=btcusdt@aggTrade/ethusdt@kline_1m"
    async with ws_connect(url) as ws:
        await eventually(lambda: fake.ws_clients("market"))
        assert fake.ws_clients("market")[0].streams == ["btcusdt@aggTrade", "ethusdt@kline_1m"]
        await fake.set_price("BTCUSDT", "50010.0")
        wrapped = await recv_json(ws)
        assert wrapped["stream"] == "btcusdt@aggTrade"
        trade = wrapped["data"]
        assert (trade["e"], trade["p"], trade["m"]) == ("aggTrade", "50010.00", False)
        assert set(_sample("docs-examples-json/public_websocket_api__Aggregate_Trade_Streams.json")) <= set(trade)
        await fake.set_price("ETHUSDT", "3001.00")
        kline = await recv_json(ws)
        assert kline["stream"] == "ethusdt@kline_1m" and kline["data"]["k"]["x"] is False
        assert set(_sample("docs-examples-json/public_websocket_api__Kline_Candlestick_Streams.json")["k"]) <= set(
            kline["data"]["k"]
        )


async def test_a_stream_on_the_wrong_root_is_silently_not_delivered(fake: FakeBinance) -> None:
    async with (
        ws_connect(f"{fake.ws_url}/market/ws/btcusdt@bookTicker") as wrong_market,
        ws_connect(f"{fake.ws_url}/public/ws/btcusdt@kline_1m") as wrong_public,
        ws_connect(f"{fake.ws_url}/public/ws/btcusdt@bookTicker") as right_public,
    ):
        await eventually(lambda: len(fake.ws_clients()) == 3)
        await fake.set_price("BTCUSDT", "50020.0")
        book = await recv_json(right_public)
        assert book["e"] == "bookTicker" and float(book["b"]) < float(book["a"])
        assert await no_message(wrong_market) and await no_message(wrong_public, within=0.05)
        await wrong_market.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        assert await recv_json(wrong_market) == {"result": ["btcusdt@bookTicker"], "id": 9}  # accepted, never fed


async def test_more_than_200_streams_are_refused(fake: FakeBinance) -> None:
    streams = [f"s{i:03d}usdt@kline_1m" for i in range(201)]
    async with ws_connect(f"{fake.ws_url}/market/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams[:150], "id": 1}))
        assert await recv_json(ws) == {"result": None, "id": 1}
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams[150:], "id": 2}))
        refused = await recv_json(ws)
        assert refused["id"] == 2 and refused["error"]["code"] == 2 and "200" in refused["error"]["msg"]
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": streams[150:200], "id": 3}))
        assert await recv_json(ws) == {"result": None, "id": 3}  # exactly 200 is fine
        assert len(fake.ws_clients("market")[0].streams) == 200
    with pytest.raises(websockets.InvalidStatus):
        async with ws_connect(f"{fake.ws_url}/market/stream?streams={'/'.join(streams)}"):
            pass


async def test_more_than_10_messages_per_second_close_the_connection(fake: FakeBinance) -> None:
    async with ws_connect(f"{fake.ws_url}/market/ws") as ws:
        for i in range(12):
            await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": i}))
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(3):
                while True:
                    await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    await eventually(lambda: not fake.ws_clients("market"))


async def test_drop_connections_by_kind(fake: FakeBinance, client: BinanceClient) -> None:
    key = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    async with (
        ws_connect(f"{fake.ws_url}/market/ws/btcusdt@markPrice") as market,
        ws_connect(f"{fake.ws_url}/private/ws?listenKey={key}") as private,
    ):
        await eventually(lambda: len(fake.ws_clients()) == 2)
        assert await fake.drop_ws_connections("market") == 1
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(3):
                await market.recv()
        assert [c.kind for c in fake.ws_clients()] == ["private"]
        assert await fake.drop_ws_connections(abrupt=True) == 1
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(3):
                await private.recv()
    # the client reconnects and is served again
    async with ws_connect(f"{fake.ws_url}/market/ws/btcusdt@markPrice") as again:
        await eventually(lambda: fake.ws_clients("market"))
        await fake.set_price("BTCUSDT", "50030.0")
        assert (await recv_json(again))["e"] == "markPriceUpdate"


async def test_silenced_market_keeps_sockets_open_but_sends_nothing(fake: FakeBinance) -> None:
    async with ws_connect(f"{fake.ws_url}/market/ws/btcusdt@aggTrade") as ws:
        await eventually(lambda: fake.ws_clients("market"))
        fake.faults.silence_market(0.5)
        await fake.set_price("BTCUSDT", "50040.0")
        assert await no_message(ws, within=0.2)
        await asyncio.sleep(0.4)
        await fake.set_price("BTCUSDT", "50050.0")
        assert (await recv_json(ws))["p"] == "50050.00"


async def test_kline_rollover_and_pushed_klines(fake: FakeBinance) -> None:
    fake.set_time_ms(T0 + 1_000)
    async with ws_connect(f"{fake.ws_url}/market/stream?streams=btcusdt@kline_1m/btcusdt@kline_5m") as ws:
        await eventually(lambda: fake.ws_clients("market"))
        await fake.set_price("BTCUSDT", "50100.0")
        first = [await recv_json(ws) for _ in range(2)]
        assert {m["stream"]: m["data"]["k"]["x"] for m in first} == {
            "btcusdt@kline_1m": False,
            "btcusdt@kline_5m": False,
        }
        fake.set_time_ms(T0 + MINUTE + 1_000)
        await fake.set_price("BTCUSDT", "50200.0")
        closed_1m, _ = await recv_until(ws, lambda m: m["stream"] == "btcusdt@kline_1m" and m["data"]["k"]["x"])
        k = closed_1m["data"]["k"]
        assert (k["t"], k["T"], k["o"], k["c"]) == (T0, T0 + MINUTE - 1, "50100.00", "50100.00")
        # pushed closed 1m candles complete the 5m candle they belong to
        for minute in range(2, 5):
            await fake.push_kline("BTCUSDT", T0 + minute * MINUTE, "50200", "50300", "50100", "50250", "2", closed=True)
        final_5m, _ = await recv_until(ws, lambda m: m["stream"] == "btcusdt@kline_5m" and m["data"]["k"]["x"])
        k5 = final_5m["data"]["k"]
        assert (k5["t"], k5["o"], k5["h"], k5["c"], k5["i"]) == (T0, "50100.00", "50300", "50250", "5m")


async def test_mark_price_array_stream(fake: FakeBinance) -> None:
    async with ws_connect(f"{fake.ws_url}/market/ws/!markPrice@arr@1s") as ws:
        await eventually(lambda: fake.ws_clients("market"))
        await fake.set_price("ETHUSDT", "3010.00")
        arr = await recv_json(ws)
        assert isinstance(arr, list) and arr[0]["s"] == "ETHUSDT"


async def test_private_stream_life(fake: FakeBinance, client: BinanceClient) -> None:
    async with ws_connect(f"{fake.ws_url}/private/ws?listenKey=not-a-key") as bad:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await bad.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    key = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    assert (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"] == key  # the active key again
    assert (await client.keyed("PUT", "/fapi/v1/listenKey")).body == {"listenKey": key}
    async with (
        ws_connect(f"{fake.ws_url}/private/ws?listenKey={key}") as plain,
        ws_connect(f"{fake.ws_url}/private/ws/{key}?events=ACCOUNT_UPDATE") as only_account,
    ):
        await eventually(lambda: len(fake.ws_clients("private")) == 2)
        await fake.set_balance("1500")
        deposit = await recv_json(plain)
        assert (deposit["e"], deposit["a"]["m"], deposit["a"]["B"][0]["wb"]) == (
            "ACCOUNT_UPDATE",
            "DEPOSIT",
            "1500.00000000",
        )
        assert (await recv_json(only_account))["e"] == "ACCOUNT_UPDATE"
        await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.004")
        kinds = [(await recv_json(plain))["e"] for _ in range(4)]
        assert kinds == ["ORDER_TRADE_UPDATE", "TRADE_LITE", "ACCOUNT_UPDATE", "ORDER_TRADE_UPDATE"]
        assert (await recv_json(only_account))["e"] == "ACCOUNT_UPDATE" and await no_message(only_account)
        await fake.expire_listen_key()
        expired = await recv_json(plain)
        assert expired["e"] == "listenKeyExpired" and expired["listenKey"] == key
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(3):
                await plain.recv()
    assert (await client.keyed("PUT", "/fapi/v1/listenKey")).body == {
        "code": -1125,
        "msg": "This listenKey does not exist.",
    }
    fresh = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    assert fresh != key
    async with ws_connect(f"{fake.ws_url}/private/ws?listenKey={fresh}") as ws:
        await eventually(lambda: fake.ws_clients("private"))
        assert (await client.keyed("DELETE", "/fapi/v1/listenKey")).body == {}
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(3):
                await ws.recv()


async def test_the_server_pings_and_drops_a_client_that_never_pongs() -> None:
    fake = FakeBinance(ws_ping_interval_s=0.5)
    fake.add_symbol("BTCUSDT", price="50000", tick_size="0.10")
    async with fake, aiohttp.ClientSession() as session:
        # websockets answers pings by itself: such a client stays connected
        async with ws_connect(f"{fake.ws_url}/market/ws/btcusdt@aggTrade") as polite:
            await asyncio.sleep(1.2)
            await fake.set_price("BTCUSDT", "50001.0")
            assert (await recv_json(polite))["e"] == "aggTrade"
        # a client that ignores pings sees them arrive, then loses the connection
        async with session.ws_connect(f"{fake.ws_url}/market/ws/btcusdt@aggTrade", autoping=False) as rude:
            first = await rude.receive(timeout=2)
            assert first.type == aiohttp.WSMsgType.PING
            async with asyncio.timeout(3):
                while (await rude.receive()).type not in (
                    aiohttp.WSMsgType.CLOSE,
                    aiohttp.WSMsgType.CLOSED,
                    aiohttp.WSMsgType.ERROR,
                ):
                    pass
        await eventually(lambda: not fake.ws_clients("market"))


async def test_leverage_changes_reach_the_user_stream(fake: FakeBinance, client: BinanceClient) -> None:
    key = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    async with ws_connect(f"{fake.ws_url}/private/stream?listenKey={key}") as ws:
        await eventually(lambda: fake.ws_clients("private"))
        await client.signed("POST", "/fapi/v1/leverage", symbol="ETHUSDT", leverage=7)
        wrapped = await recv_json(ws)  # /private/stream wraps events like a combined stream
        assert wrapped["stream"] == key
        assert wrapped["data"]["e"] == "ACCOUNT_CONFIG_UPDATE" and wrapped["data"]["ac"] == {"s": "ETHUSDT", "l": 7}
        await fake.set_leverage("BTCUSDT", 3)
        assert (await recv_json(ws))["data"]["ac"] == {"s": "BTCUSDT", "l": 3}


async def test_listen_keys_expire_after_an_hour_of_server_time(fake: FakeBinance, client: BinanceClient) -> None:
    key = (await client.keyed("POST", "/fapi/v1/listenKey")).body["listenKey"]
    async with ws_connect(f"{fake.ws_url}/private/ws?listenKey={key}") as ws:
        await eventually(lambda: fake.ws_clients("private"))
        fake.advance_time_ms(30 * MINUTE)
        assert (await client.keyed("PUT", "/fapi/v1/listenKey")).status == 200  # kept alive: 60 more minutes
        fake.advance_time_ms(59 * MINUTE)
        await fake.flush()
        assert await no_message(ws, within=0.1)
        fake.advance_time_ms(2 * MINUTE)
        await fake.flush()
        expired = await recv_json(ws)
        assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)
        assert abs(expired["E"] - fake.now_ms()) < 1_000
    assert (await client.keyed("PUT", "/fapi/v1/listenKey")).code == -1125


async def test_public_root_serves_minimal_depth(fake: FakeBinance) -> None:
    async with ws_connect(f"{fake.ws_url}/public/stream?streams=ethusdt@depth5@100ms") as ws:
        await fake.set_price("ETHUSDT", "3002.50")
        message = await recv_json(ws)
        assert message["stream"] == "ethusdt@depth5@100ms"
        depth = message["data"]
        assert depth["e"] == "depthUpdate" and depth["a"][0][0] == "3002.50" and depth["b"][0][0] == "3002.49"
        assert set(_sample("docs-examples-json/public_websocket_api__Partial_Book_Depth_Streams.json")) <= set(depth)
