"""The live exchange port (production, demo trading or testnet) on ccxt's async ``binanceusdm``.

ccxt is used as a signer and HTTP client only: every call goes through its
implicit API (``request(path, [api], method, params)``) and the raw Binance
JSON is turned into domain types here, with ``Decimal`` built from the
exchange's strings. No per-call ``load_markets``, no float precision helpers.

Every request passes one choke point, :meth:`CcxtBinanceAdapter._call`, which
applies the shared rate-limit gate, reads the weight header, classifies errors
by Binance code (``errors.classify``), resyncs the clock after ``-1021`` and
retries queries with capped exponential backoff. Orders are never retried
(order-safety rule 2): an unknown outcome raises ``OrderStatusUnknown``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import ccxt
import ccxt.async_support as ccxt_async
import certifi
from pydantic import SecretStr

from trading.core.backoff import Backoff
from trading.core.models import SymbolRules
from trading.exchange.base import (
    INCOME_MAX_ROWS,
    REQUEST_WINDOW_MS,
    AccountConfig,
    AlgoOrder,
    AlgoStatus,
    AuthError,
    AutoCloseKind,
    Balance,
    Bracket,
    ExchangeError,
    ExchangePosition,
    ForceOrder,
    FundingIncome,
    FundingRate,
    Kline,
    Market,
    NotFoundError,
    Order,
    OrderStatus,
    OrderStatusUnknown,
    PositionMode,
    PremiumIndex,
    RateLimitedError,
    RejectedError,
    RetriableError,
    Side,
    Ticker24h,
    Trade,
)
from trading.exchange.environments import REST_BASE, BinanceEnv
from trading.exchange.errors import (
    MARGIN_TYPE_LOCKED,
    NO_NEED_TO_CHANGE_MARGIN_TYPE,
    NO_NEED_TO_CHANGE_POSITION_SIDE,
    TIMESTAMP_CODES,
    classify,
    is_error_response,
    unserved,
)
from trading.exchange.ratelimit import (
    EXITS,
    ORDER_COUNT_1M_HEADER,
    ORDER_COUNT_10S_HEADER,
    QUERIES,
    OrderBudget,
    WeightBudget,
)
from trading.retry import Attempts
from trading.settings import Settings

log = logging.getLogger(__name__)

WEIGHT_HEADER = "x-mbx-used-weight-1m"
INCOME_PAGE_LIMIT = 1000  # GET /fapi/v1/income: at most 1000 rows a page (weight 30 a page)
INCOME_MAX_PAGES = INCOME_MAX_ROWS // INCOME_PAGE_LIMIT  # the rest is read from where this stopped, next time
RETRY_AFTER_HEADER = "retry-after"
DEFAULT_MAX_LEVERAGE = 20  # when brackets cannot be read (no API key): a conservative stand-in
WEEK_MS = 7 * 86_400_000  # the longest span userTrades accepts between startTime and endTime (-1127 beyond)
TRADES_KEPT_MS = 180 * 86_400_000  # "only support querying trade in the past 6 months"
TRADES_PAGE = 1000  # userTrades' largest limit
FORCE_ORDERS_PAGE = 100  # forceOrders' largest limit
SEPARATE_CONFIG_TTL_S = 60.0  # account modes read without accountConfig (60 weight) are reused this long
_REDACT_RE = re.compile(r"(signature|listenKey|X-MBX-APIKEY)([=:]\s*)[^&\s,'\"}]+", re.IGNORECASE)

# ccxt logs request headers (the API key) at DEBUG: keep its logger at INFO or above.
logging.getLogger("ccxt").setLevel(max(logging.getLogger("ccxt").level, logging.INFO))


class _BinanceUsdm(ccxt_async.binanceusdm):
    """ccxt's client, with each reply's status, body and headers handled per request.

    Overriding ``handle_errors`` sees every response (success included) with its own headers,
    so the weight and ``Retry-After`` are read without racing on ``last_response_headers``,
    and errors are classified by code whatever URL the request went to.
    """

    response_hook: Callable[[int, Mapping[str, str]], None] | None = None
    # ccxt declares these `= None` on its base class and fills them in its constructor.
    options: dict[str, Any]
    urls: dict[str, Any]
    session: aiohttp.ClientSession | None  # type: ignore[assignment]  # ccxt's base class says plain None

    def handle_errors(  # noqa: PLR0917 - ccxt's signature
        self,
        code: int,
        reason: str,
        url: str,
        method: str,
        headers: Mapping[str, str],
        body: str,
        response: object,
        request_headers: object,
        request_body: object,
    ) -> None:
        hook = self.response_hook
        if hook is not None:
            hook(code, headers)
        if is_error_response(code, response):
            now_ms = self.milliseconds() - int(self.options.get("timeDifference", 0) or 0)
            raise classify(code, body, retry_after=_header(headers, RETRY_AFTER_HEADER), now_ms=now_ms)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


class CcxtBinanceAdapter:
    """``ExchangePort`` + ``ListenKeyAPI`` for Binance USD-M futures (production, demo trading or testnet)."""

    name = "binance-usdm"

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        api_secret: str | SecretStr | None = None,
        testnet: bool = False,
        demo: bool = False,
        rest_url: str | None = None,
        timeout_s: float = 10.0,
        retry_tries: int = 4,
        retry_base_s: float = 0.25,
        retry_cap_s: float = 8.0,
        time_resync_s: float = 1800.0,
        keepalive_s: float = 90.0,
        default_max_leverage: int = DEFAULT_MAX_LEVERAGE,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
    ) -> None:
        if retry_tries < 1:
            raise ValueError("retry_tries must be at least 1")
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        if demo and testnet:
            raise ValueError("demo trading and the testnet exclude each other: choose one")
        key, secret = _reveal(api_key), _reveal(api_secret)
        self._has_credentials = bool(key) and bool(secret)
        self._ex = _BinanceUsdm(
            {
                "apiKey": key or "",
                "secret": secret or "",
                "enableRateLimit": False,  # weight is managed here, from Binance's own header
                "timeout": int(timeout_s * 1000),
                "options": {
                    "fetchCurrencies": False,  # otherwise load_markets reaches spot sapi on another host
                    # The exchange refuses a signed request older than this: rule 3 relies on it after a crash.
                    "recvWindow": REQUEST_WINDOW_MS,
                    "defaultType": "future",
                    "adjustForTimeDifference": False,  # done here, at start and after -1021
                    "disableFuturesSandboxWarning": True,
                },
            }
        )
        if demo:
            self._ex.enable_demo_trading(True)  # ccxt's own table of Binance's demo-trading hosts
        elif testnet:
            self._ex.set_sandbox_mode(True)
        if rest_url:
            _rewrite_fapi_urls(self._ex, rest_url)
        self._ex.response_hook = self._on_response
        self.testnet = testnet
        self.demo = demo
        self.environment = BinanceEnv.DEMO if demo else BinanceEnv.TESTNET if testnet else BinanceEnv.PRODUCTION
        self.rest_url = rest_url.rstrip("/") if rest_url else None
        self._retry_tries = retry_tries
        # Capped exponential, each delay spread over 0.5-1x: concurrent callers do not retry in step.
        self._retry_policy = Backoff(retry_base_s, factor=2.0, cap_s=retry_cap_s, jitter=(0.5, 1.0))
        self._time_resync_s = time_resync_s
        self._keepalive_s = keepalive_s
        self._default_max_leverage = default_max_leverage
        self._trace_configs = list(trace_configs)
        # The IP's request weight, read from every reply's header; the candle keeper and the download draw
        # from this same budget (``weight_budget``).
        self._weight = WeightBudget(now_ms=self.exchange_now_ms)
        self._orders = OrderBudget()
        self._time_lock = asyncio.Lock()
        self._time_synced_at: float | None = None
        self._session: aiohttp.ClientSession | None = None
        self._account_config_unserved = False  # GET /fapi/v1/accountConfig answered 404 (see fetch_account_config)
        self._separate_config: tuple[float, AccountConfig] | None = None  # (monotonic s, reading) without it
        self._markets: dict[str, Market] = {}
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CcxtBinanceAdapter:
        """Credentials, environment (demo, testnet) and ``BINANCE_REST_URL`` from the service settings."""
        kwargs: dict[str, Any] = {
            "api_key": settings.binance_api_key,
            "api_secret": settings.binance_api_secret,
            "testnet": settings.binance_testnet,
            "demo": settings.binance_demo,
            "rest_url": settings.binance_rest_url,
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def __repr__(self) -> str:  # never the key or the secret
        where = self.rest_url or REST_BASE[self.environment]
        return f"CcxtBinanceAdapter({self.environment.value}: {where}, signed={self._has_credentials})"

    # ------------------------------------------------------------ introspection
    @property
    def api_urls(self) -> dict[str, str]:
        """The USD-M base URLs requests go to (``fapi*`` entries of ccxt's table)."""
        return {k: v for k, v in self._ex.urls["api"].items() if k.startswith("fapi")}

    @property
    def time_offset_ms(self) -> int:
        """Local clock minus exchange clock, as last measured."""
        return int(self._ex.options.get("timeDifference", 0) or 0)

    def exchange_now_ms(self) -> int:
        return int(self._ex.milliseconds()) - self.time_offset_ms

    def used_weight(self) -> int:
        return self._weight.used_weight()

    @property
    def weight_budget(self) -> WeightBudget:
        """The IP's request-weight budget every REST caller of this process draws from."""
        return self._weight

    def rate_limited_for(self) -> float:
        """Seconds non-exit requests still have to wait after a 429/418 (0 when open)."""
        return self._weight.blocked_for()

    @property
    def markets(self) -> dict[str, Market]:
        """The markets of the last ``load_markets`` (empty before)."""
        return dict(self._markets)

    # ------------------------------------------------------------ time
    async def server_time(self) -> int:
        sent_at: list[int] = []
        # Priority: exits need a synced clock too, and a 1-weight call cannot hurt during a pause.
        data = await self._call("fapiPublic", "GET", "time", signed=False, retry=True, priority=True, sent_at=sent_at)
        after = self._ex.milliseconds()
        server = int(data["serverTime"])
        # Half the round trip: the server stamped the reply somewhere between sending and receiving.
        self._ex.options["timeDifference"] = (sent_at[-1] + after) // 2 - server
        self._time_synced_at = time.monotonic()
        return server

    async def sync_time(self) -> int:
        """Measure the clock offset now; returns it (local minus exchange, ms)."""
        await self.server_time()
        return self.time_offset_ms

    async def _ensure_time(self) -> None:
        synced = self._time_synced_at
        if synced is not None and time.monotonic() - synced < self._time_resync_s:
            return
        async with self._time_lock:
            synced = self._time_synced_at
            if synced is None or time.monotonic() - synced >= self._time_resync_s:
                await self.server_time()

    # ------------------------------------------------------------ markets
    async def load_markets(self) -> dict[str, Market]:
        info = await self._call("fapiPublic", "GET", "exchangeInfo", signed=False, retry=True)
        brackets: dict[str, list[dict]] = {}
        if self._has_credentials:
            raw = await self._call("fapiPrivate", "GET", "leverageBracket", signed=True, retry=True)
            rows = [raw] if isinstance(raw, Mapping) else _as_list(raw)  # one symbol's reply is an object
            brackets = {str(item["symbol"]): item.get("brackets", []) for item in rows}
        self._order_limits(info.get("rateLimits", []))
        markets: dict[str, Market] = {}
        for sym in info.get("symbols", []):
            name = str(sym.get("symbol", ""))
            try:
                market = parse_market(sym, brackets.get(name), self._default_max_leverage)
            except (ExchangeError, KeyError, TypeError, ValueError) as exc:
                # One malformed entry must not hide every other market; a known one keeps its last good rules
                # (a held position still needs them to exit).
                known = self._markets.get(name)
                log.error(
                    "exchangeInfo entry of %s unreadable (%s); %s",
                    name or "?",
                    exc,
                    "keeping its last known rules" if known else "skipping it",
                )
                market = known
            if market is not None:
                markets[market.symbol] = market
        self._markets = markets
        return dict(markets)

    def _order_limits(self, rate_limits: Sequence[Mapping[str, Any]]) -> None:
        """The account's order-count limits from exchangeInfo's ``rateLimits`` (ORDERS per 10 s / per minute)."""
        for rl in rate_limits:
            if rl.get("rateLimitType") != "ORDERS":
                continue
            try:
                seconds = {"SECOND": 1, "MINUTE": 60}[str(rl.get("interval"))] * int(rl.get("intervalNum", 1))
                limit = int(rl["limit"])
            except (KeyError, TypeError, ValueError):
                continue
            if seconds == 10:
                self._orders.limit_10s = limit
            elif seconds == 60:
                self._orders.limit_1m = limit

    def order_budget(self) -> OrderBudget:
        return self._orders

    def _order_gate(self, *, priority: bool) -> None:
        """Our share of the account's order limits: refused here, before the exchange has to (-1015)."""
        now = time.monotonic()
        why = self._orders.refusal(priority=priority, now=now)
        if why is not None:
            err = RateLimitedError(f"not sent: {why}", retry_after=2.0)
            err.local = True  # never left: the sender journals it as refused locally
            raise err
        self._orders.note_sent(now)

    # ------------------------------------------------------------ account
    async def fetch_balance(self) -> Balance:
        data = await self._call("fapiPrivateV3", "GET", "account", signed=True, retry=True)
        return parse_balance(data)

    async def fetch_positions(self) -> list[ExchangePosition]:
        data = await self._call("fapiPrivateV3", "GET", "positionRisk", signed=True, retry=True)
        positions = (parse_position(p) for p in _as_list(data))
        return [p for p in positions if p.qty != 0]

    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]:
        params = {"symbol": symbol} if symbol else {}
        data = await self._call("fapiPrivate", "GET", "openOrders", params, signed=True, retry=True)
        return [parse_order(o) for o in _as_list(data)]

    async def fetch_open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        params = {"symbol": symbol} if symbol else {}
        data = await self._call("fapiPrivate", "GET", "openAlgoOrders", params, signed=True, retry=True)
        if isinstance(data, Mapping):  # tolerate a wrapped list ({"orders": [...]})
            data = data.get("orders", data.get("data", []))
        return [parse_algo_order(o) for o in _as_list(data)]

    async def fetch_order(self, symbol: str, client_order_id: str, *, priority: bool = False) -> Order | None:
        """``priority=True`` when resolving an exit whose outcome is unknown: it then passes a rate-limit pause."""
        _require(symbol, "symbol")
        _require(client_order_id, "client_order_id")
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        try:
            data = await self._call("fapiPrivate", "GET", "order", params, signed=True, retry=True, priority=priority)
        except NotFoundError:
            return None
        return parse_order(data)

    async def fetch_trades(self, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None) -> list[Trade]:
        """``GET /fapi/v1/userTrades``, oldest first. With ``start_ms``: every trade from it to ``end_ms`` (default
        now), read in windows of exactly seven days (Binance refuses a longer span with -1127, and with
        ``startTime`` alone serves only the seven days after it); a window holding more than one page is read
        on by ``fromId``. Without ``start_ms``: one request, Binance's default (the last seven days)."""
        _require(symbol, "symbol")
        if start_ms is None:
            params: dict[str, Any] = {"symbol": symbol, "limit": TRADES_PAGE}
            if end_ms is not None:
                params["endTime"] = int(end_ms)
            return await self._user_trades(params)
        await self._ensure_time()
        now = self.exchange_now_ms()
        end = min(int(end_ms), now) if end_ms is not None else now
        start = max(int(start_ms), now - TRADES_KEPT_MS)  # Binance serves the last six months only
        trades: list[Trade] = []
        for lo, hi in time_windows(start, end, WEEK_MS):
            trades.extend(await self._trades_window(symbol, lo, hi))
        return trades

    async def _trades_window(self, symbol: str, lo: int, hi: int) -> list[Trade]:
        params: dict[str, Any] = {"symbol": symbol, "startTime": lo, "endTime": hi, "limit": TRADES_PAGE}
        page = await self._user_trades(params)
        trades = list(page)
        # A full page: the rest of the window by trade id (``fromId`` cannot be sent with a time).
        while len(page) == TRADES_PAGE and page[-1].trade_id:
            after = int(page[-1].trade_id) + 1
            page = await self._user_trades({"symbol": symbol, "fromId": after, "limit": TRADES_PAGE})
            inside = [t for t in page if t.time <= hi]
            trades.extend(inside)
            if len(inside) < len(page):
                break
        return trades

    async def _user_trades(self, params: Mapping[str, Any]) -> list[Trade]:
        data = await self._call("fapiPrivate", "GET", "userTrades", params, signed=True, retry=True)
        return [parse_trade(t) for t in _as_list(data)]

    async def fetch_funding_income(self, start_ms: int, end_ms: int) -> list[FundingIncome]:
        """``GET /fapi/v1/income?incomeType=FUNDING_FEE``: the account's funding payments with start <= time <= end,
        oldest first, page after page (weight 30 each; Binance keeps three months)."""
        if start_ms > end_ms:
            raise ValueError(f"start_ms {start_ms} is after end_ms {end_ms}")
        out: list[FundingIncome] = []
        for page in range(1, INCOME_MAX_PAGES + 1):
            params = {
                "incomeType": "FUNDING_FEE",
                "startTime": int(start_ms),
                "endTime": int(end_ms),
                "limit": INCOME_PAGE_LIMIT,
                "page": page,
            }
            rows = _as_list(await self._call("fapiPrivate", "GET", "income", params, signed=True, retry=True))
            out += [parse_funding_income(r) for r in rows if str(r.get("incomeType", "FUNDING_FEE")) == "FUNDING_FEE"]
            if len(rows) < INCOME_PAGE_LIMIT:
                break
        else:
            log.warning("funding income: more than %d pages since %d; the rest comes next time", page, start_ms)
        return out

    async def fetch_force_orders(self, symbol: str, *, start_ms: int, end_ms: int | None = None) -> list[ForceOrder]:
        """``GET /fapi/v1/forceOrders`` (weight 20): the liquidation (``autoclose-``) and ADL orders of ``symbol``
        from ``start_ms`` to ``end_ms`` (default now), oldest first, in windows of seven days (the span Binance
        searches when given one end), each paged by time."""
        _require(symbol, "symbol")
        await self._ensure_time()
        end = int(end_ms) if end_ms is not None else self.exchange_now_ms()
        found: dict[str, ForceOrder] = {}
        for lo, hi in time_windows(int(start_ms), end, WEEK_MS):
            start = lo
            while True:
                params = {"symbol": symbol, "startTime": start, "endTime": hi, "limit": FORCE_ORDERS_PAGE}
                data = await self._call("fapiPrivate", "GET", "forceOrders", params, signed=True, retry=True)
                page = [parse_force_order(o) for o in _as_list(data)]
                for order in page:
                    found.setdefault(order.order_id, order)
                if len(page) < FORCE_ORDERS_PAGE or page[-1].time <= start:
                    break
                start = page[-1].time  # inclusive: orders of that same millisecond are read again, kept once
        return sorted(found.values(), key=lambda o: (o.time, o.order_id))

    async def fetch_account_config(self) -> AccountConfig:
        """``GET /fapi/v1/accountConfig`` (weight 5): position mode, Multi-Assets mode and ``canTrade`` at once.

        Where that path is not served (404/405: a gateway or stand-in exchange that predates it), the two modes are
        read from ``positionSide/dual`` and ``multiAssetsMargin`` instead (weight 30 each, so a reading is reused
        for ``SEPARATE_CONFIG_TTL_S``) and ``canTrade`` counts as true (such an account refuses orders itself)."""
        if not self._account_config_unserved:
            try:
                data = await self._call("fapiPrivate", "GET", "accountConfig", signed=True, retry=True)
            except RejectedError as err:
                if not unserved(err):
                    raise
                self._account_config_unserved = True
                log.warning(
                    "GET /fapi/v1/accountConfig is not served here: reading positionSide/dual and multiAssetsMargin"
                )
            else:
                return parse_account_config(data)
        now = time.monotonic()
        cached = self._separate_config
        if cached is not None and now - cached[0] < SEPARATE_CONFIG_TTL_S:
            return cached[1]
        dual = await self._call("fapiPrivate", "GET", "positionSide/dual", signed=True, retry=True)
        try:
            multi = await self._call("fapiPrivate", "GET", "multiAssetsMargin", signed=True, retry=True)
        except RejectedError as err:
            if not unserved(err):
                raise
            multi = {"multiAssetsMargin": False}  # an exchange without the endpoint has no Multi-Assets mode
        if not isinstance(multi, Mapping):
            raise ExchangeError(f"multiAssetsMargin reply is not an object: {redact(str(multi))[:200]!r}")
        config = parse_account_config({**multi, **dual} if isinstance(dual, Mapping) else dual)
        self._separate_config = (now, config)
        return config

    async def set_position_mode(self, mode: PositionMode) -> None:
        """``POST /fapi/v1/positionSide/dual``; "no need to change" (-4059) counts as success. Binance refuses
        while any position (-4068) or open order or algo order (-4067) exists."""
        params = {"dualSidePosition": "true" if PositionMode(mode) is PositionMode.HEDGE else "false"}
        self._separate_config = None  # whatever the outcome, the next reading asks again
        try:
            await self._call("fapiPrivate", "POST", "positionSide/dual", params, signed=True, retry=True)
        except RejectedError as err:
            if err.code != NO_NEED_TO_CHANGE_POSITION_SIDE:
                raise

    # ------------------------------------------------------------ market data
    async def fetch_premium_index(self, symbol: str) -> PremiumIndex:
        """``GET /fapi/v1/premiumIndex`` of one symbol (weight 1): mark price, current funding rate, next funding
        time."""
        _require(symbol, "symbol")
        data = await self._call("fapiPublic", "GET", "premiumIndex", {"symbol": symbol}, signed=False, retry=True)
        return parse_premium_index(data)

    async def fetch_klines(
        self, symbol: str, interval: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[Kline]:
        _require(symbol, "symbol")
        if not 1 <= limit <= 1500:
            raise ValueError(f"limit must be within 1..1500, got {limit}")
        params: dict[str, Any] = {"symbol": symbol, "interval": interval, "limit": limit}
        if start_ms is not None:
            params["startTime"] = int(start_ms)
        if end_ms is not None:
            params["endTime"] = int(end_ms)
        await self._ensure_time()  # the in-progress candle is told apart by exchange time
        data = await self._call("fapiPublic", "GET", "klines", params, signed=False, retry=True)
        now = self.exchange_now_ms()
        return [parse_kline(row, now) for row in _as_list(data)]

    async def fetch_tickers_24h(self) -> list[Ticker24h]:
        data = await self._call("fapiPublic", "GET", "ticker/24hr", signed=False, retry=True)
        return [parse_ticker_24h(t) for t in _as_list(data)]

    async def fetch_funding_rates(
        self, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 1000
    ) -> list[FundingRate]:
        """``GET /fapi/v1/fundingRate``: funding events with start <= time <= end, oldest first, at most
        ``limit`` (1..1000) counted from the start. Binance limits it to 500 requests per 5 minutes per IP
        (shared with ``fundingInfo``)."""
        _require(symbol, "symbol")
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be within 1..1000, got {limit}")
        params: dict[str, Any] = {"symbol": symbol, "limit": limit}
        if start_ms is not None:
            params["startTime"] = int(start_ms)
        if end_ms is not None:
            params["endTime"] = int(end_ms)
        data = await self._call("fapiPublic", "GET", "fundingRate", params, signed=False, retry=True)
        return [parse_funding_rate(row) for row in _as_list(data)]

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return {}
        # One symbol costs weight 1; the full list costs 2 and covers any number of symbols.
        params = {"symbol": wanted[0]} if len(wanted) == 1 else {}
        # The monitor's fallback during a stream outage feeds exits: it passes a rate-limit pause.
        data = await self._call("fapiPublicV2", "GET", "ticker/price", params, signed=False, retry=True, priority=True)
        rows = [data] if isinstance(data, Mapping) else _as_list(data)
        want = set(wanted)
        return {str(r["symbol"]): _dec(r["price"]) for r in rows if r.get("symbol") in want}

    # ------------------------------------------------------------ orders
    async def create_market_order(
        self, symbol: str, side: Side, qty: Decimal, *, client_order_id: str, reduce_only: bool
    ) -> Order:
        _require(symbol, "symbol")
        _require(client_order_id, "client_order_id")
        side = Side(side)
        if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
            raise ValueError(f"qty must be a positive Decimal, got {qty!r}")
        self._check_step(symbol, qty)
        params = {
            "symbol": symbol,
            "side": side.value,
            "type": "MARKET",
            "quantity": fmt_decimal(qty),
            "newClientOrderId": client_order_id,
            "newOrderRespType": "RESULT",  # the fill (avg price, executed qty) in the reply
        }
        if reduce_only:
            params["reduceOnly"] = "true"  # only when true: hedge-mode accounts refuse the field (-1106)
        self._order_gate(priority=reduce_only)
        data = await self._call(
            "fapiPrivate", "POST", "order", params, signed=True, retry=False, order=True, priority=reduce_only
        )
        return _parsed_or_unknown(parse_order, data)

    async def create_stop_market_close(self, symbol: str, trigger_price: Decimal, *, client_algo_id: str) -> AlgoOrder:
        return await self._stop_market(symbol, trigger_price, None, client_algo_id)

    async def create_stop_market_reduce(
        self, symbol: str, trigger_price: Decimal, qty: Decimal, *, client_algo_id: str
    ) -> AlgoOrder:
        if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
            raise ValueError(f"qty must be a positive Decimal, got {qty!r}")
        self._check_step(symbol, qty)
        return await self._stop_market(symbol, trigger_price, qty, client_algo_id)

    async def _stop_market(
        self, symbol: str, trigger_price: Decimal, qty: Decimal | None, client_algo_id: str
    ) -> AlgoOrder:
        """A conditional STOP_MARKET SELL on the mark price (Algo Order API): closePosition, or reduce-only qty."""
        _require(symbol, "symbol")
        _require(client_algo_id, "client_algo_id")
        if not isinstance(trigger_price, Decimal) or not trigger_price.is_finite() or trigger_price <= 0:
            raise ValueError(f"trigger_price must be a positive Decimal, got {trigger_price!r}")
        market = self._markets.get(symbol)
        if market is None:
            await self.load_markets()
            market = self._markets.get(symbol)
        if market is None:
            raise RejectedError(f"unknown symbol {symbol!r}: not in exchangeInfo")
        price = market.rules.round_price_down(trigger_price)
        if price <= 0:
            raise ValueError(f"trigger_price {trigger_price} rounds to nothing on tick {market.rules.tick_size}")
        params = {
            "algoType": "CONDITIONAL",
            "symbol": symbol,
            "side": Side.SELL.value,
            "type": "STOP_MARKET",
            "triggerPrice": fmt_decimal(price),
            "workingType": "MARK_PRICE",
            "clientAlgoId": client_algo_id,
        }
        if qty is None:
            params["closePosition"] = "true"
        else:
            params["quantity"] = fmt_decimal(qty)
            params["reduceOnly"] = "true"
        # A protective stop: let it through a rate-limit pause like the exits.
        self._order_gate(priority=True)
        data = await self._call(
            "fapiPrivate", "POST", "algoOrder", params, signed=True, retry=False, order=True, priority=True
        )
        return _parsed_or_unknown(parse_algo_order, data)

    async def cancel_order(self, symbol: str, client_order_id: str) -> None:
        _require(symbol, "symbol")
        _require(client_order_id, "client_order_id")
        params = {"symbol": symbol, "origClientOrderId": client_order_id}
        await self._call("fapiPrivate", "DELETE", "order", params, signed=True, retry=False, priority=True)

    async def cancel_algo_order(self, symbol: str, client_algo_id: str) -> None:
        _require(symbol, "symbol")
        _require(client_algo_id, "client_algo_id")
        params = {"symbol": symbol, "clientAlgoId": client_algo_id}
        await self._call("fapiPrivate", "DELETE", "algoOrder", params, signed=True, retry=False, priority=True)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        _require(symbol, "symbol")
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= 125:
            raise ValueError(f"leverage must be an integer within 1..125, got {leverage!r}")
        params = {"symbol": symbol, "leverage": leverage}
        await self._call("fapiPrivate", "POST", "leverage", params, signed=True, retry=True)

    async def set_margin_mode(self, symbol: str, mode: str) -> None:
        _require(symbol, "symbol")
        margin_type = {"cross": "CROSSED", "isolated": "ISOLATED"}.get(str(mode).lower())
        if margin_type is None:
            raise ValueError(f"margin mode must be 'cross' or 'isolated', got {mode!r}")
        params = {"symbol": symbol, "marginType": margin_type}
        try:
            await self._call("fapiPrivate", "POST", "marginType", params, signed=True, retry=True)
        except RejectedError as err:
            if err.code == NO_NEED_TO_CHANGE_MARGIN_TYPE:
                return  # already in that mode
            if err.code == MARGIN_TYPE_LOCKED:
                raise RejectedError(
                    f"cannot switch {symbol} to {mode} margin while it has an open position or open orders "
                    f"(Binance -4048); close them first or keep the current mode",
                    code=err.code,
                    http_status=err.http_status,
                ) from err
            raise

    # ------------------------------------------------------------ listen key (user-data stream)
    async def create_listen_key(self) -> str:
        data = await self._call("fapiPrivate", "POST", "listenKey", signed=False, retry=True)
        return str(data["listenKey"])

    async def keepalive_listen_key(self, listen_key: str) -> None:
        await self._call("fapiPrivate", "PUT", "listenKey", {"listenKey": listen_key}, signed=False, retry=True)

    async def close_listen_key(self, listen_key: str) -> None:
        await self._call("fapiPrivate", "DELETE", "listenKey", {"listenKey": listen_key}, signed=False, retry=True)

    # ------------------------------------------------------------ lifecycle
    async def close(self) -> None:
        self._closed = True
        session, self._session = self._session, None
        self._ex.session = None  # ccxt's own close would sleep 250 ms and warn on a foreign session
        if session is not None:
            await session.close()

    # ------------------------------------------------------------ the choke point
    async def _call(
        self,
        api: str,
        method: str,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        signed: bool,
        retry: bool,
        order: bool = False,
        priority: bool = False,
        sent_at: list[int] | None = None,
    ) -> Any:
        """One REST request: pacing, clock sync, classification, retries (queries only).

        ``sent_at`` (when given) receives the local ms at which each attempt left, for the clock sync.
        """
        if self._closed:
            raise ExchangeError("the exchange adapter is closed")
        if signed and not self._has_credentials:
            raise AuthError("BINANCE_API_KEY and BINANCE_API_SECRET are needed for this request")
        self._ensure_session()
        if signed and not (priority and self._time_synced_at is not None):
            # Exits keep the hot path to one round trip: they use the last offset (a -1021 still resyncs).
            await self._ensure_time()
        attempts: Attempts | None = None  # made on the first retriable failure of a query
        resynced = False
        while True:
            await self._weight.wait_turn(EXITS if priority else QUERIES)
            if sent_at is not None:
                sent_at.append(self._ex.milliseconds())
            try:
                data = await self._ex.request(path, [api], method, dict(params or {}))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure is translated to the port's types below
                err = self._translate(exc)
                failure: BaseException = exc
                cause: BaseException | None = exc if err is not exc else None
            else:
                if isinstance(data, (dict, list)):
                    return data
                # A 2xx without a JSON body (a proxy page, a cut-off reply): its outcome is not known.
                err = RetriableError(f"unreadable reply to {method} {path}: {redact(str(data))[:200]!r}")
                failure, cause = err, None
            if isinstance(err, RateLimitedError):
                self._weight.block_for(err.retry_after)
                log.warning("rate limited on %s %s: non-exit requests paused %.1f s", method, path, err.retry_after)
            elif signed and not resynced and err.code in TIMESTAMP_CODES:
                # Refused for its timestamp, so certainly not executed: resync and send once more.
                resynced = True
                try:
                    await self.sync_time()
                except ExchangeError:
                    raise err from cause  # the original refusal is what the caller needs
                log.info(
                    "clock resynced after %s (offset %d ms); resending %s %s",
                    err.code,
                    self.time_offset_ms,
                    method,
                    path,
                )
                continue
            if order and not isinstance(err, (RejectedError, RateLimitedError)):
                unknown = (
                    err
                    if isinstance(err, OrderStatusUnknown)
                    else OrderStatusUnknown(
                        f"order outcome unknown ({err}); ask by client id before sending again",
                        code=err.code,
                        http_status=err.http_status,
                    )
                )
                raise unknown from failure
            if retry and not order and isinstance(err, RetriableError):  # orders: never (order-safety rule 2)
                attempts = attempts or Attempts(self._retry_policy)
                if attempts.failures + 1 < self._retry_tries:
                    delay = attempts.next_delay()
                    log.info("retrying %s %s in %.2f s after: %s", method, path, delay, err)
                    await asyncio.sleep(delay)
                    continue
            raise err from cause

    def _on_response(self, status: int, headers: Mapping[str, str]) -> None:
        used = _header(headers, WEIGHT_HEADER)
        if used is not None:
            try:
                self._weight.record_weight(int(used), self.exchange_now_ms())
            except ValueError:
                log.debug("unreadable weight header %r", used)
        c10, c1m = _header(headers, ORDER_COUNT_10S_HEADER), _header(headers, ORDER_COUNT_1M_HEADER)
        if c10 is not None or c1m is not None:
            try:
                self._orders.record(
                    int(c10) if c10 is not None else None, int(c1m) if c1m is not None else None, time.monotonic()
                )
            except ValueError:
                log.debug("unreadable order-count headers %r / %r", c10, c1m)

    def _ensure_session(self) -> None:
        # Our own session: a keep-alive longer than the 15 s reconcile period keeps the order path warm,
        # and trace hooks can time the hot path. ccxt uses it as given (own_session False).
        if self._session is None or self._session.closed:
            ctx = ssl.create_default_context(cafile=certifi.where())
            connector = aiohttp.TCPConnector(ssl=ctx, keepalive_timeout=self._keepalive_s, enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, trace_configs=self._trace_configs or None
            )
            self._ex.session = self._session
            self._ex.own_session = False

    def _translate(self, exc: Exception) -> ExchangeError:
        if isinstance(exc, ExchangeError):
            return exc
        text = redact(str(exc))
        if isinstance(exc, ccxt.RequestTimeout):
            return RetriableError(f"request timed out: {text}")
        if isinstance(exc, ccxt.NetworkError):
            return RetriableError(f"network error: {text}")
        if isinstance(exc, ccxt.AuthenticationError):
            return AuthError(f"credentials refused or missing: {text}")
        if isinstance(exc, ccxt.BaseError):
            err = classify(None, text)
            if type(err) is ExchangeError and isinstance(exc.__cause__, (aiohttp.ClientError, OSError, TimeoutError)):
                return RetriableError(f"network error: {text}")
            return err
        if isinstance(exc, (aiohttp.ClientError, OSError, TimeoutError)):
            return RetriableError(f"network error: {type(exc).__name__}: {text}")
        return ExchangeError(f"unexpected {type(exc).__name__}: {text}")

    def _check_step(self, symbol: str, qty: Decimal) -> None:
        market = self._markets.get(symbol)
        if market is not None and market.rules.step_size > 0 and qty % market.rules.step_size != 0:
            raise ValueError(f"qty {qty} is not a multiple of {symbol}'s step {market.rules.step_size}")


# ------------------------------------------------------------------ URL rewrite
def _rewrite_fapi_urls(exchange: _BinanceUsdm, rest_url: str) -> None:
    """Point every USD-M (``fapi*``) entry of ccxt's URL table at ``rest_url``, keeping each path."""
    base = rest_url.rstrip("/")
    parsed = urlsplit(base)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"BINANCE_REST_URL must be an http(s) URL like https://fapi.binance.com, got {rest_url!r}")
    api = exchange.urls["api"]
    production = cast("dict[str, Any]", exchange.describe())["urls"]["api"]  # ccxt annotates describe() as object
    for key in set(api) | set(production):
        if not key.startswith("fapi"):
            continue
        source = api.get(key) or production[key]
        api[key] = base + urlsplit(source).path


