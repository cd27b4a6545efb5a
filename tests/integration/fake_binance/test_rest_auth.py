"""Signed requests: HMAC, timing window, API key, and malformed parameters, over real HTTP."""

from __future__ import annotations

import time
from decimal import Decimal
from urllib.parse import urlencode

from tests.fakes.binance import FakeBinance, sign
from tests.integration.fake_binance.conftest import API_KEY, API_SECRET, BinanceClient


async def test_a_correct_signature_is_accepted_and_logged(fake: FakeBinance, client: BinanceClient) -> None:
    reply = await client.signed("GET", "/fapi/v3/balance")
    assert reply.status == 200
    assert reply.body[0]["asset"] == "USDT" and reply.body[0]["balance"] == "1000.00000000"
    record = fake.requests[-1]
    assert (record.method, record.path, record.signed_ok, record.status) == ("GET", "/fapi/v3/balance", True, 200)


async def test_a_wrong_secret_is_refused_with_1022(fake: FakeBinance, client: BinanceClient) -> None:
    reply = await client.signed("GET", "/fapi/v2/account", secret="not-the-secret")
    assert (reply.status, reply.body) == (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    assert fake.requests[-1].signed_ok is False


async def test_a_tampered_parameter_breaks_the_signature(client: BinanceClient) -> None:
    query = urlencode({"symbol": "BTCUSDT", "recvWindow": 5000, "timestamp": int(time.time() * 1000)})
    signature = sign(query, API_SECRET)
    tampered = query.replace("BTCUSDT", "ETHUSDT") + "&signature=" + signature
    reply = await client.raw("GET", "/fapi/v1/openOrders", query=tampered, headers={"X-MBX-APIKEY": API_KEY})
    assert reply.code == -1022


async def test_signature_covers_query_string_and_body_together(fake: FakeBinance, client: BinanceClient) -> None:
    # Binance's totalParams: the query string concatenated with the body, signature sent in the body
    query = urlencode({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET"})
    body = urlencode({"quantity": "0.002", "timestamp": int(time.time() * 1000)})
    body += "&signature=" + sign(query + body, API_SECRET)
    headers = {"X-MBX-APIKEY": API_KEY, "Content-Type": "application/x-www-form-urlencoded"}
    reply = await client.raw("POST", "/fapi/v1/order", query=query, body=body, headers=headers)
    assert reply.status == 200, reply.body
    assert fake.position("BTCUSDT").qty == Decimal("0.002")


async def test_timestamp_behind_the_recv_window_is_refused_with_1021(client: BinanceClient) -> None:
    old = int(time.time() * 1000) - 6_000
    reply = await client.signed("GET", "/fapi/v2/balance", timestamp=old, recvWindow=5000)
    assert (reply.status, reply.code) == (400, -1021)
    assert reply.body["msg"] == "Timestamp for this request is outside of the recvWindow."
    # the same age is fine inside a wider window
    assert (await client.signed("GET", "/fapi/v2/balance", timestamp=old, recvWindow=10000)).status == 200


async def test_timestamp_ahead_of_server_time_is_refused(client: BinanceClient) -> None:
    reply = await client.signed("GET", "/fapi/v2/balance", timestamp=int(time.time() * 1000) + 5_000)
    assert reply.code == -1021
    assert "ahead of the server's time" in reply.body["msg"]


async def test_server_clock_control_drives_the_timing_check(fake: FakeBinance, client: BinanceClient) -> None:
    fake.time_offset_ms = -60_000  # the server runs a minute behind the client
    reply = await client.signed("GET", "/fapi/v2/balance")
    assert reply.code == -1021
    server_time = (await client.public("/fapi/v1/time")).body["serverTime"]
    assert abs(server_time - (int(time.time() * 1000) - 60_000)) < 2_000
    assert (await client.signed("GET", "/fapi/v2/balance", timestamp=server_time)).status == 200
    fake.set_time_ms(1_700_000_000_000)  # frozen
    assert (await client.public("/fapi/v1/time")).body == {"serverTime": 1_700_000_000_000}


async def test_recv_window_check_can_be_switched_off(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(1_700_000_000_000)  # years away from the client's clock
    assert (await client.signed("GET", "/fapi/v2/balance")).code == -1021
    fake.enforce_recv_window = False
    assert (await client.signed("GET", "/fapi/v2/balance")).status == 200
    assert (await client.signed("GET", "/fapi/v2/balance", secret="wrong")).code == -1022  # the signature still counts


async def test_recv_window_above_60s_is_refused(client: BinanceClient) -> None:
    reply = await client.signed("GET", "/fapi/v2/balance", recvWindow=60001)
    assert reply.code == -1131


async def test_missing_and_unknown_api_keys(client: BinanceClient) -> None:
    missing = await client.signed("GET", "/fapi/v2/balance", api_key="")
    assert (missing.status, missing.body) == (401, {"code": -2014, "msg": "API-key format invalid."})
    unknown = await client.signed("GET", "/fapi/v2/balance", api_key="someone-else")
    assert (unknown.status, unknown.code) == (401, -2015)
    assert unknown.body["msg"].startswith("Invalid API-key, IP, or permissions for action")


async def test_missing_signature_and_timestamp_are_mandatory(client: BinanceClient) -> None:
    headers = {"X-MBX-APIKEY": API_KEY}
    no_ts = await client.raw("GET", "/fapi/v2/balance", query="recvWindow=5000", headers=headers)
    assert no_ts.body == {
        "code": -1102,
        "msg": "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.",
    }
    no_sig = await client.raw("GET", "/fapi/v2/balance", query=f"timestamp={int(time.time() * 1000)}", headers=headers)
    assert no_sig.code == -1102 and "'signature'" in no_sig.body["msg"]


async def test_public_endpoints_need_no_key(client: BinanceClient) -> None:
    assert (await client.public("/fapi/v1/ping")).body == {}
    assert (await client.public("/fapi/v1/exchangeInfo")).status == 200


async def test_listen_key_endpoints_need_the_key_but_no_signature(client: BinanceClient) -> None:
    created = await client.keyed("POST", "/fapi/v1/listenKey")
    assert created.status == 200 and len(created.body["listenKey"]) == 64
    refused = await client.raw("POST", "/fapi/v1/listenKey")
    assert (refused.status, refused.code) == (401, -2014)


async def test_unknown_paths_are_404_like_binance(fake: FakeBinance, client: BinanceClient) -> None:
    reply = await client.raw("GET", "/fapi/v1/doesNotExist")
    assert reply.status == 404 and "404" in reply.body
    assert (await client.raw("GET", "/ws/btcusdt@kline_1m")).status == 404  # the retired WebSocket root
    assert fake.requests[-1].status == 404


async def test_malformed_parameters(client: BinanceClient) -> None:
    missing = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET")
    assert missing.body == {
        "code": -1102,
        "msg": "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.",
    }
    garbage = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="1e3")
    assert garbage.code == -1100 and "'quantity'" in garbage.body["msg"]
    bad_bool = await client.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.002", reduceOnly="maybe"
    )
    assert bad_bool.code == -1130
    bad_side = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="LONG", type="MARKET", quantity="1")
    assert bad_side.body == {"code": -1117, "msg": "Invalid side."}
    bad_symbol = await client.signed("GET", "/fapi/v1/openOrders", symbol="NOPEUSDT")
    assert bad_symbol.body == {"code": -1121, "msg": "Invalid symbol."}
    twice = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m")
    assert twice.status == 200
    dup = await client.raw("GET", "/fapi/v1/klines", query="symbol=BTCUSDT&symbol=ETHUSDT&interval=1m")
    assert dup.code == -1101
    needs_id = await client.signed("GET", "/fapi/v1/order", symbol="BTCUSDT")
    assert needs_id.code == -1102
