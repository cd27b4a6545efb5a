"""The backtest loop: the service's engine over a candle replay, on a clock that only moves when told.

Composition (the same parts ``surgedca run`` uses in sim mode): a ``MarketReplay``
of the candle files, a ``SimBroker`` (taker fee, slippage, tick/step rounding,
lagging-mark stops), ``SimExchange`` as the exchange port, an in-memory SQLite
store, the ``CandleKeeper`` backfill through the port, and the ``Engine``
(scanner, monitor, executor, reconciler) built ``inline``: its order work is
awaited in place, so every decision completes before the next price exists.

Per minute ``replay.step()`` yields, for every symbol with a candle, four
prices (open -> the nearer of high/low -> the other extreme -> close; a tie
visits the low first) and then the closed 1m candle. Each price goes to the
broker first (its resting stops compare against the previous price, a lagging
mark), then the broker's user-data events (a backstop's fill) are applied, then
the engine sees the price. As the live market stream does, the engine is sent
prices only of held symbols and candles only of watched ones (universe + held).

Nothing sleeps: simulated time is the replay's event time.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from storage.db import Database
from trading.backtest.data import MINUTE_MS, CandleData, cut, iso, warmup_ms
from trading.backtest.results import BacktestResult, EquityCurve, collect_result
from trading.candles import CandleKeeper, CandleStore, capacities_for, history_needed
from trading.context import EngineContext
from trading.core.config import StrategyConfig
from trading.engine import Engine
from trading.events import DcaFilled, EngineEvent, EntryFilled
from trading.exchange.base import OrderUpdate, PriceEvent, Side, UserEvent
from trading.exchange.replay import MarketReplay
from trading.exchange.sim import ReplayClock, SimExchange
from trading.exchange.simbroker import SimBroker
from trading.store import Store

log = logging.getLogger("surgedca.backtest")

# The sim port spends no request weight; the keeper's pacing would only wait on a clock that does not move.
UNLIMITED_WEIGHT = 10**9
PROGRESS_EVERY_MINUTES = 240


@dataclass(frozen=True)
class BacktestSpec:
    """One run: the data, the strategy and the account."""

    data: CandleData
    cfg: StrategyConfig
    balance: Decimal = Decimal(1000)
    slippage: Decimal = Decimal("0.0005")
    start_ms: int | None = None  # None: the data's first minute + the signals' warm-up
    end_ms: int | None = None  # exclusive; None: the end of the data
    close_at_end: bool = True  # sell what is still open at the last price, so every trade is complete
    name: str = "backtest"
    source: str = "files"


class RecordingNotifier:
    """Collects the engine's events (what Telegram would be sent) and lets the runner watch fills."""

    def __init__(self, on_event: Callable[[EngineEvent], None] | None = None) -> None:
        self.events: list[EngineEvent] = []
        self.counts: Counter[str] = Counter()
        self._on_event = on_event

    def publish(self, event: EngineEvent) -> None:
        self.events.append(event)
        self.counts[event.kind] += 1
        if self._on_event is not None:
            self._on_event(event)


@dataclass
class _Peaks:
    margin: Decimal = Decimal(0)
    margin_pct: Decimal = Decimal(0)
    positions: int = 0


@dataclass
class Progress:
    """What a progress display is told every few simulated hours."""

    minutes_done: int
    minutes_total: int
    candles: int
    wall_s: float


ProgressFn = Callable[[Progress], None]


@dataclass
class _Counters:
    minutes: int = 0
    candles: int = 0
    buy_wallets: dict[str, Decimal] = field(default_factory=dict)  # client order id -> wallet before the buy


