"""The position ledger: the only writer of positions, fills, cooldowns, daily statistics and the book.

Each change is one SQLite transaction (with its audit row, order-safety rule 7),
then the in-memory book, then the event for the alerts. Whoever asks for a
change (the executor after a fill, the reconciler after a diff, the monitor
for a runner's peak, ``/exit``, the funding tracker) asks here; nobody else
writes these tables or touches a book entry's state.

Funding keeps Binance's sign (its income history's): a payment is negative
when the account paid, positive when it received. A trade's realised result
is sells - buys - fees + funding, the same figure the wallet moved by.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from storage.errors import DuplicateFill, DuplicateFunding
from storage.fills import FillRecord
from trading.book import BookEntry
from trading.context import EngineContext
from trading.core import ladder
from trading.core.models import ZERO, ExitReason, Fill, PositionState, Stage
from trading.core.order_state import OrderState, Origin, PositionStatus
from trading.events import (
    DcaFilled,
    EntryFilled,
    PartialExit,
    PositionAdopted,
    PositionClosed,
    PositionVanished,
    QuantityDrift,
)
from trading.execution.outcomes import FillFacts
from trading.orders import ParsedId

log = logging.getLogger("surgedca.ledger")

HOUR_MS = 3_600_000
PEAK_SAVE_EVERY_MS = 1_000  # a runner's new high is persisted at most once a second


@dataclass(frozen=True, slots=True)
class FillApplied:
    entry: BookEntry
    before: PositionState
    after: PositionState
    opening: bool
    closed: bool


@dataclass(frozen=True, slots=True)
class ExternalSell:
    """A sell the service did not send (by hand, a liquidation, a settlement), as the exchange reports it."""

    key: str  # unique per execution: the fill's client order id in the fills table
    price: Decimal
    qty: Decimal
    fee: Decimal
    ts_ms: int
    realized_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FundingRecorded:
    """A funding payment now in the ledger. ``after_close``: its position had closed already (the payment
    was found later), so the trade's result and its day's statistics were corrected."""

    position_id: int
    symbol: str
    amount: Decimal
    ts_ms: int
    after_close: bool


class PositionLedger:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx

    # ------------------------------------------------------------------ start
    def load_book(self) -> list[BookEntry]:
        """Open positions from the database into the book (the database is the source of truth)."""
        ctx = self.ctx
        entries = []
        for rec in ctx.store.positions.list_open():
            entry = BookEntry(
                position_id=rec.id,
                state=rec.state,
                margin=rec.margin,
                opened_at_ms=rec.opened_at_ms,
                origin=rec.origin,
                backstop_client_id=rec.backstop_client_id,
                backstop_price=rec.backstop_price,
                funding=rec.funding,
            )
            ctx.book.put(entry, ctx.cfg)
            entries.append(entry)
        return entries

    # ------------------------------------------------------------------ entries
    def open_pending(self, symbol: str, actor: str) -> int:
        """The entry's position row, written before its order is sent."""
        ctx = self.ctx
        now = ctx.clock.now_ms()
        with ctx.store.db.transaction():
            pid = ctx.store.positions.create_pending(symbol, Origin.SIGNAL, now)
            ctx.store.audit.add(actor, "entry", symbol=symbol, after={"position_id": pid}, ts_ms=now)
        return pid

    def entry_failed(self, position_id: int, symbol: str, reason: str, actor: str) -> bool:
        """A pending entry that never filled: pending -> failed. False if it is not pending (any more)."""
        ctx = self.ctx
        rec = ctx.store.positions.get(position_id)
        if rec is None or rec.status is not PositionStatus.PENDING:
            return False
        now = ctx.clock.now_ms()
        with ctx.store.db.transaction():
            ctx.store.positions.mark_failed(position_id, now)
            ctx.store.audit.add(
                actor, "entry_failed", symbol=symbol, after={"position_id": position_id, "reason": reason}, ts_ms=now
            )
        return True

    # ------------------------------------------------------------------ fills
    def apply_fill(self, symbol: str, parsed: ParsedId, facts: FillFacts, *, actor: str) -> FillApplied | None:
        """Record one of our fills (idempotent per client order id) and move the ladder.

        The fill of a pending entry opens the position; a sell that leaves nothing closes it (cooldown,
        daily statistics). A fill for a position that is no longer open is recorded in the journal only.
        """
        ctx = self.ctx
        store = ctx.store
        if store.fills.exists(facts.client_order_id):
            return None
        entry = ctx.book.get(symbol)
        if entry is None or entry.position_id != parsed.position_id:
            rec = store.positions.get(parsed.position_id)
            if rec is None or rec.status is not PositionStatus.PENDING or parsed.action != "entry":
                store.journal.mark(
                    facts.client_order_id,
                    OrderState.FILLED,
                    now_ms=ctx.clock.now_ms(),
                    filled_qty=facts.qty,
                    avg_price=facts.price,
                )
                log.info(
                    "fill %s for a position that is not open (%s): recorded in the journal only",
                    facts.client_order_id,
                    rec.status.value if rec else "unknown",
                )
                return None
            entry = BookEntry(
                position_id=rec.id,
                state=_empty_state(symbol, facts.price),
                margin=ZERO,
                opened_at_ms=rec.opened_at_ms,
                origin=rec.origin,
            )
        side, stage, reason = parsed.side, parsed.stage, parsed.reason
        fee = facts.fee if facts.fee is not None else facts.price * facts.qty * ctx.cfg.fractions.taker_fee
        fill = Fill(side, facts.price, facts.qty, fee, stage, reason)
        before = entry.state
        opening = parsed.action == "entry" and before.qty <= 0
        after = ladder.new_position(symbol, fill) if opening else ladder.apply_fill(before, fill)
        if side == "SELL" and facts.qty > before.qty:
            log.warning("%s sold %s but held %s", facts.client_order_id, facts.qty, before.qty)
        closed = side == "SELL" and after.qty <= 0
        partial_pnl = _sell_pnl(before, fill) if side == "SELL" else None
        now = ctx.clock.now_ms()
        margin = _margin(after, ctx.cfg.leverage)
        close_reason = reason or ExitReason.EXTERNAL
        trade_pnl = ZERO
        try:
            with store.db.transaction():
                store.journal.mark(
                    facts.client_order_id,
                    OrderState.FILLED,
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
                    trade_pnl = self._close_rows(entry, close_reason, fee, now)
                else:
                    store.positions.save_state(entry.position_id, after, margin=margin, fees_add=fee, now_ms=now)
                store.audit.add(
                    actor,
                    f"fill:{parsed.action}",
                    symbol=symbol,
                    before=_summary(before),
                    after=_summary(after) | {"price": facts.price, "qty": facts.qty},
                    ts_ms=now,
                )
        except DuplicateFill:
            return None
        # committed: now the in-memory view and the alerts
        entry.state, entry.margin, entry.last_px = after, margin, str(facts.price)
        if closed:
            ctx.book.remove(symbol)
            self._notify_closed(entry, close_reason, facts.price, facts.qty, pnl=trade_pnl, now=now)
        elif opening:
            ctx.book.put(entry, ctx.cfg)
            ctx.notify(
                EntryFilled(
                    ts_ms=now,
                    symbol=symbol,
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
                        symbol=symbol,
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
                        symbol=symbol,
                        reason=close_reason.value,
                        price=facts.price,
                        qty=facts.qty,
                        remaining_qty=after.qty,
                        pnl=partial_pnl or ZERO,
                        position_id=entry.position_id,
                    )
                )
        return FillApplied(entry, before, after, opening, closed)

    # ------------------------------------------------------------------ closes found by the reconciler
    def close_external(
        self,
        entry: BookEntry,
        reason: ExitReason,
        sells: list[ExternalSell],
        *,
        actor: str,
        exchange_qty: Decimal,
    ) -> tuple[Decimal, bool]:
        """A position gone from the exchange without our order (by hand, liquidation, settlement).

        ``sells`` are its executions as the exchange reports them; whatever they do not cover is valued
        at the last known price (the result is then an estimate). Returns (the trade's PnL, estimated).
        """
        ctx, store = self.ctx, self.ctx.store
        now = ctx.clock.now_ms()
        left = entry.state.qty
        with store.db.transaction():
            for s in sells:
                if left <= 0:
                    break
                qty = min(s.qty, left)
                left -= qty
                if not store.fills.exists(s.key, s.ts_ms):
                    store.fills.add(
                        entry.position_id,
                        s.key,
                        "SELL",
                        s.price,
                        qty,
                        s.fee,
                        s.ts_ms,
                        reason=reason,
                        realized_pnl=s.realized_pnl,
                        trade_id=s.ts_ms,
                    )
            estimated = left > 0
            if estimated:
                price = entry.last_price or entry.state.avg_price
                store.fills.add(
                    entry.position_id, f"ext-{entry.position_id}-rest", "SELL", price, left, ZERO, now, reason=reason
                )
            pnl = self._close_rows(entry, reason, ZERO, now)
            store.audit.add(
                actor,
                reason.value if reason is not ExitReason.EXTERNAL else "vanished",
                symbol=entry.state.symbol,
                before={"qty": entry.state.qty, "exchange_qty": exchange_qty},
                after={"pnl": pnl, "estimated": estimated},
                ts_ms=now,
            )
        ctx.book.remove(entry.state.symbol)
        if reason is ExitReason.EXTERNAL:
            ctx.notify(
                PositionVanished(
                    ts_ms=now, symbol=entry.state.symbol, qty=entry.state.qty, pnl=pnl, position_id=entry.position_id
                )
            )
        else:
            last = sells[-1].price if sells else (entry.last_price or entry.state.avg_price)
            self._notify_closed(entry, reason, last, entry.state.qty, pnl=pnl, now=now)
        return pnl, estimated

    def _close_rows(self, entry: BookEntry, reason: ExitReason, fee: Decimal, now: int) -> Decimal:
        """Inside a transaction: the position closed with its whole trade's result (funding included),
        cooldown, daily statistics."""
        ctx, store = self.ctx, self.ctx.store
        funding = store.funding.total(entry.position_id)
        trade_pnl, fees_total = trade_result(store.fills.for_position(entry.position_id), funding)
        store.positions.close(entry.position_id, reason.value, trade_pnl, fee, now)
        hours = ctx.cfg.cooldown_after_stop_h if reason.is_stop else ctx.cfg.cooldown_after_exit_h
        self._cooldown_rows(entry.state.symbol, now + int(hours * HOUR_MS), reason.value)
        store.daily.add_trade(ctx.local_day(now), trade_pnl, fees_total, funding)
        return trade_pnl

    def _notify_closed(
        self, entry: BookEntry, reason: ExitReason, price: Decimal, qty: Decimal, *, pnl: Decimal, now: int
    ) -> None:
        margin_used = _max_margin(self.ctx.store.fills.for_position(entry.position_id), self.ctx.cfg.leverage)
        self.ctx.notify(
            PositionClosed(
                ts_ms=now,
                symbol=entry.state.symbol,
                reason=reason.value,
                price=price,
                qty=qty,
                pnl=pnl,
                pnl_pct=pnl / margin_used if margin_used > 0 else ZERO,
                position_id=entry.position_id,
                funding=self.ctx.store.funding.total(entry.position_id),
            )
        )

    # ------------------------------------------------------------------ funding
    def record_funding(
        self, symbol: str, amount: Decimal, ts_ms: int, key: str, *, actor: str, asset: str = "USDT"
    ) -> FundingRecorded | None:
        """One funding payment (Binance's sign: negative when paid), idempotent per ``key`` (the exchange's
        ``tranId``). It belongs to the position that held ``symbol`` at ``ts_ms``; a payment for a symbol the
        service did not hold then (a position of someone else's, one not adopted) is ignored with a log line.
        A payment found after its position closed corrects that trade's result and its day's statistics.
        Returns what was recorded, None when nothing was (already there, or not ours)."""
        ctx, store = self.ctx, self.ctx.store
        if store.funding.exists(key):
            return None
        rec = store.positions.held_at(symbol, ts_ms)
        if rec is None:
            log.info(
                "funding %s %s of %s at %d (id %s): no position of ours held it then; ignored",
                amount,
                asset,
                symbol,
                ts_ms,
                key,
            )
            return None
        now = ctx.clock.now_ms()
        try:
            with store.db.transaction():
                store.funding.add(rec.id, symbol, key, amount, ts_ms, now, asset)
                status = store.positions.add_funding(rec.id, amount, now)
                after_close = status is PositionStatus.CLOSED
                if after_close and rec.closed_at_ms is not None:
                    old = rec.realized_pnl or ZERO
                    change = int(old + amount > 0) - int(old > 0)
                    store.daily.add_late_funding(ctx.local_day(rec.closed_at_ms), amount, change)
                store.audit.add(
                    actor,
                    "funding",
                    symbol=symbol,
                    before={"position_id": rec.id, "funding": rec.funding},
                    after={
                        "amount": amount,
                        "at_ms": ts_ms,
                        "id": key,
                        "funding": rec.funding + amount,
                        "after_close": after_close,
                    },
                    ts_ms=now,
                )
        except DuplicateFunding:
            return None
        entry = ctx.book.get(symbol)
        if entry is not None and entry.position_id == rec.id:
            entry.funding += amount
        log.info(
            "funding %s %s of %s at %d recorded on position %d%s",
            amount,
            asset,
            symbol,
            ts_ms,
            rec.id,
            " (after its close: result corrected)" if after_close else "",
        )
        return FundingRecorded(rec.id, symbol, amount, ts_ms, after_close)

    # ------------------------------------------------------------------ adoption and drift
    def adopt(self, symbol: str, qty: Decimal, entry_price: Decimal, *, actor: str) -> BookEntry:
        """A long on the exchange the database does not know: taken over at stage initial."""
        ctx = self.ctx
        state = ladder.adopted_position(symbol, qty, entry_price)
        now = ctx.clock.now_ms()
        margin = entry_price * qty / ctx.cfg.leverage
        with ctx.store.db.transaction():
            pid = ctx.store.positions.create_open(symbol, state, Origin.ADOPTED, margin, now)
            ctx.store.fills.add(pid, f"adopt-{pid}", "BUY", entry_price, qty, ZERO, now, stage=Stage.INITIAL)
            ctx.store.audit.add(
                actor,
                "adopt",
                symbol=symbol,
                before=None,
                after={"position_id": pid, "qty": qty, "entry": entry_price},
                ts_ms=now,
            )
        entry = BookEntry(position_id=pid, state=state, margin=margin, opened_at_ms=now, origin=Origin.ADOPTED)
        ctx.book.put(entry, ctx.cfg)
        ctx.notify(PositionAdopted(ts_ms=now, symbol=symbol, qty=qty, entry_price=entry_price, position_id=pid))
        return entry

    def fix_qty(self, entry: BookEntry, exchange_qty: Decimal, *, actor: str) -> None:
        """Quantity drift: the exchange's figure wins (order-safety rule 6); lots scaled, average kept."""
        ctx = self.ctx
        now = ctx.clock.now_ms()
        before = entry.state
        after = ladder.with_exchange_qty(before, exchange_qty)
        margin = _margin(after, ctx.cfg.leverage)
        with ctx.store.db.transaction():
            ctx.store.positions.save_state(entry.position_id, after, margin=margin, now_ms=now)
            ctx.store.audit.add(
                actor,
                "qty_drift",
                symbol=before.symbol,
                before={"qty": before.qty},
                after={"qty": exchange_qty},
                ts_ms=now,
            )
        entry.state, entry.margin = after, margin
        entry.retrigger(ctx.cfg)
        ctx.notify(QuantityDrift(ts_ms=now, symbol=before.symbol, db_qty=before.qty, exchange_qty=exchange_qty))

    # ------------------------------------------------------------------ backstop, peak, cooldowns
    def set_backstop(
        self, entry: BookEntry, client_id: str | None, price: Decimal | None, algo_id: str | None, *, actor: str
    ) -> None:
        """The stop now resting for this position (all None: none)."""
        ctx = self.ctx
        now = ctx.clock.now_ms()
        old = {"client_id": entry.backstop_client_id, "price": entry.backstop_price}
        with ctx.store.db.transaction():
            ctx.store.positions.set_backstop(entry.position_id, client_id, price, algo_id, now)
            if client_id is not None:
                ctx.store.audit.add(
                    actor,
                    "backstop",
                    symbol=entry.state.symbol,
                    before=old,
                    after={"client_id": client_id, "price": price},
                    ts_ms=now,
                )
        entry.backstop_client_id, entry.backstop_price = client_id, price

    def raise_peak(self, entry: BookEntry, peak: Decimal) -> None:
        """The runner's highest price moved up: in memory at once, on disk at most once a second."""
        ctx = self.ctx
        entry.state = ladder.with_peak(entry.state, peak)
        entry.retrigger(ctx.cfg)
        now = ctx.clock.now_ms()
        if now - entry.peak_saved_ms >= PEAK_SAVE_EVERY_MS:
            entry.peak_saved_ms = now
            ctx.store.positions.set_peak(entry.position_id, peak, now)

    def persist_peaks(self) -> None:
        """Every runner's latest peak (graceful stop)."""
        for entry in self.ctx.book.entries():
            if entry.state.peak_price is not None:
                self.ctx.store.positions.set_peak(entry.position_id, entry.state.peak_price, self.ctx.clock.now_ms())

    def set_cooldown(self, symbol: str, until_ms: int, reason: str, *, actor: str) -> None:
        ctx = self.ctx
        with ctx.store.db.transaction():
            self._cooldown_rows(symbol, until_ms, reason)
            ctx.store.audit.add(
                actor,
                "cooldown",
                symbol=symbol,
                after={"until_ms": until_ms, "reason": reason},
                ts_ms=ctx.clock.now_ms(),
            )

    def _cooldown_rows(self, symbol: str, until_ms: int, reason: str) -> None:
        current = self.ctx.cooldowns.get(symbol)
        if current is not None and current >= until_ms:
            return  # a longer cooldown already runs
        self.ctx.store.cooldowns.set(symbol, until_ms, reason)
        self.ctx.cooldowns[symbol] = until_ms

    def purge_cooldowns(self) -> None:
        ctx = self.ctx
        ctx.store.cooldowns.purge(ctx.clock.now_ms())
        ctx.cooldowns = dict(ctx.store.cooldowns.active(ctx.clock.now_ms()))


# ---------------------------------------------------------------------- helpers
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


def trade_result(fills: list[FillRecord], funding: Decimal = ZERO) -> tuple[Decimal, Decimal]:
    """(realised PnL after fees and funding, total fees) of a whole trade from its fills and its funding
    (Binance's sign: negative when paid): sells - buys - fees + funding."""
    bought = sold = fees = ZERO
    for f in fills:
        if f.side == "BUY":
            bought += f.price * f.qty
        else:
            sold += f.price * f.qty
        fees += f.fee
    return sold - bought - fees + funding, fees


def _max_margin(fills: list[FillRecord], leverage: int) -> Decimal:
    """The most margin the trade ever had committed (cost of all buys / leverage): base of its PnL %."""
    return sum((f.price * f.qty for f in fills if f.side == "BUY"), ZERO) / leverage


def _summary(state: PositionState) -> dict[str, Any]:
    return {
        "stage": state.stage.value,
        "qty": state.qty,
        "avg": state.avg_price,
        "dca1": state.dca1_done,
        "dca2": state.dca2_done,
        "half": state.half_taken,
    }
