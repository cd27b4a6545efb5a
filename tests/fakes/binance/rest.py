"""The REST pipeline: routing, request weight, injected faults, API key and signature, replies.

The endpoint handlers live in ``endpoints_market``, ``endpoints_account`` and ``endpoints_orders``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.binance import errors, signing
from tests.fakes.binance.endpoints_account import AccountEndpoints
from tests.fakes.binance.endpoints_base import API_KEY, NONE, Route
from tests.fakes.binance.endpoints_market import MarketEndpoints
from tests.fakes.binance.endpoints_orders import OrderEndpoints
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.models import RequestRecord
from tests.fakes.binance.params import Params, parse_params
from tests.fakes.binance.weights import ORDER_ENDPOINTS, request_weight

if TYPE_CHECKING:
    from tests.fakes.binance.server import FakeBinance

NOT_FOUND_HTML = "<html><body><h2>404 Not found</h2></body></html>"


class RestApi:
    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake
        self.routes: dict[tuple[str, str], Route] = {}
        for group in (MarketEndpoints(fake), AccountEndpoints(fake), OrderEndpoints(fake)):
            self.routes.update(group.routes())

    # ------------------------------------------------------------------ pipeline
    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One request, in the order the real front end takes it: route, IP weight and rate limits,
        injected holds and failures, API key / signature / timestamp, the account's order-count
        limiters, injected refusals, then the endpoint (the matching engine)."""
        fake = self.fake
        method, path = request.method, request.path
        raw_query = request.rel_url.raw_query_string
        raw_body = await request.text() if request.can_read_body else ""
        record = RequestRecord(method=method, path=path, params={}, signed_ok=None, time_ms=fake.now_ms())
        record.raw_body = raw_body
        fake.requests.append(record)
        route = self.routes.get((method, path))
        if route is None:
            record.status = 404
            return web.Response(status=404, text=NOT_FOUND_HTML, content_type="text/html", headers=self._headers())
        try:
            params = parse_params(raw_query, raw_body)
        except BinanceError as refusal:
            return self._refuse(record, refusal)
        record.params = params
        weight = request_weight(method, path, params)
        record.weight = weight
        fake.weights.add(weight)
        faults = fake.faults

        fault = faults.take(method, path, ("rate_limit",), params)
        if fault is not None:
            record.fault = "rate_limit"
            return self._refuse(record, errors.too_many_requests(fake.weights.limit, fault.retry_after, fault.status))
        if fake.weights.over_limit():
            return self._refuse(record, errors.too_many_requests(fake.weights.limit, fake.weights.seconds_to_reset()))
        late_ms = await self._arrival(record, params)
        delay = faults.take(method, path, ("delay",), params)
        if delay is not None and not delay.after:
            record.fault = "delay"
            await asyncio.sleep(delay.seconds)
        failure = faults.take(method, path, ("fail",), params)
        if failure is not None and not failure.execute:
            record.fault = "fail"
            return self._reply(record, failure.status, failure.body)

        await fake.run_due_events()  # a settlement or funding time that passed applies before this request
        is_order = (method, path) in ORDER_ENDPOINTS
        try:
            self._check_security(request, route.security, record, late_ms)
            if is_order:
                self._count_order(record)
            refusal = faults.take(method, path, ("refuse",), params)
            if refusal is not None:
                record.fault = "refuse"
                raise refusal.error(weight_limit=fake.weights.limit, min_notional=self._min_notional(params))
            body = await route.handler(Params(params))
            status = 200
        except BinanceError as refusal:
            return self._refuse(record, refusal)
        finally:
            # events of whatever was executed go out even if the reply is then lost or replaced
            await fake.flush_user_events()

        if faults.take(method, path, ("lose_response",), params) is not None:
            record.fault, record.status = "lose_response", 0
            transport = request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError  # no reply at all: the client sees the connection drop
        if failure is not None:
            record.fault = "fail"
            return self._reply(record, failure.status, failure.body)
        if delay is not None and delay.after:
            record.fault = "delay"
            await asyncio.sleep(delay.seconds)
        return self._reply(record, status, body)

    async def _arrival(self, record: RequestRecord, params: dict[str, str]) -> int:
        """Apply ``hold`` / ``late`` faults; returns how many ms late the request counts as arriving."""
        faults = self.fake.faults
        hold = faults.take(record.method, record.path, ("hold",), params)
        if hold is not None and hold.released is not None:
            record.fault = "hold"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hold.released.wait(), hold.hold_timeout_s)
        late = faults.take(record.method, record.path, ("late",), params)
        if late is not None:
            record.fault = "late"
            return late.late_ms
        return 0

    def _count_order(self, record: RequestRecord) -> None:
        """An authenticated order counts on the account's order limiters (a -1015 refusal does not)."""
        counter = self.fake.order_counter
        refusal = counter.refusal()
        if refusal is not None:
            raise refusal
        counter.add()

    def _min_notional(self, params: dict[str, str]) -> str | None:
        spec = self.fake.exchange.specs.get(params.get("symbol", ""))
        return format(spec.min_notional.normalize(), "f") if spec is not None else None

    def _check_security(self, request: web.Request, security: str, record: RequestRecord, late_ms: int = 0) -> None:
        if security == NONE:
            return
        key = request.headers.get("X-MBX-APIKEY")
        if not key:
            raise errors.api_key_format_invalid()
        if key != self.fake.api_key:
            raise errors.api_key_rejected(request.remote or "127.0.0.1")
        if security == API_KEY:
            return
        record.signed_ok = False
        arrival = self.fake.now_ms() + late_ms
        signing.check_timestamp(record.params, arrival, enforce_window=self.fake.enforce_recv_window)
        signing.check_signature(request.rel_url.raw_query_string, record.raw_body, self.fake.api_secret)
        record.signed_ok = True

    def _headers(self, record: RequestRecord | None = None) -> dict[str, str]:
        # lower-case names, as Binance sends them (header names are case-insensitive anyway)
        headers = {"x-mbx-used-weight-1m": str(self.fake.weights.used)}
        if record is not None and record.signed_ok and (record.method, record.path) in ORDER_ENDPOINTS:
            # order replies carry the account's order counts (only once the request was authenticated)
            headers.update(self.fake.order_counter.headers())
        return headers

    def _refuse(self, record: RequestRecord, refusal: BinanceError) -> web.Response:
        record.code = refusal.code
        response = self._reply(record, refusal.http_status, refusal.body())
        response.headers.update(refusal.headers)
        return response

    def _reply(self, record: RequestRecord, status: int, body: Any) -> web.Response:
        record.status = status
        if isinstance(body, dict) and isinstance(body.get("code"), int) and body["code"] < 0:
            record.code = body["code"]
        return web.Response(
            status=status,
            text=json.dumps(body, separators=(",", ":")),
            content_type="application/json",
            headers=self._headers(record),
        )
