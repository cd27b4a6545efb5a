"""Paper trading (``TRADING_MODE=paper``): live public market data, simulated fills.

- Public methods (markets, klines, tickers, prices, server time) go to a public
  ``ExchangePort`` (the live ccxt adapter without keys; any port will do).
- Trading and account methods go to a ``SimBroker`` persisted in the service's
  database (account ``paper``): the paper wallet and positions survive restarts.
- ``PaperMarketStream`` wraps the live market stream and hands every price it
  passes through to the broker *first*, so the simulated backstop stops
  trigger on the real price before the engine reacts to it.

A market order fills at the freshest price available: the public port's last
price, fetched for the order (one light REST call); if that call fails, the
last price the stream delivered when it is recent, else the order is refused
and nothing was sent.

Funding (``PaperFunding``): Binance charges a held position at every funding
time, and a paper account that never paid would overstate its results. At each
funding time of a symbol the paper account holds, by the exchange's own clock
as its mark-price stream tells it, the broker charges ``qty x mark x rate`` at
the rate ``premiumIndex`` shows shortly before (``lastFundingRate``, the rate
Binance is about to settle; one request of weight 1 per symbol and funding
time). Funding times that passed while the service was stopped (or while no
mark arrived) are charged at the first look after a start, at the rates and
marks of Binance's funding history (``fundingRate``): a real position would have
paid them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import AsyncIterator, Coroutine, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from trading.clock import Clock, SystemClock
from trading.core.decimals import decimal_of
from trading.exchange.base import (
    AlgoOrder,
    ExchangeBundle,
    ExchangeError,
    ExchangePort,
    FundingRate,
    Kline,
    KlineEvent,
    Market,
    MarketEvent,
    MarketStream,
    Order,
    PremiumIndex,
    PriceEvent,
    RejectedError,
    RetriableError,
    Side,
    Ticker24h,
)
from trading.exchange.ratelimit import WeightBudget, budget_of
from trading.exchange.sim import SimAccount, SimUserStream
from trading.exchange.simbroker import SimBroker

if TYPE_CHECKING:
    from trading.settings import Settings

log = logging.getLogger(__name__)

STREAM_PRICE_MAX_AGE_S = 10.0  # a streamed price this recent may fill an order when the REST price is unavailable
RATE_LEAD_MS = 60_000  # the funding rate is read again this long before the funding time
HOUR_MS = 3_600_000  # the shortest funding interval Binance uses
RATE_RETRY_MS = 30_000  # after a failed premiumIndex request, the next try waits this long (exchange time)


@runtime_checkable
class FundingRateSource(Protocol):
    """A public port that knows the current funding rate and the next funding time (the live adapter)."""

    async def fetch_premium_index(self, symbol: str) -> PremiumIndex: ...

    async def fetch_funding_rates(
        self, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 1000
    ) -> list[FundingRate]: ...


class PaperFunding:
    """Charges the paper account's funding at each funding time (see the module docstring).

    Driven by the mark-price stream's event times (``on_mark``): per held symbol it reads ``premiumIndex``
    (next funding time, rate), again ``RATE_LEAD_MS`` before that time, and charges at the first mark event at
    or after it. The charge goes through ``SimBroker.apply_funding``, which books it, lists it in the paper
    account's income history and publishes the FUNDING_FEE update the engine records, as live.
    """

    def __init__(self, broker: SimBroker, source: FundingRateSource) -> None:
        self.broker = broker
        self.source = source
        self._next: dict[str, int] = {}  # symbol -> its next funding time
        self._rate: dict[str, tuple[Decimal, int]] = {}  # symbol -> (rate, exchange time it was read)
        self._asking: set[str] = set()
        self._retry_at: dict[str, int] = {}
        self._caught_up: set[str] = set()  # symbols whose missed funding times this process has charged
        self._tasks: set[asyncio.Task[None]] = set()

    def next_funding_ms(self, symbol: str) -> int | None:
        """The funding time the paper account will be charged at next for ``symbol`` (None: not known yet)."""
        return self._next.get(symbol)

    @property
    def asking(self) -> bool:
        """A premiumIndex request is in flight."""
        return bool(self._asking)

    def on_mark(self, symbol: str, event_ms: int) -> None:
        """A mark price of ``symbol`` at exchange time ``event_ms`` (the hot path: a dict look-up or two)."""
        pos = self.broker.positions.get(symbol)
        if pos is None or pos.qty == 0:
            if symbol in self._next:
                del self._next[symbol]
            return
        due = self._next.get(symbol)
        if due is not None and event_ms >= due:
            self._charge(symbol, due)
            due = None
        if symbol in self._asking or event_ms < self._retry_at.get(symbol, 0):
            return
        if due is None or (event_ms >= due - RATE_LEAD_MS and self._rate[symbol][1] < due - RATE_LEAD_MS):
            self._spawn(self._ask(symbol, event_ms))

    async def _ask(self, symbol: str, event_ms: int) -> None:
        self._asking.add(symbol)
        try:
            premium = await self.source.fetch_premium_index(symbol)
        except ExchangeError as exc:
            log.warning(
                "paper funding: premiumIndex of %s unavailable (%s); trying again in %d s",
                symbol,
                exc,
                RATE_RETRY_MS // 1000,
            )
            self._retry_at[symbol] = event_ms + RATE_RETRY_MS
            return
        finally:
            self._asking.discard(symbol)
        due = self._next.get(symbol)
        if due is not None and premium.next_funding_ms > due:  # the funding time passed while asking
            self._charge(symbol, due)
        if symbol not in self._caught_up:
            await self._catch_up(symbol, premium.next_funding_ms)
        last = self.broker.last_funding_ms(symbol)
        if last is not None and premium.next_funding_ms <= last:
            return  # already charged (a restart just after it)
        self._next[symbol] = premium.next_funding_ms
        self._rate[symbol] = (premium.funding_rate, premium.time_ms)

    async def _catch_up(self, symbol: str, next_ms: int) -> None:
        """Charge the funding times before ``next_ms`` that the held position went through uncharged (the service
        was stopped), from the funding history. Consecutive funding times are at least an hour apart, so a
        position charged or changed within the hour before ``next_ms`` has none to ask about."""
        pos = self.broker.positions.get(symbol)
        if pos is None or pos.qty == 0:
            self._caught_up.add(symbol)
            return
        since = max(self.broker.last_funding_ms(symbol) or 0, pos.update_time)
        if next_ms - since <= HOUR_MS:
            self._caught_up.add(symbol)
            return
        try:
            rows = await self.source.fetch_funding_rates(symbol, start_ms=since + 1, end_ms=next_ms - 1)
        except ExchangeError as exc:  # asked again at the next look
            log.warning("paper funding: funding history of %s unavailable (%s)", symbol, exc)
            return
        self._caught_up.add(symbol)
        for row in sorted(rows, key=lambda r: r.time_ms):
            if not since < row.time_ms < next_ms:
                continue
            fee = self.broker.apply_funding(symbol, row.rate, row.time_ms, mark=row.mark_price)
            if fee is not None:
                log.info(
                    "paper funding: %s paid %s USDT at rate %s for the funding time %d, passed while stopped",
                    symbol,
                    fee.amount,
                    row.rate,
                    row.time_ms,
                )

    def _charge(self, symbol: str, due: int) -> None:
        del self._next[symbol]
        last = self.broker.last_funding_ms(symbol)
        if last is not None and last >= due:
            return
        rate = self._rate[symbol][0]
        fee = self.broker.apply_funding(symbol, rate, due)
        if fee is not None:
            log.info("paper funding: %s paid %s USDT at rate %s", symbol, fee.amount, rate)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


class PaperExchange(SimAccount):
    """``ExchangePort``: public data from ``public``, everything else from the simulated account."""

    name = "paper"

    def __init__(
        self, public: ExchangePort, broker: SimBroker, clock: Clock | None = None, *, funding: bool = True
    ) -> None:
        self.public = public
        self.broker = broker
        self.clock = clock or SystemClock()
        # Funding is charged when the public port can tell the rate (the live adapter can; a simulator cannot).
        self.funding = PaperFunding(broker, public) if funding and isinstance(public, FundingRateSource) else None
        self._markets: dict[str, Market] = {}
        self._price_seen: dict[str, float] = {}  # monotonic time of the last streamed price per symbol

    # ------------------------------------------------------------------ public data
    async def load_markets(self) -> dict[str, Market]:
        markets = await self.public.load_markets()
        self._markets = dict(markets)
        self.broker.set_markets(markets)
        return markets

    async def server_time(self) -> int:
        return await self.public.server_time()

    async def fetch_klines(
        self, symbol: str, interval: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[Kline]:
        return await self.public.fetch_klines(symbol, interval, start_ms=start_ms, end_ms=end_ms, limit=limit)

    async def fetch_tickers_24h(self) -> list[Ticker24h]:
        return await self.public.fetch_tickers_24h()

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        prices = await self.public.fetch_prices(symbols)
        now = self.clock.now_ms()
        for symbol, price in prices.items():
            self.note_price(symbol, price, now)  # the REST fallback's prices also reach the simulated stops
        return prices

    def used_weight(self) -> int:
        return self.public.used_weight()

    @property
    def weight_budget(self) -> WeightBudget | None:
        """The public adapter's request-weight budget (the candle keeper draws from it)."""
        return budget_of(self.public)

    # ------------------------------------------------------------------ prices into the broker
    def note_price(self, symbol: str, price: Decimal | str | float, ts_ms: int) -> None:
        """A REST price: last and mark at once."""
        self.broker.on_price(symbol, price, ts_ms)
        self._price_seen[symbol] = time.monotonic()

    def note_stream_price(self, symbol: str, price: Decimal | str | float, ts_ms: int, *, mark: bool) -> None:
        """Streamed prices: the simulated stops work on Binance's mark price, or on the previous trade when
        no mark has come (the mark trails the last trade), so the engine's own stop acts first."""
        if mark:
            self.broker.on_mark(symbol, price, ts_ms)
            if self.funding is not None:
                self.funding.on_mark(symbol, ts_ms)
        else:
            self.broker.on_trade(symbol, price, ts_ms)
            self._price_seen[symbol] = time.monotonic()

    async def _fresh_price(self, symbol: str) -> None:
        try:
            prices = await self.public.fetch_prices([symbol])
        except ExchangeError as exc:
            seen = self._price_seen.get(symbol)
            if seen is not None and time.monotonic() - seen <= STREAM_PRICE_MAX_AGE_S:
                log.warning("paper: REST price of %s unavailable (%s); filling at the streamed price", symbol, exc)
                return
            raise RetriableError(f"paper: no current price for {symbol} ({exc}); the order was not placed") from exc
        price = prices.get(symbol)
        if price is None:
            raise RejectedError(f"Invalid symbol {symbol!r}.", code=-1121, http_status=400)
        self.note_price(symbol, price, self.clock.now_ms())

    async def _ensure_markets(self) -> None:
        if not self._markets:
            await self.load_markets()

    # ------------------------------------------------------------------ the simulated account (reads: SimAccount)
    async def create_market_order(
        self, symbol: str, side: Side, qty: Decimal, *, client_order_id: str, reduce_only: bool
    ) -> Order:
        await self._ensure_markets()
        await self._fresh_price(symbol)
        return self.broker.market_order(symbol, side, qty, client_order_id=client_order_id, reduce_only=reduce_only)

    async def create_stop_market_close(self, symbol: str, trigger_price: Decimal, *, client_algo_id: str) -> AlgoOrder:
        await self._ensure_markets()
        if self.broker.last_price(symbol) is None:
            await self._fresh_price(symbol)  # "would immediately trigger" needs the current price
        return self.broker.place_stop_close(symbol, trigger_price, client_algo_id=client_algo_id)

    async def create_stop_market_reduce(
        self, symbol: str, trigger_price: Decimal, qty: Decimal, *, client_algo_id: str
    ) -> AlgoOrder:
        await self._ensure_markets()
        if self.broker.last_price(symbol) is None:
            await self._fresh_price(symbol)
        return self.broker.place_stop_close(symbol, trigger_price, client_algo_id=client_algo_id, qty=qty)

    async def cancel_order(self, symbol: str, client_order_id: str) -> None:
        await self._ensure_markets()
        self.broker.cancel_order(symbol, client_order_id)

    async def cancel_algo_order(self, symbol: str, client_algo_id: str) -> None:
        self.broker.cancel_algo(symbol, client_algo_id)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        await self._ensure_markets()
        self.broker.set_leverage(symbol, leverage)

    async def set_margin_mode(self, symbol: str, mode: str) -> None:
        await self._ensure_markets()
        self.broker.set_margin_mode(symbol, mode)

    async def close(self) -> None:
        if self.funding is not None:
            await self.funding.close()
        self.broker.flush()
        await self.public.close()


