"""Held symbols being delisted: an alert at once, then the close ``exit_before_delist_h`` before settlement.

``trading.core.delisting.delisting_due`` says, from the contract's ``deliveryDate`` and ``status`` (refreshed
with the markets: hourly, and on ``/sync``), whether a held symbol is being delisted and when to close it.
Checked at every reconcile round; the moment itself is kept by a timer once it is near, so the close is sent
on time rather than up to a round late. The close is an ordinary reduce-only market sell through the
executor, under the symbol's lock, with reason ``delisting`` (order action ``dl``); refused, it backs off like
every exit and the next round tries again.
"""

from __future__ import annotations

import logging

from trading.context import EngineContext
from trading.core.delisting import DelistingPlan, delisting_due
from trading.core.models import CloseAll, ExitReason
from trading.events import DelistingAhead
from trading.executor import Executor
from trading.views import SyncItem

log = logging.getLogger("surgedca.delisting")

SEED_ROWS = 500  # audit rows of earlier announcements read at the first round (a few per delisted position)
TIMER_HORIZON_MS = 3_600_000  # closes due within this are timed precisely; later ones wait for a nearer round


class DelistingGuard:
    def __init__(self, ctx: EngineContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self._told: dict[int, tuple[int | None, str]] = {}  # position id -> (delivery, cause) already alerted
        self._timed: set[tuple[int, int]] = set()  # (position id, close at) with a timer set
        self._seeded = False

    def plan(self, symbol: str) -> DelistingPlan | None:
        market = self.ctx.markets.get(symbol)
        return delisting_due(market, self.ctx.clock.now_ms(), self.ctx.cfg) if market is not None else None

    async def run(self) -> list[SyncItem]:
        """One round: alert what is new, close what is due, time what is near."""
        ctx = self.ctx
        items: list[SyncItem] = []
        held = {e.position_id for e in ctx.book.entries()}
        if not self._seeded:
            self._seed(held)
        self._told = {pid: told for pid, told in self._told.items() if pid in held}
        for entry in list(ctx.book.entries()):
            symbol, pid = entry.state.symbol, entry.position_id
            plan = self.plan(symbol)
            if plan is None:
                self._told.pop(pid, None)  # the delisting was withdrawn (the delivery date moved away)
                continue
            if self._told.get(pid) != (plan.delivery_ms, plan.cause):
                self._told[pid] = (plan.delivery_ms, plan.cause)
                items.append(self._announce(symbol, pid, plan))
            if plan.due:
                item = await self.close(symbol, pid)
                if item is not None:
                    items.append(item)
            else:
                self._time(symbol, pid, plan.close_at_ms)
        return items

    def _seed(self, held: set[int]) -> None:
        """What earlier runs announced for positions still held (the audit keeps it): a restart does not alert
        again about the same delisting."""
        self._seeded = True
        for row in reversed(self.ctx.store.audit.recent(SEED_ROWS, action="delisting")):  # oldest first
            after = row.after if isinstance(row.after, dict) else {}
            pid, delivery = after.get("position_id"), after.get("delivery_ms")
            if isinstance(pid, int) and pid in held and (delivery is None or isinstance(delivery, int)):
                self._told[pid] = (delivery, str(after.get("cause")))

    def _announce(self, symbol: str, pid: int, plan: DelistingPlan) -> SyncItem:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        log.warning(
            "%s is being delisted (%s, settlement at %s): position %d is closed at %s",
            symbol,
            plan.cause,
            plan.delivery_ms,
            pid,
            "once" if plan.due else plan.close_at_ms,
        )
        ctx.store.audit.add(
            "reconciler",
            "delisting",
            symbol=symbol,
            after={"position_id": pid, "delivery_ms": plan.delivery_ms, "close_at_ms": plan.close_at_ms,
                   "cause": plan.cause},
            ts_ms=now,
        )  # fmt: skip
        ctx.notify(
            DelistingAhead(
                ts_ms=now,
                symbol=symbol,
                position_id=pid,
                delivery_ms=plan.delivery_ms,
                close_at_ms=plan.close_at_ms,
                cause=plan.cause,
            )
        )
        when = "now" if plan.due else f"at {plan.close_at_ms}"
        return SyncItem("delisting", symbol, f"{plan.cause}, settlement at {plan.delivery_ms}", f"closed {when}")

    def _time(self, symbol: str, pid: int, close_at_ms: int) -> None:
        wait_ms = close_at_ms - self.ctx.clock.now_ms()
        if wait_ms > TIMER_HORIZON_MS or (pid, close_at_ms) in self._timed:
            return
        self._timed.add((pid, close_at_ms))

        async def fire() -> None:
            self._timed.discard((pid, close_at_ms))
            await self.close(symbol, pid)

        self.executor.runner.later(wait_ms / 1000 + 0.05, fire)

    async def close(self, symbol: str, pid: int) -> SyncItem | None:
        """Sell the whole position (reason ``delisting``) if it is still held and its close is due."""
        ctx, ex = self.ctx, self.executor
        async with ex.lock(symbol):
            entry = ctx.book.get(symbol)
            if entry is None or entry.position_id != pid or ctx.halted or ctx.stopping:
                return None
            plan = self.plan(symbol)
            if plan is None or not plan.due:
                return None  # the delivery date moved: the next round decides
            qty = entry.state.qty
            action = CloseAll(symbol, qty, ExitReason.DELISTING, entry.last_price or entry.state.avg_price)
            result = await ex._execute(entry, action, actor="system")
        done = ctx.book.get(symbol) is not entry
        log.log(logging.WARNING if done else logging.ERROR, "%s delisting close of %s: %s", symbol, qty,
                "filled" if done else f"not filled ({type(result).__name__}); tried again next round")  # fmt: skip
        return SyncItem("delisting_close", symbol, f"position {pid} ({qty})", "closed" if done else "not filled yet")
