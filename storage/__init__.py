"""SQLite storage: the database (WAL, one connection), migrations, repositories, backups.

Typical use in the service::

    lock = InstanceLock.acquire(settings.db_path)      # refuse a second instance
    db = Database.open(settings.db_path)               # integrity check + migrations
    db.start_checkpointer()                            # keep WAL checkpoints off the order path
    positions, fills, audit = PositionsRepo(db), FillsRepo(db), AuditLog(db)
    journal = OrdersJournal(db)
    journal.insert_pending(cid, ...)                   # hot path: one INSERT, nothing else
    with db.transaction():                             # a fill: all or nothing
        fills.add(...); positions.save_state(...); audit.add(...)
"""

from __future__ import annotations

from storage.backup import backup, backup_dir_for, latest_backup, list_backups
from storage.db import Database, InstanceLock
from storage.errors import (
    ActivePositionExists,
    AlreadyRunning,
    DatabaseCorrupt,
    DuplicateClientOrderId,
    DuplicateFill,
    MigrationFailed,
    PositionNotFound,
    PositionStateError,
    SchemaTooNew,
    StorageError,
    UnknownOrder,
)
from storage.repositories import (
    AuditLog,
    AuditRow,
    ConfigHistoryRow,
    ConfigStore,
    Cooldown,
    Cooldowns,
    DailyStats,
    DayStats,
    EquityLog,
    EquityPoint,
    FillRecord,
    FillsRepo,
    FillTotals,
    JournalRow,
    OrdersJournal,
    PositionRecord,
    PositionsRepo,
    SystemState,
)

__all__ = [
    "ActivePositionExists",
    "AlreadyRunning",
    "AuditLog",
    "AuditRow",
    "ConfigHistoryRow",
    "ConfigStore",
    "Cooldown",
    "Cooldowns",
    "DailyStats",
    "Database",
    "DatabaseCorrupt",
    "DayStats",
    "DuplicateClientOrderId",
    "DuplicateFill",
    "EquityLog",
    "EquityPoint",
    "FillRecord",
    "FillTotals",
    "FillsRepo",
    "InstanceLock",
    "JournalRow",
    "MigrationFailed",
    "OrdersJournal",
    "PositionNotFound",
    "PositionRecord",
    "PositionStateError",
    "PositionsRepo",
    "SchemaTooNew",
    "StorageError",
    "SystemState",
    "UnknownOrder",
    "backup",
    "backup_dir_for",
    "latest_backup",
    "list_backups",
]
