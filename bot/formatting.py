"""Pure helpers for Telegram HTML text: escaping, numbers, durations, splitting.

Every dynamic value that reaches a message goes through :func:`esc` (or a
number formatter, whose output cannot contain markup).
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from trading.core.decimals import decimal_of

TELEGRAM_TEXT_LIMIT = 4096
TELEGRAM_CAPTION_LIMIT = 1024


def esc(value: Any) -> str:
    """HTML-escape anything for Telegram's HTML parse mode (quotes too: values may land in attributes)."""
    return html.escape(str(value), quote=True)


def _dec(value: Decimal | float | int) -> Decimal:
    if isinstance(value, Decimal):
        return value
    try:
        return decimal_of(value) if isinstance(value, float) else Decimal(value)
    except (InvalidOperation, ValueError):
        return Decimal("NaN")


def _plain(d: Decimal, places: int) -> str:
    """Fixed-point with thousands separators, trailing zeros of the fraction removed."""
    q = d.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP) if places >= 0 else d
    text = f"{q:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def fmt_price(value: Decimal | float | int | None) -> str:
    """Prices span 100,000 (BTC) to 0.000012 (meme coins): keep ~7 significant digits."""
    if value is None:
        return "—"
    d = _dec(value)
    if not d.is_finite():
        return "—"
    if d == 0:
        return "0"
    exponent = d.adjusted()  # 1234.5 -> 3, 0.00123 -> -3
    places = max(2, 6 - exponent) if exponent >= 0 else min(12, 6 - exponent)
    return _plain(d, places)


def fmt_qty(value: Decimal | float | int | None) -> str:
    """Quantities come rounded to the symbol's step: show them exactly (no float noise)."""
    if value is None:
        return "—"
    d = _dec(value)
    if not d.is_finite():
        return "—"
    return _plain(d, 8)


def fmt_usdt(value: Decimal | float | int | None, *, signed: bool = False) -> str:
    if value is None:
        return "—"
    d = _dec(value)
    if not d.is_finite():
        return "—"
    q = d.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    text = f"{q:,.2f}"
    if text == "-0.00":
        text = "0.00"
    if signed and q > 0:
        text = "+" + text
    return text


def fmt_pct(value: Decimal | float | int | None, *, signed: bool = False, places: int = 2) -> str:
    """A fraction as a percentage: 0.0341 -> 3.41%."""
    if value is None:
        return "—"
    d = _dec(value)
    if not d.is_finite():
        return "—"
    q = (d * 100).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    text = f"{q:,.{places}f}"
    if q == 0:
        text = f"{Decimal(0):.{places}f}"
    if signed and q > 0:
        text = "+" + text
    return text + "%"


def fmt_num(value: Any) -> str:
    """A config or indicator value: numbers compactly, booleans and text as they are (escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        d = _dec(value)
        if not d.is_finite():
            return esc(value)
        if d != 0 and abs(d) < Decimal("0.0001"):
            return f"{float(d):.4g}"
        return _plain(d, 6)
    if value is None:
        return "—"
    return esc(value)


def fmt_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover


def fmt_duration(seconds: float | None) -> str:
    """Compact and language-neutral: 3d 4h, 5h 12m, 4m 10s, 12s, 0.4s."""
    if seconds is None:
        return "—"
    s = max(0.0, float(seconds))
    if s < 10:
        return f"{s:.1f}s"
    total = int(s)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {secs}s"
    return f"{secs}s"


def fmt_time(ms: int | None) -> str:
    """UTC wall time of an epoch-ms instant: 2025-10-29 14:03 UTC."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def fmt_clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S UTC")


# ------------------------------------------------------------------ splitting
_TAG_RE = re.compile(r"<[^>]*>")
_ENTITY_RE = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);")


def _safe_cut(text: str, limit: int) -> int:
    """The largest cut <= limit that does not fall inside an HTML entity (``&amp;``)."""
    cut = limit
    amp = text.rfind("&", max(0, limit - 10), limit)
    if amp != -1:
        m = _ENTITY_RE.match(text, amp)
        if m and m.end() > limit:
            cut = amp
    return max(cut, 1)


def _line_pieces(line: str, limit: int) -> list[str]:
    if len(line) <= limit:
        return [line]
    rest = _TAG_RE.sub("", line)
    pieces = []
    while len(rest) > limit:
        cut = _safe_cut(rest, limit)
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    return pieces


def split_message(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Split on line boundaries into chunks of at most ``limit`` characters.

    Presenters keep every tag within one line, so each chunk is valid HTML.
    A single line longer than ``limit`` loses its tags (they could not be
    balanced across chunks) and is cut outside entities.
    """
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    current = ""
    for raw_line in text.split("\n"):
        pieces = _line_pieces(raw_line, limit)
        for piece in pieces[:-1]:  # whole chunks cut from an overlong line
            if current:
                chunks.append(current)
                current = ""
            chunks.append(piece)
        line = pieces[-1]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            chunks.append(current)
            current = line
        else:
            current = candidate
    if current.strip():
        chunks.append(current)
    return [c for c in chunks if c.strip()] or [text[:limit]]


def truncate(text: str, limit: int) -> str:
    """Plain text (not yet escaped) cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[: max(0, limit - 1)] + "…"
