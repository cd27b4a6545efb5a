"""Intents -> orders, following ARCHITECTURE's order-safety rules 1-7.

1. every order gets a deterministic client id and a ``pending`` journal row
   *before* it is sent (one INSERT, the only DB work on the hot path);
2. on a timeout or network error we ask the exchange about that client id
   before anything is sent again, and a re-send reuses the same id;
3. unresolved journal rows are resolved against the exchange at start and by
   every reconcile;
4. one asyncio lock per symbol: monitor, reconciler, /exit and fills from the
   user-data stream never act on a symbol at once;
5. every exit is reduce-only;
6. quantities and prices come from the exchange's fills;
7. every state change writes an audit row, in the same transaction.

After each fill the ladder state is updated, then the exchange-side backstop
is placed or replaced (only when its price changes) or cancelled on close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from storage.errors import DuplicateFill
from storage.fills import FillRecord
from storage.journal import JournalRow
from trading.book import BookEntry
from trading.context import EngineContext
from trading.core import ladder
from trading.core.models import (
    ZERO,
    CloseAll,
    Dca,
    ExitReason,
    Fill,
    PositionState,
    Sell,
    Skip,
    Stage,
    SymbolRules,
)
from trading.events import (
    DcaFilled,
    EntryFilled,
    ErrorEvent,
    OrderRejected,
    OrderSkipped,
    PartialExit,
    PositionClosed,
)
from trading.exchange.base import (
    REQUEST_WINDOW_MS,
    AlgoOrder,
    AlgoUpdate,
    ExchangeError,
    ExchangePort,
    NotFoundError,
    Order,
    OrderStatus,
    OrderStatusUnknown,
    OrderUpdate,
    RateLimitedError,
    RejectedError,
    RetriableError,
    Side,
)
from trading.orders import ACTIONS, ParsedId, action_code, make_id, parse_id
from trading.views import SyncItem

log = logging.getLogger("surgedca.executor")

WINDOW_MARGIN_MS = 2_000  # clock offset between us and the exchange, on top of the request window
UNKNOWN_EXCEPTIONS = (OrderStatusUnknown, RetriableError, RateLimitedError, asyncio.TimeoutError, OSError)


@dataclass(frozen=True, slots=True)
class FillFacts:
    """One executed order as reported (REST reply or user-data event)."""

    client_order_id: str
    price: Decimal
    qty: Decimal
    fee: Decimal | None  # None: estimate with the taker fee
    ts_ms: int
    exchange_order_id: str | None = None
    raw: dict | None = None


class Executor:
    def __init__(
        self,
        ctx: EngineContext,
        *,
        ask_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0),
        max_sends: int = 3,
    ) -> None:
        self.ctx = ctx
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready: set[str] = set()  # symbols whose leverage and margin mode are set this run
        self._entering: set[str] = set()
        self._unresolved_entries: set[str] = set()  # symbols with a 'pending' position (entry outcome unknown)
        self._tasks: set[asyncio.Task[None]] = set()
        self._ask_delays = ask_delays
        self._max_sends = max_sends
        self.inline = False  # backtest: run actions inline (deterministic), service: as tasks
        self.on_foreign_activity: Callable[[str], None] | None = None  # reconciler hook
        self.orders_sent = 0

    # ------------------------------------------------------------------ locks and tasks
    def lock(self, symbol: str) -> asyncio.Lock:
        lk = self._locks.get(symbol)
        if lk is None:
            lk = self._locks[symbol] = asyncio.Lock()
        return lk

    def spawn(self, coro: Awaitable[None]) -> asyncio.Task[None] | None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("executor task failed", exc_info=exc)
            self.ctx.notify(ErrorEvent(ts_ms=self.ctx.clock.now_ms(), where="executor", message=repr(exc)))

    async def drain(self, within_s: float) -> bool:
        """Wait for in-flight order work (graceful stop); False if some is still running."""
        if not self._tasks:
            return True
        _, pending = await asyncio.wait(set(self._tasks), timeout=within_s)
        return not pending

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    # ------------------------------------------------------------------ monitor entry point
    async def dispatch(self, entry: BookEntry, action: Dca | Sell | CloseAll) -> None:
        """Run a ladder action decided on ``entry.state`` (inline in backtests, as a task live)."""
        entry.busy = True
        seen = entry.state
        if self.inline:
            await self._run_action(entry, seen, action)
        else:
            self.spawn(self._run_action(entry, seen, action))

    async def _run_action(self, entry: BookEntry, seen: PositionState, action: Dca | Sell | CloseAll) -> None:
        symbol = seen.symbol
        try:
            async with self.lock(symbol):
                current = self.ctx.book.get(symbol)
                if current is not entry or entry.state is not seen or self.ctx.stopping:
                    return  # stale: something changed the position while we queued; the next tick decides anew
                await self._execute(entry, action, actor="system")
        finally:
            entry.busy = False

    # ------------------------------------------------------------------ entries
    async def enter(self, symbol: str, ref_price: Decimal, *, actor: str = "system") -> int | None:
        """Open a position at market (initial ladder stage). Returns the position id when filled."""
        ctx = self.ctx
        if symbol in self._entering:
            return None
        self._entering.add(symbol)
        try:
            async with self.lock(symbol):
                why = self.entry_blocker(symbol)
                if why:
                    log.info("entry %s skipped: %s", symbol, why)
                    return None
                rules = ctx.rules(symbol)
                if rules is None:
                    return None
                balance = await ctx.port.fetch_balance()
                ctx.account.wallet, ctx.account.available = balance.wallet, balance.available
                ctx.account.updated_ms = ctx.clock.now_ms()
                act = ladder.entry_action(symbol, ref_price, balance.wallet, ctx.cfg, rules)
                if isinstance(act, Skip):
                    ctx.notify(OrderSkipped(ts_ms=ctx.clock.now_ms(), symbol=symbol, what="entry", why=act.why))
                    return None
                limit = Decimal(repr(ctx.cfg.max_margin_usage)) * balance.wallet
                if ctx.book.margin_in_use() + act.margin > limit:
                    log.info("entry %s skipped: margin in use would exceed %s", symbol, ctx.cfg.max_margin_usage)
                    return None
                if not await self._ensure_symbol(symbol):
                    return None
                now = ctx.clock.now_ms()
                pid = ctx.store.positions.create_pending(symbol, "signal", now)
                entry = BookEntry(
                    position_id=pid,
                    state=_empty_state(symbol, ref_price),
                    margin=ZERO,
                    opened_at_ms=now,
                    origin="signal",
                    seq={code: 1 for code in ACTIONS},
                )
                facts = await self._place_market(entry, "entry", Side.BUY, act.qty, reduce_only=False)
                if facts is None:
                    row = ctx.store.journal.get(make_id(pid, "entry", 1))
                    if row is not None and row.status in ("rejected", "canceled", "expired"):
                        with ctx.store.db.transaction():
                            ctx.store.positions.mark_failed(pid, ctx.clock.now_ms())
                            ctx.store.audit.add(
                                actor,
                                "entry_failed",
                                symbol=symbol,
                                after={"position_id": pid, "reason": row.error},
                                ts_ms=ctx.clock.now_ms(),
                            )
                    else:  # outcome unknown: the position stays pending until the reconciler resolves it
                        self._unresolved_entries.add(symbol)
                    return None
                await self._apply(entry, parse_id(facts.client_order_id), facts, actor=actor)  # type: ignore[arg-type]
                return pid
        finally:
            self._entering.discard(symbol)

    def entries_in_flight(self) -> set[str]:
        """Symbols with an entry being sent or whose outcome is still unknown."""
        return self._entering | self._unresolved_entries

    def load_pending_entries(self) -> None:
        """At start: symbols whose entry order's outcome is still unknown (resolved by rule 3)."""
        self._unresolved_entries = {r.symbol for r in self.ctx.store.positions.list_active() if r.status == "pending"}

    def entry_blocker(self, symbol: str) -> str | None:
        """Why a new entry on ``symbol`` is not allowed right now (None: allowed)."""
        ctx = self.ctx
        if ctx.stopping:
            return "service stopping"
        if ctx.paused:
            return "paused"
        if symbol in ctx.book:
            return "already held"
        if len(ctx.book) >= ctx.cfg.max_positions:
            return f"max_positions ({ctx.cfg.max_positions}) reached"
        if ctx.in_cooldown(symbol):
            return "in cooldown"
        if symbol in self._unresolved_entries:
            return "an earlier entry is being resolved"
        if (why := ctx.block_reason(symbol)) is not None:
            return why
        return None

    async def _ensure_symbol(self, symbol: str) -> bool:
        """Margin mode and leverage, once per symbol per run, before its first order."""
        if symbol in self._ready:
            return True
        ctx = self.ctx
        try:
            await ctx.port.set_margin_mode(symbol, ctx.cfg.margin_mode)
            await ctx.port.set_leverage(symbol, ctx.cfg.leverage)
        except ExchangeError as exc:
            ctx.notify(
                OrderRejected(
                    ts_ms=ctx.clock.now_ms(),
                    symbol=symbol,
                    what="leverage/margin setup",
                    code=exc.code,
                    message=str(exc),
                )
            )
            return False
        self._ready.add(symbol)
        return True

    def forget_symbol_setup(self) -> None:
        """Leverage or margin mode changed in the config: set them again before the next orders."""
        self._ready.clear()

    # ------------------------------------------------------------------ ladder actions and manual exits
    async def _execute(self, entry: BookEntry, action: Dca | Sell | CloseAll, *, actor: str) -> FillFacts | None:
        code = action_code(action)
        if isinstance(action, Dca):
            if self._has_unresolved(entry):
                return None  # never add to a position while an earlier order's fate is unknown
            facts = await self._place_market(entry, code, Side.BUY, action.qty, reduce_only=False)
        else:
            qty = min(action.qty, entry.state.qty)
            facts = await self._place_market(entry, code, Side.SELL, qty, reduce_only=True)
        if facts is not None:
            await self._apply(entry, parse_id(facts.client_order_id), facts, actor=actor)  # type: ignore[arg-type]
        return facts

    async def exit_position(self, symbol: str, actor: str) -> tuple[FillFacts | None, Decimal | None]:
        """Close everything (manual /exit). Returns the fill and the trade's realised PnL."""
        async with self.lock(symbol):
            entry = self.ctx.book.get(symbol)
            if entry is None:
                return None, None
            action = CloseAll(symbol, entry.state.qty, ExitReason.MANUAL, entry.last_price or entry.state.avg_price)
            facts = await self._execute(entry, action, actor=actor)
            pnl = None
            if facts is not None:
                rec = self.ctx.store.positions.get(entry.position_id)
                pnl = rec.realized_pnl if rec is not None else None
            return facts, pnl

    def _has_unresolved(self, entry: BookEntry) -> bool:
        return any(
            r.kind == "market" and r.status in ("pending", "unknown", "sent")
            for r in self.ctx.store.journal.for_position(entry.position_id)
        )

    def seed_seq(self, entry: BookEntry) -> None:
        """Next client-id number per action from the journal (once, off the hot path)."""
        seq = {code: 1 for code in ACTIONS}
        for row in self.ctx.store.journal.for_position(entry.position_id):
            parsed = parse_id(row.client_order_id)
            if parsed is not None:
                seq[parsed.action] = max(seq[parsed.action], parsed.n + 1)
        entry.seq = seq

    def _next_id(self, entry: BookEntry, code: str) -> str:
        n = entry.seq.get(code)
        if n is None:
            n = self.ctx.store.journal.next_seq(entry.position_id, code)
        entry.seq[code] = n + 1
        return make_id(entry.position_id, code, n)

    # ------------------------------------------------------------------ sending market orders
    async def _place_market(
        self, entry: BookEntry, code: str, side: Side, qty: Decimal, *, reduce_only: bool
    ) -> FillFacts | None:
        ctx = self.ctx
        symbol = entry.state.symbol
        cid = self._next_id(entry, code)
        ctx.store.journal.insert_pending(
            cid,
            position_id=entry.position_id,
            symbol=symbol,
            action=code,
            kind="market",
            side=side.value,
            qty=qty,
            reduce_only=reduce_only,
            now_ms=ctx.clock.now_ms(),
        )
        sends = 1
        while True:
            try:
                self.orders_sent += 1
                order = await ctx.port.create_market_order(
                    symbol, side, qty, client_order_id=cid, reduce_only=reduce_only
                )
            except RejectedError as exc:
                self._rejected(cid, symbol, code, exc)
                return None
            except UNKNOWN_EXCEPTIONS as exc:
                ctx.store.journal.mark(cid, "unknown", now_ms=ctx.clock.now_ms(), error=repr(exc)[:500])
                log.warning("order %s outcome unknown (%r): asking the exchange", cid, exc)
                found, absent = await self._ask(symbol, cid)
                if found is not None:
                    return self._facts_from_order(cid, found)
                if absent and reduce_only and sends < self._max_sends:
                    # An exit the exchange has not seen: send it again with the *same* id. Safe even if the
                    # original is still on its way: reduce-only can never sell more than is held.
                    # A buy is never re-sent here: the reconciler resolves it once the request window has
                    # passed (rule 3), and only then may the ladder buy again.
                    sends += 1
                    ctx.store.journal.bump_attempt(cid, ctx.clock.now_ms())
                    continue
                ctx.notify(
                    ErrorEvent(
                        ts_ms=ctx.clock.now_ms(),
                        symbol=symbol,
                        where="order_unknown",
                        message=f"order {cid} outcome still unknown; the reconciler will resolve it",
                    )
                )
                return None
            return self._facts_from_order(cid, order)

    async def _ask(self, symbol: str, cid: str) -> tuple[Order | None, bool]:
        """Order-safety rule 2: ask about ``cid`` until its fate is known (bounded).

        Returns (the order when it ended, whether the exchange twice said it never saw it).
        """
        absent = 0
        for delay in self._ask_delays:
            await self.ctx.clock.sleep(delay)
            try:
                order = await self.ctx.port.fetch_order(symbol, cid)
            except ExchangeError as exc:
                log.warning("asking about %s failed: %r", cid, exc)
                continue
            if order is None:
                absent += 1
                if absent >= 2:  # absent twice, some time apart: it never arrived
                    return None, True
                continue
            if order.status.final:
                return order, False
            # NEW / PARTIALLY_FILLED: a market order still executing; ask again
        return None, False

    def _facts_from_order(self, cid: str, order: Order) -> FillFacts | None:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        if order.filled_qty <= 0:
            status = (
                "rejected"
                if order.status is OrderStatus.REJECTED
                else ("expired" if order.status in (OrderStatus.EXPIRED, OrderStatus.CANCELED) else "unknown")
            )
            ctx.store.journal.mark(
                cid,
                status,
                now_ms=now,
                exchange_order_id=order.order_id,
                raw=order.raw or None,
                error=f"exchange status {order.status.value}, nothing filled",
            )
            if status != "unknown":
                ctx.notify(
                    OrderRejected(
                        ts_ms=now,
                        symbol=order.symbol,
                        what=cid,
                        code=None,
                        message=f"{order.status.value}: nothing filled",
                    )
                )
            return None
        return FillFacts(
            cid,
            order.avg_price,
            order.filled_qty,
            order.fee,
            order.update_time or now,
            order.order_id,
            order.raw or None,
        )

    def _rejected(self, cid: str, symbol: str, code: str, exc: ExchangeError) -> None:
        ctx = self.ctx
        ctx.store.journal.mark(cid, "rejected", now_ms=ctx.clock.now_ms(), error_code=exc.code, error=str(exc)[:500])
        ctx.notify(OrderRejected(ts_ms=ctx.clock.now_ms(), symbol=symbol, what=code, code=exc.code, message=str(exc)))
        if exc.code == -2022 and self.on_foreign_activity is not None:
            # reduce-only rejected: the exchange holds less than we think; let the reconciler look now
            self.on_foreign_activity(symbol)

    # ------------------------------------------------------------------ applying fills
    async def _apply(self, entry: BookEntry, parsed: ParsedId, facts: FillFacts, *, actor: str) -> None:
        """Record a fill (idempotent per client order id), update the ladder, then the backstop."""
        ctx = self.ctx
        store = ctx.store
        if store.fills.exists(facts.client_order_id):
            return
        side, stage, reason = ACTIONS[parsed.action]
        rules = ctx.rules(entry.state.symbol)
        fee = facts.fee if facts.fee is not None else facts.price * facts.qty * Decimal(repr(ctx.cfg.taker_fee))
        fill = Fill(side, facts.price, facts.qty, fee, stage, reason)
        before = entry.state
        opening = parsed.action == "entry" and before.qty <= 0
        after = ladder.new_position(before.symbol, fill) if opening else ladder.apply_fill(before, fill)
        if side == "SELL" and facts.qty > before.qty:
            log.warning("%s sold %s but held %s", facts.client_order_id, facts.qty, before.qty)
        closed = side == "SELL" and after.qty <= 0
        partial_pnl = _sell_pnl(before, fill) if side == "SELL" else None
        now = ctx.clock.now_ms()
        margin = _margin(after, ctx.cfg.leverage)
        trade_pnl = None
        try:
            with store.db.transaction():
                store.journal.mark(
                    facts.client_order_id,
                    "filled",
                    now_ms=now,
                    exchange_order_id=facts.exchange_order_id,
                    filled_qty=facts.qty,
                    avg_price=facts.price,
                    fee=fee,
                    raw=facts.raw,
                )
                store.fills.add(
                    entry.position_id,
                    facts.client_order_id,
                    side,
                    facts.price,
                    facts.qty,
                    fee,
                    facts.ts_ms,
                    stage=stage,
                    reason=reason,
                    realized_pnl=partial_pnl,
                )
                if opening:
                    store.positions.activate(entry.position_id, after, margin, fee, now)
                elif closed:
                    trade_pnl, fees_total = trade_result(store.fills.for_position(entry.position_id))
                    store.positions.close(entry.position_id, (reason or ExitReason.EXTERNAL).value, trade_pnl, fee, now)
                    hours = (
                        ctx.cfg.cooldown_after_stop_h if (reason and reason.is_stop) else ctx.cfg.cooldown_after_exit_h
                    )
                    ctx.set_cooldown(
                        entry.state.symbol, now + int(hours * 3_600_000), reason.value if reason else "close"
                    )
                    store.daily.add_trade(ctx.local_day(now), trade_pnl, fees_total)
                else:
                    store.positions.save_state(entry.position_id, after, margin=margin, fees_add=fee, now_ms=now)
                store.audit.add(
                    actor,
                    f"fill:{parsed.action}",
                    symbol=entry.state.symbol,
                    before=_summary(before),
                    after=_summary(after) | {"price": facts.price, "qty": facts.qty},
                    ts_ms=now,
                )
        except DuplicateFill:
            return
        # committed: now the in-memory view and the alerts
        entry.state = after
        entry.margin = margin
        entry.last_px = str(facts.price)
        sym = entry.state.symbol
        if closed:
            ctx.book.remove(sym)
            margin_used = _max_margin(store.fills.for_position(entry.position_id), ctx.cfg.leverage)
            pct = (trade_pnl / margin_used) if trade_pnl is not None and margin_used > 0 else ZERO
            ctx.notify(
                PositionClosed(
                    ts_ms=now,
                    symbol=sym,
                    reason=(reason or ExitReason.EXTERNAL).value,
                    price=facts.price,
                    qty=facts.qty,
                    pnl=trade_pnl or ZERO,
                    pnl_pct=pct,
                    position_id=entry.position_id,
                )
            )
            await self.cancel_backstop(entry)
            return
        if opening:
            ctx.book.put(entry, ctx.cfg)
            ctx.notify(
                EntryFilled(
                    ts_ms=now,
                    symbol=sym,
                    price=facts.price,
                    qty=facts.qty,
                    notional=facts.price * facts.qty,
                    position_id=entry.position_id,
                )
            )
        else:
            entry.retrigger(ctx.cfg)
            if side == "BUY":
                ctx.notify(
                    DcaFilled(
                        ts_ms=now,
                        symbol=sym,
                        level=(stage or Stage.FIRST_DCA).value,
                        price=facts.price,
                        qty=facts.qty,
                        avg_price=after.avg_price,
                        total_qty=after.qty,
                        position_id=entry.position_id,
                    )
                )
            else:
                ctx.notify(
                    PartialExit(
                        ts_ms=now,
                        symbol=sym,
                        reason=(reason or ExitReason.EXTERNAL).value,
                        price=facts.price,
                        qty=facts.qty,
                        remaining_qty=after.qty,
                        pnl=partial_pnl or ZERO,
                        position_id=entry.position_id,
                    )
                )
        if rules is not None:
            await self.sync_backstop(entry, rules)

    # ------------------------------------------------------------------ the exchange-side backstop
    async def sync_backstop(self, entry: BookEntry, rules: SymbolRules | None = None) -> None:
        """Place or replace the STOP_MARKET closePosition backstop when its price must change."""
        ctx = self.ctx
        rules = rules or ctx.rules(entry.state.symbol)
        if rules is None or ctx.stopping:
            return
        if not ctx.cfg.backstop_on_exchange:
            if entry.backstop_client_id:
                await self.cancel_backstop(entry)
            return
        want = ladder.sync_backstop(
            entry.state, entry.backstop_price if entry.backstop_client_id else None, ctx.cfg, rules
        )
        if want is None:
            return
        symbol = entry.state.symbol
        old = {"client_id": entry.backstop_client_id, "price": entry.backstop_price}
        if entry.backstop_client_id:
            # Binance keeps one closePosition stop per side (-4130), so the old one goes first; the service's
            # own stop watches the price in the moment between.
            if not await self._cancel_algo(symbol, entry.backstop_client_id):
                return  # still resting: kept; the reconciler tries again
            entry.backstop_client_id, entry.backstop_price = None, None
            ctx.store.positions.set_backstop(entry.position_id, None, None, None)
        cid = self._next_id(entry, "bs")
        ctx.store.journal.insert_pending(
            cid,
            position_id=entry.position_id,
            symbol=symbol,
            action="bs",
            kind="stop",
            side="SELL",
            qty=entry.state.qty,
            reduce_only=True,
            trigger_price=want.price,
            now_ms=ctx.clock.now_ms(),
        )
        try:
            algo = await ctx.port.create_stop_market_close(symbol, want.price, client_algo_id=cid)
        except RejectedError as exc:
            ctx.store.journal.mark(
                cid, "rejected", now_ms=ctx.clock.now_ms(), error_code=exc.code, error=str(exc)[:500]
            )
            ctx.notify(
                ErrorEvent(
                    ts_ms=ctx.clock.now_ms(),
                    symbol=symbol,
                    where="backstop",
                    message=f"backstop at {want.price} refused: {exc}",
                )
            )
            if exc.code == -4130 and self.on_foreign_activity is not None:
                self.on_foreign_activity(symbol)  # another closePosition stop rests: the reconciler clears it
            return
        except UNKNOWN_EXCEPTIONS as exc:
            ctx.store.journal.mark(cid, "unknown", now_ms=ctx.clock.now_ms(), error=repr(exc)[:500])
            ctx.notify(
                ErrorEvent(
                    ts_ms=ctx.clock.now_ms(),
                    symbol=symbol,
                    where="backstop",
                    message=f"backstop {cid} outcome unknown; the reconciler will check",
                )
            )
            return
        with ctx.store.db.transaction():
            ctx.store.journal.mark(cid, "sent", now_ms=ctx.clock.now_ms(), exchange_order_id=algo.algo_id, raw=algo.raw)
            ctx.store.positions.set_backstop(entry.position_id, cid, want.price, algo.algo_id)
            ctx.store.audit.add(
                "system",
                "backstop",
                symbol=symbol,
                before=old,
                after={"client_id": cid, "price": want.price},
                ts_ms=ctx.clock.now_ms(),
            )
        entry.backstop_client_id, entry.backstop_price = cid, want.price

    async def cancel_backstop(self, entry: BookEntry) -> None:
        """A closePosition stop outlives the position on Binance: cancel it ourselves."""
        cid = entry.backstop_client_id
        if not cid:
            return
        await self._cancel_algo(entry.state.symbol, cid)
        entry.backstop_client_id, entry.backstop_price = None, None
        self.ctx.store.positions.set_backstop(entry.position_id, None, None, None)

    async def _cancel_algo(self, symbol: str, cid: str) -> bool:
        """Cancel one of our algo orders; True when it no longer rests (cancelled now or already gone)."""
        ctx = self.ctx
        try:
            await ctx.port.cancel_algo_order(symbol, cid)
        except NotFoundError:
            pass  # already gone (triggered, or cancelled elsewhere)
        except ExchangeError as exc:
            log.warning("cancel of backstop %s failed: %r (the reconciler will retry)", cid, exc)
            return False
        row = ctx.store.journal.get(cid)
        if row is not None and row.status not in ("filled",):
            ctx.store.journal.mark(cid, "canceled", now_ms=ctx.clock.now_ms())
        return True

    # ------------------------------------------------------------------ user-data events
    # Each user-data event becomes (at most) one piece of work: a task for the live stream (its reader never
    # waits), awaited in place by the backtest (deterministic order of events).
    def on_order_update(self, ev: OrderUpdate) -> None:
        """ORDER_TRADE_UPDATE from the live stream."""
        self._launch(self._order_update_work(ev))

    async def handle_order_update(self, ev: OrderUpdate) -> None:
        await _run(self._order_update_work(ev))

    def _launch(self, work: Coroutine[Any, Any, None] | None) -> None:
        if work is not None:
            self.spawn(work)

    def _order_update_work(self, ev: OrderUpdate) -> Coroutine[Any, Any, None] | None:
        """Apply fills we did not see in a REST reply (backstop, lost replies); foreign fills -> reconcile."""
        parsed = parse_id(ev.client_order_id)
        if parsed is None:
            if ev.execution_type in ("TRADE", "CALCULATED") and self.on_foreign_activity is not None:
                self.on_foreign_activity(ev.symbol)  # by hand or liquidation: the reconciler looks
            return None
        final_with_fill = ev.status is OrderStatus.FILLED or (ev.status.final and ev.filled_qty > 0)
        if not final_with_fill or self.ctx.store.fills.exists(ev.client_order_id):
            return None
        # One trade in USDT: its commission is the order's; otherwise estimate from the taker fee.
        fee = ev.fee if ev.last_qty == ev.filled_qty and ev.fee_asset == "USDT" else None
        facts = FillFacts(ev.client_order_id, ev.avg_price, ev.filled_qty, fee, ev.event_time, ev.order_id, None)
        return self._apply_event(ev.symbol, parsed, facts)

    async def _apply_event(self, symbol: str, parsed: ParsedId, facts: FillFacts) -> None:
        async with self.lock(symbol):
            await self.apply_reported_fill(symbol, parsed, facts, actor="exchange")

    async def apply_reported_fill(self, symbol: str, parsed: ParsedId, facts: FillFacts, *, actor: str) -> bool:
        """Apply a fill found on the stream or by the reconciler (caller holds the symbol lock)."""
        ctx = self.ctx
        if ctx.store.fills.exists(facts.client_order_id):
            return False
        entry = ctx.book.get(symbol)
        if entry is not None and entry.position_id == parsed.position_id:
            await self._apply(entry, parsed, facts, actor=actor)
            return True
        rec = ctx.store.positions.get(parsed.position_id)
        if rec is not None and rec.status == "pending" and parsed.action == "entry":
            self._unresolved_entries.discard(symbol)
            entry = BookEntry(
                position_id=rec.id,
                state=_empty_state(symbol, facts.price),
                margin=ZERO,
                opened_at_ms=rec.opened_at_ms,
                origin=rec.origin,
            )
            self.seed_seq(entry)
            await self._apply(entry, parsed, facts, actor=actor)
            return True
        row = ctx.store.journal.get(facts.client_order_id)
        if row is not None and row.status != "filled":
            ctx.store.journal.mark(
                facts.client_order_id, "filled", now_ms=ctx.clock.now_ms(), filled_qty=facts.qty, avg_price=facts.price
            )
        log.info(
            "fill %s for a position that is not open (%s): recorded in the journal only",
            facts.client_order_id,
            rec.status if rec else "unknown",
        )
        return False

    def on_algo_update(self, ev: AlgoUpdate) -> None:
        self._launch(self._algo_update_work(ev))

    async def handle_algo_update(self, ev: AlgoUpdate) -> None:
        await _run(self._algo_update_work(ev))

    def _algo_update_work(self, ev: AlgoUpdate) -> Coroutine[Any, Any, None] | None:
        """Our backstop cancelled or expired by the exchange (not by us): put it back."""
        if ev.status not in ("CANCELED", "EXPIRED", "REJECTED"):
            return None
        entry = self.ctx.book.get(ev.symbol)
        if entry is None or entry.backstop_client_id != ev.client_algo_id:
            return None
        return self._replace_lost_backstop(ev.symbol, ev.client_algo_id)

    async def _replace_lost_backstop(self, symbol: str, cid: str) -> None:
        async with self.lock(symbol):
            entry = self.ctx.book.get(symbol)
            if entry is None or entry.backstop_client_id != cid:
                return
            row = self.ctx.store.journal.get(cid)
            if row is not None and row.status not in ("filled",):
                self.ctx.store.journal.mark(cid, "canceled", now_ms=self.ctx.clock.now_ms())
            entry.backstop_client_id, entry.backstop_price = None, None
            await self.sync_backstop(entry)

    # ------------------------------------------------------------------ rule 3: resolving the journal
    async def resolve_unresolved(self, algos: OpenAlgos | None = None) -> list[SyncItem]:
        """Ask the exchange about every pending/sent/unknown journal row and apply what it says.

        Resting backstops are 'sent' rows too: each round confirms they still rest.
        """
        items: list[SyncItem] = self._fail_orphan_entries()
        ctx = self.ctx
        rows = ctx.store.journal.unresolved()
        if not rows:
            return items
        algos = algos or OpenAlgos(ctx.port)
        for row in rows:
            async with self.lock(row.symbol):
                fresh = ctx.store.journal.get(row.client_order_id)
                if fresh is None or fresh.status not in ("pending", "sent", "unknown"):
                    continue
                if row.kind == "stop":
                    items.extend(await self._resolve_stop(fresh, await algos.for_symbol(row.symbol)))
                else:
                    items.extend(await self._resolve_market(fresh))
        return items

    def _fail_orphan_entries(self) -> list[SyncItem]:
        """A pending position whose entry order never got a journal row (a crash between the two writes) or
        whose orders all ended without a fill: it never opened."""
        ctx = self.ctx
        items = []
        for rec in ctx.store.positions.list_active():
            if rec.status != "pending" or rec.symbol in self._entering:
                continue
            rows = ctx.store.journal.for_position(rec.id)
            if any(r.status in ("pending", "sent", "unknown", "filled") for r in rows):
                continue  # still being resolved (or its fill is being applied)
            ctx.store.positions.mark_failed(rec.id, ctx.clock.now_ms())
            self._unresolved_entries.discard(rec.symbol)
            items.append(
                SyncItem(
                    "pending_resolved", rec.symbol, f"entry of position {rec.id} never went out", "marked not opened"
                )
            )
        return items

    async def _resolve_market(self, row: JournalRow) -> list[SyncItem]:
        ctx = self.ctx
        order = await ctx.port.fetch_order(row.symbol, row.client_order_id)
        parsed = parse_id(row.client_order_id)
        now = ctx.clock.now_ms()
        if order is None:
            if now - row.updated_at_ms < REQUEST_WINDOW_MS + WINDOW_MARGIN_MS:
                # It may still be on its way: the exchange refuses it only once its request window has passed.
                return [
                    SyncItem(
                        "pending_open",
                        row.symbol,
                        f"{row.client_order_id} not on the exchange yet",
                        "asking again after the request window",
                    )
                ]
            ctx.store.journal.mark(row.client_order_id, "rejected", now_ms=now, error="not found on the exchange")
            self._entry_not_opened(parsed, row.symbol)
            return [
                SyncItem(
                    "pending_resolved",
                    row.symbol,
                    f"{row.client_order_id} never reached the exchange",
                    "marked not executed",
                )
            ]
        if order.filled_qty > 0 and (order.status.final or order.status is OrderStatus.FILLED):
            if parsed is None:
                return []
            facts = self._facts_from_order(row.client_order_id, order)
            if facts is not None:
                await self.apply_reported_fill(row.symbol, parsed, facts, actor="reconciler")
            return [
                SyncItem(
                    "pending_resolved",
                    row.symbol,
                    f"{row.client_order_id} was filled ({order.filled_qty} at {order.avg_price})",
                    "fill applied",
                )
            ]
        if order.status.final:
            self._facts_from_order(row.client_order_id, order)
            self._entry_not_opened(parsed, row.symbol)
            return [
                SyncItem(
                    "pending_resolved",
                    row.symbol,
                    f"{row.client_order_id} ended {order.status.value}",
                    "marked not executed",
                )
            ]
        return [SyncItem("pending_open", row.symbol, f"{row.client_order_id} still {order.status.value}", "")]

    def _entry_not_opened(self, parsed: ParsedId | None, symbol: str) -> None:
        """An entry order that ended without a fill: its pending position never opened."""
        if parsed is None or parsed.action != "entry":
            return
        rec = self.ctx.store.positions.get(parsed.position_id)
        if rec is not None and rec.status == "pending":
            self.ctx.store.positions.mark_failed(rec.id, self.ctx.clock.now_ms())
        self._unresolved_entries.discard(symbol)

    async def _resolve_stop(self, row: JournalRow, open_algos: dict[str, AlgoOrder]) -> list[SyncItem]:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        entry = ctx.book.get(row.symbol)
        if row.client_order_id in open_algos:
            algo = open_algos[row.client_order_id]
            if entry is not None and entry.backstop_client_id == row.client_order_id:
                if row.status != "sent":
                    ctx.store.journal.mark(row.client_order_id, "sent", now_ms=now)
                return []  # the current backstop, resting as it should
            if entry is not None and entry.backstop_client_id is None:
                ctx.store.journal.mark(row.client_order_id, "sent", now_ms=now)
                entry.backstop_client_id, entry.backstop_price = row.client_order_id, row.trigger_price
                ctx.store.positions.set_backstop(
                    entry.position_id, row.client_order_id, row.trigger_price, algo.algo_id
                )
                return [
                    SyncItem(
                        "pending_resolved",
                        row.symbol,
                        f"backstop {row.client_order_id} is resting",
                        "adopted as the backstop",
                    )
                ]
            await self._cancel_algo(row.symbol, row.client_order_id)
            return [
                SyncItem("stray_cancelled", row.symbol, f"backstop {row.client_order_id} is not current", "cancelled")
            ]
        # Not resting: it triggered (its fill carries the same id) or never existed.
        order = await ctx.port.fetch_order(row.symbol, row.client_order_id)
        parsed = parse_id(row.client_order_id)
        if order is not None and order.filled_qty > 0 and parsed is not None:
            facts = self._facts_from_order(row.client_order_id, order)
            if facts is not None:
                await self.apply_reported_fill(row.symbol, parsed, facts, actor="reconciler")
            return [SyncItem("pending_resolved", row.symbol, f"backstop {row.client_order_id} fired", "fill applied")]
        ctx.store.journal.mark(
            row.client_order_id,
            "canceled" if row.status == "sent" else "rejected",
            now_ms=now,
            error="not resting on the exchange",
        )
        if entry is not None and entry.backstop_client_id == row.client_order_id:
            entry.backstop_client_id, entry.backstop_price = None, None
            ctx.store.positions.set_backstop(entry.position_id, None, None, None)
        return [
            SyncItem(
                "pending_resolved",
                row.symbol,
                f"backstop {row.client_order_id} is not on the exchange",
                "will be re-created",
            )
        ]


