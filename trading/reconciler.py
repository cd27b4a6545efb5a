"""Applies ``core.reconcile``'s corrections through the execution core, under the executor's locks.

Every ``reconcile_interval_s``, on ``/sync`` and at start-up: resolves
unresolved journal rows first (order-safety rule 3), then compares positions
and our resting orders with the exchange and fixes what differs, through the
ledger (positions) and the backstop keeper (stops). A symbol whose position
changed while the snapshot was taken is left for the next round rather than
"fixed" from stale data.

Orders carrying another installation's instance tag mean a second SurgeDCA
trades this account: this one then refuses to trade (it never cancels or
adopts the other's orders or positions), says so, and stays up for /health.

Every round first checks the account's settings (``execution.account``: a hedge-mode
account is switched to one-way mode when nothing is open, else trading is refused).
Unknown longs go to the adoption desk (``adopt_positions``); a position that vanished
is told apart: liquidated (Binance's force orders), settled by a delisting, or closed
by hand. Held symbols being delisted are closed ahead of their settlement
(``execution.delisting``). A ``/sync`` also re-reads the markets (delivery dates).
"""

from __future__ import annotations

import asyncio
import logging
import time

from trading.book import BookEntry
from trading.context import EngineContext
from trading.core import reconcile
from trading.core.models import ExitReason
from trading.core.order_state import OrderState
from trading.core.refusals import RefusalClass
from trading.events import ErrorEvent, TradingHalted
from trading.exchange.base import AutoCloseKind, ExchangeError, NotFoundError, Side
from trading.execution.account import AccountGuard
from trading.execution.adoption import AdoptionDesk
from trading.execution.delisting import DelistingGuard
from trading.execution.ledger import ExternalSell
from trading.execution.resolver import OpenAlgos
from trading.executor import Executor
from trading.views import SyncItem, SyncReport

log = logging.getLogger("surgedca.reconciler")

FULL_EVERY = 20  # rounds between full sweeps of open orders (20 x 15 s = 5 min)
BALANCE_EVERY = 4  # rounds between balance fetches (the user stream updates it in between)
HALT_FOREIGN = "foreign_instance"


