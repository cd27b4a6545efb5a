"""``FakeBinance``: a loopback Binance USD-M (REST + WebSocket) with a control API for tests.

One aiohttp server on 127.0.0.1 serves both the REST API (``rest_url`` replaces
https://fapi.binance.com) and the routed WebSocket roots (``ws_url`` replaces
wss://fstream.binance.com). Tests drive prices, time and faults through this class and
inspect what the client did (orders, requests, socket messages).

Defaults keep the plain account existing tests expect: one-way mode, single-asset mode, no
funding unless asked, no delisting, 300 orders / 10 s and 1200 / min.

Control API beyond prices, time and listen keys (see each method's docstring):

- Refusals and faults (``fake.faults``): ``refuse(method, path, code, *, times=, seconds=, side=,
  reduce_only=, type=, symbol=, position_side=, close_position=, msg=, status=, retry_after=)`` answers
  matching requests with a Binance code (real status and body) without executing them;
  ``hold_next(method, path)`` + ``rule.release()`` holds a request before the timestamp check and the
  matching engine (move the clock meanwhile and it arrives late: -1021); ``arrive_late_next(method,
  path, late_ms)``; and the older ``fail_next``, ``rate_limit_next``, ``lose_response_next``, ``delay``.
- Order-rate limits: ``set_order_limits(per_10s=, per_1m=)``, ``order_counts()`` (orders in the current
  10 s / 1 min windows, as the ``X-MBX-ORDER-COUNT-10S`` / ``-1M`` headers report them).
- Algo orders: ``cancel_algo_by_hand(client_algo_id)`` (CANCELED from the app),
  ``expire_algo_order(client_algo_id)`` (EXPIRED by the system).
- Endpoints: ``unserve(method, path)`` (an exchange or gateway that does not serve it: 404 as for any unknown
  path, e.g. one that predates ``/fapi/v1/accountConfig``).
- Account modes: ``set_position_mode(dual_side=)``, ``hedge_mode``, ``set_multi_assets_mode(enabled)``,
  ``open_hedge_position_by_hand(symbol, position_side, qty, price=None)``,
  ``open_position_by_hand(..., position_side=)``, ``close_position_by_hand(symbol, position_side=None)``,
  ``position(symbol, position_side="BOTH")``.
- Funding: ``charge_funding(symbol, rate=None)``, ``set_auto_funding(enabled=True)`` (at each symbol's
  funding times as the server clock passes them), ``set_funding_rate(symbol, rate)``,
  ``set_funding_interval(symbol, hours, cap=, floor=)``, ``next_funding_time(symbol)``; reads:
  ``income``, ``funding_history``.
- Liquidation: ``liquidate(symbol, *, price=None, position_side=None, adl=False)``.
- Delisting: ``announce_delisting(symbol, settle_at_ms, close_only_ms=30 min)`` (settles by itself
  when the server clock reaches it), ``settle_symbol(symbol, price=None)``, ``set_symbol_status``.
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from tests.fakes.binance import catalog, payloads
from tests.fakes.binance.errors import BinanceError, listen_key_missing
from tests.fakes.binance.faults import FaultPlan
from tests.fakes.binance.klines import INTERVAL_MS, Candle, KlineBook, candle_from_row
from tests.fakes.binance.lifecycle import CLOSE_ONLY_BEFORE_DELISTING_MS, Lifecycle
from tests.fakes.binance.matching import Exchange, random_client_id
from tests.fakes.binance.models import (
    BOTH,
    LONG,
    SHORT,
    ZERO,
    FakeAlgoOrder,
    FakeOrder,
    FakeTrade,
    FundingRecord,
    IncomeRow,
    MarketState,
    PositionView,
    RequestRecord,
    SymbolSpec,
    WsClientInfo,
    WsClientMessage,
    fixed,
    to_decimal,
)
from tests.fakes.binance.rest import RestApi
from tests.fakes.binance.weights import ORDER_LIMIT_1M, ORDER_LIMIT_10S, OrderCounter, OrderCounts, WeightCounter
from tests.fakes.binance.ws import StreamHub

LISTEN_KEY_TTL_MS = 60 * 60_000
_DEPTH_STREAMS = tuple(
    f"@depth{levels}{speed}" for levels in ("", "5", "10", "20") for speed in ("", "@100ms", "@250ms", "@500ms")
)


@dataclass
class ListenKey:
    key: str
    expires_ms: int
    active: bool = True


class FakeBinance:
    """A fake Binance USD-M account and market; see the package docstring for the full API."""

    def __init__(
        self,
        api_key: str = "test-key",
        api_secret: str = "test-secret",
        balance: object = "1000",
        taker_fee: object = "0.0005",
        maker_fee: object = "0.0002",
        *,
        slippage: object = "0",
        weight_limit: int = 2400,
        order_limit_10s: int = ORDER_LIMIT_10S,
        order_limit_1m: int = ORDER_LIMIT_1M,
        default_leverage: int = 20,
        ws_max_streams: int = 200,
        ws_max_incoming_per_s: int = 10,
        ws_ping_interval_s: float = 180.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.host = host
        self.port = port
        self.time_offset_ms = 0
        self._frozen_ms: int | None = None
        # False lets a client on the system clock keep trading while a test freezes the server clock
        self.enforce_recv_window = True
        self.exchange = Exchange(
            self.now_ms,
            balance=to_decimal(balance, "balance"),
            taker_fee=to_decimal(taker_fee, "taker_fee"),
            maker_fee=to_decimal(maker_fee, "maker_fee"),
            slippage=to_decimal(slippage, "slippage"),
            default_leverage=default_leverage,
        )
        self.lifecycle = Lifecycle(self.exchange)
        self.lifecycle.on_contract_change = self._publish_contract_info
        self.kline_book = KlineBook()
        self.faults = FaultPlan(clock=self.now_ms)
        self.weights = WeightCounter(self.now_ms, weight_limit)
        self.order_counter = OrderCounter(self.now_ms, order_limit_10s, order_limit_1m)
        self.requests: list[RequestRecord] = []
        self.listen_keys: dict[str, ListenKey] = {}
        self._hub = StreamHub(
            self.now_ms,
            max_streams=ws_max_streams,
            max_incoming_per_s=ws_max_incoming_per_s,
            ping_interval_s=ws_ping_interval_s,
            market_silent=self.faults.market_silent,
            private_silent=self.faults.private_silent,
            listen_key_valid=self._listen_key_valid,
            on_subscription_change=self._index_kline_streams,
        )
        self._kline_streams: dict[str, set[str]] = {}  # SYMBOL -> intervals with a kline subscriber
        self._rest = RestApi(self)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self._agg_id = 5_933_000
        self._book_id = 400_900_000
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> FakeBinance:
        app = web.Application(client_max_size=1 << 20)
        self._hub.add_routes(app)
        app.router.add_route("*", "/{tail:.*}", self._rest.handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self._hub.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBinance:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    # ------------------------------------------------------------------ clock
    def now_ms(self) -> int:
        if self._frozen_ms is not None:
            return self._frozen_ms + self.time_offset_ms
        return int(time.time() * 1000) + self.time_offset_ms

    def set_time_ms(self, ms: int | None) -> None:
        """Freeze the server clock at ``ms`` (None: back to the system clock, plus ``time_offset_ms``)."""
        self._frozen_ms = ms
        if ms is not None:
            self.time_offset_ms = 0

    def advance_time_ms(self, delta: int) -> None:
        if self._frozen_ms is not None:
            self._frozen_ms += delta
        else:
            self.time_offset_ms += delta

    def next_funding_time(self, symbol: str | None = None) -> int:
        """The next funding time of ``symbol`` (its own interval), or of an 8-hour symbol when None."""
        if symbol is None:
            interval = 8 * 3_600_000
            return (self.now_ms() // interval + 1) * interval
        return self.lifecycle.next_funding_time(self.exchange.spec(symbol).symbol)

    # ------------------------------------------------------------------ symbols and prices
    def add_symbol(
        self,
        symbol: str,
        *,
        price: object = "100",
        tick_size: object = "0.01",
        step_size: object = "0.001",
        min_qty: object | None = None,
        min_notional: object = "5",
        max_leverage: int = 20,
        quote_volume: object = "100000000",
        status: str = "TRADING",
        mark: object | None = None,
        max_qty: object = "1000000",
        market_max_qty: object | None = None,
        base_asset: str | None = None,
        open_price_24h: object | None = None,
        max_algo_orders: int = 10,
        funding_interval_hours: int = 8,
    ) -> SymbolSpec:
        """A USDT-margined perpetual; prices and sizes as strings (or numbers), like the exchange prints them."""
        if not symbol.isalnum() or not symbol.isupper() or not symbol.endswith("USDT"):
            raise ValueError(f"symbol must look like BTCUSDT, got {symbol!r}")
        tick, step = to_decimal(tick_size, "tick_size"), to_decimal(step_size, "step_size")
        last = to_decimal(price, "price")
        if tick <= 0 or step <= 0 or last <= 0:
            raise ValueError("tick_size, step_size and price must be positive")
        if not 1 <= max_leverage <= 125:
            raise ValueError("max_leverage must be within 1..125")
        maximum = to_decimal(max_qty, "max_qty")
        spec = SymbolSpec(
            symbol=symbol,
            base_asset=base_asset or symbol[: -len("USDT")],
            quote_asset="USDT",
            tick_size=tick,
            step_size=step,
            min_qty=to_decimal(min_qty, "min_qty") if min_qty is not None else step,
            max_qty=maximum,
            market_max_qty=to_decimal(market_max_qty, "market_max_qty") if market_max_qty is not None else maximum,
            min_notional=to_decimal(min_notional, "min_notional"),
            max_leverage=max_leverage,
            status=status,
            max_algo_orders=max_algo_orders,
            funding_interval_hours=_funding_hours(funding_interval_hours),
        )
        last = spec.on_tick(last)
        opening = to_decimal(open_price_24h, "open_price_24h") if open_price_24h is not None else last
        market = MarketState(
            last=last,
            mark=to_decimal(mark, "mark") if mark is not None else last,
            open_24h=opening,
            high_24h=max(last, opening),
            low_24h=min(last, opening),
            quote_volume=to_decimal(quote_volume, "quote_volume"),
        )
        self.exchange.add_symbol(spec, market)
        return spec

    def set_symbol_status(self, symbol: str, status: str) -> None:
        """TRADING, SETTLING, CLOSE, PENDING_TRADING, PRE_SETTLE... (exchangeInfo and the !contractInfo stream)."""
        spec = self.exchange.spec(symbol)
        spec.status = status
        self._publish_contract_info(spec)

    def _publish_contract_info(self, spec: SymbolSpec) -> None:
        if self._hub.has_subscribers("!contractInfo"):
            brackets = catalog.brackets(spec.max_leverage)
            event = payloads.contract_info_event(spec, brackets, self.now_ms())
            self._hub.publish("!contractInfo", event)

    def set_delivery_date(self, symbol: str, delivery_ms: int) -> None:
        """exchangeInfo's deliveryDate: Binance sets it to the settlement time when it announces a delisting."""
        self.exchange.spec(symbol).delivery_date = int(delivery_ms)

    def set_ticker_stats(
        self, symbol: str, *, quote_volume: object | None = None, open_price: object | None = None
    ) -> None:
        """24h statistics served by /fapi/v1/ticker/24hr (what the scanner's pre-filter reads)."""
        market = self.exchange.markets[self.exchange.spec(symbol).symbol]
        if quote_volume is not None:
            market.quote_volume = to_decimal(quote_volume, "quote_volume")
        if open_price is not None:
            market.open_24h = to_decimal(open_price, "open_price")
            market.high_24h = max(market.high_24h, market.open_24h)
            market.low_24h = min(market.low_24h, market.open_24h)

    def price(self, symbol: str) -> Decimal:
        return self.exchange.markets[symbol].last

    def mark_price(self, symbol: str) -> Decimal:
        return self.exchange.markets[symbol].mark

    async def set_price(
        self, symbol: str, price: object, mark: object | None = None, *, qty: object | None = None
    ) -> None:
        """New last trade (and mark, default = last): streams aggTrade, markPrice, bookTicker and the
        in-progress kline of every tracked interval; fills crossing limits and fires algo stops."""
        spec = self.exchange.spec(symbol)
        last = to_decimal(price, "price")
        if last <= 0:
            raise ValueError("price must be positive")
        last = spec.on_tick(last)
        last_mark = to_decimal(mark, "mark") if mark is not None else last
        size = to_decimal(qty, "qty") if qty is not None else spec.min_qty
        now = self.now_ms()
        self.exchange.update_price(symbol, last, last_mark, size)
        for interval, candle, closed in self.kline_book.tick(symbol, last, size, now, self._streamed_intervals(symbol)):
            self._publish_kline(symbol, interval, candle, closed=closed, now=now)
        self._publish_ticks(spec, last, size, now)
        await self.flush()

    async def set_mark_price(self, symbol: str, mark: object) -> None:
        """Move only the mark price (no trade): markPrice streams, MARK_PRICE stops and unrealized PnL follow."""
        spec = self.exchange.spec(symbol)
        market = self.exchange.markets[spec.symbol]
        value = to_decimal(mark, "mark")
        if value <= 0:
            raise ValueError("mark must be positive")
        self.exchange.update_price(spec.symbol, market.last, value, market.last_qty)
        self._publish_mark(spec, self.now_ms())
        await self.flush()

    def _publish_mark(self, spec: SymbolSpec, now: int) -> None:
        hub, low = self._hub, spec.symbol.lower()
        own = (f"{low}@markPrice", f"{low}@markPrice@1s")
        every = ("!markPrice@arr", "!markPrice@arr@1s")
        if not any(hub.has_subscribers(s) for s in own + every):
            return
        event = payloads.mark_price_event(
            spec.symbol, self.exchange.markets[spec.symbol], now, self.lifecycle.next_funding_time(spec.symbol, now)
        )
        for stream in own:
            hub.publish(stream, event)
        for stream in every:
            hub.publish(stream, [event])

    def _publish_ticks(self, spec: SymbolSpec, last: Decimal, size: Decimal, now: int) -> None:
        hub, market, low = self._hub, self.exchange.markets[spec.symbol], spec.symbol.lower()
        self._agg_id += 1
        if hub.has_subscribers(f"{low}@aggTrade"):
            hub.publish(
                f"{low}@aggTrade",
                payloads.agg_trade_event(
                    spec, agg_id=self._agg_id, trade_id=self._agg_id, price=last, qty=size, now=now
                ),
            )
        self._publish_mark(spec, now)
        if hub.has_subscribers(f"{low}@bookTicker") or hub.has_subscribers("!bookTicker"):
            self._book_id += 1
            book = payloads.book_ticker_event(spec.symbol, spec, market, self._book_id, now)
            hub.publish(f"{low}@bookTicker", book)
            hub.publish("!bookTicker", book)
        depth_streams = [low + suffix for suffix in _DEPTH_STREAMS if hub.has_subscribers(low + suffix)]
        if depth_streams:
            # a one-level book around the last price: enough for clients that only need the stream alive
            self._book_id += 1
            book = payloads.book_ticker_event(spec.symbol, spec, market, self._book_id, now)
            depth = {
                "e": "depthUpdate",
                "E": now,
                "T": now,
                "s": spec.symbol,
                "U": self._book_id,
                "u": self._book_id,
                "pu": self._book_id - 1,
                "b": [[book["b"], book["B"]]],
                "a": [[book["a"], book["A"]]],
            }
            for stream in depth_streams:
                hub.publish(stream, depth)

    def _streamed_intervals(self, symbol: str) -> set[str]:
        return self._kline_streams.get(symbol, set())

    def _index_kline_streams(self) -> None:
        index: dict[str, set[str]] = {}
        for stream in self._hub.subscribed_streams():
            name, _, interval = stream.partition("@kline_")
            if interval in INTERVAL_MS:
                index.setdefault(name.upper(), set()).add(interval)
        self._kline_streams = index

    def _publish_kline(self, symbol: str, interval: str, candle: Candle, *, closed: bool, now: int) -> None:
        stream = f"{symbol.lower()}@kline_{interval}"
        if self._hub.has_subscribers(stream):
            event = {"e": "kline", "E": now, "s": symbol, "k": candle.stream_k(symbol, interval, closed)}
            self._hub.publish(stream, event)

    async def push_kline(  # noqa: PLR0917 - the contract passes the OHLCV values positionally
        self,
        symbol: str,
        open_time_ms: int,
        o: object,
        h: object,
        l: object,  # noqa: E741 - Binance's own field name
        c: object,
        v: object,
        closed: bool = True,
        interval: str = "1m",
    ) -> None:
        """Store a candle in the history and stream it (``x`` = ``closed``) to its subscribers."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {interval!r}")
        spec = self.exchange.spec(symbol)
        candle = candle_from_row((open_time_ms, o, h, l, c, v))
        now = self.now_ms()
        for kline_interval, kline, final in self.kline_book.push(
            spec.symbol, interval, candle, closed, self._streamed_intervals(spec.symbol)
        ):
            self._publish_kline(spec.symbol, kline_interval, kline, closed=final, now=now)
        await self.flush()

    def load_klines(self, symbol: str, interval: str, rows: Iterable[Sequence[Any]]) -> int:
        """History for GET /fapi/v1/klines; rows are (open_time, o, h, l, c, v[, Binance's other columns])."""
        if interval not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {interval!r}")
        spec = self.exchange.spec(symbol)
        candles = [candle_from_row(row) for row in rows]  # all rows are checked before any is stored
        self.kline_book.load(spec.symbol, interval, candles)
        return len(candles)

    # ------------------------------------------------------------------ account
    @property
    def wallet_balance(self) -> Decimal:
        return self.exchange.wallet

    def set_balance(self, balance: object) -> asyncio.Task[None] | None:
        """Set the wallet balance; an ACCOUNT_UPDATE (DEPOSIT/WITHDRAW) is pushed to user streams."""
        self.exchange.set_wallet(to_decimal(balance, "balance"))
        return self._spawn(self.flush_user_events())

    def set_leverage(self, symbol: str, leverage: int) -> asyncio.Task[None] | None:
        """Change the leverage as the app would; ACCOUNT_CONFIG_UPDATE goes to the user streams."""
        try:
            self.exchange.set_leverage(symbol, leverage)
        except BinanceError as refusal:
            raise ValueError(refusal.msg) from None
        return self._spawn(self.flush_user_events())

    def leverage(self, symbol: str) -> int:
        return self.exchange.settings[self.exchange.spec(symbol).symbol].leverage

    def margin_mode(self, symbol: str) -> str:
        """The margin mode, "cross" or "isolated" (the port's spelling; Binance says CROSSED / ISOLATED)."""
        margin_type = self.exchange.settings[self.exchange.spec(symbol).symbol].margin_type
        return "isolated" if margin_type == "ISOLATED" else "cross"

    def position(self, symbol: str, position_side: str = BOTH) -> PositionView:
        """(qty, entry) of the BOTH row, or of the LONG / SHORT leg in hedge mode (qty signed: a short is < 0)."""
        name = self.exchange.spec(symbol).symbol
        if (position_side == BOTH) == self.exchange.dual_side:
            mode = "hedge" if self.exchange.dual_side else "one-way"
            raise ValueError(f"the account is in {mode} mode: position_side {position_side!r} has no row")
        pos = self.exchange.leg(name, position_side)
        return PositionView(pos.qty, pos.entry_price)

    async def open_position_by_hand(
        self, symbol: str, qty: object, price: object | None = None, *, position_side: str | None = None
    ) -> FakeOrder:
        """A fill the service did not make (someone trading in the app): positive qty buys, negative sells.

        In hedge mode say which leg: ``position_side="LONG"`` opens (or adds to) the long with a positive
        ``qty``, ``"SHORT"`` the short (any sign: the size is ``abs(qty)``). ``price`` (optional)
        becomes the last price first, so the fill happens there.
        """
        amount = to_decimal(qty, "qty")
        if amount == 0:
            raise ValueError("qty must not be zero")
        if self.exchange.dual_side:
            if position_side not in (LONG, SHORT):
                raise ValueError("the account is in hedge mode: pass position_side='LONG' or 'SHORT'")
            side = "BUY" if position_side == LONG else "SELL"
        else:
            if position_side not in (None, BOTH):
                raise ValueError("the account is in one-way mode: position_side must be omitted")
            position_side, side = BOTH, "BUY" if amount > 0 else "SELL"
        if price is not None:
            await self.set_price(symbol, price)
        order = self._manual_order(symbol, side, abs(amount), reduce_only=False, position_side=position_side)
        await self.flush_user_events()
        return order

    async def open_hedge_position_by_hand(
        self, symbol: str, position_side: str, qty: object, price: object | None = None
    ) -> FakeOrder:
        """Open (or add to) a hedge-mode leg by hand, switching the account to hedge mode first if it is
        not (which needs the account flat and without open orders, as on Binance)."""
        if not self.exchange.dual_side:
            self.set_position_mode(dual_side=True)
        return await self.open_position_by_hand(symbol, qty, price, position_side=position_side)

    async def close_position_by_hand(self, symbol: str, position_side: str | None = None) -> FakeOrder | None:
        """Close the whole position (hedge mode: the leg; both legs when None, the last order is returned)
        at the last price from outside the service; None when flat."""
        name = self.exchange.spec(symbol).symbol
        legs = [leg for leg in self.exchange.legs(name) if leg.qty and position_side in (None, leg.side)]
        order: FakeOrder | None = None
        for leg in legs:
            side = "SELL" if leg.qty > 0 else "BUY"
            order = self._manual_order(name, side, abs(leg.qty), reduce_only=leg.side == BOTH, position_side=leg.side)
        if order is not None:
            await self.flush_user_events()
        return order

    def _manual_order(
        self, symbol: str, side: str, qty: Decimal, *, reduce_only: bool, position_side: str = BOTH
    ) -> FakeOrder:
        spec = self.exchange.spec(symbol)
        saved = spec.min_notional, spec.status, spec.close_only_from
        # a hand-made fill is not held to the API's filters
        spec.min_notional, spec.status, spec.close_only_from = ZERO, "TRADING", None
        try:
            return self.exchange.new_order(
                symbol=symbol,
                side=side,
                order_type="MARKET",
                qty=qty,
                price=None,
                reduce_only=reduce_only,
                client_order_id=random_client_id("web_")[:36],
                source="web",
                position_side=position_side,
            )
        except BinanceError as refusal:
            raise ValueError(f"manual order refused: {refusal.code} {refusal.msg}") from None
        finally:
            spec.min_notional, spec.status, spec.close_only_from = saved

    # ------------------------------------------------------------------ account modes
    @property
    def hedge_mode(self) -> bool:
        return self.exchange.dual_side

    def set_position_mode(self, *, dual_side: bool) -> None:
        """Hedge mode (``dual_side=True``) or one-way mode, as if changed in the app. Binance's rules hold:
        ValueError when there is nothing to change, or a position or an open (algo) order exists."""
        try:
            self.exchange.set_position_mode(dual_side)
        except BinanceError as refusal:
            raise ValueError(f"{refusal.code} {refusal.msg}") from None

    def set_multi_assets_mode(self, enabled: bool) -> asyncio.Task[None] | None:
        """Multi-Assets mode on/off as in the app; ACCOUNT_CONFIG_UPDATE (``ai.j``) goes to the user streams."""
        try:
            self.exchange.set_multi_assets(enabled)
        except BinanceError as refusal:
            raise ValueError(f"{refusal.code} {refusal.msg}") from None
        return self._spawn(self.flush_user_events())

    def unserve(self, method: str, path: str) -> None:
        """Stop serving ``method path``: it answers 404 like any unknown path from now on."""
        if self._rest.routes.pop((method.upper(), path), None) is None:
            raise ValueError(f"{method} {path} is not served")

    # ------------------------------------------------------------------ order-rate limits
    def set_order_limits(self, *, per_10s: int | None = None, per_1m: int | None = None) -> None:
        """The account's order-count limits (real: 300 per 10 s, 1200 per minute); exchangeInfo shows them."""
        for value in (per_10s, per_1m):
            if value is not None and value < 1:
                raise ValueError("order limits must be at least 1")
        if per_10s is not None:
            self.order_counter.per_10s = per_10s
        if per_1m is not None:
            self.order_counter.per_1m = per_1m

    def order_counts(self) -> OrderCounts:
        """Orders counted in the current 10-second and 1-minute windows (what the headers report)."""
        return self.order_counter.counts()

    # ------------------------------------------------------------------ algo orders by the app / the system
    async def cancel_algo_by_hand(self, client_algo_id: str) -> FakeAlgoOrder:
        """Someone cancels an open algo order in the app: ALGO_UPDATE CANCELED, as for an API cancel."""
        algo = self.exchange.find_algo(None, client_algo_id)
        if algo is None or not algo.is_open:
            raise ValueError(f"no open algo order {client_algo_id!r}")
        self.exchange.cancel_algo(algo, status="CANCELED")
        await self.flush_user_events()
        return algo

    # ------------------------------------------------------------------ funding
    def set_funding_rate(self, symbol: str, rate: object) -> None:
        """The rate the next funding charges (premiumIndex ``lastFundingRate``, markPrice ``r``)."""
        self.exchange.markets[self.exchange.spec(symbol).symbol].funding_rate = to_decimal(rate, "rate")

    def set_funding_interval(
        self, symbol: str, hours: int, *, cap: object | None = None, floor: object | None = None
    ) -> None:
        """A funding interval other than 8 h (and/or an adjusted cap/floor): fundingInfo lists the symbol."""
        spec = self.exchange.spec(symbol)
        spec.funding_interval_hours = _funding_hours(hours)
        if cap is not None:
            spec.funding_cap = to_decimal(cap, "cap")
        if floor is not None:
            spec.funding_floor = to_decimal(floor, "floor")
        if self.lifecycle.auto_funding:
            self.lifecycle.set_auto_funding(True)  # re-plan the next funding times

    async def charge_funding(self, symbol: str, rate: object | None = None) -> Decimal:
        """A funding event of ``symbol`` now, at ``rate`` (default: its current rate) and the mark price:
        wallet, income (FUNDING_FEE), funding history and ACCOUNT_UPDATE (m=FUNDING_FEE). Returns the
        wallet change (negative when the account paid)."""
        value = to_decimal(rate, "rate") if rate is not None else None
        total = self.lifecycle.charge_funding(symbol, value)
        await self.flush_user_events()
        return total

    def set_auto_funding(self, enabled: bool = True) -> None:
        """Charge funding by itself at every symbol's funding times as the server clock passes them
        (checked on each request and price tick). Off by default."""
        self.lifecycle.set_auto_funding(enabled)

    @property
    def income(self) -> list[IncomeRow]:
        return self.exchange.ledger.income

    @property
    def funding_history(self) -> list[FundingRecord]:
        return self.exchange.ledger.funding

    # ------------------------------------------------------------------ liquidation
    async def liquidate(
        self, symbol: str, *, price: object | None = None, position_side: str | None = None, adl: bool = False
    ) -> FakeOrder:
        """The exchange closes the position (liquidation, or ADL with ``adl=True``) at ``price`` (default:
        the mark): ``autoclose-`` / ``adl_autoclose`` order, x CALCULATED, ACCOUNT_UPDATE, forceOrders
        and userTrades list it. In hedge mode with both legs open, say which (``position_side``)."""
        fill_price = self.exchange.spec(symbol).on_tick(to_decimal(price, "price")) if price is not None else None
        order = self.lifecycle.liquidate(symbol, position_side=position_side, price=fill_price, adl=adl)
        await self.flush_user_events()
        return order

    # ------------------------------------------------------------------ delisting
    def announce_delisting(
        self, symbol: str, settle_at_ms: int, *, close_only_ms: int = CLOSE_ONLY_BEFORE_DELISTING_MS
    ) -> None:
        """Binance announces the symbol's delisting: exchangeInfo ``deliveryDate`` becomes ``settle_at_ms``;
        from ``close_only_ms`` before it (default 30 min) opening orders get -4140 while the status still
        says TRADING; at ``settle_at_ms`` (as the server clock passes it) the symbol settles."""
        if settle_at_ms <= 0:
            raise ValueError("settle_at_ms must be a time in ms")
        self.lifecycle.announce_delisting(symbol, settle_at_ms, close_only_ms=close_only_ms)

    async def settle_symbol(self, symbol: str, price: object | None = None) -> list[FakeOrder]:
        """Settle (delist) now: orders cancelled, algo orders expired, positions closed at ``price``
        (default: the mark) by ``settlement_autoclose-`` orders, status SETTLING then CLOSE."""
        settle_price = self.exchange.spec(symbol).on_tick(to_decimal(price, "price")) if price is not None else None
        orders = self.lifecycle.settle(symbol, settle_price)
        await self.flush_user_events()
        return orders

    async def run_due_events(self) -> None:
        """Apply what the server clock made due: announced settlements, and funding times (auto funding)."""
        due = self.lifecycle.next_due()
        if due is not None and self.now_ms() >= due:
            self.lifecycle.run_due(self.now_ms())

    # ------------------------------------------------------------------ inspection
    @property
    def orders(self) -> list[FakeOrder]:
        return self.exchange.orders

    @property
    def algo_orders(self) -> list[FakeAlgoOrder]:
        return self.exchange.algo_orders

    @property
    def trades(self) -> list[FakeTrade]:
        return self.exchange.trades

    def open_orders(self, symbol: str | None = None) -> list[FakeOrder]:
        return self.exchange.open_orders(symbol)

    def open_algo_orders(self, symbol: str | None = None) -> list[FakeAlgoOrder]:
        return self.exchange.open_algos(symbol)

    def ws_clients(self, kind: str | None = None) -> list[WsClientInfo]:
        """Connected sockets ("market" | "public" | "private" | None = all) with their subscriptions."""
        return self._hub.infos(kind)

    @property
    def ws_client_messages(self) -> list[WsClientMessage]:
        """Every message a client sent to the fake, in arrival order."""
        return self._hub.messages

    def used_weight(self) -> int:
        return self.weights.used

    def reset_weight(self) -> None:
        self.weights.reset()

    # ------------------------------------------------------------------ streams control
    async def drop_ws_connections(self, kind: str | None = None, *, abrupt: bool = False) -> int:
        """Close sockets of ``kind`` ("market" | "public" | "private" | None = all); returns how many."""
        if kind not in (None, "market", "public", "private"):
            raise ValueError(f"unknown socket kind {kind!r}")
        return await self._hub.drop(kind, abrupt=abrupt)

    async def flush(self) -> None:
        """Send pending user-data events, then wait until everything queued for the sockets is written."""
        await self.flush_user_events()

    async def flush_user_events(self) -> None:
        if self.listen_keys:
            await self._expire_due_listen_keys()
        await self.run_due_events()
        events = self.exchange.drain_outbox()
        if events:
            live = {k for k, v in self.listen_keys.items() if v.active}
            self._hub.publish_user(events, live)
        await self._hub.flush()

    # ------------------------------------------------------------------ listen keys
    def open_listen_key(self) -> str:
        """POST /fapi/v1/listenKey: the account's active key (extended), or a new one."""
        now = self.now_ms()
        for entry in self.listen_keys.values():
            if entry.active and entry.expires_ms > now:
                entry.expires_ms = now + LISTEN_KEY_TTL_MS
                return entry.key
        key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(64))
        self.listen_keys[key] = ListenKey(key, now + LISTEN_KEY_TTL_MS)
        return key

    def keepalive_listen_key(self, key: str | None) -> str:
        now = self.now_ms()
        for entry in self.listen_keys.values():
            if entry.active and entry.expires_ms > now and (key is None or key == entry.key):
                entry.expires_ms = now + LISTEN_KEY_TTL_MS
                return entry.key
        raise listen_key_missing()

    async def close_listen_key(self, key: str | None) -> None:
        for entry in self.listen_keys.values():
            if entry.active and (key is None or key == entry.key):
                entry.active = False
                await self._hub.close_listen_key(entry.key)

    def expire_listen_key(self, key: str | None = None) -> asyncio.Task[None] | None:
        """Expire the active key (or ``key``): ``listenKeyExpired`` is pushed, then its sockets close.

        Usable with or without ``await`` (the work is scheduled at once)."""
        entry = next(
            (e for e in self.listen_keys.values() if e.active and (key is None or e.key == key)),
            None,
        )
        if entry is None:
            raise ValueError("no active listen key to expire")
        entry.active = False
        entry.expires_ms = self.now_ms()
        event = {"e": "listenKeyExpired", "E": self.now_ms(), "listenKey": entry.key}
        return self._spawn(self._hub.close_listen_key(entry.key, event))

    async def _expire_due_listen_keys(self) -> None:
        """Keys not kept alive for 60 minutes of server time expire like on Binance (checked as time is used)."""
        now = self.now_ms()
        for entry in self.listen_keys.values():
            if entry.active and entry.expires_ms <= now:
                entry.active = False
                event = {"e": "listenKeyExpired", "E": now, "listenKey": entry.key}
                await self._hub.close_listen_key(entry.key, event)

    async def expire_algo_order(self, client_algo_id: str) -> FakeAlgoOrder:
        """The system cancels an open algo order (what Binance reports as EXPIRED)."""
        algo = self.exchange.find_algo(None, client_algo_id)
        if algo is None or not algo.is_open:
            raise ValueError(f"no open algo order {client_algo_id!r}")
        self.exchange.cancel_algo(algo, status="EXPIRED")
        await self.flush_user_events()
        return algo

    def _listen_key_valid(self, key: str) -> bool:
        entry = self.listen_keys.get(key)
        return entry is not None and entry.active and entry.expires_ms > self.now_ms()

    def _spawn(self, coro: Any) -> asyncio.Task[None] | None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            coro.close()  # no loop yet (before start): nobody can be listening
            return None
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ reference data
    def exchange_info(self) -> dict[str, Any]:
        limits = (self.order_counter.per_10s, self.order_counter.per_1m)
        return catalog.exchange_info(self.exchange.specs.values(), self.now_ms(), self.weights.limit, limits)

    def max_notional(self, symbol: str, leverage: int) -> Decimal:
        return catalog.max_notional(self.exchange.spec(symbol).max_leverage, leverage)

    def brackets_json(self, symbol: str) -> dict[str, Any]:
        return catalog.brackets_json(symbol, self.exchange.spec(symbol).max_leverage)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary (used by the standalone runner)."""
        return {
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "symbols": len(self.exchange.specs),
            "wallet_balance": fixed(self.wallet_balance, 8),
        }


def _funding_hours(hours: int) -> int:
    if hours not in (1, 2, 4, 8):
        raise ValueError(f"funding intervals are 1, 2, 4 or 8 hours, got {hours!r}")
    return hours
