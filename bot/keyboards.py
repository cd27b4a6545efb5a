"""Inline keyboards; every label goes through gettext (built inside the chat's locale)."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.callbacks import AdoptCb, BlockAction, BlockCb, ChartCb, ConfirmCb, ConfirmKind, PosAction, PositionsCb
from bot.i18n import _
from trading.core.chart import CHART_INTERVALS
from trading.views import NotManagedView, PositionView

BLOCK_CHOICES_H: tuple[int, ...] = (1, 24, 168)  # the Block button's durations; 0 = permanently


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def chart_button(symbol: str, *, position_id: int = 0) -> InlineKeyboardButton:
    return _button(_("📈 Chart"), ChartCb(symbol=symbol, position=position_id))


def block_button(symbol: str) -> InlineKeyboardButton:
    return _button(_("🚫 Block"), BlockCb(action=BlockAction.ASK, symbol=symbol))


def exit_button(symbol: str) -> InlineKeyboardButton:
    return _button(_("❌ Exit {symbol}").format(symbol=symbol), PositionsCb(action=PosAction.EXIT, symbol=symbol))


def adopt_button(symbol: str) -> InlineKeyboardButton:
    return _button(_("📥 Adopt {symbol}").format(symbol=symbol), PositionsCb(action=PosAction.ADOPT, symbol=symbol))


def adoption_keyboard(token: str) -> InlineKeyboardMarkup:
    """Under the question about a long SurgeDCA did not open."""
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(_("📥 Adopt"), AdoptCb(token=token, adopt=True)),
                _button(_("🙈 Ignore"), AdoptCb(token=token, adopt=False)),
            ]
        ]
    )


def positions_keyboard(
    shown: Sequence[PositionView], *, page: int, pages: int, not_managed: Sequence[NotManagedView] = ()
) -> InlineKeyboardMarkup:
    rows: list[list[InlineKeyboardButton]] = []
    for p in shown:
        rows.append(
            [
                exit_button(p.symbol),
                _button(_("🔎 Details"), PositionsCb(action=PosAction.DETAILS, symbol=p.symbol, page=page)),
            ]
        )
        rows.append([chart_button(p.symbol), block_button(p.symbol)])
    if pages > 1:
        nav = []
        if page > 0:
            nav.append(_button(_("◀ Previous"), PositionsCb(action=PosAction.PAGE, page=page - 1)))
        if page < pages - 1:
            nav.append(_button(_("Next ▶"), PositionsCb(action=PosAction.PAGE, page=page + 1)))
        rows.append(nav)
    rows += [[adopt_button(n.symbol)] for n in not_managed]
    rows.append([_button(_("🔄 Refresh"), PositionsCb(action=PosAction.REFRESH, page=page))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def details_keyboard(symbol: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[exit_button(symbol)], [chart_button(symbol), block_button(symbol)]])


def chart_keyboard(symbol: str, interval: str, *, held: bool, position_id: int = 0) -> InlineKeyboardMarkup:
    """Under a chart: the other intervals (the one shown marked), and Exit when the symbol is held."""
    intervals = [
        _button(f"• {iv}" if iv == interval else iv, ChartCb(symbol=symbol, interval=iv, position=position_id))
        for iv in CHART_INTERVALS
    ]
    rows = [intervals]
    if held:
        rows.append([exit_button(symbol)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def alert_keyboard(symbol: str, *, position_id: int, entry: bool) -> InlineKeyboardMarkup:
    """Under a trade alert: its chart; under an entry also Block (no more entries on this symbol)."""
    row = [chart_button(symbol, position_id=position_id)]
    if entry:
        row.append(block_button(symbol))
    return InlineKeyboardMarkup(inline_keyboard=[row])


def block_choices_keyboard(symbol: str, *, held: bool) -> InlineKeyboardMarkup:
    """How long to block ``symbol``; Exit too when it is held (it asks to confirm, as every exit)."""
    timed = [
        _button(
            _("{n} h").format(n=h) if h < 48 else _("{n} days").format(n=h // 24),
            BlockCb(action=BlockAction.DO, symbol=symbol, hours=h),
        )
        for h in BLOCK_CHOICES_H
    ]
    rows = [timed, [_button(_("Permanently"), BlockCb(action=BlockAction.DO, symbol=symbol, hours=0))]]
    if held:
        rows.append([exit_button(symbol)])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def exit_keyboard(symbol: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(inline_keyboard=[[exit_button(symbol)]])


def confirm_keyboard(kind: ConfirmKind, token: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(_("✅ Yes"), ConfirmCb(kind=kind, token=token, yes=True)),
                _button(_("✖ No"), ConfirmCb(kind=kind, token=token, yes=False)),
            ]
        ]
    )
