from __future__ import annotations

import sqlite3
from decimal import Decimal

import pytest

from storage import AuditLog, ConfigStore, Cooldowns, DailyStats, Database, EquityLog, SystemState
from tests.unit.storage.conftest import T0, initial_state
from trading.core.models import ExitReason


# ------------------------------------------------------------------- audit
def test_audit_round_trip_with_decimals_and_dataclasses(db: Database) -> None:
    audit = AuditLog(db)
    rid = audit.add(
        "tg:12345",
        "position.exit",
        symbol="BTCUSDT",
        before=initial_state(),
        after={"pnl": Decimal("0.1") + Decimal("0.2"), "reason": ExitReason.MANUAL},
        ts_ms=T0,
    )
    (row,) = audit.recent()
    assert row.id == rid
    assert (row.ts_ms, row.actor, row.action, row.symbol) == (T0, "tg:12345", "position.exit", "BTCUSDT")
    assert row.after == {"pnl": "0.3", "reason": "manual"}
    assert row.before["legs"] == [{"stage": "initial", "price": "100.1", "qty": "0.3"}]
    assert row.before["qty"] == "0.3" and row.before["peak_price"] is None


def test_audit_filters_and_counts(db: Database) -> None:
    audit = AuditLog(db)
    for i, (actor, action) in enumerate(
        [
            ("system", "config.set"),
            ("tg:1", "config.set"),
            ("tg:1", "pause"),
            ("system", "config_x"),
            ("tg:2", "auth.denied"),
        ]
    ):
        audit.add(actor, action, ts_ms=T0 + i)
    assert [r.action for r in audit.recent(2)] == ["auth.denied", "config_x"]
    assert [r.ts_ms for r in audit.recent(action="config.set")] == [T0 + 1, T0]
    assert [r.action for r in audit.recent(actor="tg:1")] == ["pause", "config.set"]
    assert audit.count_since(T0) == 5
    assert audit.count_since(T0 + 1) == 4
    assert audit.count_since(T0, "config.") == 2  # "config_x" does not start with "config."
    assert audit.count_since(T0, "config") == 3
    with pytest.raises(ValueError, match="actor"):
        audit.add("", "x", ts_ms=T0)


def test_audit_log_is_append_only(db: Database) -> None:
    AuditLog(db).add("system", "start", ts_ms=T0)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.conn.execute("DELETE FROM audit_log")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        db.conn.execute("UPDATE audit_log SET actor = 'me'")
    assert len(AuditLog(db).recent()) == 1


# ------------------------------------------------------------------ config
def test_config_set_writes_override_history_and_audit(db: Database) -> None:
    store = ConfigStore(db)
    store.set("leverage", 10, 5, "tg:1", T0)
    store.set("stop_loss_by_stage.initial", -0.10, -0.08, "tg:1", T0 + 1)
    store.set("leverage", 5, 3, "tg:2", T0 + 2)
    store.set("symbol_blacklist", [], ["LUNAUSDT"], "tg:2", T0 + 3)
    assert store.overrides() == {"leverage": 3, "stop_loss_by_stage.initial": -0.08, "symbol_blacklist": ["LUNAUSDT"]}
    hist = store.history()
    assert [(h.key, h.old, h.new, h.actor) for h in hist[:2]] == [
        ("symbol_blacklist", [], ["LUNAUSDT"], "tg:2"),
        ("leverage", 5, 3, "tg:2"),
    ]
    assert len(store.history(limit=2)) == 2
    audits = AuditLog(db).recent(action="config.set")
    assert len(audits) == 4 and audits[1].before == {"leverage": 5} and audits[1].after == {"leverage": 3}

    assert store.unset("leverage", "tg:1", T0 + 4) is True
    assert store.unset("leverage", "tg:1", T0 + 5) is False
    assert "leverage" not in store.overrides()
    assert (store.history(1)[0].key, store.history(1)[0].new) == ("leverage", None)


def test_config_bad_key_changes_nothing(db: Database) -> None:
    store = ConfigStore(db)
    with pytest.raises(ValueError, match="config key"):
        store.set("Leverage; DROP", 1, 2, "tg:1", T0)
    with pytest.raises(TypeError, match="JSON"):
        store.set("leverage", 1, object(), "tg:1", T0)
    assert store.overrides() == {} and store.history() == [] and AuditLog(db).recent() == []