# ------------------------------------------------------------------ parsing (raw Binance JSON -> domain)
_ORDER_STATUS = {s.value: s for s in OrderStatus} | {"EXPIRED_IN_MATCH": OrderStatus.EXPIRED}


def parse_market(
    raw: Mapping[str, Any],
    brackets: Sequence[Mapping[str, Any]] | None,
    default_max_leverage: int = DEFAULT_MAX_LEVERAGE,
) -> Market | None:
    """A USDT-margined perpetual from one ``exchangeInfo`` symbol; None for other contract kinds."""
    if raw.get("contractType") != "PERPETUAL" or raw.get("quoteAsset") != "USDT":
        return None
    filters = {f.get("filterType"): f for f in raw.get("filters", [])}
    price_f = filters.get("PRICE_FILTER", {})
    lot = filters.get("LOT_SIZE", {})
    market_lot = filters.get("MARKET_LOT_SIZE", {})
    notional = filters.get("MIN_NOTIONAL", {})
    # We only send MARKET orders: both lot filters must hold, so take the stricter of each bound.
    steps = [s for s in (_dec(lot.get("stepSize")), _dec(market_lot.get("stepSize"))) if s > 0]
    min_qtys = [q for q in (_dec(lot.get("minQty")), _dec(market_lot.get("minQty"))) if q > 0]
    max_qtys = [q for q in (_dec(lot.get("maxQty")), _dec(market_lot.get("maxQty"))) if q > 0]
    symbol = str(raw["symbol"])
    rules = SymbolRules(
        symbol=symbol,
        tick_size=_dec(price_f.get("tickSize")),
        step_size=max(steps) if steps else Decimal(0),
        min_qty=max(min_qtys) if min_qtys else Decimal(0),
        min_notional=_dec(notional.get("notional", notional.get("minNotional"))),
        max_qty=min(max_qtys) if max_qtys else None,
    )
    tiers = tuple(parse_bracket(b) for b in brackets or ())
    tiers = tuple(sorted(tiers, key=lambda b: b.notional_floor))
    max_leverage = max((b.max_leverage for b in tiers), default=default_max_leverage)
    return Market(
        symbol=symbol,
        base=str(raw.get("baseAsset", "")),
        quote=str(raw.get("quoteAsset", "")),
        status=str(raw.get("status", "")),
        rules=rules,
        max_leverage=max_leverage,
        brackets=tiers,
        delivery_ms=_epoch_ms(raw.get("deliveryDate"), "deliveryDate", symbol),
        onboard_ms=_epoch_ms(raw.get("onboardDate"), "onboardDate", symbol),
    )


