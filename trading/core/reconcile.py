"""Reconciliation as a pure diff of local (database) and exchange state.

The exchange is the source of truth for quantities, the database for the
ladder (order-safety rule 6). ``diff`` only says what differs and what to do;
``trading/reconciler.py`` does it, symbol by symbol, under the executor's
locks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from trading.core.order_state import ExchangeOrderStatus, OrderKind, OrderState


@dataclass(frozen=True, slots=True)
class LocalPosition:
    position_id: int
    symbol: str
    qty: Decimal
    backstop_client_id: str | None
    wants_backstop: bool


@dataclass(frozen=True, slots=True)
class RemotePosition:
    symbol: str
    qty: Decimal  # signed (one-way mode)
    entry_price: Decimal


@dataclass(frozen=True, slots=True)
class RemoteOrder:
    symbol: str
    client_id: str
    is_algo: bool
    position_id: int | None  # parsed from our client id; None for ids that are not ours


# ---- corrections
@dataclass(frozen=True, slots=True)
class Adopt:
    symbol: str
    qty: Decimal
    entry_price: Decimal


@dataclass(frozen=True, slots=True)
class Vanished:
    position_id: int
    symbol: str
    qty: Decimal


@dataclass(frozen=True, slots=True)
class FixQty:
    position_id: int
    symbol: str
    db_qty: Decimal
    exchange_qty: Decimal


@dataclass(frozen=True, slots=True)
class CancelStray:
    symbol: str
    client_id: str
    is_algo: bool
    why: str


@dataclass(frozen=True, slots=True)
class RecreateBackstop:
    position_id: int
    symbol: str


@dataclass(frozen=True, slots=True)
class ForeignShort:
    """A short on the exchange: never ours (we only buy longs); reported, not traded."""

    symbol: str
    qty: Decimal


Correction = Adopt | Vanished | FixQty | CancelStray | RecreateBackstop | ForeignShort


def diff(
    local: Iterable[LocalPosition],
    remote_positions: Iterable[RemotePosition],
    remote_orders: Iterable[RemoteOrder],
    *,
    skip: frozenset[str] = frozenset(),
) -> list[Correction]:
    """Corrections that make the database agree with the exchange.

    ``skip``: symbols with activity in flight (an order being sent, an entry
    being resolved): their snapshot may be stale, so they wait for the next round.
    """
    local_by_symbol = {p.symbol: p for p in local}
    remote_by_symbol = {p.symbol: p for p in remote_positions if p.qty != 0}
    out: list[Correction] = []

    for symbol, rp in sorted(remote_by_symbol.items()):
        if symbol in skip:
            continue
        lp = local_by_symbol.get(symbol)
        if rp.qty < 0:
            out.append(ForeignShort(symbol, rp.qty))
            if lp is not None:
                out.append(Vanished(lp.position_id, symbol, lp.qty))
            continue
        if lp is None:
            out.append(Adopt(symbol, rp.qty, rp.entry_price))
        elif lp.qty != rp.qty:
            out.append(FixQty(lp.position_id, symbol, lp.qty, rp.qty))

    for symbol, lp in sorted(local_by_symbol.items()):
        if symbol in skip or symbol in remote_by_symbol:
            continue
        out.append(Vanished(lp.position_id, symbol, lp.qty))

    open_ids = {
        p.position_id
        for p in local_by_symbol.values()
        if p.symbol in remote_by_symbol and remote_by_symbol[p.symbol].qty > 0
    }
    resting_algo_ids = set()
    # A position that vanished takes its own backstop with it (the Vanished correction cancels it): not a stray.
    vanishing = {
        p.position_id: p.backstop_client_id
        for p in local_by_symbol.values()
        if p.symbol not in skip and (p.symbol not in remote_by_symbol or remote_by_symbol[p.symbol].qty < 0)
    }
    for order in remote_orders:
        if order.position_id is None or order.symbol in skip:
            continue  # not ours: placed by hand, never touched
        if order.is_algo and order.position_id in vanishing and vanishing[order.position_id] == order.client_id:
            continue
        lp = local_by_symbol.get(order.symbol)
        if order.position_id not in open_ids or lp is None or lp.position_id != order.position_id:
            out.append(CancelStray(order.symbol, order.client_id, order.is_algo, "belongs to no open position"))
        elif order.is_algo and order.client_id != lp.backstop_client_id:
            out.append(CancelStray(order.symbol, order.client_id, True, "not the position's current backstop"))
        elif order.is_algo:
            resting_algo_ids.add(order.client_id)
        elif not order.is_algo:
            out.append(CancelStray(order.symbol, order.client_id, False, "a resting market-order id (never expected)"))

    for lp in sorted(local_by_symbol.values(), key=lambda p: p.symbol):
        if lp.symbol in skip or not lp.wants_backstop or lp.position_id not in open_ids:
            continue
        if lp.backstop_client_id is None or lp.backstop_client_id not in resting_algo_ids:
            out.append(RecreateBackstop(lp.position_id, lp.symbol))
    return out


# ---------------------------------------------------------------------- journal resolution (order-safety rule 3)
@dataclass(frozen=True, slots=True)
class JournalFacts:
    """What the journal and the book know about one unresolved order."""

    kind: OrderKind
    status: OrderState
    updated_at_ms: int  # when it was last sent or marked; its request left before that
    is_current_backstop: bool = False  # a stop: it is the backstop its open position counts on
    position_open: bool = False
    position_has_backstop: bool = False


@dataclass(frozen=True, slots=True)
class ReportedOrder:
    """The exchange's answer about that client id (a market order, or the order a triggered stop became)."""

    status: ExchangeOrderStatus
    filled_qty: Decimal


