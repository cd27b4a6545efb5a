"""/config (grouped view), /config set KEY VALUE (preview, confirm, apply), /config history."""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot import presenters
from bot.access import READ
from bot.callbacks import ConfirmCb, ConfirmKind
from bot.confirmations import ConfirmationStore
from bot.i18n import _
from bot.keyboards import confirm_keyboard
from bot.middlewares import actor_of
from bot.routers.common import reply_long, safe_answer, safe_edit, take_confirmation
from trading.views import InvalidConfig, ServiceAPI, ServiceError

log = logging.getLogger(__name__)

HISTORY_LIMIT = 20


def _usage() -> str:
    return _("Usage: /config (show), /config set KEY VALUE, /config history")


async def cmd_config(message: Message, command: CommandObject, service: ServiceAPI) -> None:
    """/config and /config history: anyone in an allowed chat may read them."""
    args = (command.args or "").strip().split()
    if not args:
        await reply_long(message, presenters.config_text(await service.config_get()))
        return
    if args[0].lower() == "history" and len(args) == 1:
        await reply_long(message, presenters.config_history_text(await service.config_history(HISTORY_LIMIT)))
        return
    await message.answer(_usage())


async def cmd_config_set(
    message: Message, command: CommandObject, service: ServiceAPI, confirmations: ConfirmationStore
) -> None:
    """/config set KEY VALUE: an allowed user's change, previewed, then confirmed."""
    # maxsplit keeps a value with spaces (e.g. a list) in one piece.
    args = (command.args or "").strip().split(maxsplit=2)
    if len(args) < 3:
        await message.answer(_("Usage: /config set KEY VALUE (e.g. /config set leverage 5)"))
        return
    key, raw = args[1], args[2].strip()
    try:
        preview = await service.config_preview(key, raw)
    except InvalidConfig as exc:
        await reply_long(message, presenters.invalid_config_text(exc.params.get("problems") or [str(exc)]))
        return
    text, confirmable = presenters.config_question(preview, ttl_s=int(confirmations.ttl_s))
    if not confirmable:
        await reply_long(message, text)
        return
    user_id = message.from_user.id if message.from_user else 0
    pending = confirmations.create("config", user_id=user_id, chat_id=message.chat.id, payload={"key": key, "raw": raw})
    await reply_long(message, text, confirm_keyboard(ConfirmKind.CONFIG, pending.token))


def _is_set(args: str | None) -> bool:
    words = (args or "").split(maxsplit=1)
    return bool(words) and words[0].lower() == "set"


async def on_config_confirm(
    callback: CallbackQuery, callback_data: ConfirmCb, service: ServiceAPI, confirmations: ConfirmationStore, bot: Bot
) -> None:
    message = callback.message if isinstance(callback.message, Message) else None
    item = await take_confirmation(
        callback,
        callback_data,
        confirmations,
        cancelled_text=_("Cancelled: the config is unchanged."),
        expired_text=_("Expired: the config is unchanged."),
    )
    if item is None:
        return

    await safe_answer(callback)
    try:
        change = await service.config_set(item.payload["key"], item.payload["raw"], actor=actor_of(callback.from_user))
    except InvalidConfig as exc:
        text = presenters.invalid_config_text(exc.params.get("problems") or [str(exc)])
    except ServiceError as exc:
        text = presenters.service_error_text(exc)
    else:
        text = presenters.config_done(change)
    if message is not None:
        await safe_edit(message, text)
    else:
        await bot.send_message(item.chat_id, text)


def create_router() -> Router:
    router = Router(name="config")
    router.message.register(cmd_config_set, Command("config", magic=F.args.func(_is_set)))  # changes: act
    router.message.register(cmd_config, Command("config"), flags=READ)
    router.callback_query.register(on_config_confirm, ConfirmCb.filter(F.kind == ConfirmKind.CONFIG))
    return router
