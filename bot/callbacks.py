"""Callback data of every inline button (Telegram caps it at 64 bytes).

Confirmations carry only a short random token: what is being confirmed,
for whom and until when stays server-side in ``bot.confirmations``, so a
button cannot be forged into a different action.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData

MAX_CALLBACK_BYTES = 64


class PosAction(StrEnum):
    EXIT = "x"
    DETAILS = "d"
    REFRESH = "r"
    PAGE = "p"


class PositionsCb(CallbackData, prefix="pos"):
    """Buttons under /positions: exit or details of one symbol, refresh or turn the page."""

    action: PosAction
    symbol: str = ""
    page: int = 0


class ConfirmKind(StrEnum):
    EXIT = "x"
    CONFIG = "c"


class ConfirmCb(CallbackData, prefix="cf"):
    """Yes/No under a confirmation question (/exit, /config set); the kind routes it to its router."""

    kind: ConfirmKind
    token: str
    yes: bool
