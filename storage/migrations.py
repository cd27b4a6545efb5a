"""Schema versions: an ordered list of forward migrations, applied at open.

The version lives in ``PRAGMA user_version`` (0 = empty file). Each migration
runs in its own ``BEGIN IMMEDIATE`` transaction together with the version
bump, so a crash or an error leaves the file at the previous version, never
in between. To change the schema, append a ``Migration`` with the next
version number; never edit one that has shipped. (A step that rebuilds a
table must run with ``PRAGMA foreign_keys=OFF``, which cannot change inside a
transaction: give it a callable step that checks ``foreign_key_check`` itself.)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from storage.errors import MigrationFailed, SchemaTooNew

Step = str | Callable[[sqlite3.Connection], None]


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    steps: tuple[Step, ...]


_STAGES = "('initial','first_dca','second_dca')"

_V1: tuple[str, ...] = (
    # Positions: one row per trade (pending entry -> open -> closed, or failed).
    f"""
    CREATE TABLE positions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        symbol TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending','open','closed','failed')),
        origin TEXT NOT NULL CHECK (origin IN ('signal','adopted')),
        stage TEXT NOT NULL CHECK (stage IN {_STAGES}),
        max_stage TEXT NOT NULL CHECK (max_stage IN {_STAGES}),
        qty TEXT NOT NULL,
        initial_price TEXT NOT NULL,
        lots TEXT NOT NULL DEFAULT '[]',
        dca1_done INTEGER NOT NULL DEFAULT 0 CHECK (dca1_done IN (0,1)),
        dca2_done INTEGER NOT NULL DEFAULT 0 CHECK (dca2_done IN (0,1)),
        half_taken INTEGER NOT NULL DEFAULT 0 CHECK (half_taken IN (0,1)),
        peak_price TEXT,
        margin TEXT NOT NULL DEFAULT '0',
        fees TEXT NOT NULL DEFAULT '0',
        realized_pnl TEXT,
        close_reason TEXT,
        backstop_client_id TEXT,
        backstop_price TEXT,
        backstop_algo_id TEXT,
        created_at_ms INTEGER NOT NULL,
        opened_at_ms INTEGER NOT NULL,
        closed_at_ms INTEGER,
        updated_at_ms INTEGER NOT NULL
    )
    """,
    # At most one pending-or-open position per symbol, enforced by SQLite itself.
    "CREATE UNIQUE INDEX positions_one_active_per_symbol ON positions(symbol) WHERE status IN ('pending','open')",
    "CREATE INDEX positions_closed_at ON positions(closed_at_ms) WHERE status = 'closed'",
    # Fills ("legs"): every execution of every position, never updated.
    """
    CREATE TABLE fills (
        id INTEGER PRIMARY KEY,
        position_id INTEGER NOT NULL REFERENCES positions(id),
        client_order_id TEXT NOT NULL,
        trade_id TEXT NOT NULL DEFAULT '',
        side TEXT NOT NULL CHECK (side IN ('BUY','SELL')),
        price TEXT NOT NULL,
        qty TEXT NOT NULL,
        fee TEXT NOT NULL DEFAULT '0',
        stage TEXT,
        reason TEXT,
        realized_pnl TEXT,
        ts_ms INTEGER NOT NULL,
        UNIQUE (client_order_id, trade_id)
    )
    """,
    "CREATE INDEX fills_position ON fills(position_id)",
    """
    CREATE TRIGGER fills_immutable BEFORE UPDATE ON fills
    BEGIN SELECT RAISE(ABORT, 'fills are immutable'); END
    """,
    # Orders journal: written as 'pending' before an order is sent (order-safety rule 1).
    """
    CREATE TABLE orders (
        client_order_id TEXT PRIMARY KEY,
        position_id INTEGER REFERENCES positions(id),
        symbol TEXT NOT NULL,
        action TEXT NOT NULL,
        kind TEXT NOT NULL,
        side TEXT NOT NULL CHECK (side IN ('BUY','SELL')),
        qty TEXT NOT NULL,
        reduce_only INTEGER NOT NULL CHECK (reduce_only IN (0,1)),
        trigger_price TEXT,
        status TEXT NOT NULL CHECK (status IN ('pending','sent','filled','rejected','unknown','canceled','expired')),
        exchange_order_id TEXT,
        filled_qty TEXT,
        avg_price TEXT,
        fee TEXT,
        error_code,
        error TEXT,
        raw TEXT,
        attempts INTEGER NOT NULL DEFAULT 1,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    )
    """,
    "CREATE INDEX orders_position ON orders(position_id)",
    "CREATE INDEX orders_unresolved ON orders(created_at_ms) WHERE status IN ('pending','sent','unknown')",
    # Audit log: who did what, before/after. Append-only; `surgedca reset` keeps it.
    """
    CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        symbol TEXT,
        before TEXT,
        after TEXT
    )
    """,
    "CREATE INDEX audit_log_ts ON audit_log(ts_ms)",
    "CREATE INDEX audit_log_action ON audit_log(action, ts_ms)",
    """
    CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    """
    CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
    """,
    # Strategy config overrides set from Telegram, and their history.
    """
    CREATE TABLE config_overrides (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        actor TEXT NOT NULL,
        updated_at_ms INTEGER NOT NULL
    )
    """,
    """
    CREATE TABLE config_history (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        ts_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        key TEXT NOT NULL,
        old TEXT,
        new TEXT
    )
    """,
    "CREATE TABLE cooldowns (symbol TEXT PRIMARY KEY, until_ms INTEGER NOT NULL, reason TEXT NOT NULL)",
    """
    CREATE TABLE daily_stats (
        day TEXT PRIMARY KEY,
        trades INTEGER NOT NULL DEFAULT 0,
        wins INTEGER NOT NULL DEFAULT 0,
        realized_pnl TEXT NOT NULL DEFAULT '0',
        fees TEXT NOT NULL DEFAULT '0'
    )
    """,
    "CREATE TABLE system_state (key TEXT PRIMARY KEY, value TEXT, updated_at_ms INTEGER)",
    "CREATE TABLE equity_log (ts_ms INTEGER PRIMARY KEY, balance TEXT NOT NULL, equity TEXT NOT NULL)",
)

