"""What the exchange does to an account on its own: funding, liquidation / ADL, delisting settlement.

Each operation changes the account through the matching engine (``Exchange``) and queues the
user-data events Binance pushes for it; the server sends them with the next flush.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_EVEN, Decimal

from tests.fakes.binance import payloads
from tests.fakes.binance.matching import Exchange
from tests.fakes.binance.models import BOTH, ZERO, FakeOrder, Position, SymbolSpec

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
EIGHT_DECIMALS = Decimal("0.00000001")
CLOSE_ONLY_BEFORE_DELISTING_MS = 30 * 60_000  # announcements: no new positions from 30 min before settlement


class Lifecycle:
    def __init__(self, exchange: Exchange) -> None:
        self.ex = exchange
        self.auto_funding = False  # charge funding by itself at each symbol's funding times
        self._funding_due: dict[str, int] = {}  # symbol -> next automatic funding time
        self._settlements: dict[str, int] = {}  # symbol -> announced settlement time
        self._autoclose_seq = 0
        # told when a contract's status or delivery date changes (the server pushes !contractInfo)
        self.on_contract_change: Callable[[SymbolSpec], None] = lambda spec: None

    # ------------------------------------------------------------------ funding
    def funding_interval_ms(self, symbol: str) -> int:
        return self.ex.spec(symbol).funding_interval_hours * HOUR_MS

    def next_funding_time(self, symbol: str, now: int | None = None) -> int:
        """Funding times are whole multiples of the symbol's interval (00/08/16 UTC for 8 hours)."""
        interval = self.funding_interval_ms(symbol)
        current = self.ex.clock() if now is None else now
        return (current // interval + 1) * interval

    def set_auto_funding(self, enabled: bool) -> None:
        self.auto_funding = enabled
        self._funding_due = {s: self.next_funding_time(s) for s in self.ex.specs} if enabled else {}

    def charge_funding(self, symbol: str, rate: Decimal | None = None, *, at_ms: int | None = None) -> Decimal:
        """One funding event of ``symbol``: every open leg pays ``notional x rate`` (longs pay a positive rate).

        The wallet moves by ``-positionAmt x markPrice x rate`` per leg, an income row FUNDING_FEE is
        written per leg, the funding history gets the rate and mark, and the user stream gets an
        ACCOUNT_UPDATE with reason FUNDING_FEE: only the USDT balance (``bc`` = the fee) and no
        positions for a cross position; an isolated position's row comes along (Binance's documented
        shape). Returns the total wallet change.
        """
        ex = self.ex
        spec = ex.spec(symbol)
        market = ex.markets[spec.symbol]
        rate = market.funding_rate if rate is None else rate
        now = ex.clock() if at_ms is None else at_ms
        ex.ledger.add_funding(spec.symbol, rate, now, market.mark)
        market.funding_rate = rate  # what premiumIndex shows as lastFundingRate
        total = ZERO
        isolated: list[Position] = []
        for leg in ex.legs(spec.symbol):
            if not leg.qty:
                continue
            fee = (-(leg.qty * market.mark) * rate).quantize(EIGHT_DECIMALS, ROUND_HALF_EVEN)
            if not fee:
                continue
            ex.wallet += fee
            ex.ledger.add_income(spec.symbol, "FUNDING_FEE", fee, now)
            total += fee
            if ex.settings[spec.symbol].margin_type == "ISOLATED":
                isolated.append(leg)
        if total or isolated:
            ex.wallet_update_time = now
            positions = [
                payloads.position_event_entry(spec, leg, ex.settings[spec.symbol], market, ex.taker_fee)
                for leg in isolated
            ]
            event = payloads.account_update_event(
                "FUNDING_FEE",
                now=now,
                wallet=ex.wallet,
                cross_wallet=ex.wallet - ex.isolated_total(),
                balance_change=total,
                positions=positions,
            )
            ex.emit(event)
        return total

    # ------------------------------------------------------------------ liquidation
    def liquidate(
        self, symbol: str, *, position_side: str | None = None, price: Decimal | None = None, adl: bool = False
    ) -> FakeOrder:
        """Close a position the way the liquidation engine (or ADL) does.

        Modelled on the docs: the order's client id starts ``autoclose-`` (ADL: ``adl_autoclose``),
        it is a LIMIT IOC order at the liquidation price (GET /fapi/v1/forceOrders' example), the
        user stream first shows it NEW (x NEW) and then its execution with ``x`` = CALCULATED
        ("Liquidation Execution") and ``X`` = FILLED, next to an ACCOUNT_UPDATE (reason ORDER) with
        the position at 0. TRADE_LITE carries TRADE executions only, so it is not sent. The
        symbol's open regular orders are cancelled first, as the liquidation engine does; algo
        orders stay (a closePosition stop then finds nothing to close). The fee is the taker fee
        (the real clearance fee goes to the insurance fund and is not modelled).
        """
        ex = self.ex
        spec = ex.spec(symbol)
        leg = self._open_leg(spec.symbol, position_side)
        market = ex.markets[spec.symbol]
        fill_price = market.mark if price is None else price
        now = ex.clock()
        for order in ex.open_orders(spec.symbol):
            ex.cancel_order(order)
        self._autoclose_seq += 1
        client_id = "adl_autoclose" if adl else f"autoclose-{now}{self._autoclose_seq:06d}"
        source, time_in_force = ("adl", "GTC") if adl else ("liquidation", "IOC")  # as forceOrders' example
        order = self._system_order(leg, client_id, fill_price, source=source, time_in_force=time_in_force)
        ex.emit(payloads.order_update_event(spec, order, "NEW", now))
        ex.fill(order, abs(leg.qty), fill_price, execution="CALCULATED")
        return order

    def _open_leg(self, symbol: str, position_side: str | None) -> Position:
        ex = self.ex
        legs = [leg for leg in ex.legs(symbol) if leg.qty]
        if position_side is not None:
            legs = [leg for leg in legs if leg.side == position_side]
        if not legs:
            raise ValueError(f"no open {position_side or ''} position on {symbol}".replace("  ", " "))
        if len(legs) > 1:
            raise ValueError(f"{symbol} has a LONG and a SHORT leg: say which (position_side=)")
        return legs[0]

    def _system_order(
        self, leg: Position, client_id: str, price: Decimal, *, source: str, time_in_force: str
    ) -> FakeOrder:
        ex = self.ex
        now = ex.clock()
        order = FakeOrder(
            symbol=leg.symbol,
            order_id=ex.new_order_id(),
            client_order_id=client_id,
            side="SELL" if leg.qty > 0 else "BUY",
            type="LIMIT",
            qty=abs(leg.qty),
            status="NEW",
            avg_price=ZERO,
            reduce_only=False,
            price=price,
            time_in_force=time_in_force,
            orig_type="LIMIT",
            time=now,
            update_time=now,
            source=source,
            position_side=leg.side if ex.dual_side else BOTH,
        )
        ex.register(order)
        return order

    # ------------------------------------------------------------------ delisting
    def announce_delisting(self, symbol: str, settle_at_ms: int, *, close_only_ms: int) -> None:
        """exchangeInfo's ``deliveryDate`` becomes the settlement time; from ``settle_at_ms - close_only_ms``
        orders that would open are refused (-4140) while the status still says TRADING."""
        spec = self.ex.spec(symbol)
        spec.delivery_date = settle_at_ms
        spec.close_only_from = settle_at_ms - close_only_ms
        self._settlements[spec.symbol] = settle_at_ms
        self.on_contract_change(spec)

    def settle(self, symbol: str, price: Decimal | None = None) -> list[FakeOrder]:
        """Delisting settlement: status SETTLING, open orders cancelled and algo orders expired (system
        cancellations), every open leg closed at the settlement price (default: the mark) by an order
        whose client id starts ``settlement_autoclose-`` (the docs' prefix; a LIMIT IOC filled as a
        TRADE at the taker fee, our choice where the docs are silent), then status CLOSE."""
        ex = self.ex
        spec = ex.spec(symbol)
        self._settlements.pop(spec.symbol, None)
        spec.status = "SETTLING"
        self.on_contract_change(spec)
        settle_price = ex.markets[spec.symbol].mark if price is None else price
        for order in ex.open_orders(spec.symbol):
            ex.cancel_order(order)
        for algo in ex.open_algos(spec.symbol):
            ex.cancel_algo(algo, status="EXPIRED")
        closed: list[FakeOrder] = []
        for leg in ex.legs(spec.symbol):
            if not leg.qty:
                continue
            self._autoclose_seq += 1
            client_id = f"settlement_autoclose-{ex.clock()}{self._autoclose_seq:06d}"
            order = self._system_order(leg, client_id, settle_price, source="settlement", time_in_force="IOC")
            ex.emit(payloads.order_update_event(spec, order, "NEW", ex.clock()))
            ex.fill(order, abs(leg.qty), settle_price)
            closed.append(order)
        spec.status = "CLOSE"
        self.on_contract_change(spec)
        return closed

    # ------------------------------------------------------------------ the clock's due work
    def next_due(self) -> int | None:
        times = list(self._settlements.values())
        if self.auto_funding and self._funding_due:
            times.append(min(self._funding_due.values()))
        return min(times) if times else None

    def run_due(self, now: int) -> None:
        """Settle symbols whose settlement time passed; charge every funding time passed (auto funding)."""
        for symbol, settle_at in sorted(self._settlements.items(), key=lambda item: item[1]):
            if now >= settle_at:
                self.settle(symbol)
        if not self.auto_funding:
            return
        for symbol in self.ex.specs:
            if symbol not in self._funding_due:  # listed after auto funding was switched on
                self._funding_due[symbol] = self.next_funding_time(symbol, now)
        for symbol, first_due in list(self._funding_due.items()):
            interval = self.funding_interval_ms(symbol)
            due, charged = first_due, 0
            while due <= now and charged < 1000:  # bounded: a clock jump of years does not hang the fake
                if self.ex.specs[symbol].status == "TRADING":
                    self.charge_funding(symbol, at_ms=due)
                due += interval
                charged += 1
            self._funding_due[symbol] = due
