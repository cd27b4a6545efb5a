from __future__ import annotations

import dataclasses
import sqlite3
from decimal import Decimal

import pytest

from storage import (
    ActivePositionExists,
    Database,
    PositionNotFound,
    PositionsRepo,
    PositionStateError,
)
from tests.unit.storage.conftest import T0, initial_state, laddered_state
from trading.core.models import ExitReason, Leg, PositionState, Stage


def test_pending_then_open_round_trip(db: Database) -> None:
    repo = PositionsRepo(db)
    pid = repo.create_pending("BTCUSDT", "signal", T0)
    pending = repo.get(pid)
    assert pending is not None
    assert (pending.status, pending.origin, pending.state.qty, pending.state.legs) == ("pending", "signal", 0, ())
    assert repo.get_active("BTCUSDT") == pending

    state = initial_state()
    repo.activate(pid, state, Decimal("15"), Decimal("0.0150"), T0 + 1000)
    rec = repo.get(pid)
    assert rec is not None
    assert rec.status == "open"
    assert rec.state == state
    assert (rec.margin, rec.fees, rec.max_stage, rec.opened_at_ms) == (
        Decimal(15),
        Decimal("0.0150"),
        Stage.INITIAL,
        T0 + 1000,
    )
    assert str(rec.fees) == "0.0150"  # exact text, trailing zero kept
    assert repo.list_open() == [rec] == repo.list_active()


def test_laddered_state_round_trips_equal_and_sums_stay_exact(db: Database) -> None:
    repo = PositionsRepo(db)
    pid = repo.create_pending("BTCUSDT", "signal", T0)
    repo.activate(pid, initial_state(), Decimal("0.1"), Decimal("0.1"), T0)
    full = laddered_state()
    repo.save_state(pid, full, margin_add=Decimal("0.2"), fees_add=Decimal("0.2"), now_ms=T0 + 5)
    rec = repo.get(pid)
    assert rec is not None
    assert rec.state == full
    assert rec.state.peak_price == Decimal("0.3")
    assert rec.state.avg_price == full.avg_price
    assert rec.fees == Decimal("0.3") and str(rec.fees) == "0.3"
    assert rec.margin == Decimal("0.3")
    assert rec.max_stage is Stage.SECOND_DCA

    # A recovery sell steps the stage back; the highest stage reached stays.
    back = dataclasses.replace(full, stage=Stage.FIRST_DCA, legs=full.legs[:2], qty=full.legs[0].qty + full.legs[1].qty)
    repo.save_state(pid, back, margin=Decimal("1.25"), now_ms=T0 + 6)
    rec = repo.get(pid)
    assert rec is not None
    assert rec.state == back
    assert rec.max_stage is Stage.SECOND_DCA
    assert rec.margin == Decimal("1.25")  # replaced, not added
    assert rec.fees == Decimal("0.3")
    assert rec.updated_at_ms == T0 + 6


def test_peak_backstop_and_close(db: Database) -> None:
    repo = PositionsRepo(db)
    pid = repo.create_open("ETHUSDT", initial_state("ETHUSDT", "2000", "1"), "adopted", Decimal(200), T0)
    repo.set_peak(pid, Decimal("2100.55"))
    repo.set_backstop(pid, "sdca-1-stop-1", Decimal("1800.0"), "123456789")
    rec = repo.get(pid)
    assert rec is not None
    assert rec.origin == "adopted"
    assert rec.state.peak_price == Decimal("2100.55")
    assert (rec.backstop_client_id, rec.backstop_price, rec.backstop_algo_id) == (
        "sdca-1-stop-1",
        Decimal("1800.0"),
        "123456789",
    )
    repo.set_backstop(pid, None, None, None)
    repo.close(pid, ExitReason.TRAILING_STOP, Decimal("-1.5"), Decimal("0.8"), T0 + 60_000)
    rec = repo.get(pid)
    assert rec is not None
    assert (rec.status, rec.close_reason, rec.realized_pnl, rec.fees, rec.closed_at_ms) == (
        "closed",
        "trailing_stop",
        Decimal("-1.5"),
        Decimal("0.8"),
        T0 + 60_000,
    )
    assert rec.backstop_client_id is None and rec.backstop_price is None
    assert repo.get_active("ETHUSDT") is None
    assert repo.list_open() == []
    assert repo.list_closed() == [rec]
    assert repo.list_closed(since_ms=T0 + 60_000, until_ms=T0 + 60_001) == [rec]
    assert repo.list_closed(since_ms=T0 + 60_001) == []
    assert repo.list_closed(until_ms=T0 + 60_000) == []