class Backtest:
    """``start()``, then ``run()`` (or ``step_minute()`` one minute at a time), then ``finish()``."""

    def __init__(self, spec: BacktestSpec, *, progress: ProgressFn | None = None) -> None:
        if not spec.balance > 0:
            raise ValueError(f"balance must be positive, got {spec.balance}")
        self.spec = spec
        self.cfg = spec.cfg
        self.progress = progress
        data = cut(spec.data, spec.end_ms)
        if not data:
            raise ValueError("no candles before the end of the window")
        first = min(int(c.open_time[0]) for _, c in data.values())
        self.last_data_ms = max(int(c.open_time[-1]) for _, c in data.values())
        start = spec.start_ms if spec.start_ms is not None else first + warmup_ms(spec.cfg.signals)
        start -= start % MINUTE_MS
        if start > self.last_data_ms:
            if spec.start_ms is None:
                raise ValueError(
                    f"the candles ({iso(first)} .. {iso(self.last_data_ms)}) do not reach past the signals' warm-up "
                    f"({warmup_ms(spec.cfg.signals) // 86_400_000} days): give more data or an earlier --from"
                )
            raise ValueError(f"the window starts ({iso(start)}) after the last candle ({iso(self.last_data_ms)})")
        self.start_ms = start
        self.replay = MarketReplay(data, start_ms=start, source=spec.source)
        # The engine reads the markets once, at start: a symbol whose data begins later is never traded.
        self.not_listed_at_start = sorted(s for s, m in self.replay.markets().items() if not m.trading)
        self.broker = SimBroker(
            None,
            markets=self.replay.markets(),
            balance=spec.balance,
            taker_fee=Decimal(repr(spec.cfg.taker_fee)),
            slippage=spec.slippage,
        )
        self.clock = ReplayClock(self.replay.cursor_ms, speed=None)
        self.broker.now_fn = self.clock.now_ms
        self.port = SimExchange(self.replay, self.broker, self.clock)
        self.db = Database.open(Path(":memory:"))
        self.store = Store.of(self.db)
        self.notifier = RecordingNotifier(self._on_engine_event)
        self.ctx = EngineContext(
            cfg=spec.cfg,
            store=self.store,
            port=self.port,  # type: ignore[arg-type]
            clock=self.clock,
            notifier=self.notifier,
            mode="backtest",
        )
        need = history_needed(spec.cfg.signals)
        self.candles = CandleStore(capacities_for(need))
        self.keeper = CandleKeeper(
            self.candles,
            self.port,  # type: ignore[arg-type]
            need=need,
            clock=self.clock,
            limit_per_minute=UNLIMITED_WEIGHT,
        )
        self.engine = Engine(self.ctx, self.candles, self.keeper, inline=True)
        self.engine.scanner.keep_signal_log = True
        self._queue: deque[UserEvent] = deque()
        self.broker.add_listener(self._on_user_event)
        self._kline_symbols: frozenset[str] = frozenset()
        self._price_symbols: frozenset[str] = frozenset()
        self.equity = EquityCurve()
        self.peaks = _Peaks()
        self.counters = _Counters()
        self.closed_at_end: set[int] = set()
        self.started = False
        self.finished = False
        self._wall_start = 0.0
        self._wall_s = 0.0

    # ------------------------------------------------------------------ set-up
    async def start(self) -> None:
        """What the service does at start: markets, book, reconcile, universe, then the candle backfill."""
        engine = self.engine
        await engine.start()
        result = await self.keeper.backfill(engine.watched_symbols(), self.clock.now_ms())
        if result.failed:
            raise RuntimeError(f"backfill failed: {result.failed}")
        self.ctx.book.listeners.append(self._resubscribe)
        engine.universe_hooks.append(self._resubscribe)
        self._resubscribe()
        await self._deliver()
        self.equity.add(self.clock.now_ms(), self.broker.wallet, self.broker.wallet)
        self.started = True
        self._wall_start = time.perf_counter()

    def _resubscribe(self) -> None:
        """The market stream's subscriptions: candles of watched symbols, prices of held ones."""
        self._kline_symbols = frozenset(self.engine.watched_symbols())
        self._price_symbols = frozenset(self.engine.held_symbols())

    # ------------------------------------------------------------------ the loop
    @property
    def minutes_total(self) -> int:
        return max(1, (self.last_data_ms + MINUTE_MS - self.start_ms) // MINUTE_MS)

    async def run(self) -> None:
        if not self.started:
            await self.start()
        progress = self.progress
        every = PROGRESS_EVERY_MINUTES
        while await self.step_minute():
            if progress is not None and self.counters.minutes % every == 0:
                progress(self._progress())
        if progress is not None:
            progress(self._progress())

    def _progress(self) -> Progress:
        done = (self.replay.cursor_ms - self.start_ms) // MINUTE_MS
        total = self.minutes_total
        return Progress(min(done, total), total, self.counters.candles, time.perf_counter() - self._wall_start)

    async def step_minute(self) -> bool:
        """Play one minute of every symbol that has a candle in it; False when the data is exhausted."""
        batch = self.replay.step()
        if batch is None:
            return False
        clock, broker, engine, queue = self.clock, self.broker, self.engine, self._queue
        on_event = engine.on_market_event
        last_ts = -1
        candles = 0
        for ev in batch:
            ts = ev.event_time
            if ts != last_ts:
                clock.set(ts)
                last_ts = ts
            if type(ev) is PriceEvent:
                broker.on_trade(ev.symbol, ev.price, ts)
                if queue:  # a resting stop filled: its fill is applied before the engine sees the price
                    await self._deliver()
                if ev.symbol not in self._price_symbols:
                    continue
            else:
                candles += 1
                if ev.symbol not in self._kline_symbols:  # type: ignore[union-attr]
                    continue
            await on_event(ev)
            if queue:
                await self._deliver()
        self.counters.minutes += 1
        self.counters.candles += candles
        self._record_equity(self.replay.cursor_ms)
        return True

    async def _deliver(self) -> None:
        """The broker's user-data events, in order, each handled to completion (as the user stream would)."""
        queue, handle = self._queue, self.engine.on_user_event
        while queue:
            await handle(queue.popleft())

    def _on_user_event(self, ev: UserEvent) -> None:
        self._queue.append(ev)
        if type(ev) is OrderUpdate and ev.execution_type == "TRADE" and ev.side is Side.BUY:
            # The broker has booked this buy's fee already: what the wallet was when the order was sized.
            self.counters.buy_wallets[ev.client_order_id] = self.broker.wallet + ev.fee

    def _on_engine_event(self, event: EngineEvent) -> None:
        if isinstance(event, EntryFilled | DcaFilled):
            margin = self.ctx.book.margin_in_use()
            wallet = self.broker.wallet
            self.peaks.margin = max(self.peaks.margin, margin)
            if wallet > 0 and margin / wallet > self.peaks.margin_pct:
                self.peaks.margin_pct = margin / wallet
            self.peaks.positions = max(self.peaks.positions, len(self.ctx.book))

    def _record_equity(self, ts_ms: int) -> None:
        broker = self.broker
        upnl = Decimal(0)
        for symbol, pos in broker.positions.items():
            last = broker.last_price(symbol)
            if last is not None:
                upnl += (last - pos.entry) * pos.qty
        self.equity.add(ts_ms, broker.wallet, broker.wallet + upnl)

    # ------------------------------------------------------------------ the end
    async def finish(self) -> BacktestResult:
        """Close what is still open (``close_at_end``) and gather trades, signals, equity and the summary."""
        if self.finished:
            raise RuntimeError("finish() was already called")
        self.finished = True
        self._wall_s = time.perf_counter() - self._wall_start
        if self.spec.close_at_end:
            for symbol in self.engine.held_symbols():
                entry = self.ctx.book.get(symbol)
                await self.engine.executor.exit_position(symbol, actor="backtest")
                await self._deliver()
                if entry is not None and symbol not in self.ctx.book:
                    self.closed_at_end.add(entry.position_id)
            self._record_equity(self.clock.now_ms())
        return collect_result(self)

    @property
    def wall_s(self) -> float:
        return self._wall_s if self.finished else time.perf_counter() - self._wall_start

    def close(self) -> None:
        self.db.close()


async def run_backtest(spec: BacktestSpec, *, progress: ProgressFn | None = None) -> BacktestResult:
    """One whole run: start, replay to the end of the window, close what is open, gather the results."""
    bt = Backtest(spec, progress=progress)
    try:
        await bt.run()
        return await bt.finish()
    finally:
        await bt.keeper.close()
        bt.close()
