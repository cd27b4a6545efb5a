"""The real service's files are its owner's only, and a reset leaves it paused (live mode on the fake Binance)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import Database, SystemState, list_backups
from storage.maintenance import cmd_reset
from tests.e2e.conftest import Harness
from trading.events import ServiceStarted


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The most common umask (022: files readable by everyone), so the test proves the service does not rely on
    the umask of whoever starts it."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_database_wal_lock_and_backups_are_private_after_a_run(harness: Harness, open_umask: None) -> None:
    db_path = harness.settings().db_path
    backups = db_path.parent / "backups"
    # Left by an older version: a world-readable lock file and backup.
    backups.mkdir(mode=0o755)
    old_backup = backups / "surgedca-20260101-000000.sqlite3"
    old_backup.write_bytes(b"")
    old_backup.chmod(0o644)
    lock = db_path.with_name(db_path.name + ".lock")
    lock.write_text("")
    lock.chmod(0o644)

    service = await harness.start()
    await service._backup_job()  # the daily backup, now
    (new_backup,) = [p for p in list_backups(backups) if p != old_backup]
    harness.store.audit.add("test", "touch", ts_ms=1)  # a write: the WAL exists while the service runs

    wal, shm = db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")
    for path in (db_path, wal, shm, old_backup, new_backup):
        assert _mode(path) == 0o600, f"{path.name}: {_mode(path):04o}"
    assert _mode(backups) == 0o700
    from storage.lock import InstanceLock

    with InstanceLock.acquire(db_path):  # run_service takes it; its file is made private on every acquire
        assert _mode(lock) == 0o600
    await harness.stop()
    for path in (p for p in (db_path, wal, shm, lock, old_backup, new_backup) if p.exists()):
        assert _mode(path) == 0o600, f"after the run, {path.name}: {_mode(path):04o}"


async def test_a_reset_leaves_the_next_start_paused_until_resume(harness: Harness) -> None:
    await harness.start()
    engine = harness.engine
    assert not engine.ctx.paused and engine.scanner.blocked("SOLUSDT") is None
    settings = harness.settings()
    await harness.stop()

    assert cmd_reset(settings, yes=True) == 0
    (reset_backup,) = (settings.db_path.parent / "backups").glob("surgedca-reset-*.sqlite3")

    await harness.start()
    engine = harness.engine
    assert engine.ctx.paused
    assert engine.scanner.blocked("SOLUSDT") == "paused"  # the gate every entry passes
    started = [e for e in harness.recorder.events if isinstance(e, ServiceStarted)][-1]
    assert started.details["paused"] == "yes"
    assert harness.store.state.get("binding")["mode"] == "live"  # still the same account's database

    assert await harness.service.api.resume(actor="tg:1")
    assert engine.scanner.blocked("SOLUSDT") is None
    await harness.stop()
    with Database.open(settings.db_path) as db:
        assert SystemState(db).paused is False
    assert reset_backup.is_file()
