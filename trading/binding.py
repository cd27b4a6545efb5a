"""A database knows whose it is: the trading mode, the exchange environment and the account it was made for.

The binding is written at the first start (an existing database without one is bound then, with the current
settings) and checked at every start: a paper database started live would otherwise take the real positions
for its own and sell them on the paper ladder, and live statistics would mix with simulated ones. A start with
another mode, environment or account is refused before anything is read from or sent to the exchange.

Account identity, never a secret: live, a SHA-256 prefix of the API key; paper, ``paper``; sim, its market
data source (seed or directory). ``surgedca rebind --yes`` accepts a new API key for the same mode and
environment (a rotated key on the same Binance account).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import sys
from dataclasses import dataclass
from typing import Any

from storage.audit import AuditLog
from storage.db import Database
from storage.maintenance import with_stopped_service
from storage.state import BINDING_KEY, SystemState
from trading.settings import LEGACY_DEFAULT_DB_PATH, Settings, StartupError, default_db_path

log = logging.getLogger(__name__)

KEY_HASH_CHARS = 16  # 64 bits of SHA-256: tells keys apart, gives nothing away


class DatabaseBindingMismatch(StartupError):
    """The database was made for another mode, exchange environment or account."""


@dataclass(frozen=True, slots=True)
class Identity:
    mode: str
    environment: str
    account: str

    def describe(self) -> str:
        return f"mode {self.mode}, exchange environment {self.environment}, account {self.account}"

    def as_dict(self) -> dict[str, str]:
        return {"mode": self.mode, "environment": self.environment, "account": self.account}


def identity_of(settings: Settings) -> Identity:
    """Whose database this start needs (see the module docstring)."""
    mode = settings.trading_mode
    if mode == "live":
        key = settings.binance_api_key.get_secret_value() if settings.binance_api_key is not None else ""
        account = "api-key:" + hashlib.sha256(key.encode()).hexdigest()[:KEY_HASH_CHARS]
    elif mode == "paper":
        account = "paper"
    else:
        from trading.exchange.sim import source_id

        account = source_id(settings)
    return Identity(mode, settings.exchange_environment, account)


def saved_identity(db: Database) -> tuple[Identity, dict[str, Any]] | None:
    raw = SystemState(db).get(BINDING_KEY)
    if not isinstance(raw, dict):
        return None
    try:
        return Identity(str(raw["mode"]), str(raw["environment"]), str(raw["account"])), raw
    except KeyError:
        return None


def refuse_legacy_default(settings: Settings) -> None:
    """``DB_PATH`` unset, no database at the per-mode default, but one at the old single default: starting would
    silently begin an empty database beside the real one (live: positions adopted afresh, their ladder lost)."""
    if not settings.db_path_is_default or settings.db_path.exists() or not LEGACY_DEFAULT_DB_PATH.exists():
        return
    raise StartupError(
        f"DB_PATH is not set, so this start would use {settings.db_path} (one database per mode now), but "
        f"{LEGACY_DEFAULT_DB_PATH} (the old default) exists. Nothing was changed. To keep using it, set "
        f"DB_PATH={LEGACY_DEFAULT_DB_PATH}, or rename it to {settings.db_path} if it belongs to "
        f"TRADING_MODE={settings.trading_mode}."
    )


def check_binding(db: Database, settings: Settings, now_ms: int) -> Identity:
    """Bind a database that has no binding yet; refuse one bound to another mode, environment or account."""
    current = identity_of(settings)
    saved = saved_identity(db)
    if saved is None:
        seen = modes_seen(db)
        if len(seen) == 1 and current.mode not in seen:
            (other,) = seen
            raise DatabaseBindingMismatch(
                f"the database {db.path} was used in {other} mode (its content says so), but this start is "
                f"{current.describe()}. Nothing was changed. {_elsewhere(settings)}"
            )
        _bind(db, current, now_ms, actor="system", action="db.bound", existing=_has_history(db))
        return current
    identity, raw = saved
    if identity == current:
        return current
    since = _when(raw.get("bound_at_ms"))
    hint = ""
    if (identity.mode, identity.environment) == (current.mode, current.environment) and current.mode == "live":
        hint = (
            " If it is the same Binance account with a new API key, run `surgedca rebind --yes` once to bind the "
            "database to the new key."
        )
    raise DatabaseBindingMismatch(
        f"the database {db.path} belongs to {identity.describe()} (bound {since}), but this start is "
        f"{current.describe()}. Nothing was changed. {_elsewhere(settings)}{hint}"
    )


def modes_seen(db: Database) -> set[str]:
    """The trading modes an unbound database shows traces of: its simulated accounts (sim, paper), and live for
    filled orders the simulated exchange never saw (or, without one, any position or order)."""
    conn = db.conn
    # The simulated exchange's tables exist in every database (storage migrations); its accounts only where
    # sim or paper ran.
    seen = {str(r[0]) for r in conn.execute("SELECT DISTINCT account FROM sim_meta")} & {"sim", "paper"}
    if not seen:
        return {"live"} if _has_history(db) else seen
    real = conn.execute(
        "SELECT 1 FROM orders o WHERE o.kind = 'market' AND o.status = 'filled' AND NOT EXISTS "
        "(SELECT 1 FROM sim_orders s WHERE s.client_order_id = o.client_order_id) LIMIT 1"
    ).fetchone()
    if real:
        seen.add("live")
    return seen


def _has_history(db: Database) -> bool:
    conn = db.conn
    return any(conn.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() for table in ("positions", "orders"))


def _bind(db: Database, identity: Identity, now_ms: int, *, actor: str, action: str, existing: bool) -> None:
    before = saved_identity(db)
    value = {**identity.as_dict(), "bound_at_ms": now_ms}
    with db.transaction():
        SystemState(db).set(BINDING_KEY, value, now_ms)
        AuditLog(db).add(actor, action, before=before[1] if before else None, after=value, ts_ms=now_ms)
    if existing and before is None:
        log.warning("the database %s had no binding: bound now to %s", db.path, identity.describe())
    else:
        log.info("the database %s is bound to %s", db.path, identity.describe())


def _elsewhere(settings: Settings) -> str:
    default = default_db_path(settings.trading_mode)
    return (
        f"A database serves one mode, exchange environment and account: point DB_PATH at another file for this "
        f"one (without DB_PATH, TRADING_MODE={settings.trading_mode} uses {default}), or set the settings back."
    )


def _when(ms: object) -> str:
    if not isinstance(ms, int):
        return "at an unknown time"
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------ surgedca rebind
def cmd_rebind(settings: Settings, yes: bool) -> int:
    """Accept the current API key for a live database bound to another key of the same mode and environment."""
    return with_stopped_service(settings, "rebind", lambda db: _rebind(db, settings, yes))


def _rebind(db: Database, settings: Settings, yes: bool) -> int:
    from trading.clock import SystemClock

    current = identity_of(settings)
    saved = saved_identity(db)
    if saved is None:
        print(f"surgedca rebind: {db.path} has no binding yet; the next start binds it to {current.describe()}")
        return 0
    identity, _raw = saved
    if identity == current:
        print(f"surgedca rebind: {db.path} is already bound to {current.describe()}")
        return 0
    if (identity.mode, identity.environment) != (current.mode, current.environment) or current.mode != "live":
        print(
            f"surgedca rebind: refused: {db.path} belongs to {identity.describe()}; rebind only accepts a new API "
            f"key for the same live account, not {current.describe()}. {_elsewhere(settings)}",
            file=sys.stderr,
        )
        return 1
    if not yes:
        print(f"surgedca rebind would bind {db.path} from {identity.account} to {current.account}.")
        print("Do it only if both keys belong to the same Binance account. Run `surgedca rebind --yes` to do it.")
        return 1
    _bind(db, current, SystemClock().now_ms(), actor="cli", action="db.rebound", existing=True)
    print(f"{db.path} is now bound to {current.describe()}")
    return 0
