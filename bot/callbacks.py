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
    ADOPT = "a"  # a position not managed: asks to confirm the adoption


class PositionsCb(CallbackData, prefix="pos"):
    """Buttons under /positions: exit or details of one symbol, refresh or turn the page."""

    action: PosAction
    symbol: str = ""
    page: int = 0


class ConfirmKind(StrEnum):
    EXIT = "x"
    CONFIG = "c"
    ADOPT = "a"


class ConfirmCb(CallbackData, prefix="cf"):
    """Yes/No under a confirmation question (/exit, /config set); the kind routes it to its router."""

    kind: ConfirmKind
    token: str
    yes: bool


class ChartCb(CallbackData, prefix="ch"):
    """📈 Chart under a position, a trade alert or a chart (another interval). Only shows: never changes anything.

    ``position`` (an alert's position id, 0 = whatever is held) draws that position's fills even once it closed.
    """

    symbol: str
    interval: str = "3m"
    position: int = 0


class BlockAction(StrEnum):
    ASK = "a"  # show the choices (changes nothing)
    DO = "d"  # block for ``hours`` (0 = permanently): a change


class BlockCb(CallbackData, prefix="bl"):
    """🚫 Block under an entry alert or a position, and the duration chosen after it."""

    action: BlockAction
    symbol: str
    hours: int = 0


class AdoptCb(CallbackData, prefix="ad"):
    """Adopt / Ignore under the alert about a long SurgeDCA did not open. ``token`` names the question, kept in
    the database (the answer is single-use, and still valid after a restart)."""

    token: str
    adopt: bool