def test_one_active_position_per_symbol(db: Database) -> None:
    repo = PositionsRepo(db)
    first = repo.create_pending("SOLUSDT", "signal", T0)
    with pytest.raises(ActivePositionExists, match=rf"SOLUSDT already has a pending position \(id {first}\)"):
        repo.create_pending("SOLUSDT", "signal", T0)
    with pytest.raises(ActivePositionExists):
        repo.create_open("SOLUSDT", initial_state("SOLUSDT"), "adopted", Decimal(1), T0)
    other = repo.create_pending("XRPUSDT", "signal", T0)  # another symbol is fine
    assert other != first
    # The constraint lives in SQLite: even raw SQL cannot make a second active row.
    repo.mark_failed(other, T0)
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute("UPDATE positions SET symbol = 'SOLUSDT', status = 'open' WHERE id = ?", (other,))
    # Once the first is finished, the symbol can be traded again.
    repo.activate(first, initial_state("SOLUSDT"), Decimal(1), Decimal(0), T0)
    repo.close(first, "stop_loss", Decimal(-1), Decimal(0), T0 + 1)
    again = repo.create_pending("SOLUSDT", "signal", T0 + 2)
    assert again > first
    assert [p.id for p in repo.list_active()] == [again]


def test_transitions_are_checked(db: Database) -> None:
    repo = PositionsRepo(db)
    pid = repo.create_pending("BTCUSDT", "signal", T0)
    with pytest.raises(PositionStateError, match="it is pending, expected open"):
        repo.close(pid, "manual", Decimal(0), Decimal(0), T0)
    with pytest.raises(PositionStateError, match="expected open"):
        repo.save_state(pid, initial_state(), now_ms=T0)
    with pytest.raises(PositionStateError, match="it is BTCUSDT, the state is ETHUSDT"):
        repo.activate(pid, initial_state("ETHUSDT"), Decimal(1), Decimal(0), T0)
    repo.mark_failed(pid, T0 + 1)
    failed = repo.get(pid)
    assert failed is not None and (failed.status, failed.closed_at_ms) == ("failed", T0 + 1)
    with pytest.raises(PositionStateError, match="it is failed, expected pending"):
        repo.activate(pid, initial_state(), Decimal(1), Decimal(0), T0)
    with pytest.raises(PositionNotFound):
        repo.set_peak(999, Decimal(1))
    with pytest.raises(PositionNotFound):
        repo.set_backstop(999, None, None, None)
    assert repo.list_closed() == []  # failed entries are not trades


def test_bad_values_change_nothing(db: Database) -> None:
    repo = PositionsRepo(db)
    pid = repo.create_pending("BTCUSDT", "signal", T0)
    with pytest.raises(TypeError, match="margin must be a Decimal"):
        repo.activate(pid, initial_state(), 15.0, Decimal(0), T0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        repo.activate(pid, initial_state(), Decimal("NaN"), Decimal(0), T0)
    with pytest.raises(ValueError, match="origin"):
        repo.create_pending("ETHUSDT", "bot", T0)
    with pytest.raises(ValueError, match="symbol"):
        repo.create_pending("", "signal", T0)
    bad_leg = PositionState(
        "BTCUSDT", Stage.INITIAL, (Leg(Stage.INITIAL, Decimal("Infinity"), Decimal(1)),), Decimal(1), Decimal(1)
    )
    with pytest.raises(ValueError, match="leg price"):
        repo.activate(pid, bad_leg, Decimal(1), Decimal(0), T0)
    rec = repo.get(pid)
    assert rec is not None and rec.status == "pending"
    assert [p.symbol for p in repo.list_active()] == ["BTCUSDT"]


def test_ids_never_repeat(db: Database) -> None:
    """Client order ids are built from position ids: a reused id could match an old order on the exchange."""
    repo = PositionsRepo(db)
    a = repo.create_pending("BTCUSDT", "signal", T0)
    b = repo.create_pending("ETHUSDT", "signal", T0)
    assert a >= T0 // 1000 and b == a + 1
    db.conn.execute("DELETE FROM positions")  # as `surgedca reset` does
    c = repo.create_pending("BTCUSDT", "signal", T0)
    assert c == b + 1
    # A restored older backup or a brand-new file still moves past ids used before, with the clock.
    assert repo.create_pending("XRPUSDT", "signal", T0 + 3_600_000) == (T0 + 3_600_000) // 1000


def test_margin_in_use_sums_open_positions(db: Database) -> None:
    repo = PositionsRepo(db)
    repo.create_open("BTCUSDT", initial_state("BTCUSDT"), "signal", Decimal("15.1"), T0)
    repo.create_open("ETHUSDT", initial_state("ETHUSDT"), "signal", Decimal("20.2"), T0)
    repo.create_pending("SOLUSDT", "signal", T0)
    assert repo.margin_in_use() == Decimal("35.3")
