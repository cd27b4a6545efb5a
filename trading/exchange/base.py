"""The exchange port: what the engine needs from Binance USD-M, and nothing more.

Three adapters implement it: ``ccxt_adapter`` (live/testnet), ``paper`` (live
public data, simulated fills) and ``sim`` (offline replay); mypy proves it in
``conformance``. Domain types are plain dataclasses; raw ccxt dicts never leave
an adapter.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from trading.core.account import AccountConfig, PositionMode
from trading.core.models import Bracket, SymbolRules
from trading.core.order_state import AlgoStatus, ExchangeOrderStatus

if TYPE_CHECKING:
    from trading.clock import Clock

# re-exported: the maintenance brackets live in the core (risk needs them), the account settings too (its policy)
__all__ = ["AccountConfig", "AlgoStatus", "Bracket", "PositionMode"]

CLIENT_ID_PREFIX = "sdca-"
# recvWindow sent with every signed request: Binance refuses (and never executes) a request that reaches it
# later than this after its timestamp, so an order still absent that long after it was sent never will be.
REQUEST_WINDOW_MS = 10_000


# ------------------------------------------------------------------ errors
class ExchangeError(Exception):
    """Base of every error an adapter raises."""

    exchange_msg: str | None = None  # Binance's own ``msg``, apart from the decorated str(err)
    local: bool = False  # refused by our own gate before anything was sent (the order-count share)

    def __init__(self, message: str, *, code: int | None = None, http_status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.http_status = http_status


class RetriableError(ExchangeError):
    """Timeouts, 5xx, network trouble: safe to retry a *query*; an order's fate is unknown."""


class OrderStatusUnknown(RetriableError):
    """An order request whose outcome is unknown (timeout, 503 -1007): ask before re-sending."""


class RateLimitedError(ExchangeError):
    """429/418 or -1003: back off for ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: float, code: int | None = None, http_status: int | None = None):
        super().__init__(message, code=code, http_status=http_status)
        self.retry_after = retry_after


class RejectedError(ExchangeError):
    """The exchange refused the request (margin, quantity, reduce-only...): never retried."""


class NotFoundError(RejectedError):
    """The order (or algo order) does not exist (-2013, -2011 on cancel)."""


class AuthError(RejectedError):
    """Bad key, signature or timestamp (-2014, -2015, -1022, -1021)."""


# ------------------------------------------------------------------ values
class Side(StrEnum):
    BUY = "BUY"
    SELL = "SELL"


OrderStatus = ExchangeOrderStatus  # an order's status on the exchange (the pure enum lives in the core)


@dataclass(frozen=True, slots=True)
class Market:
    symbol: str
    base: str
    quote: str
    status: str  # "TRADING", ...
    rules: SymbolRules
    max_leverage: int
    brackets: tuple[Bracket, ...] = ()
    # exchangeInfo's deliveryDate (ms UTC): far in the future (year 2100) for a perpetual; Binance sets it to the
    # settlement time when it announces a delisting. None when the exchange did not say.
    delivery_ms: int | None = None
    onboard_ms: int | None = None  # exchangeInfo's onboardDate: when the contract was listed

    @property
    def trading(self) -> bool:
        return self.status == "TRADING"


@dataclass(frozen=True, slots=True)
class Balance:
    wallet: Decimal  # total wallet balance, USDT (sizes are fractions of this)
    available: Decimal
    unrealized_pnl: Decimal = Decimal(0)
    margin_in_use: Decimal = Decimal(0)  # initial margin of open positions


@dataclass(frozen=True, slots=True)
class ExchangePosition:
    symbol: str
    qty: Decimal  # signed: > 0 long, < 0 short (one-way mode)
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal | None = None
    margin_mode: str | None = None  # "cross" | "isolated" when known
    leverage: int | None = None  # positionRisk v3 carries none
    update_time: int = 0


@dataclass(frozen=True, slots=True)
class Order:
    symbol: str
    order_id: str
    client_order_id: str
    side: Side
    type: str
    status: OrderStatus
    qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal
    reduce_only: bool
    update_time: int
    fee: Decimal | None = None  # not in order replies; from trades or user-data events
    realized_pnl: Decimal | None = None
    raw: dict = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AlgoOrder:
    symbol: str
    algo_id: str
    client_algo_id: str
    side: Side
    type: str  # "STOP_MARKET"
    status: AlgoStatus
    trigger_price: Decimal
    close_position: bool
    working_type: str  # "MARK_PRICE" | "CONTRACT_PRICE"
    update_time: int = 0
    raw: dict = field(default_factory=dict, compare=False, repr=False)
    qty: Decimal | None = None  # a reduce-only quantity stop's quantity (None for closePosition)


@dataclass(frozen=True, slots=True)
class Trade:
    symbol: str
    order_id: str
    side: Side
    price: Decimal
    qty: Decimal
    fee: Decimal
    realized_pnl: Decimal
    time: int
    trade_id: str = ""  # the exchange's trade id (userTrades ``id``): pages a crowded window by ``fromId``


class AutoCloseKind(StrEnum):
    LIQUIDATION = "LIQUIDATION"  # the liquidation engine closed the position (``autoclose-`` order)
    ADL = "ADL"  # auto-deleveraging: closed to cover another account's liquidation (``adl_autoclose``)


@dataclass(frozen=True, slots=True)
class ForceOrder:
    """An order the exchange placed on the account's behalf (``GET /fapi/v1/forceOrders``)."""

    symbol: str
    order_id: str
    client_order_id: str
    kind: AutoCloseKind
    side: Side
    avg_price: Decimal
    filled_qty: Decimal
    time: int


