"""Price updates of held symbols -> DCA and exit actions (SPEC 4-5), at once.

Hot path: a dictionary lookup, a float conversion and one or two float
comparisons against the position's precomputed trigger band. Only when the
price leaves the band does the ladder decide (exact Decimal arithmetic, with
the rules that may not send now passed as blocked: backing off after a
refusal, or waiting for an earlier order's unknown outcome, all in memory).
Between that decision and the order on the wire the only database work is
the sender's journal INSERT. The one other write a price can cause is a
runner's new peak (``PositionLedger.raise_peak``), saved at most once a
second and never ahead of an order.

When the market stream is down or silent, a REST fallback polls the prices
of held symbols every ``fallback_poll_interval_s`` so stops still fire.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal, InvalidOperation

from trading.book import BookEntry
from trading.candles import CandleStore
from trading.context import EngineContext
from trading.core import ladder, signals
from trading.core.ladder import RunnerMA
from trading.core.models import CloseAll, Dca, Sell, SetPeak, Skip
from trading.events import ErrorEvent, OrderSkipped
from trading.exchange.base import ExchangeError
from trading.executor import Executor

log = logging.getLogger("surgedca.monitor")


class Monitor:
    def __init__(self, ctx: EngineContext, executor: Executor, candles: CandleStore | None = None) -> None:
        self.ctx = ctx
        self.executor = executor
        self.candles = candles
        self.ticks = 0
        self.decisions = 0
        self.fallback_polls = 0
        self.stream_up = True

    # ------------------------------------------------------------------ the hot path
    async def on_price(self, symbol: str, price: str) -> None:
        entry = self.ctx.book.get(symbol)
        if entry is None:
            return
        try:
            p = float(price)
        except ValueError:
            return
        self.ticks += 1
        entry.last_px = price
        entry.last_price_ms = self.ctx.clock.now_ms()
        if entry.busy or not entry.outside_band(p):
            return
        await self.decide(entry, price)

    def on_mark(self, symbol: str) -> None:
        """A mark price (ticks every second even when nothing trades): the stream is alive for this symbol, so
        no REST polling is needed; the ladder itself acts on last prices only (SPEC 5)."""
        entry = self.ctx.book.get(symbol)
        if entry is not None:
            entry.last_price_ms = self.ctx.clock.now_ms()

    async def decide(self, entry: BookEntry, price: str, runner: RunnerMA | None = None) -> None:
        ctx = self.ctx
        rules = ctx.rules(entry.state.symbol)
        if rules is None:
            return
        try:
            dec = Decimal(price)
        except InvalidOperation:
            return
        self.decisions += 1
        action = ladder.decide(
            entry.state,
            dec,
            cfg=ctx.cfg,
            rules=rules,
            balance=ctx.account.wallet,
            runner=runner,
            blocked=self.executor.blocked_rules(entry),
        )
        if action is None:
            return
        if isinstance(action, SetPeak):
            self.executor.ledger.raise_peak(entry, action.peak)
        elif isinstance(action, Skip):
            if action.what not in entry.skip_noted:  # once per position, not once per tick
                entry.skip_noted.add(action.what)
                ctx.notify(
                    OrderSkipped(ts_ms=ctx.clock.now_ms(), symbol=action.symbol, what=action.what, why=action.why)
                )
        elif isinstance(action, Dca | Sell | CloseAll) and not ctx.stopping and not ctx.halted:
            await self.executor.dispatch(entry, action)

    async def redecide(self, symbol: str) -> None:
        """Decide again at the latest price (a refused exit's back-off is over, an unknown order resolved)."""
        entry = self.ctx.book.get(symbol)
        if entry is not None and not entry.busy and entry.last_px is not None:
            await self.decide(entry, entry.last_px)

    async def decide_all_now(self) -> int:
        """At start: every held position decided on against the current price at once (not at the next trade:
        the price may have crossed a level while the service was down). Returns how many prices were fed."""
        return await self._poll(self.ctx.book.symbols(), "start-up prices")

    # ------------------------------------------------------------------ at each 1m close
    async def on_minute_closed(self, symbol: str, close: str) -> None:
        """The runner's 3m dead cross is judged on closed minutes (as the scanner's signals are)."""
        entry = self.ctx.book.get(symbol)
        if entry is None:
            return
        entry.last_px = close
        entry.last_price_ms = self.ctx.clock.now_ms()
        if entry.busy:
            return
        runner = None
        if entry.state.half_taken and self.candles is not None and symbol in self.candles:
            runner = signals.runner_ma(
                self.candles.series(symbol, "3m"), self.ctx.cfg.runner_ma_fast, self.ctx.cfg.runner_ma_slow
            )
        if (runner is not None and runner.dead_cross) or entry.outside_band(float(close)):
            await self.decide(entry, close, runner)

    # ------------------------------------------------------------------ REST fallback
    def stale_symbols(self) -> list[str]:
        limit_ms = int(self.ctx.cfg.fallback_poll_interval_s * 1000)
        now = self.ctx.clock.now_ms()
        return [
            e.state.symbol for e in self.ctx.book.entries() if not self.stream_up or now - e.last_price_ms >= limit_ms
        ]

    async def poll_once(self) -> int:
        """Fetch prices of held symbols that had no price for a poll interval; returns how many were fed."""
        fed = await self._poll(self.stale_symbols(), "REST price fallback")
        if fed:
            self.fallback_polls += 1
        return fed

    async def _poll(self, symbols: list[str], what: str) -> int:
        """Prices of ``symbols`` over REST, fed through the hot path as if they came from the stream."""
        if not symbols:
            return 0
        try:
            prices = await self.ctx.port.fetch_prices(symbols)
        except ExchangeError as exc:
            log.warning("%s unavailable (%r)", what, exc)
            return 0
        for symbol, price in prices.items():
            await self.on_price(symbol, str(price))
        return len(prices)

    async def fallback_loop(self) -> None:
        """Runs for the service's lifetime; cheap when the stream is healthy (nothing is stale)."""
        while not self.ctx.stopping:
            await asyncio.sleep(max(0.2, self.ctx.cfg.fallback_poll_interval_s / 3))
            try:
                await self.poll_once()
            except Exception as exc:  # keep polling whatever happens: this is the stops' safety net
                log.exception("fallback poll")
                self.ctx.notify(ErrorEvent(ts_ms=self.ctx.clock.now_ms(), where="fallback", message=repr(exc)))
