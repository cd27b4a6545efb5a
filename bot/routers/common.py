"""Small helpers shared by the routers: long replies, harmless Telegram errors, confirmation answers."""

from __future__ import annotations

import logging

from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message

from bot.callbacks import ConfirmCb
from bot.confirmations import ConfirmationStore, Outcome, Pending
from bot.formatting import esc, split_message, truncate
from bot.i18n import _

log = logging.getLogger(__name__)


def is_not_modified(exc: TelegramBadRequest) -> bool:
    return "message is not modified" in exc.message


def is_query_too_old(exc: TelegramBadRequest) -> bool:
    text = exc.message.lower()
    return "query is too old" in text or "query id is invalid" in text


async def reply_long(message: Message, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> Message:
    """Answer in as many messages as the 4,096-character limit needs; buttons go under the last one."""
    chunks = split_message(text)
    sent = message
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        sent = await message.answer(chunk, reply_markup=reply_markup if last else None)
    return sent


async def safe_edit(message: Message, text: str, reply_markup: InlineKeyboardMarkup | None = None) -> bool:
    """Edit in place; "message is not modified" (same text and buttons) is not an error. False when unchanged."""
    try:
        await message.edit_text(split_message(text)[0], reply_markup=reply_markup)
    except TelegramBadRequest as exc:
        if is_not_modified(exc):
            return False
        raise
    return True


async def safe_answer(callback: CallbackQuery, text: str | None = None, *, alert: bool = False) -> None:
    """Answer a button press; a query that is too old to answer is harmless (the action itself went on)."""
    try:
        await callback.answer(text, show_alert=alert)
    except TelegramBadRequest as exc:
        if not is_query_too_old(exc):
            raise
        log.info("callback query %s too old to answer", callback.id)


def outcome_text(outcome: Outcome) -> str:
    return {
        Outcome.NOT_FOUND: _("This button is no longer valid."),
        Outcome.WRONG_USER: _("Only the person who asked can answer this."),
        Outcome.ALREADY_DONE: _("Already done."),
        Outcome.CANCELLED: _("Already cancelled."),
        Outcome.EXPIRED: _("Expired: nothing was done."),
    }.get(outcome, "")


def bad_symbol_text(raw: str) -> str:
    return _("{text} is not a symbol. Write it like btc or BTCUSDT.").format(
        text=f"<code>{esc(truncate(raw, 40))}</code>"
    )


async def take_confirmation(
    callback: CallbackQuery,
    callback_data: ConfirmCb,
    confirmations: ConfirmationStore,
    *,
    cancelled_text: str,
    expired_text: str,
) -> Pending | None:
    """A Yes/No press: the confirmation when this Yes may go ahead (claimed: single use, this user, in time);
    None after answering the press (No, expired, someone else's, already done)."""
    user_id = callback.from_user.id
    message = callback.message if isinstance(callback.message, Message) else None
    if not callback_data.yes:
        outcome, _item = confirmations.cancel(callback_data.token, user_id)
        if outcome is Outcome.OK:
            await safe_answer(callback)
            if message is not None:
                await safe_edit(message, cancelled_text)
        else:
            await safe_answer(callback, outcome_text(outcome), alert=outcome is Outcome.WRONG_USER)
        return None
    outcome, item = confirmations.claim(callback_data.token, user_id)
    if outcome is not Outcome.OK or item is None:
        await safe_answer(callback, outcome_text(outcome), alert=outcome is Outcome.WRONG_USER)
        if outcome is Outcome.EXPIRED and message is not None:
            await safe_edit(message, expired_text)
        return None
    return item
