"""The one error router: refused requests get their localised reason, anything else a short apology and a log line.

Telegram's harmless complaints ("message is not modified", "query is too
old") are logged and never answered.
"""

from __future__ import annotations

import logging

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import ExceptionTypeFilter
from aiogram.types import ErrorEvent

from bot import presenters
from bot.routers.common import is_not_modified, is_query_too_old, safe_answer
from trading.views import ServiceError

log = logging.getLogger(__name__)


async def _reply(event: ErrorEvent, bot: Bot, text: str) -> None:
    update = event.update
    try:
        if update.message is not None:
            await update.message.answer(text)
        elif update.callback_query is not None:
            cq = update.callback_query
            await safe_answer(cq)
            if cq.message is not None:
                await bot.send_message(cq.message.chat.id, text)
    except Exception:  # Telegram itself may be the problem: the log has it
        log.exception("could not report an error to the chat")


async def on_service_error(event: ErrorEvent, bot: Bot) -> None:
    exc = event.exception
    assert isinstance(exc, ServiceError)
    log.info("request refused (%s): %s", exc.code, exc)
    await _reply(event, bot, presenters.service_error_text(exc))


async def on_bad_request(event: ErrorEvent, bot: Bot) -> None:
    exc = event.exception
    assert isinstance(exc, TelegramBadRequest)
    if is_not_modified(exc) or is_query_too_old(exc):
        log.info("harmless Telegram answer: %s", exc.message)
        return
    log.error("Telegram refused a request: %s", exc.message, exc_info=exc)
    await _reply(event, bot, presenters.unexpected_error_text())


async def on_error(event: ErrorEvent, bot: Bot) -> None:
    log.error("error while handling update %s", event.update.update_id, exc_info=event.exception)
    await _reply(event, bot, presenters.unexpected_error_text())


def create_router() -> Router:
    router = Router(name="errors")
    router.errors.register(on_service_error, ExceptionTypeFilter(ServiceError))
    router.errors.register(on_bad_request, ExceptionTypeFilter(TelegramBadRequest))
    router.errors.register(on_error)
    return router