# --------------------------------------------------------------- cooldowns
def test_cooldowns(db: Database) -> None:
    cd = Cooldowns(db)
    cd.set("BTCUSDT", T0 + 86_400_000, ExitReason.STOP_LOSS)  # type: ignore[arg-type]
    cd.set("ETHUSDT", T0 + 3_600_000, "take_half")
    assert cd.active(T0) == {"BTCUSDT": T0 + 86_400_000, "ETHUSDT": T0 + 3_600_000}
    assert cd.active(T0 + 3_600_000) == {"BTCUSDT": T0 + 86_400_000}  # ends exactly at until_ms
    assert [(c.symbol, c.reason) for c in cd.active_details(T0)] == [("ETHUSDT", "take_half"), ("BTCUSDT", "stop_loss")]
    assert cd.get("ETHUSDT") == T0 + 3_600_000 and cd.get("XRPUSDT") is None
    cd.set("ETHUSDT", T0 + 10, "manual")  # replaced
    assert cd.get("ETHUSDT") == T0 + 10
    assert cd.purge(T0 + 10) == 1 and cd.get("ETHUSDT") is None
    assert cd.clear("BTCUSDT") is True and cd.clear("BTCUSDT") is False
    assert cd.active(0) == {}


# ------------------------------------------------------------- daily stats
def test_daily_stats_sums_are_exact(db: Database) -> None:
    stats = DailyStats(db)
    stats.add_trade("2026-01-01", Decimal("0.1"), Decimal("0.01"))
    stats.add_trade("2026-01-01", Decimal("0.2"), Decimal("0.02"))
    stats.add_trade("2026-01-01", Decimal("-0.5"), Decimal("0.03"))
    stats.add_trade("2026-01-03", Decimal("0"), Decimal("0.04"))
    day = stats.get("2026-01-01")
    assert day is not None
    assert (day.trades, day.wins, day.realized_pnl, day.fees) == (3, 2, Decimal("-0.2"), Decimal("0.06"))
    assert str(day.fees) == "0.06"
    assert day.win_rate == pytest.approx(2 / 3)
    assert [d.day for d in stats.between("2026-01-01", "2026-01-03")] == ["2026-01-01", "2026-01-03"]
    assert stats.between("2026-01-02", "2026-01-02") == []
    total = stats.summary("2025-12-31", "2026-01-07")
    assert (total.trades, total.wins, total.realized_pnl, total.fees) == (4, 2, Decimal("-0.2"), Decimal("0.10"))
    empty = stats.summary("2025-01-01", "2025-01-07")
    assert (empty.trades, empty.realized_pnl, empty.win_rate) == (0, 0, None)
    assert stats.get("2026-01-02") is None
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        stats.add_trade("2026-1-5", Decimal(1), Decimal(0))
    with pytest.raises(TypeError):
        stats.add_trade("2026-01-05", 0.1, Decimal(0))  # type: ignore[arg-type]
    assert stats.get("2026-01-05") is None


# ------------------------------------------------------------ system state
def test_system_state(db: Database) -> None:
    state = SystemState(db)
    assert state.get("missing", 42) == 42
    assert state.paused is False
    state.paused = True
    assert state.paused is True
    state.set("locale:12345", "en")
    state.set("last_sync", {"at": T0, "balance": Decimal("1000.10")}, now_ms=T0)
    assert state.get("last_sync") == {"at": T0, "balance": "1000.10"}
    assert state.items() == {"last_sync": {"at": T0, "balance": "1000.10"}, "locale:12345": "en", "paused": True}
    assert state.delete("locale:12345") is True and state.get("locale:12345") is None


# -------------------------------------------------------------- equity log
def test_equity_log(db: Database) -> None:
    log = EquityLog(db)
    assert log.last() is None
    for i in range(5):
        log.add(T0 + i * 60_000, Decimal("1000.1") + i, Decimal("1000.2") + i)
    log.add(T0 + 4 * 60_000, Decimal("2000"), Decimal("2001"))  # same minute: replaced
    points = log.between(T0 + 60_000, T0 + 4 * 60_000)
    assert [p.ts_ms for p in points] == [T0 + 60_000, T0 + 120_000, T0 + 180_000]
    assert points[0].balance == Decimal("1001.1") and points[0].equity == Decimal("1001.2")
    last = log.last()
    assert last is not None and (last.balance, last.equity) == (Decimal(2000), Decimal(2001))