# ---------------------------------------------------------------------- helpers
class OpenAlgos:
    """Open algo orders for one reconcile round: fetched per symbol (weight 1 each) unless swept at once
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


async def _run(work: Coroutine[Any, Any, None] | None) -> None:
    if work is not None:
        await work


def _empty_state(symbol: str, price: Decimal) -> PositionState:
    return PositionState(symbol=symbol, stage=Stage.INITIAL, legs=(), qty=ZERO, initial_price=price)


def _margin(state: PositionState, leverage: int) -> Decimal:
    return (state.avg_price * state.qty / leverage) if state.qty > 0 else ZERO


def _sell_pnl(before: PositionState, fill: Fill) -> Decimal:
    """Realised PnL of one sell, against the lot it sells (recovery) or the average (others)."""
    basis = before.avg_price
    if fill.reason is ExitReason.RECOVERY_SECOND_DCA:
        lot = before.leg(Stage.SECOND_DCA)
        basis = lot.price if lot else basis
    elif fill.reason is ExitReason.RECOVERY_FIRST_DCA:
        lot = before.leg(Stage.FIRST_DCA)
        basis = lot.price if lot else basis
    qty = min(fill.qty, before.qty)
    return (fill.price - basis) * qty - fill.fee


def trade_result(fills: list[FillRecord]) -> tuple[Decimal, Decimal]:
    """(realised PnL after fees, total fees) of a whole trade from its fills."""
    bought = sold = fees = ZERO
    for f in fills:
        if f.side == "BUY":
            bought += f.price * f.qty
        else:
            sold += f.price * f.qty
        fees += f.fee
    return sold - bought - fees, fees


def _max_margin(fills: list[FillRecord], leverage: int) -> Decimal:
    """The most margin the trade ever had committed (cost of all buys / leverage): base of its PnL %."""
    return sum((f.price * f.qty for f in fills if f.side == "BUY"), ZERO) / leverage


def _summary(state: PositionState) -> dict[str, object]:
    return {
        "stage": state.stage.value,
        "qty": state.qty,
        "avg": state.avg_price,
        "dca1": state.dca1_done,
        "dca2": state.dca2_done,
        "half": state.half_taken,
    }
