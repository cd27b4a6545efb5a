from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from storage import AlreadyRunning, InstanceLock
from tests.conftest import REPO

CHILD = r"""
import sys, time
from pathlib import Path
from storage import AlreadyRunning, InstanceLock
try:
    lock = InstanceLock.acquire(Path(sys.argv[1]))
except AlreadyRunning as exc:
    print("REFUSED", exc, flush=True)
    sys.exit(3)
print("LOCKED", flush=True)
if sys.argv[2] == "hold":
    time.sleep(60)
lock.release()
"""


def _run(db_path: Path, mode: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(db_path), mode],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_second_instance_is_refused_until_release(db_path: Path) -> None:
    lock = InstanceLock.acquire(db_path)
    try:
        assert lock.path == db_path.with_name("surgedca.sqlite3.lock")
        other = _run(db_path, "once")
        assert other.returncode == 3, other.stderr
        assert f"pid {os.getpid()}" in other.stdout and str(db_path) in other.stdout
        with pytest.raises(AlreadyRunning):  # also within one process (another open file)
            InstanceLock.acquire(db_path)
    finally:
        lock.release()
    assert not lock.held
    again = _run(db_path, "once")
    assert (again.returncode, again.stdout.strip()) == (0, "LOCKED")
    with InstanceLock.acquire(db_path) as third:
        assert third.held


def test_lock_dies_with_its_process(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db_path), "hold"], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "LOCKED"
        with pytest.raises(AlreadyRunning, match=f"pid {proc.pid}"):
            InstanceLock.acquire(db_path)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()
    InstanceLock.acquire(db_path).release()  # no stale lock after a crash
