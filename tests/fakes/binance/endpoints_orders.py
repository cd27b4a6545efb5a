"""Order endpoints: regular orders (MARKET/LIMIT), conditional orders of the Algo Order API, trades, force orders."""

from __future__ import annotations

from typing import Any

from tests.fakes.binance import errors, payloads
from tests.fakes.binance.endpoints_base import SIGNED, WEEK_MS, Endpoints, Route
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.matching import CONDITIONAL_TYPES, random_client_id
from tests.fakes.binance.models import FakeAlgoOrder
from tests.fakes.binance.params import CLIENT_ID, Params


class OrderEndpoints(Endpoints):
    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", "/fapi/v1/openOrders"): Route(self.open_orders, SIGNED),
            ("GET", "/fapi/v1/openOrder"): Route(self.open_order, SIGNED),
            ("GET", "/fapi/v1/order"): Route(self.query_order, SIGNED),
            ("GET", "/fapi/v1/allOrders"): Route(self.all_orders, SIGNED),
            ("GET", "/fapi/v1/userTrades"): Route(self.user_trades, SIGNED),
            ("GET", "/fapi/v1/forceOrders"): Route(self.force_orders, SIGNED),
            ("POST", "/fapi/v1/order"): Route(self.new_order, SIGNED),
            ("DELETE", "/fapi/v1/order"): Route(self.cancel_order, SIGNED),
            ("DELETE", "/fapi/v1/allOpenOrders"): Route(self.cancel_all_orders, SIGNED),
            ("POST", "/fapi/v1/algoOrder"): Route(self.new_algo_order, SIGNED),
            ("GET", "/fapi/v1/algoOrder"): Route(self.query_algo_order, SIGNED),
            ("DELETE", "/fapi/v1/algoOrder"): Route(self.cancel_algo_order, SIGNED),
            ("DELETE", "/fapi/v1/algoOpenOrders"): Route(self.cancel_all_algo_orders, SIGNED),
            ("GET", "/fapi/v1/openAlgoOrders"): Route(self.open_algo_orders, SIGNED),
            ("GET", "/fapi/v1/allAlgoOrders"): Route(self.all_algo_orders, SIGNED),
        }

    async def open_orders(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        orders = self.ex.open_orders(spec.symbol if spec else None)
        return [payloads.order_json(self.ex.specs[o.symbol], o) for o in orders]

    async def open_order(self, p: Params) -> Any:
        order = self._order_lookup(p)
        if order is None or not order.is_open:
            raise errors.order_does_not_exist()
        return payloads.order_json(self.ex.specs[order.symbol], order)

    async def query_order(self, p: Params) -> Any:
        order = self._order_lookup(p)
        if order is None:
            raise errors.order_does_not_exist()
        return payloads.order_json(self.ex.specs[order.symbol], order)

    async def all_orders(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        start, end, limit = self._history_window(p, 500, 1000)
        from_id = p.int("orderId")
        chosen = [
            o
            for o in self.ex.orders
            if o.symbol == spec.symbol
            and (from_id is None or o.order_id >= from_id)
            and (start is None or o.time >= start)
            and (end is None or o.time <= end)
        ]
        chosen = chosen[:limit] if (from_id is not None or start is not None) else chosen[-limit:]
        return [payloads.order_json(spec, o) for o in chosen]

    async def user_trades(self, p: Params) -> Any:
        """GET /fapi/v1/userTrades with the documented window rules.

        Neither time sent: the last 7 days; only ``startTime``: startTime to startTime + 7 days; only
        ``endTime``: the 7 days before it; both more than 7 days apart: -1127 (Binance's "More than
        %s hours between startTime and endTime.", here 168); ``fromId`` with a time: -1128 (the docs
        only say it cannot be sent; the code is the generic bad-combination one).
        """
        spec = self._symbol(p)
        assert spec is not None
        start, end, limit = self._history_window(p, 500, 1000)
        from_id, order_id = p.int("fromId"), p.int("orderId")
        if from_id is not None and (start is not None or end is not None):
            raise errors.bad_param_combination()
        if start is not None and end is not None:
            if start > end:
                raise errors.start_after_end()
            if end - start > WEEK_MS:
                raise errors.lookup_interval_too_big(WEEK_MS // 3_600_000)
        elif start is not None:
            end = start + WEEK_MS
        elif end is not None:
            start = end - WEEK_MS
        elif from_id is None:  # with orderId too: the docs' 7-day default has no exception for it
            end = self.fake.now_ms()
            start = end - WEEK_MS
        chosen = [
            t
            for t in self.ex.trades
            if t.symbol == spec.symbol
            and (from_id is None or t.trade_id >= from_id)
            and (order_id is None or t.order_id == order_id)
            and (start is None or t.time >= start)
            and (end is None or t.time <= end)
        ]
        explicit_start = from_id is not None or p.int("startTime") is not None
        chosen = chosen[:limit] if explicit_start else chosen[-limit:]
        return [payloads.trade_json(spec, t) for t in chosen]

    async def force_orders(self, p: Params) -> Any:
        """GET /fapi/v1/forceOrders: the account's liquidation (``autoclose-``) and ADL orders.

        Without ``startTime`` only the 7 days before ``endTime`` (default now) are searched; limit
        default 50, max 100; oldest first, the most recent ``limit`` when no start is given.
        """
        spec = self._symbol(p, required=False)
        kind = p.raw("autoCloseType")
        if kind is not None and kind not in ("LIQUIDATION", "ADL"):
            raise errors.invalid_value("autoCloseType")
        limit = self._limit(p, 50, 100)
        start, end = p.int("startTime"), p.int("endTime")
        end = self.fake.now_ms() if end is None else end
        first = start if start is not None else end - WEEK_MS
        if first > end:
            raise errors.start_after_end()
        sources = {"LIQUIDATION": ("liquidation",), "ADL": ("adl",), None: ("liquidation", "adl")}[kind]
        chosen = [
            o
            for o in self.ex.orders
            if o.source in sources and (spec is None or o.symbol == spec.symbol) and first <= o.time <= end
        ]
        chosen = chosen[:limit] if start is not None else chosen[-limit:]
        return [payloads.force_order_json(self.ex.specs[o.symbol], o) for o in chosen]

    async def new_order(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        side = p.enum("side", ("BUY", "SELL"), errors.invalid_side())
        order_type = p.str("type", required=True)
        assert order_type is not None
        if order_type in CONDITIONAL_TYPES:
            raise errors.use_algo_api()  # since 2025-12 conditional types live on the Algo Order API
        if order_type not in ("MARKET", "LIMIT"):
            raise errors.invalid_order_type()
        position_side = self._position_side(p)
        if p.bool("closePosition"):
            raise errors.not_required("closePosition")
        resp_type = p.enum(
            "newOrderRespType", ("ACK", "RESULT"), errors.invalid_value("newOrderRespType"), default="ACK"
        )
        client_id = p.str("newClientOrderId")
        if client_id is not None and not CLIENT_ID.match(client_id):
            raise BinanceError(-4015, "Client order id is not valid.")
        qty = p.decimal("quantity", required=True)
        assert qty is not None
        price = p.decimal("price") if order_type == "LIMIT" else None
        time_in_force = "GTC"
        if order_type == "LIMIT":
            time_in_force = p.enum("timeInForce", ("GTC", "IOC", "FOK", "GTX", "GTD"), errors.invalid_time_in_force())
        reduce_only = bool(p.bool("reduceOnly"))
        order = self.ex.new_order(
            symbol=spec.symbol,
            side=side,
            order_type=order_type,
            qty=qty,
            price=price,
            reduce_only=reduce_only,
            client_order_id=client_id or random_client_id(),
            time_in_force=time_in_force,
            position_side=position_side,
        )
        if time_in_force in ("IOC", "FOK", "GTX") and order.is_open:
            # the fake has no book depth: an immediate-or-cancel limit that did not cross just expires
            order.status = "EXPIRED"
            order.update_time = self.fake.now_ms()
            self.ex.outbox.append(payloads.order_update_event(spec, order, "EXPIRED", order.update_time))
        if resp_type == "RESULT":
            return payloads.order_json(spec, order, with_time=False)
        return payloads.ack_json(spec, order)

    async def cancel_order(self, p: Params) -> Any:
        order = self._order_lookup(p)
        if order is None or not order.is_open:
            raise errors.unknown_order()
        self.ex.cancel_order(order)
        return payloads.order_json(self.ex.specs[order.symbol], order, with_time=False)

    async def cancel_all_orders(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        for order in self.ex.open_orders(spec.symbol):
            self.ex.cancel_order(order)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    # ------------------------------------------------------------------ algo orders
    async def new_algo_order(self, p: Params) -> Any:
        algo_type = p.str("algoType", required=True)
        if algo_type != "CONDITIONAL":
            raise errors.invalid_value("algoType")
        spec = self._symbol(p)
        assert spec is not None
        side = p.enum("side", ("BUY", "SELL"), errors.invalid_side())
        order_type = p.str("type", required=True)
        assert order_type is not None
        position_side = self._position_side(p)
        trigger = p.decimal("triggerPrice")
        if trigger is None:
            trigger = p.decimal("triggerprice")
        if trigger is None:
            raise errors.missing_param("triggerprice")
        working_type = p.enum(
            "workingType",
            ("MARK_PRICE", "CONTRACT_PRICE"),
            errors.invalid_value("workingType"),
            default="CONTRACT_PRICE",
        )
        client_algo_id = p.str("clientAlgoId")
        if client_algo_id is not None and not CLIENT_ID.match(client_algo_id):
            raise BinanceError(-4015, "Client order id is not valid.")
        close_position = bool(p.bool("closePosition"))
        reduce_only_raw = p.bool("reduceOnly")
        algo = self.ex.new_algo(
            symbol=spec.symbol,
            side=side,
            order_type=order_type,
            trigger_price=trigger,
            qty=p.decimal("quantity"),
            close_position=close_position,
            reduce_only=bool(reduce_only_raw) if not close_position else reduce_only_raw is not None,
            working_type=working_type,
            client_algo_id=client_algo_id or random_client_id(),
            price_protect=(p.str("priceProtect") or "").upper() == "TRUE",
            time_in_force=p.str("timeInForce") or "GTC",
            position_side=position_side,
        )
        return payloads.algo_json(spec, algo)

    def _algo_lookup(self, p: Params) -> FakeAlgoOrder | None:
        algo_id = p.int("algoId", case_insensitive=True)
        client_algo_id = p.raw_ci("clientAlgoId")
        if algo_id is None and client_algo_id is None:
            raise BinanceError(-1102, "Either algoId or clientAlgoId must be sent.")
        return self.ex.find_algo(algo_id, client_algo_id)

    async def query_algo_order(self, p: Params) -> Any:
        algo = self._algo_lookup(p)
        if algo is None:
            raise errors.order_does_not_exist()
        return payloads.algo_json(self.ex.specs[algo.symbol], algo)

    async def cancel_algo_order(self, p: Params) -> Any:
        algo = self._algo_lookup(p)
        if algo is None or not algo.is_open:
            raise errors.unknown_order()
        self.ex.cancel_algo(algo)
        return {"algoId": algo.algo_id, "clientAlgoId": algo.client_algo_id, "code": "200", "msg": "success"}

    async def cancel_all_algo_orders(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        for algo in self.ex.open_algos(spec.symbol):
            self.ex.cancel_algo(algo)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def open_algo_orders(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        algo_id = p.int("algoId", case_insensitive=True)
        algos = [
            a for a in self.ex.open_algos(spec.symbol if spec else None) if algo_id is None or a.algo_id == algo_id
        ]
        return [payloads.algo_json(self.ex.specs[a.symbol], a) for a in algos]

    async def all_algo_orders(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        start, end, limit = self._history_window(p, 500, 1000)
        chosen = [
            a
            for a in self.ex.algo_orders
            if a.symbol == spec.symbol
            and (start is None or a.create_time >= start)
            and (end is None or a.create_time <= end)
        ]
        chosen = chosen[:limit] if start is not None else chosen[-limit:]
        return [payloads.algo_json(spec, a) for a in chosen]
