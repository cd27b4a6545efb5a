"""The product the bot's tests talk to: the real ``ServiceApi`` over the real ``Engine`` on the simulated exchange.

Assembled as ``surgedca run`` assembles sim mode, minus the streams' pacing: a ``SimBroker`` and a
``MarketReplay`` behind ``SimExchange``, a temporary SQLite file with every migration, the engine built live
(order work runs as tasks), the candle backfill, and the broker's user-data events pumped into the engine as
the service's user pump does. The market is small and made up: a week of gently waving 1m candles per symbol
ending at a chosen price, with ``file_market``'s trading rules (tick from the prices, Binance's minimum
notional). Time is one ``ManualClock`` shared by the engine, the broker and the bot's confirmations.

The test plays the market: :meth:`SimService.trade` prints a trade on the exchange (its stops see it) and
hands the price to the engine, as the market stream would; :meth:`SimService.play_minutes` plays whole
minutes (closed candles: scans, the minute's housekeeping). Positions are made only through the product's
own paths: a signal's entry through the executor, DCA legs by moving the price through their triggers, a
position opened by hand on the exchange adopted through the ledger. :meth:`SimService.settle` waits (bounded)
until the engine has finished everything it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import math
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from storage.audit import AuditRow
from storage.db import Database
from trading.api import CountingNotifier, ServiceApi
from trading.book import BookEntry
from trading.candles import CandleKeeper, CandleStore, capacities_for, history_needed
from trading.charts.renderer import ChartRenderer, WorkerKind
from trading.clock import ManualClock
from trading.context import EngineContext
from trading.core.config import StrategyConfig
from trading.core.models import Stage
from trading.core.series import OHLCV
from trading.engine import Engine
from trading.events import EngineEvent
from trading.exchange.base import KlineEvent, Market, Order, PriceEvent, Side, Trade
from trading.exchange.replay import MarketReplay, file_market
from trading.exchange.sim import SimExchange, SimUserStream
from trading.exchange.simbroker import SimBroker
from trading.service import Service
from trading.settings import Settings
from trading.store import Store

MINUTE_MS = 60_000
DAY_MS = 86_400_000
HISTORY_DAYS = 8  # the signals read ~7 days (15m MA480 + look-back, 7 daily candles)
AHEAD_MINUTES = 120  # candles after the start, for tests that play minutes
UNLIMITED_WEIGHT = 10**9  # the simulated exchange spends no request weight (as the service sets it in sim mode)


@dataclass(frozen=True)
class Listing:
    """A symbol of the test market: its price now; one that ``opens_in_minutes`` is listed but not trading yet
    (Binance's PENDING_TRADING: no candles, not scanned)."""

    symbol: str
    price: str
    quote_volume_m: float = 100.0  # 24h quote volume in millions of USDT (orders the universe)
    opens_in_minutes: int = 0


MARKET: tuple[Listing, ...] = (
    Listing("BTCUSDT", "64000", 9000),
    Listing("ETHUSDT", "2500", 5000),
    Listing("SOLUSDT", "150", 900),
    Listing("DOGEUSDT", "0.20000", 500),
    Listing("XRPUSDT", "0.5000", 450),
    Listing("WIFUSDT", "2.310", 120),
    Listing("SUIUSDT", "3.5000", 300),
    Listing("1000PEPEUSDT", "0.0100000", 200),
    Listing("FRESHUSDT", "1.000", 50, opens_in_minutes=30),  # announced: trading starts in half an hour
)


def _decimals(price: str) -> int:
    return len(price.split(".")[1]) if "." in price else 0


def listing_candles(listing: Listing, end_ms: int, ahead_minutes: int = AHEAD_MINUTES) -> OHLCV:
    """1m candles of ``listing`` up to ``end_ms`` (their last close is exactly its price), then ``ahead_minutes``
    more at that price, so minutes played by a test do not move it. Two slow waves (+-0.6 %) in between: enough
    movement for every indicator to be defined, far from any strategy trigger. A listing not open yet has only
    the candles after its opening."""
    n = HISTORY_DAYS * 1440
    start = end_ms - n * MINUTE_MS
    minutes = np.arange(n + ahead_minutes, dtype=np.int64)
    open_time = start + minutes * MINUTE_MS
    base = float(listing.price)
    d = _decimals(listing.price)
    to_end = (minutes + 1 - n).astype(np.float64)  # 0 at the close of the last candle before end_ms
    wave = 0.004 * np.sin(2 * math.pi * to_end / 97.0) + 0.002 * np.sin(2 * math.pi * to_end / 23.0)
    wave[n:] = 0.0
    close = np.round(base * (1 + wave), d)
    opens = np.concatenate([[close[0]], close[:-1]])
    high = np.round(np.maximum(opens, close) * (1 + 0.0005), d)
    low = np.round(np.minimum(opens, close) * (1 - 0.0005), d)
    high[n:] = low[n:] = close[n:]
    volume = np.full(n + ahead_minutes, listing.quote_volume_m * 1e6 / 1440 / base)
    keep = slice(n + listing.opens_in_minutes if listing.opens_in_minutes else 0, None)
    return OHLCV(open_time[keep], opens[keep], high[keep], low[keep], close[keep], volume[keep])


def market_data(listings: Iterable[Listing], start_ms: int) -> dict[str, tuple[Market, OHLCV]]:
    data = {}
    for listing in listings:
        candles = listing_candles(listing, start_ms)
        data[listing.symbol] = (file_market(listing.symbol, candles), candles)
    return data


class ServiceCalls:
    """What the bot asked the service: a transparent proxy in front of the real ``ServiceApi`` (every call goes
    through to it, results and errors unchanged); only lets a test count calls, e.g. that a stranger's
    command never reached the service at all."""

    def __init__(self, api: ServiceApi) -> None:
        self._api = api
        self.calls: list[tuple[Any, ...]] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._api, name)
        if name.startswith("_") or not callable(attr):
            return attr
        calls = self.calls
        if inspect.iscoroutinefunction(attr):

            async def recorded(*args: Any, **kwargs: Any) -> Any:
                calls.append((name, *args, *kwargs.values()))
                return await attr(*args, **kwargs)

            return recorded

        def recorded_sync(*args: Any, **kwargs: Any) -> Any:
            calls.append((name, *args, *kwargs.values()))
            return attr(*args, **kwargs)

        return recorded_sync

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c[0] == method)