def parse_bracket(raw: Mapping[str, Any]) -> Bracket:
    return Bracket(
        notional_floor=_dec(raw.get("notionalFloor")),
        notional_cap=_dec(raw.get("notionalCap")),
        maint_margin_ratio=_dec(raw.get("maintMarginRatio")),
        cum=_dec(raw.get("cum")),
        max_leverage=int(raw.get("initialLeverage", 0)),
    )


def parse_balance(raw: Mapping[str, Any]) -> Balance:
    """USDT figures from ``/fapi/v3/account`` (or v2): the USDT asset row, else the account totals."""
    usdt = next((a for a in raw.get("assets", []) if a.get("asset") == "USDT"), None)
    if usdt is not None:
        margin = usdt.get("positionInitialMargin", usdt.get("initialMargin"))
        return Balance(
            wallet=_dec(usdt.get("walletBalance")),
            available=_dec(usdt.get("availableBalance")),
            unrealized_pnl=_dec(usdt.get("unrealizedProfit")),
            margin_in_use=_dec(margin),
        )
    return Balance(
        wallet=_dec(raw.get("totalWalletBalance")),
        available=_dec(raw.get("availableBalance")),
        unrealized_pnl=_dec(raw.get("totalUnrealizedProfit")),
        margin_in_use=_dec(raw.get("totalPositionInitialMargin", raw.get("totalInitialMargin"))),
    )


