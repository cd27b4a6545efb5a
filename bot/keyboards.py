"""Inline keyboards; every label goes through gettext (built inside the chat's locale)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import ConfirmCb, ConfirmKind, PosAction, PositionsCb
from bot.i18n import _
from trading.views import PositionView


def _button(text: str, data: PositionsCb | ConfirmCb) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def positions_keyboard(shown: Sequence[PositionView], *, page: int, pages: int) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    for p in shown:
        rows.append(
            [
                _button(
                    _("❌ Exit {symbol}").format(symbol=p.symbol), PositionsCb(action=PosAction.EXIT, symbol=p.symbol)
                ),
                _button(_("🔎 Details"), PositionsCb(action=PosAction.DETAILS, symbol=p.symbol, page=page)),
            ]
        )
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(_button(_("◀ Previous"), PositionsCb(action=PosAction.PAGE, page=page - 1)))
        if page < pages - 1:
            nav.append(_button(_("Next ▶"), PositionsCb(action=PosAction.PAGE, page=page + 1)))
        rows.append(nav)
    rows.append([_button(_("🔄 Refresh"), PositionsCb(action=PosAction.REFRESH, page=page))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def details_keyboard(symbol: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [_button(_("❌ Exit {symbol}").format(symbol=symbol), PositionsCb(action=PosAction.EXIT, symbol=symbol))]
        ]
    )


def confirm_keyboard(kind: ConfirmKind, token: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(_("✅ Yes"), ConfirmCb(kind=kind, token=token, yes=True)),
                _button(_("✖ No"), ConfirmCb(kind=kind, token=token, yes=False)),
            ]
        ]
    )
