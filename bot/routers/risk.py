"""/risk: the SPEC 6 table of what the configuration can lose."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import presenters
from bot.access import READ
from bot.routers.common import reply_long
from trading.views import ServiceAPI


async def cmd_risk(message: Message, service: ServiceAPI) -> None:
    await reply_long(message, presenters.risk_text(await service.risk()))


def create_router() -> Router:
    router = Router(name="risk")
    router.message.register(cmd_risk, Command("risk"), flags=READ)
    return router
