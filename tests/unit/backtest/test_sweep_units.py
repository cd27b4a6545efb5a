"""Sweep pieces: grids typed as /config set types values, combinations judged whole, windows, ranking."""

from __future__ import annotations

from pathlib import Path

import pytest

from trading.backtest.sweep import (
    Grid,
    SweepInputError,
    apply_values,
    combinations,
    parse_duration,
    parse_grid_file,
    parse_grid_text,
    rank,
    score,
    walk_forward_windows,
)
from trading.core.config import ConfigError, StrategyConfig

D = 86_400_000


def test_a_text_grid_is_typed_per_key() -> None:
    g = parse_grid_text("leverage=5,10  take_half_at=6%,0.10 Signals.ma_fast=3,5,3 stop_loss_by_stage.initial=-0.08")
    assert g.keys == ("leverage", "take_half_at", "signals.ma_fast", "stop_loss_by_stage.initial")
    assert g.values == ((5, 10), (0.06, 0.1), (3, 5), (-0.08,))  # a repeated value counts once
    assert g.size == 8 and g.combinations()[1] == {
        "leverage": 5, "take_half_at": 0.06, "signals.ma_fast": 5, "stop_loss_by_stage.initial": -0.08
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("leverage", "is not key=value1,value2"),
        ("leverage=", "is not key=value1,value2"),
        ("leverage=5 leverage=6", "leverage is given twice"),
        ("leverage=5%", "expected an integer"),
        ("nope=1", "unknown key 'nope'"),
        ("", "names no key"),
    ],
)
def test_bad_text_grids_say_why(text: str, message: str) -> None:
    with pytest.raises(SweepInputError, match=message):
        parse_grid_text(text)


def test_a_toml_grid_with_tables(tmp_path: Path) -> None:
    path = tmp_path / "grid.toml"
    path.write_text("leverage = [5, 10]\ntake_half_at = 0.08\n[stop_loss_by_stage]\ninitial = [-0.08, -0.1]\n")
    g = parse_grid_file(path)
    assert g == Grid(("leverage", "take_half_at", "stop_loss_by_stage.initial"), ((5, 10), (0.08,), (-0.08, -0.1)))
    path.write_text("leverage = [5, 'ten']\n")
    with pytest.raises(SweepInputError, match="leverage: expected an integer"):
        parse_grid_file(path)


def test_a_combination_is_judged_whole_and_refused_as_check_config_refuses() -> None:
    base = StrategyConfig()
    # moving both triggers together is fine, although the second alone would cross the first
    cfg = apply_values(base, {"first_dca_trigger": -0.01, "second_dca_trigger": -0.02})
    assert (cfg.first_dca_trigger, cfg.second_dca_trigger) == (-0.01, -0.02)
    with pytest.raises(ConfigError, match="must be ordered"):
        apply_values(base, {"second_dca_trigger": -0.02})
    combos = combinations(base, parse_grid_text("leverage=10,40 stop_loss_by_stage.initial=-0.02,-0.1"))
    assert [(c.index, c.refused) for c in combos] == [(1, True), (2, False), (3, True), (4, True)]
    assert "first_dca_trigger" in combos[0].problems[0]
    assert any("max_account_loss" in p or "worst case" in p.lower() for p in combos[3].problems)


def test_walk_forward_windows_are_complete_and_step_by_the_test_length() -> None:
    assert parse_duration("14d") == 14 * D and parse_duration("36h") == 36 * 3_600_000
    ws = walk_forward_windows(0, 30 * D, 14 * D, 7 * D)
    assert [(w.number, w.train_start, w.train_end, w.test_end) for w in ws] == [
        (1, 0, 14 * D, 21 * D),
        (2, 7 * D, 21 * D, 28 * D),
    ]
    assert walk_forward_windows(0, 20 * D, 14 * D, 7 * D) == []


def test_ranking_by_return_over_drawdown_with_a_trade_minimum() -> None:
    rows = {
        1: {"status": "ok", "return_pct": 10.0, "max_drawdown_pct": 10.0, "trades": 5},  # 1.0
        2: {"status": "ok", "return_pct": 4.0, "max_drawdown_pct": 0.5, "trades": 5},  # 4 / 1 (floor) = 4.0
        3: {"status": "ok", "return_pct": 30.0, "max_drawdown_pct": 2.0, "trades": 1},  # too few trades
        4: {"status": "refused"},
    }
    assert score(rows[2], 3) == 4.0 and score(rows[3], 3) is None
    assert rank(rows, 3) == [2, 1, 3, 4]
