"""Plain records of the fake exchange's state; tests read them through ``FakeBinance``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

ZERO = Decimal(0)
PERPETUAL_DELIVERY_DATE = 4133404800000  # 2100-12-25, what exchangeInfo shows for a perpetual with no delisting
BOTH, LONG, SHORT = "BOTH", "LONG", "SHORT"  # Binance's positionSide values


def decimals_of(step: Decimal) -> int:
    """Decimals of a step size as written ("0.10" -> 2 like Binance's pricePrecision, "1" -> 0)."""
    exponent = step.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def to_decimal(value: object, name: str = "value") -> Decimal:
    """Strings, ints, floats (through their repr) and Decimals; anything else is refused."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise TypeError(f"{name}: a number is needed, not {value!r}")
    elif isinstance(value, int | str):
        result = Decimal(str(value).strip())
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise TypeError(f"{name}: a number is needed, not {value!r}")
    if not result.is_finite():
        raise ValueError(f"{name}: {value!r} is not a finite number")
    return result


def plain(value: Decimal) -> str:
    """A decimal without exponent and without trailing zeros ("50000", "0.001")."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def fixed(value: Decimal, places: int) -> str:
    """A decimal with exactly ``places`` decimals, as Binance prints balances and prices."""
    quantum = Decimal(1).scaleb(-places)
    return format(value.quantize(quantum), "f")


@dataclass
class SymbolSpec:
    symbol: str
    base_asset: str
    quote_asset: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    market_max_qty: Decimal
    min_notional: Decimal
    max_leverage: int
    status: str
    contract_type: str = "PERPETUAL"
    onboard_date: int = 1569398400000
    # perpetuals carry this far-future date until a delisting is announced (then: the settlement time)
    delivery_date: int = PERPETUAL_DELIVERY_DATE
    max_algo_orders: int = 10  # the MAX_NUM_ALGO_ORDERS filter
    funding_interval_hours: int = 8
    # set when fundingInfo lists the symbol (Binance lists only symbols with adjusted cap/floor/interval)
    funding_cap: Decimal | None = None
    funding_floor: Decimal | None = None
    close_only_from: int | None = None  # after a delisting announcement: no new positions from then on

    @property
    def price_decimals(self) -> int:
        return decimals_of(self.tick_size)

    @property
    def qty_decimals(self) -> int:
        return decimals_of(self.step_size)

    def on_tick(self, value: Decimal) -> Decimal:
        """``value`` written with the tick's decimals ("50000" -> 50000.00 for a 0.10 tick); off-tick is an error."""
        if value % self.tick_size:
            raise ValueError(f"{self.symbol}: price {value} is not a multiple of the tick size {self.tick_size}")
        return value.quantize(Decimal(1).scaleb(-self.price_decimals))

    def price_str(self, value: Decimal) -> str:
        return fixed(value, self.price_decimals)

    def qty_str(self, value: Decimal) -> str:
        return fixed(value, self.qty_decimals)


@dataclass
class MarketState:
    last: Decimal
    mark: Decimal
    open_24h: Decimal
    high_24h: Decimal
    low_24h: Decimal
    quote_volume: Decimal
    funding_rate: Decimal = Decimal("0.00010000")
    last_qty: Decimal = ZERO


@dataclass
class SymbolSettings:
    leverage: int = 20
    margin_type: str = "CROSSED"  # Binance spelling: CROSSED | ISOLATED


@dataclass
class Position:
    """One position row: the BOTH row in one-way mode, or the LONG / SHORT leg in hedge mode."""

    symbol: str
    side: str = BOTH  # positionSide
    qty: Decimal = ZERO  # signed, as Binance prints positionAmt (a SHORT leg is negative)
    entry_price: Decimal = ZERO
    accumulated_realized: Decimal = ZERO
    update_time: int = 0


class PositionView(NamedTuple):
    qty: Decimal
    entry_price: Decimal


@dataclass
class FakeOrder:
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    qty: Decimal
    status: str
    avg_price: Decimal
    reduce_only: bool
    price: Decimal = ZERO
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    time_in_force: str = "GTC"
    orig_type: str = ""
    close_position: bool = False
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    time: int = 0
    update_time: int = 0
    fee: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    source: str = "api"  # api | web (by hand) | algo (triggered algo) | liquidation | adl | settlement
    algo_id: int | None = None
    position_side: str = BOTH

    @property
    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


@dataclass
class FakeAlgoOrder:
    algo_id: int
    client_algo_id: str
    symbol: str
    side: str
    order_type: str  # STOP_MARKET | TAKE_PROFIT_MARKET
    status: str  # NEW TRIGGERING TRIGGERED FINISHED CANCELED EXPIRED REJECTED
    trigger_price: Decimal
    close_position: bool
    reduce_only: bool
    working_type: str
    qty: Decimal = ZERO
    price_protect: bool = False
    time_in_force: str = "GTC"
    create_time: int = 0
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    actual_price: Decimal = ZERO
    actual_qty: Decimal = ZERO
    reject_reason: str = ""
    position_side: str = BOTH

    @property
    def is_open(self) -> bool:
        return self.status == "NEW"


@dataclass
class FakeTrade:
    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    realized_pnl: Decimal
    time: int
    maker: bool = False
    position_side: str = BOTH


@dataclass
class IncomeRow:
    """One row of GET /fapi/v1/income (``tranId`` is unique per income type)."""

    symbol: str  # "" for account-wide flows (TRANSFER)
    income_type: str  # TRANSFER REALIZED_PNL FUNDING_FEE COMMISSION ...
    income: Decimal
    asset: str
    info: str
    time: int
    tran_id: int
    trade_id: str = ""


@dataclass
class FundingRecord:
    """One row of GET /fapi/v1/fundingRate: a funding event of a symbol."""

    symbol: str
    rate: Decimal
    time: int
    mark: Decimal | None  # None on old records: Binance returns an empty markPrice for them


@dataclass
class RequestRecord:
    method: str
    path: str
    params: dict[str, str]
    signed_ok: bool | None  # None: the endpoint is not signed
    status: int = 0
    weight: int = 0
    time_ms: int = 0
    code: int | None = None  # Binance error code of the reply, if any
    fault: str | None = None  # the injected fault that answered, if any
    raw_body: str = field(default="", repr=False)


@dataclass
class WsClientInfo:
    client_id: int
    kind: str  # market | public | private
    path: str
    combined: bool
    streams: list[str] = field(default_factory=list)
    listen_key: str | None = None
    events_filter: frozenset[str] | None = None
    connected_at_ms: int = 0
    messages_in: int = 0


@dataclass
class WsClientMessage:
    client_id: int
    kind: str
    text: str
    time_ms: int

    def json(self) -> Any:
        import json

        return json.loads(self.text)
