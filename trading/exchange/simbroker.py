"""The simulated matching engine shared by sim, paper and the backtest.

One USDT wallet, one-way positions, MARKET orders filled at once at the current
price with slippage, and conditional STOP_MARKET ``closePosition`` algo orders
that trigger on the (mark) price. It imitates Binance USD-M where the engine
could tell the difference:

- buys fill above the price, sells below, each rounded to the tick *against* us;
  every fill pays the taker fee on its notional;
- realised PnL uses Binance's average-cost rule: adding moves the entry price to
  the quantity-weighted average, reducing leaves it unchanged;
- fees and realised PnL are booked in units of 1e-8 USDT (half-up), so the
  wallet is always exactly start + sum(realised) - sum(fees);
- rejections carry Binance's codes: ``-2022`` reduce-only that would increase or
  flip, ``-4164`` below min notional (not for reduce-only), ``-2019`` margin,
  ``-2021`` stop that would trigger at once, ``-2011`` unknown order on cancel,
  ``-1111`` precision, ``-1121`` unknown symbol, ``-4045`` too many stops;
- a triggered stop's fill carries the ``client_algo_id`` as its client order
  id; a ``closePosition`` stop outlives a position closed by other means and,
  if it later triggers with no position, finishes without trading;
- every change is also published as user-data events (``OrderUpdate``,
  ``AlgoUpdate``, ``AccountUpdate``) to the listeners, as the live stream would;
- funding (``apply_funding``, called by whoever knows the funding times): each
  open position pays ``qty x mark x rate`` (a long pays a positive rate), booked
  to the wallet in 1e-8 USDT units and published as an ``AccountUpdate`` with
  reason ``FUNDING_FEE`` and the balance change, without positions for a
  cross-margin position and with that one position for an isolated one, as
  Binance's ACCOUNT_UPDATE does; each charge gets an id (``tran_id``) and is
  kept as the account's income history (``funding_income``, what
  ``GET /fapi/v1/income?incomeType=FUNDING_FEE`` answers).

Everything is synchronous: the price path of a replay runs through
:meth:`SimBroker.on_price` without awaiting anything. Not simulated:
liquidation, partial fills, order-book depth.

Persistence (optional): given a ``sqlite3.Connection`` to a database the
storage migrations have set up, the broker keeps its state in the ``sim_*``
tables, keyed by ``account`` so sim and paper can share one database. It writes once per fill / order / setting
change in one small transaction (a SAVEPOINT, so it nests inside a caller's
transaction), never per price.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, ROUND_HALF_UP, ROUND_UP, Decimal, InvalidOperation

from trading.core.decimals import decimal_of
from trading.exchange.base import (
    FUNDING_FEE,
    AccountUpdate,
    AlgoOrder,
    AlgoStatus,
    AlgoUpdate,
    Balance,
    ExchangePosition,
    FundingIncome,
    Market,
    NotFoundError,
    Order,
    OrderStatus,
    OrderUpdate,
    RejectedError,
    Side,
    Trade,
    UserEvent,
)

ZERO = Decimal(0)
USDT_UNIT = Decimal("0.00000001")  # fees and realised PnL are booked in whole units of 1e-8 USDT (asset precision)
ONE = Decimal(1)
DEFAULT_TAKER_FEE = Decimal("0.0005")
DEFAULT_SLIPPAGE = Decimal("0.0005")
DEFAULT_LEVERAGE = 20  # Binance's initial leverage for a symbol never configured
MAX_ALGO_ORDERS_PER_SYMBOL = 10  # exchangeInfo MAX_NUM_ALGO_ORDERS
_CLIENT_ID = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")
_NEG_INF = float("-inf")

UserListener = Callable[[UserEvent], None]


@dataclass(frozen=True, slots=True)
class FundingFee:
    """One funding charge booked to the wallet: ``amount`` = qty x mark x rate (> 0: paid, < 0: received)."""

    symbol: str
    time_ms: int
    rate: Decimal
    mark: Decimal
    qty: Decimal
    amount: Decimal
    tran_id: int = 0  # the charge's id in the account's income history

    def income(self) -> FundingIncome:
        """As the income history reports it: the wallet's change (negative when paid)."""
        return FundingIncome(str(self.tran_id), self.symbol, -self.amount, "USDT", self.time_ms)


@dataclass(slots=True)
class _Position:
    qty: Decimal  # signed: > 0 long, < 0 short
    entry: Decimal
    update_time: int


def _dec(value: Decimal | str | float | int) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return decimal_of(value)
    return Decimal(value)


def usdt(amount: Decimal) -> Decimal:
    """An amount booked to the wallet: rounded half-up to 1e-8 USDT, so wallet sums stay exact."""
    return amount.quantize(USDT_UNIT, rounding=ROUND_HALF_UP)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return step <= 0 or (value % step) == 0


