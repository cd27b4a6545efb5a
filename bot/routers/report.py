"""/report [DAYS]: the equity-curve PNG with its figures."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, Message

from bot import presenters
from bot.access import NOT_HEAVY, READ, heavy
from bot.formatting import TELEGRAM_CAPTION_LIMIT
from bot.i18n import _
from bot.parsing import parse_days, split_args
from bot.routers.common import reply_long
from trading.views import ServiceAPI

MAX_DAYS = 365


async def cmd_report(message: Message, command: CommandObject, service: ServiceAPI) -> object:
    args = split_args(command.args)
    days = parse_days(args[0] if args else None, max_days=MAX_DAYS)
    if days is None or len(args) > 1:
        await message.answer(
            _("Usage: /report [DAYS], DAYS a whole number from 1 to {max} (default 7)").format(max=MAX_DAYS)
        )
        return NOT_HEAVY
    report = await service.report(days)
    caption = presenters.report_caption(report)
    if report.png is None:
        await reply_long(message, caption)
        return None
    photo = BufferedInputFile(report.png, filename=f"surgedca-{days}d.png")
    if len(caption) <= TELEGRAM_CAPTION_LIMIT:
        await message.answer_photo(photo, caption=caption)
    else:  # captions are capped at 1,024 characters: figures go in a message of their own
        await message.answer_photo(photo)
        await reply_long(message, caption)
    return None


def create_router() -> Router:
    router = heavy(Router(name="report"))  # a year of equity drawn into a PNG: seconds of CPU each
    router.message.register(cmd_report, Command("report"), flags=READ)
    return router
