"""The bot's own membership in allowed chats (``my_chat_member``): logged, so the operator sees it in the log.

Registering this handler is also what makes aiogram ask Telegram for ``my_chat_member`` updates at all (polling
requests only the update types some handler uses): the auth middleware needs them to leave groups the bot was
added to without permission.
"""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.types import ChatMemberUpdated

from bot.access import READ

log = logging.getLogger(__name__)


async def on_my_membership(event: ChatMemberUpdated) -> None:
    log.info(
        "the bot's status in allowed chat %s (%s) changed: %s -> %s (by user %s)",
        event.chat.id,
        event.chat.type,
        event.old_chat_member.status,
        event.new_chat_member.status,
        event.from_user.id,
    )


def create_router() -> Router:
    router = Router(name="membership")
    router.my_chat_member.register(on_my_membership, flags=READ)
    return router
