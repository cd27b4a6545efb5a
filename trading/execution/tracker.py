"""The one owner of what is in flight: market orders whose outcome is not known, per position.

Everyone asks here ("may this position's ladder act?") instead of reading the
journal on the hot path. The journal stays the record; the tracker is seeded
from it at start and kept in step by the sender and the resolver. It also
numbers client order ids per position and action.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from storage.journal import JournalRow
from trading.core.order_state import OrderKind, OrderState
from trading.orders import ClientIds


@dataclass(slots=True)
class InFlight:
    client_order_id: str
    position_id: int
    symbol: str
    action: str
    side: str
    reduce_only: bool
    state: OrderState
    sent_ms: int

    @property
    def is_sell(self) -> bool:
        return self.side == "SELL"


class OrderTracker:
    def __init__(self, ids: ClientIds) -> None:
        self.ids = ids
        self._by_position: dict[int, dict[str, InFlight]] = {}
        self._seq: dict[int, dict[str, int]] = {}

    # ------------------------------------------------------------------ ids
    def next_id(self, position_id: int, action: str) -> str:
        seq = self._seq.setdefault(position_id, {})
        n = seq.get(action, 1)
        seq[action] = n + 1
        return self.ids.make(position_id, action, n)

    def seed(self, position_id: int, rows: Iterable[JournalRow]) -> None:
        """Numbering and in-flight market orders of one position from its journal rows (at start)."""
        seq = self._seq.setdefault(position_id, {})
        for row in rows:
            parsed = self.ids.ours(row.client_order_id)
            if parsed is None:
                continue
            seq[parsed.action] = max(seq.get(parsed.action, 1), parsed.n + 1)
            if row.kind is OrderKind.MARKET and row.status.in_flight:
                self._by_position.setdefault(position_id, {})[row.client_order_id] = InFlight(
                    row.client_order_id,
                    position_id,
                    row.symbol,
                    row.action,
                    row.side,
                    row.reduce_only,
                    row.status,
                    row.updated_at_ms,
                )

    # ------------------------------------------------------------------ life of one order
    def started(self, order: InFlight) -> None:
        self._by_position.setdefault(order.position_id, {})[order.client_order_id] = order

    def unknown(self, client_order_id: str, position_id: int, now_ms: int) -> None:
        order = self._by_position.get(position_id, {}).get(client_order_id)
        if order is not None:
            order.state, order.sent_ms = OrderState.UNKNOWN, now_ms

    def settled(self, client_order_id: str, position_id: int | None) -> None:
        if position_id is None:
            return
        orders = self._by_position.get(position_id)
        if orders is not None:
            orders.pop(client_order_id, None)
            if not orders:
                del self._by_position[position_id]

    def forget(self, position_id: int) -> None:
        self._by_position.pop(position_id, None)
        self._seq.pop(position_id, None)

    # ------------------------------------------------------------------ questions
    def in_flight(self, position_id: int) -> list[InFlight]:
        return list(self._by_position.get(position_id, {}).values())

    def busy(self, position_id: int) -> bool:
        """Some market order of this position has an outcome not known yet."""
        return position_id in self._by_position

    def unknown_orders(self) -> list[InFlight]:
        return [o for orders in self._by_position.values() for o in orders.values()]
