"""`surgedca run` as a process: offline sim trades with console alerts, a second instance refuses to start,
SIGTERM stops it cleanly, and `surgedca status` reads the state from the database meanwhile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BINANCE_", "SIM_", "TRADING_"))}
    env.update(
        TRADING_MODE="sim", SIM_SPEED="0", DB_PATH=str(tmp / "db.sqlite3"), LOG_LEVEL="INFO", PYTHONPATH=str(REPO)
    )
    return env


def _cli(tmp: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "trading.cli", *args],
        check=False,
        cwd=tmp,
        env=_env(tmp),
        text=True,
        capture_output=True,
        timeout=timeout,
    )


@pytest.mark.timeout(180)
def test_sim_service_trades_refuses_a_twin_and_stops_on_sigterm(tmp_path: Path) -> None:
    log_path = tmp_path / "service.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "trading.cli", "run"],
            cwd=tmp_path,
            env=_env(tmp_path),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline:
            text = log_path.read_text()
            if "ENTRY" in text and ("CLOSED" in text or "STOP LOSS" in text or "PARTIAL" in text):
                break
            assert proc.poll() is None, f"the service died:\n{text[-3000:]}"
            time.sleep(0.1)
        else:
            raise AssertionError(f"no trading within 120 s:\n{text[-3000:]}")
        assert "SurgeDCA running: mode=sim" in text and "DCA" in text

        twin = _cli(tmp_path, "run", timeout=60)
        assert twin.returncode == 3 and "another SurgeDCA instance" in twin.stderr

        status = _cli(tmp_path, "status")
        assert status.returncode == 0 and "running" in status.stdout and "mode sim" in status.stdout
        assert "belongs to mode sim, exchange environment offline, account synthetic:seed=7" in status.stdout
        probe = _cli(tmp_path, "status", "--check")  # the container's HEALTHCHECK
        assert probe.returncode == 0 and probe.stdout.startswith("running: mode sim, health written ")

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        text = log_path.read_text()
        assert "stopping: SIGTERM" in text and text.rstrip().endswith("stopped")
        assert "Traceback" not in text
        probe = _cli(tmp_path, "status", "--check")
        assert probe.returncode == 1 and "the service stopped" in probe.stderr
    finally:
        if proc.poll() is None:
            proc.kill()


def test_start_up_refusals_exit_2_with_the_reason_and_create_nothing(tmp_path: Path) -> None:
    """`surgedca run` on a database bound to live, in sim mode: refused before anything trades; without DB_PATH
    and with the old default database present: refused instead of starting an empty one beside it."""
    from storage import Database, SystemState

    db_path = tmp_path / "db.sqlite3"
    with Database.open(db_path) as db:
        SystemState(db).set("binding", {"mode": "live", "environment": "live", "account": "api-key:0123456789abcdef"})
    refused = _cli(tmp_path, "run")
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.splitlines()[-1].startswith(  # after the log's "stopping: start-up refused"
        f"surgedca: the database {db_path} belongs to mode live, exchange environment live, account "
        "api-key:0123456789abcdef (bound at an unknown time), but this start is mode sim, exchange environment "
        "offline, account synthetic:seed=7. Nothing was changed."
    )
    assert "Traceback" not in refused.stderr

    legacy = tmp_path / "data" / "surgedca.sqlite3"
    legacy.parent.mkdir()
    legacy.write_bytes(b"")
    env = {**_env(tmp_path), "DB_PATH": ""}
    out = subprocess.run(
        [sys.executable, "-m", "trading.cli", "run"], check=False, cwd=tmp_path, env=env, text=True,
        capture_output=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "data/surgedca.sqlite3 (the old default) exists" in out.stderr
    assert not (tmp_path / "data" / "surgedca-sim.sqlite3").exists()
    assert not (tmp_path / "data" / "surgedca-sim.sqlite3.lock").exists()
