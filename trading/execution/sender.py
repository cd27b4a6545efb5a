"""The order sender: journal row, send, and on an unknown outcome ask the exchange; a typed outcome back.

Order-safety rules 1 and 2. Every order gets its ``pending`` journal row
before it leaves (one INSERT: the only database work between a price and its
order). The reply decides:

- a fill -> ``Filled`` (the caller applies it to the ledger);
- a refusal -> ``Refused`` with Binance's code and its class. HTTP 429/418 and
  ``-1015`` on an order are refusals too: the exchange did not execute it;
- a timeout, a 5xx, ``-1007`` or a lost reply -> the exchange is asked about
  the client id, briefly and at exit priority for exits. A lookup that meets
  a rate limit stops at once: the symbol's lock is never held while waiting
  out ``Retry-After``. Still not known -> ``Unknown``: the resolver settles it
  later, and nothing is sent again in its place before the exchange can no
  longer execute it (its request window has passed and it is confirmed absent).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from storage.errors import UnknownOrder
from trading.context import EngineContext
from trading.core.order_state import OrderKind, OrderState
from trading.core.refusals import RefusalClass, classify_refusal
from trading.exchange.base import (
    AlgoOrder,
    AlgoStatus,
    ExchangeError,
    NotFoundError,
    Order,
    OrderStatus,
    OrderStatusUnknown,
    RateLimitedError,
    RejectedError,
    RetriableError,
    Side,
)
from trading.execution.outcomes import Filled, FillFacts, Refused, SendOutcome, Unknown
from trading.execution.tracker import InFlight, OrderTracker

log = logging.getLogger("surgedca.sender")

UNKNOWN_EXCEPTIONS = (OrderStatusUnknown, RetriableError, asyncio.TimeoutError, OSError)
ERROR_TEXT = 500  # characters of an error kept in the journal


@dataclass(frozen=True, slots=True)
class StopPlaced:
    """An exchange-side stop accepted and resting."""

    client_id: str
    algo: AlgoOrder


StopOutcome = StopPlaced | Refused | Unknown


class OrderSender:
    def __init__(
        self, ctx: EngineContext, tracker: OrderTracker, *, ask_delays: tuple[float, ...] = (0.2, 0.5)
    ) -> None:
        self.ctx = ctx
        self.tracker = tracker
        self._ask_delays = ask_delays
        self.orders_sent = 0
        self.on_refused: Callable[[RefusalClass], None] | None = None  # every refusal's class (the account check)

    # ------------------------------------------------------------------ market orders
    async def market(
        self, *, position_id: int, symbol: str, action: str, side: Side, qty: Decimal, reduce_only: bool
    ) -> tuple[str, SendOutcome]:
        """Send one MARKET order; returns its client id and what became of it."""
        ctx = self.ctx
        cid = self.tracker.next_id(position_id, action)
        now = ctx.clock.now_ms()
        ctx.store.journal.insert_pending(
            cid,
            position_id=position_id,
            symbol=symbol,
            action=action,
            kind=OrderKind.MARKET,
            side=side.value,
            qty=qty,
            reduce_only=reduce_only,
            now_ms=now,
        )
        self.tracker.started(
            InFlight(cid, position_id, symbol, action, side.value, reduce_only, OrderState.PENDING, now)
        )
        try:
            self.orders_sent += 1
            order = await ctx.port.create_market_order(symbol, side, qty, client_order_id=cid, reduce_only=reduce_only)
        except (RejectedError, RateLimitedError) as exc:
            return cid, self._refused(cid, position_id, exc)
        except UNKNOWN_EXCEPTIONS as exc:
            return cid, await self._unknown(cid, position_id, symbol, reduce_only, exc)
        return cid, self.outcome_of(cid, position_id, order)

    def outcome_of(self, cid: str, position_id: int | None, order: Order) -> SendOutcome:
        """What an order the exchange reports means (a reply, or the answer to a lookup)."""
        ctx = self.ctx
        if order.filled_qty > 0 and (order.status.final or order.status is OrderStatus.FILLED):
            return Filled(
                FillFacts(
                    cid,
                    order.avg_price,
                    order.filled_qty,
                    order.fee,
                    order.update_time or ctx.clock.now_ms(),
                    order.order_id,
                    order.raw or None,
                )
            )
        if order.status.final:  # ended with nothing filled (expired, canceled, rejected by the matching engine)
            state = OrderState.REJECTED if order.status is OrderStatus.REJECTED else OrderState.EXPIRED
            ctx.store.journal.mark(
                cid,
                state,
                now_ms=ctx.clock.now_ms(),
                exchange_order_id=order.order_id,
                raw=order.raw or None,
                error=f"exchange status {order.status.value}, nothing filled",
            )
            self.tracker.settled(cid, position_id)
            return Refused(RefusalClass.OTHER, None, f"{order.status.value}: nothing filled")
        return Unknown(f"still {order.status.value} on the exchange")

    def _refused(self, cid: str, position_id: int, exc: ExchangeError) -> Refused:
        ctx = self.ctx
        local = bool(getattr(exc, "local", False))
        ctx.store.journal.mark(
            cid,
            OrderState.REJECTED,
            now_ms=ctx.clock.now_ms(),
            error_code=exc.code if exc.code is not None else (exc.http_status if not local else None),
            error=str(exc)[:ERROR_TEXT],
        )
        self.tracker.settled(cid, position_id)
        klass = classify_refusal(exc.code, exc.http_status)
        if isinstance(exc, RateLimitedError):
            klass = RefusalClass.RATE_LIMIT
        if self.on_refused is not None:
            self.on_refused(klass)
        return Refused(klass, exc.code, str(exc), exc.http_status, local=local)

    async def _unknown(
        self, cid: str, position_id: int, symbol: str, priority: bool, exc: BaseException
    ) -> SendOutcome:
        ctx = self.ctx
        ctx.store.journal.mark(cid, OrderState.UNKNOWN, now_ms=ctx.clock.now_ms(), error=repr(exc)[:ERROR_TEXT])
        self.tracker.unknown(cid, position_id, ctx.clock.now_ms())
        log.warning("order %s outcome unknown (%r): asking the exchange", cid, exc)
        found = await self.ask(symbol, cid, priority=priority)
        if found is None:
            return Unknown(f"{type(exc).__name__}: not found on the exchange yet")
        return self.outcome_of(cid, position_id, found)

    async def ask(self, symbol: str, cid: str, *, priority: bool) -> Order | None:
        """Order-safety rule 2: ask about ``cid`` a few times; the order once it has ended, else None.

        Bounded and never behind a rate limit: a lookup refused for the rate limit ends the asking (the
        resolver settles it later), so whoever holds the symbol's lock is not held up by ``Retry-After``.
        """
        for delay in self._ask_delays:
            await self.ctx.clock.sleep(delay)
            try:
                order = await self.ctx.port.fetch_order(symbol, cid, priority=priority)
            except RateLimitedError:
                return None
            except ExchangeError as exc:
                log.warning("asking about %s failed: %r", cid, exc)
                continue
            if order is not None and order.status.final:
                return order
        return None

    # ------------------------------------------------------------------ exchange-side stops
    async def stop(
        self,
        *,
        position_id: int,
        symbol: str,
        action: str,
        trigger_price: Decimal,
        qty: Decimal,
        close_position: bool,
    ) -> StopOutcome:
        """Place a STOP_MARKET sell on the mark price: ``closePosition`` or reduce-only for ``qty``."""
        ctx = self.ctx
        cid = self.tracker.next_id(position_id, action)
        ctx.store.journal.insert_pending(
            cid,
            position_id=position_id,
            symbol=symbol,
            action=action,
            kind=OrderKind.STOP,
            side=Side.SELL.value,
            qty=qty,
            reduce_only=True,
            trigger_price=trigger_price,
            now_ms=ctx.clock.now_ms(),
        )
        try:
            self.orders_sent += 1
            if close_position:
                algo = await ctx.port.create_stop_market_close(symbol, trigger_price, client_algo_id=cid)
            else:
                algo = await ctx.port.create_stop_market_reduce(symbol, trigger_price, qty, client_algo_id=cid)
        except (RejectedError, RateLimitedError) as exc:
            return self._refused(cid, position_id, exc)
        except UNKNOWN_EXCEPTIONS as exc:
            ctx.store.journal.mark(cid, OrderState.UNKNOWN, now_ms=ctx.clock.now_ms(), error=repr(exc)[:ERROR_TEXT])
            return Unknown(f"{type(exc).__name__}: the reconciler will look for {cid}")
        ctx.store.journal.mark(
            cid, OrderState.SENT, now_ms=ctx.clock.now_ms(), exchange_order_id=algo.algo_id, raw=algo.raw or None
        )
        return StopPlaced(cid, algo)

    def mark_ended(self, cid: str, exchange_status: AlgoStatus) -> None:
        """A stop of ours ended on the exchange without filling (its ALGO_UPDATE said so)."""
        state = {AlgoStatus.CANCELED: OrderState.CANCELED, AlgoStatus.REJECTED: OrderState.REJECTED}.get(
            exchange_status, OrderState.EXPIRED
        )
        with contextlib.suppress(UnknownOrder):
            self.ctx.store.journal.mark(cid, state, now_ms=self.ctx.clock.now_ms(), error=f"ended {exchange_status}")

    async def cancel_stop(self, symbol: str, cid: str) -> bool:
        """Cancel one of our stops; True when it no longer rests (cancelled now, or already gone)."""
        ctx = self.ctx
        try:
            await ctx.port.cancel_algo_order(symbol, cid)
        except NotFoundError:
            pass  # already gone: triggered, expired or cancelled elsewhere
        except ExchangeError as exc:
            log.warning("cancel of stop %s failed: %r (kept; tried again later)", cid, exc)
            return False
        with contextlib.suppress(UnknownOrder):  # not journaled here (a restored backup): nothing to record
            ctx.store.journal.mark(cid, OrderState.CANCELED, now_ms=ctx.clock.now_ms())
        return True
