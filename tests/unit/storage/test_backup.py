from __future__ import annotations

import shutil
import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from storage import AuditLog, Database, PositionsRepo, backup, latest_backup, list_backups
from storage.backup import backup_dir_for, backup_taken_at_ms
from tests.unit.storage.conftest import T0, initial_state


def _restore(copy: Path, db_path: Path) -> None:
    """What the operator does with the service stopped: the backup's bytes replace the file (and its WAL)."""
    for suffix in ("-wal", "-shm"):
        db_path.with_name(db_path.name + suffix).unlink(missing_ok=True)
    shutil.copyfile(copy, db_path)


def test_backup_then_restore_brings_back_the_old_contents(db_path: Path, tmp_path: Path) -> None:
    dest = tmp_path / "backups"
    with Database.open(db_path) as db:
        first = PositionsRepo(db).create_open("BTCUSDT", initial_state(), "signal", Decimal("15.5"), T0)
        AuditLog(db).add("system", "before-backup", ts_ms=T0)
        copy = backup(db, dest, keep=3, now_ms=T0)
        # Changes after the backup.
        PositionsRepo(db).close(first, "manual", Decimal(1), Decimal(0), T0 + 1)
        PositionsRepo(db).create_open("ETHUSDT", initial_state("ETHUSDT"), "signal", Decimal(1), T0 + 2)
        AuditLog(db).add("system", "after-backup", ts_ms=T0 + 3)
    assert copy == dest / "surgedca-20260101-000000.sqlite3"
    assert [p.name for p in dest.iterdir()] == [copy.name]  # one self-contained file, no -wal, no leftovers
    _restore(copy, db_path)
    with Database.open(db_path) as db:
        positions = PositionsRepo(db)
        assert [(p.id, p.symbol, p.status, p.margin) for p in positions.list_active()] == [
            (first, "BTCUSDT", "open", Decimal("15.5"))
        ]
        assert [r.action for r in AuditLog(db).recent()] == ["before-backup"]
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_backup_is_online_while_another_connection_writes(db_path: Path, tmp_path: Path) -> None:
    with Database.open(db_path) as service, Database.open(db_path, migrate=False) as cli:
        audit = AuditLog(service)
        for i in range(50):
            audit.add("system", f"a{i}", ts_ms=T0 + i)
        with service.transaction():  # uncommitted work of the service is not in the copy
            audit.add("system", "uncommitted", ts_ms=T0 + 99)
            copy = backup(cli, tmp_path / "b", keep=1, now_ms=T0)
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 50
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            conn.close()


def test_retention_keeps_the_newest(db: Database, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    made = [backup(db, dest, keep=3, now_ms=T0 + i * 86_400_000) for i in range(5)]
    assert list_backups(dest) == made[2:]
    assert latest_backup(dest) == made[-1]
    assert backup_taken_at_ms(made[-1]) == T0 + 4 * 86_400_000
    # Two backups within one second: both kept, in order.
    again = backup(db, dest, keep=3, now_ms=T0 + 4 * 86_400_000 + 500)
    assert again.name == "surgedca-20260105-000000-1.sqlite3"
    assert list_backups(dest) == [made[3], made[4], again]
    (dest / "notes.txt").write_text("not a backup")
    backup(db, dest, keep=1, now_ms=T0 + 10 * 86_400_000)
    assert len(list_backups(dest)) == 1 and (dest / "notes.txt").exists()
    with pytest.raises(ValueError, match="keep"):
        backup(db, dest, keep=0, now_ms=T0)


def test_leftover_of_an_interrupted_backup_is_cleaned(db: Database, tmp_path: Path) -> None:
    dest = tmp_path / "b"
    dest.mkdir()
    (dest / ".surgedca-20251231-000000.sqlite3.partial").write_bytes(b"half")
    backup(db, dest, keep=2, now_ms=T0)
    assert sorted(p.name for p in dest.iterdir()) == ["surgedca-20260101-000000.sqlite3"]


def test_backup_dir_defaults_beside_the_database(tmp_path: Path) -> None:
    assert backup_dir_for(tmp_path / "data" / "x.sqlite3") == tmp_path / "data" / "backups"
    assert backup_dir_for(tmp_path / "x.sqlite3", tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert latest_backup(tmp_path / "missing") is None
    assert backup_taken_at_ms(tmp_path / "other.sqlite3") is None
