"""The audit log (order-safety rule 7): when, who, what, before/after. Append-only, kept by reset."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from storage._sql import check_limit, check_ms, check_text, fetch_all
from storage.codec import from_json, to_json
from storage.db import Database

SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    ts_ms: int
    actor: str  # "system", "cli", or a Telegram user such as "tg:12345"
    action: str
    symbol: str | None
    before: Any
    after: Any


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def add(
        self, actor: str, action: str, *, symbol: str | None = None, before: Any = None, after: Any = None, ts_ms: int
    ) -> int:
        """One row; ``before``/``after`` are stored as JSON (Decimals as strings, dataclasses as objects)."""
        cur = self._conn.execute(
            "INSERT INTO audit_log (ts_ms, actor, action, symbol, before, after) VALUES (?,?,?,?,?,?)",
            (
                check_ms(ts_ms, "ts_ms"),
                check_text(actor, "actor"),
                check_text(action, "action"),
                symbol,
                to_json(before),
                to_json(after),
            ),
        )
        return int(cur.lastrowid or 0)

    def recent(
        self, limit: int = 50, *, action: str | None = None, actor: str | None = None, symbol: str | None = None
    ) -> list[AuditRow]:
        """Newest first, optionally only one action / actor / symbol."""
        rows = fetch_all(
            self._conn,
            "SELECT * FROM audit_log WHERE action = coalesce(?, action) AND actor = coalesce(?, actor) "
            "AND (? IS NULL OR symbol = ?) ORDER BY ts_ms DESC, id DESC LIMIT ?",
            (action, actor, symbol, symbol, check_limit(limit)),
        )
        return [_row(r) for r in rows]

    def count_since(self, ts_ms: int, action_prefix: str | None = None) -> int:
        """Rows at or after ``ts_ms``, optionally only actions starting with ``action_prefix``."""
        if action_prefix:
            # substr() instead of LIKE: '_' and '%' in a prefix are literal characters here.
            row = self._conn.execute(
                "SELECT count(*) FROM audit_log WHERE ts_ms >= ? AND substr(action, 1, ?) = ?",
                (ts_ms, len(action_prefix), action_prefix),
            ).fetchone()
        else:
            row = self._conn.execute("SELECT count(*) FROM audit_log WHERE ts_ms >= ?", (ts_ms,)).fetchone()
        return int(row[0])


def _row(row: sqlite3.Row) -> AuditRow:
    return AuditRow(
        id=row["id"],
        ts_ms=row["ts_ms"],
        actor=row["actor"],
        action=row["action"],
        symbol=row["symbol"],
        before=from_json(row["before"]),
        after=from_json(row["after"]),
    )
