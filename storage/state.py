"""Per-symbol cooldowns and the service's key-value state (pause flag, chat preferences...)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from storage._sql import check_ms, check_symbol, check_text
from storage.codec import to_json
from storage.db import Database

PAUSED_KEY = "paused"
INSTANCE_TAG_KEY = "instance_tag"  # in every client order id of this database (trading/orders.py)
BINDING_KEY = "binding"  # the mode, exchange environment and account the database belongs to (trading.binding)


@dataclass(frozen=True, slots=True)
class Cooldown:
    symbol: str
    until_ms: int
    reason: str


class Cooldowns:
    """After a close a symbol may not be entered again until ``until_ms`` (SPEC 5)."""

    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def set(self, symbol: str, until_ms: int, reason: str) -> None:
        """Replaces the symbol's cooldown (a later close decides)."""
        self._conn.execute(
            "INSERT INTO cooldowns (symbol, until_ms, reason) VALUES (?,?,?) "
            "ON CONFLICT(symbol) DO UPDATE SET until_ms = excluded.until_ms, reason = excluded.reason",
            (check_symbol(symbol), check_ms(until_ms, "until_ms"), check_text(_text(reason), "reason")),
        )

    def active(self, now_ms: int) -> dict[str, int]:
        """symbol -> until_ms for the cooldowns still running at ``now_ms``."""
        rows = self._conn.execute(
            "SELECT symbol, until_ms FROM cooldowns WHERE until_ms > ? ORDER BY symbol", (now_ms,)
        ).fetchall()
        return {s: int(u) for s, u in rows}

    def active_details(self, now_ms: int) -> list[Cooldown]:
        rows = self._conn.execute(
            "SELECT symbol, until_ms, reason FROM cooldowns WHERE until_ms > ? ORDER BY until_ms", (now_ms,)
        ).fetchall()
        return [Cooldown(s, int(u), r) for s, u, r in rows]

    def get(self, symbol: str) -> int | None:
        """The stored end of the symbol's cooldown, even if already past (compare with now)."""
        row = self._conn.execute("SELECT until_ms FROM cooldowns WHERE symbol = ?", (symbol,)).fetchone()
        return int(row[0]) if row is not None else None

    def clear(self, symbol: str) -> bool:
        return self._conn.execute("DELETE FROM cooldowns WHERE symbol = ?", (symbol,)).rowcount > 0

    def purge(self, now_ms: int) -> int:
        """Forget cooldowns that ended; returns how many."""
        return self._conn.execute("DELETE FROM cooldowns WHERE until_ms <= ?", (now_ms,)).rowcount


class SystemState:
    """Small JSON values by key; survives restarts (``surgedca reset`` clears it)."""

    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def get(self, key: str, default: Any = None) -> Any:
        row = self._conn.execute("SELECT value FROM system_state WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] is None:
            return default
        return json.loads(row[0])

    def set(self, key: str, value: Any, now_ms: int | None = None) -> None:
        self._conn.execute(
            "INSERT INTO system_state (key, value, updated_at_ms) VALUES (?,?,?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at_ms = excluded.updated_at_ms",
            (check_text(key, "key"), to_json(value), now_ms),
        )

    def delete(self, key: str) -> bool:
        return self._conn.execute("DELETE FROM system_state WHERE key = ?", (key,)).rowcount > 0

    def items(self) -> dict[str, Any]:
        rows = self._conn.execute("SELECT key, value FROM system_state ORDER BY key").fetchall()
        return {k: (json.loads(v) if v is not None else None) for k, v in rows}

    @property
    def paused(self) -> bool:
        return bool(self.get(PAUSED_KEY, False))

    @paused.setter
    def paused(self, value: bool) -> None:
        self.set(PAUSED_KEY, bool(value))


def _text(value: object) -> object:
    return getattr(value, "value", value)
