"""Update middlewares: who may talk to the bot, and in which language it answers.

* :class:`AuthMiddleware` (outer, on updates): only chats listed in
  ``TELEGRAM_ALLOWED_CHAT_IDS`` reach a handler. Anything else (messages,
  button presses) gets no reply at all and leaves an ``unauthorized`` audit row.
* :class:`ChatLocaleMiddleware`: the language chosen with ``/lang``
  (persisted by the service), else the service's default ``LOCALE``.
* :class:`RetryAfterMiddleware` (on the HTTP session): Telegram's 429
  ``retry_after`` is honoured for every request the bot makes.
* :class:`UpdatesInFlight` (outermost, on updates): which updates are being
  handled, so that stopping the bot lets a confirmed ``/exit`` finish (and
  report its fill) before the service closes the exchange and the database.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Chat, TelegramObject, Update, User
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.formatting import truncate
from trading.views import ServiceAPI

log = logging.getLogger(__name__)

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def actor_of(user: User | None) -> str:
    return f"tg:{user.id}" if user is not None else "tg:unknown"


class UpdatesInFlight(BaseMiddleware):
    """Tracks the tasks handling updates (aiogram runs one task per update and does not wait for them at stop)."""

    def __init__(self, grace_s: float = 10.0) -> None:
        self.grace_s = grace_s
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            return await handler(event, data)
        finally:
            if task is not None:
                self._tasks.discard(task)

    @property
    def count(self) -> int:
        return sum(1 for t in self._tasks if not t.done())

    async def finish(self, grace_s: float | None = None) -> int:
        """Wait up to ``grace_s`` for the updates being handled, cancel the rest; returns how many were cancelled."""
        grace_s = self.grace_s if grace_s is None else grace_s
        me = asyncio.current_task()
        pending = {t for t in self._tasks if t is not me and not t.done()}
        if not pending:
            return 0
        log.info("waiting up to %.0f s for %d Telegram update(s) being handled", grace_s, len(pending))
        _done, late = await asyncio.wait(pending, timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("cancelled %d Telegram update(s) still being handled after %.0f s", len(late), grace_s)
            await asyncio.wait(late, timeout=1.0)
        return len(late)


class AuthMiddleware(BaseMiddleware):
    def __init__(self, service: ServiceAPI, allowed_chat_ids: Iterable[int]) -> None:
        self._service = service
        self._allowed = frozenset(int(c) for c in allowed_chat_ids)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.id in self._allowed:
            return await handler(event, data)
        self._audit(event, chat, data.get("event_from_user"))
        return None  # no answer at all: an unknown chat learns nothing about the bot

    def _audit(self, event: TelegramObject, chat: Chat | None, user: User | None) -> None:
        after: dict[str, Any] = {
            "chat_id": chat.id if chat is not None else None,
            "user_id": user.id if user is not None else None,
        }
        if isinstance(event, Update):
            if event.message is not None:
                after["text"] = truncate(event.message.text or event.message.caption or "", 500)
            elif event.callback_query is not None:
                after["data"] = truncate(event.callback_query.data or "", 100)
            else:
                after["update"] = event.event_type
        try:
            self._service.audit(actor=actor_of(user), action="unauthorized", after=after)
        except Exception:  # the audit must not turn into a reply or a crash
            log.exception("could not audit an unauthorized update from chat %s", after["chat_id"])
        log.warning(
            "ignored an update from chat %s (user %s): not in TELEGRAM_ALLOWED_CHAT_IDS",
            after["chat_id"],
            after["user_id"],
        )


class LocaleResolver:
    """The locale of a chat: its ``/lang`` choice if it is a known catalogue, else the default."""

    def __init__(self, i18n: I18n, service: ServiceAPI) -> None:
        self.i18n = i18n
        self._service = service

    @property
    def default(self) -> str:
        return self.i18n.default_locale

    def for_chat(self, chat_id: int | None) -> str:
        if chat_id is None:
            return self.default
        try:
            chosen = self._service.chat_locale(chat_id)
        except Exception:
            log.exception("chat_locale(%s) failed; using %s", chat_id, self.default)
            return self.default
        return chosen if chosen in self.i18n.available_locales else self.default


class ChatLocaleMiddleware(I18nMiddleware):
    def __init__(self, resolver: LocaleResolver) -> None:
        super().__init__(i18n=resolver.i18n)
        self._resolver = resolver

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        chat: Chat | None = data.get("event_chat")
        return self._resolver.for_chat(chat.id if chat is not None else None)


class RetryAfterMiddleware(BaseRequestMiddleware):
    """Sleep ``retry_after`` and send the same request again (a few times, for waits up to ``max_wait_s``).

    Longer or repeated limits surface as ``TelegramRetryAfter`` to the caller
    (the alert notifier keeps honouring them; a reply gives up).
    """

    def __init__(self, *, attempts: int = 3, max_wait_s: float = 30.0) -> None:
        self._attempts = attempts
        self._max_wait_s = max_wait_s

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        for attempt in range(1, self._attempts + 1):
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as exc:
                if attempt == self._attempts or exc.retry_after > self._max_wait_s:
                    raise
                log.warning("%s rate limited by Telegram: retrying in %s s", method.__api_method__, exc.retry_after)
                await asyncio.sleep(exc.retry_after)
        raise AssertionError("unreachable")  # pragma: no cover
