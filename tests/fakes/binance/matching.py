"""The account and matching engine of the fake: one-way positions, market/limit fills, algo stops.

Everything here is synchronous and deterministic. User-data events produced by an
operation are appended to ``outbox``; the server sends them once the operation is done.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from tests.fakes.binance import errors, payloads
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.models import (
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
MAX_OPEN_ALGO_PER_SYMBOL = 10
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

    # ------------------------------------------------------------------ account figures
    def unrealized(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        return pos.qty * (self.markets[symbol].mark - pos.entry_price) if pos.qty else ZERO

    def position_initial_margin(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        if not pos.qty:
            return ZERO
        return abs(pos.qty) * self.markets[symbol].mark / self.settings[symbol].leverage

    def open_order_margin(self, symbol: str) -> Decimal:
        total = ZERO
        for order in self.open_orders(symbol):
            if not order.reduce_only:
                total += (order.qty - order.executed_qty) * order.price / self.settings[symbol].leverage
        return total

    def maint_margin(self, symbol: str) -> Decimal:
        pos = self.positions[symbol]
        return abs(pos.qty) * self.markets[symbol].mark * MAINT_MARGIN_RATIO

    def total_unrealized(self) -> Decimal:
        return sum((self.unrealized(s) for s in self.specs), ZERO)

    def total_initial_margin(self) -> Decimal:
        return sum((self.position_initial_margin(s) + self.open_order_margin(s) for s in self.specs), ZERO)

    def isolated_total(self) -> Decimal:
        return sum(
            (payloads.isolated_wallet(self.positions[s], self.settings[s]) for s in self.specs),
            ZERO,
        )

    def available_balance(self) -> Decimal:
        return max(ZERO, self.wallet + self.total_unrealized() - self.total_initial_margin())

    def liquidation_price(self, symbol: str) -> Decimal:
        """Single-position estimate with the first bracket's maintenance ratio (0 when unreachable)."""
        pos = self.positions[symbol]
        if not pos.qty:
            return ZERO
        qty, entry, mmr = abs(pos.qty), pos.entry_price, MAINT_MARGIN_RATIO
        if self.settings[symbol].margin_type == "ISOLATED":
            lev = Decimal(self.settings[symbol].leverage)
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
        if spec.status != "TRADING" and not reduce_only:
            raise errors.symbol_not_trading()
        if any(o.client_order_id == client_order_id for o in self.open_orders()):
            raise errors.duplicate_client_order_id()
        pos = self.positions[symbol]
        if reduce_only and (not self._reduces(pos.qty, side) or qty > abs(pos.qty)):
            # reduce-only may neither open, increase nor flip the position
            raise errors.reduce_only_rejected()
        ref_price = price if order_type == "LIMIT" and price is not None else market.last
        if not reduce_only and qty * ref_price < spec.min_notional:
            raise errors.min_notional(format(spec.min_notional.normalize(), "f"))
        if not reduce_only:
            self._check_margin(symbol, side, qty, ref_price)

        now = self.clock()
        order = FakeOrder(
            symbol=symbol,
            order_id=self._new_order_id(),
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
        )
        self._register(order)
        self._emit(payloads.order_update_event(spec, order, "NEW", now))
        if order_type == "MARKET":
            self._execute_market(order)
        elif self._limit_marketable(order, market.last):
            # a limit that crosses on arrival takes liquidity at the current price
            self._fill(
                order, order.qty, min(order.price, market.last) if side == "BUY" else max(order.price, market.last)
            )
        return order

    def cancel_order(self, order: FakeOrder) -> FakeOrder:
        if not order.is_open:
            raise errors.unknown_order()
        order.status = "CANCELED"
        order.update_time = self.clock()
        self._emit(payloads.order_update_event(self.specs[order.symbol], order, "CANCELED", order.update_time))
        return order

    def _execute_market(self, order: FakeOrder) -> None:
        pos = self.positions[order.symbol]
        qty = order.qty
        if order.reduce_only:
            qty = min(qty, abs(pos.qty)) if self._reduces(pos.qty, order.side) else ZERO
        if qty <= 0:
            # nothing left to reduce: the matching engine drops the order
            order.status = "EXPIRED"
            order.update_time = self.clock()
            self._emit(payloads.order_update_event(self.specs[order.symbol], order, "EXPIRED", order.update_time))
            return
        self._fill(order, qty, self._market_price(order.symbol, order.side))

    def _market_price(self, symbol: str, side: str) -> Decimal:
        spec, last = self.specs[symbol], self.markets[symbol].last
        if not self.slippage:
            return last
        if side == "BUY":
            raw, rounding = last * (1 + self.slippage), ROUND_CEILING
        else:
            raw, rounding = last * (1 - self.slippage), ROUND_FLOOR
        return max(spec.tick_size, (raw / spec.tick_size).to_integral_value(rounding) * spec.tick_size)

    def _fill(self, order: FakeOrder, qty: Decimal, price: Decimal, *, maker: bool = False) -> FakeTrade:
        spec, pos = self.specs[order.symbol], self.positions[order.symbol]
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
        )
        self.trades.append(trade)
        order.cum_quote += quote
        order.executed_qty += qty
        order.avg_price = order.cum_quote / order.executed_qty
        order.fee += fee
        order.realized_pnl += realized
        # a reduce-only limit or triggered algo larger than the position is filled for the position's size
        done = order.executed_qty >= order.qty or order.type == "MARKET" or order.reduce_only
        order.status = "FILLED" if done else "PARTIALLY_FILLED"
        order.update_time = now

        if self.trade_lite:
            self._emit(payloads.trade_lite_event(spec, order, trade, now))
        trade_event = payloads.order_update_event(spec, order, "TRADE", now, trade)
        account_event = self._account_event("ORDER", [order.symbol], ZERO)
        for event in (account_event, trade_event) if self.account_update_first else (trade_event, account_event):
            self._emit(event)
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
            pos = self.positions[symbol]
            qty = order.qty - order.executed_qty
            if order.reduce_only:
                qty = min(qty, abs(pos.qty)) if self._reduces(pos.qty, order.side) else ZERO
                if qty <= 0:
                    order.status = "EXPIRED"
                    order.update_time = self.clock()
                    self._emit(payloads.order_update_event(self.specs[symbol], order, "EXPIRED", order.update_time))
                    continue
            self._fill(order, qty, order.price, maker=True)

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
    ) -> FakeAlgoOrder:
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
        else:
            if qty is None:
                raise errors.missing_param("quantity")
            self._check_qty(spec, qty, market_order=True)
        working = self._working_price(symbol, working_type)
        if self._triggered(side, order_type, working, trigger_price):
            raise errors.would_immediately_trigger()
        open_algos = self.open_algos(symbol)
        if any(a.client_algo_id == client_algo_id for a in self.open_algos()):
            raise errors.duplicate_client_order_id()
        if close_position and any(
            a.close_position and a.side == side and a.order_type == order_type for a in open_algos
        ):
            raise errors.close_position_exists()
        if len(open_algos) >= MAX_OPEN_ALGO_PER_SYMBOL:
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
        )
        self.algo_orders.append(algo)
        self._algos_by_id[algo.algo_id] = algo
        self._live_algos.append(algo)
        self._emit(payloads.algo_update_event(spec, algo, now))
        return algo

    def cancel_algo(self, algo: FakeAlgoOrder, *, status: str = "CANCELED") -> FakeAlgoOrder:
        """Cancel by the user (CANCELED) or by the system (EXPIRED)."""
        if not algo.is_open:
            raise errors.unknown_order()
        algo.status = status
        algo.update_time = self.clock()
        self._emit(payloads.algo_update_event(self.specs[algo.symbol], algo, algo.update_time))
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
        spec, pos = self.specs[algo.symbol], self.positions[algo.symbol]
        now = self.clock()
        algo.status, algo.trigger_time, algo.update_time = "TRIGGERING", now, now
        self._emit(payloads.algo_update_event(spec, algo, now))

        reduces = algo.close_position or algo.reduce_only
        if algo.close_position:
            qty = abs(pos.qty) if self._reduces(pos.qty, algo.side) else ZERO
        elif algo.reduce_only:
            qty = min(algo.qty, abs(pos.qty)) if self._reduces(pos.qty, algo.side) else ZERO
        else:
            qty = algo.qty
        if not reduces:
            try:
                self._check_margin(algo.symbol, algo.side, qty, self.markets[algo.symbol].last)
            except BinanceError as refusal:
                algo.status, algo.reject_reason = "REJECTED", refusal.msg
                self._emit(payloads.algo_update_event(spec, algo, now))
                return

        order = FakeOrder(
            symbol=algo.symbol,
            order_id=self._new_order_id(),
            client_order_id=algo.client_algo_id,  # the real exchange reuses the clientAlgoId
            side=algo.side,
            type="MARKET",
            qty=qty if qty > 0 else algo.qty,
            status="NEW",
            avg_price=ZERO,
            reduce_only=reduces,
            orig_type=algo.order_type,
            close_position=algo.close_position,
            stop_price=algo.trigger_price,
            working_type=algo.working_type,
            time=now,
            update_time=now,
            source="algo",
            algo_id=algo.algo_id,
        )
        self._register(order)
        algo.status, algo.actual_order_id = "TRIGGERED", order.order_id
        self._emit(payloads.algo_update_event(spec, algo, now))
        self._emit(payloads.order_update_event(spec, order, "NEW", now))
        if qty > 0:
            self._fill(order, qty, self._market_price(algo.symbol, algo.side))
            algo.actual_price, algo.actual_qty = order.avg_price, order.executed_qty
        else:
            # no position left to close: the order expires in the matching engine, the algo finishes empty
            order.status = "EXPIRED"
            self._emit(payloads.order_update_event(spec, order, "EXPIRED", now))
        algo.status, algo.update_time = "FINISHED", self.clock()
        self._emit(payloads.algo_update_event(spec, algo, algo.update_time))

    # ------------------------------------------------------------------ settings
    def set_leverage(self, symbol: str, leverage: int) -> None:
        spec = self.spec(symbol)
        if not 1 <= leverage <= spec.max_leverage:
            raise errors.leverage_not_valid(str(leverage))
        self.settings[symbol].leverage = leverage
        self._emit(payloads.leverage_update_event(symbol, leverage, self.clock()))

    def set_margin_type(self, symbol: str, margin_type: str) -> None:
        self.spec(symbol)
        settings = self.settings[symbol]
        if settings.margin_type == margin_type:
            raise errors.no_need_to_change_margin_type()
        if self.positions[symbol].qty or self.open_orders(symbol):
            raise errors.margin_type_with_position()
        settings.margin_type = margin_type

    def set_wallet(self, balance: Decimal) -> None:
        change = balance - self.wallet
        self.wallet = balance
        self.wallet_update_time = self.clock()
        self._emit(self._account_event("DEPOSIT" if change >= 0 else "WITHDRAW", [], change))

    # ------------------------------------------------------------------ helpers
    def _check_qty(self, spec: SymbolSpec, qty: Decimal, *, market_order: bool) -> None:
        if qty <= 0:
            raise errors.qty_not_positive()
        if not _is_multiple(qty, spec.step_size):
            raise errors.precision_over_max()
        if qty < spec.min_qty:
            raise errors.qty_below_min()
        if qty > (spec.market_max_qty if market_order else spec.max_qty):
            raise errors.qty_above_max()

    def _check_margin(self, symbol: str, side: str, qty: Decimal, price: Decimal) -> None:
        pos = self.positions[symbol].qty
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

    def _account_event(self, reason: str, symbols: list[str], balance_change: Decimal) -> dict[str, Any]:
        entries = [
            payloads.position_event_entry(
                self.specs[s], self.positions[s], self.settings[s], self.markets[s], self.taker_fee
            )
            for s in symbols
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

    def _register(self, order: FakeOrder) -> None:
        self.orders.append(order)
        self._orders_by_id[order.order_id] = order
        self._live_orders.append(order)

    def _emit(self, event: dict[str, Any]) -> None:
        self.outbox.append(event)

    def drain_outbox(self) -> list[dict[str, Any]]:
        events, self.outbox = self.outbox, []
        return events

    def _new_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id

    def _new_algo_id(self) -> int:
        self._next_algo_id += 1
        return self._next_algo_id

    def _new_trade_id(self) -> int:
        self._next_trade_id += 1
        return self._next_trade_id
