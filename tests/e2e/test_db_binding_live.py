"""A database is bound to its trading mode, exchange environment and account: the real service (live on the fake
Binance, a real SQLite file) refuses to start on another one's database, before it talks to the exchange."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import pytest

from storage import AuditLog, Database, SystemState
from tests.e2e.conftest import Harness, until
from trading.binding import DatabaseBindingMismatch, check_binding, cmd_rebind
from trading.settings import StartupError

D = Decimal
SYM = "SOLUSDT"


async def _traded_live(harness: Harness) -> Path:
    """A live database with a real (adopted) position in it; returns its path, the service stopped."""
    await harness.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM) and len(harness.resting_stops(SYM)) == 1, what="adoption")
    db_path = harness.settings().db_path
    await harness.stop()
    return db_path


def _rows(db_path: Path) -> tuple[int, int, dict[str, object]]:
    with Database.open(db_path) as db:
        audit = db.conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        positions = db.conn.execute("SELECT count(*) FROM positions").fetchone()[0]
        return audit, positions, SystemState(db).items()


async def test_a_live_database_started_in_paper_mode_is_refused(harness: Harness) -> None:
    db_path = await _traded_live(harness)
    with Database.open(db_path) as db:
        (bound,) = AuditLog(db).recent(50, action="db.bound")
        binding = SystemState(db).get("binding")
    assert binding["mode"] == "live" and binding["environment"] == "live"
    assert binding["account"].startswith("api-key:") and "test-key" not in str(binding)  # a hash, not the key
    assert bound.after["account"] == binding["account"]
    before = _rows(db_path)
    requests_before = len(harness.fake.requests)

    with pytest.raises(DatabaseBindingMismatch) as exc:
        await harness.start(trading_mode="paper")
    message = str(exc.value)
    assert message.startswith(f"the database {db_path} belongs to mode live, exchange environment live, account ")
    assert "but this start is mode paper, exchange environment live, account paper. Nothing was changed." in message
    assert "point DB_PATH at another file" in message and "data/surgedca-paper.sqlite3" in message
    await harness.stop()  # closes what the refused start had opened
    assert len(harness.fake.requests) == requests_before  # refused before a single request to the exchange
    assert _rows(db_path) == before
    assert harness.fake.position(SYM).qty == D("1.00")

    # The same settings as before start normally.
    await harness.start()
    await until(lambda: harness.db_position(SYM) is not None, what="the position after the restart")


async def test_another_environment_or_api_key_is_refused_and_rebind_accepts_a_new_key(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    db_path = await _traded_live(harness)

    with pytest.raises(DatabaseBindingMismatch, match=r"exchange environment live.*exchange environment testnet"):
        await harness.start(binance_testnet=True)
    await harness.stop()  # closes what the refused start had opened
    with pytest.raises(DatabaseBindingMismatch, match=r"exchange environment live.*exchange environment demo"):
        await harness.start(binance_demo=True)
    await harness.stop()  # closes what the refused start had opened

    with pytest.raises(DatabaseBindingMismatch) as exc:
        await harness.start(binance_api_key="another-key")
    await harness.stop()  # closes what the refused start had opened
    assert "run `surgedca rebind --yes` once" in str(exc.value)

    settings = harness.settings(binance_api_key="another-key")
    assert cmd_rebind(settings, yes=False) == 1  # explains only
    assert _rows(db_path)[2]["binding"] != {}
    assert cmd_rebind(settings, yes=True) == 0
    assert "is now bound to mode live, exchange environment live, account api-key:" in capsys.readouterr().out
    with Database.open(db_path) as db:
        (row,) = AuditLog(db).recent(5, action="db.rebound")
    assert row.actor == "cli" and row.before["account"] != row.after["account"]
    # rebind never moves a database to another mode.
    assert cmd_rebind(harness.settings(trading_mode="paper"), yes=True) == 1
    assert "rebind only accepts a new API key" in capsys.readouterr().err

    with Database.open(db_path) as db:  # the next start with the new key passes the check
        assert check_binding(db, settings, 0).account == row.after["account"]


async def test_an_old_database_without_binding_is_bound_unless_its_content_says_another_mode(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    db_path = await _traded_live(harness)
    with Database.open(db_path) as db:  # as an older version left it: no binding
        SystemState(db).delete("binding")

    with pytest.raises(DatabaseBindingMismatch) as exc:
        await harness.start(trading_mode="paper")
    await harness.stop()  # closes what the refused start had opened
    assert "was used in live mode (its content says so), but this start is mode paper" in str(exc.value)

    caplog.set_level(logging.WARNING, logger="trading.binding")
    await harness.start()  # live, as it was used: bound now, with a word in the log
    assert any("had no binding: bound now to mode live" in r.getMessage() for r in caplog.records)
    assert harness.store.state.get("binding")["mode"] == "live"


def test_the_old_default_database_is_not_silently_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from trading.binding import refuse_legacy_default
    from trading.settings import Settings

    monkeypatch.chdir(tmp_path)
    settings = Settings(_env_file=None, trading_mode="sim")  # type: ignore[call-arg]
    refuse_legacy_default(settings)  # nothing there: fine
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "surgedca.sqlite3").write_bytes(b"")
    with pytest.raises(StartupError) as exc:
        refuse_legacy_default(settings)
    assert str(exc.value) == (
        "DB_PATH is not set, so this start would use data/surgedca-sim.sqlite3 (one database per mode now), but "
        "data/surgedca.sqlite3 (the old default) exists. Nothing was changed. To keep using it, set "
        "DB_PATH=data/surgedca.sqlite3, or rename it to data/surgedca-sim.sqlite3 if it belongs to TRADING_MODE=sim."
    )
    refuse_legacy_default(Settings(_env_file=None, db_path="data/surgedca.sqlite3"))  # type: ignore[call-arg]
