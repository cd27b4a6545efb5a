"""The SQLite database: one connection, WAL, explicit transactions, integrity check and migrations at open.

The service uses one ``sqlite3`` connection from the asyncio thread: every
call is a short synchronous statement (no thread pool, no await inside a
transaction). WAL with ``synchronous=NORMAL`` makes a commit an append to the
WAL without waiting for fsync; a power cut may lose the last commits but
never corrupts the file, and a process crash loses nothing committed.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType

from storage.codec import dec_add
from storage.errors import DatabaseCorrupt, StorageError
from storage.lock import InstanceLock, lock_path_for
from storage.migrations import MIGRATIONS, Migration, apply_migrations, user_version
from storage.permissions import create_private

__all__ = ["Database", "InstanceLock", "lock_path_for"]

MEMORY = ":memory:"
BUSY_TIMEOUT_MS = 5_000
# A full integrity_check reads every page and checks every index; above this size quick_check
# (page structure only, O(N)) keeps start-up short.
QUICK_CHECK_ABOVE_BYTES = 256 * 1024 * 1024
JOURNAL_SIZE_LIMIT_BYTES = 32 * 1024 * 1024
_CORRUPTION_CODES = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary codes)

log = logging.getLogger(__name__)


class Database:
    """An open SurgeDCA database. Create with ``Database.open(path)``."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._savepoints = 0
        self._checkpointer: _Checkpointer | None = None

    # ------------------------------------------------------------------ open
    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        migrate: bool = True,
        check: bool = True,
        migrations: Sequence[Migration] = MIGRATIONS,
        backup_dir: Path | None = None,
        busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    ) -> Database:
        """Open (creating if needed) the file: pragmas, integrity check, then forward migrations.

        ``migrate=False`` opens an existing file as it is (``surgedca backup`` next to a running
        service). ``backup_dir`` only improves the message of ``DatabaseCorrupt``.
        Raises ``DatabaseCorrupt``, ``SchemaTooNew`` or ``MigrationFailed`` with an operator message.
        """
        memory = str(path) == MEMORY
        path = Path(path)
        if not memory:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            create_private(path)  # 0600 whatever the umask; SQLite gives its -wal/-shm files the same mode
        try:
            conn = sqlite3.connect(
                MEMORY if memory else str(path), isolation_level=None, timeout=busy_timeout_ms / 1000
            )
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the database {path}: {exc}") from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            conn.execute("PRAGMA foreign_keys = ON")
            # Checked before anything writes (the WAL switch rewrites the header): a damaged file stays as found.
            if check:
                _check_integrity(conn, path, backup_dir)
            mode = str(conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]).lower()
            if mode != "wal" and not (memory and mode == "memory"):
                raise StorageError(
                    f"{path}: SQLite refused WAL mode (journal_mode is {mode!r}); is it on a network disk?"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
            if migrate:
                apply_migrations(conn, str(path), migrations)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if _is_corruption(exc):
                raise DatabaseCorrupt(_corrupt_message(path, str(exc), backup_dir)) from exc
            raise StorageError(f"cannot open the database {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        # Exact Decimal arithmetic inside single UPDATE statements (fees, daily sums).
        conn.create_function("dec_add", 2, dec_add, deterministic=True)
        return cls(path, conn)

    # ------------------------------------------------------------ transactions
    @contextlib.contextmanager
    def transaction(self) -> Iterator[Database]:
        """All or nothing: ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception.

        Re-entrant: inside another transaction it becomes a SAVEPOINT, so a
        failing inner block undoes only its own work. Never ``await`` inside:
        other tasks' writes would join (and commit with) this transaction.
        """
        conn = self.conn
        if conn.in_transaction:
            self._savepoints += 1
            name = f"sdca_sp{self._savepoints}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO {name}")
                    conn.execute(f"RELEASE {name}")
                raise
            else:
                conn.execute(f"RELEASE {name}")
            finally:
                self._savepoints -= 1
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if not conn.in_transaction:
            # SQLite rolls back by itself on some errors (disk full, I/O) even if the caller caught them.
            raise StorageError(f"{self.path}: the transaction was aborted by SQLite; none of its changes were saved")
        try:
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    # ------------------------------------------------------------------- misc
    @property
    def schema_version(self) -> int:
        return user_version(self.conn)

    def size_bytes(self) -> int:
        """Bytes on disk: the file plus its WAL (pages in use for an in-memory database)."""
        if str(self.path) == MEMORY:
            page_count = self.conn.execute("PRAGMA page_count").fetchone()[0]
            page_size = self.conn.execute("PRAGMA page_size").fetchone()[0]
            return int(page_count) * int(page_size)
        total = 0
        for p in (self.path, self.path.with_name(self.path.name + "-wal")):
            with contextlib.suppress(FileNotFoundError):
                total += p.stat().st_size
        return total

    def checkpoint(self, mode: str = "PASSIVE") -> tuple[int, int, int]:
        """Copy the WAL into the file (SQLite also does this every ~1000 pages by itself).

        Call it from a timer, off the order path, to keep automatic checkpoints
        (which fsync) away from commits that matter. Returns (busy, wal pages, pages copied).
        """
        if mode.upper() not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
            raise ValueError(f"checkpoint mode must be PASSIVE, FULL, RESTART or TRUNCATE, got {mode!r}")
        row = self.conn.execute(f"PRAGMA wal_checkpoint({mode.upper()})").fetchone()
        return int(row[0]), int(row[1]), int(row[2])

    def start_checkpointer(self, interval_s: float = 5.0) -> None:
        """Move WAL checkpoints to a background thread with its own connection (for ``surgedca run``).

        SQLite otherwise checkpoints inside whichever commit crosses ~1000 WAL pages, fsyncing
        for milliseconds; that commit may be the journal insert of an order. A PASSIVE checkpoint
        from another connection never blocks this connection's reads or writes. Stopped by ``close()``.
        """
        if self._checkpointer is not None or str(self.path) == MEMORY:
            return
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = _Checkpointer(self.path, interval_s)
        self._checkpointer.start()

    def integrity_check(self, *, quick: bool = False) -> list[str]:
        """SQLite's findings; ``["ok"]`` when the file is sound."""
        pragma = "quick_check" if quick else "integrity_check"
        return [str(r[0]) for r in self.conn.execute(f"PRAGMA {pragma}")]

    def close(self) -> None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()
        conn = self.conn
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA optimize")
        finally:
            conn.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"


class _Checkpointer(threading.Thread):
    def __init__(self, path: Path, interval_s: float) -> None:
        super().__init__(name=f"sqlite-checkpoint:{path.name}", daemon=True)
        self._path = path
        self._interval_s = interval_s
        self._stop_event = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(str(self._path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        failures = 0
        try:
            while not self._stop_event.wait(self._interval_s):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    failures = 0
                except sqlite3.Error as exc:  # keep trying: the WAL only grows meanwhile
                    failures += 1
                    if failures in (1, 10, 100):
                        log.warning("WAL checkpoint of %s failed (%d times in a row): %s", self._path, failures, exc)
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


# ------------------------------------------------------------------ integrity
def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _CORRUPTION_CODES:
        return True
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def _check_integrity(conn: sqlite3.Connection, path: Path, backup_dir: Path | None) -> None:
    try:
        size = path.stat().st_size
    except (FileNotFoundError, OSError):
        size = 0
    pragma = "quick_check" if size > QUICK_CHECK_ABOVE_BYTES else "integrity_check"
    # Capped at 20 findings: enough to diagnose, short enough to read.
    findings = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}(20)")]
    if findings != ["ok"]:
        raise DatabaseCorrupt(_corrupt_message(path, "; ".join(findings[:5]), backup_dir, f"found by PRAGMA {pragma}"))


def _corrupt_message(path: Path, detail: str, backup_dir: Path | None, how: str = "found while opening") -> str:
    from storage.backup import backup_dir_for, latest_backup

    folder = backup_dir_for(path, backup_dir)
    latest = latest_backup(folder)
    if latest is not None:
        restore = (
            f"Stop SurgeDCA, move {path} (and {path.name}-wal / {path.name}-shm if present) aside, "
            f"then restore the last backup: cp {latest} {path}"
        )
    else:
        restore = (
            f"No backup was found in {folder}. Stop SurgeDCA, move {path} (and its -wal/-shm files) aside "
            f"and restore a copy from elsewhere, or start empty (positions will be adopted from the exchange)"
        )
    return f"database {path} is corrupt ({how}): SQLite says: {detail}. Nothing was changed. {restore}."
