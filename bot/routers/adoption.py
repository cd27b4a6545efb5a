"""Adoption by consent: the Adopt / Ignore buttons under the alert about a long SurgeDCA did not open, and the
Adopt button of /positions for one left alone (it asks to confirm, as every action on a position).

Both are actions: only ``TELEGRAM_ALLOWED_USER_IDS`` may press them (``bot.access``: no ``READ`` flag). The
alert's answer is single-use across chats and restarts (the service keeps the question in its database); the
answer replaces the question, a later press is told what the answer was.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message, User

from bot import presenters
from bot.callbacks import AdoptCb, ConfirmCb, ConfirmKind, PosAction, PositionsCb
from bot.confirmations import ConfirmationStore
from bot.i18n import _
from bot.keyboards import confirm_keyboard
from bot.middlewares import actor_of
from bot.routers.common import safe_answer, safe_edit, take_confirmation
from trading.views import AdoptionOutcome, AdoptionResult, ServiceAPI

log = logging.getLogger(__name__)

_DONE = (AdoptionOutcome.ADOPTED, AdoptionOutcome.IGNORED)


def _who(user: User | None) -> str:
    if user is None:
        return "?"
    return f"@{user.username}" if user.username else user.full_name


async def on_answer(callback: CallbackQuery, callback_data: AdoptCb, service: ServiceAPI, bot: Bot) -> None:
    result = await service.answer_adoption(callback_data.token, callback_data.adopt, actor_of(callback.from_user))
    await _show(callback, result, bot)


async def on_adopt_button(
    callback: CallbackQuery, callback_data: PositionsCb, service: ServiceAPI, confirmations: ConfirmationStore, bot: Bot
) -> None:
    """/positions' Adopt: the question first (the error router answers a symbol no longer left alone)."""
    await safe_answer(callback)
    if callback.message is None:
        return
    item = await service.not_managed_one(callback_data.symbol)
    pending = confirmations.create(
        "adopt", user_id=callback.from_user.id, chat_id=callback.message.chat.id, payload={"symbol": item.symbol}
    )
    await bot.send_message(
        callback.message.chat.id,
        presenters.adopt_question(item, ttl_s=int(confirmations.ttl_s)),
        reply_markup=confirm_keyboard(ConfirmKind.ADOPT, pending.token),
    )


async def on_adopt_confirm(
    callback: CallbackQuery, callback_data: ConfirmCb, service: ServiceAPI, confirmations: ConfirmationStore, bot: Bot
) -> None:
    item = await take_confirmation(
        callback,
        callback_data,
        confirmations,
        cancelled_text=_("Cancelled: nothing was adopted."),
        expired_text=_("Expired: nothing was adopted. Press Adopt under /positions again if you still want it."),
    )
    if item is None:
        return
    result = await service.adopt(item.payload["symbol"], actor=actor_of(callback.from_user))
    await _show(callback, result, bot)


async def _show(callback: CallbackQuery, result: AdoptionResult, bot: Bot) -> None:
    """An answer that did something replaces the question (buttons gone); any other is a pop-up."""
    if result.outcome not in _DONE:
        await safe_answer(callback, presenters.adoption_refusal(result), alert=True)
        return
    await safe_answer(callback)
    text = presenters.adoption_result(result, who=_who(callback.from_user))
    if isinstance(callback.message, Message):
        await safe_edit(callback.message, text)
    elif callback.message is not None:
        await bot.send_message(callback.message.chat.id, text)


def create_router() -> Router:
    router = Router(name="adoption")
    router.callback_query.register(on_answer, AdoptCb.filter())
    router.callback_query.register(on_adopt_button, PositionsCb.filter(F.action == PosAction.ADOPT))
    router.callback_query.register(on_adopt_confirm, ConfirmCb.filter(F.kind == ConfirmKind.ADOPT))
    return router
