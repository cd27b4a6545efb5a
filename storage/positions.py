"""Positions: one row per trade, from the entry order's pending row to closed (or failed)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum

from storage._sql import check_ms, check_symbol, check_text, constraint_kind, fetch_all, fetch_one
from storage.codec import STAGE_RANK, dec_text, legs_from_json, legs_to_json, opt_dec_text, to_dec
from storage.db import Database
from storage.errors import ActivePositionExists, PositionNotFound, PositionStateError
from trading.core.models import ZERO, PositionState, Stage
from trading.core.order_state import Origin, PositionStatus

_ACTIVE_SQL = f"('{PositionStatus.PENDING}','{PositionStatus.OPEN}')"
_RANK_SQL = "(CASE max_stage WHEN 'initial' THEN 0 WHEN 'first_dca' THEN 1 ELSE 2 END)"
# Highest ladder stage ever reached: kept when recovery sells step the stage back down.
_MAX_STAGE_SQL = f"max_stage = CASE WHEN :reached_rank > {_RANK_SQL} THEN :reached ELSE max_stage END"
_STATE_SQL = (
    "stage = :stage, qty = :qty, initial_price = :initial_price, lots = :lots, dca1_done = :dca1_done, "
    "dca2_done = :dca2_done, half_taken = :half_taken, peak_price = :peak_price, " + _MAX_STAGE_SQL
)


@dataclass(frozen=True, slots=True)
class PositionRecord:
    id: int
    symbol: str
    status: PositionStatus
    state: PositionState  # the ladder (zero qty and no legs while pending)
    origin: Origin
    opened_at_ms: int
    closed_at_ms: int | None
    close_reason: str | None
    realized_pnl: Decimal | None  # the whole trade's result: sells - buys - fees + funding
    fees: Decimal
    margin: Decimal  # margin committed so far
    max_stage: Stage  # highest stage reached
    backstop_client_id: str | None
    backstop_price: Decimal | None
    backstop_algo_id: str | None
    created_at_ms: int = 0
    updated_at_ms: int = 0
    funding: Decimal = ZERO  # funding so far (Binance's sign: < 0 paid), part of ``realized_pnl`` once closed

    @property
    def active(self) -> bool:
        return self.status.active


class PositionsRepo:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._conn = db.conn

    # ---------------------------------------------------------------- create
    def create_pending(self, symbol: str, origin: Origin | str, now_ms: int) -> int:
        """The entry order's position row, written before that order is sent. Returns the position id.

        Ids never repeat, even after ``surgedca reset``, a restored backup or a new file: an id is
        at least the creation time in seconds, so the client order ids built from it
        (``sdca-<id>-...``) cannot match an older order the exchange still knows.
        """
        return self._insert(symbol, PositionStatus.PENDING, origin, state=None, margin=ZERO, now_ms=now_ms)

    def create_open(self, symbol: str, state: PositionState, origin: Origin | str, margin: Decimal, now_ms: int) -> int:
        """A position that is already open (adoption of one found on the exchange)."""
        return self._insert(symbol, PositionStatus.OPEN, origin, state=state, margin=margin, now_ms=now_ms)

    def _insert(
        self,
        symbol: str,
        status: PositionStatus,
        origin: Origin | str,
        *,
        state: PositionState | None,
        margin: Decimal,
        now_ms: int,
    ) -> int:
        check_symbol(symbol)
        try:
            origin = Origin(origin)
        except ValueError:
            raise ValueError(f"origin must be one of {[o.value for o in Origin]}, got {origin!r}") from None
        check_ms(now_ms, "now_ms")
        if state is not None and state.symbol != symbol:
            raise ValueError(f"state is for {state.symbol}, not {symbol}")
        params = (_state_params(state) if state is not None else dict(_EMPTY_STATE)) | {
            "symbol": symbol,
            "status": status.value,
            "origin": origin.value,
            "margin": dec_text(margin, "margin"),
            "now": now_ms,
            "floor": now_ms // 1000,
        }
        sql = (
            "INSERT INTO positions (id, symbol, status, origin, stage, max_stage, qty, initial_price, lots, "
            "dca1_done, dca2_done, half_taken, peak_price, margin, created_at_ms, opened_at_ms, updated_at_ms) "
            "VALUES (max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'positions'), 0) + 1, :floor), "
            ":symbol, :status, :origin, :stage, :reached, :qty, :initial_price, :lots, :dca1_done, :dca2_done, "
            ":half_taken, :peak_price, :margin, :now, :now, :now)"
        )
        try:
            cur = self._conn.execute(sql, params)
        except sqlite3.IntegrityError as exc:
            if constraint_kind(exc) == "unique":
                other = self.get_active(symbol)
                raise ActivePositionExists(
                    f"{symbol} already has a {other.status if other else 'pending or open'} position"
                    f"{f' (id {other.id})' if other else ''}; a symbol holds one position at a time"
                ) from None
            raise
        return int(cur.lastrowid or 0)

    # ---------------------------------------------------------- transitions
    def activate(self, position_id: int, state: PositionState, margin: Decimal, fee: Decimal, now_ms: int) -> None:
        """The entry filled: pending -> open with the ladder state built from the fill."""
        params = _state_params(state) | {
            "id": position_id,
            "symbol": state.symbol,
            "margin": dec_text(margin, "margin"),
            "fee": dec_text(fee, "fee"),
            "now": check_ms(now_ms, "now_ms"),
        }
        cur = self._conn.execute(
            f"UPDATE positions SET status = '{PositionStatus.OPEN}', {_STATE_SQL}, margin = :margin, "
            "fees = dec_add(fees, :fee), "
            f"opened_at_ms = :now, updated_at_ms = :now WHERE id = :id AND status = '{PositionStatus.PENDING}' "
            "AND symbol = :symbol",
            params,
        )
        if cur.rowcount != 1:
            self._refuse(position_id, "activate", (PositionStatus.PENDING,), state.symbol)

    def mark_failed(self, position_id: int, now_ms: int) -> None:
        """The entry order did not fill (rejected, expired): pending -> failed."""
        cur = self._conn.execute(
            f"UPDATE positions SET status = '{PositionStatus.FAILED}', closed_at_ms = :now, updated_at_ms = :now "
            f"WHERE id = :id AND status = '{PositionStatus.PENDING}'",
            {"id": position_id, "now": check_ms(now_ms, "now_ms")},
        )
        if cur.rowcount != 1:
            self._refuse(position_id, "mark failed", (PositionStatus.PENDING,))

    def save_state(
        self,
        position_id: int,
        state: PositionState,
        *,
        margin: Decimal | None = None,
        margin_add: Decimal | None = None,
        fees_add: Decimal = ZERO,
        now_ms: int,
    ) -> None:
        """New ladder state of an open position (after a DCA or a partial sell).

        ``margin`` replaces the committed margin, ``margin_add`` adds to it (e.g. a DCA's margin);
        ``fees_add`` is added to the position's fees.
        """
        if margin is not None and margin_add is not None:
            raise ValueError("give margin (the new total) or margin_add (an increment), not both")
        params = _state_params(state) | {
            "id": position_id,
            "symbol": state.symbol,
            "margin": opt_dec_text(margin, "margin"),
            "margin_add": dec_text(margin_add if margin_add is not None else ZERO, "margin_add"),
            "fees_add": dec_text(fees_add, "fees_add"),
            "now": check_ms(now_ms, "now_ms"),
        }
        cur = self._conn.execute(
            f"UPDATE positions SET {_STATE_SQL}, margin = dec_add(coalesce(:margin, margin), :margin_add), "
            "fees = dec_add(fees, :fees_add), updated_at_ms = :now "
            f"WHERE id = :id AND status = '{PositionStatus.OPEN}' AND symbol = :symbol",
            params,
        )
        if cur.rowcount != 1:
            self._refuse(position_id, "save the state of", (PositionStatus.OPEN,), state.symbol)

    def set_peak(self, position_id: int, peak: Decimal, now_ms: int | None = None) -> None:
        """The runner's highest price since take-half (one cheap UPDATE)."""
        cur = self._conn.execute(
            "UPDATE positions SET peak_price = ?, updated_at_ms = coalesce(?, updated_at_ms) "
            f"WHERE id = ? AND status = '{PositionStatus.OPEN}'",
            (dec_text(peak, "peak"), now_ms, position_id),
        )
        if cur.rowcount != 1:
            self._refuse(position_id, "set the peak of", (PositionStatus.OPEN,))

    def set_backstop(
        self,
        position_id: int,
        client_id: str | None,
        price: Decimal | None,
        algo_id: str | None,
        now_ms: int | None = None,
    ) -> None:
        """The exchange-side stop now resting for this position (all None: none)."""
        cur = self._conn.execute(
            "UPDATE positions SET backstop_client_id = ?, backstop_price = ?, backstop_algo_id = ?, "
            "updated_at_ms = coalesce(?, updated_at_ms) WHERE id = ?",
            (
                client_id,
                opt_dec_text(price, "backstop price"),
                None if algo_id is None else str(algo_id),
                now_ms,
                position_id,
            ),
        )
        if cur.rowcount != 1:
            raise PositionNotFound(f"no position with id {position_id}")

    def close(self, position_id: int, reason: str, realized_pnl: Decimal, fees_add: Decimal, now_ms: int) -> None:
        """open -> closed. ``realized_pnl`` is the whole position's result (all its sells), as the caller
        computed it; the ladder state is kept as it was last held, for the record."""
        reason = check_text(_enum_text(reason), "close reason")
        cur = self._conn.execute(
            f"UPDATE positions SET status = '{PositionStatus.CLOSED}', close_reason = :reason, realized_pnl = :pnl, "
            "fees = dec_add(fees, :fees_add), closed_at_ms = :now, updated_at_ms = :now "
            f"WHERE id = :id AND status = '{PositionStatus.OPEN}'",
            {
                "id": position_id,
                "reason": reason,
                "pnl": dec_text(realized_pnl, "realized_pnl"),
                "fees_add": dec_text(fees_add, "fees_add"),
                "now": check_ms(now_ms, "now_ms"),
            },
        )
        if cur.rowcount != 1:
            self._refuse(position_id, "close", (PositionStatus.OPEN,))

    def add_funding(self, position_id: int, amount: Decimal, now_ms: int) -> PositionStatus:
        """A funding payment of an open or closed position: added to its running total, and for a position
        already closed (a payment found after its close) to its result as well. Returns its status."""
        params = {"id": position_id, "amount": dec_text(amount, "amount"), "now": check_ms(now_ms, "now_ms")}
        cur = self._conn.execute(
            "UPDATE positions SET funding = dec_add(funding, :amount), "
            f"realized_pnl = CASE WHEN status = '{PositionStatus.CLOSED}' THEN dec_add(realized_pnl, :amount) "
            "ELSE realized_pnl END, updated_at_ms = :now "
            f"WHERE id = :id AND status IN ('{PositionStatus.OPEN}','{PositionStatus.CLOSED}')",
            params,
        )
        if cur.rowcount != 1:
            self._refuse(position_id, "add funding to", (PositionStatus.OPEN, PositionStatus.CLOSED))
        row = self._conn.execute("SELECT status FROM positions WHERE id = ?", (position_id,)).fetchone()
        return PositionStatus(row[0])

    def _refuse(
        self, position_id: int, what: str, allowed: tuple[PositionStatus, ...], symbol: str | None = None
    ) -> None:
        row = self.get(position_id)
        if row is None:
            raise PositionNotFound(f"cannot {what} position {position_id}: no such position")
        if symbol is not None and row.symbol != symbol:
            raise PositionStateError(f"cannot {what} position {position_id}: it is {row.symbol}, the state is {symbol}")
        raise PositionStateError(
            f"cannot {what} position {position_id} ({row.symbol}): it is {row.status.value}, "
            f"expected {' or '.join(a.value for a in allowed)}"
        )

    # --------------------------------------------------------------- queries
    def get(self, position_id: int) -> PositionRecord | None:
        row = fetch_one(self._conn, "SELECT * FROM positions WHERE id = ?", (position_id,))
        return _record(row) if row is not None else None

    def get_active(self, symbol: str) -> PositionRecord | None:
        """The symbol's pending or open position, if any (at most one exists)."""
        row = fetch_one(self._conn, f"SELECT * FROM positions WHERE symbol = ? AND status IN {_ACTIVE_SQL}", (symbol,))
        return _record(row) if row is not None else None

    def held_at(self, symbol: str, ts_ms: int) -> PositionRecord | None:
        """The open or closed position that held ``symbol`` at ``ts_ms``: created at or before it (its row is
        written before the entry order is sent) and not closed before it. The older one when a close and the
        next entry share the millisecond."""
        row = fetch_one(
            self._conn,
            f"SELECT * FROM positions WHERE symbol = ? AND status IN ('{PositionStatus.OPEN}',"
            f"'{PositionStatus.CLOSED}') AND created_at_ms <= ? AND (closed_at_ms IS NULL OR closed_at_ms >= ?) "
            "ORDER BY created_at_ms, id LIMIT 1",
            (symbol, ts_ms, ts_ms),
        )
        return _record(row) if row is not None else None

    def list_open(self) -> list[PositionRecord]:
        rows = fetch_all(
            self._conn, f"SELECT * FROM positions WHERE status = '{PositionStatus.OPEN}' ORDER BY opened_at_ms, id"
        )
        return [_record(r) for r in rows]

    def list_active(self) -> list[PositionRecord]:
        rows = fetch_all(
            self._conn, f"SELECT * FROM positions WHERE status IN {_ACTIVE_SQL} ORDER BY created_at_ms, id"
        )
        return [_record(r) for r in rows]

    def list_closed(self, since_ms: int | None = None, until_ms: int | None = None) -> list[PositionRecord]:
        """Closed positions with ``since_ms <= closed_at_ms < until_ms``, oldest first."""
        rows = fetch_all(
            self._conn,
            f"SELECT * FROM positions WHERE status = '{PositionStatus.CLOSED}' "
            "AND closed_at_ms >= coalesce(?, closed_at_ms) "
            "AND closed_at_ms < coalesce(?, closed_at_ms + 1) ORDER BY closed_at_ms, id",
            (since_ms, until_ms),
        )
        return [_record(r) for r in rows]

    def margin_in_use(self) -> Decimal:
        rows = self._conn.execute(f"SELECT margin FROM positions WHERE status = '{PositionStatus.OPEN}'").fetchall()
        return sum((Decimal(r[0]) for r in rows), ZERO)


# ------------------------------------------------------------------ mapping
_EMPTY_STATE: dict[str, object] = {
    "stage": Stage.INITIAL.value,
    "reached": Stage.INITIAL.value,
    "reached_rank": 0,
    "qty": "0",
    "initial_price": "0",
    "lots": "[]",
    "dca1_done": 0,
    "dca2_done": 0,
    "half_taken": 0,
    "peak_price": None,
}


def _state_params(state: PositionState) -> dict[str, object]:
    if not isinstance(state, PositionState):
        raise TypeError(f"state must be a PositionState, got {type(state).__name__}")
    check_symbol(state.symbol)
    stage = Stage(state.stage)
    rank = max(STAGE_RANK[stage.value], 2 if state.dca2_done else 0, 1 if state.dca1_done else 0)
    reached = next(s for s, r in STAGE_RANK.items() if r == rank)
    if state.qty < 0:
        raise ValueError(f"{state.symbol}: quantity cannot be negative ({state.qty})")
    return {
        "stage": stage.value,
        "reached": reached,
        "reached_rank": rank,
        "qty": dec_text(state.qty, "qty"),
        "initial_price": dec_text(state.initial_price, "initial_price"),
        "lots": legs_to_json(state.legs),
        "dca1_done": int(bool(state.dca1_done)),
        "dca2_done": int(bool(state.dca2_done)),
        "half_taken": int(bool(state.half_taken)),
        "peak_price": opt_dec_text(state.peak_price, "peak_price"),
    }


def _record(row: sqlite3.Row) -> PositionRecord:
    state = PositionState(
        symbol=row["symbol"],
        stage=Stage(row["stage"]),
        legs=legs_from_json(row["lots"]),
        qty=Decimal(row["qty"]),
        initial_price=Decimal(row["initial_price"]),
        dca1_done=bool(row["dca1_done"]),
        dca2_done=bool(row["dca2_done"]),
        half_taken=bool(row["half_taken"]),
        peak_price=to_dec(row["peak_price"]),
    )
    return PositionRecord(
        id=row["id"],
        symbol=row["symbol"],
        status=PositionStatus(row["status"]),
        state=state,
        origin=Origin(row["origin"]),
        opened_at_ms=row["opened_at_ms"],
        closed_at_ms=row["closed_at_ms"],
        close_reason=row["close_reason"],
        realized_pnl=to_dec(row["realized_pnl"]),
        fees=Decimal(row["fees"]),
        margin=Decimal(row["margin"]),
        max_stage=Stage(row["max_stage"]),
        backstop_client_id=row["backstop_client_id"],
        backstop_price=to_dec(row["backstop_price"]),
        backstop_algo_id=row["backstop_algo_id"],
        created_at_ms=row["created_at_ms"],
        updated_at_ms=row["updated_at_ms"],
        funding=Decimal(row["funding"]),
    )


def _enum_text(value: object) -> object:
    """An enum's value, anything else as it is (check_text says what is wrong with it)."""
    return value.value if isinstance(value, Enum) else value