@dataclass(frozen=True, slots=True)
class ApplyFill:
    """It executed: apply its fill (idempotent)."""


@dataclass(frozen=True, slots=True)
class NotExecuted:
    """It never executed and never will (absent once its request window has passed)."""

    why: str


@dataclass(frozen=True, slots=True)
class Ended:
    """The exchange ended it with nothing filled (expired, cancelled, rejected; a stop no longer resting)."""

    status: OrderState
    why: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Not known yet: ask again later."""

    why: str


@dataclass(frozen=True, slots=True)
class StillResting:
    """The current backstop rests as it should."""


@dataclass(frozen=True, slots=True)
class AdoptResting:
    """A stop of the position rests while the position knows none: it is the backstop."""


@dataclass(frozen=True, slots=True)
class CancelResting:
    why: str


Resolution = ApplyFill | NotExecuted | Ended | Wait | StillResting | AdoptResting | CancelResting


def resolve_order(
    row: JournalFacts, reported: ReportedOrder | None, *, resting: bool, now_ms: int, window_ms: int
) -> Resolution:
    """The correction one unresolved journal row needs, from what the exchange reports about it.

    ``resting``: the client id is among the symbol's open algo orders. ``window_ms``: how long after it was
    sent an absent order may still arrive (Binance refuses a signed request later than its ``recvWindow``
    after its timestamp), plus a margin for the clocks.
    """
    if row.kind is OrderKind.STOP and resting:
        if row.is_current_backstop:
            return StillResting()
        if row.position_open and not row.position_has_backstop:
            return AdoptResting()
        return CancelResting("not the position's current backstop")
    if reported is not None and reported.filled_qty > 0 and reported.status.final:
        return ApplyFill()
    if reported is not None and reported.status.final:
        state = OrderState.REJECTED if reported.status is ExchangeOrderStatus.REJECTED else OrderState.EXPIRED
        return Ended(state, f"ended {reported.status} with nothing filled")
    if reported is not None:
        return Wait(f"still {reported.status} on the exchange")
    if row.kind is OrderKind.STOP and row.status is OrderState.SENT:
        return Ended(OrderState.CANCELED, "no longer resting on the exchange")
    if now_ms - row.updated_at_ms < window_ms:
        return Wait("not on the exchange yet; asking again once its request window has passed")
    return NotExecuted("never reached the exchange")
