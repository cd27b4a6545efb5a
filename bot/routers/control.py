"""/pause and /resume: new entries only; exits and DCA always continue."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.i18n import _
from bot.middlewares import actor_of
from trading.views import ServiceAPI


async def cmd_pause(message: Message, service: ServiceAPI) -> None:
    changed = await service.pause(actor=actor_of(message.from_user))
    if changed:
        await message.answer(_("⏸ Paused: no new entries. Exits and DCA continue. /resume to undo."))
    else:
        await message.answer(_("Already paused. /resume allows new entries again."))


async def cmd_resume(message: Message, service: ServiceAPI) -> None:
    changed = await service.resume(actor=actor_of(message.from_user))
    if changed:
        await message.answer(_("▶ Resumed: new entries are allowed again."))
    else:
        await message.answer(_("Not paused: new entries are already allowed."))


def create_router() -> Router:
    router = Router(name="control")
    router.message.register(cmd_pause, Command("pause"))
    router.message.register(cmd_resume, Command("resume"))
    return router
