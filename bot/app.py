"""Building and running the bot: ``create_bot``, ``create_dispatcher``, ``start_bot``, ``stop_bot``.

The composition root (``bot/__main__.py``, the service) decides when; this
module only wires aiogram. Handlers get the service API and helpers through
the dispatcher's workflow data (``service``, ``clock``, ``confirmations``,
``locales``), never through globals.

Polling hygiene (``bot.polling``): updates that waited while the service was
down are read first and stale commands among them ignored (each chat told
how many); polling stops after repeated 409 Conflicts (another process polls
the same token) with an alert through ``publish_alert``.

Stopping: ``dp.stop_polling()`` (or :func:`stop_bot`) returns once polling
has stopped *and* the updates being handled have finished (at most
``stop_grace_s``; the rest are cancelled). aiogram itself would leave them
running, e.g. a confirmed ``/exit`` still waiting for its fill while the
service closes the exchange session and the database under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n

from bot.access import AccessPolicy, HourlyTally, RateLimiter
from bot.commands import COMMANDS
from bot.confirmations import CONFIRM_TTL_S, ConfirmationStore
from bot.i18n import SUPPORTED_LOCALES, make_i18n, translate
from bot.link import POLLING_BACKOFF, TelegramLink
from bot.middlewares import (
    AccessMiddleware,
    AuthMiddleware,
    ChatLocaleMiddleware,
    LocaleResolver,
    RetryAfterMiddleware,
    UpdatesInFlight,
    audit_tally,
)
from bot.polling import ALERTS, ConflictGuard, StaleUpdates, drain_backlog, feed_backlog
from bot.routers import all_routers
from trading.clock import Clock, SystemClock
from trading.core.backoff import Backoff
from trading.events import BotPollingStopped, EngineEvent
from trading.retry import retry
from trading.settings import group_chat_ids
from trading.views import ServiceAPI

log = logging.getLogger(__name__)

_STOP_FLAG = "bot_stop_requested"
# A confirmed /exit finishes: a lost reply is asked about briefly, a refused one is sent again 2 s and 4 s later.
STOP_GRACE_S = 10.0


def create_bot(token: str, api_url: str | None = None, *, link: TelegramLink | None = None) -> Bot:
    """An aiogram ``Bot`` speaking HTML; ``api_url`` (``TELEGRAM_API_URL``) replaces https://api.telegram.org;
    ``link`` records whether Telegram answers (``/health``)."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else AiohttpSession()
    if link is not None:
        session.middleware(link)  # outermost: it sees what the caller finally gets
    session.middleware(RetryAfterMiddleware())
    return Bot(
        token=token,
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


def create_dispatcher(
    service: ServiceAPI,
    *,
    allowed_chat_ids: Iterable[int],
    allowed_user_ids: Iterable[int] = (),
    default_locale: str = "ko",
    clock: Clock | None = None,
    i18n: I18n | None = None,
    confirm_ttl_s: float = CONFIRM_TTL_S,
    stop_grace_s: float = STOP_GRACE_S,
    publish_alert: Callable[[EngineEvent], None] | None = None,
    stale_updates: StaleUpdates | None = None,
) -> Dispatcher:
    """``publish_alert``: where the bot's own alerts go (409 Conflict, a group that moved): the service's notifier."""
    policy = AccessPolicy.of(allowed_chat_ids, allowed_user_ids)
    if not policy.chats:
        raise ValueError("allowed_chat_ids is empty: the bot would answer nobody")
    if group_chat_ids(policy.chats) and not policy.users:
        raise ValueError("a group is allowed but allowed_user_ids is empty: every member could act")
    # The service's own clock when it has one (live: the exchange's time, on which every stored timestamp is),
    # so that ages in /health and /positions do not drift with the host's clock.
    clock = clock or getattr(service, "clock", None) or SystemClock()
    i18n = i18n or make_i18n(default_locale)
    locales = LocaleResolver(i18n, service)
    tally = HourlyTally(clock, audit_tally(service))
    dp = Dispatcher(
        service=service,
        clock=clock,
        confirmations=ConfirmationStore(clock, ttl_s=confirm_ttl_s),
        locales=locales,
        i18n=i18n,
        rate_limiter=RateLimiter(clock),
        audit_tally=tally,
    )
    dp[ALERTS] = publish_alert
    in_flight = UpdatesInFlight(stop_grace_s)
    dp.update.outer_middleware(in_flight)  # outermost: every update is seen, whatever happens inside

    async def finish_updates() -> None:  # runs inside start_polling's shutdown, which stop_polling waits for
        await in_flight.finish()

    dp.shutdown.register(finish_updates)
    dp["updates_in_flight"] = in_flight
    # Auth next (outer, on the raw update): unknown chats never reach i18n, handlers or the error router.
    dp.update.outer_middleware(AuthMiddleware(service, policy, tally))
    stale = stale_updates or StaleUpdates()
    dp.update.outer_middleware(stale)  # after auth: strangers are never told anything
    dp["stale_updates"] = stale
    ChatLocaleMiddleware(locales).setup(dp)
    # Who may act: inner, so it sees the chosen handler's flags (and runs inside the chat's language).
    access = AccessMiddleware(policy, tally)
    dp.message.middleware(access)
    dp.callback_query.middleware(access)
    dp.include_routers(*all_routers())
    return dp


def bot_commands(i18n: I18n, locale: str) -> list[BotCommand]:
    return [BotCommand(command=c.name, description=translate(c.description, locale, i18n)) for c in COMMANDS]


async def set_commands(bot: Bot, i18n: I18n) -> None:
    """The command menu: the default locale for everyone, plus each other language for its users."""
    await bot.set_my_commands(bot_commands(i18n, i18n.default_locale))
    for locale in SUPPORTED_LOCALES:
        if locale != i18n.default_locale:
            await bot.set_my_commands(bot_commands(i18n, locale), language_code=locale)


async def _until_reachable(bot: Bot, max_delay_s: float = 30.0) -> None:
    """``getMe`` until Telegram answers: an outage at start must not end the bot, nor a token rejected after the
    start-up check (``bot.link.check_token``) passed: the bot keeps trying and says so, trading goes on."""
    outage = Backoff(1.0, factor=2.0, cap_s=max_delay_s)
    rejected = Backoff(1.0, factor=2.0, cap_s=max_delay_s * 10)  # a token refused: ask ten times less often

    def told(exc: BaseException, delay: float) -> None:
        if not isinstance(exc, TelegramRetryAfter):
            log.warning("Telegram not answering the bot (%s); retrying in %.0f s", exc, delay)

    await retry(
        bot.me,
        lambda exc: rejected if isinstance(exc, TelegramUnauthorizedError) else outage,
        retriable=(
            TelegramRetryAfter,
            TelegramNetworkError,
            TelegramServerError,
            TelegramUnauthorizedError,
            TelegramNotFound,
        ),
        asked_wait=lambda exc: exc.retry_after if isinstance(exc, TelegramRetryAfter) else None,
        on_retry=told,
    )


async def start_bot(bot: Bot, dp: Dispatcher, *, polling_timeout: int = 10, guard: ConflictGuard | None = None) -> None:
    """Set the command menus, handle the updates that waited, and poll in the current loop until :func:`stop_bot`
    (or until another process polling the same token makes Telegram answer 409 Conflict repeatedly).

    No signal handlers are installed: the service owns SIGINT/SIGTERM.
    """
    dp.workflow_data[_STOP_FLAG] = False
    guard = guard or ConflictGuard(lambda n, detail: _conflicts_stop(dp, n, detail))
    bot.session.middleware(guard)
    await _until_reachable(bot)
    i18n: I18n = dp["i18n"]
    try:
        await bot.delete_webhook(drop_pending_updates=False)  # polling and a webhook exclude each other
        await set_commands(bot, i18n)
    except TelegramAPIError as exc:  # cosmetic: the bot works without a command menu
        log.warning("could not set the command menu: %s", exc)
    if dp.workflow_data.get(_STOP_FLAG):  # stop_bot came while we were still getting ready
        return
    waiting = await drain_backlog(bot, dp, should_stop=lambda: bool(dp.workflow_data.get(_STOP_FLAG)) or guard.tripped)
    if dp.workflow_data.get(_STOP_FLAG) or guard.tripped:
        return
    if waiting:
        log.info("%d Telegram update(s) waited while the service was not running", len(waiting))
        dp.workflow_data["backlog_tasks"] = feed_backlog(bot, dp, waiting)
    await dp.start_polling(
        bot,
        polling_timeout=polling_timeout,
        backoff_config=POLLING_BACKOFF,
        handle_signals=False,
        close_bot_session=False,  # the notifier may still send alerts while the service stops
    )


def _conflicts_stop(dp: Dispatcher, conflicts: int, detail: str) -> None:
    """Another process polls this token: stop polling (updates would be split between the two), say so loudly."""
    log.error(
        "Telegram answered 409 Conflict %d times: another process is polling this bot token (%s). Polling stopped "
        "so that commands are not split between the two; trading and alerts go on. Stop the other instance and "
        "restart this one.",
        conflicts,
        detail,
    )
    dp.workflow_data[_STOP_FLAG] = True  # if polling has not started yet, it never does
    publish = dp.workflow_data.get(ALERTS)
    if publish is not None:
        clock: Clock = dp.workflow_data.get("clock") or SystemClock()
        publish(BotPollingStopped(ts_ms=clock.now_ms(), conflicts=conflicts, detail=detail))

    async def stop() -> None:
        with contextlib.suppress(RuntimeError):  # "Polling is not started": start_bot sees the flag instead
            await dp.stop_polling()

    dp.workflow_data["conflict_stop"] = asyncio.get_running_loop().create_task(stop(), name="telegram-conflict-stop")


async def stop_bot(bot: Bot, dp: Dispatcher, *, close_session: bool = True) -> None:
    """Stop polling (if it runs), let the updates being handled finish, and close the HTTP session.

    Safe to call more than once. Called while :func:`start_bot` is still
    waiting for Telegram, it makes ``start_bot`` return without polling (a
    task stuck in its retry sleep may still need cancelling by the caller).
    A composition root that still sends alerts afterwards passes
    ``close_session=False`` and closes ``bot.session`` after the last one.
    """
    dp.workflow_data[_STOP_FLAG] = True
    with contextlib.suppress(RuntimeError):  # "Polling is not started"
        await dp.stop_polling()
    in_flight = dp.workflow_data.get("updates_in_flight")
    if isinstance(in_flight, UpdatesInFlight):  # polling never ran, or already stopped: nothing else waits for them
        await in_flight.finish()
    tally = dp.workflow_data.get("audit_tally")
    if isinstance(tally, HourlyTally):  # the hour's counts of unknown chats and refusals, before the database closes
        tally.flush()
    if close_session:
        await bot.session.close()
