from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from storage import AuditLog, Database, DuplicateFill, FillsRepo, PositionsRepo, StorageError
from tests.conftest import REPO
from tests.unit.storage.conftest import T0, initial_state


def _count(db: Database, table: str) -> int:
    return int(db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_commit_and_rollback(db: Database) -> None:
    audit = AuditLog(db)
    with db.transaction():
        audit.add("system", "a", ts_ms=T0)
        audit.add("system", "b", ts_ms=T0)
        assert db.in_transaction
    assert not db.in_transaction and _count(db, "audit_log") == 2
    with pytest.raises(RuntimeError, match="boom"), db.transaction():
        audit.add("system", "c", ts_ms=T0)
        raise RuntimeError("boom")
    assert not db.in_transaction and _count(db, "audit_log") == 2


def test_nested_transaction_is_a_savepoint(db: Database) -> None:
    audit = AuditLog(db)
    with db.transaction():
        audit.add("system", "outer", ts_ms=T0)
        with pytest.raises(ValueError), db.transaction():
            audit.add("system", "inner-failed", ts_ms=T0)
            raise ValueError
        with db.transaction():
            audit.add("system", "inner-ok", ts_ms=T0)
    assert [r.action for r in audit.recent()] == ["inner-ok", "outer"]

    with pytest.raises(KeyError), db.transaction():
        with db.transaction():
            audit.add("system", "inner-committed-then-outer-failed", ts_ms=T0)
        raise KeyError
    assert _count(db, "audit_log") == 2


def test_a_caught_duplicate_inside_a_transaction_keeps_the_rest(db: Database) -> None:
    pid = PositionsRepo(db).create_open("BTCUSDT", initial_state(), "signal", Decimal(1), T0)
    fills = FillsRepo(db)
    fills.add(pid, "sdca-1-entry-1", "BUY", Decimal(1), Decimal(1), Decimal(0), T0)
    with db.transaction():
        with pytest.raises(DuplicateFill):
            fills.add(pid, "sdca-1-entry-1", "BUY", Decimal(1), Decimal(1), Decimal(0), T0)
        AuditLog(db).add("system", "fill.duplicate", ts_ms=T0)
    assert _count(db, "fills") == 1 and _count(db, "audit_log") == 1


def test_writer_excludes_other_writers_but_not_readers(db: Database, db_path: Path) -> None:
    other = Database.open(db_path, busy_timeout_ms=50)
    try:
        with db.transaction():
            AuditLog(db).add("system", "x", ts_ms=T0)
            assert _count(other, "audit_log") == 0  # WAL: readers see the last commit
            with pytest.raises(Exception, match="locked"):
                AuditLog(other).add("system", "y", ts_ms=T0)
        assert _count(other, "audit_log") == 1
    finally:
        other.close()


def test_backup_inside_a_transaction_is_refused(db: Database, tmp_path: Path) -> None:
    from storage import backup

    with pytest.raises(StorageError, match="inside a transaction"), db.transaction():
        backup(db, tmp_path / "b", 3, T0)


# --------------------------------------------------------------- crash tests
CHILD = r"""
import sys, time, dataclasses
from decimal import Decimal
from storage import AuditLog, Database, FillsRepo, PositionsRepo
from trading.core.models import Leg, Stage

path, mode, pid = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = Database.open(path)
fills, positions, audit = FillsRepo(db), PositionsRepo(db), AuditLog(db)
base = positions.get(pid).state

def dca(k):
    leg = Leg(Stage.FIRST_DCA, Decimal("97.1"), Decimal(k))
    return dataclasses.replace(base, stage=Stage.FIRST_DCA, legs=(*base.legs, leg), qty=base.qty + k, dca1_done=True)

if mode in ("mid", "after"):
    with db.transaction():
        fills.add(pid, "sdca-x-dca1-1", "BUY", Decimal("97.1"), Decimal(1), Decimal("0.01"), 1, stage="first_dca")
        positions.save_state(pid, dca(1), margin_add=Decimal(20), fees_add=Decimal("0.01"), now_ms=2)
        if mode == "mid":
            print("mid", flush=True)
            time.sleep(60)
        audit.add("system", "dca.fill", symbol=base.symbol, after={"k": 1}, ts_ms=3)
    print("committed", flush=True)
    time.sleep(60)
else:  # loop: many transactions until killed
    k = 0
    while True:
        k += 1
        with db.transaction():
            for j in range(3):
                fills.add(pid, f"sdca-x-t{k}", "BUY", Decimal(1), Decimal(1), Decimal(0), k, trade_id=j)
            positions.save_state(pid, dca(k), now_ms=k)
            audit.add("system", "tx", after={"k": k}, ts_ms=k)
        print(k, flush=True)
"""


def _spawn(db_path: Path, mode: str, pid: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), mode, str(pid)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )


def _read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        pytest.fail(f"child said nothing in {timeout}s; stderr: {proc.stderr.read() if proc.stderr else ''}")
    line = proc.stdout.readline()
    if not line:
        proc.wait(5)
        pytest.fail(f"child exited {proc.returncode}: {proc.stderr.read() if proc.stderr else ''}")
    return line.strip()


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _open_position(db_path: Path) -> int:
    with Database.open(db_path) as db:
        return PositionsRepo(db).create_open("BTCUSDT", initial_state(), "signal", Decimal(15), T0)


@pytest.mark.parametrize(("mode", "expect_all"), [("mid", False), ("after", True)])
def test_sigkill_leaves_all_or_nothing(db_path: Path, mode: str, expect_all: bool) -> None:
    pid = _open_position(db_path)
    proc = _spawn(db_path, mode, pid)
    try:
        assert _read_line(proc) == ("mid" if mode == "mid" else "committed")
    finally:
        _kill(proc)
    with Database.open(db_path) as db:  # the integrity check runs at open
        assert db.integrity_check() == ["ok"]
        pos = PositionsRepo(db).get(pid)
        assert pos is not None
        fills = FillsRepo(db).for_position(pid)
        audits = AuditLog(db).recent(action="dca.fill")
        if expect_all:
            assert len(fills) == 1 and len(audits) == 1
            assert (pos.state.qty, pos.margin, pos.fees) == (Decimal("1.3"), Decimal(35), Decimal("0.01"))
        else:
            assert fills == [] and audits == []
            assert pos.state == initial_state() and pos.margin == Decimal(15) and pos.fees == 0


def test_sigkill_during_a_stream_of_transactions(db_path: Path) -> None:
    pid = _open_position(db_path)
    proc = _spawn(db_path, "loop", pid)
    try:
        acknowledged = 0
        while acknowledged < 25:
            acknowledged = int(_read_line(proc))
    finally:
        _kill(proc)  # lands at whatever point the child has reached by now
    with Database.open(db_path) as db:
        assert db.integrity_check() == ["ok"]
        per_tx = dict(db.conn.execute("SELECT ts_ms, count(*) FROM fills GROUP BY ts_ms").fetchall())
        committed = max(per_tx)
        assert committed >= acknowledged
        assert per_tx == {k: 3 for k in range(1, committed + 1)}  # every transaction whole, none half
        assert _count(db, "audit_log") == committed
        pos = PositionsRepo(db).get(pid)
        assert pos is not None and pos.state.qty == Decimal("0.3") + committed