# The simulated exchange (sim and paper modes) keeps its account in these tables, keyed by account ("sim" or
# "paper"). Databases written before this migration may have them already (the broker used to create them):
# IF NOT EXISTS, and the reduce-only quantity stops' column added where it is missing.
_V2_SIM = (
    "CREATE TABLE IF NOT EXISTS sim_meta (account TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    " PRIMARY KEY (account, key))",
    "CREATE TABLE IF NOT EXISTS sim_positions (account TEXT NOT NULL, symbol TEXT NOT NULL, qty TEXT NOT NULL,"
    " entry_price TEXT NOT NULL, mark_price TEXT NOT NULL, update_time INTEGER NOT NULL,"
    " PRIMARY KEY (account, symbol))",
    "CREATE TABLE IF NOT EXISTS sim_symbol_settings (account TEXT NOT NULL, symbol TEXT NOT NULL, leverage INTEGER,"
    " margin_mode TEXT, PRIMARY KEY (account, symbol))",
    "CREATE TABLE IF NOT EXISTS sim_orders (account TEXT NOT NULL, order_id INTEGER NOT NULL,"
    " client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL,"
    " status TEXT NOT NULL, qty TEXT NOT NULL, filled_qty TEXT NOT NULL, avg_price TEXT NOT NULL,"
    " reduce_only INTEGER NOT NULL, fee TEXT NOT NULL, realized_pnl TEXT NOT NULL, update_time INTEGER NOT NULL,"
    " PRIMARY KEY (account, order_id))",
    "CREATE INDEX IF NOT EXISTS sim_orders_by_client ON sim_orders (account, client_order_id)",
    "CREATE TABLE IF NOT EXISTS sim_algo_orders (account TEXT NOT NULL, algo_id INTEGER NOT NULL,"
    " client_algo_id TEXT NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, type TEXT NOT NULL,"
    " status TEXT NOT NULL, trigger_price TEXT NOT NULL, close_position INTEGER NOT NULL, working_type TEXT NOT NULL,"
    " update_time INTEGER NOT NULL, PRIMARY KEY (account, algo_id))",
    "CREATE INDEX IF NOT EXISTS sim_algo_orders_open ON sim_algo_orders (account, status)",
    "CREATE TABLE IF NOT EXISTS sim_trades (account TEXT NOT NULL, trade_id INTEGER NOT NULL, symbol TEXT NOT NULL,"
    " order_id INTEGER NOT NULL, side TEXT NOT NULL, price TEXT NOT NULL, qty TEXT NOT NULL, fee TEXT NOT NULL,"
    " realized_pnl TEXT NOT NULL, time INTEGER NOT NULL, PRIMARY KEY (account, trade_id))",
    "CREATE INDEX IF NOT EXISTS sim_trades_by_symbol ON sim_trades (account, symbol, time)",
)


def _sim_stop_qty(conn: sqlite3.Connection) -> None:
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sim_algo_orders)")}
    if "qty" not in columns:
        conn.execute("ALTER TABLE sim_algo_orders ADD COLUMN qty TEXT")


# Timed blocks set from Telegram (/block SYMBOL HOURS): no new entries on the symbol until ``until_ms``.
# The permanent blacklist stays the strategy key ``symbol_blacklist`` (config overrides).
_V3_SYMBOL_BLOCKS: tuple[str, ...] = (
    """
    CREATE TABLE symbol_blocks (
        symbol TEXT PRIMARY KEY,
        until_ms INTEGER NOT NULL,
        actor TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL
    )
    """,
)

