"""The WebSocket side: Binance's 2026 routed roots (/market, /public, /private) on one aiohttp app.

Each connection has its own send queue and writer task, so a publish never blocks on a
slow reader and every client sees messages in the order they were published.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.binance.models import WsClientInfo, WsClientMessage

log = logging.getLogger(__name__)

MARKET_STREAM = re.compile(
    r"^(?:[a-z0-9_]+@(?:kline_\w+|markPrice(?:@1s)?|aggTrade|ticker|miniTicker|continuousKline_\w+|forceOrder)"
    r"|!markPrice@arr(?:@1s)?|!ticker@arr|!miniTicker@arr|!forceOrder@arr|!contractInfo)$"
)
PUBLIC_STREAM = re.compile(r"^(?:[a-z0-9_]+@(?:bookTicker|depth(?:5|10|20)?(?:@(?:100|250|500)ms)?)|!bookTicker)$")
METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")


def root_of(stream: str) -> str | None:
    """Which routed root delivers ``stream`` ("market" | "public"), None for names no root knows."""
    if MARKET_STREAM.match(stream):
        return "market"
    if PUBLIC_STREAM.match(stream):
        return "public"
    return None


def _error(code: int, msg: str, request_id: Any) -> str:
    return json.dumps({"error": {"code": code, "msg": msg}, "id": request_id})


@dataclass
class WsClient:
    info: WsClientInfo
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    recent: deque[float] = field(default_factory=deque)
    writer: asyncio.Task[None] | None = None

    def send(self, text: str) -> None:
        self.queue.put_nowait(text)


class StreamHub:
    """Connections, their subscriptions, and fan-out of market data and user-data events."""

    def __init__(
        self,
        clock: Callable[[], int],
        *,
        max_streams: int = 200,
        max_incoming_per_s: int = 10,
        ping_interval_s: float = 180.0,
        market_silent: Callable[[], bool] = lambda: False,
        private_silent: Callable[[], bool] = lambda: False,
        listen_key_valid: Callable[[str], bool] = lambda key: False,
        on_subscription_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.clock = clock
        self.max_streams = max_streams
        self.max_incoming_per_s = max_incoming_per_s
        self.ping_interval_s = ping_interval_s
        self.market_silent = market_silent
        self.private_silent = private_silent
        self.listen_key_valid = listen_key_valid
        self.on_subscription_change = on_subscription_change
        self.clients: dict[int, WsClient] = {}
        self.messages: list[WsClientMessage] = []
        # deliverable subscriptions only: a stream asked for on the wrong root never gets here
        self._index: dict[str, set[int]] = {}
        self._ids = itertools.count(1)

    # ------------------------------------------------------------------ routes
    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/market/ws", self._market_handler)
        app.router.add_get("/market/ws/{stream}", self._market_handler)
        app.router.add_get("/market/stream", self._market_handler)
        app.router.add_get("/public/ws", self._public_handler)
        app.router.add_get("/public/ws/{stream}", self._public_handler)
        app.router.add_get("/public/stream", self._public_handler)
        app.router.add_get("/private/ws", self._private_handler)
        app.router.add_get("/private/ws/{listen_key}", self._private_handler)
        app.router.add_get("/private/stream", self._private_handler)

    async def _market_handler(self, request: web.Request) -> web.StreamResponse:
        return await self._data_handler(request, "market")

    async def _public_handler(self, request: web.Request) -> web.StreamResponse:
        return await self._data_handler(request, "public")

    async def _data_handler(self, request: web.Request, kind: str) -> web.StreamResponse:
        combined = request.path.endswith("/stream")
        if combined:
            raw = request.query.get("streams", "")
            streams = [s for s in raw.split("/") if s]
        else:
            path_stream = request.match_info.get("stream")
            streams = [path_stream] if path_stream else []
        if len(streams) > self.max_streams:
            return web.json_response(
                {"code": -1, "msg": f"Too many streams: at most {self.max_streams} per connection."}, status=400
            )
        info = WsClientInfo(
            client_id=next(self._ids),
            kind=kind,
            path=request.path_qs,
            combined=combined,
            connected_at_ms=self.clock(),
        )
        client = await self._open(request, info, streams)
        if client is None:
            return web.Response(status=400)
        await self._serve(client)
        return client.ws

    async def _private_handler(self, request: web.Request) -> web.StreamResponse:
        combined = request.path.endswith("/stream")
        key = request.match_info.get("listen_key") or request.query.get("listenKey", "")
        raw_events = request.query.get("events", "")
        events = frozenset(e for e in re.split(r"[/,]", raw_events) if e) or None
        info = WsClientInfo(
            client_id=next(self._ids),
            kind="private",
            path=request.path_qs,
            combined=combined,
            listen_key=key,
            events_filter=events,
            connected_at_ms=self.clock(),
        )
        valid = bool(key) and self.listen_key_valid(key)
        client = await self._open(request, info, register=valid)
        if client is None:
            return web.Response(status=400)
        if not valid:
            # an unknown or expired listenKey: the socket is closed right away
            await client.ws.close(code=1008, message=b"Invalid listenKey")
            await self._stop_writer(client)
            return client.ws
        await self._serve(client)
        return client.ws

    # ------------------------------------------------------------------ connection life
    async def _open(
        self, request: web.Request, info: WsClientInfo, streams: list[str] | None = None, *, register: bool = True
    ) -> WsClient | None:
        ws = web.WebSocketResponse(heartbeat=self.ping_interval_s, compress=False, max_msg_size=1 << 20)
        if not ws.can_prepare(request).ok:
            return None
        client = WsClient(info=info, ws=ws, request=request)
        if register:
            # subscribed before the handshake completes: nothing published after connect() returns is missed
            self.clients[info.client_id] = client
            self._subscribe(client, streams or [])
        try:
            await ws.prepare(request)
        except BaseException:
            self._forget(client)
            raise
        client.writer = asyncio.create_task(self._write_loop(client))
        return client

    async def _serve(self, client: WsClient) -> None:
        try:
            async for msg in client.ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    text = msg.data if msg.type == WSMsgType.TEXT else msg.data.decode(errors="replace")
                    if not await self._count_incoming(client, text):
                        break
                    if client.info.kind == "private":
                        self._handle_private_request(client, text)
                    else:
                        self._handle_request(client, text)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._forget(client)
            await self._stop_writer(client)

    async def _count_incoming(self, client: WsClient, text: str) -> bool:
        """Record the message; more than ``max_incoming_per_s`` in one second closes the connection."""
        client.info.messages_in += 1
        self.messages.append(WsClientMessage(client.info.client_id, client.info.kind, text, self.clock()))
        now = time.monotonic()
        client.recent.append(now)
        while client.recent and now - client.recent[0] > 1.0:
            client.recent.popleft()
        if len(client.recent) > self.max_incoming_per_s:
            with contextlib.suppress(Exception):
                await client.ws.close(code=1008, message=b"Too many requests")
            return False
        return True

    async def _write_loop(self, client: WsClient) -> None:
        ws = client.ws
        while True:
            text = await client.queue.get()
            try:
                if text is None:
                    return
                if not ws.closed:
                    await ws.send_str(text)
            except (ConnectionError, RuntimeError) as exc:  # the peer went away mid-send
                log.debug("fake ws %s send failed: %s", client.info.client_id, exc)
            finally:
                client.queue.task_done()

    async def _stop_writer(self, client: WsClient) -> None:
        if client.writer is None or client.writer.done():
            return
        client.queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(client.writer), 2.0)
        except (TimeoutError, asyncio.CancelledError):
            client.writer.cancel()

    def _forget(self, client: WsClient) -> None:
        self.clients.pop(client.info.client_id, None)
        changed = False
        for stream in client.info.streams:
            subscribers = self._index.get(stream)
            if subscribers is not None:
                subscribers.discard(client.info.client_id)
                if not subscribers:
                    del self._index[stream]
                changed = True
        if changed:
            self.on_subscription_change()

    async def drop(self, kind: str | None = None, *, abrupt: bool = False) -> int:
        """Close the connections of ``kind`` (all when None); ``abrupt`` cuts TCP without a close frame."""
        victims = [c for c in list(self.clients.values()) if kind is None or c.info.kind == kind]
        for client in victims:
            self._forget(client)
            if abrupt:
                transport = client.request.transport
                if transport is not None:
                    transport.abort()
        if not abrupt:
            await asyncio.gather(*(self._close(c, 1001, b"Going away") for c in victims))
        return len(victims)

    @staticmethod
    async def _close(client: WsClient, code: int, message: bytes) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.ws.close(code=code, message=message), 2.0)

    async def close_listen_key(self, listen_key: str, final_event: dict[str, Any] | None = None) -> None:
        """Send ``final_event`` (listenKeyExpired) to the sockets of that key, then close them."""
        victims = [
            c for c in list(self.clients.values()) if c.info.kind == "private" and c.info.listen_key == listen_key
        ]
        for client in victims:
            if final_event is not None:
                client.send(self._private_text(client, final_event))
        await self.flush()
        for client in victims:
            self._forget(client)
        await asyncio.gather(*(self._close(c, 1000, b"listenKey closed") for c in victims))

    async def close_all(self) -> None:
        await self.drop(None)

    async def flush(self) -> None:
        """Wait (at most 2 s) until every queued message has been handed to its socket."""
        busy = [c for c in self.clients.values() if c.queue.qsize()]
        if not busy:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2.0):
                for client in busy:
                    await client.queue.join()

    # ------------------------------------------------------------------ live requests
    def _handle_request(self, client: WsClient, text: str) -> None:
        try:
            request = json.loads(text)
        except ValueError:
            client.send(_error(3, "Invalid JSON: expected value at line 1 column 1", None))
            return
        if not isinstance(request, dict):
            client.send(_error(2, "Invalid request: expected an object", None))
            return
        request_id = request.get("id")
        if not isinstance(request_id, int) or isinstance(request_id, bool) or request_id < 0:
            client.send(_error(2, "Invalid request: request ID must be an unsigned integer", request_id))
            return
        method = request.get("method")
        if method is None:
            client.send(_error(2, "Invalid request: missing field `method`", request_id))
            return
        if method not in METHODS:
            expected = ", ".join(f"`{m}`" for m in METHODS)
            client.send(
                _error(2, f"Invalid request: unknown variant `{method}`, expected one of {expected}", request_id)
            )
            return
        params = request.get("params", [])
        if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                client.send(_error(2, "Invalid request: property name must be a string", request_id))
                return
            if method == "SUBSCRIBE":
                fresh = [p for p in dict.fromkeys(params) if p not in client.info.streams]
                if len(client.info.streams) + len(fresh) > self.max_streams:
                    msg = f"Invalid request: too many streams, at most {self.max_streams} per connection"
                    client.send(_error(2, msg, request_id))
                    return
                self._subscribe(client, fresh)
            else:
                self._unsubscribe(client, params)
            client.send(json.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            client.send(json.dumps({"result": list(client.info.streams), "id": request_id}))
        elif method == "SET_PROPERTY":
            if params[:1] != ["combined"] or len(params) != 2 or not isinstance(params[1], bool):
                client.send(_error(1, "Invalid value type: expected Boolean", request_id))
                return
            client.info.combined = params[1]
            client.send(json.dumps({"result": None, "id": request_id}))
        else:  # GET_PROPERTY
            if params != ["combined"]:
                client.send(_error(0, "Unknown property", request_id))
                return
            client.send(json.dumps({"result": client.info.combined, "id": request_id}))

    def _handle_private_request(self, client: WsClient, text: str) -> None:
        try:
            request = json.loads(text)
            request_id = request.get("id") if isinstance(request, dict) else None
        except ValueError:
            client.send(_error(3, "Invalid JSON: expected value at line 1 column 1", None))
            return
        result: Any = [] if isinstance(request, dict) and request.get("method") == "LIST_SUBSCRIPTIONS" else None
        client.send(json.dumps({"result": result, "id": request_id}))

    def _subscribe(self, client: WsClient, streams: list[str]) -> None:
        changed = False
        for stream in streams:
            if stream in client.info.streams:
                continue
            client.info.streams.append(stream)
            if root_of(stream) == client.info.kind:
                self._index.setdefault(stream, set()).add(client.info.client_id)
                changed = True
        if changed:
            self.on_subscription_change()

    def _unsubscribe(self, client: WsClient, streams: list[str]) -> None:
        for stream in streams:
            if stream in client.info.streams:
                client.info.streams.remove(stream)
                subscribers = self._index.get(stream)
                if subscribers is not None:
                    subscribers.discard(client.info.client_id)
                    if not subscribers:
                        del self._index[stream]
        self.on_subscription_change()

    # ------------------------------------------------------------------ fan-out
    def has_subscribers(self, stream: str) -> bool:
        return stream in self._index

    def subscribed_streams(self) -> set[str]:
        return set(self._index)

    def publish(self, stream: str, payload: Any) -> int:
        """Queue ``payload`` for every subscriber of ``stream``; returns how many will get it."""
        subscribers = self._index.get(stream)
        if not subscribers or self.market_silent():
            return 0
        raw: str | None = None
        wrapped: str | None = None
        for client_id in tuple(subscribers):
            client = self.clients.get(client_id)
            if client is None:
                continue
            if client.info.combined:
                if wrapped is None:
                    wrapped = json.dumps({"stream": stream, "data": payload}, separators=(",", ":"))
                client.send(wrapped)
            else:
                if raw is None:
                    raw = json.dumps(payload, separators=(",", ":"))
                client.send(raw)
        return len(subscribers)

    def publish_user(self, events: list[dict[str, Any]], listen_keys: set[str]) -> None:
        """User-data events to the private sockets of the account's live listen keys."""
        if not events or self.private_silent():
            return
        for client in list(self.clients.values()):
            if client.info.kind != "private" or client.info.listen_key not in listen_keys:
                continue
            for event in events:
                if client.info.events_filter is None or event.get("e") in client.info.events_filter:
                    client.send(self._private_text(client, event))

    @staticmethod
    def _private_text(client: WsClient, event: dict[str, Any]) -> str:
        if client.info.combined:
            return json.dumps({"stream": client.info.listen_key, "data": event}, separators=(",", ":"))
        return json.dumps(event, separators=(",", ":"))

    def infos(self, kind: str | None = None) -> list[WsClientInfo]:
        return [c.info for c in self.clients.values() if kind is None or c.info.kind == kind]
