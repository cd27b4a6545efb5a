"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot import presenters
from bot.access import READ
from bot.routers.common import reply_long
from trading.views import ServiceAPI


async def cmd_start(message: Message, service: ServiceAPI) -> None:
    await reply_long(message, presenters.start_text(service.mode, service.paused))


async def cmd_help(message: Message) -> None:
    await reply_long(message, presenters.help_text())


def create_router() -> Router:
    router = Router(name="start")
    router.message.register(cmd_start, CommandStart(), flags=READ)
    router.message.register(cmd_help, Command("help"), flags=READ)
    return router
