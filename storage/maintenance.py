"""``surgedca backup`` and ``surgedca reset`` (the original notes' reset scripts, done safely)."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from storage.audit import AuditLog
from storage.backup import backup, backup_dir_for
from storage.db import Database
from storage.errors import StorageError
from storage.journal import OrdersJournal
from storage.lock import InstanceLock
from storage.positions import PositionsRepo
from storage.state import BINDING_KEY, INSTANCE_TAG_KEY, SystemState
from trading.clock import SystemClock

if TYPE_CHECKING:
    from trading.settings import Settings

ACTOR = "cli"
# Cleared by reset, children before parents (foreign keys).
CLEARED_TABLES = (
    "funding",
    "adoption_requests",
    "fills",
    "orders",
    "positions",
    "cooldowns",
    "symbol_blocks",
    "daily_stats",
    "equity_log",
    "system_state",
    "config_overrides",
)
# Kept: the audit log (rule 7) and the config history (a record of who changed what;
# reset appends one row per dropped override so the history ends at the defaults).
KEPT_TABLES = ("audit_log", "config_history")
# Kept in system_state: whose database this is (a reset does not make it another account's).
# The account binding, and the instance tag in every client order id: orders this database placed before the
# reset must still read as its own (another tag means another installation, and trading would be refused).
KEPT_STATE_KEYS = (BINDING_KEY, INSTANCE_TAG_KEY)


def cmd_backup(settings: Settings) -> int:
    """Online backup to ``BACKUP_DIR`` (default ``backups/`` beside the database); prints the new file."""
    db_path = Path(settings.db_path)
    if not db_path.is_file():
        print(f"surgedca backup: there is no database at {db_path}; nothing to back up", file=sys.stderr)
        return 1
    dest = backup_dir_for(db_path, settings.backup_dir)
    try:
        # As it is (no migration): a running service may be using it, which the backup API allows.
        db = Database.open(db_path, migrate=False, backup_dir=settings.backup_dir)
    except (StorageError, sqlite3.Error) as exc:
        print(f"surgedca backup: {exc}", file=sys.stderr)
        return 1
    try:
        path = backup(db, dest, settings.backup_keep, SystemClock().now_ms())
    except (StorageError, sqlite3.Error, OSError) as exc:
        print(f"surgedca backup: failed, no backup was made: {exc}", file=sys.stderr)
        return 1
    finally:
        db.close()
    print(path)
    return 0


def with_stopped_service(
    settings: Settings, command: str, work: Callable[[Database], int], *, missing_ok: bool = False, hint: str = ""
) -> int:
    """Run ``work`` on the database under the instance lock (so only while the service is stopped).

    Every refusal prints one line naming the command and returns 1; a missing database is fine (0) for a
    command that has nothing to do then (``missing_ok``)."""
    db_path = Path(settings.db_path)
    if not db_path.is_file():
        if missing_ok:
            print(f"surgedca {command}: there is no database at {db_path}; nothing to {command}")
            return 0
        print(f"surgedca {command}: there is no database at {db_path}", file=sys.stderr)
        return 1
    try:
        lock = InstanceLock.acquire(db_path)
    except StorageError as exc:
        print(f"surgedca {command}: refused: {exc}{hint}", file=sys.stderr)
        return 1
    try:
        with Database.open(db_path, backup_dir=settings.backup_dir) as db:
            return work(db)
    except (StorageError, sqlite3.Error) as exc:
        print(f"surgedca {command}: {exc}", file=sys.stderr)
        return 1
    finally:
        lock.release()


def cmd_reset(settings: Settings, yes: bool) -> int:
    """Start afresh: refuse while the service runs or a position/order is live; back up; clear; audit."""
    return with_stopped_service(settings, "reset", lambda db: _reset(db, settings, yes), missing_ok=True)


def _reset(db: Database, settings: Settings, yes: bool) -> int:
    active = PositionsRepo(db).list_active()
    if active:
        listing = ", ".join(f"{p.symbol} ({p.status}, id {p.id})" for p in active)
        print(
            f"surgedca reset: refused: {len(active)} position(s) still pending or open: {listing}. "
            "Close them first (/exit SYMBOL, or on the exchange, then let the service reconcile) and retry.",
            file=sys.stderr,
        )
        return 1
    unresolved = OrdersJournal(db).unresolved()
    if unresolved:
        listing = ", ".join(f"{o.client_order_id} ({o.symbol}, {o.status})" for o in unresolved[:10])
        print(
            f"surgedca reset: refused: {len(unresolved)} order(s) with an unknown outcome: {listing}. "
            "Start the service once so it resolves them against the exchange, then retry.",
            file=sys.stderr,
        )
        return 1

    counts = {t: _count(db, t) for t in CLEARED_TABLES}
    kept = {t: _count(db, t) for t in KEPT_TABLES}
    dest = backup_dir_for(db.path, settings.backup_dir)
    if not yes:
        print(f"surgedca reset would, on {db.path}:")
        print(f"  1. back up the database to {dest}/")
        print("  2. delete " + ", ".join(f"{t} ({n} rows)" for t, n in counts.items()))
        print("  3. keep " + ", ".join(f"{t} ({n} rows)" for t, n in kept.items()) + ", and add a 'reset' audit row")
        print("  4. leave the service paused: no new entries until /resume (or `surgedca resume`)")
        print("Nothing was changed. Run `surgedca reset --yes` to do it.")
        return 1

    now = SystemClock().now_ms()
    try:
        path = backup(db, dest, settings.backup_keep, now, label="reset")  # never pruned
    except (StorageError, sqlite3.Error, OSError) as exc:
        print(f"surgedca reset: the backup failed, nothing was changed: {exc}", file=sys.stderr)
        return 1
    with db.transaction():
        overrides = db.conn.execute("SELECT key, value FROM config_overrides ORDER BY key").fetchall()
        for key, value in overrides:
            db.conn.execute(
                "INSERT INTO config_history (ts_ms, actor, key, old, new) VALUES (?,?,?,?,?)",
                (now, ACTOR, key, value, "null"),
            )
        for table in CLEARED_TABLES:
            if table == "system_state":
                marks = ",".join("?" * len(KEPT_STATE_KEYS))
                db.conn.execute(f"DELETE FROM system_state WHERE key NOT IN ({marks})", KEPT_STATE_KEYS)
            else:
                db.conn.execute(f"DELETE FROM {table}")
        # A fresh start must not trade by itself: whoever reset looks at the config first, then resumes.
        SystemState(db).paused = True
        AuditLog(db).add(ACTOR, "reset", before=counts, after={"backup": str(path), "paused": True}, ts_ms=now)
    print(f"reset done; backup (kept until you delete it): {path}")
    print("cleared: " + ", ".join(f"{t} ({n})" for t, n in counts.items()))
    print(f"kept: audit log ({kept['audit_log'] + 1} rows), config history, the database's binding")
    print("the service is paused: it opens no position until /resume in Telegram (or `surgedca resume`)")
    return 0


def cmd_resume(settings: Settings) -> int:
    """Allow new entries again while the service is stopped (``/resume`` does it while it runs)."""
    return with_stopped_service(settings, "resume", _resume, hint=" (use /resume in Telegram while it runs)")


def _resume(db: Database) -> int:
    state = SystemState(db)
    if not state.paused:
        print("not paused: new entries are already allowed")
        return 0
    with db.transaction():
        state.paused = False
        AuditLog(db).add(
            ACTOR, "resume", before={"paused": True}, after={"paused": False}, ts_ms=SystemClock().now_ms()
        )
    print("resumed: the service opens new positions again from its next start")
    return 0


def _count(db: Database, table: str) -> int:
    return int(db.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
