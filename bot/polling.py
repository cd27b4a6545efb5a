"""Polling hygiene: one poller per bot token, no stale commands, groups that moved.

* :class:`ConflictGuard` (on the HTTP session): Telegram answers ``getUpdates`` with 409 Conflict while
  another process polls the same token, and the two then split the updates between them (a paper instance
  could receive the live instance's /exit confirmation). aiogram would retry forever; after
  ``CONFLICT_LIMIT`` conflicts within ``CONFLICT_WINDOW_S`` this guard stops polling, logs why and raises
  an alert through the send path (sending messages still works).
* :class:`StaleUpdates` (outer update middleware, after auth): a command older than ``STALE_AFTER_S`` never
  runs: not at start-up (sent while the service was down), not after Telegram was unreachable. Each chat is
  told how many were ignored. A message carries its date; a button press does not (Telegram gives only the
  date of the message the button belongs to), so a press that was waiting at start-up runs only when its
  message is itself younger than two minutes; presses received while polling always run (confirmations
  expire on their own after 60 s).
* :func:`drain_backlog`: at start-up, the updates that waited while the service was down are fetched
  (``timeout=0``) and passed through the dispatcher marked as backlog, before polling starts.

Group migration (``migrate_to_chat_id``) is reported by ``bot.routers.migration``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Chat, TelegramObject, Update, User

from bot.formatting import truncate
from bot.i18n import N_
from trading.core.backoff import Backoff
from trading.retry import Attempts

log = logging.getLogger(__name__)

STALE_AFTER_S = 120.0  # a command older than this is ignored (and its chat told)
CONFLICT_LIMIT = 3  # 409 Conflicts on getUpdates within CONFLICT_WINDOW_S that stop polling
CONFLICT_WINDOW_S = 300.0
NOTICE_DELAY_S = 1.0  # stale updates come in bursts: one notice per chat per burst
BACKLOG = "backlog_update"  # key in the handler data of updates that waited while the service was down
ALERTS = "publish_alert"  # workflow data: the service's alert publisher (``Notifier.publish``), if any

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]

STALE_NOTICE = N_(
    "⏳ Ignored {n} command(s) older than {minutes} minutes: they were sent while the service could not receive "
    "them. Send again what you still want done."
)
STALE_PRESS = N_("Pressed while the service was not running: ignored. Press again.")


# ------------------------------------------------------------------ stale updates
def stale_reason(update: Update, now_s: float, *, backlog: bool, max_age_s: float = STALE_AFTER_S) -> str | None:
    """Why ``update`` must not run (None: it may). Pure; ``now_s`` is wall-clock time (Telegram's dates are)."""
    message = update.message
    if message is not None:
        if message.migrate_to_chat_id is not None or message.migrate_from_chat_id is not None:
            return None  # news about the chat itself, whatever its age
        age = now_s - message.date.timestamp()
        return f"sent {age:.0f} s ago" if age > max_age_s else None
    query = update.callback_query
    if query is not None and backlog:
        # No date of its own: only its message's date bounds how long ago it was pressed.
        source = query.message
        if source is None or not source.date or now_s - source.date.timestamp() > max_age_s:
            return "button pressed while the service was not running"
    return None


class StaleUpdates(BaseMiddleware):
    """Drops commands older than ``max_age_s`` (see the module docstring), counts them per chat and tells each
    chat once per burst. Register it after the auth middleware: strangers are not told anything."""

    def __init__(
        self,
        *,
        max_age_s: float = STALE_AFTER_S,
        notice_delay_s: float = NOTICE_DELAY_S,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.max_age_s = max_age_s
        self.notice_delay_s = notice_delay_s
        self._now = now
        self._pending: dict[int, int] = {}  # chat id -> ignored since the last notice
        self._flush: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.ignored = 0  # totals, for tests and the log
        self.notices = 0

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        reason = stale_reason(event, self._now(), backlog=bool(data.get(BACKLOG)), max_age_s=self.max_age_s)
        if reason is None:
            return await handler(event, data)
        await self._ignore(event, data, reason)
        return None

    async def _ignore(self, update: Update, data: dict[str, Any], reason: str) -> None:
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("event_from_user")
        what = _describe(update)
        self.ignored += 1
        log.info(
            "ignored %s from chat %s (user %s): %s", what, chat.id if chat else None, user.id if user else None, reason
        )
        service = data.get("service")
        if service is not None:
            try:
                service.audit(
                    actor=f"tg:{user.id}" if user else "tg:unknown",
                    action="stale_update_ignored",
                    after={"chat_id": chat.id if chat else None, "update": what, "why": reason},
                )
            except Exception:  # the audit must not turn an ignored update into a crash
                log.exception("could not audit an ignored update")
        locale = _locale(data, chat)
        if update.callback_query is not None:
            text = _translate(data, locale, STALE_PRESS)
            with contextlib.suppress(TelegramAPIError):  # an old query may be too old to answer
                await update.callback_query.answer(text)
        if chat is None:
            return
        self._pending[chat.id] = self._pending.get(chat.id, 0) + 1
        bot: Bot | None = data.get("bot")
        if bot is not None and self._flush is None:
            loop = asyncio.get_running_loop()
            self._flush = loop.call_later(self.notice_delay_s, self._start_flush, bot, data)

    def _start_flush(self, bot: Bot, data: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self.flush(bot, data))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self, bot: Bot, data: dict[str, Any]) -> None:
        """Tell every chat how many of its commands were ignored since the last notice."""
        self._flush = None
        pending, self._pending = self._pending, {}
        minutes = max(1, round(self.max_age_s / 60))
        for chat_id, n in pending.items():
            text = _translate(data, _locale(data, None, chat_id), STALE_NOTICE).format(n=n, minutes=minutes)
            try:
                await bot.send_message(chat_id, text)
                self.notices += 1
            except TelegramAPIError as exc:
                log.warning("could not tell chat %s about %d ignored command(s): %s", chat_id, n, exc)


def _describe(update: Update) -> str:
    if update.message is not None:
        return repr(truncate(update.message.text or update.message.caption or update.event_type, 60))
    if update.callback_query is not None:
        return f"button {truncate(update.callback_query.data or '', 40)!r}"
    return update.event_type


def _locale(data: dict[str, Any], chat: Chat | None, chat_id: int | None = None) -> str | None:
    resolver = data.get("locales")
    if resolver is None:
        return None
    return resolver.for_chat(chat.id if chat is not None else chat_id)


def _translate(data: dict[str, Any], locale: str | None, message: str) -> str:
    i18n = data.get("i18n")
    return i18n.gettext(message, locale=locale) if i18n is not None else message


# ------------------------------------------------------------------ 409 Conflict
class ConflictGuard(BaseRequestMiddleware):
    """Counts 409 Conflicts on ``getUpdates``; at ``limit`` within ``window_s`` calls ``on_trip`` once and holds
    every later ``getUpdates`` (no request) until polling is stopped, so that no more updates are taken."""

    def __init__(
        self,
        on_trip: Callable[[int, str], None],
        *,
        limit: int = CONFLICT_LIMIT,
        window_s: float = CONFLICT_WINDOW_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._on_trip = on_trip
        self.limit = limit
        self.window_s = window_s
        self._monotonic = monotonic
        self._recent: deque[float] = deque()
        self.conflicts = 0
        self.tripped = False
        self._held = asyncio.Event()  # never set: a held poll waits until polling is stopped (cancelled)

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        polling = isinstance(method, GetUpdates)
        if polling and self.tripped:
            await self._held.wait()
        try:
            return await make_request(bot, method)
        except TelegramConflictError as exc:
            if polling:
                self._record(exc.message)
            raise

    def _record(self, description: str) -> None:
        now = self._monotonic()
        self.conflicts += 1
        recent = self._recent
        recent.append(now)
        while recent and now - recent[0] > self.window_s:
            recent.popleft()
        log.warning("Telegram getUpdates: 409 %s (%d in the last %.0f s)", description, len(recent), self.window_s)
        if len(recent) >= self.limit and not self.tripped:
            self.tripped = True
            self._on_trip(len(recent), description)


# ------------------------------------------------------------------ the backlog at start-up
async def drain_backlog(
    bot: Bot, dp: Dispatcher, *, should_stop: Callable[[], bool], max_delay_s: float = 30.0
) -> list[Update]:
    """Fetch every update that waited while the service was down (``getUpdates`` with ``timeout=0``; each call's
    offset confirms the previous batch, the last empty call confirms them all). Returns them, oldest first; an
    empty list also when ``should_stop`` turned true meanwhile."""
    updates: list[Update] = []
    offset: int | None = None
    allowed = dp.resolve_used_update_types()
    outage = Attempts(Backoff(1.0, factor=2.0, cap_s=max_delay_s))
    while not should_stop():  # looked at before every request: a stop is never held up by an outage
        try:
            batch = await bot.get_updates(offset=offset, timeout=0, limit=100, allowed_updates=allowed)
        except TelegramConflictError:  # counted by the ConflictGuard, which decides when to give up
            await asyncio.sleep(1.0)
            continue
        except TelegramRetryAfter as exc:
            await asyncio.sleep(exc.retry_after)
            continue
        except (TelegramNetworkError, TelegramServerError) as exc:
            delay = outage.next_delay()
            log.warning("Telegram not reachable while reading the waiting updates (%s); retrying in %.0f s", exc, delay)
            await asyncio.sleep(delay)
            continue
        if not batch:
            return updates
        updates.extend(batch)
        offset = batch[-1].update_id + 1
    return []


def feed_backlog(bot: Bot, dp: Dispatcher, updates: list[Update]) -> list[asyncio.Task[None]]:
    """Hand the waiting updates to the dispatcher, marked as backlog, one task each (as aiogram's polling does)."""

    async def feed(update: Update) -> None:
        try:
            await dp.feed_update(bot, update, **{BACKLOG: True})
        except Exception:  # one bad update must not stop the others
            log.exception("waiting update %s failed", update.update_id)

    return [asyncio.create_task(feed(u), name=f"tg-backlog-{u.update_id}") for u in updates]
