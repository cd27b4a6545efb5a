"""Push alerts: engine events -> a bounded queue -> a sender task -> Telegram or the log.

``AlertNotifier.publish`` is what the engine calls (``trading.events.Notifier``):
synchronous, O(1)-ish, never raises, never touches the network, so trading
never waits for Telegram. A sender task delivers queued alerts to every
destination of a sink:

* Trade alerts (entries, DCA fills, partial sells, closes, adopted and
  vanished positions) are never coalesced and are the last to be dropped.
* Errors, stream flaps and order problems are coalesced per (kind,
  where/symbol): at most one alert per window (60 s); the ones held back are
  counted and summarised ("...and 12 more like this in the last minute").
* Telegram's 429 ``retry_after`` is honoured (sleep, resend the same
  message); while Telegram is unreachable the sender retries with backoff
  and the queue stays bounded: when full, the oldest non-trade alert goes
  first, every drop is counted and reported once sending resumes.
* Trade alerts carry buttons (📈 Chart; 🚫 Block under an entry) and, with
  ``alert_charts``, the position's chart as a photo: drawn while the alert
  waits at most ``ALERT_CHART_TIMEOUT_S``, else the alert goes as text.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
import re
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot import presenters
from bot.formatting import TELEGRAM_CAPTION_LIMIT, TELEGRAM_TEXT_LIMIT, truncate
from trading.clock import Clock, SystemClock
from trading.core.backoff import Backoff
from trading.core.chart import ChartLabels
from trading.events import (
    AdoptionAsked,
    DcaFilled,
    DelistingAhead,
    EngineEvent,
    EntryFilled,
    ErrorEvent,
    OrderRefused,
    OrderSkipped,
    PartialExit,
    PositionAdopted,
    PositionClosed,
    PositionVanished,
    QuantityDrift,
    StreamDown,
    StreamUp,
)
from trading.retry import retry

if TYPE_CHECKING:  # aiogram is imported only by the Telegram sink (a headless service never loads it)
    from aiogram import Bot
    from aiogram.utils.i18n import I18n

log = logging.getLogger(__name__)

TRADE_EVENTS: tuple[type[EngineEvent], ...] = (
    EntryFilled,
    DcaFilled,
    PartialExit,
    PositionClosed,
    PositionAdopted,
    PositionVanished,
    DelistingAhead,
    AdoptionAsked,  # carries Adopt / Ignore instead of the chart button
)


CHART_EVENTS: tuple[type[EngineEvent], ...] = (EntryFilled, DcaFilled, PositionClosed)  # with ``alert_charts``
ALERT_CHART_TIMEOUT_S = 3.0  # the longest an alert waits for its chart: then it goes as text
COMPOSE_TIMEOUT_S = 5.0  # the longest an alert waits for all its attachments (a safety net over the above)

# symbol, position id, label sets -> the PNG, or None (disabled, too slow, failed)
ChartSource = Callable[[str, int, Sequence[ChartLabels]], Awaitable[bytes | None]]


def is_trade(event: EngineEvent) -> bool:
    return isinstance(event, TRADE_EVENTS)


def coalesce_key(event: EngineEvent) -> tuple[str, str] | None:
    """Events that may storm share a key; ``None`` = always delivered on its own."""
    if isinstance(event, ErrorEvent):
        return ("error", f"{event.where}|{event.symbol or ''}")
    if isinstance(event, StreamDown | StreamUp):
        return ("stream", event.name)  # down and up of one stream: one flapping storm
    if isinstance(event, OrderRefused):
        return (event.kind, f"{event.symbol or ''}|{event.what}|{event.code}")  # one per position, rule and code
    if isinstance(event, OrderSkipped | QuantityDrift):
        return (event.kind, event.symbol or "")
    return None


@dataclass(slots=True)
class Alert:
    """One message to deliver: an event (possibly summarising ``more`` held-back ones) or a drop notice."""

    event: EngineEvent | None
    trade: bool = False
    more: int = 0
    dropped: int = 0
    dropped_trades: int = 0


@dataclass(slots=True)
class AlertMessage:
    """What a sink sends: the text, and for Telegram buttons and a chart."""

    text: str
    markup: Any = None  # aiogram InlineKeyboardMarkup
    photo: bytes | None = None


# ------------------------------------------------------------------ sinks
class SinkRetryAfter(Exception):
    """The destination asks us to wait (Telegram 429)."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class SinkUnavailable(Exception):
    """The destination cannot be reached now; try again later."""


