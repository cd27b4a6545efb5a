"""The backstop keeper: owns each position's exchange-side stop, and never leaves a position without one.

The resting backstop is a STOP_MARKET ``closePosition`` on the mark price at
the current stage's stop (SPEC 5): it closes whatever is held, even quantity
added after it was placed, and survives the service. Binance keeps only one
``closePosition`` stop per side (-4130), so a new one cannot be placed beside
the old. A plain cancel-then-place would leave the position bare whenever the
placement fails (-2021, 429, a timeout). So a replacement goes:

1. place a *bridge*: a reduce-only STOP_MARKET for the held quantity at the new
   price (Binance allows it beside a closePosition stop). Refused or unknown:
   the old stop keeps resting and nothing else changes (tried again later);
2. cancel the old ``closePosition`` stop;
3. place the new ``closePosition`` stop; if that fails, the bridge stays as the
   position's backstop (it protects the held quantity at the right price) and
   the next sync (a fill, the reconciler) turns it into a ``closePosition`` one;
4. cancel the bridge.

Either stop triggering closes at most the position (both are reduce-only), so
the moments when both rest are safe. A stop that ends without filling while its
position is open (cancelled by hand, expired, ``FINISHED`` with nothing
executed) is put back as soon as its ``ALGO_UPDATE`` arrives, with an alert.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from trading.book import BookEntry
from trading.context import EngineContext
from trading.core import ladder
from trading.events import BackstopLost, ErrorEvent
from trading.exchange.base import AlgoStatus, AlgoUpdate
from trading.execution.ledger import PositionLedger
from trading.execution.outcomes import Refused
from trading.execution.sender import OrderSender, StopPlaced
from trading.orders import ClientIds

log = logging.getLogger("surgedca.backstop")


class BackstopKeeper:
    def __init__(self, ctx: EngineContext, ledger: PositionLedger, sender: OrderSender, ids: ClientIds) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.sender = sender
        self.ids = ids
        self._cancelling: set[str] = set()  # our own cancels: their CANCELED updates are expected

    # ------------------------------------------------------------------ placing and replacing (caller holds the lock)
    async def sync(self, entry: BookEntry) -> None:
        """Make the resting stop match the ladder: placed, replaced (bridge first) or cancelled."""
        ctx = self.ctx
        rules = ctx.rules(entry.state.symbol)
        if rules is None or ctx.stopping or ctx.halted:
            return
        if not ctx.cfg.backstop_on_exchange:
            await self.cancel(entry)
            return
        current = entry.backstop_client_id
        bridge = self._is_bridge(current)
        want = ladder.sync_backstop(entry.state, entry.backstop_price if current else None, ctx.cfg, rules)
        if want is None and not bridge:
            return
        price = want.price if want is not None else entry.backstop_price
        assert price is not None
        if current is None or bridge:
            # No closePosition stop rests: place it directly, then retire the bridge.
            placed = await self._place(entry, price, close_position=True)
            if placed is not None and current is not None:
                await self._cancel_one(entry.state.symbol, current)
            return
        # A closePosition stop rests at another price: bridge, cancel, place, retire the bridge.
        new_bridge = await self._place(entry, price, close_position=False)
        if new_bridge is None:
            return  # the old stop keeps protecting the position
        if not await self._cancel_one(entry.state.symbol, current):
            return  # both rest (each reduce-only); the reconciler retires the old one
        if await self._place(entry, price, close_position=True) is not None:
            await self._cancel_one(entry.state.symbol, new_bridge.client_id)

    async def _place(self, entry: BookEntry, price: Decimal, *, close_position: bool) -> StopPlaced | None:
        ctx = self.ctx
        symbol = entry.state.symbol
        outcome = await self.sender.stop(
            position_id=entry.position_id,
            symbol=symbol,
            action="bs" if close_position else "bq",
            trigger_price=price,
            qty=entry.state.qty,
            close_position=close_position,
        )
        if isinstance(outcome, StopPlaced):
            self.ledger.set_backstop(entry, outcome.client_id, price, outcome.algo.algo_id, actor="system")
            return outcome
        what = "backstop" if close_position else "bridge stop"
        if isinstance(outcome, Refused):
            message = f"{what} at {price} refused ({outcome.klass.describes}): {outcome.message}"
        else:
            message = f"{what} at {price}: outcome unknown ({outcome.reason}); the reconciler will check"
        log.warning("%s: %s", symbol, message)
        ctx.notify(ErrorEvent(ts_ms=ctx.clock.now_ms(), symbol=symbol, where="backstop", message=message))
        return None

    async def cancel(self, entry: BookEntry) -> None:
        """The position closed: a closePosition stop outlives it on Binance, so cancel ours."""
        cid = entry.backstop_client_id
        if not cid:
            return
        if await self._cancel_one(entry.state.symbol, cid):
            self.ledger.set_backstop(entry, None, None, None, actor="system")

    async def cancel_stray(self, symbol: str, cid: str) -> bool:
        return await self._cancel_one(symbol, cid)

    async def _cancel_one(self, symbol: str, cid: str) -> bool:
        self._cancelling.add(cid)
        try:
            return await self.sender.cancel_stop(symbol, cid)
        finally:
            self._cancelling.discard(cid)

    def _is_bridge(self, cid: str | None) -> bool:
        parsed = self.ids.ours(cid) if cid else None
        return parsed is not None and parsed.action == "bq"

    # ------------------------------------------------------------------ a stop that ended by itself
    def ended_unfilled(self, ev: AlgoUpdate) -> bool:
        """An update saying one of our current backstops ended without filling (not by our own cancel)."""
        if ev.client_algo_id in self._cancelling:
            return False
        entry = self.ctx.book.get(ev.symbol)
        if entry is None or entry.backstop_client_id != ev.client_algo_id:
            return False
        return ev.status.ended_unfilled or (ev.status is AlgoStatus.FINISHED and ev.executed_qty <= 0)

    async def put_back(self, ev: AlgoUpdate) -> None:
        """Caller holds the lock: the stop ended while its position is open. Record it and place a new one."""
        ctx = self.ctx
        entry = ctx.book.get(ev.symbol)
        if entry is None or entry.backstop_client_id != ev.client_algo_id:
            return  # closed meanwhile, or already replaced
        self.sender.mark_ended(ev.client_algo_id, ev.status)
        self.ledger.set_backstop(entry, None, None, None, actor="exchange")
        await self.sync(entry)
        ctx.notify(
            BackstopLost(
                ts_ms=ctx.clock.now_ms(),
                symbol=ev.symbol,
                status=ev.status,
                client_id=ev.client_algo_id,
                restored_price=entry.backstop_price,
            )
        )
