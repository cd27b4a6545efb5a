"""What a refused order means and when the same order may be tried again (pure policy).

A refusal is an answer: the exchange looked at the request and did not execute
it (Binance's error code, or HTTP 429/418 on an order). Sending the same order
again on the next price tick would only be refused again, and a storm of
refusals walks the account into Binance's order limit (300 per 10 s, -1015)
and then into 429/418, which would block the stop-loss exits exactly when
they are needed. So a refused action waits: 2 s, doubling, up to 5 minutes,
per position and action, and starts again from the floor when the position's
state changes. A DCA refused for margin, notional or precision is given up
for the position after a few tries; exits never give up.
"""

from __future__ import annotations

from enum import StrEnum

from trading.core.backoff import Backoff


class RefusalClass(StrEnum):
    RATE_LIMIT = "rate_limit"  # 429/418, -1003 (IP weight), -1015 (order count)
    MARGIN = "margin"  # not enough margin or balance for the order
    NOTIONAL = "notional"  # below the minimum notional / above the maximum quantity or position
    PRECISION = "precision"  # quantity or price does not fit the symbol's filters
    REDUCE_ONLY = "reduce_only"  # nothing (or less) to reduce: the position is not what we think
    WOULD_TRIGGER = "would_trigger"  # a stop at a price the mark has already crossed
    STOP_EXISTS = "stop_exists"  # one closePosition stop per side is allowed
    POSITION_MODE = "position_mode"  # the account's position mode refuses the order (hedge vs one-way)
    MARKET_CLOSED = "market_closed"  # symbol not trading (settling, delisted, unknown)
    AUTH = "auth"  # key, signature, permissions or timestamp
    OTHER = "other"

    @property
    def describes(self) -> str:
        return _WORDS[self]


_WORDS = {
    RefusalClass.RATE_LIMIT: "the exchange's rate limit",
    RefusalClass.MARGIN: "insufficient margin",
    RefusalClass.NOTIONAL: "the order size limits",
    RefusalClass.PRECISION: "the symbol's quantity or price filters",
    RefusalClass.REDUCE_ONLY: "reduce-only (the exchange holds less than expected)",
    RefusalClass.WOULD_TRIGGER: "the stop would trigger at once",
    RefusalClass.STOP_EXISTS: "another closePosition stop already rests",
    RefusalClass.POSITION_MODE: "the account's position mode",
    RefusalClass.MARKET_CLOSED: "the market is not trading",
    RefusalClass.AUTH: "the API key, its permissions or the clock",
    RefusalClass.OTHER: "an exchange rule",
}

_BY_CODE: dict[int, RefusalClass] = {
    -1003: RefusalClass.RATE_LIMIT,
    -1015: RefusalClass.RATE_LIMIT,
    -2018: RefusalClass.MARGIN,  # balance insufficient
    -2019: RefusalClass.MARGIN,  # margin insufficient
    -2027: RefusalClass.NOTIONAL,  # exceeded the maximum position at this leverage
    -2028: RefusalClass.MARGIN,  # leverage too small for the existing position
    -4164: RefusalClass.NOTIONAL,  # below the minimum notional
    -4005: RefusalClass.NOTIONAL,  # quantity above the maximum
    -4003: RefusalClass.PRECISION,  # quantity less than or equal to zero
    -1013: RefusalClass.PRECISION,  # filter failure
    -1111: RefusalClass.PRECISION,  # precision over the maximum for the asset
    -4014: RefusalClass.PRECISION,  # price not a multiple of the tick
    -4023: RefusalClass.PRECISION,  # quantity not a multiple of the step
    -2022: RefusalClass.REDUCE_ONLY,
    -2021: RefusalClass.WOULD_TRIGGER,
    -4130: RefusalClass.STOP_EXISTS,
    -4061: RefusalClass.POSITION_MODE,  # positionSide does not match the account's setting
    -1121: RefusalClass.MARKET_CLOSED,  # invalid symbol
    -4140: RefusalClass.MARKET_CLOSED,  # symbol status does not allow opening
    -1021: RefusalClass.AUTH,
    -1022: RefusalClass.AUTH,
    -2014: RefusalClass.AUTH,
    -2015: RefusalClass.AUTH,
}
RATE_LIMIT_HTTP = frozenset({418, 429})

BACKOFF_FLOOR_S = 2.0
BACKOFF_CAP_S = 300.0
REFUSAL_BACKOFF = Backoff(BACKOFF_FLOOR_S, factor=2.0, cap_s=BACKOFF_CAP_S)
DCA_TRIES = 3  # a DCA refused this many times for margin, notional or precision is given up
GIVE_UP_CLASSES = frozenset({RefusalClass.MARGIN, RefusalClass.NOTIONAL, RefusalClass.PRECISION})
ENTRY_REFUSAL_COOLDOWN_MS = 15 * 60_000  # a refused entry: the symbol rests for the next scan minutes


def classify_refusal(code: int | None, http_status: int | None) -> RefusalClass:
    if http_status in RATE_LIMIT_HTTP:
        return RefusalClass.RATE_LIMIT
    if code is None:
        return RefusalClass.OTHER
    return _BY_CODE.get(code, RefusalClass.OTHER)


def backoff_s(refusals: int) -> float:
    """Seconds before the ``refusals``-th refused order may be tried again: 2, 4, 8 ... capped at 5 minutes."""
    return REFUSAL_BACKOFF.delay(refusals - 1) if refusals > 0 else 0.0


def gives_up(is_dca: bool, klass: RefusalClass, refusals: int) -> bool:
    """A DCA refused for margin, notional or precision ``DCA_TRIES`` times is abandoned for the position.

    Exits never give up (they respect the back-off floor), nor does anything refused for reasons
    that pass (rate limits).
    """
    return is_dca and klass in GIVE_UP_CLASSES and refusals >= DCA_TRIES
