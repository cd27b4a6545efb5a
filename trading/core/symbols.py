"""Symbols as users type them -> Binance USD-M symbol names (pure): the one normalisation.

``btc``, ``BTC``, ``btcusdt``, ``eth/usdt``, ``sol-usdt`` -> ``BTCUSDT``, ``ETHUSDT``, ``SOLUSDT``: USDT-margined
perpetuals only, so a bare base asset gets the quote appended. Anything that cannot be a symbol is None,
never a guess.
"""

from __future__ import annotations

import re

QUOTE = "USDT"
MAX_SYMBOL_LEN = 30
# Letters (any script: Binance lists a few non-Latin tickers) and digits; nothing else.
_SYMBOL_RE = re.compile(r"^[^\W_]+$")
_SEPARATORS = re.compile(r"[/\-_ ]")


def normalize_symbol(raw: str | None) -> str | None:
    """``btc`` -> ``BTCUSDT``, ``eth/usdt`` -> ``ETHUSDT``; ``None`` when it cannot be a symbol."""
    if raw is None:
        return None
    s = _SEPARATORS.sub("", raw.strip()).upper()
    if not s or len(s) > MAX_SYMBOL_LEN or not _SYMBOL_RE.match(s):
        return None
    return s if s.endswith(QUOTE) and s != QUOTE else s + QUOTE
