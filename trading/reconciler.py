"""Applies ``core.reconcile``'s corrections through the executor, under its locks.

Every ``reconcile_interval_s``, on ``/sync`` and at start-up: resolves
unresolved journal rows first (order-safety rule 3), then compares positions
and our resting orders with the exchange and fixes what differs. A symbol
whose position changed while the snapshot was taken is left for the next
round rather than "fixed" from stale data.
"""

from __future__ import annotations

import asyncio
import logging
import time

from trading.book import BookEntry
from trading.context import EngineContext
from trading.core import ladder, reconcile
from trading.core.models import ZERO, ExitReason, Stage
from trading.events import (
    ErrorEvent,
    PositionAdopted,
    PositionVanished,
    QuantityDrift,
)
from trading.exchange.base import ExchangeError, NotFoundError, Side
from trading.executor import Executor, OpenAlgos, trade_result
from trading.orders import ACTIONS, parse_id
from trading.views import SyncItem, SyncReport

log = logging.getLogger("surgedca.reconciler")

FULL_EVERY = 20  # rounds between full sweeps of open orders (20 x 15 s = 5 min)
BALANCE_EVERY = 4  # rounds between balance fetches (the user stream updates it in between)


class Reconciler:
    def __init__(self, ctx: EngineContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self.last: SyncReport | None = None
        self._running = asyncio.Lock()
        self._soon: asyncio.TimerHandle | None = None
        self._shorts_reported: set[str] = set()
        self._rounds = 0

    def busy(self) -> asyncio.Lock:
        """Held while a reconcile runs (``async with reconciler.busy()`` waits for it to end)."""
        return self._running

    # ------------------------------------------------------------------ triggers
    def request_soon(self, symbol: str | None = None, delay_s: float = 1.0) -> None:
        """Foreign activity seen on the user stream: reconcile shortly (coalesced)."""
        if self._soon is not None or self.ctx.stopping:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._soon = None
            self.executor.spawn(self.run(actor="system"))

        self._soon = loop.call_later(delay_s, fire)

    async def run(self, actor: str = "system") -> SyncReport:
        async with self._running:
            t0 = time.perf_counter()
            items: list[SyncItem] = []
            error = None
            full = actor != "system" or self._rounds % FULL_EVERY == 0
            self._rounds += 1
            try:
                items = await self._run(full)
            except ExchangeError as exc:
                error = f"exchange unavailable: {exc}"
                log.warning("reconcile failed: %r", exc)
            report = SyncReport(self.ctx.clock.now_ms(), tuple(items), (time.perf_counter() - t0) * 1000, error)
            self.last = report
            if items or actor != "system":
                self.ctx.store.audit.add(
                    actor,
                    "reconcile",
                    before=None,
                    after={"items": [f"{i.kind} {i.symbol}: {i.detail} -> {i.action}" for i in items], "error": error},
                    ts_ms=self.ctx.clock.now_ms(),
                )
            return report

    # ------------------------------------------------------------------ one round
    async def _run(self, full: bool) -> list[SyncItem]:
        """One round. Cheap rounds ask per held symbol (weight ~1 each); a full sweep (start-up, /sync and
        every ``FULL_EVERY`` rounds) lists every open order and algo order (weight 40 each) to find strays
        of symbols we no longer hold. REST weight stays far below 5% of Binance's 2,400/min."""
        ctx, ex = self.ctx, self.executor
        algos = OpenAlgos(ctx.port)
        if full:
            await algos.sweep()
        items = await ex.resolve_unresolved(algos)
        if items:
            # Resolving applied fills, which moved backstops: what was fetched before is stale now.
            algos = OpenAlgos(ctx.port)
            if full:
                await algos.sweep()
        versions = {e.state.symbol: e.version for e in ctx.book.entries()}
        skip = frozenset(
            {e.state.symbol for e in ctx.book.entries() if e.busy or ex.lock(e.state.symbol).locked()}
            | ex.entries_in_flight()
        )
        remote_positions = await ctx.port.fetch_positions()
        held = sorted(set(ctx.book.symbols()) | {p.symbol for p in remote_positions if p.qty != 0})
        open_orders = await ctx.port.fetch_open_orders() if full else []
        for symbol in held:
            await algos.for_symbol(symbol)
        if full or self._rounds % BALANCE_EVERY == 0:
            balance = await ctx.port.fetch_balance()
            ctx.account.wallet, ctx.account.available = balance.wallet, balance.available
            ctx.account.updated_ms = ctx.clock.now_ms()

        local = [
            reconcile.LocalPosition(
                e.position_id, e.state.symbol, e.state.qty, e.backstop_client_id, ctx.cfg.backstop_on_exchange
            )
            for e in ctx.book.entries()
        ]
        remote = [reconcile.RemotePosition(p.symbol, p.qty, p.entry_price) for p in remote_positions]
        orders = [
            reconcile.RemoteOrder(o.symbol, o.client_order_id, False, _pid(o.client_order_id)) for o in open_orders
        ]
        orders += [
            reconcile.RemoteOrder(a.symbol, a.client_algo_id, True, _pid(a.client_algo_id)) for a in algos.known()
        ]

        for c in reconcile.diff(local, remote, orders, skip=skip):
            async with ex.lock(c.symbol):
                entry = ctx.book.get(c.symbol)
                if entry is not None and (entry.version != versions.get(c.symbol) or entry.busy):
                    items.append(SyncItem("deferred", c.symbol, "the position changed during the check", "next round"))
                    continue
                item = await self._apply(c, entry)
                if item is not None:
                    items.append(item)
        # A backstop at a stale price (a replacement that failed earlier) is put right; no call when it is right.
        for entry in ctx.book.entries():
            symbol = entry.state.symbol
            if symbol in skip or not ctx.cfg.backstop_on_exchange:
                continue
            async with ex.lock(symbol):
                if ctx.book.get(symbol) is entry and not entry.busy and entry.backstop_client_id:
                    before = entry.backstop_price
                    await ex.sync_backstop(entry)
                    if entry.backstop_price != before:
                        items.append(
                            SyncItem(
                                "backstop_moved",
                                symbol,
                                f"backstop was at {before}",
                                f"moved to {entry.backstop_price}",
                            )
                        )
        return items

    async def _apply(self, c: reconcile.Correction, entry: BookEntry | None) -> SyncItem | None:
        if isinstance(c, reconcile.Adopt):
            if entry is not None or c.symbol in self.executor.entries_in_flight():
                return SyncItem("deferred", c.symbol, "entry in progress", "next round")
            return await self._adopt(c)
        if isinstance(c, reconcile.Vanished):
            return await self._vanished(c, entry) if entry is not None else None
        if isinstance(c, reconcile.FixQty):
            return self._fix_qty(c, entry) if entry is not None else None
        if isinstance(c, reconcile.CancelStray):
            return await self._cancel_stray(c)
        if isinstance(c, reconcile.RecreateBackstop):
            if entry is None:
                return None
            old = entry.backstop_client_id
            entry.backstop_client_id, entry.backstop_price = None, None
            await self.executor.sync_backstop(entry)
            if entry.backstop_client_id is None:
                return SyncItem("backstop_missing", c.symbol, f"backstop {old or '-'} not resting", "re-create failed")
            return SyncItem(
                "backstop_recreated",
                c.symbol,
                f"backstop {old or '-'} was not resting",
                f"placed {entry.backstop_client_id} at {entry.backstop_price}",
            )
        if isinstance(c, reconcile.ForeignShort):
            if c.symbol not in self._shorts_reported:
                self._shorts_reported.add(c.symbol)
                self.ctx.notify(
                    ErrorEvent(
                        ts_ms=self.ctx.clock.now_ms(),
                        symbol=c.symbol,
                        where="foreign_short",
                        message=f"a short of {c.qty} is open on the exchange; SurgeDCA never "
                        "shorts and leaves it alone",
                    )
                )
            return SyncItem("foreign_short", c.symbol, f"short {c.qty} on the exchange", "left alone (reported)")
        return None

    async def _adopt(self, c: reconcile.Adopt) -> SyncItem:
        ctx = self.ctx
        if c.symbol not in ctx.markets:
            return SyncItem("unknown_symbol", c.symbol, f"long {c.qty} on an unknown market", "reported")
        state = ladder.adopted_position(c.symbol, c.qty, c.entry_price)
        now = ctx.clock.now_ms()
        margin = c.entry_price * c.qty / ctx.cfg.leverage
        with ctx.store.db.transaction():
            pid = ctx.store.positions.create_open(c.symbol, state, "adopted", margin, now)
            ctx.store.fills.add(pid, f"adopt-{pid}", "BUY", c.entry_price, c.qty, ZERO, now, stage=Stage.INITIAL)
            ctx.store.audit.add(
                "reconciler",
                "adopt",
                symbol=c.symbol,
                before=None,
                after={"position_id": pid, "qty": c.qty, "entry": c.entry_price},
                ts_ms=now,
            )
        entry = BookEntry(
            position_id=pid,
            state=state,
            margin=margin,
            opened_at_ms=now,
            origin="adopted",
            seq={code: 1 for code in ACTIONS},
        )
        ctx.book.put(entry, ctx.cfg)
        ctx.notify(PositionAdopted(ts_ms=now, symbol=c.symbol, qty=c.qty, entry_price=c.entry_price, position_id=pid))
        await self.executor.sync_backstop(entry)
        return SyncItem(
            "adopted",
            c.symbol,
            f"long {c.qty} at {c.entry_price} unknown to the database",
            f"adopted as position {pid} (stage initial)",
        )

    async def _vanished(self, c: reconcile.Vanished, entry: BookEntry) -> SyncItem:
        """Closed outside the service: record the exchange's trades, close, alert, cancel the backstop."""
        ctx, store = self.ctx, self.ctx.store
        ours = {r.exchange_order_id for r in store.journal.for_position(entry.position_id) if r.exchange_order_id}
        try:
            trades = await ctx.port.fetch_trades(c.symbol, start_ms=entry.opened_at_ms)
        except ExchangeError as exc:
            log.warning("trades of %s unavailable (%r): closing with an estimate", c.symbol, exc)
            trades = []
        external = [
            t for t in trades if t.side is Side.SELL and t.order_id not in ours and t.time >= entry.opened_at_ms
        ]
        now = ctx.clock.now_ms()
        left = entry.state.qty
        with store.db.transaction():
            for t in external:
                if left <= 0:
                    break
                qty = min(t.qty, left)
                left -= qty
                if not store.fills.exists(f"ext-{t.order_id}", t.time):
                    store.fills.add(
                        entry.position_id,
                        f"ext-{t.order_id}",
                        "SELL",
                        t.price,
                        qty,
                        t.fee,
                        t.time,
                        reason=ExitReason.EXTERNAL,
                        realized_pnl=t.realized_pnl,
                        trade_id=t.time,
                    )
            estimated = left > 0
            if estimated:  # no trade found for the rest (e.g. liquidation): value it at the last known price
                price = entry.last_price or entry.state.avg_price
                store.fills.add(
                    entry.position_id,
                    f"ext-{entry.position_id}-rest",
                    "SELL",
                    price,
                    left,
                    ZERO,
                    now,
                    reason=ExitReason.EXTERNAL,
                )
            pnl, fees = trade_result(store.fills.for_position(entry.position_id))
            store.positions.close(entry.position_id, ExitReason.EXTERNAL.value, pnl, ZERO, now)
            ctx.set_cooldown(c.symbol, now + int(ctx.cfg.cooldown_after_exit_h * 3_600_000), "external")
            store.daily.add_trade(ctx.local_day(now), pnl, fees)
            store.audit.add(
                "reconciler",
                "vanished",
                symbol=c.symbol,
                before={"qty": c.qty},
                after={"pnl": pnl, "estimated": estimated},
                ts_ms=now,
            )
        ctx.book.remove(c.symbol)
        ctx.notify(PositionVanished(ts_ms=now, symbol=c.symbol, qty=c.qty, pnl=pnl, position_id=entry.position_id))
        await self.executor.cancel_backstop(entry)
        return SyncItem(
            "vanished",
            c.symbol,
            f"position {entry.position_id} ({c.qty}) is gone from the exchange",
            f"closed, PnL {pnl:.4f} USDT{' (estimated)' if estimated else ''}",
        )

    def _fix_qty(self, c: reconcile.FixQty, entry: BookEntry) -> SyncItem:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        before = entry.state
        after = ladder.with_exchange_qty(before, c.exchange_qty)
        margin = after.avg_price * after.qty / ctx.cfg.leverage
        with ctx.store.db.transaction():
            ctx.store.positions.save_state(entry.position_id, after, margin=margin, now_ms=now)
            ctx.store.audit.add(
                "reconciler",
                "qty_drift",
                symbol=c.symbol,
                before={"qty": c.db_qty},
                after={"qty": c.exchange_qty},
                ts_ms=now,
            )
        entry.state, entry.margin = after, margin
        entry.retrigger(ctx.cfg)
        ctx.notify(QuantityDrift(ts_ms=now, symbol=c.symbol, db_qty=c.db_qty, exchange_qty=c.exchange_qty))
        return SyncItem(
            "qty_drift", c.symbol, f"database {c.db_qty}, exchange {c.exchange_qty}", "set to the exchange's quantity"
        )

    async def _cancel_stray(self, c: reconcile.CancelStray) -> SyncItem:
        ctx = self.ctx
        try:
            if c.is_algo:
                await ctx.port.cancel_algo_order(c.symbol, c.client_id)
            else:
                await ctx.port.cancel_order(c.symbol, c.client_id)
            done = "cancelled"
        except NotFoundError:
            done = "already gone"
        row = ctx.store.journal.get(c.client_id)
        if row is not None and row.status in ("pending", "sent", "unknown"):
            ctx.store.journal.mark(c.client_id, "canceled", now_ms=ctx.clock.now_ms())
        ctx.store.audit.add(
            "reconciler",
            "cancel_stray",
            symbol=c.symbol,
            before={"client_id": c.client_id},
            after={"why": c.why},
            ts_ms=ctx.clock.now_ms(),
        )
        return SyncItem("stray_cancelled", c.symbol, f"{'stop' if c.is_algo else 'order'} {c.client_id}: {c.why}", done)


def _pid(client_id: str) -> int | None:
    parsed = parse_id(client_id)
    return parsed.position_id if parsed is not None else None
