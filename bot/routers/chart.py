"""/chart SYMBOL [1m|3m|15m|1h] and the 📈 Chart buttons: the candles as a picture with the position's lines.

Read-only: nothing here changes state (per-user authorisation classifies
every handler of this router as "view").
"""

from __future__ import annotations

from typing import Any

from aiogram import Bot, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot import presenters
from bot.access import NOT_HEAVY, READ, heavy
from bot.callbacks import ChartCb
from bot.formatting import TELEGRAM_CAPTION_LIMIT
from bot.i18n import _
from bot.keyboards import chart_keyboard
from bot.parsing import split_args
from bot.routers.common import bad_symbol_text, safe_answer
from trading.core.chart import CHART_INTERVALS, DEFAULT_INTERVAL, ChartLabels
from trading.core.symbols import normalize_symbol
from trading.views import ServiceAPI

CHART_BURST = 8  # charts a user may ask for at once (a held symbol, a few intervals, a symbol or two more)
CHART_EVERY_S = 10.0  # then one more every 10 s


def parse_interval(raw: str | None) -> str | None:
    """``3m`` / ``3M`` / ``1H`` -> the interval; None when it is not one a chart comes in."""
    if raw is None:
        return DEFAULT_INTERVAL
    text = raw.strip().lower()
    return text if text in CHART_INTERVALS else None


async def send_chart(
    bot: Bot, chat_id: int, symbol: str, interval: str, service: ServiceAPI, *, position_id: int = 0
) -> None:
    """Draw and send; the labels in this chat's language, English where the fonts cannot draw it."""
    await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
    view = await service.chart(
        symbol, interval, labels=(presenters.chart_labels(), ChartLabels()), position_id=position_id or None
    )
    caption = presenters.chart_caption(view)
    held = view.position is not None
    markup = chart_keyboard(view.symbol, view.interval, held=held, position_id=position_id)
    photo = BufferedInputFile(view.png, filename=f"{view.symbol}-{view.interval}.png")
    if len(caption) <= TELEGRAM_CAPTION_LIMIT:
        await bot.send_photo(chat_id, photo, caption=caption, reply_markup=markup)
    else:  # cannot happen with today's captions; a caption over the limit would lose the picture
        await bot.send_photo(chat_id, photo, reply_markup=markup)
        await bot.send_message(chat_id, caption)


async def cmd_chart(message: Message, command: CommandObject, service: ServiceAPI, bot: Bot) -> Any:
    args = split_args(command.args)
    if not args or len(args) > 2:
        await message.answer(_("Usage: /chart SYMBOL [1m|3m|15m|1h] (e.g. /chart btc 15m; default 3m)"))
        return NOT_HEAVY
    symbol = normalize_symbol(args[0])
    if symbol is None:
        await message.answer(bad_symbol_text(args[0]))
        return NOT_HEAVY
    interval = parse_interval(args[1] if len(args) > 1 else None)
    if interval is None:
        await message.answer(_("Charts come in 1m, 3m, 15m or 1h."))
        return NOT_HEAVY
    await send_chart(bot, message.chat.id, symbol, interval, service)
    return None


async def on_chart_button(callback: CallbackQuery, callback_data: ChartCb, service: ServiceAPI, bot: Bot) -> None:
    await safe_answer(callback)
    if callback.message is None:
        return
    interval = parse_interval(callback_data.interval) or DEFAULT_INTERVAL
    await send_chart(
        bot, callback.message.chat.id, callback_data.symbol, interval, service, position_id=callback_data.position
    )


def create_router() -> Router:
    # A picture drawn in a worker (cached per symbol and minute): a user may flip through a few, not hammer it.
    router = heavy(Router(name="chart"), burst=CHART_BURST, every_s=CHART_EVERY_S)
    router.message.register(cmd_chart, Command("chart"), flags=READ)  # anyone in an allowed chat may look
    router.callback_query.register(on_chart_button, ChartCb.filter(), flags=READ)
    return router