@dataclass(frozen=True, slots=True)
class Kline:
    """One candle; floats, as indicators use them. ``open_time`` in ms UTC."""

    open_time: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    closed: bool = True


@dataclass(frozen=True, slots=True)
class Ticker24h:
    symbol: str
    last_price: float
    quote_volume: float
    price_change_pct: float = 0.0


@dataclass(frozen=True, slots=True)
class FundingRate:
    """One funding event of a symbol (``GET /fapi/v1/fundingRate``): ``rate`` was charged at ``time_ms`` (a
    fraction of the position's notional; positive: longs pay shorts), at ``mark_price`` when Binance says."""

    time_ms: int
    rate: Decimal
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class FundingIncome:
    """One funding payment of the account (``GET /fapi/v1/income``, ``incomeType=FUNDING_FEE``). ``amount`` as
    Binance reports it: negative when the account paid, positive when it received. ``tran_id`` is unique per
    account and income type: the payment's identity."""

    tran_id: str
    symbol: str
    amount: Decimal
    asset: str
    time_ms: int


@dataclass(frozen=True, slots=True)
class PremiumIndex:
    """``GET /fapi/v1/premiumIndex`` of one symbol: the mark price, the funding rate Binance currently shows
    (``lastFundingRate``) and the next funding time."""

    symbol: str
    mark_price: Decimal
    funding_rate: Decimal
    next_funding_ms: int
    time_ms: int


# ------------------------------------------------------------------ stream events
@dataclass(frozen=True, slots=True)
class KlineEvent:
    symbol: str
    interval: str
    kline: Kline
    event_time: int


@dataclass(frozen=True, slots=True)
class PriceEvent:
    """A price for a symbol: the last trade (kline close / aggTrade) or the mark price."""

    symbol: str
    price: str  # kept as the exchange's decimal string; converted only when a trigger is crossed
    event_time: int
    kind: str = "last"  # "last" | "mark"


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """ORDER_TRADE_UPDATE: one execution report."""

    symbol: str
    client_order_id: str
    order_id: str
    side: Side
    order_type: str
    execution_type: str  # NEW, TRADE, CANCELED, EXPIRED, CALCULATED (liquidation), ...
    status: OrderStatus
    last_qty: Decimal
    last_price: Decimal
    filled_qty: Decimal
    avg_price: Decimal
    fee: Decimal
    realized_pnl: Decimal
    reduce_only: bool
    event_time: int
    fee_asset: str = "USDT"  # BNB when the BNB fee discount is on


@dataclass(frozen=True, slots=True)
class AlgoUpdate:
    """ALGO_UPDATE: life cycle of a conditional (algo) order."""

    symbol: str
    client_algo_id: str
    algo_id: str
    status: AlgoStatus
    trigger_price: Decimal
    event_time: int
    executed_qty: Decimal = Decimal(0)  # "aq": what the triggered order filled (FINISHED with 0: nothing)


FUNDING_FEE = "FUNDING_FEE"  # ACCOUNT_UPDATE reason ("m") of a funding payment; also its income type
INCOME_MAX_ROWS = 20_000  # a funding income look-up returns at most this many rows (20 pages of 1000)


@dataclass(frozen=True, slots=True)
class AccountUpdate:
    """ACCOUNT_UPDATE: balances and positions that changed. ``balance_change`` is the asset's ``bc`` (the
    wallet's change except PnL and commission: for reason ``FUNDING_FEE`` the funding, negative when paid).
    A funding payment of a cross-margin position names no symbol (Binance sends the balance only)."""

    wallet_balance: Decimal | None
    positions: tuple[ExchangePosition, ...]
    reason: str
    event_time: int
    balance_change: Decimal | None = None


@dataclass(frozen=True, slots=True)
class AccountConfigUpdate:
    """ACCOUNT_CONFIG_UPDATE: the account's settings changed in the app or by another client: a symbol's leverage
    (``ac``) or the Multi-Assets mode (``ai``). Whichever part the event does not carry is None."""

    event_time: int
    multi_assets: bool | None = None
    symbol: str | None = None
    leverage: int | None = None


@dataclass(frozen=True, slots=True)
class StreamStatus:
    """A stream connection went down or came back (for alerts and /health)."""

    name: str
    up: bool
    detail: str
    event_time: int


