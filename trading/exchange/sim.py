"""Offline simulation (``TRADING_MODE=sim``, the default): the replay's market, the broker's fills.

- ``SimExchange``: the ``ExchangePort`` over a ``MarketReplay`` (markets,
  klines, tickers, prices: the history already played) and a ``SimBroker``
  (wallet, positions, orders, stops).
- ``SimMarketStream``: plays the replay minute by minute at ``speed``
  simulated seconds per wall second. Each price goes to the broker first, then
  to the engine (only the symbols it asked for; the broker sees them all).
- ``SimUserStream``: the broker's user-data events, as the live stream sends
  them.
- ``ReplayClock``: the engine's clock in sim mode; its time is the replay's
  simulated time, so cooldowns, daily statistics and the scheduler follow the
  simulation. ``sleep`` waits the scaled wall time.

Step-driven use (the backtest) needs none of the streams: call
``replay.step()`` with the broker attached (``MarketReplay(..., broker=...)``)
and drive ``ReplayClock(speed=None)`` with ``set()``.

Default speed (``SIM_SPEED``): 300, five simulated minutes per wall second, a
simulated day in under five wall minutes. The synthetic market's first surge
dips come ~35 minutes after the warm-up and then every ~47 minutes, so ``make
run`` shows its first entry after about seven wall seconds and the next ones
about every ten; 60 (one simulated minute per wall second) is easier to follow.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from trading.core.decimals import decimal_of
from trading.exchange.base import (
    AccountConfig,
    AlgoOrder,
    Balance,
    ExchangeBundle,
    ExchangePosition,
    ForceOrder,
    FundingIncome,
    Kline,
    KlineEvent,
    Market,
    MarketEvent,
    Order,
    PositionMode,
    PriceEvent,
    RejectedError,
    Side,
    StreamStatus,
    Ticker24h,
    Trade,
    UserEvent,
)
from trading.exchange.replay import MarketReplay
from trading.exchange.simbroker import SimBroker
from trading.settings import StartupError

if TYPE_CHECKING:
    from trading.settings import Settings

log = logging.getLogger(__name__)

MINUTE_MS = 60_000
CURSOR_SAVE_EVERY_MS = 60 * MINUTE_MS  # the cursor is also saved with every fill and on close
USER_CATCH_UP_YIELDS = 50  # event-loop turns the user stream's consumer gets after a stop fill (never waits longer)
MAX_LAG_S = 1.0  # a consumer this far behind: stop trying to catch up (no bursts), let simulated time slow down


class SimStateMismatch(StartupError):
    """The database holds a simulated account made from other market data."""


# ------------------------------------------------------------------ clock
class ReplayClock:
    """``trading.clock.Clock`` whose time is the replay's simulated time.

    With a ``speed`` the time runs on between two events at ``speed`` x wall
    time, but never past the next event the stream has not delivered yet
    (``cap``) and never backwards. With ``speed=None`` (step-driven) it only
    moves when told (``set``) and ``sleep`` just yields.
    """

    def __init__(self, start_ms: int, speed: float | None = 60.0) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._anchor_ms = float(start_ms)
        self._anchor_wall = time.monotonic()
        self._cap: float | None = float(start_ms)
        self._last = float(start_ms)

    def anchor(self, sim_ms: int, cap_ms: int | None = None) -> None:
        """The stream delivered an event of time ``sim_ms``; the next one is at ``cap_ms``."""
        self._anchor_ms = max(float(sim_ms), self._last)
        self._anchor_wall = time.monotonic()
        self._cap = None if cap_ms is None else float(cap_ms)

    def set(self, ms: int) -> None:
        self.anchor(ms, ms)

    def now_ms(self) -> int:
        if self.speed is None:
            now = self._anchor_ms
        else:
            now = self._anchor_ms + (time.monotonic() - self._anchor_wall) * self.speed * 1000.0
            if self._cap is not None and now > self._cap:
                now = self._cap
        now = max(now, self._last)
        self._last = now
        return int(now)

    def monotonic(self) -> float:
        return self.now_ms() / 1000.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed if self.speed else 0)


# ------------------------------------------------------------------ streams
class SimUserStream:
    """The broker's user-data events, in order, to one consumer."""

    def __init__(self, broker: SimBroker) -> None:
        self._broker = broker
        self._queue: asyncio.Queue[UserEvent | None] = asyncio.Queue()
        self._closed = False
        broker.add_listener(self._queue.put_nowait)

    async def events(self) -> AsyncIterator[UserEvent]:
        while not self._closed:
            event = await self._queue.get()
            if event is None:
                return
            yield event

    def pending(self) -> int:
        return self._queue.qsize()

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._broker.remove_listener(self._queue.put_nowait)
            self._queue.put_nowait(None)


