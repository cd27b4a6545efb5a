"""Small helpers shared by the repositories."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any


def fetch_all(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
    # Row factory per cursor: the shared connection keeps returning plain tuples to other users.
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, params).fetchall()


def fetch_one(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
    cur = conn.cursor()
    cur.row_factory = sqlite3.Row
    return cur.execute(sql, params).fetchone()


def constraint_kind(exc: sqlite3.IntegrityError) -> str:
    """'unique', 'foreignkey', 'check', 'notnull', 'trigger' or 'other', from SQLite's extended code."""
    code = getattr(exc, "sqlite_errorcode", None)
    by_code = {1555: "unique", 2067: "unique", 787: "foreignkey", 275: "check", 1299: "notnull", 1811: "trigger"}
    if isinstance(code, int) and code in by_code:
        return by_code[code]
    text = str(exc)
    for needle, kind in (
        ("UNIQUE", "unique"),
        ("FOREIGN KEY", "foreignkey"),
        ("CHECK", "check"),
        ("NOT NULL", "notnull"),
    ):
        if needle in text:
            return kind
    return "other"


def check_text(value: object, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def check_symbol(symbol: object) -> str:
    if not isinstance(symbol, str) or not symbol or symbol != symbol.strip() or " " in symbol:
        raise ValueError(f"symbol must be a non-empty string without spaces, got {symbol!r}")
    return symbol


def check_ms(value: object, what: str = "time") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a non-negative integer of ms since the epoch, got {value!r}")
    return value


def check_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return limit