class Reconciler:
    def __init__(self, ctx: EngineContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self.last: SyncReport | None = None
        self._running = asyncio.Lock()
        self._soon = False
        self._shorts_reported: set[str] = set()
        self._rounds = 0
        self.account = AccountGuard(ctx)
        self.adoptions = AdoptionDesk(ctx, executor)
        self.delistings = DelistingGuard(ctx, executor)
        executor.sender.on_refused = self._on_refused

    def _on_refused(self, klass: RefusalClass) -> None:
        """An order refused for the account's position mode: its settings changed under us; look at once."""
        if klass is RefusalClass.POSITION_MODE:
            self.request_soon(delay_s=0.0)

    def busy(self) -> asyncio.Lock:
        """Held while a reconcile runs (``async with reconciler.busy()`` waits for it to end)."""
        return self._running

    # ------------------------------------------------------------------ triggers
    def request_soon(self, symbol: str | None = None, delay_s: float = 1.0) -> None:
        """Foreign activity seen on the user stream: reconcile shortly (coalesced; live only)."""
        if self._soon or self.ctx.stopping:
            return
        self._soon = True

        async def go() -> None:
            self._soon = False
            await self.run(actor="system")

        self.executor.runner.later(delay_s, go)
        if self.executor.runner.inline:
            self._soon = False

    async def run(self, actor: str = "system") -> SyncReport:
        async with self._running:
            t0 = time.perf_counter()
            items: list[SyncItem] = []
            error = None
            full = actor != "system" or self._rounds % FULL_EVERY == 0
            self._rounds += 1
            try:
                items = await self._run(full, markets=actor not in ("system", "startup"))
                items += await self.executor.funding.catch_up(force=actor != "system")
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
    async def _run(self, full: bool, *, markets: bool = False) -> list[SyncItem]:
        """One round. Cheap rounds ask per held symbol (weight ~1 each) and read the account's settings (weight
        5); a full sweep (start-up, /sync and every ``FULL_EVERY`` rounds) lists every open order and algo order
        (weight 40 each) to find strays of symbols we no longer hold. REST weight stays far below 5% of
        Binance's 2,400/min. ``markets``: re-read the markets first (``/sync``)."""
        ctx, ex = self.ctx, self.executor
        ids = ex.ids
        items: list[SyncItem] = await self.account.check()
        if markets:
            ctx.markets = await ctx.port.load_markets()
        algos = OpenAlgos(ctx.port)
        if full:
            await algos.sweep()
        if not ctx.halted:
            resolved = await ex.resolve_unresolved(algos)
            items += resolved
            if resolved:
                # Resolving applied fills, which moved backstops: what was fetched before is stale now.
                algos = OpenAlgos(ctx.port)
                if full:
                    await algos.sweep()
        versions = {e.state.symbol: e.version for e in ctx.book.entries()}
        skip = frozenset(
            {
                e.state.symbol
                for e in ctx.book.entries()
                if e.busy or ex.lock(e.state.symbol).locked() or ex.tracker.busy(e.position_id)
            }
            | ex.admission.symbols()
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

        foreign = sorted(
            {o.client_order_id for o in open_orders if ids.foreign(o.client_order_id)}
            | {a.client_algo_id for a in algos.known() if ids.foreign(a.client_algo_id)}
        )
        if foreign:
            items.append(self._another_instance(foreign))
        if ctx.halted:
            return items  # report only: no order is sent or cancelled while trading is refused

        local = [
            reconcile.LocalPosition(
                e.position_id, e.state.symbol, e.state.qty, e.backstop_client_id, ctx.cfg.backstop_on_exchange
            )
            for e in ctx.book.entries()
        ]
        remote = [reconcile.RemotePosition(p.symbol, p.qty, p.entry_price) for p in remote_positions]
        orders = [
            reconcile.RemoteOrder(o.symbol, o.client_order_id, False, self._pid(o.client_order_id)) for o in open_orders
        ]
        orders += [
            reconcile.RemoteOrder(a.symbol, a.client_algo_id, True, self._pid(a.client_algo_id)) for a in algos.known()
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
                    before = entry.backstop_client_id, entry.backstop_price
                    await ex.keeper.sync(entry)
                    if (entry.backstop_client_id, entry.backstop_price) != before:
                        items.append(
                            SyncItem(
                                "backstop_moved",
                                symbol,
                                f"backstop was {before[0]} at {before[1]}",
                                f"now {entry.backstop_client_id} at {entry.backstop_price}",
                            )
                        )
        items += self.adoptions.seen(remote_positions, skip)
        items += await self.delistings.run()
        return items

    def _pid(self, client_id: str) -> int | None:
        parsed = self.executor.ids.ours(client_id)
        return parsed.position_id if parsed is not None else None

    def _another_instance(self, foreign: list[str]) -> SyncItem:
        ctx = self.ctx
        reason = (
            f"another SurgeDCA installation trades this account (its orders: {', '.join(foreign[:3])}"
            f"{' ...' if len(foreign) > 3 else ''}); this one ({self.executor.ids.tag}) places and cancels "
            "nothing until you stop one of them and restart this one"
        )
        if ctx.set_halt(HALT_FOREIGN, reason):
            log.error("trading refused: %s", reason)
            ctx.store.audit.add("reconciler", "halt", after={"reason": reason}, ts_ms=ctx.clock.now_ms())
            ctx.notify(TradingHalted(ts_ms=ctx.clock.now_ms(), cause=HALT_FOREIGN, detail=reason))
        return SyncItem("foreign_instance", "-", f"{len(foreign)} order(s) of another instance", "trading refused")

    async def _apply(self, c: reconcile.Correction, entry: BookEntry | None) -> SyncItem | None:
        ex = self.executor
        if isinstance(c, reconcile.Adopt):
            if entry is not None or ex.admission.reserved(c.symbol):
                return SyncItem("deferred", c.symbol, "entry in progress", "next round")
            return await self.adoptions.unknown_long(c)
        if isinstance(c, reconcile.Vanished):
            return await self._vanished(c, entry) if entry is not None else None
        if isinstance(c, reconcile.FixQty):
            if entry is None:
                return None
            ex.ledger.fix_qty(entry, c.exchange_qty, actor="reconciler")
            await ex.keeper.sync(entry)
            return SyncItem(
                "qty_drift",
                c.symbol,
                f"database {c.db_qty}, exchange {c.exchange_qty}",
                "set to the exchange's quantity",
            )
        if isinstance(c, reconcile.CancelStray):
            return await self._cancel_stray(c)
        if isinstance(c, reconcile.RecreateBackstop):
            if entry is None:
                return None
            old = entry.backstop_client_id
            ex.ledger.set_backstop(entry, None, None, None, actor="reconciler")
            await ex.keeper.sync(entry)
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

    async def _vanished(self, c: reconcile.Vanished, entry: BookEntry) -> SyncItem:
        """Closed outside the service: record the exchange's trades (every one since it opened, in the exchange's
        seven-day windows), tell why (liquidated, settled, by hand), close, alert, cancel the backstop."""
        ctx, ex = self.ctx, self.executor
        ours = {r.exchange_order_id for r in ctx.store.journal.for_position(entry.position_id) if r.exchange_order_id}
        reason, how = await self._why_gone(entry)
        try:
            trades = await ctx.port.fetch_trades(c.symbol, start_ms=entry.opened_at_ms)
        except ExchangeError as exc:
            log.warning("trades of %s unavailable (%r): closing with an estimate", c.symbol, exc)
            trades = []
        sells = [
            ExternalSell(f"ext-{t.order_id}", t.price, t.qty, t.fee, t.time, t.realized_pnl)
            for t in trades
            if t.side is Side.SELL and t.order_id not in ours and t.time >= entry.opened_at_ms
        ]
        pnl, estimated = ex.ledger.close_external(entry, reason, sells, actor="reconciler", exchange_qty=c.qty)
        ex.tracker.forget(entry.position_id)
        stop = entry.backstop_client_id
        await ex.keeper.cancel(entry)  # a closePosition stop outlives its position: it goes with it (not a stray)
        cancelled = f"; its backstop {stop} cancelled" if stop and entry.backstop_client_id is None else ""
        if reason is not ExitReason.EXTERNAL:
            log.warning("%s: position %d %s", c.symbol, entry.position_id, how)
        return SyncItem(
            "liquidated" if reason is ExitReason.LIQUIDATION else "vanished",
            c.symbol,
            f"position {entry.position_id} ({c.qty}) is gone from the exchange: {how}",
            f"closed, PnL {pnl:.4f} USDT{' (estimated)' if estimated else ''}{cancelled}",
        )

    async def _why_gone(self, entry: BookEntry) -> tuple[ExitReason, str]:
        """Liquidated (a force order of the symbol since the position opened), settled (its contract's delivery
        has passed or it stopped trading), or closed outside the service (by hand; an ADL is said so)."""
        ctx = self.ctx
        symbol = entry.state.symbol
        try:
            forced = await ctx.port.fetch_force_orders(symbol, start_ms=entry.opened_at_ms)
        except ExchangeError as exc:
            log.warning("force orders of %s unavailable (%r): a liquidation cannot be told apart", symbol, exc)
            forced = []
        forced = [f for f in forced if f.time >= entry.opened_at_ms]
        if any(f.kind is AutoCloseKind.LIQUIDATION for f in forced):
            return ExitReason.LIQUIDATION, "liquidated by the exchange"
        market = ctx.markets.get(symbol)
        now = ctx.clock.now_ms()
        settled = market is not None and market.delivery_ms is not None and market.delivery_ms <= now
        if market is not None and (settled or not market.trading):
            return ExitReason.DELISTING, "settled by the exchange (delisting)"
        if forced:
            return ExitReason.EXTERNAL, "auto-deleveraged by the exchange (ADL)"
        return ExitReason.EXTERNAL, "closed outside the service"

    async def _cancel_stray(self, c: reconcile.CancelStray) -> SyncItem:
        ctx, ex = self.ctx, self.executor
        if c.is_algo:
            done = "cancelled" if await ex.keeper.cancel_stray(c.symbol, c.client_id) else "cancel failed"
        else:
            try:
                await ctx.port.cancel_order(c.symbol, c.client_id)
                done = "cancelled"
            except NotFoundError:
                done = "already gone"
            row = ctx.store.journal.get(c.client_id)
            if row is not None and row.status.unresolved:
                ctx.store.journal.mark(c.client_id, OrderState.CANCELED, now_ms=ctx.clock.now_ms())
        ctx.store.audit.add(
            "reconciler",
            "cancel_stray",
            symbol=c.symbol,
            before={"client_id": c.client_id},
            after={"why": c.why},
            ts_ms=ctx.clock.now_ms(),
        )
        return SyncItem("stray_cancelled", c.symbol, f"{'stop' if c.is_algo else 'order'} {c.client_id}: {c.why}", done)