class SimMarketStream:
    """Plays the replay at ``speed`` (simulated seconds per wall second); the broker sees every price first."""

    def __init__(
        self,
        replay: MarketReplay,
        broker: SimBroker,
        clock: ReplayClock,
        speed: float | None,
        user: SimUserStream | None = None,
    ) -> None:
        if replay.broker is not None:
            raise ValueError("the stream feeds the broker itself: build the replay without one")
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.replay = replay
        self.broker = broker
        self.clock = clock
        self.speed = speed
        self.user = user  # when a price fills a stop, its consumer gets to see the fill first
        self._kline_symbols: frozenset[str] | None = None  # None: every symbol (until set_symbols)
        self._price_symbols: frozenset[str] | None = None
        self._closed = asyncio.Event()
        self._last_emit: float | None = None
        self._last_cursor_save = replay.cursor_ms
        self.finished = False

    async def set_symbols(self, kline_symbols: Sequence[str], price_symbols: Sequence[str]) -> None:
        self._kline_symbols = frozenset(kline_symbols)
        self._price_symbols = frozenset(price_symbols)

    def last_message_age(self) -> float | None:
        return None if self._last_emit is None else time.monotonic() - self._last_emit

    def _wanted(self, event: MarketEvent) -> bool:
        if isinstance(event, PriceEvent):
            return self._price_symbols is None or event.symbol in self._price_symbols
        if isinstance(event, KlineEvent):
            return self._kline_symbols is None or event.symbol in self._kline_symbols
        return True

    async def events(self) -> AsyncIterator[MarketEvent]:
        loop = asyncio.get_running_loop()
        wall_next: float | None = None  # wall time at which the next minute should start
        while not self._closed.is_set():
            minute_ms = self.replay.cursor_ms
            batch = self.replay.step()
            if batch is None:
                self.finished = True
                self.broker.flush()
                yield StreamStatus("sim", False, "the replay reached the end of its data", self.replay.cursor_ms)
                await self._closed.wait()
                return
            self.broker.cursor_ms = self.replay.cursor_ms
            first_ms = batch[0].event_time if batch else minute_ms
            minute_ms = first_ms - first_ms % MINUTE_MS
            now = loop.time()
            base = now if wall_next is None or now - wall_next > MAX_LAG_S else wall_next
            for i, event in enumerate(batch):
                ts = event.event_time
                if self.speed is not None:
                    delay = base + (ts - minute_ms) / 1000.0 / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    if self._closed.is_set():
                        return
                else:
                    # As fast as possible, yet one loop turn per event: the engine's order tasks for the
                    # previous price run to completion before the next price exists (deterministic replays).
                    await asyncio.sleep(0)
                nxt = batch[i + 1].event_time if i + 1 < len(batch) else minute_ms + MINUTE_MS
                self.clock.anchor(ts, nxt)
                if isinstance(event, PriceEvent):
                    emitted = self.broker.events_emitted
                    self.broker.on_trade(event.symbol, event.price, ts)  # the broker's stops see a lagging mark
                    if self.broker.events_emitted != emitted:
                        await self._user_catch_up()
                if self._wanted(event):
                    self._last_emit = time.monotonic()
                    yield event
            wall_next = base + 60.0 / self.speed if self.speed is not None else None
            if self.replay.cursor_ms - self._last_cursor_save >= CURSOR_SAVE_EVERY_MS:
                self.broker.flush()
                self._last_cursor_save = self.replay.cursor_ms

    async def _user_catch_up(self) -> None:
        """A stop just filled: let the user-stream consumer take the fill before the engine sees the price that
        caused it (on Binance the fill is pushed as the mark price crosses; the engine would not race its own
        stop against a position that is already closed)."""
        if self.user is None:
            return
        for _ in range(USER_CATCH_UP_YIELDS):
            await asyncio.sleep(0)
            if self.user.pending() == 0:
                break
        await asyncio.sleep(0)  # and one more turn for its handler

    async def close(self) -> None:
        self._closed.set()
        self.broker.flush()


