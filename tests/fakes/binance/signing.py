"""Binance's HMAC-SHA256 request signing, checked exactly as the exchange does.

The signed payload ("totalParams") is the raw query string concatenated with the raw
request body, each without its ``signature`` parameter, byte for byte as sent.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import unquote_plus

from tests.fakes.binance import errors

MAX_RECV_WINDOW_MS = 60_000
DEFAULT_RECV_WINDOW_MS = 5_000
AHEAD_TOLERANCE_MS = 1_000


def sign(payload: str, secret: str) -> str:
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def split_signature(raw: str) -> tuple[str, str | None]:
    """``raw`` without its ``signature=...`` part, and the signature (None if absent)."""
    if not raw:
        return "", None
    kept: list[str] = []
    signature: str | None = None
    for part in raw.split("&"):
        if part.startswith("signature="):
            signature = unquote_plus(part[len("signature=") :])
        else:
            kept.append(part)
    return "&".join(kept), signature


def check_signature(raw_query: str, raw_body: str, secret: str) -> None:
    query, sig_q = split_signature(raw_query)
    body, sig_b = split_signature(raw_body)
    signature = sig_q if sig_q is not None else sig_b
    if not signature:
        raise errors.missing_param("signature")
    expected = sign(query + body, secret)
    if not hmac.compare_digest(expected, signature.lower()):
        raise errors.bad_signature()


def check_timestamp(params: dict[str, str], server_now_ms: int, *, enforce_window: bool = True) -> None:
    """Binance's timing rule: ``timestamp < now + 1000`` and ``now - timestamp <= recvWindow``.

    ``enforce_window=False`` still wants a well-formed timestamp but accepts any value.
    """
    raw = params.get("timestamp")
    if raw is None or raw == "":
        raise errors.missing_param("timestamp")
    if not raw.isdigit():
        raise errors.illegal_chars("timestamp", "^[0-9]{1,20}$")
    timestamp = int(raw)
    window_raw = params.get("recvWindow")
    window = DEFAULT_RECV_WINDOW_MS
    if window_raw is not None:
        if not window_raw.isdigit():
            raise errors.illegal_chars("recvWindow", "^[0-9]{1,20}$")
        window = int(window_raw)
        if window > MAX_RECV_WINDOW_MS:
            raise errors.recv_window_too_large()
    if not enforce_window:
        return
    if timestamp >= server_now_ms + AHEAD_TOLERANCE_MS:
        raise errors.timestamp_ahead()
    if server_now_ms - timestamp > window:
        raise errors.timestamp_outside_window()
