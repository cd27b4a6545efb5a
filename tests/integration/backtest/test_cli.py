"""``surgedca backtest`` through ``trading.cli.main``: the four files, the table, comparisons, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import KLINES_DIR
from trading.candle_files import read_candles
from trading.cli import main

WINDOW = ["--data", str(KLINES_DIR), "--symbols", "XMRUSDT,ZECUSDT,SUIUSDT", "--from", "2026-01-11"]
WINDOW += ["--to", "2026-01-13"]


def test_backtest_writes_all_four_files_and_prints_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["backtest", *WINDOW, "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["equity.png", "signals.csv", "summary.json", "trades.csv"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["start"] == "2026-01-11T00:00:00Z" and summary["end"] == "2026-01-13T00:00:00Z"
    assert summary["symbols"] == ["SUIUSDT", "XMRUSDT", "ZECUSDT"]
    assert summary["candles"] == 3 * 2 * 1440
    assert summary["problems"] == [] and summary["checks"]["balance"] == "ok"
    for key in (
        "balance_start",
        "balance_end",
        "realized_pnl",
        "return_pct",
        "max_drawdown_pct",
        "trades",
        "win_rate",
        "avg_hold_minutes",
        "fees",
        "max_margin_in_use",
        "exit_reasons",
        "max_stage_reached",
    ):
        assert key in summary

    trades = list(csv.DictReader((out / "trades.csv").open()))
    assert len(trades) == summary["trades"] > 0
    for row in trades:
        legs = json.loads(row["legs"])
        assert legs[0]["side"] == "BUY" and legs[-1]["side"] == "SELL"
        assert sum(float(leg["qty"]) for leg in legs if leg["side"] == "BUY") == pytest.approx(float(row["qty_sold"]))
    signals = list(csv.DictReader((out / "signals.csv").open()))
    assert len(signals) == summary["entry_signals"] >= len(trades)
    assert all(json.loads(s["values"]) and s["H1"] in ("0", "1") for s in signals)
    assert (out / "equity.png").read_bytes().startswith(b"\x89PNG")

    assert "balance end" in printed.out and "max drawdown %" in printed.out
    assert f"{summary['balance_end']:,.2f}" in printed.out
    assert printed.err == ""  # --no-progress: nothing on stderr


def test_two_configs_run_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = tmp_path / "base.toml"
    a.write_text("# SPEC defaults\n")
    b = tmp_path / "quick.toml"
    b.write_text("take_half_at = 0.04\nrunner_trailing_stop = 0.02\n")
    out = tmp_path / "cmp"
    assert main(["backtest", *WINDOW, "--config", str(a), "--config", str(b), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in ("base", "quick"):
        assert sorted(p.name for p in (out / name).iterdir()) == [
            "equity.png",
            "signals.csv",
            "summary.json",
            "trades.csv",
        ]
    base = json.loads((out / "base" / "summary.json").read_text())
    quick = json.loads((out / "quick" / "summary.json").read_text())
    assert base["name"] == "base" and quick["name"] == "quick"
    assert base["balance_end"] != quick["balance_end"]  # the configs trade differently on the same data
    header = next(line for line in printed.splitlines() if "base" in line and "quick" in line)
    assert header.index("base") < header.index("quick")
    row = next(line for line in printed.splitlines() if line.startswith("balance end"))
    assert row.split()[-2:] == [f"{base['balance_end']:,.2f}", f"{quick['balance_end']:,.2f}"]


def test_progress_goes_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", *WINDOW, "--out", str(tmp_path / "p")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and "100.0%" in err[-1] and "candles/min" in err[-1]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--symbols", "XMRUSDT,NOPEUSDT"], "no candle file for NOPEUSDT"),
        (["--from", "2026-01-13", "--to", "2026-01-12"], "must be after --from"),
        (["--from", "yesterday"], "is not a date"),
        (["--balance", "-5"], "--balance must be a positive"),
        (["--slippage", "0.2"], "--slippage must be a fraction"),
        (["--from", "2030-01-01"], "after the last candle"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "never"
    args = ["backtest", "--data", str(KLINES_DIR), "--symbols", "XMRUSDT", "--out", str(out), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_an_invalid_config_lists_its_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("leverage = 0\nno_such_key = 1\n")
    out = tmp_path / "never"
    assert main(["backtest", *WINDOW, "--config", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "invalid strategy config" in err and "leverage" in err and "no_such_key" in err
    assert not out.exists()


def test_a_symbol_whose_data_ended_before_the_window_is_never_listed(tmp_path: Path) -> None:
    # BTCUSDT's file ends in 2025-05/06: in a 2026 window it is a delisted symbol with nothing to trade.
    args = ["--data", str(KLINES_DIR), "--symbols", "BTCUSDT,XMRUSDT"]
    args += ["--from", "2026-01-12", "--to", "2026-01-12T06:00"]
    assert main(["backtest", *args, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    btc_last = int(read_candles(KLINES_DIR / "BTCUSDT-1m.csv.gz").open_time[-1])
    assert summary["left_before_end"] == {"BTCUSDT": _iso(btc_last)} and summary["joined_after_start"] == {}
    assert summary["candles"] == 6 * 60  # XMRUSDT's only


def test_a_symbol_whose_data_begins_later_is_announced(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # From BTCUSDT's first week (2025-05) on; XMRUSDT's data begins in 2026-01: it joins the universe then.
    args = ["--data", str(KLINES_DIR), "--symbols", "BTCUSDT,XMRUSDT", "--to", "2026-01-12", "--no-funding"]
    assert main(["backtest", *args, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "note: the data of XMRUSDT begins after the start" in capsys.readouterr().err
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert summary["joined_after_start"] == {"XMRUSDT": "2026-01-04T00:00:00Z"}


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def test_a_start_inside_the_warm_up_is_flagged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data", str(KLINES_DIR), "--symbols", "XMRUSDT", "--from", "2026-01-06", "--to", "2026-01-06T01:00"]
    assert main(["backtest", *args, "--out", str(tmp_path / "o"), "--no-progress"]) == 0
    assert "warning: only 2.0 day(s) of candles before --from; the signals read 7" in capsys.readouterr().err


def test_a_window_inside_the_warm_up_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--data", str(KLINES_DIR), "--symbols", "XMRUSDT", "--to", "2026-01-08", "--out", str(tmp_path / "o")]
    assert main(["backtest", *args]) == 2
    assert "do not reach past the signals' warm-up (7 days)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
