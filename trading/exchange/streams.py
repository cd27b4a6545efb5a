"""Binance USD-M WebSocket streams: market data (klines, last and mark prices) and the user-data stream.

Binance's 2026 routed roots: market streams on ``{base}/market/stream?streams=a/b/c`` (combined), user
data on ``{base}/private/ws?listenKey=K``. A stream sent to the wrong root is silently not delivered.

Delivery: the socket readers never await a consumer. Each ``events()`` iterator has its own buffer in
which closed klines and status changes queue without loss, while price updates are coalesced per
(symbol, kind): when the consumer lags it gets the latest price, not a backlog.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Generic, TypeVar

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from trading.clock import Clock, SystemClock
from trading.core.backoff import Backoff
from trading.exchange.base import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoStatus,
    AlgoUpdate,
    ExchangePosition,
    Kline,
    KlineEvent,
    ListenKeyAPI,
    MarketEvent,
    OrderStatus,
    OrderUpdate,
    PriceEvent,
    Side,
    StreamStatus,
    UserEvent,
)
from trading.retry import Attempts

log = logging.getLogger(__name__)

E = TypeVar("E")


# ------------------------------------------------------------------ parsing (pure)
class StreamParseError(ValueError):
    """A message that does not have the shape Binance documents."""


def _dec(value: Any, default: str = "0") -> Decimal:
    if value is None or value == "":
        return Decimal(default)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise StreamParseError(f"not a decimal: {value!r}") from exc


def _unwrap(msg: dict[str, Any]) -> dict[str, Any]:
    """Combined streams wrap each event as ``{"stream": ..., "data": {...}}``."""
    data = msg.get("data")
    return data if isinstance(data, dict) and "e" not in msg else msg


def parse_kline_event(data: dict[str, Any]) -> KlineEvent:
    try:
        k = data["k"]
        kline = Kline(
            open_time=int(k["t"]),
            open=float(k["o"]),
            high=float(k["h"]),
            low=float(k["l"]),
            close=float(k["c"]),
            volume=float(k["v"]),
            closed=bool(k["x"]),
        )
        return KlineEvent(symbol=str(data["s"]), interval=str(k["i"]), kline=kline, event_time=int(data["E"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamParseError(f"bad kline event: {exc!r}") from exc


_ORDER_STATUS = {s.value: s for s in OrderStatus} | {"EXPIRED_IN_MATCH": OrderStatus.EXPIRED}


def _order_status(o: dict[str, Any]) -> OrderStatus:
    """Binance's status; others (``NEW_ADL``, ``NEW_INSURANCE``: liquidation/ADL executions) are inferred from
    the quantities, so that a forced fill is never dropped."""
    raw = str(o["X"])
    status = _ORDER_STATUS.get(raw)
    if status is not None:
        return status
    qty, filled = _dec(o.get("q")), _dec(o.get("z"))
    inferred = (
        OrderStatus.FILLED
        if filled > 0 and filled >= qty
        else OrderStatus.PARTIALLY_FILLED
        if filled > 0
        else OrderStatus.NEW
    )
    log.warning("user stream: order status %s of %s read as %s", raw, o.get("c"), inferred.value)
    return inferred


def parse_order_update(data: dict[str, Any]) -> OrderUpdate:
    """``ORDER_TRADE_UPDATE`` -> ``OrderUpdate`` (the fee is in the commission asset ``N``, usually USDT)."""
    try:
        o = data["o"]
        status = _order_status(o)
        return OrderUpdate(
            symbol=str(o["s"]),
            client_order_id=str(o["c"]),
            order_id=str(o["i"]),
            side=Side(o["S"]),
            order_type=str(o["o"]),
            execution_type=str(o["x"]),
            status=status,
            last_qty=_dec(o.get("l")),
            last_price=_dec(o.get("L")),
            filled_qty=_dec(o.get("z")),
            avg_price=_dec(o.get("ap")),
            fee=_dec(o.get("n")),
            fee_asset=str(o.get("N") or "USDT"),
            realized_pnl=_dec(o.get("rp")),
            reduce_only=bool(o.get("R", False)),
            event_time=int(data["E"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StreamParseError):
            raise
        raise StreamParseError(f"bad ORDER_TRADE_UPDATE: {exc!r}") from exc


def parse_algo_update(data: dict[str, Any]) -> AlgoUpdate:
    try:
        o = data["o"]
        return AlgoUpdate(
            symbol=str(o["s"]),
            client_algo_id=str(o["caid"]),
            algo_id=str(o["aid"]),
            status=AlgoStatus.parse(o["X"]),
            trigger_price=_dec(o.get("tp")),
            event_time=int(data["E"]),
            executed_qty=_dec(o.get("aq")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamParseError(f"bad ALGO_UPDATE: {exc!r}") from exc


_MARGIN_MODE = {"cross": "cross", "crossed": "cross", "isolated": "isolated"}


def parse_account_update(data: dict[str, Any], *, asset: str = "USDT") -> AccountUpdate:
    """``ACCOUNT_UPDATE`` -> wallet balance and balance change (``bc``) of ``asset`` (None if absent) and the
    one-way (``ps=BOTH``) positions.

    The event carries no mark price: ``mark_price`` is 0 in the positions it yields.
    """
    try:
        a = data["a"]
        wallet: Decimal | None = None
        change: Decimal | None = None
        for b in a.get("B") or ():
            if b.get("a") == asset:
                wallet = _dec(b["wb"])
                change = _dec(b["bc"]) if b.get("bc") not in (None, "") else None
        update_time = int(data.get("T") or data["E"])
        positions = []
        for p in a.get("P") or ():
            side = p.get("ps", "BOTH")
            if side != "BOTH":
                log.warning("user stream: hedge-mode position %s %s ignored (one-way mode expected)", p.get("s"), side)
                continue
            positions.append(
                ExchangePosition(
                    symbol=str(p["s"]),
                    qty=_dec(p["pa"]),
                    entry_price=_dec(p.get("ep")),
                    mark_price=Decimal(0),
                    unrealized_pnl=_dec(p.get("up")),
                    margin_mode=_MARGIN_MODE.get(str(p.get("mt", "")).lower()),
                    update_time=update_time,
                )
            )
        return AccountUpdate(
            wallet_balance=wallet,
            positions=tuple(positions),
            reason=str(a.get("m", "")),
            event_time=int(data["E"]),
            balance_change=change,
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, StreamParseError):
            raise
        raise StreamParseError(f"bad ACCOUNT_UPDATE: {exc!r}") from exc


def parse_account_config_update(data: dict[str, Any]) -> AccountConfigUpdate:
    """``ACCOUNT_CONFIG_UPDATE`` -> the leverage of one symbol (``ac``) or the Multi-Assets mode (``ai.j``)."""
    try:
        ac, ai = data.get("ac"), data.get("ai")
        return AccountConfigUpdate(
            event_time=int(data.get("T") or data["E"]),
            multi_assets=bool(ai["j"]) if isinstance(ai, dict) and "j" in ai else None,
            symbol=str(ac["s"]) if isinstance(ac, dict) and "s" in ac else None,
            leverage=int(ac["l"]) if isinstance(ac, dict) and "l" in ac else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise StreamParseError(f"bad ACCOUNT_CONFIG_UPDATE: {exc!r}") from exc


LISTEN_KEY_EXPIRED = "listenKeyExpired"
# Deleting the listen key at a stop is a courtesy (an unused key expires within the hour): it never waits out a
# rate-limit pause (Retry-After can be minutes), which would hold the whole stop past its budget.
LISTEN_KEY_CLOSE_TIMEOUT_S = 3.0


def parse_user_message(msg: dict[str, Any]) -> UserEvent | str | None:
    """A user-data message -> its event; ``LISTEN_KEY_EXPIRED`` for that notice; None for events we ignore."""
    data = _unwrap(msg)
    kind = data.get("e")
    if kind == "ORDER_TRADE_UPDATE":
        return parse_order_update(data)
    if kind == "ALGO_UPDATE":
        return parse_algo_update(data)
    if kind == "ACCOUNT_UPDATE":
        return parse_account_update(data)
    if kind == "ACCOUNT_CONFIG_UPDATE":
        return parse_account_config_update(data)
    if kind == LISTEN_KEY_EXPIRED:
        return LISTEN_KEY_EXPIRED
    log.debug("user stream: ignoring %s", kind)
    return None


# ------------------------------------------------------------------ delivery
class _Closed:
    pass


_CLOSED = _Closed()


class EventBuffer(Generic[E]):
    """One consumer's queue: reliable events in order, price events coalesced per key while pending.

    ``put_*`` never block. The reliable queue is bounded only as a last resort (``hard_limit``):
    beyond it the oldest event is dropped with an error log, since a consumer that far behind is broken.
    """

    def __init__(self, *, warn_at: int = 10_000, hard_limit: int = 1_000_000) -> None:
        self._reliable: deque[E] = deque()
        self._prices: dict[tuple[str, str], E] = {}
        self._wakeup = asyncio.Event()
        self._closed = False
        self._warn_at = warn_at
        self._hard_limit = hard_limit
        self.coalesced = 0  # price events replaced by a newer one before delivery
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._reliable) + len(self._prices)

    def put_reliable(self, event: E) -> None:
        q = self._reliable
        q.append(event)
        n = len(q)
        if n >= self._warn_at and n & (n - 1) == 0:  # powers of two: loud but not a log storm
            log.error("stream consumer lags: %d undelivered klines/status events queued", n)
        if n > self._hard_limit:
            q.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("stream consumer hopelessly behind: dropped %d oldest events", self.dropped)
        self._wakeup.set()

    def put_price(self, key: tuple[str, str], event: E) -> None:
        if key in self._prices:
            self.coalesced += 1
        self._prices[key] = event
        self._wakeup.set()

    def close(self) -> None:
        self._closed = True
        self._wakeup.set()

    def get_nowait(self) -> E | None:
        if self._reliable:
            return self._reliable.popleft()
        if self._prices:
            key = next(iter(self._prices))
            return self._prices.pop(key)
        return None

    async def get(self) -> E | _Closed:
        while True:
            event = self.get_nowait()
            if event is not None:
                return event
            if self._closed:
                return _CLOSED
            self._wakeup.clear()
            await self._wakeup.wait()


class EventStream(Generic[E]):
    """The async iterator ``events()`` returns; ``aclose()`` unsubscribes it."""

    def __init__(self, buffer: EventBuffer[E], on_close: Callable[[EventBuffer[E]], None]) -> None:
        self.buffer = buffer
        self._on_close = on_close

    def __aiter__(self) -> EventStream[E]:
        return self

    async def __anext__(self) -> E:
        event = await self.buffer.get()
        if isinstance(event, _Closed):
            raise StopAsyncIteration
        return event

    async def aclose(self) -> None:
        self.buffer.close()
        self._on_close(self.buffer)


class _Fanout(Generic[E]):
    def __init__(self) -> None:
        self.buffers: list[EventBuffer[E]] = []

    def subscribe(self) -> EventStream[E]:
        buf: EventBuffer[E] = EventBuffer()
        self.buffers.append(buf)
        return EventStream(buf, self._remove)

    def _remove(self, buf: EventBuffer[E]) -> None:
        with contextlib.suppress(ValueError):
            self.buffers.remove(buf)

    def reliable(self, event: E) -> None:
        for b in self.buffers:
            b.put_reliable(event)

    def price(self, key: tuple[str, str], event: E) -> None:
        for b in self.buffers:
            b.put_price(key, event)

    def close(self) -> None:
        for b in self.buffers:
            b.close()


# ------------------------------------------------------------------ reconnection policy
def reconnect_policy(initial_s: float, maximum_s: float) -> Backoff:
    """``initial_s`` doubling to ``maximum_s``, each delay spread by 0.5-1.5x (never above ``maximum_s``)."""
    return Backoff(initial_s, factor=2.0, cap_s=maximum_s, jitter=(0.5, 1.5))


class _Reconnecting:
    """One socket kept open: connect, serve until it ends, back off, connect again.

    The loop of both streams (each market connection, the user-data stream). A subclass says how to
    connect (``_open``), what to do with the socket (``_serve``, which returns why it ended) and what to set
    up and tear down around it (``_on_up``, ``_on_down``); ``_status`` reports each change.
    """

    def __init__(self, clock: Clock, policy: Backoff, stable_after_s: float) -> None:
        self.clock: Clock = clock
        self.backoff = Attempts(policy)
        self.stable_after_s = stable_after_s
        self.closing = False
        self.up = False
        self.connected_at: float | None = None  # monotonic
        self.reconnects = 0

    async def _wanted(self) -> bool:
        """False after waiting for something to carry (then the loop looks again)."""
        return True

    async def _open(self) -> ClientConnection:
        raise NotImplementedError

    async def _serve(self, ws: ClientConnection) -> str:
        raise NotImplementedError

    def _on_up(self, ws: ClientConnection) -> None:
        pass

    def _on_down(self) -> None:
        pass

    def _status(self, up: bool, detail: str) -> None:
        pass

    async def _run(self) -> None:
        clock = self.clock
        while not self.closing:
            if not await self._wanted():
                continue
            try:
                ws = await self._open()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._status(False, f"cannot connect: {type(exc).__name__}: {exc}")
                await clock.sleep(self.backoff.next_delay())
                continue
            connected_at = self.connected_at = clock.monotonic()
            self.up = True
            self._on_up(ws)
            reason = "closed"
            try:
                reason = await self._serve(ws)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self.up = False
                self._on_down()
                with contextlib.suppress(Exception):
                    await asyncio.shield(ws.close())
            if self.closing:
                return
            self.reconnects += 1
            self._status(False, reason)
            if clock.monotonic() - connected_at >= self.stable_after_s:
                self.backoff.reset()  # a stable connection: the next failure starts from the first delay
            await clock.sleep(self.backoff.next_delay())


async def _connect(url: str, open_timeout: float) -> ClientConnection:
    # proxy=None: websockets would otherwise honour proxy variables from the environment.
    return await connect(
        url,
        proxy=None,
        open_timeout=open_timeout,
        ping_interval=20,
        ping_timeout=20,
        close_timeout=2,
        compression=None,
        max_size=1 << 20,
        user_agent_header=None,
    )


class SubscriptionError(RuntimeError):
    pass


# ------------------------------------------------------------------ market data
def kline_stream(symbol: str) -> str:
    return f"{symbol.lower()}@kline_1m"


def price_streams(symbol: str) -> tuple[str, str]:
    s = symbol.lower()
    return f"{s}@aggTrade", f"{s}@markPrice@1s"


_TICKING = ("@kline_", "@markPrice")  # streams that send something every second or faster


class _MarketConnection(_Reconnecting):
    """One socket carrying up to ``max_streams`` streams; reconnects and resubscribes by itself."""

    def __init__(self, owner: BinanceMarketStream, name: str, desired: set[str], *, quiet_start: bool = False) -> None:
        policy = reconnect_policy(owner.backoff_initial_s, owner.backoff_max_s)
        super().__init__(owner.clock, policy, owner.stable_after_s)
        self.owner = owner
        self.name = name
        self.desired = desired  # shared with a successor during a rotation
        self.subscribed: set[str] = set()
        self._opening: list[str] = []  # the streams named in the URL being opened
        self.changed = asyncio.Event()
        self.ws: ClientConnection | None = None
        self.last_message: float | None = None
        self.first_message = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self.rotating = False
        self.successor: _MarketConnection | None = None
        self._reported_up: bool | None = True if quiet_start else None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._last_send = float("-inf")

    # ---- life cycle
    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"ws {self.name}")

    def notify(self) -> None:
        self.changed.set()
        if self.successor is not None:
            self.successor.changed.set()

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.task

    def should_tick(self) -> bool:
        return any(t in s for s in self.subscribed for t in _TICKING)

    def _status(self, up: bool, detail: str) -> None:
        if self._reported_up is up:
            return
        self._reported_up = up
        (log.info if up else log.warning)("market stream %s %s: %s", self.name, "up" if up else "down", detail)
        self.owner._fanout.reliable(StreamStatus(self.name, up, detail, self.owner.clock.now_ms()))

    def _url(self) -> tuple[str, list[str]]:
        """The combined-stream URL with as many streams as keep it short; the rest is SUBSCRIBEd after."""
        base = f"{self.owner.base_ws_url}/market/stream?streams="
        streams: list[str] = []
        length = len(base)
        for s in sorted(self.desired):
            if length + len(s) + 1 > self.owner.max_url_length and streams:
                break
            streams.append(s)
            length += len(s) + 1
        return base + "/".join(streams), streams

    async def _wanted(self) -> bool:
        if self.desired:
            return True
        self.changed.clear()
        await self.changed.wait()
        return False

    async def _open(self) -> ClientConnection:
        url, self._opening = self._url()
        return await _connect(url, self.owner.open_timeout_s)

    def _on_up(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.subscribed = set(self._opening)
        self.last_message = self.connected_at
        self._status(True, f"connected with {len(self.desired)} streams")

    def _on_down(self) -> None:
        self.ws = None
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(SubscriptionError("connection closed"))
        self._pending.clear()

    async def _serve(self, ws: ClientConnection) -> str:
        tasks = [
            asyncio.create_task(self._read(ws)),
            asyncio.create_task(self._sync(ws)),
            asyncio.create_task(self._watch()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _read(self, ws: ClientConnection) -> str:
        clock = self.owner.clock
        on_raw = self.owner._on_raw
        try:
            async for raw in ws:
                self.last_message = clock.monotonic()
                if not self.first_message.is_set():
                    self.first_message.set()
                on_raw(raw, self)
        except ConnectionClosed as exc:
            return f"connection closed ({exc})"
        return "connection closed by the server"

    async def _watch(self) -> str:
        clock = self.owner.clock
        limit = self.owner.silence_timeout_s
        step = min(1.0, limit / 4)
        while True:
            await clock.sleep(step)
            if self.should_tick() and self.last_message is not None and clock.monotonic() - self.last_message > limit:
                return f"silent for more than {limit:g}s"

    async def _sync(self, ws: ClientConnection) -> str:
        """Bring the server's subscriptions to ``desired``: batched, throttled, every reply checked."""
        batch = self.owner.subscribe_batch
        while True:
            remove = sorted(self.subscribed - self.desired)
            add = sorted(self.desired - self.subscribed)
            if not remove and not add:
                self.changed.clear()
                await self.changed.wait()
                continue
            if remove:
                part = remove[:batch]
                await self._request(ws, "UNSUBSCRIBE", part)
                self.subscribed.difference_update(part)
            else:
                part = add[:batch]
                await self._request(ws, "SUBSCRIBE", part)
                self.subscribed.update(part)

    async def _request(self, ws: ClientConnection, method: str, params: list[str]) -> None:
        clock = self.owner.clock
        wait = self._last_send + self.owner.min_send_interval_s - clock.monotonic()
        if wait > 0:
            await clock.sleep(wait)
        request_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = fut
        self._last_send = clock.monotonic()
        await ws.send(orjson.dumps({"method": method, "params": params, "id": request_id}).decode())
        try:
            async with asyncio.timeout(self.owner.reply_timeout_s):
                reply = await fut
        except TimeoutError:
            raise SubscriptionError(
                f"no reply to {method} #{request_id} within {self.owner.reply_timeout_s:g}s"
            ) from None
        finally:
            self._pending.pop(request_id, None)
        if reply.get("error") is not None:
            raise SubscriptionError(f"{method} #{request_id} refused: {reply['error']}")

    def on_reply(self, msg: dict[str, Any]) -> None:
        request_id = msg.get("id")
        fut = self._pending.get(request_id) if isinstance(request_id, int) else None
        if fut is not None and not fut.done():
            fut.set_result(msg)
        elif msg.get("error") is not None:
            log.error("market stream %s: error %s", self.name, msg["error"])