class AlertSink(Protocol):
    @property
    def destinations(self) -> Sequence[int | None]: ...

    def render(self, alert: Alert) -> str: ...

    async def compose(self, alert: Alert, text: str) -> AlertMessage:
        """The message to send (buttons, a chart); may take a while: the notifier bounds it."""
        ...

    async def send(self, destination: int | None, message: AlertMessage) -> None:
        """Deliver once. Raise SinkRetryAfter / SinkUnavailable to be retried; anything else is final."""
        ...


class ConsoleSink:
    """Headless mode: one readable English line per alert in the log."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self._log = logger or logging.getLogger("surgedca.alerts")

    @property
    def destinations(self) -> Sequence[int | None]:
        return (None,)

    def render(self, alert: Alert) -> str:
        if alert.event is None:
            return presenters.dropped_line(alert.dropped, alert.dropped_trades)
        return presenters.alert_line(alert.event, alert.more)

    async def compose(self, alert: Alert, text: str) -> AlertMessage:
        return AlertMessage(text)

    async def send(self, destination: int | None, message: AlertMessage) -> None:
        text = message.text
        alarming = text.startswith(
            ("ERROR", "STOP LOSS", "BACKSTOP", "STREAM DOWN", "ORDER", "VANISHED", "DROPPED", "TELEGRAM",
             "LIQUIDATED", "DELISTING", "NOT OPENED", "NO NEW ENTRIES", "ACCOUNT")
        )  # fmt: skip
        self._log.log(logging.WARNING if alarming else logging.INFO, "%s", text)


_TAG = re.compile(r"<[^>]+>")


class TelegramSink:
    """Alerts as HTML messages to every allowed chat, in the service's default locale."""

    def __init__(
        self,
        bot: Bot,
        chat_ids: Sequence[int],
        *,
        i18n: I18n,
        locale: str,
        chart_source: ChartSource | None = None,
        chart_timeout_s: float = ALERT_CHART_TIMEOUT_S,
    ) -> None:
        self._bot = bot
        self._chat_ids = tuple(chat_ids)
        self._i18n = i18n
        self._locale = locale
        self.chart_source = chart_source  # set by the service once its API exists
        self.chart_timeout_s = chart_timeout_s
        self.moved: dict[int, int] = {}  # a group that became a supergroup -> its new id (alerts follow it)

    @property
    def destinations(self) -> Sequence[int | None]:
        return self._chat_ids

    def render(self, alert: Alert) -> str:
        with self._i18n.context(), self._i18n.use_locale(self._locale):
            if alert.event is None:
                text = presenters.dropped_text(alert.dropped, alert.dropped_trades)
            elif alert.more:
                text = presenters.coalesced_text(alert.event, alert.more)
            else:
                text = presenters.alert_text(alert.event)
        if len(text) > TELEGRAM_TEXT_LIMIT:  # cannot happen with the presenters' cuts; keep the invariant anyway
            text = html.escape(truncate(html.unescape(_TAG.sub("", text)), TELEGRAM_TEXT_LIMIT // 2))
        return text

    async def compose(self, alert: Alert, text: str) -> AlertMessage:
        """Buttons under a trade alert; its chart for an entry, a DCA or a close when the source gives one."""
        from bot.keyboards import adoption_keyboard, alert_keyboard

        e = alert.event
        if e is None or alert.more or not is_trade(e) or e.symbol is None:
            return AlertMessage(text)
        if isinstance(e, AdoptionAsked):
            with self._i18n.context(), self._i18n.use_locale(self._locale):
                return AlertMessage(text, adoption_keyboard(e.token))
        position_id = int(getattr(e, "position_id", 0) or 0)
        with self._i18n.context(), self._i18n.use_locale(self._locale):
            markup = alert_keyboard(e.symbol, position_id=position_id, entry=isinstance(e, EntryFilled))
            labels = presenters.chart_labels()
        photo = None
        if self.chart_source is not None and isinstance(e, CHART_EVENTS) and len(text) <= TELEGRAM_CAPTION_LIMIT:
            try:
                async with asyncio.timeout(self.chart_timeout_s):
                    photo = await self.chart_source(e.symbol, position_id, (labels, ChartLabels()))
            except TimeoutError:
                log.warning(
                    "no chart for the %s alert of %s within %.1f s: sent as text",
                    e.kind,
                    e.symbol,
                    self.chart_timeout_s,
                )
            except Exception:  # the alert matters more than its picture
                log.exception("chart for the %s alert failed; sending text", e.kind)
        return AlertMessage(text, markup, photo)

    async def send(self, destination: int | None, message: AlertMessage) -> None:
        from aiogram.exceptions import (
            TelegramBadRequest,
            TelegramMigrateToChat,
            TelegramNetworkError,
            TelegramRetryAfter,
            TelegramServerError,
        )
        from aiogram.types import BufferedInputFile

        if destination is None:
            return
        destination = self.moved.get(destination, destination)
        text, markup = message.text, message.markup
        try:
            if message.photo is not None:
                try:
                    photo = BufferedInputFile(message.photo, filename="chart.png")
                    await self._bot.send_photo(chat_id=destination, photo=photo, caption=text, reply_markup=markup)
                    return
                except TelegramBadRequest as exc:  # the picture refused: the alert goes as text
                    log.error("alert chart refused (%s); sending the text alone", exc.message)
            await self._bot.send_message(chat_id=destination, text=text, reply_markup=markup)
        except TelegramMigrateToChat as exc:
            # The group became a supergroup: the same people, a new id. Alerts follow it (a stop-loss alert must
            # not be lost); commands from it stay ignored until the operator lists the new id.
            new = exc.migrate_to_chat_id
            log.error(
                "alerts: chat %s became the supergroup %s; put %s in TELEGRAM_ALLOWED_CHAT_IDS in place of %s. "
                "Alerts go to %s meanwhile.",
                destination,
                new,
                new,
                destination,
                new,
            )
            self.moved[destination] = new
            await self.send(destination, message)
        except TelegramRetryAfter as exc:
            raise SinkRetryAfter(float(exc.retry_after)) from exc
        except (TelegramNetworkError, TelegramServerError) as exc:
            raise SinkUnavailable(str(exc)) from exc
        except TelegramBadRequest as exc:
            if "can't parse entities" not in exc.message:
                raise
            # A markup bug must not cost us the alert: send it as plain text.
            log.error("alert markup rejected (%s); sending it as plain text", exc.message)
            plain = html.unescape(_TAG.sub("", text))
            await self._bot.send_message(chat_id=destination, text=plain, parse_mode=None, reply_markup=markup)


# ------------------------------------------------------------------ the notifier
@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0
    last: EngineEvent | None = None


class AlertNotifier:
    """``trading.events.Notifier`` delivering through an :class:`AlertSink`."""

    def __init__(
        self,
        sink: AlertSink,
        *,
        clock: Clock | None = None,
        window_s: float = 60.0,
        max_queue: int = 500,
        min_backoff_s: float = 1.0,
        max_backoff_s: float = 30.0,
        compose_timeout_s: float = COMPOSE_TIMEOUT_S,
    ) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self._sink = sink
        self._clock = clock or SystemClock()
        self._window_s = window_s
        self._max_queue = max_queue
        self._backoff = Backoff(min_backoff_s, factor=2.0, cap_s=max_backoff_s)  # while a destination is down
        self._compose_timeout_s = compose_timeout_s
        self._queue: deque[Alert] = deque()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._wake: asyncio.Event | None = None
        self._idle = asyncio.Event()  # set by the sender when it has nothing left to do
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._busy = False  # an alert is being delivered (popped from the queue)
        self._unreported_dropped = 0
        self._unreported_dropped_trades = 0
        self._drop_logged_at: float | None = None
        # Totals for /health and tests.
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.coalesced = 0

    # ---- engine side
    def publish(self, event: EngineEvent) -> None:
        """Queue an alert. Never blocks, never raises (the engine must not care)."""
        try:
            if self._loop is not None and threading.get_ident() != self._loop_thread:
                self._loop.call_soon_threadsafe(self._accept, event)
            else:
                self._accept(event)
        except Exception:  # a notifier bug must never reach the trading code
            log.exception("alert for %r lost", event)

    def _accept(self, event: EngineEvent) -> None:
        try:
            self.published += 1
            key = coalesce_key(event)
            if key is not None:
                now = self._clock.monotonic()
                window = self._windows.get(key)
                if window is not None and now - window.start < self._window_s:
                    window.suppressed += 1
                    window.last = event
                    self.coalesced += 1
                    self._notify()  # the sender must now watch this window's end
                    return
                self._windows[key] = _Window(start=now)
            self._enqueue(Alert(event, trade=is_trade(event)))
        except Exception:
            log.exception("alert for %r lost", event)

    def _enqueue(self, alert: Alert) -> None:
        if len(self._queue) >= self._max_queue:
            victim_index = next((i for i, a in enumerate(self._queue) if not a.trade), 0)
            victim = self._queue[victim_index]
            del self._queue[victim_index]
            self.dropped += 1
            self._unreported_dropped += 1
            if victim.trade:
                self._unreported_dropped_trades += 1
            now = self._clock.monotonic()
            if self._drop_logged_at is None or now - self._drop_logged_at >= self._window_s:
                # One line per window: the log must not become the next storm.
                self._drop_logged_at = now
                log.warning(
                    "alert queue full (%d): dropping the oldest non-trade alerts (%d so far, latest: %s)",
                    self._max_queue,
                    self.dropped,
                    _describe(victim),
                )
        self._queue.append(alert)
        self._idle.clear()
        self._notify()

    def _notify(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # ---- windows
    def _close_due_windows(self) -> float | None:
        """Queue the summaries of finished windows; return seconds until the next window with held-back alerts ends."""
        now = self._clock.monotonic()
        next_due: float | None = None
        for key, window in list(self._windows.items()):
            end = window.start + self._window_s
            if now >= end:
                if window.suppressed and window.last is not None:
                    self._enqueue(Alert(window.last, trade=False, more=window.suppressed))
                    # The summary is this key's alert for the next window.
                    self._windows[key] = _Window(start=now)
                else:
                    del self._windows[key]
            elif window.suppressed:
                wait = end - now
                next_due = wait if next_due is None else min(next_due, wait)
        return next_due

    def flush_windows(self) -> None:
        """Queue every held-back summary now (used when stopping)."""
        for key, window in list(self._windows.items()):
            if window.suppressed and window.last is not None:
                self._enqueue(Alert(window.last, trade=False, more=window.suppressed))
            del self._windows[key]

    # ---- sender
    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self._busy else 0)

    async def start(self) -> None:
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="alert-sender")

    async def wait_idle(self, grace_s: float) -> bool:
        """Wait until everything queued is delivered (True) or ``grace_s`` passed (False)."""
        if self._task is None:
            return not self.pending
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=grace_s)
        except TimeoutError:
            return False
        return True

    async def stop(self, grace_s: float = 5.0) -> None:
        """Deliver what is queued (held-back summaries included) for up to ``grace_s`` seconds, then stop."""
        if self._task is None:
            return
        self.flush_windows()
        await self.wait_idle(grace_s)
        if self.pending:
            log.warning("stopping with %d alert(s) undelivered", self.pending)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            try:
                wait = self._close_due_windows()
                if not self._queue:
                    self._idle.set()
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), timeout=wait if wait is not None else None)
                    continue
                alert = self._queue.popleft()
                self._busy = True
                try:
                    await self._deliver(alert)
                    if self._unreported_dropped:
                        notice = Alert(
                            None, dropped=self._unreported_dropped, dropped_trades=self._unreported_dropped_trades
                        )
                        self._unreported_dropped = self._unreported_dropped_trades = 0
                        await self._deliver(notice)
                finally:
                    self._busy = False
            except asyncio.CancelledError:
                raise
            except Exception:  # keep the sender alive whatever happens
                log.exception("alert sender error")
                await asyncio.sleep(1.0)

    async def _deliver(self, alert: Alert) -> None:
        try:
            text = self._sink.render(alert)
        except Exception:
            log.exception("cannot render %s; sending the plain line", _describe(alert))
            text = html.escape(ConsoleSink().render(alert))
        message = await self._compose(alert, text)
        for destination in self._sink.destinations:
            await self._deliver_to(destination, message, alert)
        self.delivered += 1

    async def _compose(self, alert: Alert, text: str) -> AlertMessage:
        """Buttons and a chart, within ``compose_timeout_s``: an alert is never held up longer (text alone)."""
        try:
            async with asyncio.timeout(self._compose_timeout_s):
                return await self._sink.compose(alert, text)
        except Exception:  # TimeoutError included
            log.warning("%s: attachments failed or too slow; sending the text alone", _describe(alert), exc_info=True)
            return AlertMessage(text)

    async def _deliver_to(self, destination: int | None, message: AlertMessage, alert: Alert) -> None:
        def told(exc: BaseException, delay: float) -> None:
            if isinstance(exc, SinkRetryAfter):
                log.warning("alert to %s: rate limited, retrying after %.0f s", destination, exc.retry_after)
            else:
                log.warning("alert to %s: destination unavailable (%s); retrying in %.0f s", destination, exc, delay)

        try:
            await retry(
                lambda: self._sink.send(destination, message),
                self._backoff,
                retriable=(SinkRetryAfter, SinkUnavailable),
                asked_wait=lambda exc: exc.retry_after if isinstance(exc, SinkRetryAfter) else None,
                on_retry=told,
            )
        except Exception:
            log.exception("alert to %s failed for good: %s", destination, _describe(alert))


def _describe(alert: Alert) -> str:
    if alert.event is None:
        return f"drop notice ({alert.dropped})"
    return f"{alert.event.kind} {alert.event.symbol or ''}".strip()