def parse_position(raw: Mapping[str, Any]) -> ExchangePosition:
    liq = _dec(raw.get("liquidationPrice"))
    margin_type = raw.get("marginType")  # v2 only; v3 carries neither it nor the leverage
    leverage = raw.get("leverage")
    return ExchangePosition(
        symbol=str(raw["symbol"]),
        qty=_dec(raw.get("positionAmt")),
        entry_price=_dec(raw.get("entryPrice")),
        mark_price=_dec(raw.get("markPrice")),
        unrealized_pnl=_dec(raw.get("unRealizedProfit", raw.get("unrealizedProfit"))),
        liquidation_price=liq if liq > 0 else None,
        margin_mode=("isolated" if str(margin_type).lower() == "isolated" else "cross") if margin_type else None,
        leverage=int(leverage) if leverage not in (None, "") else None,
        update_time=int(raw.get("updateTime", 0) or 0),
    )


def parse_order(raw: Mapping[str, Any]) -> Order:
    status = _ORDER_STATUS.get(str(raw.get("status", "NEW")), OrderStatus.NEW)
    return Order(
        symbol=str(raw["symbol"]),
        order_id=str(raw.get("orderId", "")),
        client_order_id=str(raw.get("clientOrderId", "")),
        side=Side(str(raw["side"])),
        type=str(raw.get("origType") or raw.get("type", "")),
        status=status,
        qty=_dec(raw.get("origQty")),
        filled_qty=_dec(raw.get("executedQty")),
        avg_price=_dec(raw.get("avgPrice")),
        reduce_only=_bool(raw.get("reduceOnly")),
        update_time=int(raw.get("updateTime") or raw.get("time") or 0),
        raw=dict(raw),
    )