class BinanceMarketStream:
    """``MarketStream``: 1m klines of every symbol, aggTrade and markPrice@1s of held symbols.

    Events: closed klines -> ``KlineEvent`` (never dropped); in-progress klines and aggTrades of held
    symbols -> ``PriceEvent(kind="last")``; markPrice -> ``PriceEvent(kind="mark")``; connection changes
    -> ``StreamStatus`` (one per connection, named ``market:N``).
    """

    def __init__(
        self,
        base_ws_url: str,
        *,
        clock: Clock | None = None,
        max_streams_per_conn: int = 200,
        silence_timeout_s: float = 10.0,
        rotate_after_s: float = 23 * 3600.0,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        stable_after_s: float = 60.0,
        max_messages_per_s: float = 5.0,
        subscribe_batch: int = 50,
        reply_timeout_s: float = 10.0,
        open_timeout_s: float = 10.0,
        max_url_length: int = 4000,
    ) -> None:
        if not base_ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"base_ws_url must start with ws:// or wss://, got {base_ws_url!r}")
        if not 1 <= max_streams_per_conn <= 200:
            raise ValueError(
                f"max_streams_per_conn must be within 1..200 (Binance's limit), got {max_streams_per_conn}"
            )
        if not 0 < max_messages_per_s < 10:
            raise ValueError(f"max_messages_per_s must be below Binance's 10 per second, got {max_messages_per_s}")
        self.base_ws_url = base_ws_url.rstrip("/")
        self.clock: Clock = clock or SystemClock()
        self.max_streams_per_conn = max_streams_per_conn
        self.silence_timeout_s = silence_timeout_s
        self.rotate_after_s = rotate_after_s
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.stable_after_s = stable_after_s
        self.min_send_interval_s = 1.0 / max_messages_per_s
        self.subscribe_batch = subscribe_batch
        self.reply_timeout_s = reply_timeout_s
        self.open_timeout_s = open_timeout_s
        self.max_url_length = max_url_length
        self._fanout: _Fanout[MarketEvent] = _Fanout()
        self._conns: list[_MarketConnection] = []
        self._names = itertools.count()
        self._held: frozenset[str] = frozenset()  # upper-case symbols whose prices we forward
        self._held_lower: frozenset[str] = frozenset()
        self._supervisor: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._closed = False
        self.parse_errors = 0
        self.messages = 0

    # ---- public API
    def events(self) -> EventStream[MarketEvent]:
        """A new consumer; every consumer gets every event (buffers are per consumer)."""
        return self._fanout.subscribe()

    async def set_symbols(self, kline_symbols: Sequence[str], price_symbols: Sequence[str]) -> None:
        """Subscribe ``<sym>@kline_1m`` for every symbol (held ones included) and aggTrade + markPrice@1s for
        ``price_symbols``; changes go out as live SUBSCRIBE/UNSUBSCRIBE messages."""
        if self._closed:
            raise RuntimeError("market stream is closed")
        held = frozenset(s.upper() for s in price_symbols)
        desired: set[str] = {kline_stream(s) for s in (*kline_symbols, *price_symbols)}
        for s in held:
            desired.update(price_streams(s))
        self._held, self._held_lower = held, frozenset(s.lower() for s in held)
        self._assign(desired)
        if self._supervisor is None:
            self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="ws market supervisor")

    def subscriptions(self) -> list[set[str]]:
        """The streams each connection should carry (for /health and tests)."""
        return [set(c.desired) for c in self._conns]

    def connections(self) -> int:
        return len(self._conns)

    def last_message_age(self) -> float | None:
        """Seconds since the stalest connection last received anything (None before the first message)."""
        ages = [self.clock.monotonic() - c.last_message for c in self._conns if c.last_message is not None]
        return max(ages) if ages else None

    async def close(self) -> None:
        self._closed = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        conns = [*self._conns, *(c.successor for c in self._conns if c.successor is not None)]
        self._conns.clear()
        await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        self._fanout.close()

    # ---- stream assignment
    def _assign(self, desired: set[str]) -> None:
        changed: set[int] = set()
        assigned: set[str] = set()
        for i, conn in enumerate(self._conns):
            stale = conn.desired - desired
            if stale:
                conn.desired.difference_update(stale)
                changed.add(i)
            assigned |= conn.desired
        fresh = sorted(desired - assigned)
        for i, conn in enumerate(self._conns):
            room = self.max_streams_per_conn - len(conn.desired)
            if fresh and room > 0:
                conn.desired.update(fresh[:room])
                fresh = fresh[room:]
                changed.add(i)
        for i in changed:
            self._conns[i].notify()
        while fresh:
            conn = _MarketConnection(self, f"market:{next(self._names)}", set(fresh[: self.max_streams_per_conn]))
            fresh = fresh[self.max_streams_per_conn :]
            self._conns.append(conn)
            conn.start()
        for conn in [c for c in self._conns if not c.desired]:
            self._conns.remove(conn)
            self._spawn(conn.close())

    async def _supervise(self) -> None:
        """Rotates connections before Binance's 24 h cut-off: the new socket first, then the old one closes."""
        while True:
            await self.clock.sleep(min(5.0, max(0.05, self.rotate_after_s / 10)))
            now = self.clock.monotonic()
            for conn in list(self._conns):
                started = conn.connected_at
                if conn.up and not conn.rotating and started is not None and now - started >= self.rotate_after_s:
                    conn.rotating = True
                    self._spawn(self._rotate(conn))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)  # keep a reference until done
        task.add_done_callback(self._background.discard)

    async def _rotate(self, old: _MarketConnection) -> None:
        new = _MarketConnection(self, old.name, old.desired, quiet_start=True)
        old.successor = new
        new.start()
        try:
            async with asyncio.timeout(max(30.0, self.open_timeout_s * 2)):
                await new.first_message.wait()
        except TimeoutError:
            log.warning("market stream %s: rotation failed (new socket silent), keeping the old one", old.name)
            old.successor = None
            await new.close()
            old.connected_at = self.clock.monotonic() - self.rotate_after_s + 60.0  # try again in a minute
            old.rotating = False
            return
        if old in self._conns and not self._closed:
            self._conns[self._conns.index(old)] = new
            log.info("market stream %s rotated to a fresh connection", old.name)
            old.successor = None
            await old.close()
        else:
            await new.close()

    # ---- dispatch (runs in the reader: no awaiting, no blocking)
    def _on_raw(self, raw: str | bytes, conn: _MarketConnection) -> None:
        self.messages += 1
        if isinstance(raw, bytes):
            raw = raw.decode()
        if '"x":false' in raw or '"x": false' in raw:
            # An in-progress kline: only held symbols need it (as a last price). Skip the rest unparsed.
            held = self._held_lower
            if not held:
                return
            i = raw.find('"stream":"')
            if i >= 0:
                j = raw.find("@", i + 10)
                if j > 0 and raw[i + 10 : j] not in held:
                    return
        try:
            msg = orjson.loads(raw)
        except orjson.JSONDecodeError:
            self.parse_errors += 1
            log.error("market stream %s: not JSON: %.200s", conn.name, raw)
            return
        if not isinstance(msg, dict):
            return
        if "id" in msg and ("result" in msg or "error" in msg):
            conn.on_reply(msg)
            return
        data = _unwrap(msg)
        kind = data.get("e")
        try:
            if kind == "kline":
                ev = parse_kline_event(data)
                if ev.kline.closed:
                    self._fanout.reliable(ev)
                elif ev.symbol in self._held:
                    price = str(data["k"]["c"])
                    self._fanout.price((ev.symbol, "last"), PriceEvent(ev.symbol, price, ev.event_time, "last"))
            elif kind == "aggTrade":
                sym = str(data["s"])
                if sym in self._held:
                    self._fanout.price((sym, "last"), PriceEvent(sym, str(data["p"]), int(data["E"]), "last"))
            elif kind == "markPriceUpdate":
                sym = str(data["s"])
                if sym in self._held:
                    self._fanout.price((sym, "mark"), PriceEvent(sym, str(data["p"]), int(data["E"]), "mark"))
            elif "error" in msg:
                log.error("market stream %s: %s", conn.name, msg["error"])
            else:
                log.debug("market stream %s: ignoring %s", conn.name, kind)
        except (StreamParseError, KeyError, TypeError, ValueError) as exc:
            self.parse_errors += 1
            log.error("market stream %s: bad %s message (%s): %.200s", conn.name, kind, exc, raw)


