"""What sending an order can end in, as typed values (no exception leaves the sender)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from trading.core.refusals import RefusalClass


@dataclass(frozen=True, slots=True)
class FillFacts:
    """One executed order as reported (REST reply, user-data event or a later lookup)."""

    client_order_id: str
    price: Decimal
    qty: Decimal
    fee: Decimal | None  # None: estimate with the taker fee
    ts_ms: int
    exchange_order_id: str | None = None
    raw: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Filled:
    facts: FillFacts


@dataclass(frozen=True, slots=True)
class Refused:
    """The exchange (or our own order budget) looked at the order and did not execute it."""

    klass: RefusalClass
    code: int | None
    message: str
    http_status: int | None = None
    local: bool = False  # refused before it left (our share of the account's order limits is used up)


@dataclass(frozen=True, slots=True)
class Unknown:
    """It may have executed: nothing else that depends on it is sent until its fate is known."""

    reason: str


SendOutcome = Filled | Refused | Unknown
