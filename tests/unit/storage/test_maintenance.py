from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from storage import (
    AuditLog,
    ConfigStore,
    Cooldowns,
    DailyStats,
    Database,
    EquityLog,
    FillsRepo,
    InstanceLock,
    OrdersJournal,
    PositionsRepo,
    SystemState,
    backup,
    list_backups,
)
from storage.maintenance import CLEARED_TABLES, cmd_backup, cmd_reset
from tests.unit.storage.conftest import T0, initial_state
from trading.settings import Settings


def _settings(db_path: Path, backup_dir: Path | None = None, keep: int = 7) -> Settings:
    # model_construct: no .env or environment involved, only the three fields maintenance reads.
    return Settings.model_construct(db_path=db_path, backup_dir=backup_dir, backup_keep=keep)


def _populate(db_path: Path, *, leave_open: bool) -> int:
    """A database after some trading: every table has rows. Returns the last position id."""
    with Database.open(db_path) as db:
        positions = PositionsRepo(db)
        pid = positions.create_pending("BTCUSDT", "signal", T0)
        journal = OrdersJournal(db)
        journal.insert_pending(
            f"sdca-{pid}-entry-1", position_id=pid, symbol="BTCUSDT", action="entry", kind="market",
            side="BUY", qty=Decimal("0.3"), reduce_only=False, now_ms=T0,
        )  # fmt: skip
        journal.mark(f"sdca-{pid}-entry-1", "filled", now_ms=T0 + 1)
        positions.activate(pid, initial_state(), Decimal(15), Decimal("0.01"), T0 + 1)
        FillsRepo(db).add(pid, f"sdca-{pid}-entry-1", "BUY", Decimal("100.1"), Decimal("0.3"), Decimal("0.01"), T0)
        if not leave_open:
            positions.close(pid, "stop_loss", Decimal(-3), Decimal("0.02"), T0 + 2)
        Cooldowns(db).set("BTCUSDT", T0 + 86_400_000, "stop_loss")
        DailyStats(db).add_trade("2026-01-01", Decimal(-3), Decimal("0.03"))
        EquityLog(db).add(T0, Decimal(1000), Decimal(997))
        SystemState(db).paused = True
        ConfigStore(db).set("leverage", 10, 5, "tg:1", T0)
        AuditLog(db).add("system", "start", ts_ms=T0)
        return pid


def _counts(db_path: Path) -> dict[str, int]:
    with Database.open(db_path) as db:
        return {
            t: db.conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in (*CLEARED_TABLES, "audit_log", "config_history")
        }