# ------------------------------------------------------------------ user data
class BinanceUserStream(_Reconnecting):
    """``UserStream``: ORDER_TRADE_UPDATE, ALGO_UPDATE and ACCOUNT_UPDATE events of the account.

    Creates a listen key, connects to ``{base}/private/ws?listenKey=K``, keeps the key alive every
    ``keepalive_s`` and starts over with a new key on ``listenKeyExpired`` or a failed keepalive. The
    connection starts with the first ``events()`` call (or ``start()``).
    """

    name = "user"

    def __init__(
        self,
        base_ws_url: str,
        listen_keys: ListenKeyAPI,
        *,
        keepalive_s: float = 1800.0,
        clock: Clock | None = None,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 60.0,
        stable_after_s: float = 60.0,
        open_timeout_s: float = 10.0,
    ) -> None:
        if not base_ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"base_ws_url must start with ws:// or wss://, got {base_ws_url!r}")
        super().__init__(clock or SystemClock(), reconnect_policy(backoff_initial_s, backoff_max_s), stable_after_s)
        self.base_ws_url = base_ws_url.rstrip("/")
        self.listen_keys = listen_keys
        self.keepalive_s = keepalive_s
        self.open_timeout_s = open_timeout_s
        self._fanout: _Fanout[UserEvent] = _Fanout()
        self._task: asyncio.Task[None] | None = None
        self._ws: ClientConnection | None = None
        self._reported_up: bool | None = None
        self.listen_key: str | None = None
        self.last_message: float | None = None
        self.connected = asyncio.Event()  # set while connected (tests, health)
        self.keys_created = 0
        self.parse_errors = 0

    def events(self) -> EventStream[UserEvent]:
        stream = self._fanout.subscribe()
        self.start()
        return stream

    def start(self) -> None:
        if self._task is None and not self.closing:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="ws user")

    def last_message_age(self) -> float | None:
        return None if self.last_message is None else self.clock.monotonic() - self.last_message

    async def close(self) -> None:
        self.closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        if self.listen_key is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.listen_keys.close_listen_key(self.listen_key), LISTEN_KEY_CLOSE_TIMEOUT_S)
        self._fanout.close()

    def _status(self, up: bool, detail: str) -> None:
        if self._reported_up is up:
            return
        self._reported_up = up
        (log.info if up else log.warning)("user stream %s: %s", "up" if up else "down", detail)
        self._fanout.reliable(StreamStatus(self.name, up, detail, self.clock.now_ms()))

    async def _open(self) -> ClientConnection:
        key = await self.listen_keys.create_listen_key()
        self.keys_created += 1
        self.listen_key = key
        return await _connect(f"{self.base_ws_url}/private/ws?listenKey={key}", self.open_timeout_s)

    def _on_up(self, ws: ClientConnection) -> None:
        self._ws = ws
        self.connected.set()
        self._status(True, "connected")

    def _on_down(self) -> None:
        self.connected.clear()
        self._ws = None

    async def _serve(self, ws: ClientConnection) -> str:
        assert self.listen_key is not None  # set by _open
        tasks = [asyncio.create_task(self._read(ws)), asyncio.create_task(self._keepalive(self.listen_key))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return next(iter(done)).result()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _keepalive(self, key: str) -> str:
        while True:
            await self.clock.sleep(self.keepalive_s)
            try:
                await self.listen_keys.keepalive_listen_key(key)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                return f"listen key keepalive failed ({type(exc).__name__}: {exc}); recreating it"

    async def _read(self, ws: ClientConnection) -> str:
        try:
            async for raw in ws:
                self.last_message = self.clock.monotonic()
                if self._on_raw(raw) == LISTEN_KEY_EXPIRED:
                    return "listen key expired; recreating it"
        except ConnectionClosed as exc:
            return f"connection closed ({exc})"
        return "connection closed by the server"

    def _on_raw(self, raw: str | bytes) -> str | None:
        try:
            msg = orjson.loads(raw)
            if not isinstance(msg, dict):
                return None
            if "id" in msg and ("result" in msg or "error" in msg):
                return None  # a reply to a request we did not make (e.g. server-side LIST_SUBSCRIPTIONS)
            event = parse_user_message(msg)
        except (orjson.JSONDecodeError, StreamParseError) as exc:
            self.parse_errors += 1
            log.error("user stream: unusable message (%s): %.300s", exc, raw)
            return None
        if event == LISTEN_KEY_EXPIRED:
            return LISTEN_KEY_EXPIRED
        if event is not None and not isinstance(event, str):
            self._fanout.reliable(event)  # fills and balances are never coalesced
        return None
