"""Parsing of command arguments typed in Telegram (pure); symbols: ``trading.core.symbols.normalize_symbol``."""

from __future__ import annotations


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
