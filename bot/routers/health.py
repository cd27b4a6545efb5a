"""/health."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import presenters
from bot.access import READ
from bot.routers.common import reply_long
from trading.clock import Clock
from trading.views import ServiceAPI


async def cmd_health(message: Message, service: ServiceAPI, clock: Clock) -> None:
    health = await service.health()
    await reply_long(message, presenters.health_text(health, now_ms=clock.now_ms()))


def create_router() -> Router:
    router = Router(name="health")
    router.message.register(cmd_health, Command("health"), flags=READ)
    return router
