"""/positions with per-position Exit and Details buttons, paging and an in-place Refresh.

The Exit button itself is handled by the exit router (it asks to confirm).
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot import presenters
from bot.access import READ
from bot.callbacks import PosAction, PositionsCb
from bot.i18n import _
from bot.keyboards import details_keyboard, positions_keyboard
from bot.routers.common import reply_long, safe_answer, safe_edit
from trading.clock import Clock
from trading.views import ServiceAPI


async def render_positions(service: ServiceAPI, clock: Clock, page: int) -> tuple[str, InlineKeyboardMarkup]:
    positions = await service.positions()
    not_managed = await service.not_managed()
    shown, page = presenters.page_slice(positions, page)
    text = presenters.positions_text(
        positions, page=page, now_ms=clock.now_ms(), paused=service.paused, not_managed=not_managed
    )
    pages = presenters.positions_pages(len(positions))
    markup = positions_keyboard(shown, page=page, pages=pages, not_managed=not_managed)
    return text, markup


async def cmd_positions(message: Message, service: ServiceAPI, clock: Clock) -> None:
    text, markup = await render_positions(service, clock, 0)
    await reply_long(message, text, markup)


async def on_refresh(
    callback: CallbackQuery, callback_data: PositionsCb, service: ServiceAPI, clock: Clock, bot: Bot
) -> None:
    text, markup = await render_positions(service, clock, callback_data.page)
    if isinstance(callback.message, Message):
        changed = await safe_edit(callback.message, text, markup)
        await safe_answer(callback, None if changed else _("Already up to date."))
    else:  # the message is too old to edit: send a fresh one
        await safe_answer(callback)
        if callback.message is not None:
            await bot.send_message(callback.message.chat.id, text, reply_markup=markup)


async def on_details(
    callback: CallbackQuery, callback_data: PositionsCb, service: ServiceAPI, clock: Clock, bot: Bot
) -> None:
    await safe_answer(callback)
    position = await service.position(callback_data.symbol)
    if callback.message is not None:
        await bot.send_message(
            callback.message.chat.id,
            presenters.position_details(position, now_ms=clock.now_ms()),
            reply_markup=details_keyboard(position.symbol),
        )


def create_router() -> Router:
    router = Router(name="positions")
    router.message.register(cmd_positions, Command("positions"), flags=READ)
    router.callback_query.register(
        on_refresh, PositionsCb.filter(F.action.in_({PosAction.REFRESH, PosAction.PAGE})), flags=READ
    )
    router.callback_query.register(on_details, PositionsCb.filter(F.action == PosAction.DETAILS), flags=READ)
    return router