# Funding payments (Binance's FUNDING_FEE income), one row per payment, attributed to the position that held
# the symbol at the funding time. ``amount`` keeps Binance's sign: negative when the account paid, positive when
# it received. ``key`` is the payment's unique id at the exchange (the income history's ``tranId``), so a
# payment seen twice (the stream's prompt and the reconciler's look-up) is recorded once. The position's running
# total and the day's share sit beside its fees; ``sim_funding`` is the simulated exchange's income history.
_V4_FUNDING: tuple[str, ...] = (
    """
    CREATE TABLE funding (
        id INTEGER PRIMARY KEY,
        position_id INTEGER NOT NULL REFERENCES positions(id),
        symbol TEXT NOT NULL,
        key TEXT NOT NULL UNIQUE,
        amount TEXT NOT NULL,
        asset TEXT NOT NULL DEFAULT 'USDT',
        ts_ms INTEGER NOT NULL,
        recorded_at_ms INTEGER NOT NULL
    )
    """,
    "CREATE INDEX funding_position ON funding(position_id)",
    "CREATE INDEX funding_symbol_ts ON funding(symbol, ts_ms)",
    """
    CREATE TRIGGER funding_immutable BEFORE UPDATE ON funding
    BEGIN SELECT RAISE(ABORT, 'funding payments are immutable'); END
    """,
    "ALTER TABLE positions ADD COLUMN funding TEXT NOT NULL DEFAULT '0'",
    "ALTER TABLE daily_stats ADD COLUMN funding TEXT NOT NULL DEFAULT '0'",
    "CREATE TABLE IF NOT EXISTS sim_funding (account TEXT NOT NULL, tran_id INTEGER NOT NULL, symbol TEXT NOT NULL,"
    " time INTEGER NOT NULL, rate TEXT NOT NULL, mark TEXT NOT NULL, qty TEXT NOT NULL, amount TEXT NOT NULL,"
    " PRIMARY KEY (account, tran_id))",
    "CREATE INDEX IF NOT EXISTS sim_funding_by_time ON sim_funding (account, time)",
)

# Longs found on the exchange that the service did not open (adopt_positions): the question asked on Telegram
# (its token makes the Adopt / Ignore buttons single-use, across restarts) and its answer. At most one live
# row (asked, left alone, ignored) per symbol; a row ends adopted, or gone when the long left the exchange.
_V5_ADOPTIONS: tuple[str, ...] = (
    """
    CREATE TABLE adoption_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        symbol TEXT NOT NULL,
        qty TEXT NOT NULL,
        entry_price TEXT NOT NULL,
        token TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL CHECK (status IN ('asked','left','ignored','adopted','gone')),
        created_at_ms INTEGER NOT NULL,
        answered_at_ms INTEGER,
        answered_by TEXT,
        position_id INTEGER REFERENCES positions(id)
    )
    """,
    "CREATE UNIQUE INDEX adoption_requests_live ON adoption_requests(symbol) "
    "WHERE status IN ('asked','left','ignored')",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial schema", _V1),
    Migration(2, "simulated exchange tables", (*_V2_SIM, _sim_stop_qty)),
    Migration(3, "timed symbol blocks", _V3_SYMBOL_BLOCKS),
    Migration(4, "funding payments", _V4_FUNDING),
    Migration(5, "adoption questions", _V5_ADOPTIONS),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _check_sequence(migrations: Sequence[Migration]) -> None:
    for expected, m in enumerate(migrations, start=1):
        if m.version != expected:
            raise ValueError(f"migrations must be numbered 1, 2, 3...; found version {m.version} at place {expected}")


def apply_migrations(conn: sqlite3.Connection, where: str, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring the file up to the last migration; returns the resulting version.

    ``conn`` must be in autocommit mode (``isolation_level=None``) and outside
    any transaction. ``where`` names the file in error messages.
    """
    _check_sequence(migrations)
    latest = migrations[-1].version if migrations else 0
    current = user_version(conn)
    if current > latest:
        raise SchemaTooNew(
            f"{where} has schema version {current} but this SurgeDCA knows versions up to {latest}: "
            "it was written by a newer release. Upgrade SurgeDCA (or restore an older backup); "
            "the file was not touched."
        )
    for m in migrations[current:]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Another process may have migrated while we waited for the write lock.
            if user_version(conn) >= m.version:
                conn.execute("COMMIT")
                continue
            for step in m.steps:
                if callable(step):
                    step(conn)
                else:
                    conn.execute(step)
            conn.execute(f"PRAGMA user_version = {int(m.version)}")
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if isinstance(exc, Exception):
                raise MigrationFailed(
                    f"{where}: migration to schema version {m.version} ({m.description}) failed: {exc}. "
                    f"It was rolled back; the file is still at version {user_version(conn)}."
                ) from exc
            raise
    return user_version(conn)
