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
            time.sleep(0.5)
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
