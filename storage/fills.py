"""Fills ("legs"): every execution of every position, buys and sells. Written once, never updated.

The unique key (client order id, trade id) is what keeps a fill that arrives
twice (stream and REST, or a replay after restart) from being applied twice.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from storage._sql import check_ms, check_text, constraint_kind, fetch_all
from storage.codec import dec_text, opt_dec_text, to_dec
from storage.db import Database
from storage.errors import DuplicateFill, PositionNotFound
from trading.core.models import ZERO, ExitReason, Fill, Stage

SIDES = ("BUY", "SELL")


@dataclass(frozen=True, slots=True)
class FillRecord:
    id: int
    position_id: int
    client_order_id: str
    trade_id: str  # "" when the fill is a whole order summed over its trades
    side: str  # BUY | SELL
    price: Decimal
    qty: Decimal
    fee: Decimal
    stage: Stage | None
    reason: str | None
    realized_pnl: Decimal | None
    ts_ms: int

    def to_fill(self) -> Fill:
        reason = None
        if self.reason is not None and self.reason in ExitReason._value2member_map_:
            reason = ExitReason(self.reason)
        return Fill(self.side, self.price, self.qty, self.fee, self.stage, reason, self.realized_pnl)


@dataclass(frozen=True, slots=True)
class FillTotals:
    bought: Decimal
    sold: Decimal
    fees: Decimal
    realized_pnl: Decimal  # sum over the sells that carry one


class FillsRepo:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def add(  # noqa: PLR0917 (the engine's call shape: the fill's facts in order)
        self,
        position_id: int,
        client_order_id: str,
        side: str,
        price: Decimal,
        qty: Decimal,
        fee: Decimal,
        ts_ms: int,
        *,
        stage: Stage | str | None = None,
        reason: ExitReason | str | None = None,
        realized_pnl: Decimal | None = None,
        trade_id: str | int = "",
    ) -> int:
        """Record one fill; raises ``DuplicateFill`` when (client_order_id, trade_id) is already there."""
        check_text(client_order_id, "client_order_id")
        side = side.upper() if isinstance(side, str) else side
        if side not in SIDES:
            raise ValueError(f"side must be BUY or SELL, got {side!r}")
        stage_text = Stage(stage).value if stage is not None else None
        reason_text = reason.value if isinstance(reason, Enum) else reason
        trade = str(trade_id)
        try:
            cur = self._conn.execute(
                "INSERT INTO fills (position_id, client_order_id, trade_id, side, price, qty, fee, stage, reason, "
                "realized_pnl, ts_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    position_id,
                    client_order_id,
                    trade,
                    side,
                    dec_text(price, "price"),
                    dec_text(qty, "qty"),
                    dec_text(fee, "fee"),
                    stage_text,
                    reason_text,
                    opt_dec_text(realized_pnl, "realized_pnl"),
                    check_ms(ts_ms, "ts_ms"),
                ),
            )
        except sqlite3.IntegrityError as exc:
            kind = constraint_kind(exc)
            if kind == "unique":
                trade_part = f" trade {trade}" if trade else ""
                raise DuplicateFill(f"fill of {client_order_id}{trade_part} is already recorded") from None
            if kind == "foreignkey":
                raise PositionNotFound(
                    f"cannot record a fill of {client_order_id}: no position {position_id}"
                ) from None
            raise
        return int(cur.lastrowid or 0)

    def exists(self, client_order_id: str, trade_id: str | int | None = None) -> bool:
        """Any fill of this order (or this very trade of it when ``trade_id`` is given)."""
        if trade_id is None:
            row = self._conn.execute("SELECT 1 FROM fills WHERE client_order_id = ? LIMIT 1", (client_order_id,))
        else:
            row = self._conn.execute(
                "SELECT 1 FROM fills WHERE client_order_id = ? AND trade_id = ?", (client_order_id, str(trade_id))
            )
        return row.fetchone() is not None

    def for_position(self, position_id: int) -> list[FillRecord]:
        rows = fetch_all(self._conn, "SELECT * FROM fills WHERE position_id = ? ORDER BY ts_ms, id", (position_id,))
        return [_record(r) for r in rows]

    def for_order(self, client_order_id: str) -> list[FillRecord]:
        rows = fetch_all(
            self._conn, "SELECT * FROM fills WHERE client_order_id = ? ORDER BY ts_ms, id", (client_order_id,)
        )
        return [_record(r) for r in rows]

    def totals(self, position_id: int) -> FillTotals:
        """Exact sums over a position's fills (Decimal, not SQL floats)."""
        bought = sold = fees = pnl = ZERO
        for r in self.for_position(position_id):
            if r.side == "BUY":
                bought += r.qty
            else:
                sold += r.qty
            fees += r.fee
            if r.realized_pnl is not None:
                pnl += r.realized_pnl
        return FillTotals(bought, sold, fees, pnl)


def _record(row: sqlite3.Row) -> FillRecord:
    return FillRecord(
        id=row["id"],
        position_id=row["position_id"],
        client_order_id=row["client_order_id"],
        trade_id=row["trade_id"],
        side=row["side"],
        price=Decimal(row["price"]),
        qty=Decimal(row["qty"]),
        fee=Decimal(row["fee"]),
        stage=Stage(row["stage"]) if row["stage"] is not None else None,
        reason=row["reason"],
        realized_pnl=to_dec(row["realized_pnl"]),
        ts_ms=row["ts_ms"],
    )
