"""The database and everything beside it are the owner's only: positions, orders, the audit log, chat ids.

New files are created ``0600`` (directories ``0700``) whatever the process umask; ``private_umask`` makes the
rest of a run follow; ``secure_files`` takes group and other bits off files that already exist (a database
made by an older version, a backup copied in by hand) and says so in the log.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
PRIVATE_FILE = 0o600
SIDE_FILES = ("-wal", "-shm", "-journal", ".lock")  # SQLite's companions and our instance lock


def private_umask() -> int:
    """From now on this process creates files for its owner only; returns the previous umask."""
    return os.umask(PRIVATE_UMASK)


def create_private(path: Path) -> None:
    """Create an empty ``0600`` file unless it exists (SQLite then keeps that mode for its -wal/-shm files)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE))


def tighten(path: Path) -> bool:
    """Take the group and other bits off ``path`` if it exists; True if it had any."""
    try:
        mode = stat.S_IMODE(path.lstat().st_mode)
    except FileNotFoundError:
        return False
    if path.is_symlink() or not mode & 0o077:
        return False
    os.chmod(path, mode & ~0o077)
    log.warning("%s was readable by others (mode %04o): now %04o", path, mode, mode & ~0o077)
    return True


def database_files(db_path: Path, backup_dir: Path | None = None) -> list[Path]:
    """The database, its companions, the backup folder and every file in it."""
    from storage.backup import backup_dir_for

    db_path = Path(db_path)
    paths = [db_path, *(db_path.with_name(db_path.name + suffix) for suffix in SIDE_FILES)]
    folder = backup_dir_for(db_path, backup_dir)
    if folder.is_dir():
        paths.append(folder)
        paths.extend(sorted(p for p in folder.iterdir() if p.is_file()))
    return paths


def secure_files(db_path: Path, backup_dir: Path | None = None, extra: Iterable[Path] = ()) -> list[Path]:
    """Make the database's files private (see :func:`database_files`); returns the ones that were not."""
    return [p for p in (*database_files(db_path, backup_dir), *extra) if tighten(p)]
