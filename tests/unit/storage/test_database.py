from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from storage import AuditLog, Database
from tests.unit.storage.conftest import T0


def test_background_checkpointer_moves_the_wal_into_the_file(db_path: Path) -> None:
    db = Database.open(db_path)
    try:
        db.checkpoint("TRUNCATE")
        start_size = db_path.stat().st_size
        db.start_checkpointer(interval_s=0.05)
        assert db.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        audit = AuditLog(db)
        with db.transaction():
            for i in range(300):
                audit.add("system", "pad", after={"pad": "x" * 500}, ts_ms=T0 + i)
        deadline = time.monotonic() + 10
        while db_path.stat().st_size <= start_size + 100_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert db_path.stat().st_size > start_size + 100_000  # only a checkpoint writes the main file now
    finally:
        db.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("sqlite-checkpoint:")]
    with Database.open(db_path) as again:
        assert AuditLog(again).count_since(0) == 300


def test_in_memory_database_for_quick_tests() -> None:
    with Database.open(":memory:") as db:
        assert db.schema_version >= 1
        AuditLog(db).add("system", "x", ts_ms=T0)
        assert db.size_bytes() > 0
        db.start_checkpointer()  # no-op without a file


def test_close_rolls_back_an_open_transaction(db_path: Path) -> None:
    db = Database.open(db_path)
    db.conn.execute("BEGIN IMMEDIATE")
    AuditLog(db).add("system", "never-committed", ts_ms=T0)
    db.close()
    with Database.open(db_path) as again:
        assert AuditLog(again).recent() == []


def test_checkpoint_mode_is_checked(db: Database) -> None:
    with pytest.raises(ValueError, match="PASSIVE"):
        db.checkpoint("now; DROP TABLE positions")
    assert db.checkpoint()[0] == 0


def test_unopenable_path_gives_a_storage_error(tmp_path: Path) -> None:
    from storage import StorageError

    (tmp_path / "is-a-dir.sqlite3").mkdir()
    with pytest.raises(StorageError, match="cannot open the database"):
        Database.open(tmp_path / "is-a-dir.sqlite3")
