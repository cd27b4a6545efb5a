"""Error classification on Binance's real error bodies, and the rate-limit gate's rules (plain values)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import BINANCE_SAMPLES
from trading.exchange.base import (
    AuthError,
    ExchangeError,
    NotFoundError,
    OrderStatusUnknown,
    RateLimitedError,
    RejectedError,
    RetriableError,
)
from trading.exchange.errors import classify, is_error_response, parse_error_body, unserved
from trading.exchange.ratelimit import EXITS, QUERIES, WeightBudget

ERRORS_DIR = BINANCE_SAMPLES / "errors"

EXPECTED_CLASS = {
    -1021: AuthError,
    -2019: RejectedError,
    -1003: RateLimitedError,
    -4164: RejectedError,
    -4120: RejectedError,
    -2013: NotFoundError,
    -2011: NotFoundError,
    -1102: RejectedError,
    -1106: RejectedError,
    -4046: RejectedError,
    -4059: RejectedError,
    -4061: RejectedError,
    -4028: RejectedError,
    -2021: RejectedError,
    -2022: RejectedError,
    -4118: RejectedError,
    -4131: RejectedError,
    -1111: RejectedError,
    -1022: AuthError,
    -5022: RejectedError,
}


def _payloads() -> list[dict]:
    path = ERRORS_DIR / "usdm_error_payloads.json"
    if not path.is_file():
        pytest.fail(f"real error payloads expected in {path}")
    return json.loads(path.read_text())


def test_every_catalogued_payload_maps_to_its_class_with_code_and_message() -> None:
    payloads = _payloads()
    assert {p["code"] for p in payloads} <= set(EXPECTED_CLASS), "a new code in the catalogue needs an expectation"
    for p in payloads:
        body = json.dumps({"code": p["code"], "msg": p["msg"]})
        err = classify(p["http_status"], body)
        assert type(err) is EXPECTED_CLASS[p["code"]], (p["code"], type(err))
        assert err.code == p["code"]
        assert err.http_status == p["http_status"]
        assert err.exchange_msg == p["msg"]
        assert str(p["code"]) in str(err) and p["msg"] in str(err)


@pytest.mark.parametrize("path", sorted(ERRORS_DIR.glob("error_*_http*.json")), ids=lambda p: p.stem)
def test_wire_bodies_from_real_logs(path) -> None:
    raw = path.read_text()
    code = json.loads(raw)["code"]
    status = int(path.stem.rsplit("http", 1)[1])
    err = classify(status, raw)
    assert type(err) is EXPECTED_CLASS[code]
    assert err.code == code


def test_ccxt_style_message_is_parsed_like_a_body() -> None:
    # What ccxt puts in a bare ExchangeError when the URL is rewritten.
    msg = 'binanceusdm {"code":-2019,"msg":"Margin is insufficient."}'
    err = classify(None, msg)
    assert type(err) is RejectedError and err.code == -2019 and err.exchange_msg == "Margin is insufficient."
    assert parse_error_body(msg) == (-2019, "Margin is insufficient.")


def test_status_unknown_and_server_errors_are_retriable() -> None:
    err = classify(
        503,
        '{"code":-1007,"msg":"Timeout waiting for response from backend server. '
        'Send status unknown; execution status unknown."}',
    )
    assert type(err) is RetriableError and err.code == -1007 and err.http_status == 503
    assert type(classify(502, "<html>Bad Gateway</html>")) is RetriableError
    assert type(classify(400, '{"code":-1001,"msg":"Internal error; unable to process your request."}')) is (
        RetriableError
    )
    assert type(classify(None, "binanceusdm GET http://x/fapi/v1/order request timed out")) is RetriableError
    assert not isinstance(err, OrderStatusUnknown)  # the adapter decides that, for orders only


def test_rate_limits_honour_retry_after_and_ban_expiry() -> None:
    body = json.dumps({"code": -1003, "msg": "Too many requests; current limit is 2400 requests per minute."})
    err = classify(429, body, retry_after="7")
    assert isinstance(err, RateLimitedError) and err.retry_after == 7.0 and err.code == -1003
    banned = json.dumps({"code": -1003, "msg": "Way too many requests; IP banned until 1700000030000. Please use"})
    err = classify(418, banned, now_ms=1_700_000_000_000)
    assert isinstance(err, RateLimitedError) and err.retry_after == pytest.approx(30.0)
    # No header, no expiry: a conservative default, never zero.
    assert classify(429, "").retry_after > 0


def test_auth_unknown_and_no_code() -> None:
    assert type(classify(401, '{"code":-2015,"msg":"Invalid API-key, IP, or permissions for action."}')) is AuthError
    assert type(classify(400, '{"code":-2014,"msg":"API-key format invalid."}')) is AuthError
    # A 4xx that carries no code is still a refusal; a message with nothing in it stays the base class.
    assert type(classify(404, "Not Found")) is RejectedError
    assert type(classify(None, "something odd")) is ExchangeError


def test_an_unserved_path_is_told_from_a_refused_request() -> None:
    assert unserved(classify(404, "<html><body><h2>404 Not found</h2></body></html>"))
    assert unserved(classify(405, "405: Method Not Allowed"))
    assert not unserved(classify(400, '{"code":-1121,"msg":"Invalid symbol."}'))
    assert not unserved(classify(503, '{"code":-1007,"msg":"Timeout waiting for response from backend server."}'))


def test_error_detection_on_decoded_replies() -> None:
    assert is_error_response(400, {"code": -2019, "msg": "x"})
    assert is_error_response(200, {"code": -1000, "msg": "x"})
    assert not is_error_response(200, {"code": 200, "msg": "success"})  # POST /marginType's success reply
    assert not is_error_response(200, [{"symbol": "BTCUSDT"}])


# ------------------------------------------------------------------ the gate
def test_gate_pauses_non_exits_until_retry_after() -> None:
    gate = WeightBudget()
    gate.block_for(2.0, now=100.0)
    assert gate.wait_time(QUERIES, now=100.5, exchange_ms=0) == pytest.approx(1.5)
    assert gate.wait_time(EXITS, now=100.5, exchange_ms=0) == 0.0
    assert gate.wait_time(QUERIES, now=102.0, exchange_ms=0) == 0.0
    gate.block_for(0.5, now=100.0)  # a shorter wait never shortens the pause
    assert gate.blocked_for(101.0) == pytest.approx(1.0)


def test_gate_slows_down_past_the_soft_weight_limit_until_the_minute_turns() -> None:
    gate = WeightBudget()
    minute = 1_700_000_040_000  # a minute boundary
    gate.record_weight(1900, minute + 10_000)
    assert gate.used_weight() == 1900
    assert gate.wait_time(QUERIES, now=0.0, exchange_ms=minute + 20_000) == 0.0  # below 80% of 2,400
    gate.record_weight(1950, minute + 30_000)
    assert gate.wait_time(QUERIES, now=0.0, exchange_ms=minute + 30_000) == pytest.approx(30.05)
    assert gate.wait_time(EXITS, now=0.0, exchange_ms=minute + 30_000) == 0.0
    assert gate.wait_time(QUERIES, now=0.0, exchange_ms=minute + 60_000) == 0.0  # the counter reset
    gate.record_weight(1000, minute + 31_000)  # a late, lower reading in the same minute: reported, not paced on
    assert gate.used_weight() == 1000
    assert gate.wait_time(QUERIES, now=0.0, exchange_ms=minute + 31_000) > 28
    gate.record_weight(12, minute + 61_000)
    assert gate.used_weight() == 12
