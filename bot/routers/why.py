"""/why SYMBOL: every entry condition with its values."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot import presenters
from bot.access import READ
from bot.i18n import _
from bot.parsing import split_args
from bot.routers.common import bad_symbol_text, reply_long
from trading.core.symbols import normalize_symbol
from trading.views import ServiceAPI


async def cmd_why(message: Message, command: CommandObject, service: ServiceAPI) -> None:
    args = split_args(command.args)
    if not args:
        await message.answer(_("Usage: /why SYMBOL (e.g. /why btc)"))
        return
    symbol = normalize_symbol(args[0])
    if symbol is None:
        await message.answer(bad_symbol_text(args[0]))
        return
    report = await service.why(symbol)
    text = presenters.why_none_text(symbol) if report is None else presenters.why_text(report)
    await reply_long(message, text)


def create_router() -> Router:
    router = Router(name="why")
    router.message.register(cmd_why, Command("why"), flags=READ)
    return router
