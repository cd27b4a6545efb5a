"""Binance USD-M error bodies, with the HTTP status the real API pairs them with.

Messages are copied from real responses where one was seen (``binance-api/errors/``)
and from Binance's error-code list otherwise.
"""

from __future__ import annotations

from typing import Any


class BinanceError(Exception):
    """A refusal the fake answers as ``{"code": ..., "msg": ...}`` with ``http_status``."""

    def __init__(self, code: int, msg: str, http_status: int = 400, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code} {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "msg": self.msg}


# ------------------------------------------------------------------ request / auth
def missing_param(name: str) -> BinanceError:
    return BinanceError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")


def not_required(name: str) -> BinanceError:
    return BinanceError(-1106, f"Parameter '{name}' sent when not required.")


def illegal_chars(name: str, legal: str) -> BinanceError:
    return BinanceError(-1100, f"Illegal characters found in parameter '{name}'; legal range is '{legal}'.")


def invalid_value(name: str) -> BinanceError:
    return BinanceError(-1130, f"Data sent for parameter '{name}' is not valid.")


def duplicate_param(name: str) -> BinanceError:
    return BinanceError(-1101, f"Duplicate values for parameter '{name}'.")


def api_key_format_invalid() -> BinanceError:
    return BinanceError(-2014, "API-key format invalid.", 401)


def api_key_rejected(ip: str) -> BinanceError:
    return BinanceError(-2015, f"Invalid API-key, IP, or permissions for action, request ip: {ip}", 401)


def timestamp_outside_window() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")


def timestamp_ahead() -> BinanceError:
    return BinanceError(-1021, "Timestamp for this request was 1000ms ahead of the server's time.")


def recv_window_too_large() -> BinanceError:
    return BinanceError(-1131, "recvWindow must be less than 60000")


def bad_signature() -> BinanceError:
    return BinanceError(-1022, "Signature for this request is not valid.")


def too_many_requests(limit: int, retry_after_s: int, status: int = 429) -> BinanceError:
    if status == 418:
        msg = "Way too many requests; IP banned until %d. Please use the websocket for live updates to avoid bans."
        return BinanceError(-1003, msg % retry_after_s, 418, {"Retry-After": str(retry_after_s)})
    msg = (
        f"Too many requests; current limit is {limit} requests per minute. "
        "Please use the websocket for live updates to avoid polling the API."
    )
    return BinanceError(-1003, msg, status, {"Retry-After": str(retry_after_s)})


# ------------------------------------------------------------------ symbols, enums
def invalid_symbol() -> BinanceError:
    return BinanceError(-1121, "Invalid symbol.")


def invalid_interval() -> BinanceError:
    return BinanceError(-1120, "Invalid interval.")


def invalid_side() -> BinanceError:
    return BinanceError(-1117, "Invalid side.")


def invalid_order_type() -> BinanceError:
    return BinanceError(-1116, "Invalid orderType.")


def invalid_time_in_force() -> BinanceError:
    return BinanceError(-1115, "Invalid timeInForce.")


def invalid_resp_type() -> BinanceError:
    return BinanceError(-1136, "Invalid newOrderRespType")


def position_side_mismatch() -> BinanceError:
    return BinanceError(-4061, "Order's position side does not match user's setting.")


def invalid_position_side() -> BinanceError:
    return BinanceError(-4060, "Invalid position side.")


# ------------------------------------------------------------------ orders
def use_algo_api() -> BinanceError:
    return BinanceError(
        -4120, "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
    )


def duplicate_client_order_id() -> BinanceError:
    return BinanceError(-4116, "ClientOrderId is duplicated.")


def min_notional(notional: str) -> BinanceError:
    return BinanceError(-4164, f"Order's notional must be no smaller than {notional} (unless you choose reduce only).")


def reduce_only_rejected() -> BinanceError:
    return BinanceError(-2022, "ReduceOnly Order is rejected.")


def margin_insufficient() -> BinanceError:
    return BinanceError(-2019, "Margin is insufficient.")


def order_does_not_exist() -> BinanceError:
    return BinanceError(-2013, "Order does not exist.")


def unknown_order() -> BinanceError:
    return BinanceError(-2011, "Unknown order sent.")


def would_immediately_trigger() -> BinanceError:
    return BinanceError(-2021, "Order would immediately trigger.")


def close_position_exists() -> BinanceError:
    return BinanceError(
        -4130, "An open stop or take profit order with GTE and closePosition in the direction is existing."
    )


def too_many_algo_orders() -> BinanceError:
    return BinanceError(-4045, "Reach max stop order limit.")


def precision_over_max() -> BinanceError:
    return BinanceError(-1111, "Precision is over the maximum defined for this asset.")


def qty_not_positive() -> BinanceError:
    return BinanceError(-4003, "Quantity less than or equal to zero.")


