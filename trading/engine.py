"""The trading engine: scanner, monitor, executor and reconciler over one context.

Market and user-data events come in, orders go out. The live service feeds
it from WebSocket streams; the backtest feeds it from the replay directly;
both run this same code (parity). The one difference is decided here, once:
live, order work runs as tasks so a price handler never waits for a round
trip; in a replay (``inline``) it is awaited so every decision is done
before the next price exists.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal

from trading.candles import CandleKeeper, CandleStore
from trading.context import EngineContext
from trading.events import ErrorEvent, StreamDown, StreamUp
from trading.exchange.base import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    ExchangeError,
    KlineEvent,
    MarketEvent,
    OrderUpdate,
    PriceEvent,
    StreamStatus,
    UserEvent,
)
from trading.executor import Executor
from trading.monitor import Monitor
from trading.reconciler import Reconciler
from trading.runner import WorkRunner
from trading.scanner import Scanner

log = logging.getLogger("surgedca.engine")

HOUR_MS = 3_600_000
MARKETS_RETRY_MS = 300_000  # a failed markets refresh is tried again after this


class Engine:
    def __init__(
        self, ctx: EngineContext, candles: CandleStore, keeper: CandleKeeper | None = None, *, inline: bool = False
    ) -> None:
        self.ctx = ctx
        self.candles = candles
        self.keeper = keeper
        self.runner = WorkRunner(inline=inline, on_error=self._work_failed)
        self.executor = Executor(ctx, self.runner, ctx.store.client_ids())
        self.monitor = Monitor(ctx, self.executor, candles)
        self.scanner = Scanner(ctx, self.executor, candles)
        self.reconciler = Reconciler(ctx, self.executor)
        self.executor.on_foreign_activity = self.reconciler.request_soon
        self.executor.redecide = self.monitor.redecide
        self.stream_state: dict[str, tuple[bool, int]] = {}  # name -> (up, since ms)
        self.last_minute_ms: int | None = None
        self._refreshing = False
        self.minute_hooks: list[Callable[[int], None]] = []  # once per closed minute (service housekeeping)
        self.universe_hooks: list[Callable[[], None]] = []  # the universe changed (stream subscriptions)

    def _work_failed(self, exc: BaseException) -> None:
        self.ctx.notify(ErrorEvent(ts_ms=self.ctx.clock.now_ms(), where="executor", message=repr(exc)))

    # ------------------------------------------------------------------ start-up
    async def load_markets(self) -> None:
        self.ctx.markets = await self.ctx.port.load_markets()

    async def start(self) -> None:
        """Markets, cached flags, balance, the book, then rule 3 + a full reconcile, the universe, and a
        decision for every held position at the current price."""
        ctx = self.ctx
        await self.load_markets()
        ctx.load_flags()
        balance = await ctx.port.fetch_balance()
        ctx.account.wallet, ctx.account.available = balance.wallet, balance.available
        ctx.account.updated_ms = ctx.clock.now_ms()
        self.executor.load()
        report = await self.reconciler.run(actor="startup")
        log.info(
            "start-up reconcile: %d findings%s", len(report.items), f" (error: {report.error})" if report.error else ""
        )
        await self.scanner.refresh_universe()
        await self.monitor.decide_all_now()

    def held_symbols(self) -> list[str]:
        return self.ctx.book.symbols()

    def watched_symbols(self) -> list[str]:
        """Everything whose candles we keep: the universe plus what we hold."""
        return list(dict.fromkeys([*self.scanner.universe.symbols, *self.held_symbols()]))

    # ------------------------------------------------------------------ events
    async def on_market_event(self, ev: MarketEvent) -> None:
        if isinstance(ev, PriceEvent):
            if ev.kind == "last":
                await self.monitor.on_price(ev.symbol, ev.price)
            else:
                self.monitor.on_mark(ev.symbol)
        elif isinstance(ev, KlineEvent):
            if ev.interval != "1m":
                return
            k = ev.kline
            if not k.closed:
                await self.monitor.on_price(ev.symbol, repr(k.close))
                return
            if self.keeper is not None:
                self.keeper.on_kline_event(ev)
            else:
                self.candles.on_closed_1m(ev.symbol, k)
            await self.on_minute(k.open_time)
            await self.monitor.on_minute_closed(ev.symbol, repr(k.close))
            await self.scanner.on_minute_closed(ev.symbol, k.open_time)
        elif isinstance(ev, StreamStatus):
            self.on_stream_status(ev)

    async def on_minute(self, minute_ms: int) -> None:
        """The once-per-minute work (service hooks, the hourly universe refresh) of the minute opened at
        ``minute_ms``; later calls for the same minute do nothing. A closed candle of a watched symbol calls it;
        a replay also calls it for a minute in which no watched symbol had a candle (its data ended, the next
        period's symbols are not watched yet), so that listings are still picked up by the refresh."""
        if self._minute(minute_ms):
            await self.runner.run(self._refresh_universe())

    async def on_user_event(self, ev: UserEvent) -> None:
        """One user-data event (fills are applied as tasks live, in place in a replay)."""
        if isinstance(ev, OrderUpdate):
            await self.executor.on_order_update(ev)
        elif isinstance(ev, AlgoUpdate):
            await self.executor.on_algo_update(ev)
        elif isinstance(ev, AccountUpdate):
            self._on_account(ev)
            await self.executor.funding.on_account_update(ev)
        elif isinstance(ev, AccountConfigUpdate):
            self._on_account_config(ev)
        elif isinstance(ev, StreamStatus):
            self.on_stream_status(ev)

    def _on_account(self, ev: AccountUpdate) -> None:
        ctx = self.ctx
        if ev.wallet_balance is not None:
            ctx.account.wallet = ev.wallet_balance
            ctx.account.updated_ms = ctx.clock.now_ms()
        for p in ev.positions:
            entry = ctx.book.get(p.symbol)
            held = entry.state.qty if entry is not None else Decimal(0)
            if p.qty != held and not (entry is not None and entry.busy):
                # Our own fills also produce ACCOUNT_UPDATEs; the reconciler re-checks shortly and leaves a
                # symbol alone while an order of ours is in flight.
                self.reconciler.request_soon(p.symbol)

    def _on_account_config(self, ev: AccountConfigUpdate) -> None:
        if ev.multi_assets is not None:
            # The account check decides what the mode means; a reconcile runs it first, within a second.
            turned = "on" if ev.multi_assets else "off"
            log.warning("the account's Multi-Assets mode was turned %s outside the service", turned)
            self.reconciler.request_soon()
        if ev.symbol is not None and ev.symbol in self.ctx.book:
            log.warning(
                "the leverage of held %s was changed to %sx outside the service: its margin and liquidation price "
                "are no longer the ones its entry was sized for",
                ev.symbol,
                ev.leverage,
            )

    def on_stream_status(self, ev: StreamStatus) -> None:
        ctx = self.ctx
        was_up, since = self.stream_state.get(ev.name, (True, ev.event_time))
        self.stream_state[ev.name] = (ev.up, ev.event_time if was_up != ev.up else since)
        if ev.name.startswith("market"):
            self.monitor.stream_up = all(up for name, (up, _) in self.stream_state.items() if name.startswith("market"))
        if was_up and not ev.up:
            ctx.notify(StreamDown(ts_ms=ctx.clock.now_ms(), name=ev.name, detail=ev.detail))
        elif not was_up and ev.up:
            ctx.notify(StreamUp(ts_ms=ctx.clock.now_ms(), name=ev.name, down_for_s=(ev.event_time - since) / 1000))

    def _minute(self, minute_ms: int) -> bool:
        """Once per closed minute (the first symbol's close): service hooks; True when the hourly universe
        refresh is due (by market time, so sim and backtest refresh as live does)."""
        if self.last_minute_ms is not None and minute_ms <= self.last_minute_ms:
            return False
        self.last_minute_ms = minute_ms
        for hook in self.minute_hooks:
            try:
                hook(minute_ms)
            except Exception:  # housekeeping must never stop trading
                log.exception("minute hook failed")
        return self.ctx.clock.now_ms() - self.scanner.universe.refreshed_ms >= HOUR_MS

    async def _refresh_universe(self) -> None:
        if self._refreshing:
            return
        self._refreshing = True
        try:
            before = set(self.scanner.universe.symbols)
            markets_fresh = True
            try:
                self.ctx.markets = await self.ctx.port.load_markets()  # listings and delistings (weight 1)
            except ExchangeError as exc:
                markets_fresh = False
                log.warning("markets not refreshed (%r); keeping the known ones, retrying in 5 minutes", exc)
            await self.scanner.refresh_universe()
            if not markets_fresh:
                # A delisting announced meanwhile is only seen in fresh markets: try again soon, not in an hour.
                self.scanner.universe.refreshed_ms = self.ctx.clock.now_ms() - HOUR_MS + MARKETS_RETRY_MS
            after = set(self.scanner.universe.symbols)
            if after == before:
                return
            if self.keeper is not None:
                held = set(self.held_symbols())
                self.keeper.remove_symbols(before - after - held)
                await self.keeper.add_symbols(sorted(after - before))
            for hook in self.universe_hooks:
                hook()
        finally:
            self._refreshing = False

    # ------------------------------------------------------------------ views helpers
    def unrealized(self) -> Decimal:
        total = Decimal(0)
        for e in self.ctx.book.entries():
            last = e.last_price
            if last is not None:
                total += (last - e.state.avg_price) * e.state.qty
        return total
