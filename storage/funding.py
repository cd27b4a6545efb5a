"""Funding payments: one row per payment of a position, written once, never updated.

``amount`` keeps Binance's sign (its income history's): negative when the account paid
funding, positive when it received it. A trade's result is sells - buys - fees + its
funding. ``key`` is the payment's id at the exchange (``tranId``): the unique key that
keeps a payment seen twice from being counted twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal

from storage._sql import check_ms, check_symbol, check_text, constraint_kind, fetch_all
from storage.codec import dec_text
from storage.db import Database
from storage.errors import DuplicateFunding, PositionNotFound
from trading.core.models import ZERO


@dataclass(frozen=True, slots=True)
class FundingRecord:
    id: int
    position_id: int
    symbol: str
    key: str
    amount: Decimal  # Binance's sign: < 0 paid, > 0 received
    asset: str
    ts_ms: int  # the funding time (the income row's time)
    recorded_at_ms: int


class FundingRepo:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def add(  # noqa: PLR0917 (the payment's facts in order)
        self,
        position_id: int,
        symbol: str,
        key: str,
        amount: Decimal,
        ts_ms: int,
        recorded_at_ms: int,
        asset: str = "USDT",
    ) -> int:
        """Record one payment; raises ``DuplicateFunding`` when ``key`` is already there."""
        try:
            cur = self._conn.execute(
                "INSERT INTO funding (position_id, symbol, key, amount, asset, ts_ms, recorded_at_ms) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    position_id,
                    check_symbol(symbol),
                    check_text(key, "funding key"),
                    dec_text(amount, "amount"),
                    check_text(asset, "asset"),
                    check_ms(ts_ms, "ts_ms"),
                    check_ms(recorded_at_ms, "recorded_at_ms"),
                ),
            )
        except sqlite3.IntegrityError as exc:
            kind = constraint_kind(exc)
            if kind == "unique":
                raise DuplicateFunding(f"funding payment {key} is already recorded") from None
            if kind == "foreignkey":
                raise PositionNotFound(f"cannot record funding {key}: no position {position_id}") from None
            raise
        return int(cur.lastrowid or 0)

    def exists(self, key: str) -> bool:
        return self._conn.execute("SELECT 1 FROM funding WHERE key = ?", (key,)).fetchone() is not None

    def for_position(self, position_id: int) -> list[FundingRecord]:
        rows = fetch_all(self._conn, "SELECT * FROM funding WHERE position_id = ? ORDER BY ts_ms, id", (position_id,))
        return [_record(r) for r in rows]

    def total(self, position_id: int) -> Decimal:
        """The position's funding so far, exact (Decimal, not SQL floats)."""
        rows = self._conn.execute("SELECT amount FROM funding WHERE position_id = ?", (position_id,)).fetchall()
        return sum((Decimal(r[0]) for r in rows), ZERO)

    def latest_times(self, symbol: str, n: int = 2) -> list[int]:
        """The times of the symbol's ``n`` latest payments, newest first."""
        rows = self._conn.execute(
            "SELECT ts_ms FROM funding WHERE symbol = ? ORDER BY ts_ms DESC LIMIT ?", (symbol, n)
        ).fetchall()
        return [int(r[0]) for r in rows]

    def between(self, since_ms: int, until_ms: int) -> list[FundingRecord]:
        """Payments with ``since_ms <= ts_ms < until_ms``, oldest first."""
        rows = fetch_all(
            self._conn, "SELECT * FROM funding WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms, id", (since_ms, until_ms)
        )
        return [_record(r) for r in rows]


def _record(row: sqlite3.Row) -> FundingRecord:
    return FundingRecord(
        id=row["id"],
        position_id=row["position_id"],
        symbol=row["symbol"],
        key=row["key"],
        amount=Decimal(row["amount"]),
        asset=row["asset"],
        ts_ms=row["ts_ms"],
        recorded_at_ms=row["recorded_at_ms"],
    )