class SimBroker:
    """A simulated USD-M account. All methods are synchronous; see the module docstring."""

    def __init__(
        self,
        conn: sqlite3.Connection | None = None,
        *,
        account: str = "sim",
        markets: Mapping[str, Market] | None = None,
        balance: Decimal | str | float = Decimal(1000),
        taker_fee: Decimal | str | float = DEFAULT_TAKER_FEE,
        slippage: Decimal | str | float = DEFAULT_SLIPPAGE,
        now_ms: Callable[[], int] | None = None,
    ) -> None:
        self.account = account
        self.taker_fee = _dec(taker_fee)
        self.slippage = _dec(slippage)
        if not (ZERO <= self.taker_fee < ONE) or not (ZERO <= self.slippage < ONE):
            raise ValueError(f"taker_fee and slippage must lie in [0, 1), got {self.taker_fee} and {self.slippage}")
        self._conn = conn
        self.now_fn = now_ms  # the clock for order/event times; None: the time of the newest price
        self._now = 0  # time of the newest price seen (used when no clock is given)
        self._markets: dict[str, Market] = dict(markets or {})
        self._listeners: list[UserListener] = []
        self.events_emitted = 0  # user events published so far (lets a stream notice that a price caused a fill)
        self._last: dict[str, Decimal | str | float] = {}  # raw last price per symbol (converted lazily)
        self._stop_max: dict[str, float] = {}  # highest open stop trigger per symbol: the one-compare fast path
        self.wallet = _dec(balance)
        self.positions: dict[str, _Position] = {}
        self.leverage: dict[str, int] = {}
        self.margin_mode: dict[str, str] = {}
        self._algos: dict[str, AlgoOrder] = {}  # open algo orders by client algo id (creation order)
        self._orders: dict[str, Order] = {}  # newest order per client order id (this session + loaded)
        self._trades: list[Trade] = []
        self.funding: list[FundingFee] = []  # every funding charge of this session, in time order
        self._next_order_id = 1
        self._next_algo_id = 1
        self._next_trade_id = 1
        self._next_tran_id = 1
        self.cursor_ms: int | None = None  # the replay's cursor, saved with every fill and on flush()
        self._saved_cursor: int | None = None
        if conn is not None:  # its tables come from the storage migrations (storage/migrations.py, version 2)
            self._load(initial_balance=self.wallet)

    # ------------------------------------------------------------------ wiring
    def set_markets(self, markets: Mapping[str, Market]) -> None:
        self._markets = dict(markets)

    @property
    def markets(self) -> Mapping[str, Market]:
        return self._markets

    def add_listener(self, listener: UserListener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: UserListener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def now_ms(self) -> int:
        return self.now_fn() if self.now_fn is not None else self._now

    # ------------------------------------------------------------------ prices (hot path)
    def on_price(self, symbol: str, price: Decimal | str | float, ts_ms: int) -> None:
        """Last and mark price at once (REST prices, tests): open stops at or above it trigger now."""
        self._set_last(symbol, price, ts_ms)
        self._check_stops(symbol, price, price, ts_ms)

    def on_trade(self, symbol: str, price: Decimal | str | float, ts_ms: int) -> None:
        """A new last price in a replay. Stops work on the mark price, which trails the last trade: here the
        mark is the previous price visited. So the service, which reacts to the last price as it does on
        Binance, gets the first chance at its own stop, and the exchange-side backstop is the safety net.
        A triggered stop fills at the current price (or its trigger, whichever is lower)."""
        mark = self._last.get(symbol)
        self._set_last(symbol, price, ts_ms)
        if mark is not None:
            self._check_stops(symbol, mark, price, ts_ms)

    def on_last(self, symbol: str, price: Decimal | str | float, ts_ms: int) -> None:
        """A last price only (paper: the stops wait for the real mark price stream)."""
        self._set_last(symbol, price, ts_ms)

    def on_mark(self, symbol: str, mark: Decimal | str | float, ts_ms: int) -> None:
        """Binance's mark price (paper): stops trigger on it and fill at the last price."""
        if ts_ms > self._now:  # noqa: PLR1730
            self._now = ts_ms
        self._check_stops(symbol, mark, self._last.get(symbol, mark), ts_ms)

    def _set_last(self, symbol: str, price: Decimal | str | float, ts_ms: int) -> None:
        self._last[symbol] = price
        if ts_ms > self._now:  # noqa: PLR1730 - hot path: a compare is cheaper than max()
            self._now = ts_ms

    def _check_stops(
        self, symbol: str, mark: Decimal | str | float, fill_at: Decimal | str | float, ts_ms: int
    ) -> None:
        top = self._stop_max.get(symbol, _NEG_INF)
        if top == _NEG_INF:
            return
        f = mark if type(mark) is float else float(mark)
        if f <= top:
            self._trigger_stops(symbol, self._to_price(symbol, mark), ts_ms, fill_at=self._to_price(symbol, fill_at))

    def last_price(self, symbol: str) -> Decimal | None:
        raw = self._last.get(symbol)
        return None if raw is None else self._to_price(symbol, raw)

    def _to_price(self, symbol: str, raw: Decimal | str | float) -> Decimal:
        if type(raw) is float:
            market = self._markets.get(symbol)
            if market is not None and market.rules.tick_size > 0:
                # floats from candle arrays: back to the tick grid (0.30000000000000004 -> 0.3)
                return decimal_of(raw).quantize(market.rules.tick_size.normalize())
            return decimal_of(raw)
        return _dec(raw)

    # ------------------------------------------------------------------ queries
    def balance(self) -> Balance:
        upnl = ZERO
        margin = ZERO
        for symbol, pos in self.positions.items():
            mark = self.last_price(symbol) or pos.entry
            upnl += (mark - pos.entry) * pos.qty
            margin += abs(pos.qty) * mark / self._leverage(symbol)
        return Balance(
            wallet=self.wallet, available=self.wallet + upnl - margin, unrealized_pnl=upnl, margin_in_use=margin
        )

    def position_list(self) -> list[ExchangePosition]:
        return [self._position_view(s, p) for s, p in sorted(self.positions.items())]

    def open_algo_orders(self, symbol: str | None = None) -> list[AlgoOrder]:
        return [a for a in self._algos.values() if symbol is None or a.symbol == symbol]

    def order(self, symbol: str, client_order_id: str) -> Order | None:
        """The newest order with that client id (a filled MARKET id can be reused), or None."""
        found = self._orders.get(client_order_id)
        if found is None and self._conn is not None:
            found = self._load_order(client_order_id)
            if found is not None:
                self._orders[client_order_id] = found
        if found is None or found.symbol != symbol:
            return None
        return found

    def trades(self, symbol: str, start_ms: int | None = None) -> list[Trade]:
        if self._conn is not None:
            return self._load_trades(symbol, start_ms)
        return [t for t in self._trades if t.symbol == symbol and (start_ms is None or t.time >= start_ms)]

    def active_symbols(self) -> set[str]:
        """Symbols with a position or a resting stop: what a price can still change here."""
        return {*self.positions, *self._stop_max}

    # ------------------------------------------------------------------ funding
    def apply_funding(
        self, symbol: str, rate: Decimal, ts_ms: int, *, mark: Decimal | None = None
    ) -> FundingFee | None:
        """A funding time of ``symbol`` at ``rate``: the open position (if any) pays ``qty x mark x rate``,
        the mark being ``mark`` when the exchange's history tells it, else the last price here (the
        simulator's mark). Returns the charge, None without a position."""
        pos = self.positions.get(symbol)
        if pos is None or pos.qty == 0:
            return None
        mark = mark or self.last_price(symbol) or pos.entry
        amount = usdt(pos.qty * mark * rate)
        fee = FundingFee(symbol, ts_ms, rate, mark, pos.qty, amount, self._next_tran_id)
        self._next_tran_id += 1
        self.wallet -= amount
        self.funding.append(fee)
        with self._tx() as cur:
            if cur is not None:
                self._save_meta(cur, "wallet", str(self.wallet))
                cur.execute(
                    "INSERT INTO sim_funding(account, tran_id, symbol, time, rate, mark, qty, amount)"
                    " VALUES (?,?,?,?,?,?,?,?)",
                    (self.account, fee.tran_id, symbol, ts_ms, str(rate), str(mark), str(pos.qty), str(amount)),
                )
        isolated = self.margin_mode.get(symbol, "cross") == "isolated"
        positions = (self._position_view(symbol, pos),) if isolated else ()
        self._emit(AccountUpdate(self.wallet, positions, FUNDING_FEE, ts_ms, balance_change=-amount))
        return fee

    def funding_income(self, start_ms: int, end_ms: int) -> list[FundingIncome]:
        """The charges with ``start_ms <= time <= end_ms`` as the income history lists them, oldest first."""
        if self._conn is not None:
            rows = (
                self._cursor()
                .execute(
                    "SELECT tran_id, symbol, amount, time FROM sim_funding WHERE account=? AND time>=? AND time<=?"
                    " ORDER BY time, tran_id",
                    (self.account, start_ms, end_ms),
                )
                .fetchall()
            )
            return [FundingIncome(str(r[0]), str(r[1]), -Decimal(r[2]), "USDT", int(r[3])) for r in rows]
        # The session's charges are in time order (the caller moves time forward): bisect, not a scan.
        first = bisect_left(self.funding, start_ms, key=lambda f: f.time_ms)
        last = bisect_right(self.funding, end_ms, key=lambda f: f.time_ms)
        return [f.income() for f in self.funding[first:last]]

    def last_funding_ms(self, symbol: str) -> int | None:
        """The time of the symbol's latest charge (persisted accounts: across restarts)."""
        if self._conn is not None:
            row = (
                self._cursor()
                .execute("SELECT MAX(time) FROM sim_funding WHERE account=? AND symbol=?", (self.account, symbol))
                .fetchone()
            )
            return int(row[0]) if row is not None and row[0] is not None else None
        times = [f.time_ms for f in self.funding if f.symbol == symbol]
        return max(times) if times else None

    # ------------------------------------------------------------------ settings
    def set_leverage(self, symbol: str, leverage: int) -> None:
        market = self._market(symbol)
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= market.max_leverage:
            raise RejectedError(f"Leverage {leverage} is not valid", code=-4028, http_status=400)
        self.leverage[symbol] = leverage
        self._save_symbol_settings(symbol)

    def set_margin_mode(self, symbol: str, mode: str) -> None:
        self._market(symbol)
        mode = mode.lower()
        if mode in ("crossed", "cross"):
            mode = "cross"
        if mode not in ("cross", "isolated"):
            raise RejectedError(f"Invalid marginType {mode!r}", code=-1102, http_status=400)
        if self.margin_mode.get(symbol, "cross") == mode:
            return  # Binance's -4046 "No need to change margin type." counts as success
        if symbol in self.positions:
            raise RejectedError("Margin type cannot be changed if there exists position.", code=-4048, http_status=400)
        self.margin_mode[symbol] = mode
        self._save_symbol_settings(symbol)

    def _leverage(self, symbol: str) -> int:
        return self.leverage.get(symbol, DEFAULT_LEVERAGE)

    # ------------------------------------------------------------------ orders
    def market_order(
        self, symbol: str, side: Side | str, qty: Decimal | str, *, client_order_id: str, reduce_only: bool = False
    ) -> Order:
        """Fill a MARKET order now (``newOrderRespType=RESULT``) or raise ``RejectedError``."""
        side = Side(side)
        market = self._market(symbol)
        self._check_client_id(client_order_id)
        try:
            qty = _dec(qty)
        except (InvalidOperation, ValueError):
            raise RejectedError(f"Invalid quantity {qty!r}", code=-1102, http_status=400) from None
        rules = market.rules
        if not qty.is_finite() or qty <= 0:
            raise RejectedError("Quantity less than or equal to zero.", code=-4003, http_status=400)
        if not _is_multiple(qty, rules.step_size):
            raise RejectedError("Precision is over the maximum defined for this asset.", code=-1111, http_status=400)
        if rules.max_qty is not None and qty > rules.max_qty:
            raise RejectedError("Quantity greater than max quantity.", code=-4005, http_status=400)
        price = self.last_price(symbol)
        if price is None:
            raise RejectedError(f"no price for {symbol} yet: the simulator cannot fill", code=-1121, http_status=400)
        pos = self.positions.get(symbol)
        pos_qty = pos.qty if pos is not None else ZERO
        signed = qty if side is Side.BUY else -qty
        if reduce_only:
            # Only a move towards zero that does not cross it: anything else would increase or flip (-2022).
            if pos_qty == 0 or (pos_qty > 0) == (signed > 0) or qty > abs(pos_qty):
                raise RejectedError("ReduceOnly Order is rejected.", code=-2022, http_status=400)
        else:
            if qty < rules.min_qty:
                raise RejectedError(
                    f"Quantity less than minimum quantity {rules.min_qty}.", code=-4003, http_status=400
                )
            if qty * price < rules.min_notional:
                raise RejectedError(
                    f"Order's notional must be no smaller than {rules.min_notional} (unless you choose reduce only).",
                    code=-4164,
                    http_status=400,
                )
            opening = qty if pos_qty == 0 or (pos_qty > 0) == (signed > 0) else max(ZERO, qty - abs(pos_qty))
            if opening > 0:
                need = opening * price / self._leverage(symbol) + qty * price * self.taker_fee
                if need > self.balance().available:
                    raise RejectedError("Margin is insufficient.", code=-2019, http_status=400)
        now = self.now_ms()
        return self._fill(symbol, side, qty, price, client_id=client_order_id, reduce_only=reduce_only, ts=now)

    def cancel_order(self, symbol: str, client_order_id: str) -> None:
        """MARKET orders are final the moment they are accepted: there is never an open one to cancel."""
        self._market(symbol)
        raise NotFoundError("Unknown order sent.", code=-2011, http_status=400)

    def place_stop_close(
        self, symbol: str, trigger_price: Decimal | str, *, client_algo_id: str, qty: Decimal | None = None
    ) -> AlgoOrder:
        """Conditional STOP_MARKET SELL on the mark price (in sim, mark = last): ``closePosition=true``, or
        reduce-only for ``qty``. As on Binance, one closePosition stop per side (-4130); quantity stops may
        rest beside it."""
        market = self._market(symbol)
        self._check_client_id(client_algo_id)
        try:
            trigger = _dec(trigger_price)
        except (InvalidOperation, ValueError):
            raise RejectedError(f"Invalid triggerPrice {trigger_price!r}", code=-1102, http_status=400) from None
        if not trigger.is_finite() or trigger <= 0:
            raise RejectedError(
                "Mandatory parameter 'triggerPrice' was not sent, was empty/null, or malformed.",
                code=-1102,
                http_status=400,
            )
        if not _is_multiple(trigger, market.rules.tick_size):
            raise RejectedError("Precision is over the maximum defined for this asset.", code=-1111, http_status=400)
        if qty is not None and (qty <= 0 or not _is_multiple(qty, market.rules.step_size)):
            raise RejectedError("Precision is over the maximum defined for this asset.", code=-1111, http_status=400)
        if client_algo_id in self._algos:
            raise RejectedError("Duplicate clientAlgoId.", code=-4116, http_status=400)
        if sum(1 for a in self._algos.values() if a.symbol == symbol) >= MAX_ALGO_ORDERS_PER_SYMBOL:
            raise RejectedError("Reach max stop order limit.", code=-4045, http_status=400)
        if qty is None and any(a.symbol == symbol and a.close_position for a in self._algos.values()):
            raise RejectedError(
                "An open stop or take profit order with GTE and closePosition in the direction is existing.",
                code=-4130,
                http_status=400,
            )
        mark = self.last_price(symbol)
        if mark is not None and mark <= trigger:
            raise RejectedError("Order would immediately trigger.", code=-2021, http_status=400)
        now = self.now_ms()
        algo = AlgoOrder(
            symbol=symbol,
            algo_id=str(self._next_algo_id),
            client_algo_id=client_algo_id,
            side=Side.SELL,
            type="STOP_MARKET",
            status=AlgoStatus.NEW,
            trigger_price=trigger,
            close_position=qty is None,
            working_type="MARK_PRICE",
            update_time=now,
            qty=qty,
        )
        self._next_algo_id += 1
        self._algos[client_algo_id] = algo
        self._reindex_stops(symbol)
        with self._tx() as cur:
            if cur is not None:
                self._save_algo(cur, algo)
        self._emit(AlgoUpdate(symbol, client_algo_id, algo.algo_id, AlgoStatus.NEW, trigger, now))
        return algo

    def cancel_algo(self, symbol: str, client_algo_id: str) -> None:
        algo = self._algos.get(client_algo_id)
        if algo is None or algo.symbol != symbol:
            raise NotFoundError("Unknown order sent.", code=-2011, http_status=400)
        self._finish_algo(algo, AlgoStatus.CANCELED, self.now_ms())

    # ------------------------------------------------------------------ internals: fills
    def _trigger_stops(self, symbol: str, price: Decimal, ts: int, *, fill_at: Decimal | None = None) -> None:
        fill_at = price if fill_at is None else fill_at
        for algo in [a for a in self._algos.values() if a.symbol == symbol and price <= a.trigger_price]:
            if algo.client_algo_id not in self._algos:
                continue
            for status in (AlgoStatus.TRIGGERING, AlgoStatus.TRIGGERED):
                self._emit(AlgoUpdate(symbol, algo.client_algo_id, algo.algo_id, status, algo.trigger_price, ts))
            pos = self.positions.get(symbol)
            if pos is not None and pos.qty > 0:
                # A market sell of the whole long (closePosition) or of at most its quantity (reduce-only);
                # the price may have gapped through the trigger.
                base = min(algo.trigger_price, fill_at)
                self._fill(
                    symbol,
                    Side.SELL,
                    pos.qty if algo.qty is None else min(algo.qty, pos.qty),
                    base,
                    client_id=algo.client_algo_id,
                    reduce_only=True,
                    ts=ts,
                    finishing=algo,
                )
            else:
                self._finish_algo(algo, AlgoStatus.FINISHED, ts)  # no long to close: finishes without trading

    def _fill_price(self, symbol: str, side: Side, base: Decimal) -> Decimal:
        tick = self._markets[symbol].rules.tick_size
        if side is Side.BUY:
            px = base * (ONE + self.slippage)
            return (px / tick).to_integral_value(rounding=ROUND_UP) * tick if tick > 0 else px
        px = base * (ONE - self.slippage)
        px = (px / tick).to_integral_value(rounding=ROUND_DOWN) * tick if tick > 0 else px
        return px if px > 0 else tick

    def _fill(
        self,
        symbol: str,
        side: Side,
        qty: Decimal,
        base_price: Decimal,
        *,
        client_id: str,
        reduce_only: bool,
        ts: int,
        finishing: AlgoOrder | None = None,
    ) -> Order:
        price = self._fill_price(symbol, side, base_price)
        fee = usdt(price * qty * self.taker_fee)
        signed = qty if side is Side.BUY else -qty
        pos = self.positions.get(symbol)
        realized = ZERO
        if pos is None or pos.qty == 0:
            new_pos: _Position | None = _Position(signed, price, ts)
        elif (pos.qty > 0) == (signed > 0):
            total = pos.qty + signed
            entry = (pos.entry * abs(pos.qty) + price * qty) / abs(total)
            new_pos = _Position(total, entry, ts)
        else:
            closed = min(qty, abs(pos.qty))
            direction = ONE if pos.qty > 0 else -ONE
            realized = usdt((price - pos.entry) * closed * direction)  # average cost: entry unchanged on reduce
            rest = pos.qty + signed
            if rest == 0:
                new_pos = None
            elif (rest > 0) == (pos.qty > 0):
                new_pos = _Position(rest, pos.entry, ts)
            else:
                new_pos = _Position(rest, price, ts)  # flipped: the remainder opens at the fill price
        self.wallet = self.wallet + realized - fee
        if new_pos is None:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = new_pos

        order_id = str(self._next_order_id)
        self._next_order_id += 1
        order = Order(
            symbol=symbol,
            order_id=order_id,
            client_order_id=client_id,
            side=side,
            type="MARKET",
            status=OrderStatus.FILLED,
            qty=qty,
            filled_qty=qty,
            avg_price=price,
            reduce_only=reduce_only,
            update_time=ts,
            fee=fee,
            realized_pnl=realized,
        )
        trade = Trade(symbol, order_id, side, price, qty, fee, realized, ts)
        self._orders[client_id] = order
        if finishing is not None:
            self._algos.pop(finishing.client_algo_id, None)
            self._reindex_stops(symbol)
        with self._tx() as cur:
            if cur is None:
                self._trades.append(trade)
            else:
                self._save_order(cur, order)
                self._save_trade(cur, trade)
                self._save_position(cur, symbol, price)
                self._save_meta(cur, "wallet", str(self.wallet))
                if finishing is not None:
                    self._save_algo(cur, replace(finishing, status=AlgoStatus.FINISHED, update_time=ts))
                if self.cursor_ms is not None and self.cursor_ms != self._saved_cursor:
                    self._save_meta(cur, "cursor_ms", str(self.cursor_ms))
        if self._conn is not None and self.cursor_ms is not None:
            self._saved_cursor = self.cursor_ms
        self._next_trade_id += 1

        self._emit(
            OrderUpdate(
                symbol,
                client_id,
                order_id,
                side,
                "MARKET",
                "NEW",
                OrderStatus.NEW,
                ZERO,
                ZERO,
                ZERO,
                ZERO,
                ZERO,
                ZERO,
                reduce_only,
                ts,
            )
        )
        self._emit(
            OrderUpdate(
                symbol,
                client_id,
                order_id,
                side,
                "MARKET",
                "TRADE",
                OrderStatus.FILLED,
                qty,
                price,
                qty,
                price,
                fee,
                realized,
                reduce_only,
                ts,
            )
        )
        view = self._position_view(symbol, new_pos) if new_pos is not None else self._flat_view(symbol, ts)
        self._emit(AccountUpdate(self.wallet, (view,), "ORDER", ts))
        if finishing is not None:
            self._emit(
                AlgoUpdate(
                    symbol,
                    finishing.client_algo_id,
                    finishing.algo_id,
                    AlgoStatus.FINISHED,
                    finishing.trigger_price,
                    ts,
                    qty,
                )
            )
        return order

    def _finish_algo(self, algo: AlgoOrder, status: AlgoStatus, ts: int) -> None:
        self._algos.pop(algo.client_algo_id, None)
        self._reindex_stops(algo.symbol)
        with self._tx() as cur:
            if cur is not None:
                self._save_algo(cur, replace(algo, status=status, update_time=ts))
        self._emit(AlgoUpdate(algo.symbol, algo.client_algo_id, algo.algo_id, status, algo.trigger_price, ts))

    def _reindex_stops(self, symbol: str) -> None:
        triggers = [float(a.trigger_price) for a in self._algos.values() if a.symbol == symbol]
        if triggers:
            self._stop_max[symbol] = max(triggers)
        else:
            self._stop_max.pop(symbol, None)

    def _position_view(self, symbol: str, pos: _Position) -> ExchangePosition:
        mark = self.last_price(symbol) or pos.entry
        return ExchangePosition(
            symbol=symbol,
            qty=pos.qty,
            entry_price=pos.entry,
            mark_price=mark,
            unrealized_pnl=(mark - pos.entry) * pos.qty,
            liquidation_price=None,
            margin_mode=self.margin_mode.get(symbol, "cross"),
            leverage=self._leverage(symbol),
            update_time=pos.update_time,
        )

    def _flat_view(self, symbol: str, ts: int) -> ExchangePosition:
        mark = self.last_price(symbol) or ZERO
        return ExchangePosition(
            symbol, ZERO, ZERO, mark, ZERO, None, self.margin_mode.get(symbol, "cross"), self._leverage(symbol), ts
        )

    def _emit(self, event: UserEvent) -> None:
        self.events_emitted += 1
        for listener in tuple(self._listeners):
            listener(event)

    def _market(self, symbol: str) -> Market:
        market = self._markets.get(symbol)
        if market is None:
            raise RejectedError(f"Invalid symbol {symbol!r}.", code=-1121, http_status=400)
        return market

    @staticmethod
    def _check_client_id(client_id: str) -> None:
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            raise RejectedError(
                f"Illegal characters found in parameter 'newClientOrderId'; legal range is '^[\\.A-Z\\:/a-z0-9_-]"
                f"{{1,36}}$' (got {client_id!r}).",
                code=-1100,
                http_status=400,
            )

    # ------------------------------------------------------------------ persistence
    def flush(self) -> None:
        """Save the replay cursor (fills save everything else as they happen)."""
        if self._conn is None or self.cursor_ms is None or self.cursor_ms == self._saved_cursor:
            return
        with self._tx() as cur:
            assert cur is not None
            self._save_meta(cur, "cursor_ms", str(self.cursor_ms))
        self._saved_cursor = self.cursor_ms

    @property
    def saved_cursor_ms(self) -> int | None:
        """The cursor found in the database when the broker was created (or last saved)."""
        return self._saved_cursor

    def meta(self, key: str) -> str | None:
        if self._conn is None:
            return None
        cur = self._cursor()
        row = cur.execute("SELECT value FROM sim_meta WHERE account=? AND key=?", (self.account, key)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as cur:
            if cur is not None:
                self._save_meta(cur, key, value)

    def _cursor(self) -> sqlite3.Cursor:
        assert self._conn is not None
        cur = self._conn.cursor()
        cur.row_factory = None  # plain tuples whatever the connection's factory is
        return cur

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Cursor | None]:
        """One small transaction; a SAVEPOINT so it also nests inside a caller's open transaction."""
        if self._conn is None:
            yield None
            return
        cur = self._cursor()
        cur.execute("SAVEPOINT sim_broker")
        try:
            yield cur
        except BaseException:
            if self._conn.in_transaction:  # SQLite may already have rolled back by itself (I/O error, disk full)
                cur.execute("ROLLBACK TO sim_broker")
                cur.execute("RELEASE sim_broker")
            raise
        cur.execute("RELEASE sim_broker")

    def _load(self, *, initial_balance: Decimal) -> None:
        cur = self._cursor()
        acc = (self.account,)
        wallet = self.meta("wallet")
        if wallet is None:
            self.set_meta("wallet", str(initial_balance))
            self.set_meta("initial_balance", str(initial_balance))
        else:
            self.wallet = Decimal(wallet)
        cursor = self.meta("cursor_ms")
        self._saved_cursor = int(cursor) if cursor is not None else None
        self.cursor_ms = self._saved_cursor
        for symbol, qty, entry, mark, ts in cur.execute(
            "SELECT symbol, qty, entry_price, mark_price, update_time FROM sim_positions WHERE account=?", acc
        ).fetchall():
            self.positions[symbol] = _Position(Decimal(qty), Decimal(entry), int(ts))
            self._last.setdefault(symbol, Decimal(mark))
        for symbol, lev, mode in cur.execute(
            "SELECT symbol, leverage, margin_mode FROM sim_symbol_settings WHERE account=?", acc
        ).fetchall():
            if lev is not None:
                self.leverage[symbol] = int(lev)
            if mode is not None:
                self.margin_mode[symbol] = str(mode)
        for row in cur.execute(
            "SELECT algo_id, client_algo_id, symbol, side, type, status, trigger_price, close_position, working_type,"
            " update_time, qty FROM sim_algo_orders WHERE account=? AND status='NEW' ORDER BY algo_id",
            acc,
        ).fetchall():
            algo = AlgoOrder(
                str(row[2]),
                str(row[0]),
                str(row[1]),
                Side(row[3]),
                str(row[4]),
                AlgoStatus.parse(row[5]),
                Decimal(row[6]),
                bool(row[7]),
                str(row[8]),
                int(row[9]),
                qty=Decimal(row[10]) if row[10] is not None else None,
            )
            self._algos[algo.client_algo_id] = algo
        for symbol in {a.symbol for a in self._algos.values()}:
            self._reindex_stops(symbol)
        for table, column, attr in (
            ("sim_orders", "order_id", "_next_order_id"),
            ("sim_algo_orders", "algo_id", "_next_algo_id"),
            ("sim_trades", "trade_id", "_next_trade_id"),
            ("sim_funding", "tran_id", "_next_tran_id"),
        ):
            top = cur.execute(f"SELECT MAX({column}) FROM {table} WHERE account=?", acc).fetchone()[0]
            setattr(self, attr, int(top or 0) + 1)

    def _save_meta(self, cur: sqlite3.Cursor, key: str, value: str) -> None:
        cur.execute(
            "INSERT INTO sim_meta(account, key, value) VALUES (?,?,?)"
            " ON CONFLICT(account, key) DO UPDATE SET value=excluded.value",
            (self.account, key, value),
        )

    def _save_position(self, cur: sqlite3.Cursor, symbol: str, mark: Decimal) -> None:
        pos = self.positions.get(symbol)
        if pos is None:
            cur.execute("DELETE FROM sim_positions WHERE account=? AND symbol=?", (self.account, symbol))
            return
        cur.execute(
            "INSERT INTO sim_positions(account, symbol, qty, entry_price, mark_price, update_time) VALUES (?,?,?,?,?,?)"
            " ON CONFLICT(account, symbol) DO UPDATE SET qty=excluded.qty, entry_price=excluded.entry_price,"
            " mark_price=excluded.mark_price, update_time=excluded.update_time",
            (self.account, symbol, str(pos.qty), str(pos.entry), str(mark), pos.update_time),
        )

    def _save_symbol_settings(self, symbol: str) -> None:
        with self._tx() as cur:
            if cur is None:
                return
            cur.execute(
                "INSERT INTO sim_symbol_settings(account, symbol, leverage, margin_mode) VALUES (?,?,?,?)"
                " ON CONFLICT(account, symbol) DO UPDATE SET leverage=excluded.leverage,"
                " margin_mode=excluded.margin_mode",
                (self.account, symbol, self.leverage.get(symbol), self.margin_mode.get(symbol)),
            )

    def _save_algo(self, cur: sqlite3.Cursor, algo: AlgoOrder) -> None:
        cur.execute(
            "INSERT INTO sim_algo_orders(account, algo_id, client_algo_id, symbol, side, type, status, trigger_price,"
            " close_position, working_type, update_time, qty) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(account, algo_id) DO UPDATE SET status=excluded.status, update_time=excluded.update_time",
            (
                self.account,
                int(algo.algo_id),
                algo.client_algo_id,
                algo.symbol,
                algo.side.value,
                algo.type,
                algo.status,
                str(algo.trigger_price),
                int(algo.close_position),
                algo.working_type,
                algo.update_time,
                None if algo.qty is None else str(algo.qty),
            ),
        )

    def _save_order(self, cur: sqlite3.Cursor, o: Order) -> None:
        cur.execute(
            "INSERT INTO sim_orders(account, order_id, client_order_id, symbol, side, type, status, qty, filled_qty,"
            " avg_price, reduce_only, fee, realized_pnl, update_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                self.account,
                int(o.order_id),
                o.client_order_id,
                o.symbol,
                o.side.value,
                o.type,
                o.status.value,
                str(o.qty),
                str(o.filled_qty),
                str(o.avg_price),
                int(o.reduce_only),
                str(o.fee),
                str(o.realized_pnl),
                o.update_time,
            ),
        )

    def _save_trade(self, cur: sqlite3.Cursor, t: Trade) -> None:
        cur.execute(
            "INSERT INTO sim_trades(account, trade_id, symbol, order_id, side, price, qty, fee, realized_pnl, time)"
            " VALUES (?,?,?,?,?,?,?,?,?,?)",
            (
                self.account,
                self._next_trade_id,
                t.symbol,
                int(t.order_id),
                t.side.value,
                str(t.price),
                str(t.qty),
                str(t.fee),
                str(t.realized_pnl),
                t.time,
            ),
        )

    def _load_order(self, client_order_id: str) -> Order | None:
        row = (
            self._cursor()
            .execute(
                "SELECT order_id, client_order_id, symbol, side, type, status, qty, filled_qty, avg_price, reduce_only,"
                " fee, realized_pnl, update_time FROM sim_orders WHERE account=? AND client_order_id=?"
                " ORDER BY order_id DESC LIMIT 1",
                (self.account, client_order_id),
            )
            .fetchone()
        )
        if row is None:
            return None
        return Order(
            symbol=str(row[2]),
            order_id=str(row[0]),
            client_order_id=str(row[1]),
            side=Side(row[3]),
            type=str(row[4]),
            status=OrderStatus(row[5]),
            qty=Decimal(row[6]),
            filled_qty=Decimal(row[7]),
            avg_price=Decimal(row[8]),
            reduce_only=bool(row[9]),
            update_time=int(row[12]),
            fee=Decimal(row[10]),
            realized_pnl=Decimal(row[11]),
        )

    def _load_trades(self, symbol: str, start_ms: int | None) -> list[Trade]:
        rows = (
            self._cursor()
            .execute(
                "SELECT order_id, side, price, qty, fee, realized_pnl, time FROM sim_trades"
                " WHERE account=? AND symbol=? AND time>=? ORDER BY trade_id",
                (self.account, symbol, start_ms if start_ms is not None else -(2**62)),
            )
            .fetchall()
        )
        return [
            Trade(symbol, str(r[0]), Side(r[1]), Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), Decimal(r[5]), int(r[6]))
            for r in rows
        ]
