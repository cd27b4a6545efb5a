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

Listings: the replay's markets say TRADING from a symbol's first candle to its
last, so the engine's hourly universe refresh picks a symbol up when its data
begins and drops it when it ends, as the live refresh sees listings and
delistings. A minute in which no watched symbol has a candle (after one data
period ends, before the next one's symbols are watched) still counts as a
minute for the refresh (``Engine.on_minute``); the time between two periods is
crossed at once, without candles. A position whose symbol's data ends is sold
at its last price (``close_at_end``), as a delisting settles it.

Funding (``spec.funding``): before a minute's first price, every funding time
of a held symbol since the last minute is charged by the broker at the last
price (``SimBroker.apply_funding``), and its ``FUNDING_FEE`` account update is
delivered to the engine.

Fast path (``spec.fast``, the default): a symbol that is neither held nor
resting orders at the broker, at a minute where the 1h pre-filter and the 15m
filter cannot both pass (``quiet.may_signal``, computed over the whole history
up front), cannot do anything in that minute: its prices are not played (the
broker only keeps its close as its last price) and its closed candle only goes
into the candle store (the scanner would stop at the filters). Every other
symbol-minute runs exactly as in the full path, in the same order, so the
trades are the same (tests compare every leg on every data file).

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
from storage.state import INSTANCE_TAG_KEY
from trading.backtest.data import MINUTE_MS, CandleData, cut, iso, warmup_ms
from trading.backtest.funding import FundingSchedule
from trading.backtest.quiet import may_signal_all
from trading.backtest.results import BacktestResult, EquityCurve, collect_result
from trading.candles import CandleKeeper, CandleStore, capacities_for, history_needed
from trading.context import EngineContext
from trading.core.config import StrategyConfig
from trading.engine import Engine
from trading.events import DcaFilled, EngineEvent, EntryFilled
from trading.exchange.base import KlineEvent, OrderUpdate, PriceEvent, Side, UserEvent
from trading.exchange.replay import PRICE_OFFSETS_MS, MarketReplay
from trading.exchange.sim import ReplayClock, SimExchange
from trading.exchange.simbroker import SimBroker
from trading.store import Store

log = logging.getLogger("surgedca.backtest")

# The sim port spends no request weight; the keeper's pacing would only wait on a clock that does not move.
UNLIMITED_WEIGHT = 10**9
BACKTEST_TAG = "bktest"
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
    funding: FundingSchedule | None = None  # None: no funding charged (the sim service charges none either)
    fast: bool = True  # skip symbol-minutes where nothing can happen (same trades; False: replay everything)


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
        # Data that begins after the start joins the universe at the first hourly refresh after it begins.
        self.joined_after_start = {s: int(c.open_time[0]) for s, (_, c) in data.items() if int(c.open_time[0]) > start}
        self.left_before_end = {
            s: int(c.open_time[-1]) for s, (_, c) in data.items() if int(c.open_time[-1]) < self.last_data_ms
        }
        self._may_signal = {}
        if spec.fast:
            full = may_signal_all({s: c for s, (_, c) in spec.data.items()}, spec.cfg.signals)
            self._may_signal = {s: full[s][: len(c)] for s, (_, c) in data.items()}  # causal: a prefix stays true
        self.broker = SimBroker(
            None,
            markets=self.replay.markets(),
            balance=spec.balance,
            taker_fee=spec.cfg.fractions.taker_fee,
            slippage=spec.slippage,
        )
        self.clock = ReplayClock(self.replay.cursor_ms, speed=None)
        self.broker.now_fn = self.clock.now_ms
        self.port = SimExchange(self.replay, self.broker, self.clock)
        self.db = Database.open(Path(":memory:"))
        self.store = Store.of(self.db)
        # A fixed instance tag: the same run writes the same client order ids (trades.csv compares across runs).
        self.store.state.set(INSTANCE_TAG_KEY, BACKTEST_TAG)
        self.notifier = RecordingNotifier(self._on_engine_event)
        self.ctx = EngineContext(
            cfg=spec.cfg,
            store=self.store,
            port=self.port,
            clock=self.clock,
            notifier=self.notifier,
            mode="backtest",
        )
        need = history_needed(spec.cfg.signals)
        self.candles = CandleStore(capacities_for(need))
        self.keeper = CandleKeeper(
            self.candles,
            self.port,
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
        self.funding = spec.funding
        self._funding_upto = start
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
        if self.spec.fast:
            awake = self.broker.active_symbols()
            awake.update(self.ctx.book.symbols())
            split = self.replay.step_split(awake, self._may_signal)
            if split is None:
                return False
            prices, closes, klines = split
            minute = klines[0][0].kline.open_time
            await self._charge_funding(minute)
            await self._play_prices(prices)
            # A quiet symbol has nothing at the broker for its prices to trigger: only its last price is kept
            # (what an order placed on it by hand would fill at).
            on_last, close_ts = self.broker.on_last, minute + PRICE_OFFSETS_MS[-1]
            for symbol, close in closes:
                on_last(symbol, close, close_ts)
            watched = await self._play_klines_fast(klines)
            candles = len(klines)
        else:
            batch = self.replay.step()
            if batch is None:
                return False
            minute = batch[0].event_time - batch[0].event_time % MINUTE_MS
            await self._charge_funding(minute)
            watched, candles = await self._play_full(batch)
        if not watched:  # no watched symbol had a candle: the minute still passed for the universe refresh
            await self.engine.on_minute(minute)
            await self._deliver()
        if self.spec.close_at_end:
            await self._settle_ended()
        self.counters.minutes += 1
        self.counters.candles += candles
        self._record_equity(self.replay.cursor_ms)
        return True

    async def _play_full(self, batch: list[PriceEvent | KlineEvent]) -> tuple[bool, int]:
        """Every event of the minute in order; returns (a watched symbol had a candle, candles played)."""
        clock, broker, queue = self.clock, self.broker, self._queue
        on_event = self.engine.on_market_event
        last_ts = -1
        candles = 0
        watched = False
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
                if ev.symbol not in self._kline_symbols:
                    continue
                watched = True
            await on_event(ev)
            if queue:
                await self._deliver()
        return watched, candles

    async def _play_prices(self, prices: list[PriceEvent]) -> None:
        """The price phase of the fast path: as ``_play_full``, for the awake symbols' prices."""
        clock, broker, queue = self.clock, self.broker, self._queue
        on_event = self.engine.on_market_event
        last_ts = -1
        for ev in prices:
            ts = ev.event_time
            if ts != last_ts:
                clock.set(ts)
                last_ts = ts
            broker.on_trade(ev.symbol, ev.price, ts)
            if queue:
                await self._deliver()
            if ev.symbol not in self._price_symbols:
                continue
            await on_event(ev)
            if queue:
                await self._deliver()

    async def _play_klines_fast(self, klines: list[tuple[KlineEvent, bool]]) -> bool:
        """The candle phase of the fast path. An awake symbol's candle goes to the engine as in the full path;
        a quiet one only into the candle store, and the first watched candle of the minute starts the minute's
        work (``Engine.on_minute``) exactly where the engine would have started it."""
        clock, queue, keeper, engine = self.clock, self._queue, self.keeper, self.engine
        on_event = engine.on_market_event
        clock.set(klines[0][0].event_time)  # every candle of a minute closes at the same time
        watched = False
        for ev, awake in klines:
            if ev.symbol not in self._kline_symbols:
                continue
            if awake:
                await on_event(ev)
            else:
                keeper.on_kline_event(ev)
                if not watched:
                    await engine.on_minute(ev.kline.open_time)
            watched = True
            if queue:
                await self._deliver()
        return watched

    async def _charge_funding(self, minute_ms: int) -> None:
        """Every funding time since the last minute, for the positions held through it (before any price)."""
        funding = self.funding
        if funding is None:
            return
        after, self._funding_upto = self._funding_upto, minute_ms
        if not self.broker.positions:
            return
        due = sorted(
            (ev.time_ms, symbol, ev.rate)
            for symbol in sorted(self.broker.positions)
            for ev in funding.events(symbol, after, minute_ms)
        )
        for ts, symbol, rate in due:
            self.clock.set(ts)
            self.broker.apply_funding(symbol, rate, ts)
            await self._deliver()

    async def _settle_ended(self) -> None:
        """A held symbol whose data has ended leaves the market: sold at its last price, as a delisting."""
        for symbol in self.engine.held_symbols():
            if not self.replay.ended(symbol):
                continue
            entry = self.ctx.book.get(symbol)
            await self.engine.executor.exit_position(symbol, actor="backtest")
            await self._deliver()
            if entry is not None and symbol not in self.ctx.book:
                self.closed_at_end.add(entry.position_id)

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
