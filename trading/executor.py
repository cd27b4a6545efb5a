"""Locks and dispatch: every action on a position goes through here, one symbol at a time.

The monitor's ladder decisions, the scanner's entries, ``/exit`` and the
user-data stream's fills all take the symbol's lock (order-safety rule 4), then
use the execution core: the sender (journal row, send, ask), the ledger (the
one writer of positions), the backstop keeper (the exchange-side stop) and the
resolver (journal rows whose fate is unknown). What the core decides about
refusals and unknown outcomes is applied here:

- a refused order backs off per position and rule (``execution.refusals``), with
  one alert per position, rule and code; a refused exit is decided on again
  when its back-off is over;
- while a market order of a position has an unknown outcome, neither its DCA
  nor a partial sell is sent; a close (reduce-only: capped at the position) is;
- an entry holds a reservation from the scanner's decision to its fill or failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from decimal import Decimal
from typing import Any

from trading.book import BookEntry
from trading.context import EngineContext
from trading.core import ladder
from trading.core.models import CloseAll, Dca, ExitReason, PositionState, Sell, Skip, Stage
from trading.core.order_state import PositionStatus
from trading.core.refusals import ENTRY_REFUSAL_COOLDOWN_MS, RefusalClass, backoff_s, classify_refusal
from trading.events import ErrorEvent, OrderRefused, OrderSkipped
from trading.exchange.base import AlgoUpdate, ExchangeError, OrderStatus, OrderUpdate, Side
from trading.execution.backstop import BackstopKeeper
from trading.execution.funding import FundingTracker
from trading.execution.ledger import PositionLedger
from trading.execution.outcomes import Filled, FillFacts, Refused, Unknown
from trading.execution.refusals import Admission, RefusalBook
from trading.execution.resolver import RESOLVE_WINDOW_MS, JournalResolver, OpenAlgos
from trading.execution.sender import OrderSender
from trading.execution.tracker import OrderTracker
from trading.orders import ClientIds, ParsedId, action_code
from trading.runner import WorkRunner
from trading.views import SyncItem

log = logging.getLogger("surgedca.executor")

# While a market order's outcome is unknown, these wait (a close does not: reduce-only caps it at the position).
WAIT_FOR_UNKNOWN = frozenset(
    {
        ExitReason.RECOVERY_SECOND_DCA.value,
        ExitReason.RECOVERY_FIRST_DCA.value,
        ExitReason.TAKE_HALF.value,
        Stage.FIRST_DCA.value,
        Stage.SECOND_DCA.value,
    }
)
MANUAL_EXIT_TRIES = 3  # /exit refused for a passing reason (rate limit) is sent again after the back-off floor

Redecide = Callable[[str], Coroutine[Any, Any, None]]


class Executor:
    def __init__(self, ctx: EngineContext, runner: WorkRunner, ids: ClientIds) -> None:
        self.ctx = ctx
        self.runner = runner
        self.ids = ids
        self.tracker = OrderTracker(ids)
        self.sender = OrderSender(ctx, self.tracker)
        self.ledger = PositionLedger(ctx)
        self.funding = FundingTracker(ctx, self.ledger, runner)
        self.keeper = BackstopKeeper(ctx, self.ledger, self.sender, ids)
        self.refusals = RefusalBook()
        self.admission = Admission()
        self.resolver = JournalResolver(
            ctx,
            self.tracker,
            ids,
            self.ledger,
            self.keeper,
            apply_fill=self._apply_fill_locked,
            entry_ended=self._entry_ended,
        )
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready: set[str] = set()  # symbols whose leverage and margin mode are set this run
        self.on_foreign_activity: Callable[[str], None] | None = None  # the reconciler looks soon
        self.redecide: Redecide | None = None  # the monitor decides again at the latest price

    # ------------------------------------------------------------------ locks and start
    def lock(self, symbol: str) -> asyncio.Lock:
        lk = self._locks.get(symbol)
        if lk is None:
            lk = self._locks[symbol] = asyncio.Lock()
        return lk

    @property
    def orders_sent(self) -> int:
        return self.sender.orders_sent

    def load(self) -> None:
        """At start: the book, what is in flight and what was refused, from the database."""
        ctx = self.ctx
        for entry in self.ledger.load_book():
            rows = ctx.store.journal.for_position(entry.position_id)
            self.tracker.seed(entry.position_id, rows)
            self.refusals.seed(entry.position_id, rows, self.ids)
        weight = ctx.cfg.weight_for(Stage.INITIAL)
        for rec in ctx.store.positions.list_active():
            if rec.status is PositionStatus.PENDING:  # entry outcome unknown: it keeps its slot until resolved
                self.tracker.seed(rec.id, ctx.store.journal.for_position(rec.id))
                self.admission.reserve(rec.symbol, ctx.account.wallet * weight)

    # ------------------------------------------------------------------ ladder actions (the monitor)
    def blocked_rules(self, entry: BookEntry) -> frozenset[str]:
        """Rules of this position that may not send now (``ladder.decide`` goes on to the later ones)."""
        blocked = self.refusals.blocked(entry.position_id, self.ctx.clock.now_ms())
        if self.tracker.busy(entry.position_id):
            blocked |= WAIT_FOR_UNKNOWN
        return blocked

    async def dispatch(self, entry: BookEntry, action: Dca | Sell | CloseAll) -> None:
        """Run a ladder action decided on ``entry.state`` (a task live, in place in a replay)."""
        entry.busy = True
        await self.runner.run(self._run_action(entry, entry.state, action))

    async def _run_action(self, entry: BookEntry, seen: PositionState, action: Dca | Sell | CloseAll) -> None:
        symbol = seen.symbol
        try:
            async with self.lock(symbol):
                ctx = self.ctx
                if ctx.book.get(symbol) is not entry or entry.state is not seen or ctx.stopping or ctx.halted:
                    return  # stale: the position changed while we queued; the next price decides anew
                await self._execute(entry, action, actor="system")
        finally:
            entry.busy = False

    async def _execute(
        self, entry: BookEntry, action: Dca | Sell | CloseAll, *, actor: str
    ) -> FillFacts | Refused | None:
        """Send the action's order and apply what came of it (caller holds the lock)."""
        rule = ladder.rule_of(action)
        manual = isinstance(action, CloseAll) and action.reason is ExitReason.MANUAL
        if not manual and rule in self.blocked_rules(entry):
            return None  # decided before an earlier order's outcome became unknown, or before a refusal
        symbol, pid = entry.state.symbol, entry.position_id
        if isinstance(action, Dca):
            side, qty, reduce_only = Side.BUY, action.qty, False
        else:
            side, qty, reduce_only = Side.SELL, min(action.qty, entry.state.qty), True
        cid, outcome = await self.sender.market(
            position_id=pid, symbol=symbol, action=action_code(action), side=side, qty=qty, reduce_only=reduce_only
        )
        if isinstance(outcome, Filled):
            parsed = self.ids.ours(cid)
            assert parsed is not None
            await self._apply_fill_locked(symbol, parsed, outcome.facts, actor)
            return outcome.facts
        if isinstance(outcome, Refused):
            # A refused /exit is paced by exit_position itself (the person who asked is waiting for it).
            ladder_close = isinstance(action, CloseAll) and not manual
            self._refused(entry, rule, outcome, is_dca=isinstance(action, Dca), is_close=ladder_close)
            return outcome
        self._unknown(symbol, pid, cid, outcome)
        return None

    def _refused(self, entry: BookEntry, rule: str, refused: Refused, *, is_dca: bool, is_close: bool) -> None:
        ctx = self.ctx
        symbol = entry.state.symbol
        verdict = self.refusals.record(
            entry.position_id, rule, refused.klass, refused.code, ctx.clock.now_ms(), is_dca=is_dca
        )
        if refused.klass is RefusalClass.REDUCE_ONLY and self.on_foreign_activity is not None:
            self.on_foreign_activity(symbol)  # the exchange holds less than we think: the reconciler looks now
        if verdict.gave_up:
            step = "given up for this position (it stays managed: its stops and exits go on)"
        else:
            step = f"not sent again for {verdict.wait_s:g} s (refusal #{verdict.count})"
        log.warning(
            "%s %s refused (%s, code %s): %s; %s", symbol, rule, refused.klass, refused.code, refused.message, step
        )
        if verdict.first_of_its_code:
            ctx.notify(
                OrderRefused(
                    ts_ms=ctx.clock.now_ms(),
                    symbol=symbol,
                    what=rule,
                    code=refused.code,
                    refusal=refused.klass.value,
                    message=refused.message[:300],
                    retry_in_s=None if verdict.gave_up else verdict.wait_s,
                    gave_up=verdict.gave_up,
                )
            )
        if is_close and not verdict.gave_up and self.redecide is not None:
            redecide = self.redecide
            self.runner.later(verdict.wait_s, lambda: redecide(symbol))

    def _unknown(self, symbol: str, position_id: int, cid: str, outcome: Unknown) -> None:
        ctx = self.ctx
        ctx.notify(
            ErrorEvent(
                ts_ms=ctx.clock.now_ms(),
                symbol=symbol,
                where="order_unknown",
                message=f"order {cid} outcome unknown ({outcome.reason}); nothing depending on it is sent until "
                "the exchange says what became of it",
            )
        )
        # Once its request window has passed the exchange can say for sure; the reconciler also keeps asking.
        self.runner.later(RESOLVE_WINDOW_MS / 1000 + 0.5, lambda: self.resolve_one(symbol, cid))

    # ------------------------------------------------------------------ entries (the scanner)
    def entry_blocker(self, symbol: str) -> str | None:
        """Why a new entry on ``symbol`` is not allowed right now (None: allowed)."""
        ctx = self.ctx
        if ctx.stopping:
            return "service stopping"
        if ctx.halted:
            return f"trading halted: {ctx.halt_reason}"
        if ctx.paused:
            return "paused"
        if symbol in ctx.book:
            return "already held"
        if self.admission.reserved(symbol):
            return "an entry is in flight"
        if ctx.in_cooldown(symbol):
            return "in cooldown"
        if (why := ctx.block_reason(symbol)) is not None:
            return why
        return self._room(Decimal(0))

    def _room(self, extra_margin: Decimal) -> str | None:
        ctx = self.ctx
        cfg = ctx.cfg
        return self.admission.why_not(
            held=len(ctx.book),
            margin_in_use=ctx.book.margin_in_use(),
            wallet=ctx.account.wallet,
            new_margin=extra_margin,
            max_positions=cfg.max_positions,
            max_margin_usage=cfg.fractions.max_margin_usage,
        )

    def admit(self, symbol: str) -> bool:
        """Reserve an entry slot now, in the scanner's turn (so simultaneous signals cannot overfill)."""
        why = self.entry_blocker(symbol)
        if why is None:
            why = self._room(self.ctx.account.wallet * self.ctx.cfg.weight_for(Stage.INITIAL))
        if why is not None:
            log.info("entry %s not admitted: %s", symbol, why)
            return False
        self.admission.reserve(symbol, self.ctx.account.wallet * self.ctx.cfg.weight_for(Stage.INITIAL))
        return True

    async def enter(self, symbol: str, ref_price: Decimal, *, actor: str = "system") -> int | None:
        """Open a position at market (initial stage) on an admitted symbol. Returns the position id when filled."""
        if not self.admission.reserved(symbol) and not self.admit(symbol):
            return None
        keep_reservation = False
        try:
            async with self.lock(symbol):
                pid, keep_reservation = await self._enter_locked(symbol, ref_price, actor)
                return pid
        finally:
            if not keep_reservation:
                self.admission.release(symbol)

    async def _enter_locked(self, symbol: str, ref_price: Decimal, actor: str) -> tuple[int | None, bool]:
        ctx = self.ctx
        if ctx.stopping or ctx.halted or ctx.paused or symbol in ctx.book:
            return None, False
        rules = ctx.rules(symbol)
        if rules is None:
            return None, False
        balance = await ctx.port.fetch_balance()
        ctx.account.wallet, ctx.account.available = balance.wallet, balance.available
        ctx.account.updated_ms = ctx.clock.now_ms()
        act = ladder.entry_action(symbol, ref_price, balance.wallet, ctx.cfg, rules)
        if isinstance(act, Skip):
            ctx.notify(OrderSkipped(ts_ms=ctx.clock.now_ms(), symbol=symbol, what="entry", why=act.why))
            return None, False
        self.admission.release(symbol)  # re-checked with the real balance, then held again
        why = self._room(act.margin)
        self.admission.reserve(symbol, act.margin)
        if why is not None:
            log.info("entry %s skipped: %s", symbol, why)
            return None, False
        if not await self._ensure_symbol(symbol):
            return None, False
        pid = self.ledger.open_pending(symbol, actor)
        cid, outcome = await self.sender.market(
            position_id=pid, symbol=symbol, action="entry", side=Side.BUY, qty=act.qty, reduce_only=False
        )
        if isinstance(outcome, Filled):
            parsed = self.ids.ours(cid)
            assert parsed is not None
            await self._apply_fill_locked(symbol, parsed, outcome.facts, actor)
            return pid, False
        if isinstance(outcome, Refused):
            self.ledger.entry_failed(pid, symbol, f"refused: {outcome.message[:200]}", actor)
            until = ctx.clock.now_ms() + ENTRY_REFUSAL_COOLDOWN_MS
            self.ledger.set_cooldown(symbol, until, "entry refused", actor="system")
            ctx.notify(
                OrderRefused(
                    ts_ms=ctx.clock.now_ms(),
                    symbol=symbol,
                    what="entry",
                    code=outcome.code,
                    refusal=outcome.klass.value,
                    message=outcome.message[:300],
                    cooldown_min=ENTRY_REFUSAL_COOLDOWN_MS // 60_000,
                )
            )
            return None, False
        self._unknown(symbol, pid, cid, outcome)
        return None, True  # the pending position keeps its slot until the exchange says what happened

    def _entry_ended(self, position_id: int, symbol: str, why: str) -> None:
        """An entry order ended without a fill: its pending position never opened and frees its slot."""
        self.ledger.entry_failed(position_id, symbol, why, "reconciler")
        self.admission.release(symbol)

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
                OrderRefused(
                    ts_ms=ctx.clock.now_ms(),
                    symbol=symbol,
                    what="setup",  # the symbol's leverage or margin mode could not be set: no entry now
                    code=exc.code,
                    refusal=classify_refusal(exc.code, exc.http_status).value,
                    message=str(exc)[:300],
                )
            )
            return False
        self._ready.add(symbol)
        return True

    def forget_symbol_setup(self) -> None:
        """Leverage or margin mode changed in the config: set them again before the next orders."""
        self._ready.clear()

    # ------------------------------------------------------------------ manual exits
    async def exit_position(self, symbol: str, actor: str) -> tuple[FillFacts | None, Decimal | None]:
        """Close everything (``/exit``). Returns the fill and the trade's realised PnL.

        Refused for a passing reason (the rate limit), it is sent again after the back-off floor, the lock
        released in between so the stops are never held up.
        """
        for attempt in range(MANUAL_EXIT_TRIES):
            async with self.lock(symbol):
                entry = self.ctx.book.get(symbol)
                if entry is None:
                    return None, None
                action = CloseAll(symbol, entry.state.qty, ExitReason.MANUAL, entry.last_price or entry.state.avg_price)
                result = await self._execute(entry, action, actor=actor)
                if isinstance(result, FillFacts):
                    rec = self.ctx.store.positions.get(entry.position_id)
                    return result, rec.realized_pnl if rec is not None else None
                passing = isinstance(result, Refused) and result.klass is RefusalClass.RATE_LIMIT
                if not passing or attempt + 1 == MANUAL_EXIT_TRIES:
                    return None, None
            await asyncio.sleep(backoff_s(attempt + 1))  # refused, so certainly not executed
        return None, None

    # ------------------------------------------------------------------ fills
    async def _apply_fill_locked(self, symbol: str, parsed: ParsedId, facts: FillFacts, actor: str) -> None:
        """Ledger, then the backstop (caller holds the lock)."""
        applied = self.ledger.apply_fill(symbol, parsed, facts, actor=actor)
        self.tracker.settled(facts.client_order_id, parsed.position_id)
        if applied is None:
            return
        entry = applied.entry
        self.refusals.reset(entry.position_id)
        if applied.opening:
            self.admission.release(symbol)
        if applied.closed:
            self.tracker.forget(entry.position_id)
            await self.keeper.cancel(entry)
        else:
            await self.keeper.sync(entry)

    # ------------------------------------------------------------------ user-data events
    async def on_order_update(self, ev: OrderUpdate) -> None:
        """ORDER_TRADE_UPDATE: fills we did not see in a REST reply (backstop, lost replies); others' fills."""
        parsed = self.ids.ours(ev.client_order_id)
        if parsed is None:
            foreign_fill = ev.execution_type in ("TRADE", "CALCULATED") and not self.ids.foreign(ev.client_order_id)
            if foreign_fill and self.on_foreign_activity is not None:
                self.on_foreign_activity(ev.symbol)  # by hand, a liquidation: the reconciler looks
            return
        final_with_fill = ev.status is OrderStatus.FILLED or (ev.status.final and ev.filled_qty > 0)
        if not final_with_fill or self.ctx.store.fills.exists(ev.client_order_id):
            return
        # One trade in USDT: its commission is the order's; otherwise estimate from the taker fee.
        fee = ev.fee if ev.last_qty == ev.filled_qty and ev.fee_asset == "USDT" else None
        facts = FillFacts(ev.client_order_id, ev.avg_price, ev.filled_qty, fee, ev.event_time, ev.order_id, None)
        await self.runner.run(self._apply_event(ev.symbol, parsed, facts))

    async def _apply_event(self, symbol: str, parsed: ParsedId, facts: FillFacts) -> None:
        async with self.lock(symbol):
            await self._apply_fill_locked(symbol, parsed, facts, "exchange")

    async def on_algo_update(self, ev: AlgoUpdate) -> None:
        """ALGO_UPDATE: our backstop ended without filling while its position is open: put it back now."""
        if self.keeper.ended_unfilled(ev):
            await self.runner.run(self._put_back(ev))

    async def _put_back(self, ev: AlgoUpdate) -> None:
        async with self.lock(ev.symbol):
            await self.keeper.put_back(ev)

    # ------------------------------------------------------------------ rule 3: resolving the journal
    async def resolve_unresolved(self, algos: OpenAlgos | None = None) -> list[SyncItem]:
        """Ask the exchange about every unresolved journal row and apply what it says.

        Resting backstops are unresolved rows too: each round confirms they still rest.
        """
        items = self.resolver.orphan_entries()
        rows = self.ctx.store.journal.unresolved()
        algos = algos or OpenAlgos(self.ctx.port)
        for row in rows:
            async with self.lock(row.symbol):
                fresh = self.ctx.store.journal.get(row.client_order_id)
                if fresh is None or not fresh.status.unresolved or self.ids.ours(fresh.client_order_id) is None:
                    continue
                items.extend(await self.resolver.resolve(fresh, algos))
        return items

    async def resolve_one(self, symbol: str, cid: str) -> None:
        """One order whose outcome was unknown, once the exchange can tell (then the ladder decides again)."""
        async with self.lock(symbol):
            row = self.ctx.store.journal.get(cid)
            if row is None or not row.status.unresolved:
                return
            items = await self.resolver.resolve(row, OpenAlgos(self.ctx.port))
        if any(i.kind == "pending_open" for i in items):
            self.runner.later(RESOLVE_WINDOW_MS / 1000, lambda: self.resolve_one(symbol, cid))
        elif self.redecide is not None:
            await self.redecide(symbol)
