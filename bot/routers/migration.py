"""A group that became a supergroup: Telegram moves it to a new chat id, which the settings do not list yet.

The last message in the old group carries ``migrate_to_chat_id``. It is reported in the log, in the new chat
(the old one no longer accepts messages) and as an alert; the bot keeps ignoring commands from the new id until
it is put in ``TELEGRAM_ALLOWED_CHAT_IDS`` (a chat is never allowed behind the operator's back). Alerts meant for
the old id reach the new one meanwhile (``bot.notifier.TelegramSink``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Message

from bot.i18n import _
from bot.middlewares import actor_of
from trading.clock import Clock
from trading.events import ChatMigrated, EngineEvent
from trading.views import ServiceAPI

log = logging.getLogger(__name__)


async def group_migrated(
    message: Message,
    bot: Bot,
    service: ServiceAPI,
    clock: Clock,
    publish_alert: Callable[[EngineEvent], None] | None = None,
) -> None:
    old, new = message.chat.id, message.migrate_to_chat_id
    assert new is not None  # the filter
    log.warning(
        "Telegram: group %s became the supergroup %s. Put %s in TELEGRAM_ALLOWED_CHAT_IDS in place of %s and "
        "restart; until then commands from it are ignored.",
        old,
        new,
        new,
        old,
    )
    service.audit(
        actor=actor_of(message.from_user), action="chat_migrated", before={"chat_id": old}, after={"chat_id": new}
    )
    text = _(
        "This group became a supergroup and Telegram gave it a new id: <code>{new}</code>. Put {new} in "
        "TELEGRAM_ALLOWED_CHAT_IDS in place of {old} and restart the service; until then I ignore commands here."
    ).format(new=new, old=old)
    try:
        await bot.send_message(new, text)
    except TelegramAPIError as exc:
        log.warning("could not tell the new chat %s about the migration: %s", new, exc)
    if publish_alert is not None:
        publish_alert(ChatMigrated(ts_ms=clock.now_ms(), old_chat_id=old, new_chat_id=new))


def create_router() -> Router:
    router = Router(name="migration")
    router.message.register(group_migrated, F.migrate_to_chat_id)
    return router
