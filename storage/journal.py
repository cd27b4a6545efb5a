"""The orders journal (order-safety rules 1-3).

Every order is inserted as ``pending`` *before* it is sent, by exactly one
INSERT (the only database work on the price-to-order path). Its fate is
written as the exchange reports it; on start, ``unresolved()`` lists what must
be asked of the exchange before anything is sent again.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from storage._sql import check_limit, check_ms, constraint_kind, fetch_all, fetch_one
from storage.codec import dec_text, from_json, opt_dec_text, to_dec, to_json
from storage.db import Database
from storage.errors import DuplicateClientOrderId, InvalidTransition, PositionNotFound, UnknownOrder
from trading.core.order_state import OrderKind, OrderState, order_transition_allowed

SIDES = frozenset({"BUY", "SELL"})
# Binance's rule for newClientOrderId.
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_FINAL_SQL = "(" + ",".join(f"'{s.value}'" for s in OrderState if s.final) + ")"
_UNRESOLVED_SQL = "(" + ",".join(f"'{s.value}'" for s in OrderState if s.unresolved) + ")"

_INSERT = (
    "INSERT INTO orders (client_order_id, position_id, symbol, action, kind, side, qty, reduce_only, "
    f"trigger_price, status, attempts, created_at_ms, updated_at_ms) VALUES (?,?,?,?,?,?,?,?,?,'{OrderState.PENDING}',"
    "1,?,?)"
)


@dataclass(frozen=True, slots=True)
class JournalRow:
    client_order_id: str
    position_id: int | None
    symbol: str
    action: str
    kind: OrderKind
    side: str
    qty: Decimal
    reduce_only: bool
    trigger_price: Decimal | None
    status: OrderState
    exchange_order_id: str | None
    filled_qty: Decimal | None
    avg_price: Decimal | None
    fee: Decimal | None
    error_code: int | str | None
    error: str | None
    raw: Any  # the exchange's reply, parsed from JSON
    attempts: int
    created_at_ms: int
    updated_at_ms: int

    @property
    def resolved(self) -> bool:
        return self.status.final


class OrdersJournal:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def insert_pending(
        self,
        client_order_id: str,
        *,
        position_id: int | None,
        symbol: str,
        action: str,
        kind: OrderKind,
        side: str,
        qty: Decimal,
        reduce_only: bool,
        trigger_price: Decimal | None = None,
        now_ms: int,
    ) -> None:
        """Exactly one INSERT (autocommit, or part of the caller's transaction). ``attempts`` starts at 1."""
        try:
            kind = OrderKind(kind)
        except ValueError:
            raise ValueError(f"kind must be one of {[k.value for k in OrderKind]}, got {kind!r}") from None
        if side not in SIDES:
            raise ValueError(f"side must be BUY or SELL, got {side!r}")
        if not client_order_id or not _CLIENT_ID.match(client_order_id):
            raise ValueError(f"client order id must match {_CLIENT_ID.pattern}, got {client_order_id!r}")
        try:
            self._conn.execute(
                _INSERT,
                (
                    client_order_id,
                    position_id,
                    symbol,
                    action,
                    kind.value,
                    side,
                    dec_text(qty, "qty"),
                    1 if reduce_only else 0,
                    None if trigger_price is None else dec_text(trigger_price, "trigger_price"),
                    now_ms,
                    now_ms,
                ),
            )
        except sqlite3.IntegrityError as exc:
            kind_ = constraint_kind(exc)
            if kind_ == "unique":
                raise DuplicateClientOrderId(
                    f"client order id {client_order_id} is already in the orders journal; never reuse one "
                    "(ask the exchange about the first order instead)"
                ) from None
            if kind_ == "foreignkey":
                raise PositionNotFound(
                    f"order {client_order_id} refers to position {position_id}, which does not exist"
                ) from None
            raise ValueError(f"order {client_order_id} refused by the journal: {exc}") from None

    def mark(
        self,
        client_order_id: str,
        status: OrderState,
        *,
        now_ms: int,
        exchange_order_id: str | int | None = None,
        filled_qty: Decimal | None = None,
        avg_price: Decimal | None = None,
        fee: Decimal | None = None,
        error_code: int | str | None = None,
        error: str | None = None,
        raw: Any = None,
    ) -> bool:
        """Record what became of an order; fields left None keep their value.

        Only the moves of ``ORDER_TRANSITIONS`` are made. A final status (filled, rejected, canceled,
        expired) is never left: a late "sent" arriving after the fill returns False and changes nothing
        (the SQL refuses it too, so a stale read cannot slip one through). Any other move the table does
        not allow raises ``InvalidTransition``; ``UnknownOrder`` for an id not in the journal.
        """
        status = OrderState(status)
        row = self._conn.execute("SELECT status FROM orders WHERE client_order_id = ?", (client_order_id,)).fetchone()
        if row is None:
            raise UnknownOrder(f"no order {client_order_id} in the journal")
        old = OrderState(row[0])
        if old.final and not status.final:
            return False
        if not order_transition_allowed(old, status):
            if old.final:
                return False  # a second final verdict (e.g. canceled after filled): the first one stands
            raise InvalidTransition(f"order {client_order_id}: {old.value} -> {status.value} is not allowed")
        params = {
            "id": client_order_id,
            "status": status.value,
            "now": check_ms(now_ms, "now_ms"),
            "exchange_order_id": None if exchange_order_id is None else str(exchange_order_id),
            "filled_qty": opt_dec_text(filled_qty, "filled_qty"),
            "avg_price": opt_dec_text(avg_price, "avg_price"),
            "fee": opt_dec_text(fee, "fee"),
            "error_code": error_code,
            "error": error,
            "raw": _raw_json(raw),
        }
        cur = self._conn.execute(
            "UPDATE orders SET status = :status, updated_at_ms = :now, "
            "exchange_order_id = coalesce(:exchange_order_id, exchange_order_id), "
            "filled_qty = coalesce(:filled_qty, filled_qty), avg_price = coalesce(:avg_price, avg_price), "
            "fee = coalesce(:fee, fee), error_code = coalesce(:error_code, error_code), "
            "error = coalesce(:error, error), raw = coalesce(:raw, raw) "
            f"WHERE client_order_id = :id AND (status = :status OR status NOT IN {_FINAL_SQL})",
            params,
        )
        return cur.rowcount == 1

    def bump_attempt(self, client_order_id: str, now_ms: int) -> int:
        """One more send of the same order (only after the exchange said it does not have it). Returns attempts."""
        row = self._conn.execute(
            "UPDATE orders SET attempts = attempts + 1, updated_at_ms = ? WHERE client_order_id = ? RETURNING attempts",
            (check_ms(now_ms, "now_ms"), client_order_id),
        ).fetchone()
        if row is None:
            raise UnknownOrder(f"no order {client_order_id} in the journal")
        return int(row[0])

    def get(self, client_order_id: str) -> JournalRow | None:
        row = fetch_one(self._conn, "SELECT * FROM orders WHERE client_order_id = ?", (client_order_id,))
        return _row(row) if row is not None else None

    def unresolved(self) -> list[JournalRow]:
        """Orders whose fate is not known yet (pending, sent, unknown), oldest first."""
        rows = fetch_all(
            self._conn,
            f"SELECT * FROM orders WHERE status IN {_UNRESOLVED_SQL} ORDER BY created_at_ms, rowid",
        )
        return [_row(r) for r in rows]

    def for_position(self, position_id: int) -> list[JournalRow]:
        rows = fetch_all(
            self._conn, "SELECT * FROM orders WHERE position_id = ? ORDER BY created_at_ms, rowid", (position_id,)
        )
        return [_row(r) for r in rows]

    def recent(self, limit: int = 50) -> list[JournalRow]:
        rows = fetch_all(
            self._conn, "SELECT * FROM orders ORDER BY created_at_ms DESC, rowid DESC LIMIT ?", (check_limit(limit),)
        )
        return [_row(r) for r in rows]


def _raw_json(raw: Any) -> str | None:
    if raw is None:
        return None
    if isinstance(raw, (str, bytes)):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        try:
            json.loads(text)
        except ValueError:
            return json.dumps(text)  # a non-JSON body is kept as a JSON string
        return text
    return to_json(raw)


def _row(row: sqlite3.Row) -> JournalRow:
    return JournalRow(
        client_order_id=row["client_order_id"],
        position_id=row["position_id"],
        symbol=row["symbol"],
        action=row["action"],
        kind=OrderKind(row["kind"]),
        side=row["side"],
        qty=Decimal(row["qty"]),
        reduce_only=bool(row["reduce_only"]),
        trigger_price=to_dec(row["trigger_price"]),
        status=OrderState(row["status"]),
        exchange_order_id=row["exchange_order_id"],
        filled_qty=to_dec(row["filled_qty"]),
        avg_price=to_dec(row["avg_price"]),
        fee=to_dec(row["fee"]),
        error_code=row["error_code"],
        error=row["error"],
        raw=from_json(row["raw"]),
        attempts=row["attempts"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
    )
