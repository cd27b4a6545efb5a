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
    for order in remote_orders:
        if order.position_id is None or order.symbol in skip:
            continue  # not ours: placed by hand, never touched
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