def parse_algo_order(raw: Mapping[str, Any]) -> AlgoOrder:
    return AlgoOrder(
        symbol=str(raw["symbol"]),
        algo_id=str(raw.get("algoId", "")),
        client_algo_id=str(raw.get("clientAlgoId", "")),
        side=Side(str(raw["side"])),
        type=str(raw.get("orderType") or raw.get("type", "")),
        status=AlgoStatus.parse(raw.get("algoStatus") or raw.get("status", "")),
        trigger_price=_dec(raw.get("triggerPrice")),
        close_position=_bool(raw.get("closePosition")),
        working_type=str(raw.get("workingType", "")),
        update_time=int(raw.get("updateTime") or raw.get("createTime") or 0),
        raw=dict(raw),
        qty=None if _bool(raw.get("closePosition")) else (_dec(raw.get("quantity")) or None),
    )


def parse_trade(raw: Mapping[str, Any]) -> Trade:
    return Trade(
        symbol=str(raw["symbol"]),
        order_id=str(raw.get("orderId", "")),
        side=Side(str(raw["side"])),
        price=_dec(raw.get("price")),
        qty=_dec(raw.get("qty")),
        fee=_dec(raw.get("commission")),  # in commissionAsset: USDT unless BNB fee discount is on
        realized_pnl=_dec(raw.get("realizedPnl")),
        time=int(raw.get("time", 0)),
        trade_id=str(raw.get("id", "")),
    )


