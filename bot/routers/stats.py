"""/stats: today and the last 7 days."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import presenters
from bot.access import READ
from trading.views import ServiceAPI


async def cmd_stats(message: Message, service: ServiceAPI) -> None:
    await message.answer(presenters.stats_text(await service.stats()))


def create_router() -> Router:
    router = Router(name="stats")
    router.message.register(cmd_stats, Command("stats"), flags=READ)
    return router
