from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from storage import Database, MigrationFailed, SchemaTooNew
from storage.migrations import MIGRATIONS, SCHEMA_VERSION, Migration

TABLES = {
    "positions",
    "fills",
    "orders",
    "audit_log",
    "config_overrides",
    "config_history",
    "cooldowns",
    "daily_stats",
    "system_state",
    "equity_log",
}


def _schema(path: Path) -> list[tuple[str, str]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    finally:
        conn.close()


def _names(db: Database, kind: str) -> set[str]:
    """The tables or indexes (``kind``) the file holds."""
    return {r[0] for r in db.conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))}


def test_fresh_file_gets_every_table_and_the_latest_version(db_path: Path) -> None:
    assert not db_path.parent.exists()
    with Database.open(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION == MIGRATIONS[-1].version
        assert _names(db, "table") >= TABLES
        assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert db.conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        indexes = _names(db, "index")
        assert "positions_one_active_per_symbol" in indexes


def test_reopen_is_idempotent_and_keeps_data(db_path: Path) -> None:
    with Database.open(db_path) as db:
        db.conn.execute("INSERT INTO cooldowns VALUES ('ETHUSDT', 5, 'stop_loss')")
    before = _schema(db_path)
    for _ in range(2):
        with Database.open(db_path) as db:
            assert db.schema_version == SCHEMA_VERSION
            assert db.conn.execute("SELECT symbol FROM cooldowns").fetchall() == [("ETHUSDT",)]
    assert _schema(db_path) == before


NEXT = SCHEMA_VERSION + 1


def test_old_version_file_migrates_forward(db_path: Path) -> None:
    with Database.open(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION
        db.conn.execute("INSERT INTO cooldowns VALUES ('ETHUSDT', 5, 'stop_loss')")
    newer = (
        *MIGRATIONS,
        Migration(NEXT, "cooldown note", ("ALTER TABLE cooldowns ADD COLUMN note TEXT DEFAULT 'n/a'",)),
    )
    with Database.open(db_path, migrations=newer) as db:
        assert db.schema_version == NEXT
        assert db.conn.execute("SELECT symbol, note FROM cooldowns").fetchall() == [("ETHUSDT", "n/a")]
    with Database.open(db_path, migrations=newer) as db:  # and again: nothing left to do
        assert db.schema_version == NEXT


def test_a_version_1_file_with_the_brokers_own_sim_tables_gains_the_stop_quantity(db_path: Path) -> None:
    """Before version 2 the simulated broker created its tables itself (without the reduce-only stops' qty)."""
    with Database.open(db_path, migrations=MIGRATIONS[:1]) as db:
        db.conn.execute(
            "CREATE TABLE sim_algo_orders (account TEXT NOT NULL, algo_id INTEGER NOT NULL, client_algo_id TEXT "
            "NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, "
            "trigger_price TEXT NOT NULL, close_position INTEGER NOT NULL, working_type TEXT NOT NULL, "
            "update_time INTEGER NOT NULL, PRIMARY KEY (account, algo_id))"
        )
        db.conn.execute(
            "INSERT INTO sim_algo_orders VALUES ('sim', 1, 'sdca-1-bs-1', 'AUSDT', 'SELL', "
            "'STOP_MARKET', 'NEW', '9.5', 1, 'MARK_PRICE', 5)"
        )
    with Database.open(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION
        rows = db.conn.execute("SELECT client_algo_id, qty FROM sim_algo_orders").fetchall()
        assert rows == [("sdca-1-bs-1", None)]


def test_a_version_1_file_gets_every_later_migration(db_path: Path) -> None:
    with Database.open(db_path, migrations=MIGRATIONS[:1]) as db:
        assert db.schema_version == 1
        db.conn.execute("INSERT INTO cooldowns VALUES ('ETHUSDT', 5, 'stop_loss')")
    with Database.open(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION
        assert "symbol_blocks" in _names(db, "table")
        assert db.conn.execute("SELECT symbol FROM cooldowns").fetchall() == [("ETHUSDT",)]


def test_failed_migration_rolls_back_to_the_previous_version(db_path: Path) -> None:
    Database.open(db_path).close()
    bad = (*MIGRATIONS, Migration(NEXT, "broken", ("CREATE TABLE half_done (x)", "THIS IS NOT SQL")))
    with pytest.raises(MigrationFailed, match=rf"version {NEXT} \(broken\).*still at version {SCHEMA_VERSION}"):
        Database.open(db_path, migrations=bad)
    with Database.open(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION
        assert "half_done" not in _names(db, "table")


def test_callable_step_runs_inside_the_migration(db_path: Path) -> None:
    seen: list[bool] = []

    def step(conn: sqlite3.Connection) -> None:
        seen.append(conn.in_transaction)
        conn.execute("INSERT INTO system_state (key, value) VALUES ('migrated', 'true')")

    with Database.open(db_path, migrations=(*MIGRATIONS, Migration(NEXT, "data", (step,)))) as db:
        assert seen == [True]
        assert db.conn.execute("SELECT value FROM system_state").fetchone() == ("true",)


def test_newer_file_is_refused_untouched(db_path: Path) -> None:
    Database.open(db_path).close()
    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    digest = hashlib.sha256(db_path.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNew, match="schema version 99"):
        Database.open(db_path)
    assert hashlib.sha256(db_path.read_bytes()).hexdigest() == digest


def test_misnumbered_migrations_are_a_programming_error(db_path: Path) -> None:
    with pytest.raises(ValueError, match="numbered"):
        Database.open(db_path, migrations=(Migration(1, "a", ()), Migration(3, "b", ())))


def test_a_version_3_database_gets_funding_with_its_trades_kept(db_path: Path) -> None:
    from decimal import Decimal

    from storage.stats import DailyStats
    from trading.store import Store

    with Database.open(db_path, migrations=MIGRATIONS[:3]) as db:
        assert db.schema_version == 3
        db.conn.execute(
            "INSERT INTO positions (id, symbol, status, origin, stage, max_stage, qty, initial_price, realized_pnl, "
            "close_reason, created_at_ms, opened_at_ms, closed_at_ms, updated_at_ms) VALUES "
            "(7, 'SOLUSDT', 'closed', 'signal', 'initial', 'initial', '0', '100', '1.5', 'manual', 1, 1, 2, 2)"
        )
        db.conn.execute("INSERT INTO daily_stats VALUES ('2026-01-01', 1, 1, '1.5', '0.1')")
    with Database.open(db_path) as db:
        assert db.schema_version == SCHEMA_VERSION >= 4
        store = Store.of(db)
        rec = store.positions.get(7)
        assert rec is not None and (rec.funding, rec.realized_pnl) == (Decimal(0), Decimal("1.5"))
        day = DailyStats(db).get("2026-01-01")
        assert day is not None and (day.realized_pnl, day.funding) == (Decimal("1.5"), Decimal(0))
        assert store.funding.for_position(7) == []
        store.funding.add(7, "SOLUSDT", "123", Decimal("-0.2"), 1, 3)
        with pytest.raises(sqlite3.IntegrityError, match="immutable"):
            db.conn.execute("UPDATE funding SET amount = '0'")