def parse_force_order(raw: Mapping[str, Any]) -> ForceOrder:
    """One ``forceOrders`` row: ``autoclose-...`` is a liquidation, ``adl_autoclose`` an auto-deleveraging."""
    client_id = str(raw.get("clientOrderId", ""))
    return ForceOrder(
        symbol=str(raw["symbol"]),
        order_id=str(raw.get("orderId", "")),
        client_order_id=client_id,
        kind=AutoCloseKind.ADL if client_id.startswith("adl") else AutoCloseKind.LIQUIDATION,
        side=Side(str(raw["side"])),
        avg_price=_dec(raw.get("avgPrice")),
        filled_qty=_dec(raw.get("executedQty")),
        time=int(raw.get("updateTime") or raw.get("time") or 0),
    )


def parse_account_config(raw: Any) -> AccountConfig:
    """``/fapi/v1/accountConfig``; a reply without the position mode is an error (trading would be a guess)."""
    if not isinstance(raw, Mapping) or "dualSidePosition" not in raw:
        raise ExchangeError(f"accountConfig reply without dualSidePosition: {redact(str(raw))[:200]!r}")
    return AccountConfig(
        position_mode=PositionMode.HEDGE if _bool(raw["dualSidePosition"]) else PositionMode.ONE_WAY,
        multi_assets=_bool(raw.get("multiAssetsMargin", False)),
        can_trade=_bool(raw.get("canTrade", True)),
    )


