"""Online backups with SQLite's backup API: a consistent copy while the service keeps running.

Each backup is a self-contained file (rollback-journal mode, no -wal beside
it) named ``surgedca-YYYYMMDD-HHMMSS.sqlite3`` (UTC). It is written to a
hidden temporary name, checked with ``quick_check``, fsynced and only then
renamed, so a crash mid-backup never leaves a file that looks complete.
Restoring is a plain copy over the database while the service is stopped.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from storage.errors import StorageError
from storage.permissions import create_private

if TYPE_CHECKING:
    from storage.db import Database

_NAME = re.compile(r"^surgedca-(\d{8})-(\d{6})(?:-(\d+))?\.sqlite3$")
_PARTIAL_PREFIX = ".surgedca-"
_PARTIAL_SUFFIX = ".partial"


def backup_dir_for(db_path: Path, backup_dir: Path | None = None) -> Path:
    """``backup_dir`` when set (``BACKUP_DIR``), else ``backups/`` beside the database."""
    return Path(backup_dir) if backup_dir is not None else Path(db_path).parent / "backups"


def backup(db: Database, dest_dir: Path, keep: int, now_ms: int, *, label: str | None = None) -> Path:
    """Copy the open database to ``dest_dir``; keep the newest ``keep`` backups. Returns the new file.

    With a ``label`` (e.g. ``reset``) the copy is named ``surgedca-<label>-YYYYMMDD-HHMMSS.sqlite3``: not one of
    the rotating backups, so pruning never removes it (and it prunes nothing)."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1 (the backup just made), got {keep}")
    if db.in_transaction:
        # The backup would copy this connection's uncommitted changes.
        raise StorageError("cannot back up inside a transaction: it would copy half-written changes")
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = _free_name(dest_dir, now_ms, label)
    tmp = dest_dir / f"{_PARTIAL_PREFIX}{target.name}{_PARTIAL_SUFFIX}"
    tmp.unlink(missing_ok=True)
    try:
        create_private(tmp)  # a copy of the database is as private as the database
        dst = sqlite3.connect(str(tmp), isolation_level=None)
        try:
            db.conn.backup(dst)
            # A single file: the copy carries the WAL flag of its source otherwise.
            dst.execute("PRAGMA journal_mode = DELETE")
            findings = [str(r[0]) for r in dst.execute("PRAGMA quick_check")]
        finally:
            dst.close()
        if findings != ["ok"]:
            raise StorageError(f"the backup copy failed its check ({'; '.join(findings[:3])}); it was discarded")
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(dest_dir)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if label is None:
        prune(dest_dir, keep)
    return target


def list_backups(dest_dir: Path) -> list[Path]:
    """Backups in ``dest_dir``, oldest first (by the time in their names)."""
    dest_dir = Path(dest_dir)
    if not dest_dir.is_dir():
        return []
    found: list[tuple[tuple[str, str, int], Path]] = []
    for p in dest_dir.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append(((m.group(1), m.group(2), int(m.group(3) or 0)), p))
    return [p for _, p in sorted(found)]


def latest_backup(dest_dir: Path) -> Path | None:
    backups = list_backups(dest_dir)
    return backups[-1] if backups else None


def backup_taken_at_ms(path: Path) -> int | None:
    """The UTC time in a backup's name (second precision), or None for another name."""
    m = _NAME.match(Path(path).name)
    if not m:
        return None
    when = dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return int(when.timestamp()) * 1000


def prune(dest_dir: Path, keep: int) -> list[Path]:
    """Delete the oldest backups beyond ``keep`` (and leftovers of interrupted ones); returns what was deleted."""
    backups = list_backups(dest_dir)
    doomed = backups[: max(0, len(backups) - keep)]
    for p in Path(dest_dir).iterdir():
        if p.name.startswith(_PARTIAL_PREFIX) and p.name.endswith(_PARTIAL_SUFFIX):
            doomed.append(p)
    for p in doomed:
        p.unlink(missing_ok=True)
    return doomed


def _free_name(dest_dir: Path, now_ms: int, label: str | None = None) -> Path:
    if label is not None and not re.fullmatch(r"[a-z]+", label):
        raise ValueError(f"a backup label is lower-case letters, got {label!r}")
    stamp = dt.datetime.fromtimestamp(now_ms / 1000, tz=dt.UTC).strftime("%Y%m%d-%H%M%S")
    base = f"surgedca-{label}-{stamp}" if label else f"surgedca-{stamp}"
    target = dest_dir / f"{base}.sqlite3"
    n = 1
    while target.exists():  # two backups within one second
        target = dest_dir / f"{base}-{n}.sqlite3"
        n += 1
    return target


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem allows fsync on a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
