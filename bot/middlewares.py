"""Update middlewares: who may talk to the bot, and in which language it answers.

* :class:`AuthMiddleware` (outer, on updates): only chats listed in
  ``TELEGRAM_ALLOWED_CHAT_IDS`` reach a handler. Anything else (messages,
  button presses) gets no reply at all and is counted in an ``unauthorized``
  audit row per chat and hour; the bot leaves groups it was added to uninvited.
* :class:`AccessMiddleware` (inner, on messages and buttons): who may act
  (``TELEGRAM_ALLOWED_USER_IDS``) and who may only read (``bot.access``).
* :class:`RateLimitMiddleware` (inner, on heavy routers): per-user rate limit.
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
import math
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.dispatcher.flags import get_flag
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError, TelegramRetryAfter
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import CallbackQuery, Chat, Message, TelegramObject, Update, User
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot import presenters
from bot.access import ACCESS_FLAG, NOT_HEAVY, Access, AccessPolicy, HourlyTally, RateLimiter, Tally
from bot.formatting import truncate
from trading.retry import retry
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
    """Outer, on raw updates: chats not in ``TELEGRAM_ALLOWED_CHAT_IDS`` get no answer at all.

    They cost one audit row and one log line per chat and clock hour (with a count), and the bot leaves a
    group or channel it was added to without permission."""

    def __init__(self, service: ServiceAPI, policy: AccessPolicy, tally: HourlyTally) -> None:
        self._service = service
        self._policy = policy
        self._tally = tally
        self._upgraded: set[int] = set()  # supergroups an allowed group became: not strangers, never left

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        chat: Chat | None = data.get("event_chat")
        self._note_upgrade(event)
        if self._policy.chat_allowed(chat):
            return await handler(event, data)
        user: User | None = data.get("event_from_user")
        chat_id = chat.id if chat is not None else None
        first = self._tally.note(("unauthorized", chat_id), user_id=user.id if user else None, sample=_sample(event))
        if first:
            log.warning(
                "ignored an update from chat %s (user %s): not in TELEGRAM_ALLOWED_CHAT_IDS "
                "(further ones from this chat are counted, not logged, until the hour is over)",
                chat_id,
                user.id if user else None,
            )
            known = chat is not None and chat.id in self._upgraded
            if chat is not None and chat.type != ChatType.PRIVATE and not known and not _bot_left(event):
                await _leave(data.get("bot"), chat)
        return None  # no answer at all: an unknown chat learns nothing about the bot

    def _note_upgrade(self, event: TelegramObject) -> None:
        """An allowed group became a supergroup: its new id is the same people, to be listed by the operator."""
        message = event.message if isinstance(event, Update) else None
        if message is None:
            return
        if message.migrate_to_chat_id is not None and message.chat.id in self._policy.chats:
            self._upgraded.add(message.migrate_to_chat_id)
        if message.migrate_from_chat_id is not None and message.migrate_from_chat_id in self._policy.chats:
            self._upgraded.add(message.chat.id)


def audit_tally(service: ServiceAPI) -> Callable[[Hashable, Tally], None]:
    """How a closed hour of the tally becomes an audit row: ``unauthorized`` (unknown chat) or ``refused``."""

    def write(key: Hashable, tally: Tally) -> None:
        assert isinstance(key, tuple)
        action, chat_id = key[0], key[1]
        after: dict[str, Any] = {
            "chat_id": chat_id,
            "count": tally.count,
            "first_ms": tally.first_ms,
            "last_ms": tally.last_ms,
            "users": tally.users,
            "samples": tally.samples,
        }
        actor = f"tg:{tally.users[0]}" if tally.users else "tg:unknown"
        service.audit(actor=actor, action=str(action), after=after)

    return write


def _sample(event: TelegramObject) -> str:
    if isinstance(event, Update):
        if event.message is not None:
            return truncate(event.message.text or event.message.caption or "", 100)
        if event.callback_query is not None:
            return "button:" + truncate(event.callback_query.data or "", 64)
        return str(event.event_type)
    if isinstance(event, Message):
        return truncate(event.text or event.caption or "", 100)
    if isinstance(event, CallbackQuery):
        return "button:" + truncate(event.data or "", 64)
    return type(event).__name__


def _bot_left(event: TelegramObject) -> bool:
    """A my_chat_member update saying the bot is already out of the chat (left or removed)."""
    member = event.my_chat_member if isinstance(event, Update) else None
    return member is not None and member.new_chat_member.status in (ChatMemberStatus.LEFT, ChatMemberStatus.KICKED)


async def _leave(bot: Bot | None, chat: Chat) -> None:
    if bot is None:
        return
    try:
        await bot.leave_chat(chat.id)
    except TelegramAPIError as exc:  # already out, or Telegram unreachable: the next hour tries again
        log.warning("could not leave chat %s (%s): %s", chat.id, chat.type, exc)
    else:
        log.warning("left chat %s (%s %r): it is not in TELEGRAM_ALLOWED_CHAT_IDS", chat.id, chat.type, chat.title)


class AccessMiddleware(BaseMiddleware):
    """Inner, on messages and button presses (after the filters chose a handler): a handler that is not flagged
    ``READ`` runs only for an allowed user; anyone else gets a short refusal, counted in the audit tally."""

    def __init__(self, policy: AccessPolicy, tally: HourlyTally) -> None:
        self._policy = policy
        self._tally = tally

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if get_flag(data, ACCESS_FLAG, default=Access.ACT) == Access.READ:
            return await handler(event, data)
        chat: Chat | None = data.get("event_chat")
        user: User | None = data.get("event_from_user")
        if self._policy.may_act(chat, user):
            return await handler(event, data)
        chat_id = chat.id if chat is not None else None
        user_id = user.id if user is not None else None
        if self._tally.note(("refused", chat_id, user_id), user_id=user_id, sample=_sample(event)):
            log.warning(
                "refused %r from user %s in chat %s: not in TELEGRAM_ALLOWED_USER_IDS", _sample(event), user_id, chat_id
            )
        text = presenters.not_allowed_text()
        if isinstance(event, CallbackQuery):
            await event.answer(text, show_alert=True)
        elif isinstance(event, Message):
            await event.answer(text)
        return None


class RateLimitMiddleware(BaseMiddleware):
    """Inner, on one heavy router (see ``bot.access.heavy``): per user, a burst and then one per interval."""

    def __init__(self, family: str, *, burst: int | None = None, every_s: float | None = None) -> None:
        self._family = family
        self._burst = burst
        self._every_s = every_s

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        limiter: RateLimiter | None = data.get("rate_limiter")
        user: User | None = data.get("event_from_user")
        if limiter is None or user is None:
            return await handler(event, data)
        key = (user.id, self._family)
        wait_s = limiter.take(key, burst=self._burst, every_s=self._every_s)
        if wait_s <= 0:
            result = await handler(event, data)
            if result is NOT_HEAVY:
                limiter.refund(key, burst=self._burst)
            return result
        log.info("rate limited /%s for user %s: %.0f s to wait", self._family, user.id, wait_s)
        text = presenters.rate_limited_text(math.ceil(wait_s))
        if isinstance(event, CallbackQuery):
            await event.answer(text, show_alert=True)
        elif isinstance(event, Message):
            await event.answer(text)
        return None


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
        def told(exc: BaseException, delay: float) -> None:
            log.warning("%s rate limited by Telegram: retrying in %s s", method.__api_method__, delay)

        return await retry(
            lambda: make_request(bot, method),
            None,  # no back-off: each 429 says how long to wait
            retriable=lambda exc: isinstance(exc, TelegramRetryAfter) and exc.retry_after <= self._max_wait_s,
            tries=self._attempts,
            asked_wait=lambda exc: exc.retry_after if isinstance(exc, TelegramRetryAfter) else None,
            on_retry=told,
        )
