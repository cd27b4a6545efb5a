"""/block SYMBOL [HOURS], /unblock SYMBOL, /blocked and the 🚫 Block buttons: no new entries on a symbol.

Without HOURS a block is permanent: the symbol joins the strategy key
``symbol_blacklist`` (a config change: override, history, audit). With HOURS
it is a timed block that ends by itself (stored, so it survives a restart).
Blocking a held symbol does not sell it: the reply offers Exit, which asks to
confirm like every exit.

For per-user authorisation: ``cmd_blocked`` and ``on_block_ask`` (the first
press: it only shows the choices) read; ``cmd_block``, ``cmd_unblock`` and
``on_block_choice`` (a duration chosen) change state.
"""

from __future__ import annotations

import re

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot import presenters
from bot.access import READ
from bot.callbacks import BlockAction, BlockCb
from bot.i18n import _
from bot.keyboards import block_choices_keyboard, exit_keyboard
from bot.middlewares import actor_of
from bot.parsing import split_args
from bot.routers.common import bad_symbol_text, safe_answer, safe_edit
from trading.clock import Clock
from trading.core.symbols import normalize_symbol
from trading.views import ServiceAPI

MAX_HOURS = 24 * 365
_HOURS_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(h|d)?$")


def parse_hours(raw: str) -> float | None:
    """``6``, ``6h``, ``1.5``, ``2d`` -> hours; None unless more than 0 and at most a year."""
    m = _HOURS_RE.match(raw.strip().lower())
    if m is None:
        return None
    hours = float(m.group(1)) * (24 if m.group(2) == "d" else 1)
    return hours if 0 < hours <= MAX_HOURS else None


def _usage() -> str:
    return _("Usage: /block SYMBOL [HOURS] (e.g. /block doge 24; without HOURS: permanently)")


async def cmd_block(message: Message, command: CommandObject, service: ServiceAPI, clock: Clock) -> None:
    args = split_args(command.args)
    if not 1 <= len(args) <= 2:
        await message.answer(_usage())
        return
    symbol = normalize_symbol(args[0])
    if symbol is None:
        await message.answer(bad_symbol_text(args[0]))
        return
    hours = None
    if len(args) == 2:
        hours = parse_hours(args[1])
        if hours is None:
            await message.answer(
                _("HOURS must be a number of hours from 0 to {max} (e.g. 6, 1.5 or 2d).").format(max=MAX_HOURS)
                + "\n"
                + _usage()
            )
            return
    result = await service.block(symbol, hours, actor=actor_of(message.from_user))
    await message.answer(
        presenters.block_done(result, now_ms=clock.now_ms()),
        reply_markup=exit_keyboard(result.symbol) if result.held else None,
    )


async def cmd_unblock(message: Message, command: CommandObject, service: ServiceAPI, clock: Clock) -> None:
    args = split_args(command.args)
    if len(args) != 1:
        await message.answer(_("Usage: /unblock SYMBOL (e.g. /unblock doge)"))
        return
    symbol = normalize_symbol(args[0])
    if symbol is None:
        await message.answer(bad_symbol_text(args[0]))
        return
    result = await service.unblock(symbol, actor=actor_of(message.from_user))
    await message.answer(presenters.unblock_done(result, now_ms=clock.now_ms()))


async def cmd_blocked(message: Message, service: ServiceAPI, clock: Clock) -> None:
    await message.answer(presenters.blocked_text(await service.blocked(), now_ms=clock.now_ms()))


async def on_block_ask(callback: CallbackQuery, callback_data: BlockCb, service: ServiceAPI, bot: Bot) -> None:
    await safe_answer(callback)
    if callback.message is None:
        return
    held = any(p.symbol == callback_data.symbol for p in await service.positions())
    await bot.send_message(
        callback.message.chat.id,
        presenters.block_question(callback_data.symbol, held=held),
        reply_markup=block_choices_keyboard(callback_data.symbol, held=held),
    )


async def on_block_choice(
    callback: CallbackQuery, callback_data: BlockCb, service: ServiceAPI, clock: Clock, bot: Bot
) -> None:
    hours = float(callback_data.hours) if callback_data.hours > 0 else None
    result = await service.block(callback_data.symbol, hours, actor=actor_of(callback.from_user))
    await safe_answer(callback, _("Blocked.") if result.changed else None)
    text = presenters.block_done(result, now_ms=clock.now_ms())
    markup = exit_keyboard(result.symbol) if result.held else None
    if isinstance(callback.message, Message):
        await safe_edit(callback.message, text, markup)
    elif callback.message is not None:
        await bot.send_message(callback.message.chat.id, text, reply_markup=markup)


def create_router() -> Router:
    router = Router(name="block")
    router.message.register(cmd_block, Command("block"))
    router.message.register(cmd_unblock, Command("unblock"))
    router.message.register(cmd_blocked, Command("blocked"), flags=READ)  # reading the list: anyone allowed here
    # the first press only shows the choices; choosing one (DO) is a change: allowed users only
    router.callback_query.register(on_block_ask, BlockCb.filter(F.action == BlockAction.ASK), flags=READ)
    router.callback_query.register(on_block_choice, BlockCb.filter(F.action == BlockAction.DO))
    return router