class SimService:
    """The engine, its API and the simulated exchange over one SQLite file. ``await start()``, ``await close()``."""

    def __init__(
        self,
        db_path: Path,
        clock: ManualClock,
        *,
        listings: Iterable[Listing] = MARKET,
        cfg: StrategyConfig | None = None,
        balance: Decimal = Decimal(1000),
        mode: str = "sim",
    ) -> None:
        self.db_path = db_path
        self.clock = clock
        self.events: list[EngineEvent] = []
        start_ms = clock.now_ms() - clock.now_ms() % MINUTE_MS
        self.replay = MarketReplay(market_data(listings, start_ms), start_ms=start_ms, source="bot-tests")
        self.db = Database.open(db_path)
        self.store = Store.of(self.db)
        cfg = cfg or StrategyConfig()
        self.broker = SimBroker(
            self.db.conn,
            account="sim",
            markets=self.replay.markets(),
            balance=balance,
            taker_fee=Decimal(repr(cfg.taker_fee)),
            slippage=Decimal(0),  # fills at the price the test printed: the figures the bot shows are exact
            now_ms=clock.now_ms,
        )
        for symbol in self.replay.symbols:
            price = self.replay.last_price(symbol)
            if price is not None:  # a listing not open yet has no price
                self.broker.on_price(symbol, price, clock.now_ms())
        self.port = SimExchange(self.replay, self.broker)
        self.user = SimUserStream(self.broker)
        self.alerts: list[Callable[[EngineEvent], None]] = []  # where the service's alerts also go (the notifier)
        counting = CountingNotifier(_Collect(self.events, self.alerts), clock.now_ms)
        self.ctx = EngineContext(cfg=cfg, store=self.store, port=self.port, clock=clock, notifier=counting, mode=mode)  # type: ignore[arg-type]
        need = history_needed(cfg.signals)
        self.candles = CandleStore(capacities_for(need))
        keeper = CandleKeeper(self.candles, self.port, need=need, clock=clock, limit_per_minute=UNLIMITED_WEIGHT)  # type: ignore[arg-type]
        self.engine = Engine(self.ctx, self.candles, keeper)
        # Charts drawn on a thread: the worker process of the service is the e2e tests' business.
        self.api = ServiceApi(self.engine, mode=mode, errors=counting, charts=ChartRenderer(kind=WorkerKind.THREAD))
        # The service's own once-a-minute housekeeping (the equity log /report draws), on this engine.
        housekeeping = Service(Settings(_env_file=None, db_path=db_path))  # type: ignore[call-arg]
        housekeeping.engine = self.engine
        self.engine.minute_hooks.append(housekeeping._each_minute)
        self._pump: asyncio.Task[None] | None = None
        self._manual = 0

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> SimService:
        await self.engine.start()
        assert self.engine.keeper is not None
        await self.engine.keeper.backfill(self.engine.watched_symbols(), self.clock.now_ms())
        self._pump = asyncio.create_task(self._pump_user(), name="user-pump")
        return self

    @contextlib.asynccontextmanager
    async def user_stream_down(self) -> AsyncIterator[None]:
        """The user-data stream is disconnected meanwhile: what the exchange does is not pushed to the service
        (Binance does not replay it on reconnect); only a reconcile finds it."""
        await self.settle()
        await self.user.close()
        assert self._pump is not None
        await asyncio.wait_for(self._pump, 5)
        try:
            yield
        finally:
            self.user = SimUserStream(self.broker)
            self._pump = asyncio.create_task(self._pump_user(), name="user-pump")

    async def close(self) -> None:
        self.ctx.stopping = True
        await self.engine.runner.drain(5)
        await self.user.close()
        if self._pump is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._pump, 5)
        if self.engine.keeper is not None:
            await self.engine.keeper.close()
        self.api.charts.close()
        self.db.close()

    async def _pump_user(self) -> None:
        async for ev in self.user.events():
            await self.engine.on_user_event(ev)

    async def settle(self, within: float = 5.0) -> None:
        """Bounded: every user-data event handed to the engine and every piece of order work it started, done."""
        runner = self.engine.runner
        deadline = time.monotonic() + within
        while self.user.pending() or runner.in_flight or self.engine.executor.admission.count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the engine was still busy after {within} s")
            await asyncio.sleep(0.001)
        await asyncio.sleep(0)

    # ------------------------------------------------------------------ the market
    async def trade(self, symbol: str, price: str | Decimal) -> None:
        """A trade prints at ``price``: the exchange's stops see it, then the engine (as the market stream)."""
        p = str(price)
        now = self.clock.now_ms()
        self.broker.on_trade(symbol, p, now)
        await self.settle()  # a stop the price filled reaches the engine first, as the user stream's would
        await self.engine.on_market_event(PriceEvent(symbol, p, now, "last"))
        await self.settle()

    async def play_minutes(self, n: int) -> None:
        """Play ``n`` minutes of the replay (prices, then the closed candles) on the clock, as the sim stream does."""
        for _ in range(n):
            events = self.replay.step()
            assert events is not None, "the test market has no more candles"
            for ev in events:
                self.clock.set(max(self.clock.now_ms(), ev.event_time))
                if isinstance(ev, PriceEvent):
                    self.broker.on_trade(ev.symbol, ev.price, ev.event_time)
                    await self.settle()
                    if ev.symbol not in self.ctx.book:
                        continue  # the stream sends prices of held symbols only
                elif isinstance(ev, KlineEvent) and ev.symbol not in self.engine.watched_symbols():
                    continue
                await self.engine.on_market_event(ev)
                await self.settle()

    def price(self, symbol: str) -> Decimal:
        last = self.broker.last_price(symbol)
        assert last is not None, symbol
        return last

    # ------------------------------------------------------------------ positions, through the product
    async def enter(self, symbol: str, price: str | Decimal | None = None) -> BookEntry:
        """A signal's entry at ``price`` (default: the market's), through the executor as the scanner does it."""
        if price is not None:
            await self.trade(symbol, price)
        pid = await self.engine.executor.enter(symbol, self.price(symbol))
        await self.settle()
        entry = self.ctx.book.get(symbol)
        assert pid is not None and entry is not None and entry.position_id == pid, f"no entry on {symbol}"
        return entry

    async def open_position(
        self,
        symbol: str,
        entry_price: str | Decimal | None = None,
        *,
        stage: Stage = Stage.INITIAL,
        last_price: str | Decimal | None = None,
    ) -> BookEntry:
        """A position at ``stage``: the entry, then the price down through each DCA trigger (the monitor buys),
        then ``last_price`` (default: the entry price)."""
        entry = await self.enter(symbol, entry_price)
        initial = entry.state.legs[0].price
        cfg = self.ctx.cfg
        for level in (Stage.FIRST_DCA, Stage.SECOND_DCA):
            if stage is Stage.INITIAL or (stage is Stage.FIRST_DCA and level is Stage.SECOND_DCA):
                break
            rules = self.ctx.rules(symbol)
            assert rules is not None
            trigger = rules.round_price_down(initial * (1 + cfg.trigger_for(level)))
            await self.trade(symbol, trigger)
            entry = self.ctx.book.get(symbol)
            assert entry is not None and entry.state.stage is level, f"{symbol}: no {level.value} at {trigger}"
        await self.trade(symbol, last_price if last_price is not None else initial)
        entry = self.ctx.book.get(symbol)
        assert entry is not None and entry.state.stage is stage, f"{symbol} is not at {stage.value}: {entry}"
        return entry

    def buy_by_hand(self, symbol: str, qty: str | Decimal) -> Order:
        """An order placed on the exchange outside the service (the app, another tool)."""
        self._manual += 1
        return self.broker.market_order(symbol, Side.BUY, Decimal(qty), client_order_id=f"web_{self._manual}")

    def sell_by_hand(self, symbol: str, qty: str | Decimal) -> Order:
        self._manual += 1
        return self.broker.market_order(
            symbol, Side.SELL, Decimal(qty), client_order_id=f"web_{self._manual}", reduce_only=True
        )

    async def adopt(self, symbol: str, notional: str | Decimal = "150") -> BookEntry:
        """A long opened by hand on the exchange, taken over by the service (the ledger's adoption, as the
        reconciler does it). It has no price yet: the next trade gives it one."""
        rules = self.ctx.rules(symbol)
        assert rules is not None
        qty = rules.round_qty(Decimal(notional) / self.price(symbol))
        self.buy_by_hand(symbol, qty)
        await self.settle()
        pos = {p.symbol: p for p in self.broker.position_list()}[symbol]
        ex = self.engine.executor
        async with ex.lock(symbol):
            entry = ex.ledger.adopt(symbol, pos.qty, pos.entry_price, actor="reconciler")
            await ex.keeper.sync(entry)
        return entry

    # ------------------------------------------------------------------ what happened
    def audit(self, *, since_id: int = 0, actor: str | None = None) -> list[AuditRow]:
        """Audit rows, oldest first (only those after ``since_id``, only ``actor``'s)."""
        rows = self.store.audit.recent(10_000, actor=actor)
        return sorted((r for r in rows if r.id > since_id), key=lambda r: r.id)

    def last_audit_id(self) -> int:
        rows = self.store.audit.recent(1)
        return rows[0].id if rows else 0

    def sells(self, symbol: str) -> list[Trade]:
        """Every SELL the exchange filled on ``symbol`` (the service's, a stop's, or by hand)."""
        return [t for t in self.broker.trades(symbol) if t.side is Side.SELL]


class _Collect:
    def __init__(self, into: list[EngineEvent], also: list[Callable[[EngineEvent], None]]) -> None:
        self.into = into
        self.also = also

    def publish(self, event: EngineEvent) -> None:
        self.into.append(event)
        for publish in self.also:
            publish(event)