def qty_below_min() -> BinanceError:
    return BinanceError(-4004, "Quantity less than min quantity.")


def qty_above_max() -> BinanceError:
    return BinanceError(-4005, "Quantity greater than max quantity.")


def price_not_positive() -> BinanceError:
    return BinanceError(-4001, "Price less than 0.")


def price_tick() -> BinanceError:
    return BinanceError(-4014, "Price not increased by tick size.")


def symbol_not_trading() -> BinanceError:
    return BinanceError(-4140, "Invalid symbol status for opening position.")


def symbol_closed() -> BinanceError:
    return BinanceError(-4141, "Symbol is closed.")


def too_many_orders(limit: int, interval: str) -> BinanceError:
    """-1015 with HTTP 429 (order-rate limits answer like the request-weight limit, but with no Retry-After:
    Binance documents Retry-After for IP limits only). ``interval`` as Binance spells it: "10 SECOND"."""
    return BinanceError(-1015, f"Too many new orders; current limit is {limit} orders per {interval}.", 429)


def throttled() -> BinanceError:
    return BinanceError(
        -1008,
        "Request throttled by system-level protection. Reduce-only/close-position orders are exempt. Please try again.",
        503,
    )


def lookup_interval_too_big(hours: int) -> BinanceError:
    return BinanceError(-1127, f"More than {hours} hours between startTime and endTime.")


def bad_param_combination() -> BinanceError:
    return BinanceError(-1128, "Combination of optional parameters invalid.")


def start_after_end() -> BinanceError:
    return BinanceError(-1023, "Start time is greater than end time.")


def client_id_invalid(name: str) -> BinanceError:
    return illegal_chars(name, r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


# ------------------------------------------------------------------ account settings
def no_need_to_change_margin_type() -> BinanceError:
    return BinanceError(-4046, "No need to change margin type.")


def margin_type_with_position() -> BinanceError:
    return BinanceError(-4048, "Margin type cannot be changed if there exists position.")


def leverage_not_valid(leverage: str) -> BinanceError:
    return BinanceError(-4028, f"Leverage {leverage} is not valid")


def no_need_to_change_position_side() -> BinanceError:
    return BinanceError(-4059, "No need to change position side.")


def position_side_change_with_orders() -> BinanceError:
    return BinanceError(-4067, "Position side cannot be changed if there exists open orders.")


def position_side_change_with_position() -> BinanceError:
    return BinanceError(-4068, "Position side cannot be changed if there exists position.")


def no_need_to_change_multi_assets() -> BinanceError:
    return BinanceError(-4171, "Adjusted asset mode is currently set and does not need to be adjusted repeatedly.")


def multi_assets_with_isolated() -> BinanceError:
    return BinanceError(
        -4167, "Unable to adjust to Multi-Assets mode with symbols of USDⓈ-M Futures under isolated-margin mode."
    )


def isolated_with_multi_assets() -> BinanceError:
    return BinanceError(-4168, "Unable to adjust to isolated-margin mode under the Multi-Assets mode.")


def listen_key_missing() -> BinanceError:
    return BinanceError(-1125, "This listenKey does not exist.")


# Refusals a test can inject by code alone (``fake.faults.refuse``): code -> (HTTP status, message).
# Messages as the real API words them (observed bodies in binance-api/errors, else Binance's error-code list).
KNOWN_REFUSALS: dict[int, tuple[int, str]] = {
    -1003: (429, ""),  # built by too_many_requests (Retry-After, 418 ban wording)
    -1007: (503, "Timeout waiting for response from backend server. Send status unknown; execution status unknown."),
    -1008: (503, throttled().msg),
    -1015: (429, "Too many new orders; current limit is 300 orders per 10 SECOND."),
    -1021: (400, timestamp_outside_window().msg),
    -1111: (400, precision_over_max().msg),
    -2011: (400, unknown_order().msg),
    -2013: (400, order_does_not_exist().msg),
    -2019: (400, margin_insufficient().msg),
    -2021: (400, would_immediately_trigger().msg),
    -2022: (400, reduce_only_rejected().msg),
    -4045: (400, too_many_algo_orders().msg),
    -4061: (400, position_side_mismatch().msg),
    -4116: (400, duplicate_client_order_id().msg),
    -4118: (400, "ReduceOnly Order Failed. Please check your existing position and open orders"),
    -4130: (400, close_position_exists().msg),
    -4131: (400, "The counterparty's best price does not meet the PERCENT_PRICE filter limit"),
    -4140: (400, symbol_not_trading().msg),
    -4164: (400, ""),  # built by min_notional from the symbol's filter
}


EXECUTION_UNKNOWN = {
    "code": -1007,
    "msg": "Timeout waiting for response from backend server. Send status unknown; execution status unknown.",
}