# ------------------------------------------------------------------ the port
class SimAccount:
    """The account reads of ``ExchangePort`` a ``SimBroker`` answers: the sim and paper adapters share them."""

    broker: SimBroker

    async def fetch_balance(self) -> Balance:
        return self.broker.balance()

    async def fetch_positions(self) -> list[ExchangePosition]:
        return self.broker.position_list()

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        return []  # MARKET orders fill at once; nothing ever rests on the book

    async def fetch_open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        return self.broker.open_algo_orders(symbol)

    async def fetch_order(self, symbol: str, client_order_id: str, *, priority: bool = False) -> Order | None:
        return self.broker.order(symbol, client_order_id)

    async def fetch_trades(self, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None) -> list[Trade]:
        return [t for t in self.broker.trades(symbol, start_ms) if end_ms is None or t.time <= end_ms]

    async def fetch_force_orders(self, symbol: str, *, start_ms: int, end_ms: int | None = None) -> list[ForceOrder]:
        return []  # the simulated account is never liquidated (its stops come first)

    async def fetch_account_config(self) -> AccountConfig:
        return AccountConfig(PositionMode.ONE_WAY, multi_assets=False)  # the simulated account: one-way, USDT only

    async def set_position_mode(self, mode: PositionMode) -> None:
        if PositionMode(mode) is not PositionMode.ONE_WAY:
            raise RejectedError("the simulated account trades in one-way mode only", code=-4059, http_status=400)

    async def fetch_funding_income(self, start_ms: int, end_ms: int) -> list[FundingIncome]:
        return self.broker.funding_income(start_ms, end_ms)