def test_reset_refuses_with_an_open_position(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(db_path, leave_open=True)
    before = _counts(db_path)
    assert cmd_reset(_settings(db_path), yes=True) == 1
    err = capsys.readouterr().err
    assert "refused" in err and "BTCUSDT (open" in err
    assert _counts(db_path) == before
    assert list_backups(db_path.parent / "backups") == []


def test_reset_refuses_with_an_unresolved_order(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(db_path, leave_open=False)
    with Database.open(db_path) as db:
        OrdersJournal(db).insert_pending(
            "sdca-9-close-1", position_id=None, symbol="ETHUSDT", action="close", kind="market", side="SELL",
            qty=Decimal(1), reduce_only=True, now_ms=T0,
        )  # fmt: skip
    assert cmd_reset(_settings(db_path), yes=True) == 1
    assert "sdca-9-close-1 (ETHUSDT, pending)" in capsys.readouterr().err


def test_reset_refuses_while_the_service_holds_the_lock(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(db_path, leave_open=False)
    before = _counts(db_path)
    with InstanceLock.acquire(db_path):
        assert cmd_reset(_settings(db_path), yes=True) == 1
    assert "another SurgeDCA instance" in capsys.readouterr().err
    assert _counts(db_path) == before


def test_reset_without_yes_only_explains(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(db_path, leave_open=False)
    before = _counts(db_path)
    assert cmd_reset(_settings(db_path), yes=False) == 1
    out = capsys.readouterr().out
    assert "positions (1 rows)" in out and "keep audit_log" in out and "--yes" in out
    assert _counts(db_path) == before
    assert list_backups(db_path.parent / "backups") == []


def test_reset_backs_up_clears_and_keeps_the_audit_log(
    db_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    last_id = _populate(db_path, leave_open=False)
    before = _counts(db_path)
    backups = tmp_path / "bk"
    with Database.open(db_path) as db:
        SystemState(db).set("binding", {"mode": "live", "environment": "live", "account": "api-key:0123"})
        SystemState(db).set("instance_tag", "k3tag7")
        SystemState(db).paused = False
    assert cmd_reset(_settings(db_path, backups, keep=2), yes=True) == 0
    out = capsys.readouterr().out
    (copy,) = backups.glob("surgedca-reset-*.sqlite3")
    assert f"backup (kept until you delete it): {copy}" in out
    assert list_backups(backups) == []  # not one of the rotating backups...
    with Database.open(db_path) as db:
        for i in range(4):
            backup(db, backups, 2, T0 + i * 1000)
    assert len(list_backups(backups)) == 2 and copy.is_file()  # ...so pruning never removes it
    assert "the service is paused" in out

    after = _counts(db_path)
    # system_state keeps three rows: the binding, the instance tag, and the pause flag the reset sets.
    assert {t: after[t] for t in CLEARED_TABLES} == {**dict.fromkeys(CLEARED_TABLES, 0), "system_state": 3}
    assert after["audit_log"] == before["audit_log"] + 1
    assert after["config_history"] == before["config_history"] + 1  # the dropped override, recorded
    with Database.open(db_path) as db:
        (reset_row,) = AuditLog(db).recent(1)
        assert (reset_row.actor, reset_row.action) == ("cli", "reset")
        assert reset_row.before["positions"] == 1 and reset_row.after == {"backup": str(copy), "paused": True}
        assert ConfigStore(db).history(1)[0].key == "leverage" and ConfigStore(db).history(1)[0].new is None
        state = SystemState(db)
        assert state.paused is True  # the next start trades only after /resume
        assert set(state.items()) == {"paused", "binding", "instance_tag"}  # whose database it is survives the reset
        assert state.get("instance_tag") == "k3tag7"  # its orders on the exchange still read as its own
        assert PositionsRepo(db).create_pending("BTCUSDT", "signal", T0) > last_id  # ids never reused
    # The backup holds everything as it was.
    with Database.open(copy) as old:
        assert old.conn.execute("SELECT count(*) FROM positions").fetchone()[0] == 1


def test_reset_of_a_missing_database_is_a_no_op(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_reset(_settings(tmp_path / "none.sqlite3"), yes=True) == 0
    assert "nothing to reset" in capsys.readouterr().out
    assert not (tmp_path / "none.sqlite3").exists()


def test_cmd_backup_prints_an_existing_path(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _populate(db_path, leave_open=True)
    with InstanceLock.acquire(db_path), Database.open(db_path):  # works next to a running service
        assert cmd_backup(_settings(db_path)) == 0
    printed = Path(capsys.readouterr().out.strip())
    assert printed.is_file() and printed.parent == db_path.parent / "backups"
    with Database.open(printed) as copy:
        assert PositionsRepo(copy).get_active("BTCUSDT") is not None


def test_cmd_backup_without_a_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cmd_backup(_settings(tmp_path / "none.sqlite3")) == 1
    assert "nothing to back up" in capsys.readouterr().err


def test_cli_backup_reads_the_environment(
    db_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trading.cli import main

    _populate(db_path, leave_open=False)
    monkeypatch.chdir(tmp_path)  # no stray .env
    for var in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_ALLOWED_CHAT_IDS", "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TRADING_MODE", "sim")
    monkeypatch.setenv("DB_PATH", str(db_path))
    monkeypatch.setenv("BACKUP_DIR", str(tmp_path / "cli-backups"))
    assert main(["backup"]) == 0
    assert Path(capsys.readouterr().out.strip()).parent == tmp_path / "cli-backups"
    assert main(["reset"]) == 1  # explains only
    assert main(["reset", "--yes"]) == 0
    assert len(list_backups(tmp_path / "cli-backups")) == 1
    assert len(list((tmp_path / "cli-backups").glob("surgedca-reset-*.sqlite3"))) == 1
    with Database.open(db_path) as db:
        assert SystemState(db).paused
    assert main(["resume"]) == 0
    with Database.open(db_path) as db:
        assert not SystemState(db).paused
        assert AuditLog(db).recent(1)[0].action == "resume"
    assert main(["resume"]) == 0 and "already allowed" in capsys.readouterr().out
