from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from storage import AuditLog, Database, DatabaseCorrupt, backup
from tests.unit.storage.conftest import T0


def _filled_database(db_path: Path) -> int:
    """A real database of a few hundred pages, fully checkpointed into the main file."""
    with Database.open(db_path) as db:
        audit = AuditLog(db)
        with db.transaction():
            for i in range(3000):
                audit.add("system", "fill", symbol=f"SYM{i % 50}USDT", after={"i": i, "pad": "x" * 200}, ts_ms=T0 + i)
        db.checkpoint("TRUNCATE")
        page_size = int(db.conn.execute("PRAGMA page_size").fetchone()[0])
    assert db_path.stat().st_size > 100 * page_size
    return page_size


def test_corrupted_pages_are_reported_clearly(db_path: Path, tmp_path: Path) -> None:
    page_size = _filled_database(db_path)
    with Database.open(db_path) as db:
        last = backup(db, db_path.parent / "backups", keep=3, now_ms=T0)
    pages = db_path.stat().st_size // page_size
    with db_path.open("r+b") as f:  # garbage over four pages in the middle of the file
        for page in range(pages // 2, pages // 2 + 4):
            f.seek(page * page_size)
            f.write(bytes([0xA5, 0x5A]) * (page_size // 2))
    digest = hashlib.sha256(db_path.read_bytes()).hexdigest()
    with pytest.raises(DatabaseCorrupt) as err:
        Database.open(db_path)
    msg = str(err.value)
    assert f"database {db_path} is corrupt" in msg
    assert "SQLite says:" in msg
    assert f"cp {last} {db_path}" in msg
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == digest  # left as found
    # And the backup named in the message is sound.
    restored = tmp_path / "restored.sqlite3"
    restored.write_bytes(last.read_bytes())
    with Database.open(restored) as db:
        assert AuditLog(db).count_since(0) == 3000


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "surgedca.sqlite3"
    path.write_bytes(bytes(range(256)) * 64)
    with pytest.raises(DatabaseCorrupt, match=r"No backup was found in .*backups") as err:
        Database.open(path)
    assert str(path) in str(err.value)


def test_healthy_file_reports_ok(db: Database) -> None:
    assert db.integrity_check() == ["ok"] == db.integrity_check(quick=True)
    assert db.size_bytes() > 0
