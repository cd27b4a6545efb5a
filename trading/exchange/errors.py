"""Binance USD-M error classification: (HTTP status, body or message) -> the port's error types.

A pure function, so it is tested on the real error bodies. It classifies by the
Binance ``code`` and the HTTP status, never by ccxt's exception class: with a
rewritten ``BINANCE_REST_URL`` ccxt raises a bare ``ExchangeError`` for
everything (it maps codes by the production URL prefix).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from trading.exchange.base import (
    AuthError,
    ExchangeError,
    NotFoundError,
    RateLimitedError,
    RejectedError,
    RetriableError,
)

# The request may or may not have been executed: a query can be retried, an order must be asked about first.
RETRIABLE_CODES = frozenset(
    {
        -1000,  # UNKNOWN: an unknown error occurred while processing the request
        -1001,  # DISCONNECTED: internal error; unable to process your request
        -1006,  # UNEXPECTED_RESP: unexpected response from the message bus, execution status unknown
        -1007,  # TIMEOUT: timeout waiting for response from backend server, execution status unknown
        -1008,  # SERVER_BUSY / throttled by system-level protection
    }
)
RATE_LIMIT_CODES = frozenset({-1003, -1015})  # too many requests (IP weight) / too many new orders
NOT_FOUND_CODES = frozenset({-2011, -2013})  # unknown order sent (cancel) / order does not exist (query)
TIMESTAMP_CODES = frozenset({-1021, -5028})  # outside recvWindow (API / matching engine): never executed
AUTH_CODES = frozenset({-1002, -1022, -2014, -2015}) | TIMESTAMP_CODES
RATE_LIMIT_STATUSES = frozenset({418, 429})
NO_NEED_TO_CHANGE_MARGIN_TYPE = -4046
MARGIN_TYPE_LOCKED = -4048  # a position or open order exists on the symbol
NO_NEED_TO_CHANGE_POSITION_SIDE = -4059  # the account already is in that position mode
POSITION_SIDE_LOCKED = frozenset({-4067, -4068})  # an open order / a position forbids changing the position mode

DEFAULT_RETRY_AFTER_S = {429: 5.0, 418: 120.0}

_CODE_RE = re.compile(r'"code"\s*:\s*"?(-?\d+)')
_MSG_RE = re.compile(r'"msg"\s*:\s*"((?:[^"\\]|\\.)*)"')
_BANNED_UNTIL_RE = re.compile(r"banned until (\d{12,})")
_TIMEOUT_WORDS = ("timed out", "timeout", "connection reset", "disconnected", "cannot connect", "connection refused")


def parse_error_body(body: str | bytes | Mapping | None) -> tuple[int | None, str]:
    """The Binance ``code`` and ``msg`` in a body, or in a message that embeds one (ccxt's ``"binanceusdm {...}"``)."""
    if body is None:
        return None, ""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, Mapping):
        return _as_code(body.get("code")), str(body.get("msg", "") or "")
    text = body.strip()
    start = text.find("{")
    if start >= 0:
        end = text.rfind("}")
        try:
            obj = json.loads(text[start : end + 1])
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "code" in obj:
            return _as_code(obj.get("code")), str(obj.get("msg", "") or "")
    code_match = _CODE_RE.search(text)
    if code_match:
        msg_match = _MSG_RE.search(text)
        return int(code_match.group(1)), (msg_match.group(1) if msg_match else text)
    return None, text


def _as_code(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[call-overload]  # any JSON value: what int() refuses is no code
    except (TypeError, ValueError):
        return None


def parse_retry_after(value: str | float | int | None) -> float | None:
    """``Retry-After`` in seconds (Binance sends an integer); None when absent or not a number."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, seconds)


def is_error_response(http_status: int | None, response: object) -> bool:
    """Whether a decoded reply is an error: HTTP >= 400, or a body carrying a non-success ``code``."""
    if http_status is not None and http_status >= 400:
        return True
    if isinstance(response, Mapping) and "code" in response:
        code = _as_code(response.get("code"))
        return code is not None and code not in (0, 200)
    return False


def unserved(err: ExchangeError) -> bool:
    """The path (or the method on it) does not exist where the request went (404/405): a gateway or stand-in
    exchange without that endpoint. Binance refuses a request's content with 400 and a code, never with these."""
    return err.http_status in (404, 405)


def classify(
    http_status: int | None,
    body_or_message: str | bytes | Mapping | None,
    *,
    retry_after: str | float | None = None,
    now_ms: int | None = None,
) -> ExchangeError:
    """The port error for one failed reply. Keeps Binance's code and message on the exception.

    ``retry_after`` is the ``Retry-After`` header; ``now_ms`` (exchange time) lets an IP-ban reply
    ("banned until <ms>") turn into a wait when the header is missing.
    """
    code, msg = parse_error_body(body_or_message)
    status = http_status
    message = _describe(code, msg, status)

    if status in RATE_LIMIT_STATUSES or code in RATE_LIMIT_CODES:
        wait = parse_retry_after(retry_after)
        if wait is None:
            banned = _BANNED_UNTIL_RE.search(msg)
            if banned and now_ms is not None:
                wait = max(0.0, (int(banned.group(1)) - now_ms) / 1000.0)
        if wait is None:
            wait = DEFAULT_RETRY_AFTER_S.get(status or 429, DEFAULT_RETRY_AFTER_S[429])
        return _tag(RateLimitedError(message, retry_after=wait, code=code, http_status=status), msg)
    if status is not None and (status >= 500 or status == 408):
        return _tag(RetriableError(message, code=code, http_status=status), msg)
    if code in RETRIABLE_CODES:
        return _tag(RetriableError(message, code=code, http_status=status), msg)
    if code in NOT_FOUND_CODES:
        return _tag(NotFoundError(message, code=code, http_status=status), msg)
    if code in AUTH_CODES or status == 401:
        return _tag(AuthError(message, code=code, http_status=status), msg)
    if code is not None or (status is not None and 400 <= status < 500):
        # -2019 margin, -4164 notional, -1111/-1013 precision, -2022 reduce-only, -4120, -1102/-1106 params,
        # 403 (WAF) ...: the exchange looked at the request and refused it; it was not executed.
        return _tag(RejectedError(message, code=code, http_status=status), msg)
    if any(word in msg.lower() for word in _TIMEOUT_WORDS):
        return _tag(RetriableError(message, code=code, http_status=status), msg)
    return _tag(ExchangeError(message, code=code, http_status=status), msg)


def _describe(code: int | None, msg: str, status: int | None) -> str:
    parts = [msg or "no message"]
    detail = []
    if code is not None:
        detail.append(f"code {code}")
    if status is not None:
        detail.append(f"HTTP {status}")
    if detail:
        parts.append(f"({', '.join(detail)})")
    return "binance: " + " ".join(parts)


def _tag(err: ExchangeError, msg: str) -> ExchangeError:
    # The exchange's own text, separate from the decorated str(err), for presenters and tests.
    err.exchange_msg = msg
    return err
