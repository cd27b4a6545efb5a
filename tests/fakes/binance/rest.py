"""The REST pipeline: routing, request weight, injected faults, API key and signature, replies.

The endpoint handlers live in ``endpoints_market``, ``endpoints_account`` and ``endpoints_orders``.
"""

from __future__ import annotations

import asyncio
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
        fake.weights.add(weight, order=(method, path) in ORDER_ENDPOINTS)

        fault = fake.faults.take(method, path, ("rate_limit",))
        if fault is not None:
            record.fault = "rate_limit"
            return self._refuse(record, errors.too_many_requests(fake.weights.limit, fault.retry_after, fault.status))
        if fake.weights.over_limit():
            return self._refuse(record, errors.too_many_requests(fake.weights.limit, fake.weights.seconds_to_reset()))
        delay = fake.faults.take(method, path, ("delay",))
        if delay is not None and not delay.after:
            record.fault = "delay"
            await asyncio.sleep(delay.seconds)
        failure = fake.faults.take(method, path, ("fail",))
        if failure is not None and not failure.execute:
            record.fault = "fail"
            return self._reply(record, failure.status, failure.body)

        try:
            self._check_security(request, route.security, record)
            body = await route.handler(Params(params))
            status = 200
        except BinanceError as refusal:
            return self._refuse(record, refusal)
        finally:
            # events of whatever was executed go out even if the reply is then lost or replaced
            await fake.flush_user_events()

        if fake.faults.take(method, path, ("lose_response",)) is not None:
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

    def _check_security(self, request: web.Request, security: str, record: RequestRecord) -> None:
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
        signing.check_timestamp(record.params, self.fake.now_ms(), enforce_window=self.fake.enforce_recv_window)
        signing.check_signature(request.rel_url.raw_query_string, record.raw_body, self.fake.api_secret)
        record.signed_ok = True

    def _headers(self, record: RequestRecord | None = None) -> dict[str, str]:
        # lower-case names, as Binance sends them (header names are case-insensitive anyway)
        headers = {"x-mbx-used-weight-1m": str(self.fake.weights.used)}
        if record is not None and (record.method, record.path) in ORDER_ENDPOINTS:
            headers["x-mbx-order-count-1m"] = str(self.fake.weights.orders)
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
