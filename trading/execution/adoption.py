"""Adoption by consent: a long on the exchange that the service did not open is taken over only if allowed.

``adopt_positions`` (strategy key):

- ``"ask"`` (default): the reconciler records the question (``storage.adoptions``, so it survives a restart)
  and an alert asks on Telegram: Adopt or Ignore. The buttons are single-use (the row's status changes in
  one statement) and, as every action, only for ``TELEGRAM_ALLOWED_USER_IDS``. Until adopted the long gets no
  backstop, no DCA and no exit, and no entry is made on its symbol (a buy would merge into it). Without
  Telegram there is nobody to ask: as ``"none"``, said once in the log.
- ``"all"``: every unknown long is adopted at once (stage initial, its own backstop), as before.
- ``"none"``: left alone.

An ignored (or not asked) long stays listed in ``/positions`` as not managed, with an Adopt button (which
asks to confirm): it is touched again only when someone adopts it there. When it leaves the exchange its
question ends (``gone``); a new long on the symbol later is a new question. Every answer is audited with
who gave it; the adoption itself is the ledger's (``adopt``, audited with the same actor).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Collection, Iterable
from decimal import Decimal

from storage.adoptions import LIVE, AdoptionRequest, AdoptionStatus
from trading.context import EngineContext
from trading.core import reconcile
from trading.events import AdoptionAsked
from trading.exchange.base import ExchangeError, ExchangePosition
from trading.executor import Executor
from trading.views import AdoptionOutcome, AdoptionResult, NotManagedStatus, NotManagedView, SyncItem

log = logging.getLogger("surgedca.adoption")

_ASKED = frozenset({AdoptionStatus.ASKED})


class AdoptionDesk:
    def __init__(self, ctx: EngineContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self.interactive = False  # someone can be asked (Telegram is on): set by the service
        self._remote: dict[str, ExchangePosition] = {}  # the unmanaged longs as last seen on the exchange

    # ------------------------------------------------------------------ the reconciler's side
    async def unknown_long(self, c: reconcile.Adopt) -> SyncItem | None:
        """A long on the exchange the database does not know (the caller holds the symbol's lock)."""
        ctx = self.ctx
        mode = ctx.cfg.adopt_positions
        row = ctx.store.adoptions.live_for(c.symbol)
        ctx.unmanaged[c.symbol] = c.qty
        if row is None:
            if mode == "all":
                return await self._adopt_locked(c.symbol, c.qty, c.entry_price, actor="reconciler")
            return self._new_question(c, mode)
        if mode == "all" and row.status in (AdoptionStatus.ASKED, AdoptionStatus.LEFT):
            # "all" adopts what nobody said to leave alone (an Ignore still holds)
            item = await self._adopt_locked(c.symbol, c.qty, c.entry_price, actor="reconciler", row=row)
            return item
        if row.status is AdoptionStatus.LEFT and mode == "ask" and self.interactive:
            return self._ask(row, c.qty, c.entry_price)
        return None

    def _new_question(self, c: reconcile.Adopt, mode: str) -> SyncItem:
        ctx = self.ctx
        asking = mode == "ask" and self.interactive
        now = ctx.clock.now_ms()
        status = AdoptionStatus.ASKED if asking else AdoptionStatus.LEFT
        with ctx.store.db.transaction():
            row = ctx.store.adoptions.create(
                c.symbol, c.qty, c.entry_price, token=secrets.token_urlsafe(9), status=status, now_ms=now
            )
            ctx.store.audit.add(
                "reconciler",
                "adoption_asked" if asking else "adoption_left",
                symbol=c.symbol,
                after={"qty": c.qty, "entry": c.entry_price, "adopt_positions": mode},
                ts_ms=now,
            )
        if asking:
            self._tell_ask(row, c.qty, c.entry_price)
            return SyncItem("adoption_asked", c.symbol, f"long {c.qty} at {c.entry_price} not opened by SurgeDCA",
                            "asked on Telegram: Adopt or Ignore")  # fmt: skip
        why = (
            "adopt_positions = none"
            if mode == "none"
            else "adopt_positions = ask, but without Telegram there is nobody to ask: treated as none"
        )
        log.warning(
            "%s: a long of %s at %s that SurgeDCA did not open is left alone (%s): no backstop, no DCA, no exit; "
            "/positions lists it as not managed",
            c.symbol,
            c.qty,
            c.entry_price,
            why,
        )
        return SyncItem("not_managed", c.symbol, f"long {c.qty} at {c.entry_price} not opened by SurgeDCA",
                        f"left alone ({why})")  # fmt: skip

    def _ask(self, row: AdoptionRequest, qty: Decimal, entry_price: Decimal) -> SyncItem | None:
        """A long left alone while nobody could be asked: ask now (``adopt_positions`` became "ask")."""
        ctx = self.ctx
        now = ctx.clock.now_ms()
        with ctx.store.db.transaction():
            if not ctx.store.adoptions.move(
                row.id, frozenset({AdoptionStatus.LEFT}), AdoptionStatus.ASKED, actor="reconciler", now_ms=now
            ):
                return None
            ctx.store.audit.add("reconciler", "adoption_asked", symbol=row.symbol, after={"qty": qty}, ts_ms=now)
        self._tell_ask(row, qty, entry_price)
        return SyncItem("adoption_asked", row.symbol, f"long {qty} at {entry_price} not managed", "asked on Telegram")

    def _tell_ask(self, row: AdoptionRequest, qty: Decimal, entry_price: Decimal) -> None:
        ctx = self.ctx
        log.warning(
            "%s: a long of %s at %s that SurgeDCA did not open: asked on Telegram whether to adopt it; until then "
            "it gets no backstop, no DCA and no exit",
            row.symbol,
            qty,
            entry_price,
        )
        now = ctx.clock.now_ms()
        ctx.notify(AdoptionAsked(ts_ms=now, symbol=row.symbol, qty=qty, entry_price=entry_price, token=row.token))

    def seen(self, remote: Iterable[ExchangePosition], skip: Collection[str]) -> list[SyncItem]:
        """After a round's corrections: questions whose long left the exchange end (``gone``), those adopted
        meanwhile are marked so; ``ctx.unmanaged`` follows what is left."""
        ctx = self.ctx
        longs = {p.symbol: p for p in remote if p.qty > 0}
        items: list[SyncItem] = []
        live = ctx.store.adoptions.live()
        for row in live:
            symbol = row.symbol
            if symbol in skip:
                continue
            entry = ctx.book.get(symbol)
            if entry is not None:
                self._end(row, AdoptionStatus.ADOPTED, position_id=entry.position_id)
            elif symbol not in longs:
                self._end(row, AdoptionStatus.GONE)
                items.append(SyncItem("not_managed_gone", symbol, "the long not managed by SurgeDCA", "gone"))
            else:
                ctx.unmanaged[symbol] = longs[symbol].qty
                self._remote[symbol] = longs[symbol]
        live_symbols = {r.symbol for r in live}
        for symbol in [s for s in ctx.unmanaged if s not in live_symbols]:
            ctx.unmanaged.pop(symbol, None)  # adopted at once ("all"): nothing left to keep apart
        return items

    def _end(self, row: AdoptionRequest, status: AdoptionStatus, *, position_id: int | None = None) -> None:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        with ctx.store.db.transaction():
            if ctx.store.adoptions.move(row.id, LIVE, status, actor="reconciler", now_ms=now, position_id=position_id):
                ctx.store.audit.add(
                    "reconciler", f"adoption_{status.value}", symbol=row.symbol, before={"status": row.status.value},
                    ts_ms=now,
                )  # fmt: skip
        ctx.unmanaged.pop(row.symbol, None)
        self._remote.pop(row.symbol, None)
        if status is AdoptionStatus.GONE:
            log.info("%s: the long SurgeDCA did not manage is no longer on the exchange", row.symbol)

    # ------------------------------------------------------------------ views
    def not_managed(self) -> list[NotManagedView]:
        out = []
        for row in self.ctx.store.adoptions.live():
            seen = self._remote.get(row.symbol)
            out.append(
                NotManagedView(
                    symbol=row.symbol,
                    qty=seen.qty if seen is not None else row.qty,
                    entry_price=seen.entry_price if seen is not None else row.entry_price,
                    unrealized_pnl=seen.unrealized_pnl if seen is not None else None,
                    status=NotManagedStatus(row.status.value),
                    since_ms=row.created_at_ms,
                )
            )
        return out

    def live_question(self, symbol: str) -> AdoptionRequest | None:
        return self.ctx.store.adoptions.live_for(symbol)

    # ------------------------------------------------------------------ answers (the service API)
    async def answer(self, token: str, adopt: bool, actor: str) -> AdoptionResult:
        """The Adopt / Ignore buttons: the first answer counts, every later one is told what it was."""
        ctx = self.ctx
        row = ctx.store.adoptions.by_token(token) if token else None
        if row is None or row.status is AdoptionStatus.LEFT:
            return AdoptionResult(AdoptionOutcome.UNKNOWN, row.symbol if row else None)
        if row.status is not AdoptionStatus.ASKED:
            return _answered(row)
        if adopt:
            return await self.adopt(row, actor, allowed=_ASKED)
        now = ctx.clock.now_ms()
        with ctx.store.db.transaction():
            if not ctx.store.adoptions.move(row.id, _ASKED, AdoptionStatus.IGNORED, actor=actor, now_ms=now):
                fresh = ctx.store.adoptions.get(row.id)
                assert fresh is not None
                return _answered(fresh)
            ctx.store.audit.add(actor, "adoption_ignored", symbol=row.symbol, after={"qty": row.qty}, ts_ms=now)
        log.warning("%s: left alone as %s answered (no backstop, no DCA, no exit)", row.symbol, actor)
        return AdoptionResult(AdoptionOutcome.IGNORED, row.symbol, qty=row.qty, entry_price=row.entry_price)

    async def adopt(
        self, row: AdoptionRequest, actor: str, *, allowed: frozenset[AdoptionStatus] = LIVE
    ) -> AdoptionResult:
        """Adopt the long of ``row`` now, at its quantity on the exchange (asked fresh, under the symbol's lock),
        if the row is still in one of the ``allowed`` states when the exchange has answered."""
        ctx, ex = self.ctx, self.executor
        symbol = row.symbol
        async with ex.lock(symbol):
            if ctx.halted:
                return AdoptionResult(AdoptionOutcome.REFUSED, symbol, detail=ctx.halt_reason or "")
            try:
                positions = await ctx.port.fetch_positions()
            except ExchangeError as exc:
                return AdoptionResult(AdoptionOutcome.UNAVAILABLE, symbol, detail=str(exc)[:300])
            # No await from here to the ledger's write: a concurrent answer sees the outcome, never half of it.
            fresh = ctx.store.adoptions.get(row.id)
            if fresh is None or fresh.status not in allowed:
                return _answered(fresh or row)
            held = next((p for p in positions if p.symbol == symbol and p.qty > 0), None)
            if held is None:
                self._end(fresh, AdoptionStatus.GONE)
                return AdoptionResult(AdoptionOutcome.GONE, symbol)
            if symbol not in ctx.markets or symbol in ctx.book:
                return AdoptionResult(AdoptionOutcome.UNAVAILABLE, symbol, detail="not adoptable now")
            await self._adopt_locked(symbol, held.qty, held.entry_price, actor=actor, row=fresh)
            entry = ctx.book.get(symbol)
        return AdoptionResult(
            AdoptionOutcome.ADOPTED,
            symbol,
            position_id=entry.position_id if entry else None,
            qty=held.qty,
            entry_price=held.entry_price,
            backstop_price=entry.backstop_price if entry and entry.backstop_client_id else None,
        )

    async def _adopt_locked(
        self, symbol: str, qty: Decimal, entry_price: Decimal, *, actor: str, row: AdoptionRequest | None = None
    ) -> SyncItem:
        """Take the long over (the caller holds the symbol's lock): a position at stage initial, its backstop."""
        ctx, ex = self.ctx, self.executor
        if symbol not in ctx.markets:
            return SyncItem("unknown_symbol", symbol, f"long {qty} on an unknown market", "reported")
        entry = ex.ledger.adopt(symbol, qty, entry_price, actor=actor)
        if row is not None:
            now = ctx.clock.now_ms()
            ctx.store.adoptions.move(
                row.id, LIVE, AdoptionStatus.ADOPTED, actor=actor, now_ms=now, position_id=entry.position_id
            )
        ctx.unmanaged.pop(symbol, None)
        self._remote.pop(symbol, None)
        await ex.keeper.sync(entry)
        return SyncItem(
            "adopted",
            symbol,
            f"long {qty} at {entry_price} unknown to the database",
            f"adopted as position {entry.position_id} (stage initial)",
        )


def _answered(row: AdoptionRequest) -> AdoptionResult:
    """What a late press is told: the answer that counted."""
    outcome = {
        AdoptionStatus.ADOPTED: AdoptionOutcome.ALREADY_ADOPTED,
        AdoptionStatus.IGNORED: AdoptionOutcome.ALREADY_IGNORED,
        AdoptionStatus.GONE: AdoptionOutcome.GONE,
    }.get(row.status, AdoptionOutcome.UNKNOWN)
    return AdoptionResult(outcome, row.symbol, position_id=row.position_id, answered_by=row.answered_by)
