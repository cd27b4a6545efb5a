from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from storage import (
    Database,
    DuplicateClientOrderId,
    DuplicateFill,
    FillsRepo,
    OrdersJournal,
    PositionNotFound,
    PositionsRepo,
    UnknownOrder,
)
from storage.errors import InvalidTransition
from tests.unit.storage.conftest import T0, initial_state
from trading.core.models import ExitReason, Fill, Stage
from trading.core.order_state import OrderState
from trading.orders import make_id

TAG = "abcdef"


def client_order_id(position_id: int, action: str, n: int) -> str:
    return make_id(TAG, position_id, action, n)


@pytest.fixture
def pid(db: Database) -> int:
    return PositionsRepo(db).create_open("BTCUSDT", initial_state(), "signal", Decimal(15), T0)


# -------------------------------------------------------------------- fills
def test_fills_round_trip_and_exact_totals(db: Database, pid: int) -> None:
    fills = FillsRepo(db)
    buy = fills.add(
        pid, f"sdca-{pid}-entry-1", "BUY", Decimal("100.1"), Decimal("0.3"), Decimal("0.1"), T0, stage=Stage.INITIAL
    )
    sell = fills.add(
        pid,
        f"sdca-{pid}-half-1",
        "SELL",
        Decimal("110.11"),
        Decimal("0.15"),
        Decimal("0.2"),
        T0 + 1,
        reason=ExitReason.TAKE_HALF,
        realized_pnl=Decimal("1.5015"),
    )
    assert sell > buy
    rows = fills.for_position(pid)
    assert [r.id for r in rows] == [buy, sell]
    assert rows[0].to_fill() == Fill("BUY", Decimal("100.1"), Decimal("0.3"), Decimal("0.1"), Stage.INITIAL)
    assert rows[1].to_fill() == Fill(
        "SELL", Decimal("110.11"), Decimal("0.15"), Decimal("0.2"), None, ExitReason.TAKE_HALF, Decimal("1.5015")
    )
    totals = fills.totals(pid)
    assert (totals.bought, totals.sold, totals.realized_pnl) == (Decimal("0.3"), Decimal("0.15"), Decimal("1.5015"))
    assert totals.fees == Decimal("0.3") and str(totals.fees) == "0.3"
    assert fills.exists(f"sdca-{pid}-entry-1") and not fills.exists("sdca-x")
    assert fills.for_order(f"sdca-{pid}-half-1") == [rows[1]]


def test_a_fill_is_never_recorded_twice(db: Database, pid: int) -> None:
    fills = FillsRepo(db)
    fills.add(pid, "sdca-1-entry-1", "BUY", Decimal(1), Decimal(1), Decimal(0), T0)
    with pytest.raises(DuplicateFill, match="sdca-1-entry-1"):
        fills.add(pid, "sdca-1-entry-1", "BUY", Decimal(1), Decimal(1), Decimal(0), T0 + 5)
    # Per-trade fills of one order are distinct by trade id; the same trade twice is not.
    fills.add(pid, "sdca-1-close-1", "SELL", Decimal(2), Decimal("0.1"), Decimal(0), T0, trade_id=101)
    fills.add(pid, "sdca-1-close-1", "SELL", Decimal(2), Decimal("0.2"), Decimal(0), T0, trade_id=102)
    with pytest.raises(DuplicateFill, match="trade 102"):
        fills.add(pid, "sdca-1-close-1", "SELL", Decimal(2), Decimal("0.2"), Decimal(0), T0, trade_id="102")
    assert len(fills.for_position(pid)) == 3
    assert fills.exists("sdca-1-close-1", 101) and not fills.exists("sdca-1-close-1", 103)


def test_fills_are_immutable_and_need_a_position(db: Database, pid: int) -> None:
    fills = FillsRepo(db)
    fills.add(pid, "sdca-1-entry-1", "buy", Decimal(1), Decimal(1), Decimal(0), T0)
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        db.conn.execute("UPDATE fills SET qty = '2'")
    with pytest.raises(PositionNotFound):
        fills.add(12345, "sdca-12345-entry-1", "BUY", Decimal(1), Decimal(1), Decimal(0), T0)
    with pytest.raises(ValueError, match="BUY or SELL"):
        fills.add(pid, "sdca-1-entry-2", "LONG", Decimal(1), Decimal(1), Decimal(0), T0)
    assert [f.qty for f in fills.for_position(pid)] == [Decimal(1)]


# ---------------------------------------------------------- orders journal
def _pending(journal: OrdersJournal, cid: str, pid: int | None, **kw: object) -> None:
    args: dict[str, object] = dict(
        position_id=pid,
        symbol="BTCUSDT",
        action="entry",
        kind="market",
        side="BUY",
        qty=Decimal("0.3"),
        reduce_only=False,
        now_ms=T0,
    )
    args.update(kw)
    journal.insert_pending(cid, **args)  # type: ignore[arg-type]


def test_insert_pending_is_exactly_one_insert(db: Database, pid: int) -> None:
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)
    try:
        _pending(OrdersJournal(db), client_order_id(pid, "entry", 1), pid)
    finally:
        db.conn.set_trace_callback(None)
    assert len(statements) == 1, statements
    assert statements[0].startswith("INSERT INTO orders")


