"""/sync: reconcile with the exchange now and show what was found."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import presenters
from bot.access import heavy
from bot.middlewares import actor_of
from bot.routers.common import reply_long
from trading.views import ServiceAPI


async def cmd_sync(message: Message, service: ServiceAPI) -> None:
    report = await service.sync(actor=actor_of(message.from_user))
    await reply_long(message, presenters.sync_text(report))


def create_router() -> Router:
    router = heavy(Router(name="sync"))  # a full reconcile: REST weight on the exchange each time
    router.message.register(cmd_sync, Command("sync"))
    return router