UserEvent = OrderUpdate | AlgoUpdate | AccountUpdate | AccountConfigUpdate | StreamStatus
MarketEvent = KlineEvent | PriceEvent | StreamStatus


# ------------------------------------------------------------------ the port
@runtime_checkable
class ExchangePort(Protocol):
    """REST side of the exchange."""

    name: str

    async def load_markets(self) -> dict[str, Market]: ...
    async def server_time(self) -> int: ...
    async def fetch_balance(self) -> Balance: ...
    async def fetch_positions(self) -> list[ExchangePosition]: ...
    async def fetch_open_orders(self, symbol: str | None = None) -> list[Order]: ...
    async def fetch_open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]: ...
    async def fetch_order(self, symbol: str, client_order_id: str, *, priority: bool = False) -> Order | None:
        """The order with that client id, or None when the exchange has never seen it.

        ``priority``: the lookup resolves an exit whose outcome is unknown; it passes a rate-limit pause.
        """
        ...

    async def fetch_klines(
        self, symbol: str, interval: str, *, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[Kline]: ...
    async def fetch_tickers_24h(self) -> list[Ticker24h]: ...
    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """Last prices (REST fallback of the monitor)."""
        ...

    async def fetch_trades(self, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None) -> list[Trade]:
        """The account's trades of ``symbol`` from ``start_ms`` to ``end_ms`` (default now), oldest first; without
        ``start_ms`` the exchange's default (Binance: the last 7 days)."""
        ...

    async def fetch_force_orders(self, symbol: str, *, start_ms: int, end_ms: int | None = None) -> list[ForceOrder]:
        """Liquidation and ADL orders of ``symbol`` between ``start_ms`` and ``end_ms`` (default now), oldest first."""
        ...

    async def fetch_account_config(self) -> AccountConfig: ...
    async def set_position_mode(self, mode: PositionMode) -> None:
        """Switch the account's position mode (Binance refuses while a position or an open order exists)."""
        ...

    async def fetch_funding_income(self, start_ms: int, end_ms: int) -> list[FundingIncome]:
        """The account's funding payments with ``start_ms <= time <= end_ms``, oldest first (every page)."""
        ...

    async def create_market_order(
        self, symbol: str, side: Side, qty: Decimal, *, client_order_id: str, reduce_only: bool
    ) -> Order:
        """MARKET order with ``newOrderRespType=RESULT``; raises ``OrderStatusUnknown`` if the outcome is unknown."""
        ...

    async def create_stop_market_close(self, symbol: str, trigger_price: Decimal, *, client_algo_id: str) -> AlgoOrder:
        """Conditional STOP_MARKET SELL closePosition=true on MARK_PRICE via the Algo Order API."""
        ...

    async def create_stop_market_reduce(
        self, symbol: str, trigger_price: Decimal, qty: Decimal, *, client_algo_id: str
    ) -> AlgoOrder:
        """Conditional STOP_MARKET SELL of ``qty``, reduceOnly, on MARK_PRICE via the Algo Order API. Binance
        allows it beside a closePosition stop (which is one per side), so a backstop can be replaced without
        a moment unprotected."""
        ...

    async def cancel_order(self, symbol: str, client_order_id: str) -> None: ...
    async def cancel_algo_order(self, symbol: str, client_algo_id: str) -> None: ...
    async def set_leverage(self, symbol: str, leverage: int) -> None: ...
    async def set_margin_mode(self, symbol: str, mode: str) -> None:
        """``cross`` or ``isolated``; "no need to change" counts as success."""
        ...

    def used_weight(self) -> int:
        """The last ``X-MBX-USED-WEIGHT-1M`` seen (0 for simulated exchanges)."""
        ...

    async def close(self) -> None: ...


class MarketStream(Protocol):
    """Market data: klines of every universe symbol, fast prices of held symbols."""

    async def set_symbols(self, kline_symbols: Sequence[str], price_symbols: Sequence[str]) -> None: ...
    def events(self) -> AsyncIterator[MarketEvent]: ...
    def last_message_age(self) -> float | None: ...
    async def close(self) -> None: ...


class UserStream(Protocol):
    """Account events: fills, algo order life cycle, balances/positions."""

    def events(self) -> AsyncIterator[UserEvent]: ...
    async def close(self) -> None: ...


class ListenKeyAPI(Protocol):
    """REST calls behind the user-data stream (live adapter only)."""

    async def create_listen_key(self) -> str: ...
    async def keepalive_listen_key(self, listen_key: str) -> None: ...
    async def close_listen_key(self, listen_key: str) -> None: ...


@dataclass
class ExchangeBundle:
    """What a trading mode provides: the REST port, both streams and the clock the engine must use.

    In sim mode the clock is the replay's simulated time; otherwise the system clock.
    """

    mode: str
    port: ExchangePort
    market: MarketStream
    user: UserStream
    clock: Clock

    async def close(self) -> None:
        for part in (self.market, self.user):
            with contextlib.suppress(Exception):  # closing is best effort
                await part.close()
        await self.port.close()
