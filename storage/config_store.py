"""Strategy config overrides set at run time (``/config set``), with their history.

Values are stored as JSON; the caller validates them (``StrategyConfig.with_value``)
before ``set`` and re-applies ``overrides()`` over the file config at start.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any

from storage._sql import check_limit, check_ms, check_text, fetch_all
from storage.audit import AuditLog
from storage.codec import to_json
from storage.db import Database

_KEY = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True, slots=True)
class ConfigHistoryRow:
    id: int
    ts_ms: int
    actor: str
    key: str
    old: Any
    new: Any  # None when the override was removed (back to the file/SPEC value)


class ConfigStore:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn = db.conn
        self._audit = AuditLog(db)

    def overrides(self) -> dict[str, Any]:
        """key (dotted for nested values, e.g. ``stop_loss_by_stage.initial``) -> value."""
        rows = self._conn.execute("SELECT key, value FROM config_overrides ORDER BY key").fetchall()
        return {k: json.loads(v) for k, v in rows}

    def set(self, key: str, old: Any, new: Any, actor: str, ts_ms: int) -> ConfigHistoryRow:
        """Upsert the override, add a history row and an audit row: one transaction."""
        _check_key(key)
        check_text(actor, "actor")
        check_ms(ts_ms, "ts_ms")
        new_json = _value_json(new)
        with self._db.transaction():
            self._conn.execute(
                "INSERT INTO config_overrides (key, value, actor, updated_at_ms) VALUES (?,?,?,?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value, actor = excluded.actor, "
                "updated_at_ms = excluded.updated_at_ms",
                (key, new_json, actor, ts_ms),
            )
            row_id = self._history(ts_ms, actor, key, old, new)
            self._audit.add(actor, "config.set", before={key: old}, after={key: new}, ts_ms=ts_ms)
        return ConfigHistoryRow(row_id, ts_ms, actor, key, json.loads(_value_json(old)), json.loads(new_json))

    def unset(self, key: str, actor: str, ts_ms: int) -> bool:
        """Drop an override (back to the file/SPEC value). False when there was none."""
        _check_key(key)
        check_text(actor, "actor")
        check_ms(ts_ms, "ts_ms")
        with self._db.transaction():
            row = self._conn.execute("SELECT value FROM config_overrides WHERE key = ?", (key,)).fetchone()
            if row is None:
                return False
            old = json.loads(row[0])
            self._conn.execute("DELETE FROM config_overrides WHERE key = ?", (key,))
            self._history(ts_ms, actor, key, old, None)
            self._audit.add(actor, "config.unset", before={key: old}, after=None, ts_ms=ts_ms)
        return True

    def history(self, limit: int = 20) -> list[ConfigHistoryRow]:
        """Newest first."""
        rows = fetch_all(
            self._conn, "SELECT * FROM config_history ORDER BY ts_ms DESC, id DESC LIMIT ?", (check_limit(limit),)
        )
        return [_row(r) for r in rows]

    def _history(self, ts_ms: int, actor: str, key: str, old: Any, new: Any) -> int:
        cur = self._conn.execute(
            "INSERT INTO config_history (ts_ms, actor, key, old, new) VALUES (?,?,?,?,?)",
            (ts_ms, actor, key, _value_json(old), _value_json(new)),
        )
        return int(cur.lastrowid or 0)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"config key must look like 'leverage' or 'stop_loss_by_stage.initial', got {key!r}")


def _value_json(value: Any) -> str:
    text = to_json(value)
    return "null" if text is None else text


def _row(row: sqlite3.Row) -> ConfigHistoryRow:
    return ConfigHistoryRow(
        id=row["id"],
        ts_ms=row["ts_ms"],
        actor=row["actor"],
        key=row["key"],
        old=json.loads(row["old"]) if row["old"] is not None else None,
        new=json.loads(row["new"]) if row["new"] is not None else None,
    )
