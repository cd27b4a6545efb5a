"""The account and matching engine of the fake: positions (one-way or hedge), market/limit fills, algo stops.

Everything here is synchronous and deterministic. User-data events produced by an
operation are appended to ``outbox``; the server sends them once the operation is done.

Hedge mode (``dual_side``): every symbol has a LONG and a SHORT leg. BUY+LONG and SELL+SHORT open
or add; SELL+LONG and BUY+SHORT close, and closing orders follow the reduce-only rules of their
leg (never more than the leg holds). One-way mode keeps the single signed BOTH row.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from tests.fakes.binance import errors, payloads
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.ledger import Ledger
from tests.fakes.binance.models import (
    BOTH,
    LONG,
    SHORT,
    ZERO,
    FakeAlgoOrder,
    FakeOrder,
    FakeTrade,
    MarketState,
    Position,
    SymbolSettings,
    SymbolSpec,
)

CONDITIONAL_TYPES = frozenset({"STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"})
ALGO_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET"})
MAINT_MARGIN_RATIO = Decimal("0.004")  # first leverage bracket; enough for the fake's liquidation estimate
_ALPHABET = string.ascii_letters + string.digits


def random_client_id(prefix: str = "") -> str:
    """Binance's own 22-character ids (``FqEw6cn0vDhrkmfiwLYPeo``), optionally prefixed (``web_``)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(22))


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return step == 0 or (value % step) == 0


