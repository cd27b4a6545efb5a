"""/exit SYMBOL and the Exit button: preview, then a single-use, expiring, per-user Yes/No.

The result (fill price, PnL) replaces the question in place.
"""

from __future__ import annotations

import logging

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot import presenters
from bot.callbacks import ConfirmCb, ConfirmKind, PosAction, PositionsCb
from bot.confirmations import ConfirmationStore
from bot.formatting import esc
from bot.i18n import _
from bot.keyboards import confirm_keyboard
from bot.middlewares import actor_of
from bot.parsing import split_args
from bot.routers.common import bad_symbol_text, safe_answer, safe_edit, take_confirmation
from trading.core.symbols import normalize_symbol
from trading.views import ServiceAPI, ServiceError

log = logging.getLogger(__name__)


async def ask_exit(
    bot: Bot, *, chat_id: int, user_id: int, symbol: str, service: ServiceAPI, confirmations: ConfirmationStore
) -> None:
    preview = await service.exit_preview(symbol)  # UnknownSymbol / NoPosition -> the error router answers
    pending = confirmations.create("exit", user_id=user_id, chat_id=chat_id, payload={"symbol": preview.symbol})
    await bot.send_message(
        chat_id,
        presenters.exit_question(preview, ttl_s=int(confirmations.ttl_s)),
        reply_markup=confirm_keyboard(ConfirmKind.EXIT, pending.token),
    )


async def cmd_exit(
    message: Message, command: CommandObject, service: ServiceAPI, confirmations: ConfirmationStore, bot: Bot
) -> None:
    args = split_args(command.args)
    if len(args) != 1:
        await message.answer(_("Usage: /exit SYMBOL (e.g. /exit btc)"))
        return
    symbol = normalize_symbol(args[0])
    if symbol is None:
        await message.answer(bad_symbol_text(args[0]))
        return
    user_id = message.from_user.id if message.from_user else 0
    await ask_exit(
        bot, chat_id=message.chat.id, user_id=user_id, symbol=symbol, service=service, confirmations=confirmations
    )


async def on_exit_button(
    callback: CallbackQuery, callback_data: PositionsCb, service: ServiceAPI, confirmations: ConfirmationStore, bot: Bot
) -> None:
    await safe_answer(callback)
    if callback.message is None:
        return
    await ask_exit(
        bot,
        chat_id=callback.message.chat.id,
        user_id=callback.from_user.id,
        symbol=callback_data.symbol,
        service=service,
        confirmations=confirmations,
    )


async def on_exit_confirm(
    callback: CallbackQuery, callback_data: ConfirmCb, service: ServiceAPI, confirmations: ConfirmationStore, bot: Bot
) -> None:
    message = callback.message if isinstance(callback.message, Message) else None
    item = await take_confirmation(
        callback,
        callback_data,
        confirmations,
        cancelled_text=_("Cancelled: nothing was sold."),
        expired_text=_("Expired: nothing was sold. Send /exit again if you still want out."),
    )
    if item is None:
        return

    symbol = item.payload["symbol"]
    await safe_answer(callback, _("Selling…"))
    if message is not None:
        await safe_edit(message, _("Selling {symbol} at market…").format(symbol=f"<b>{esc(symbol)}</b>"))
    try:
        result = await service.exit(symbol, actor=actor_of(callback.from_user))
    except ServiceError as exc:
        text = presenters.service_error_text(exc)
    except Exception:
        # The question must not keep saying "Selling…": say it failed and where to look.
        log.exception("exit of %s failed", symbol)
        text = presenters.unexpected_error_text() + "\n" + _("Check /positions before trying again.")
    else:
        text = presenters.exit_result(result)
    if message is not None:
        await safe_edit(message, text)
    else:
        await bot.send_message(item.chat_id, text)


def create_router() -> Router:
    router = Router(name="exit")
    router.message.register(cmd_exit, Command("exit"))
    router.callback_query.register(on_exit_button, PositionsCb.filter(F.action == PosAction.EXIT))
    router.callback_query.register(on_exit_confirm, ConfirmCb.filter(F.kind == ConfirmKind.EXIT))
    return router
