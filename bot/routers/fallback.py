"""Anything no other router took: unknown commands, plain text, stale buttons. Included last."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, Message

from bot.access import READ
from bot.formatting import esc, truncate
from bot.i18n import _
from bot.routers.common import safe_answer


async def unknown_command(message: Message, bot: Bot) -> None:
    command = (message.text or "").split(maxsplit=1)[0]
    mention = command.partition("@")[2]
    if mention and mention.lower() != ((await bot.me()).username or "").lower():
        return  # "/start@some_other_bot" in a group: not ours to answer
    await message.answer(
        _("Unknown command {command}. /help lists what I understand.").format(
            command=f"<code>{esc(truncate(command, 40))}</code>"
        )
    )


async def not_a_command(message: Message) -> None:
    await message.answer(_("I answer commands only. /help lists them."))


async def stale_button(callback: CallbackQuery) -> None:
    await safe_answer(callback, _("This button is no longer valid."))


def create_router() -> Router:
    router = Router(name="fallback")
    router.message.register(unknown_command, F.text.startswith("/"), flags=READ)
    router.message.register(not_a_command, flags=READ)
    router.callback_query.register(stale_button, flags=READ)
    return router