class Exchange:
    """State of one futures account and the symbols it trades."""

    def __init__(
        self,
        clock: Callable[[], int],
        *,
        balance: Decimal,
        taker_fee: Decimal,
        maker_fee: Decimal,
        slippage: Decimal = ZERO,
        default_leverage: int = 20,
    ) -> None:
        self.clock = clock
        self.wallet = balance
        self.wallet_update_time = clock()  # ccxt skips assets whose updateTime is 0
        self.taker_fee = taker_fee
        self.maker_fee = maker_fee
        self.slippage = slippage
        self.default_leverage = default_leverage
        # ACCOUNT_UPDATE usually reaches the user stream just before the ORDER_TRADE_UPDATE of the fill
        self.account_update_first = True
        # TRADE_LITE (the low-latency fill notice Binance pushes first) can be switched off
        self.trade_lite = True
        self.specs: dict[str, SymbolSpec] = {}
        self.markets: dict[str, MarketState] = {}
        self.settings: dict[str, SymbolSettings] = {}
        self.positions: dict[str, Position] = {}
        self.orders: list[FakeOrder] = []
        self.algo_orders: list[FakeAlgoOrder] = []
        self.trades: list[FakeTrade] = []
        self.ledger = Ledger()
        self.dual_side = False  # hedge mode (positionSide/dual)
        self.multi_assets = False
        self.hedge: dict[str, dict[str, Position]] = {}  # symbol -> LONG / SHORT legs
        self.outbox: list[dict[str, Any]] = []
        self._orders_by_id: dict[int, FakeOrder] = {}
        self._algos_by_id: dict[int, FakeAlgoOrder] = {}
        # orders and algos that may still be open (pruned on read) so price ticks skip the history
        self._live_orders: list[FakeOrder] = []
        self._live_algos: list[FakeAlgoOrder] = []
        self._next_order_id = 8_389_765_000
        self._next_algo_id = 1_000_000_033_225_000
        self._next_trade_id = 272_536_000

    # ------------------------------------------------------------------ symbols and prices
    def add_symbol(self, spec: SymbolSpec, market: MarketState) -> None:
        self.specs[spec.symbol] = spec
        self.markets[spec.symbol] = market
        self.settings.setdefault(spec.symbol, SymbolSettings(leverage=min(self.default_leverage, spec.max_leverage)))
        self.positions.setdefault(spec.symbol, Position(spec.symbol))
        self.hedge.setdefault(spec.symbol, {LONG: Position(spec.symbol, LONG), SHORT: Position(spec.symbol, SHORT)})

    def spec(self, symbol: str) -> SymbolSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise errors.invalid_symbol()
        return spec

    def update_price(self, symbol: str, last: Decimal, mark: Decimal, qty: Decimal) -> None:
        """New last/mark prices: rest limit orders and algo stops are checked against them."""
        market = self.markets[symbol]
        market.last, market.mark, market.last_qty = last, mark, qty
        market.high_24h = max(market.high_24h, last)
        market.low_24h = min(market.low_24h, last)
        self._match_limit_orders(symbol)
        self._check_algo_triggers(symbol)

    # ------------------------------------------------------------------ positions
    def legs(self, symbol: str) -> list[Position]:
        """The position rows of ``symbol`` in the current mode: [BOTH], or [LONG, SHORT] in hedge mode."""
        if self.dual_side:
            hedge = self.hedge[symbol]
            return [hedge[LONG], hedge[SHORT]]
        return [self.positions[symbol]]

    def all_legs(self) -> list[Position]:
        return [leg for symbol in self.specs for leg in self.legs(symbol)]

    def leg(self, symbol: str, position_side: str = BOTH) -> Position:
        if position_side == BOTH:
            return self.positions[symbol]
        return self.hedge[symbol][position_side]

    def closes(self, position_side: str, side: str, reduce_only: bool = False) -> bool:
        """Whether an order of ``side`` on ``position_side`` may only reduce (reduceOnly, or a hedge close)."""
        if position_side == LONG:
            return side == "SELL"
        if position_side == SHORT:
            return side == "BUY"
        return reduce_only

    def has_open_position(self, symbol: str | None = None) -> bool:
        legs = self.legs(symbol) if symbol is not None else self.all_legs()
        return any(leg.qty for leg in legs)

    # ------------------------------------------------------------------ account figures
    def unrealized(self, pos: Position) -> Decimal:
        return pos.qty * (self.markets[pos.symbol].mark - pos.entry_price) if pos.qty else ZERO

    def notional(self, pos: Position) -> Decimal:
        return pos.qty * self.markets[pos.symbol].mark

    def position_initial_margin(self, pos: Position) -> Decimal:
        if not pos.qty:
            return ZERO
        return abs(pos.qty) * self.markets[pos.symbol].mark / self.settings[pos.symbol].leverage

    def open_order_margin(self, symbol: str, position_side: str | None = None) -> Decimal:
        total = ZERO
        for order in self.open_orders(symbol):
            if position_side is not None and order.position_side != position_side:
                continue
            if not self.closes(order.position_side, order.side, order.reduce_only):
                total += (order.qty - order.executed_qty) * order.price / self.settings[symbol].leverage
        return total

    def maint_margin(self, pos: Position) -> Decimal:
        return abs(pos.qty) * self.markets[pos.symbol].mark * MAINT_MARGIN_RATIO

    def total_unrealized(self) -> Decimal:
        return sum((self.unrealized(p) for p in self.all_legs() if p.qty), ZERO)

    def total_initial_margin(self) -> Decimal:
        positions = sum((self.position_initial_margin(p) for p in self.all_legs() if p.qty), ZERO)
        return positions + sum((self.open_order_margin(s) for s in self._symbols_with_open_orders()), ZERO)

    def _symbols_with_open_orders(self) -> set[str]:
        return {o.symbol for o in self.open_orders()}

    def isolated_total(self) -> Decimal:
        return sum(
            (payloads.isolated_wallet(p, self.settings[p.symbol]) for p in self.all_legs() if p.qty),
            ZERO,
        )

    def available_balance(self) -> Decimal:
        return max(ZERO, self.wallet + self.total_unrealized() - self.total_initial_margin())

    def liquidation_price(self, pos: Position) -> Decimal:
        """Single-position estimate with the first bracket's maintenance ratio (0 when unreachable)."""
        if not pos.qty:
            return ZERO
        qty, entry, mmr = abs(pos.qty), pos.entry_price, MAINT_MARGIN_RATIO
        if self.settings[pos.symbol].margin_type == "ISOLATED":
            lev = Decimal(self.settings[pos.symbol].leverage)
            price = entry * (1 - 1 / lev) / (1 - mmr) if pos.qty > 0 else entry * (1 + 1 / lev) / (1 + mmr)
        elif pos.qty > 0:
            price = (entry * qty - self.wallet) / (qty * (1 - mmr))
        else:
            price = (entry * qty + self.wallet) / (qty * (1 + mmr))
        return max(ZERO, price)

    # ------------------------------------------------------------------ queries
    def open_orders(self, symbol: str | None = None) -> list[FakeOrder]:
        self._live_orders = [o for o in self._live_orders if o.is_open]
        return [o for o in self._live_orders if symbol is None or o.symbol == symbol]

    def open_algos(self, symbol: str | None = None) -> list[FakeAlgoOrder]:
        self._live_algos = [a for a in self._live_algos if a.is_open]
        return [a for a in self._live_algos if symbol is None or a.symbol == symbol]

    def find_order(self, symbol: str, order_id: int | None, client_id: str | None) -> FakeOrder | None:
        if order_id is not None:
            order = self._orders_by_id.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        # a client id that was reused after a fill names several orders: the latest one answers
        for order in reversed(self.orders):
            if order.symbol == symbol and order.client_order_id == client_id:
                return order
        return None

    def find_algo(self, algo_id: int | None, client_algo_id: str | None) -> FakeAlgoOrder | None:
        if algo_id is not None:
            return self._algos_by_id.get(algo_id)
        for algo in reversed(self.algo_orders):
            if algo.client_algo_id == client_algo_id:
                return algo
        return None

    # ------------------------------------------------------------------ orders
    def new_order(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        qty: Decimal,
        price: Decimal | None,
        reduce_only: bool,
        client_order_id: str,
        time_in_force: str = "GTC",
        source: str = "api",
        position_side: str = BOTH,
    ) -> FakeOrder:
        """Validate like Binance, accept, and execute what can execute now."""
        spec = self.spec(symbol)
        market = self.markets[symbol]
        if order_type in CONDITIONAL_TYPES:
            raise errors.use_algo_api()
        if order_type not in ("MARKET", "LIMIT"):
            raise errors.invalid_order_type()
        self._check_qty(spec, qty, market_order=order_type == "MARKET")
        if order_type == "LIMIT":
            if price is None:
                raise errors.missing_param("price")
            if price <= 0:
                raise errors.price_not_positive()
            if not _is_multiple(price, spec.tick_size):
                raise errors.price_tick()
        closing = self.closes(position_side, side, reduce_only)
        self._check_status(spec, closing=closing)
        if any(o.client_order_id == client_order_id for o in self.open_orders()):
            raise errors.duplicate_client_order_id()
        pos = self.leg(symbol, position_side)
        if closing and (not self._reduces(pos.qty, side) or qty > abs(pos.qty)):
            # reduce-only (and a hedge close) may neither open, increase nor flip the position
            raise errors.reduce_only_rejected()
        ref_price = price if order_type == "LIMIT" and price is not None else market.last
        if not closing and qty * ref_price < spec.min_notional:
            raise errors.min_notional(format(spec.min_notional.normalize(), "f"))
        if not closing:
            self._check_margin(symbol, side, qty, ref_price, position_side)

        now = self.clock()
        order = FakeOrder(
            symbol=symbol,
            order_id=self.new_order_id(),
            client_order_id=client_order_id,
            side=side,
            type=order_type,
            qty=qty,
            status="NEW",
            avg_price=ZERO,
            reduce_only=reduce_only,
            price=price if order_type == "LIMIT" and price is not None else ZERO,
            time_in_force=time_in_force,
            orig_type=order_type,
            time=now,
            update_time=now,
            source=source,
            position_side=position_side,
        )
        self.register(order)
        self.emit(payloads.order_update_event(spec, order, "NEW", now))
        if order_type == "MARKET":
            self._execute_market(order)
        elif self._limit_marketable(order, market.last):
            # a limit that crosses on arrival takes liquidity at the current price
            self.fill(
                order, order.qty, min(order.price, market.last) if side == "BUY" else max(order.price, market.last)
            )
        return order

    def cancel_order(self, order: FakeOrder, *, status: str = "CANCELED") -> FakeOrder:
        if not order.is_open:
            raise errors.unknown_order()
        order.status = status
        order.update_time = self.clock()
        self.emit(payloads.order_update_event(self.specs[order.symbol], order, status, order.update_time))
        return order

    def _order_closes(self, order: FakeOrder) -> bool:
        return self.closes(order.position_side, order.side, order.reduce_only)

    def _execute_market(self, order: FakeOrder) -> None:
        pos = self.leg(order.symbol, order.position_side)
        qty = order.qty
        if self._order_closes(order):
            qty = min(qty, abs(pos.qty)) if self._reduces(pos.qty, order.side) else ZERO
        if qty <= 0:
            # nothing left to reduce: the matching engine drops the order
            order.status = "EXPIRED"
            order.update_time = self.clock()
            self.emit(payloads.order_update_event(self.specs[order.symbol], order, "EXPIRED", order.update_time))
            return
        self.fill(order, qty, self._market_price(order.symbol, order.side))

    def _market_price(self, symbol: str, side: str) -> Decimal:
        spec, last = self.specs[symbol], self.markets[symbol].last
        if not self.slippage:
            return last
        if side == "BUY":
            raw, rounding = last * (1 + self.slippage), ROUND_CEILING
        else:
            raw, rounding = last * (1 - self.slippage), ROUND_FLOOR
        return max(spec.tick_size, (raw / spec.tick_size).to_integral_value(rounding) * spec.tick_size)

    def fill(
        self, order: FakeOrder, qty: Decimal, price: Decimal, *, maker: bool = False, execution: str = "TRADE"
    ) -> FakeTrade:
        """Execute ``qty`` of ``order`` at ``price``: position, wallet, income rows and the user-data events.

        ``execution`` is the event's execution type: TRADE, or CALCULATED for the exchange's own
        liquidation/ADL/settlement orders (which TRADE_LITE, pushing TRADE executions only, skips).
        """
        spec, pos = self.specs[order.symbol], self.leg(order.symbol, order.position_side)
        now = self.clock()
        signed = qty if order.side == "BUY" else -qty
        realized = ZERO
        if pos.qty and (pos.qty > 0) != (signed > 0):
            # reducing (maybe through zero): the closed part realizes PnL at the old entry
            closed = min(abs(pos.qty), qty)
            direction = 1 if pos.qty > 0 else -1
            realized = (price - pos.entry_price) * closed * direction
            remaining = pos.qty + signed
            if remaining == 0:
                pos.qty, pos.entry_price = ZERO, ZERO
            elif (remaining > 0) == (pos.qty > 0):
                pos.qty = remaining  # average-cost rule: entry unchanged on reduce
            else:
                pos.qty, pos.entry_price = remaining, price  # flipped: the rest opens at the fill price
        else:
            new_qty = pos.qty + signed
            pos.entry_price = (abs(pos.qty) * pos.entry_price + qty * price) / abs(new_qty)
            pos.qty = new_qty
        pos.accumulated_realized += realized
        pos.update_time = now
        quote = qty * price
        fee = quote * (self.maker_fee if maker else self.taker_fee)
        self.wallet += realized - fee
        self.wallet_update_time = now

        trade = FakeTrade(
            trade_id=self._new_trade_id(),
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=fee,
            realized_pnl=realized,
            time=now,
            maker=maker,
            position_side=order.position_side,
        )
        self.trades.append(trade)
        if realized:
            self.ledger.add_income(order.symbol, "REALIZED_PNL", realized, now, trade_id=str(trade.trade_id))
        if fee:
            self.ledger.add_income(order.symbol, "COMMISSION", -fee, now, trade_id=str(trade.trade_id))
        order.cum_quote += quote
        order.executed_qty += qty
        order.avg_price = order.cum_quote / order.executed_qty
        order.fee += fee
        order.realized_pnl += realized
        # a closing limit or triggered algo larger than the position is filled for the position's size
        done = order.executed_qty >= order.qty or order.type == "MARKET" or self._order_closes(order)
        order.status = "FILLED" if done else "PARTIALLY_FILLED"
        order.update_time = now

        if self.trade_lite and execution == "TRADE":
            self.emit(payloads.trade_lite_event(spec, order, trade, now))
        trade_event = payloads.order_update_event(spec, order, execution, now, trade)
        account_event = self.account_event("ORDER", [order.symbol], ZERO)
        for event in (account_event, trade_event) if self.account_update_first else (trade_event, account_event):
            self.emit(event)
        return trade

    # ------------------------------------------------------------------ limit orders
    @staticmethod
    def _limit_marketable(order: FakeOrder, last: Decimal) -> bool:
        return last <= order.price if order.side == "BUY" else last >= order.price

    def _match_limit_orders(self, symbol: str) -> None:
        last = self.markets[symbol].last
        for order in self.open_orders(symbol):
            if not self._limit_marketable(order, last):
                continue
            pos = self.leg(symbol, order.position_side)
            qty = order.qty - order.executed_qty
            if self._order_closes(order):
                qty = min(qty, abs(pos.qty)) if self._reduces(pos.qty, order.side) else ZERO
                if qty <= 0:
                    order.status = "EXPIRED"
                    order.update_time = self.clock()
                    self.emit(payloads.order_update_event(self.specs[symbol], order, "EXPIRED", order.update_time))
                    continue
            self.fill(order, qty, order.price, maker=True)

    # ------------------------------------------------------------------ algo orders
    def new_algo(
        self,
        *,
        symbol: str,
        side: str,
        order_type: str,
        trigger_price: Decimal,
        qty: Decimal | None,
        close_position: bool,
        reduce_only: bool,
        working_type: str,
        client_algo_id: str,
        price_protect: bool = False,
        time_in_force: str = "GTC",
        position_side: str = BOTH,
    ) -> FakeAlgoOrder:
        """Place a conditional order with the Algo Service.

        Like the real Algo Service, placement does not look at the position: a reduce-only or
        closePosition stop may rest while flat, and several reduce-only quantity stops may rest on
        one symbol (up to its MAX_NUM_ALGO_ORDERS), while only one closePosition stop of a type may
        rest per side (-4130). What the position is when it triggers decides what happens then.
        """
        spec = self.spec(symbol)
        if order_type not in ALGO_TYPES:
            # STOP / TAKE_PROFIT (limit) and trailing stops are not simulated by this fake
            raise errors.invalid_order_type()
        if trigger_price <= 0:
            raise errors.missing_param("triggerprice")
        if not _is_multiple(trigger_price, spec.tick_size):
            raise errors.price_tick()
        if close_position:
            if qty is not None:
                raise errors.not_required("quantity")
            if reduce_only:
                raise errors.not_required("reduceOnly")
            if position_side != BOTH and not self.closes(position_side, side):
                # a hedge close-all must close its own leg (SELL LONG, BUY SHORT); the code is our choice
                raise errors.reduce_only_rejected()
        else:
            if qty is None:
                raise errors.missing_param("quantity")
            self._check_qty(spec, qty, market_order=True)
        self._check_status(spec, closing=close_position or self.closes(position_side, side, reduce_only))
        working = self._working_price(symbol, working_type)
        if self._triggered(side, order_type, working, trigger_price):
            raise errors.would_immediately_trigger()
        open_algos = self.open_algos(symbol)
        if any(a.client_algo_id == client_algo_id for a in self.open_algos()):
            raise errors.duplicate_client_order_id()
        if close_position and any(
            a.close_position and a.side == side and a.order_type == order_type and a.position_side == position_side
            for a in open_algos
        ):
            raise errors.close_position_exists()
        if len(open_algos) >= spec.max_algo_orders:
            raise errors.too_many_algo_orders()
        now = self.clock()
        algo = FakeAlgoOrder(
            algo_id=self._new_algo_id(),
            client_algo_id=client_algo_id,
            symbol=symbol,
            side=side,
            order_type=order_type,
            status="NEW",
            trigger_price=trigger_price,
            close_position=close_position,
            reduce_only=reduce_only,
            working_type=working_type,
            qty=qty if qty is not None else ZERO,
            price_protect=price_protect,
            time_in_force=time_in_force,
            create_time=now,
            update_time=now,
            position_side=position_side,
        )
        self.algo_orders.append(algo)
        self._algos_by_id[algo.algo_id] = algo
        self._live_algos.append(algo)
        self.emit(payloads.algo_update_event(spec, algo, now))
        return algo

    def cancel_algo(self, algo: FakeAlgoOrder, *, status: str = "CANCELED") -> FakeAlgoOrder:
        """Cancel by the user (CANCELED, from the API or the app) or by the system (EXPIRED)."""
        if not algo.is_open:
            raise errors.unknown_order()
        algo.status = status
        algo.update_time = self.clock()
        self.emit(payloads.algo_update_event(self.specs[algo.symbol], algo, algo.update_time))
        return algo

    def _working_price(self, symbol: str, working_type: str) -> Decimal:
        market = self.markets[symbol]
        return market.mark if working_type == "MARK_PRICE" else market.last

    @staticmethod
    def _triggered(side: str, order_type: str, working: Decimal, trigger: Decimal) -> bool:
        # stops fire when the price moves against the order's side, take-profits when it moves with it
        falls = (side == "SELL") == (order_type == "STOP_MARKET")
        return working <= trigger if falls else working >= trigger

    def _check_algo_triggers(self, symbol: str) -> None:
        for algo in self.open_algos(symbol):
            working = self._working_price(symbol, algo.working_type)
            if self._triggered(algo.side, algo.order_type, working, algo.trigger_price):
                self._trigger(algo)

    def _trigger(self, algo: FakeAlgoOrder) -> None:
        """The Algo Service's life cycle of a triggered stop, as the user stream shows it:

        ALGO_UPDATE TRIGGERING -> TRIGGERED (the MARKET order is in the matching engine, ``ai`` set)
        -> ORDER_TRADE_UPDATE NEW / TRADE (client order id = clientAlgoId, ``ot`` = the algo's type)
        -> ALGO_UPDATE FINISHED (``aq`` = executed, 0 when the order expired with nothing to close).
        A closePosition stop closes whatever the position is then; a reduce-only quantity stop
        closes at most the position (it never opens the other way) and, with no position at all,
        is refused by the matching engine as any reduce-only order would be: REJECTED with ``rm``.
        A stop that would open is margin-checked then (REJECTED when it fails).
        """
        spec = self.specs[algo.symbol]
        pos = self.leg(algo.symbol, algo.position_side)
        now = self.clock()
        algo.status, algo.trigger_time, algo.update_time = "TRIGGERING", now, now
        self.emit(payloads.algo_update_event(spec, algo, now))

        reduces = algo.close_position or self.closes(algo.position_side, algo.side, algo.reduce_only)
        if algo.close_position:
            qty = abs(pos.qty) if self._reduces(pos.qty, algo.side) else ZERO
        elif reduces:
            qty = min(algo.qty, abs(pos.qty)) if self._reduces(pos.qty, algo.side) else ZERO
            if qty <= 0:
                algo.status, algo.reject_reason = "REJECTED", "Reduce Only reject"
                self.emit(payloads.algo_update_event(spec, algo, now))
                return
        else:
            qty = algo.qty
        if not reduces:
            try:
                self._check_margin(algo.symbol, algo.side, qty, self.markets[algo.symbol].last, algo.position_side)
            except BinanceError as refusal:
                algo.status, algo.reject_reason = "REJECTED", refusal.msg
                self.emit(payloads.algo_update_event(spec, algo, now))
                return

        order = FakeOrder(
            symbol=algo.symbol,
            order_id=self.new_order_id(),
            client_order_id=algo.client_algo_id,  # the real exchange reuses the clientAlgoId
            side=algo.side,
            type="MARKET",
            # a reduce-only order larger than the position is resized to it by the matching engine
            qty=qty if qty > 0 else algo.qty,
            status="NEW",
            avg_price=ZERO,
            reduce_only=algo.reduce_only or algo.close_position,
            orig_type=algo.order_type,
            close_position=algo.close_position,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            time=now,
            update_time=now,
            source="algo",
            algo_id=algo.algo_id,
            position_side=algo.position_side,
        )
        self.register(order)
        algo.status, algo.actual_order_id = "TRIGGERED", order.order_id
        self.emit(payloads.algo_update_event(spec, algo, now))
        self.emit(payloads.order_update_event(spec, order, "NEW", now))
        if qty > 0:
            self.fill(order, qty, self._market_price(algo.symbol, algo.side))
            algo.actual_price, algo.actual_qty = order.avg_price, order.executed_qty
        else:
            # no position left to close: the order expires in the matching engine, the algo finishes empty
            order.status = "EXPIRED"
            self.emit(payloads.order_update_event(spec, order, "EXPIRED", now))
        algo.status, algo.update_time = "FINISHED", self.clock()
        self.emit(payloads.algo_update_event(spec, algo, algo.update_time))

    # ------------------------------------------------------------------ settings
    def set_leverage(self, symbol: str, leverage: int) -> None:
        spec = self.spec(symbol)
        if not 1 <= leverage <= spec.max_leverage:
            raise errors.leverage_not_valid(str(leverage))
        self.settings[symbol].leverage = leverage
        self.emit(payloads.leverage_update_event(symbol, leverage, self.clock()))

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        self.spec(symbol)
        settings = self.settings[symbol]
        if settings.margin_type == margin_type:
            raise errors.no_need_to_change_margin_type()
        if margin_type == "ISOLATED" and self.multi_assets:
            raise errors.isolated_with_multi_assets()
        if self.has_open_position(symbol) or self.open_orders(symbol):
            raise errors.margin_type_with_position()
        settings.margin_type = margin_type

    def set_position_mode(self, dual_side: bool) -> None:
        """POST /fapi/v1/positionSide/dual, for every symbol at once.

        Refusal order (not documented; this is the fake's choice): -4059 when nothing changes, then
        -4068 if any position is open, then -4067 if any order or algo order is open.
        """
        if dual_side == self.dual_side:
            raise errors.no_need_to_change_position_side()
        if self.has_open_position():
            raise errors.position_side_change_with_position()
        if self.open_orders() or self.open_algos():
            raise errors.position_side_change_with_orders()
        self.dual_side = dual_side

    def set_multi_assets(self, multi_assets: bool) -> None:
        if multi_assets == self.multi_assets:
            raise errors.no_need_to_change_multi_assets()
        if multi_assets and any(s.margin_type == "ISOLATED" for s in self.settings.values()):
            raise errors.multi_assets_with_isolated()
        self.multi_assets = multi_assets
        now = self.clock()
        self.emit({"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ai": {"j": multi_assets}})

    def set_wallet(self, balance: Decimal) -> None:
        change = balance - self.wallet
        self.wallet = balance
        self.wallet_update_time = self.clock()
        if change:
            self.ledger.add_income("", "TRANSFER", change, self.wallet_update_time)
        self.emit(self.account_event("DEPOSIT" if change >= 0 else "WITHDRAW", [], change))

    # ------------------------------------------------------------------ helpers
    def _check_status(self, spec: SymbolSpec, *, closing: bool) -> None:
        """A symbol that is not TRADING (or in the close-only time before a delisting) takes reduce-only
        orders only; a CLOSEd one takes none."""
        if spec.status == "CLOSE":
            raise errors.symbol_closed()
        if closing:
            return
        if spec.status != "TRADING" or (spec.close_only_from is not None and self.clock() >= spec.close_only_from):
            raise errors.symbol_not_trading()

    def _check_qty(self, spec: SymbolSpec, qty: Decimal, *, market_order: bool) -> None:
        if qty <= 0:
            raise errors.qty_not_positive()
        if not _is_multiple(qty, spec.step_size):
            raise errors.precision_over_max()
        if qty < spec.min_qty:
            raise errors.qty_below_min()
        if qty > (spec.market_max_qty if market_order else spec.max_qty):
            raise errors.qty_above_max()

    def _check_margin(self, symbol: str, side: str, qty: Decimal, price: Decimal, position_side: str = BOTH) -> None:
        pos = self.leg(symbol, position_side).qty
        signed = qty if side == "BUY" else -qty
        new = pos + signed
        same_direction = pos == 0 or (new != 0 and (new > 0) == (pos > 0))
        # flipping through zero opens the remainder
        opening = max(ZERO, abs(new) - abs(pos)) if same_direction else abs(new)
        if opening == 0:
            return
        required = opening * price / self.settings[symbol].leverage + qty * price * self.taker_fee
        if required > self.available_balance():
            raise errors.margin_insufficient()

    @staticmethod
    def _reduces(position_qty: Decimal, side: str) -> bool:
        return position_qty > 0 if side == "SELL" else position_qty < 0

    def account_event(self, reason: str, symbols: list[str], balance_change: Decimal) -> dict[str, Any]:
        # the changed symbols' rows: BOTH, or both legs in hedge mode (the docs' example lists every leg)
        entries = [
            payloads.position_event_entry(
                self.specs[leg.symbol], leg, self.settings[leg.symbol], self.markets[leg.symbol], self.taker_fee
            )
            for s in symbols
            for leg in self.legs(s)
        ]
        cross_wallet = self.wallet - self.isolated_total()
        return payloads.account_update_event(
            reason,
            now=self.clock(),
            wallet=self.wallet,
            cross_wallet=cross_wallet,
            balance_change=balance_change,
            positions=entries,
        )

    def register(self, order: FakeOrder) -> None:
        self.orders.append(order)
        self._orders_by_id[order.order_id] = order
        self._live_orders.append(order)

    def emit(self, event: dict[str, Any]) -> None:
        self.outbox.append(event)

    def drain_outbox(self) -> list[dict[str, Any]]:
        events, self.outbox = self.outbox, []
        return events

    def new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _new_algo_id(self) -> int:
        self._next_algo_id += 1
        return self._next_algo_id

    def _new_trade_id(self) -> int:
        self._next_trade_id += 1
        return self._next_trade_id
