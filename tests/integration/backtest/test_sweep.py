"""``surgedca sweep`` end to end: rows equal single backtests, refused combinations, outputs, walk-forward
without leakage, Ctrl-C keeping the finished rows."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import KLINES_DIR, REPO
from trading.backtest import BacktestSpec, load_candle_dir, run_backtest
from trading.backtest.data import parse_time
from trading.backtest.funding import FundingSchedule
from trading.backtest.sweep import METRICS, apply_values, row_of
from trading.candle_files import read_candles
from trading.cli import main
from trading.core.config import StrategyConfig
from trading.strategy import load_strategy

SYMBOLS = "XMRUSDT,ZECUSDT,SUIUSDT"
WINDOW = ["--from", "2026-01-11", "--to", "2026-01-13"]
GRID = "leverage=5,10 take_half_at=0.05,0.10 stop_loss_by_stage.initial=-0.02,-0.10"
DAY_MS = 86_400_000


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_sweep_rows_are_the_single_backtests_of_the_same_configs(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--data", str(KLINES_DIR), "--symbols", SYMBOLS, *WINDOW, "--grid", GRID]
    assert main([*args, "--workers", "2", "--out", str(out), "--no-progress", "--min-trades", "1"]) == 0
    rows = read_rows(out / "sweep.csv")
    assert [int(r["combination"]) for r in rows] == list(range(1, 9))  # in grid order, one row each
    refused = [r for r in rows if r["status"] == "refused"]
    ok = [r for r in rows if r["status"] == "ok"]
    # -0.02 lies above first_dca_trigger: check-config refuses those four and they were not run
    assert {r["stop_loss_by_stage.initial"] for r in refused} == {"-0.02"} and len(refused) == 4
    assert all("first_dca_trigger" in r["problems"] and r["return_pct"] == "" for r in refused)
    assert len(ok) == 4

    data = load_candle_dir(KLINES_DIR, SYMBOLS.split(","))
    funding = FundingSchedule.from_dir(KLINES_DIR, data.symbols)  # the sweep's default: files, else the flat rate
    for r in ok:
        values = {"leverage": int(r["leverage"]), "take_half_at": float(r["take_half_at"])}
        values["stop_loss_by_stage.initial"] = float(r["stop_loss_by_stage.initial"])
        cfg = apply_values(StrategyConfig(), values)
        spec = BacktestSpec(
            data=data.data,
            cfg=cfg,
            start_ms=parse_time("2026-01-11", "--from"),
            end_ms=parse_time("2026-01-13", "--to"),
            funding=funding,
        )
        single = row_of(asyncio.run(run_backtest(spec)).summary, cfg, Decimal(1000))
        for column in METRICS:
            if column == "score":
                continue
            expected = single[column]
            assert r[column] == (
                "" if expected is None else repr(expected) if isinstance(expected, float) else str(expected)
            ), column
        assert float(r["funding"]) > 0  # held positions paid the flat rate

    # the best configs are strategy files that load back to exactly their combination
    best = load_strategy(out / "top-1.toml")
    top = max(ok, key=lambda r: float(r["score"]) if r["score"] else float("-inf"))
    assert best.leverage == int(top["leverage"]) and best.take_half_at == float(top["take_half_at"])
    assert (out / "heatmap.png").read_bytes().startswith(b"\x89PNG")


def test_a_bad_grid_is_refused_before_anything_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "never"
    base = ["sweep", "--data", str(KLINES_DIR), "--symbols", "XMRUSDT", "--out", str(out)]
    assert main([*base, "--grid", "leverag=5,10"]) == 2
    assert "unknown key 'leverag' (did you mean 'leverage'?)" in capsys.readouterr().err
    assert main([*base, "--grid", "leverage=five"]) == 2
    assert "leverage: expected an integer" in capsys.readouterr().err
    assert main([*base, "--grid", "leverage=5,10", "--heatmap", "leverage,take_half_at"]) == 2
    assert "take_half_at not in the grid" in capsys.readouterr().err
    assert main([*base, "--grid", "leverage=5", "--walk-forward", "14d"]) == 2
    assert "write TRAIN/TEST" in capsys.readouterr().err
    assert not out.exists()


# ---------------------------------------------------------------------- walk-forward
def write_dir(dest: Path, symbols: list[str], days: float, *, alter_after_ms: int | None = None) -> Path:
    """The first ``days`` of each symbol's file; with ``alter_after_ms`` a different future from then on: the
    moves of the same length of time before it, again, from the last close on."""
    dest.mkdir()
    for symbol in symbols:
        c = read_candles(KLINES_DIR / f"{symbol}-1m.csv.gz")
        n = int(days * 1440)
        t, o, h, lo, cl, v = (a[:n].copy() for a in (c.open_time, c.open, c.high, c.low, c.close, c.volume))
        if alter_after_ms is not None:
            k = int(np.searchsorted(t, alter_after_ms))
            src = slice(2 * k - n, k)
            scale = cl[k - 1] / o[2 * k - n]
            o[k:], h[k:], lo[k:], cl[k:] = o[src] * scale, h[src] * scale, lo[src] * scale, cl[src] * scale
            v[k:] = v[src]
        rows = zip(t.tolist(), o.tolist(), h.tolist(), lo.tolist(), cl.tolist(), v.tolist(), strict=True)
        lines = ["open_time,open,high,low,close,volume", *(",".join(map(repr, r)) for r in rows)]
        (dest / f"{symbol}-1m.csv").write_text("\n".join(lines) + "\n")
    return dest


def test_walk_forward_never_lets_the_test_window_into_the_choice(tmp_path: Path) -> None:
    symbols = ["XMRUSDT", "ZECUSDT", "SUIUSDT"]
    first = int(read_candles(KLINES_DIR / "XMRUSDT-1m.csv.gz").open_time[0])
    train_end = first + 7 * DAY_MS + 2 * DAY_MS  # the warm-up, then the first 2-day training window
    same = write_dir(tmp_path / "same", symbols, 10)
    other = write_dir(tmp_path / "other", symbols, 10, alter_after_ms=train_end)
    results = {}
    for name, data in (("same", same), ("other", other)):
        out = tmp_path / f"wf-{name}"
        args = ["sweep", "--data", str(data), "--grid", "leverage=5,10 take_half_at=0.04,0.10", "--no-funding"]
        args += ["--walk-forward", "2d/1d", "--workers", "2", "--min-trades", "1", "--out", str(out), "--no-progress"]
        assert main(args) == 0
        results[name] = (read_rows(out / "sweep.csv"), read_rows(out / "walk_forward.csv"))
    (train_a, walk_a), (train_b, walk_b) = results["same"], results["other"]
    assert len(walk_a) == len(walk_b) == 1  # 10 days: 7 of warm-up, 2 of training, 1 of test
    assert walk_a[0]["train_end"] == walk_b[0]["train_end"] == _iso(train_end)
    # Everything the choice saw is the same although the future differs ...
    assert train_a == train_b and len(train_a) == 4
    assert walk_a[0]["combination"] == walk_b[0]["combination"]
    for col in ("in_sample_return_pct", "in_sample_max_drawdown_pct", "in_sample_trades"):
        assert walk_a[0][col] == walk_b[0][col]
    # ... and the test window really was played on the other future (the out-of-sample figures differ).
    assert all(r["end"] <= _iso(train_end) for r in train_a)
    oos = ("out_of_sample_return_pct", "out_of_sample_trades", "out_of_sample_max_drawdown_pct")
    assert [walk_a[0][c] for c in oos] != [walk_b[0][c] for c in oos]


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------- Ctrl-C
def test_ctrl_c_keeps_the_finished_rows(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    grid = "leverage=1,2,3,4,5,6,7,8,9,10"
    cmd = [sys.executable, "-m", "trading.cli", "sweep", "--data", str(KLINES_DIR), "--symbols", "XMRUSDT,ZECUSDT"]
    cmd += ["--from", "2026-01-11", "--to", "2026-01-16", "--grid", grid, "--workers", "1", "--out", str(out)]
    cmd += ["--no-progress", "--no-funding"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while len(_data_rows(out / "sweep.csv")) < 1:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no row finished in time"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    rows = read_rows(out / "sweep.csv")
    assert 1 <= len(rows) < 10
    assert all(r["status"] == "ok" and r["return_pct"] != "" for r in rows), rows
    assert [int(r["combination"]) for r in rows] == sorted(int(r["combination"]) for r in rows)
    assert json.dumps(rows)  # complete, parseable rows


def _data_rows(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [line for line in path.read_text().splitlines()[1:] if ",ok," in line]
