"""Longs found on the exchange that the service did not open (``adopt_positions``), and what became of them.

One row per long and question: ``asked`` (Adopt / Ignore buttons sent; the token makes them single-use, and a
restart keeps them valid), ``left`` (not asked: ``adopt_positions = "none"``, or no Telegram to ask on),
``ignored`` (someone answered Ignore), ``adopted`` (it became position ``position_id``), ``gone`` (it left the
exchange before being adopted). At most one live row (asked, left, ignored) per symbol.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from storage._sql import check_ms, check_symbol, check_text, fetch_all, fetch_one
from storage.db import Database


class AdoptionStatus(StrEnum):
    ASKED = "asked"
    LEFT = "left"
    IGNORED = "ignored"
    ADOPTED = "adopted"
    GONE = "gone"

    @property
    def live(self) -> bool:
        """The long is still on the exchange, not managed by the service."""
        return self in LIVE


LIVE = frozenset({AdoptionStatus.ASKED, AdoptionStatus.LEFT, AdoptionStatus.IGNORED})
_LIVE_SQL = "('asked','left','ignored')"
_COLUMNS = "id, symbol, qty, entry_price, token, status, created_at_ms, answered_at_ms, answered_by, position_id"


@dataclass(frozen=True, slots=True)
class AdoptionRequest:
    id: int
    symbol: str
    qty: Decimal  # as first found
    entry_price: Decimal
    token: str
    status: AdoptionStatus
    created_at_ms: int
    answered_at_ms: int | None = None
    answered_by: str | None = None
    position_id: int | None = None


def _row(r: sqlite3.Row) -> AdoptionRequest:
    return AdoptionRequest(
        id=int(r["id"]),
        symbol=str(r["symbol"]),
        qty=Decimal(r["qty"]),
        entry_price=Decimal(r["entry_price"]),
        token=str(r["token"]),
        status=AdoptionStatus(r["status"]),
        created_at_ms=int(r["created_at_ms"]),
        answered_at_ms=r["answered_at_ms"],
        answered_by=r["answered_by"],
        position_id=r["position_id"],
    )


class AdoptionRequests:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def create(
        self, symbol: str, qty: Decimal, entry_price: Decimal, *, token: str, status: AdoptionStatus, now_ms: int
    ) -> AdoptionRequest:
        if not AdoptionStatus(status).live:
            raise ValueError(f"a new adoption row is asked, left or ignored, not {status}")
        cur = self._conn.execute(
            "INSERT INTO adoption_requests (symbol, qty, entry_price, token, status, created_at_ms) "
            "VALUES (?,?,?,?,?,?)",
            (check_symbol(symbol), str(qty), str(entry_price), check_text(token, "token"), status.value,
             check_ms(now_ms)),
        )  # fmt: skip
        found = self.get(int(cur.lastrowid or 0))
        assert found is not None
        return found

    def get(self, request_id: int) -> AdoptionRequest | None:
        r = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM adoption_requests WHERE id = ?", (request_id,))
        return _row(r) if r is not None else None

    def by_token(self, token: str) -> AdoptionRequest | None:
        r = fetch_one(self._conn, f"SELECT {_COLUMNS} FROM adoption_requests WHERE token = ?", (token,))
        return _row(r) if r is not None else None

    def live(self) -> list[AdoptionRequest]:
        rows = fetch_all(
            self._conn, f"SELECT {_COLUMNS} FROM adoption_requests WHERE status IN {_LIVE_SQL} ORDER BY id"
        )
        return [_row(r) for r in rows]

    def live_for(self, symbol: str) -> AdoptionRequest | None:
        r = fetch_one(
            self._conn,
            f"SELECT {_COLUMNS} FROM adoption_requests WHERE symbol = ? AND status IN {_LIVE_SQL}",
            (symbol,),
        )
        return _row(r) if r is not None else None

    def move(
        self,
        request_id: int,
        frm: frozenset[AdoptionStatus],
        to: AdoptionStatus,
        *,
        actor: str,
        now_ms: int,
        position_id: int | None = None,
    ) -> bool:
        """``frm`` -> ``to`` in one statement: True only for the caller that made the change (an answer is
        single-use: two taps processed at once cannot both pass)."""
        placeholders = ",".join("?" for _ in frm)
        cur = self._conn.execute(
            f"UPDATE adoption_requests SET status = ?, answered_by = ?, answered_at_ms = ?, "
            f"position_id = COALESCE(?, position_id) WHERE id = ? AND status IN ({placeholders})",
            (AdoptionStatus(to).value, check_text(actor, "actor"), check_ms(now_ms), position_id, request_id,
             *(AdoptionStatus(s).value for s in frm)),
        )  # fmt: skip
        return cur.rowcount == 1
