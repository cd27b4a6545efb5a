"""Timed symbol blocks (``/block SYMBOL HOURS``): no new entries on a symbol until ``until_ms``.

A timed block ends by itself: rows are compared with the clock, never deleted
by a timer (``purge`` only tidies up). The permanent blacklist is the strategy
key ``symbol_blacklist`` (config overrides), not this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage._sql import check_ms, check_symbol, check_text
from storage.db import Database


@dataclass(frozen=True, slots=True)
class SymbolBlock:
    symbol: str
    until_ms: int
    actor: str
    created_at_ms: int


class SymbolBlocks:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def set(self, symbol: str, until_ms: int, actor: str, ts_ms: int) -> None:
        """Replaces the symbol's block (the latest /block decides, longer or shorter)."""
        self._conn.execute(
            "INSERT INTO symbol_blocks (symbol, until_ms, actor, created_at_ms) VALUES (?,?,?,?) "
            "ON CONFLICT(symbol) DO UPDATE SET until_ms = excluded.until_ms, actor = excluded.actor, "
            "created_at_ms = excluded.created_at_ms",
            (check_symbol(symbol), check_ms(until_ms, "until_ms"), check_text(actor, "actor"), check_ms(ts_ms)),
        )

    def get(self, symbol: str, now_ms: int) -> SymbolBlock | None:
        """The symbol's block if it still runs at ``now_ms``."""
        row = self._conn.execute(
            "SELECT symbol, until_ms, actor, created_at_ms FROM symbol_blocks WHERE symbol = ? AND until_ms > ?",
            (symbol, now_ms),
        ).fetchone()
        return SymbolBlock(row[0], int(row[1]), row[2], int(row[3])) if row is not None else None

    def active(self, now_ms: int) -> list[SymbolBlock]:
        """Blocks still running at ``now_ms``, the soonest to end first."""
        rows = self._conn.execute(
            "SELECT symbol, until_ms, actor, created_at_ms FROM symbol_blocks WHERE until_ms > ? "
            "ORDER BY until_ms, symbol",
            (now_ms,),
        ).fetchall()
        return [SymbolBlock(s, int(u), a, int(c)) for s, u, a, c in rows]

    def clear(self, symbol: str) -> bool:
        return self._conn.execute("DELETE FROM symbol_blocks WHERE symbol = ?", (symbol,)).rowcount > 0

    def purge(self, now_ms: int) -> int:
        """Forget blocks that ended; returns how many."""
        return self._conn.execute("DELETE FROM symbol_blocks WHERE until_ms <= ?", (now_ms,)).rowcount