def time_windows(start_ms: int, end_ms: int, span_ms: int) -> list[tuple[int, int]]:
    """``[start_ms, end_ms]`` cut into consecutive inclusive windows of ``span_ms`` (the last one shorter): each
    window's end is less than ``span_ms`` after its start, and the next starts one millisecond after it."""
    if span_ms <= 0:
        raise ValueError("span_ms must be positive")
    windows = []
    lo = start_ms
    while lo <= end_ms:
        hi = min(lo + span_ms - 1, end_ms)
        windows.append((lo, hi))
        lo = hi + 1
    return windows


def parse_funding_rate(row: Mapping[str, Any]) -> FundingRate:
    """One row of ``/fapi/v1/fundingRate`` (``markPrice`` is empty or missing on old records)."""
    try:
        mark = row.get("markPrice")
        rate = Decimal(str(row["fundingRate"]))
        return FundingRate(int(row["fundingTime"]), rate, Decimal(str(mark)) if mark not in (None, "") else None)
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ExchangeError(f"malformed funding rate row {redact(str(row))[:200]!r}") from exc


def parse_funding_income(row: Mapping[str, Any]) -> FundingIncome:
    """One row of ``/fapi/v1/income`` of type FUNDING_FEE."""
    try:
        return FundingIncome(
            tran_id=str(int(row["tranId"])),
            symbol=str(row["symbol"]),
            amount=Decimal(str(row["income"])),
            asset=str(row.get("asset") or "USDT"),
            time_ms=int(row["time"]),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ExchangeError(f"malformed income row {redact(str(row))[:200]!r}") from exc


def parse_premium_index(row: Any) -> PremiumIndex:
    """``/fapi/v1/premiumIndex`` of one symbol (an object; a list when no symbol was given)."""
    try:
        rate = row.get("lastFundingRate")  # empty for delivery contracts
        return PremiumIndex(
            symbol=str(row["symbol"]),
            mark_price=Decimal(str(row["markPrice"])),
            funding_rate=Decimal(str(rate)) if rate not in (None, "") else Decimal(0),
            next_funding_ms=int(row["nextFundingTime"]),
            time_ms=int(row["time"]),
        )
    except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
        raise ExchangeError(f"malformed premium index {redact(str(row))[:200]!r}") from exc


def parse_kline(row: Sequence[Any], exchange_now_ms: int) -> Kline:
    """One ``/fapi/v1/klines`` row; ``closed`` is False while its close time is still ahead of the exchange clock."""
    return Kline(
        open_time=int(row[0]),
        open=float(row[1]),
        high=float(row[2]),
        low=float(row[3]),
        close=float(row[4]),
        volume=float(row[5]),
        closed=int(row[6]) < exchange_now_ms,
    )


def parse_ticker_24h(raw: Mapping[str, Any]) -> Ticker24h:
    return Ticker24h(
        symbol=str(raw["symbol"]),
        last_price=float(raw.get("lastPrice", 0) or 0),
        quote_volume=float(raw.get("quoteVolume", 0) or 0),
        price_change_pct=float(raw.get("priceChangePercent", 0) or 0),
    )


# ------------------------------------------------------------------ small helpers
def _parsed_or_unknown(parse: Callable[[Any], Any], data: Any) -> Any:
    """An accepted order whose reply we cannot read: its fill is unknown, so the executor must ask."""
    try:
        return parse(data)
    except (KeyError, ValueError, TypeError, ExchangeError) as exc:
        raise OrderStatusUnknown(f"order reply unreadable ({type(exc).__name__}: {exc}); ask by client id") from exc


def fmt_decimal(value: Decimal) -> str:
    """A plain decimal string for the wire: no exponent, no trailing zeros (``5E+4`` -> ``50000``)."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def redact(text: str) -> str:
    """Messages may quote a signed URL: drop signatures and listen keys."""
    return _REDACT_RE.sub(r"\1\2***", text)


def _dec(value: Any) -> Decimal:
    if value is None or value == "":
        return Decimal(0)
    try:
        return Decimal(str(value))  # str() of a JSON float is its shortest exact repr
    except InvalidOperation as exc:
        raise ExchangeError(f"unreadable number from the exchange: {value!r}") from exc


def _epoch_ms(value: Any, name: str, symbol: str) -> int | None:
    """A time field of exchangeInfo (ms since the epoch); None when absent or 0, an error when unreadable."""
    if value is None or value == "" or (value == 0 and not isinstance(value, bool)):
        return None
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit():  # JSON numbers or digit strings only: no 1.5, -3 or 1e12
        raise ExchangeError(f"unreadable {name} of {symbol}: {value!r}")
    return int(text)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _as_list(data: Any) -> list:
    if isinstance(data, list):
        return data
    raise ExchangeError(f"expected a list from the exchange, got {type(data).__name__}")


def _require(value: str, what: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")


def _reveal(value: str | SecretStr | None) -> str | None:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value
