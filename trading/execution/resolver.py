"""Unresolved journal rows settled against the exchange (order-safety rule 3).

At start, by every reconcile, and shortly after an order's outcome turned out
unknown: each row whose fate is not known (pending, unknown, a stop resting) is
looked up and ``core.reconcile.resolve_order`` says what it needs. Applying a
fill goes through the executor (ledger, then backstop); everything else is a
journal mark here.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from storage.journal import JournalRow
from trading.context import EngineContext
from trading.core import reconcile
from trading.core.order_state import OrderKind, OrderState, PositionStatus
from trading.exchange.base import REQUEST_WINDOW_MS, AlgoOrder, ExchangePort
from trading.execution.backstop import BackstopKeeper
from trading.execution.ledger import PositionLedger
from trading.execution.outcomes import FillFacts
from trading.execution.tracker import OrderTracker
from trading.orders import ClientIds, ParsedId
from trading.views import SyncItem

log = logging.getLogger("surgedca.resolver")

WINDOW_MARGIN_MS = 2_000  # clock offset between us and the exchange, on top of the request window
RESOLVE_WINDOW_MS = REQUEST_WINDOW_MS + WINDOW_MARGIN_MS

ApplyFill = Callable[[str, ParsedId, FillFacts, str], Awaitable[None]]
EntryEnded = Callable[[int, str, str], None]


class OpenAlgos:
    """Open algo orders for one round: fetched per symbol (weight 1 each) unless swept at once
    (weight 40: the periodic full sweep that also finds stops of symbols we no longer hold)."""

    def __init__(self, port: ExchangePort) -> None:
        self._port = port
        self._all: list[AlgoOrder] | None = None
        self._by_symbol: dict[str, dict[str, AlgoOrder]] = {}

    async def sweep(self) -> list[AlgoOrder]:
        if self._all is None:
            self._all = await self._port.fetch_open_algo_orders()
            self._by_symbol = {}
            for a in self._all:
                self._by_symbol.setdefault(a.symbol, {})[a.client_algo_id] = a
        return self._all

    async def for_symbol(self, symbol: str) -> dict[str, AlgoOrder]:
        if symbol not in self._by_symbol:
            if self._all is not None:
                return {}
            self._by_symbol[symbol] = {a.client_algo_id: a for a in await self._port.fetch_open_algo_orders(symbol)}
        return self._by_symbol[symbol]

    def known(self) -> list[AlgoOrder]:
        return [a for orders in self._by_symbol.values() for a in orders.values()]


class JournalResolver:
    def __init__(
        self,
        ctx: EngineContext,
        tracker: OrderTracker,
        ids: ClientIds,
        ledger: PositionLedger,
        keeper: BackstopKeeper,
        *,
        apply_fill: ApplyFill,
        entry_ended: EntryEnded,
    ) -> None:
        self.ctx = ctx
        self.tracker = tracker
        self.ids = ids
        self.ledger = ledger
        self.keeper = keeper
        self._apply_fill = apply_fill
        self._entry_ended = entry_ended

    async def resolve(self, row: JournalRow, algos: OpenAlgos) -> list[SyncItem]:
        """Settle one row (the caller holds its symbol's lock and re-read the row)."""
        ctx = self.ctx
        parsed = self.ids.ours(row.client_order_id)
        symbol = row.symbol
        entry = ctx.book.get(symbol)
        mine = entry is not None and entry.position_id == row.position_id
        resting = False
        if row.kind is OrderKind.STOP:
            resting = row.client_order_id in await algos.for_symbol(symbol)
        reported = None
        order = None
        if not resting:
            priority = row.reduce_only
            order = await ctx.port.fetch_order(symbol, row.client_order_id, priority=priority)
            if order is not None:
                reported = reconcile.ReportedOrder(order.status, order.filled_qty)
        facts = reconcile.JournalFacts(
            kind=row.kind,
            status=row.status,
            updated_at_ms=row.updated_at_ms,
            is_current_backstop=mine and entry is not None and entry.backstop_client_id == row.client_order_id,
            position_open=mine,
            position_has_backstop=mine and entry is not None and entry.backstop_client_id is not None,
        )
        now = ctx.clock.now_ms()
        verdict = reconcile.resolve_order(facts, reported, resting=resting, now_ms=now, window_ms=RESOLVE_WINDOW_MS)
        cid = row.client_order_id
        what = "backstop " + cid if row.kind is OrderKind.STOP else cid

        if isinstance(verdict, reconcile.StillResting):
            return []
        if isinstance(verdict, reconcile.AdoptResting):
            assert entry is not None
            algo = (await algos.for_symbol(symbol))[cid]
            ctx.store.journal.mark(cid, OrderState.SENT, now_ms=now)
            self.ledger.set_backstop(entry, cid, row.trigger_price, algo.algo_id, actor="reconciler")
            return [SyncItem("pending_resolved", symbol, f"{what} is resting", "adopted as the backstop")]
        if isinstance(verdict, reconcile.CancelResting):
            done = await self.keeper.cancel_stray(symbol, cid)
            return [SyncItem("stray_cancelled", symbol, f"{what}: {verdict.why}", "cancelled" if done else "kept")]
        if isinstance(verdict, reconcile.ApplyFill):
            assert order is not None
            if parsed is not None:
                fill = FillFacts(
                    cid,
                    order.avg_price,
                    order.filled_qty,
                    order.fee,
                    order.update_time or now,
                    order.order_id,
                    order.raw or None,
                )
                await self._apply_fill(symbol, parsed, fill, "reconciler")
            self.tracker.settled(cid, row.position_id)
            return [
                SyncItem(
                    "pending_resolved",
                    symbol,
                    f"{what} was filled ({order.filled_qty} at {order.avg_price})",
                    "fill applied",
                )
            ]
        if isinstance(verdict, reconcile.Wait):
            return [SyncItem("pending_open", symbol, f"{what}: {verdict.why}", "")]
        # NotExecuted / Ended: it will never fill
        state = OrderState.REJECTED if isinstance(verdict, reconcile.NotExecuted) else verdict.status
        ctx.store.journal.mark(
            cid,
            state,
            now_ms=now,
            error=verdict.why,
            exchange_order_id=order.order_id if order is not None else None,
        )
        self.tracker.settled(cid, row.position_id)
        if parsed is not None and parsed.action == "entry" and row.position_id is not None:
            self._entry_ended(row.position_id, symbol, verdict.why)
        if row.kind is OrderKind.STOP and facts.is_current_backstop and entry is not None:
            self.ledger.set_backstop(entry, None, None, None, actor="reconciler")
            return [SyncItem("pending_resolved", symbol, f"{what}: {verdict.why}", "will be re-created")]
        return [SyncItem("pending_resolved", symbol, f"{what}: {verdict.why}", "marked not executed")]

    def orphan_entries(self) -> list[SyncItem]:
        """Pending positions whose entry order never got a journal row (a crash between the two writes), or
        whose orders all ended without a fill: they never opened. (While running, the position row and its
        order's journal row are written in one turn of the loop, so only a crash leaves an orphan.)"""
        ctx = self.ctx
        items = []
        for rec in ctx.store.positions.list_active():
            if rec.status is not PositionStatus.PENDING:
                continue
            rows = ctx.store.journal.for_position(rec.id)
            if any(r.status.unresolved or r.status is OrderState.FILLED for r in rows):
                continue  # still being resolved (or its fill is being applied)
            self._entry_ended(rec.id, rec.symbol, "its entry order never went out")
            items.append(
                SyncItem(
                    "pending_resolved", rec.symbol, f"entry of position {rec.id} never went out", "marked not opened"
                )
            )
        return items