class PaperMarketStream:
    """The live market stream, with every price handed to the simulated broker before the engine sees it."""

    def __init__(self, inner: MarketStream, paper: PaperExchange) -> None:
        self.inner = inner
        self.paper = paper

    async def set_symbols(self, kline_symbols: Sequence[str], price_symbols: Sequence[str]) -> None:
        await self.inner.set_symbols(kline_symbols, price_symbols)

    async def events(self) -> AsyncIterator[MarketEvent]:
        async for event in self.inner.events():
            if isinstance(event, PriceEvent):
                self.paper.note_stream_price(event.symbol, event.price, event.event_time, mark=event.kind == "mark")
            elif isinstance(event, KlineEvent):
                # A kline's close is a traded price too (symbols without a fast price stream).
                self.paper.note_stream_price(event.symbol, event.kline.close, event.event_time, mark=False)
            yield event

    def last_message_age(self) -> float | None:
        return self.inner.last_message_age()

    async def close(self) -> None:
        await self.inner.close()


def build_paper_bundle(
    settings: Settings,
    conn: sqlite3.Connection,
    public_port: ExchangePort,
    market_stream: MarketStream,
    *,
    taker_fee: float = 0.0005,
) -> ExchangeBundle:
    """Paper mode: ``public_port`` and ``market_stream`` are the live (keyless) adapter and stream."""
    broker = SimBroker(
        conn,
        account="paper",
        balance=decimal_of(settings.sim_balance),
        taker_fee=decimal_of(taker_fee),
        slippage=decimal_of(settings.sim_slippage),
    )
    clock = SystemClock()
    broker.now_fn = clock.now_ms
    port = PaperExchange(public_port, broker, clock)
    log.info("paper: public data from %s, simulated wallet %s USDT", public_port.name, broker.wallet)
    return ExchangeBundle(
        mode="paper",
        port=port,
        market=PaperMarketStream(market_stream, port),
        user=SimUserStream(broker),
        clock=clock,
    )


__all__ = ["PaperExchange", "PaperMarketStream", "build_paper_bundle"]