def test_journal_round_trip_and_resolution(db: Database, pid: int) -> None:
    journal = OrdersJournal(db)
    cid = client_order_id(pid, "bs", 1)
    _pending(
        journal,
        cid,
        pid,
        action="bs",
        kind="stop",
        side="SELL",
        qty=Decimal("0.30"),
        reduce_only=True,
        trigger_price=Decimal("90.09"),
    )
    row = journal.get(cid)
    assert row is not None
    assert (row.status, row.attempts, row.qty, row.reduce_only, row.trigger_price) == (
        "pending",
        1,
        Decimal("0.30"),
        True,
        Decimal("90.09"),
    )
    assert [r.client_order_id for r in journal.unresolved()] == [cid]

    assert journal.mark(cid, "sent", now_ms=T0 + 1, exchange_order_id=4000000001)
    assert journal.bump_attempt(cid, T0 + 2) == 2
    reply = {"orderId": 4000000001, "avgPrice": Decimal("90.05"), "status": "FILLED"}
    assert journal.mark(
        cid,
        "filled",
        now_ms=T0 + 3,
        filled_qty=Decimal("0.30"),
        avg_price=Decimal("90.05"),
        fee=Decimal("0.0108"),
        raw=reply,
    )
    row = journal.get(cid)
    assert row is not None
    assert (row.status, row.exchange_order_id, row.filled_qty, row.avg_price, row.fee, row.attempts) == (
        "filled",
        "4000000001",
        Decimal("0.30"),
        Decimal("90.05"),
        Decimal("0.0108"),
        2,
    )
    assert row.raw == {"orderId": 4000000001, "avgPrice": "90.05", "status": "FILLED"}
    assert row.resolved and journal.unresolved() == []
    # A late "sent" (or "unknown") must not undo the fill.
    assert journal.mark(cid, "sent", now_ms=T0 + 4) is False
    assert journal.mark(cid, "unknown", now_ms=T0 + 4, error="timeout") is False
    row = journal.get(cid)
    assert row is not None and (row.status, row.error, row.updated_at_ms) == ("filled", None, T0 + 3)


def test_errors_and_unknown_states(db: Database, pid: int) -> None:
    journal = OrdersJournal(db)
    cid = client_order_id(pid, "dca1", 1)
    _pending(journal, cid, pid, action="dca1")
    journal.mark(
        cid,
        "unknown",
        now_ms=T0 + 1,
        error_code=-1007,
        error="Timeout waiting for response",
        raw='{"code":-1007,"msg":"Timeout waiting for response from backend server."}',
    )
    row = journal.get(cid)
    assert row is not None and (row.status, row.error_code) == ("unknown", -1007)
    assert row.raw["code"] == -1007
    assert [r.client_order_id for r in journal.unresolved()] == [cid]
    journal.mark(cid, "rejected", now_ms=T0 + 2, error_code=-2019, error="Margin is insufficient.", raw="<html>")
    row = journal.get(cid)
    assert row is not None and (row.status, row.error_code, row.raw) == ("rejected", -2019, "<html>")
    with pytest.raises(UnknownOrder):
        journal.mark("sdca-0-none-1", "sent", now_ms=T0)
    with pytest.raises(UnknownOrder):
        journal.bump_attempt("sdca-0-none-1", T0)
    with pytest.raises(ValueError):
        journal.mark(cid, "done", now_ms=T0)  # type: ignore[arg-type]


def test_the_transition_table_is_enforced(db: Database, pid: int) -> None:
    journal = OrdersJournal(db)
    cid = client_order_id(pid, "half", 1)
    _pending(journal, cid, pid, action="half", side="SELL", reduce_only=True)
    assert journal.mark(cid, OrderState.UNKNOWN, now_ms=T0 + 1)
    with pytest.raises(InvalidTransition):
        journal.mark(cid, OrderState.PENDING, now_ms=T0 + 2)  # back to "not sent" would invite a second send
    assert journal.mark(cid, OrderState.FILLED, now_ms=T0 + 3)
    assert journal.mark(cid, OrderState.CANCELED, now_ms=T0 + 4) is False  # the first final verdict stands
    row = journal.get(cid)
    assert row is not None and row.status is OrderState.FILLED


def test_duplicate_client_order_id_is_refused_and_changes_nothing(db: Database, pid: int) -> None:
    journal = OrdersJournal(db)
    cid = client_order_id(pid, "entry", 1)
    _pending(journal, cid, pid)
    journal.mark(cid, "filled", now_ms=T0 + 1)
    with pytest.raises(DuplicateClientOrderId, match=cid):
        _pending(journal, cid, pid, qty=Decimal(9))
    row = journal.get(cid)
    assert row is not None and (row.status, row.qty) == ("filled", Decimal("0.3"))
    with pytest.raises(PositionNotFound):
        _pending(journal, "sdca-777-entry-1", 777)
    with pytest.raises(ValueError, match="kind"):
        _pending(journal, "sdca-1-entry-9", pid, kind="limit")
    with pytest.raises(ValueError, match="client order id"):
        _pending(journal, "has spaces in it", pid)
    assert [r.client_order_id for r in journal.recent(10)] == [cid]
