"""Parsing of command arguments typed in Telegram (pure)."""

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


def split_args(args: str | None) -> list[str]:
    return args.split() if args else []


def parse_days(raw: str | None, *, default: int = 7, max_days: int = 365) -> int | None:
    """Days for /report: ``None`` when given but not a whole number in 1..max_days."""
    if raw is None or not raw.strip():
        return default
    try:
        days = int(raw.strip())
    except ValueError:
        return None
    return days if 1 <= days <= max_days else None