class SimExchange(SimAccount):
    """``ExchangePort`` of the offline simulation."""

    name = "sim"

    def __init__(self, replay: MarketReplay, broker: SimBroker, clock: ReplayClock | None = None) -> None:
        self.replay = replay
        self.broker = broker
        self.clock = clock

    async def load_markets(self) -> dict[str, Market]:
        markets = self.replay.markets()
        self.broker.set_markets(markets)
        return markets

    async def server_time(self) -> int:
        return self.clock.now_ms() if self.clock is not None else self.replay.now_ms

    async def fetch_klines(
        self, symbol: str, interval: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[Kline]:
        try:
            return self.replay.klines(symbol, interval, start_ms, end_ms, limit)
        except KeyError:
            raise RejectedError(f"Invalid symbol {symbol!r}.", code=-1121, http_status=400) from None
        except ValueError as exc:
            raise RejectedError(str(exc), code=-1130, http_status=400) from None  # Binance: invalid parameter data

    async def fetch_tickers_24h(self) -> list[Ticker24h]:
        return self.replay.tickers_24h()

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        out = {}
        for symbol in symbols:
            price = self.broker.last_price(symbol)
            if price is None and symbol in self.replay.symbols:
                last = self.replay.last_price(symbol)
                price = None if last is None else decimal_of(last)
            if price is not None:
                out[symbol] = price
        return out

    async def create_market_order(
        self, symbol: str, side: Side, qty: Decimal, *, client_order_id: str, reduce_only: bool
    ) -> Order:
        return self.broker.market_order(symbol, side, qty, client_order_id=client_order_id, reduce_only=reduce_only)

    async def create_stop_market_close(self, symbol: str, trigger_price: Decimal, *, client_algo_id: str) -> AlgoOrder:
        return self.broker.place_stop_close(symbol, trigger_price, client_algo_id=client_algo_id)

    async def create_stop_market_reduce(
        self, symbol: str, trigger_price: Decimal, qty: Decimal, *, client_algo_id: str
    ) -> AlgoOrder:
        return self.broker.place_stop_close(symbol, trigger_price, client_algo_id=client_algo_id, qty=qty)

    async def cancel_order(self, symbol: str, client_order_id: str) -> None:
        self.broker.cancel_order(symbol, client_order_id)

    async def cancel_algo_order(self, symbol: str, client_algo_id: str) -> None:
        self.broker.cancel_algo(symbol, client_algo_id)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        self.broker.set_leverage(symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: str) -> None:
        self.broker.set_margin_mode(symbol, mode)

    def used_weight(self) -> int:
        return 0

    async def close(self) -> None:
        self.broker.flush()


# ------------------------------------------------------------------ assembly
def source_id(settings: Settings) -> str:
    """Which market data the simulated account is made from (also its identity in the database binding)."""
    if settings.sim_data_dir is not None:
        return f"files:{Path(settings.sim_data_dir).resolve()}"
    return f"synthetic:seed={settings.sim_seed}"


def build_sim_bundle(settings: Settings, conn: sqlite3.Connection, *, taker_fee: float = 0.0005) -> ExchangeBundle:
    """The sim mode's exchange: replay + broker persisted in ``conn``; a restart continues where it stopped.

    Raises ``SimStateMismatch`` when the database's simulated account was made from other data (another
    ``SIM_SEED`` or ``SIM_DATA_DIR``): its positions would not exist in this market.
    """
    broker = SimBroker(
        conn,
        account="sim",
        balance=decimal_of(settings.sim_balance),
        taker_fee=decimal_of(taker_fee),  # the strategy's taker_fee, as the backtest uses it
        slippage=decimal_of(settings.sim_slippage),
    )
    source = source_id(settings)
    saved = broker.meta("source")
    if saved is None:
        broker.set_meta("source", source)
    elif saved != source:
        raise SimStateMismatch(
            f"the database {settings.db_path} holds a simulated account made from {saved}, but the settings now "
            f"ask for {source}. Set SIM_SEED / SIM_DATA_DIR back, or use another DB_PATH (or reset the database) "
            "to start a new simulation."
        )
    start = broker.saved_cursor_ms
    if settings.sim_data_dir is not None:
        replay = MarketReplay.from_files(Path(settings.sim_data_dir), start_ms=start, max_symbols=settings.sim_symbols)
    else:
        replay = MarketReplay.synthetic(settings.sim_seed, settings.sim_symbols, start_ms=start)
    broker.set_markets(replay.markets())
    missing = sorted(s for s in broker.positions if s not in broker.markets)
    if missing:
        log.warning("simulated positions on symbols the replay no longer has: %s", ", ".join(missing))
    broker.cursor_ms = replay.cursor_ms
    broker.flush()
    speed = settings.sim_speed or None  # SIM_SPEED=0: as fast as possible
    clock = ReplayClock(replay.cursor_ms, speed=speed)
    broker.now_fn = clock.now_ms
    user = SimUserStream(broker)
    stream = SimMarketStream(replay, broker, clock, speed, user)
    port = SimExchange(replay, broker, clock)
    log.info(
        "sim: %s, %d symbols, starting at %s ms, speed %gx, wallet %s USDT",
        source,
        len(replay.symbols),
        replay.cursor_ms,
        settings.sim_speed,
        broker.wallet,
    )
    return ExchangeBundle(mode="sim", port=port, market=stream, user=user, clock=clock)


__all__ = [
    "ReplayClock",
    "SimExchange",
    "SimMarketStream",
    "SimStateMismatch",
    "SimUserStream",
    "build_sim_bundle",
]
