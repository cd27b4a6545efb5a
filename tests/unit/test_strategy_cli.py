"""The strategy shell: loading files, ``/config set`` values, the risk table text and ``surgedca check-config``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import REPO
from trading.cli import main
from trading.core.config import ConfigError, SignalParams, StrategyConfig
from trading.core.risk import risk_table
from trading.strategy import (
    FRACTION_KEYS,
    format_risk_table,
    load_strategy,
    parse_value,
    to_toml,
    validate_full,
)


def write(tmp_path: Path, text: str, name: str = "strategy.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(key: str, raw: str) -> str:
    with pytest.raises(ConfigError) as exc:
        parse_value(key, raw)
    (msg,) = exc.value.problems
    return msg


# ------------------------------------------------------------------ load_strategy
def test_load_strategy_reports_every_problem_with_key_value_and_range(tmp_path: Path) -> None:
    path = write(tmp_path, 'leverage = 500\nmax_positions = "ten"\nreport_timezone = "Mars/Olympus"\n')
    with pytest.raises(ConfigError) as exc:
        load_strategy(path)
    assert exc.value.problems == [
        "leverage = 500 is out of range: allowed [1, 125]",
        "max_positions = 'ten' has the wrong type: allowed an integer in [1, 200]",
        "report_timezone = 'Mars/Olympus' is not a known time zone: allowed an IANA name like 'Asia/Seoul' or 'UTC'",
    ]


def test_load_strategy_refuses_isolated_at_10x(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_strategy(write(tmp_path, 'margin_mode = "isolated"\n'))
    (msg,) = exc.value.problems
    assert "stop_loss_by_stage.initial" in msg and "liquidated before the stop" in msg
    # the same file at 5x is accepted
    assert load_strategy(write(tmp_path, 'margin_mode = "isolated"\nleverage = 5\n')).leverage == 5


def test_load_strategy_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_strategy(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_strategy(write(tmp_path, "leverage = = 3\n"))
    with pytest.raises(ConfigError, match="cannot be read"):
        load_strategy(tmp_path)  # a directory
    assert load_strategy(None) == StrategyConfig()


def test_validate_full_covers_ranges_cross_checks_risk_and_timezone() -> None:
    assert validate_full(StrategyConfig()) == []
    assert validate_full(StrategyConfig(leverage=0)) == ["leverage = 0 is out of range: allowed [1, 125]"]
    assert validate_full(StrategyConfig(report_timezone="Asia")) == [
        "report_timezone = 'Asia' is not a known time zone: allowed an IANA name like 'Asia/Seoul' or 'UTC'"
    ]
    (risk,) = validate_full(StrategyConfig(max_positions=12))
    assert "max_account_loss" in risk
    assert len(validate_full(StrategyConfig(margin_mode="isolated", report_timezone="Nowhere/Land"))) == 2


# ------------------------------------------------------------------ parse_value
def test_parse_value_types() -> None:
    assert parse_value("leverage", "5") == 5
    assert parse_value("Leverage ", " 5 ") == 5  # phones capitalise
    assert parse_value("max_account_loss", "0.25") == 0.25
    assert parse_value("max_account_loss", "25%") == 0.25
    assert parse_value("first_dca_trigger", "-3%") == -0.03
    assert parse_value("taker_fee", "0.04%") == 0.0004
    assert parse_value("cooldown_after_stop_h", "12") == 12.0
    assert parse_value("cooldown_after_exit_h", "0.5") == 0.5
    assert parse_value("backstop_on_exchange", "off") is False
    assert parse_value("backstop_on_exchange", "TRUE") is True
    assert parse_value("margin_mode", "Isolated") == "isolated"
    assert parse_value("report_timezone", "Europe/Paris") == "Europe/Paris"
    assert parse_value("symbol_blacklist", "btcusdt, ETHUSDT dogeusdt") == ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]
    assert parse_value("symbol_blacklist", "none") == []
    assert parse_value("stop_loss_by_stage", "initial=-0.1,first_dca=-7%, second_dca = -0.05") == {
        "initial": -0.1,
        "first_dca": -0.07,
        "second_dca": -0.05,
    }
    assert parse_value("stop_loss_by_stage", "second_dca=-0.04") == {"second_dca": -0.04}
    assert parse_value("stop_loss_by_stage.first_dca", "-6%") == -0.06
    assert parse_value("signals.ma_fast", "3") == 3
    assert parse_value("signals.bb_fast_k", "2.5") == 2.5
    assert parse_value("signals.m2_min_spread", "0.5%") == 0.005


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("taker_fee", "9e999999999%", "taker_fee = '9e999999999%' is out of range: allowed [0, 0.01]"),
        ("taker_fee", "9e999999999", "taker_fee = '9e999999999' is out of range: allowed [0, 0.01]"),
        ("taker_fee", "1e-400", "taker_fee = '1e-400' is out of range: allowed [0, 0.01]"),  # not a silent 0
        ("max_account_loss", "-1E+99999999%", "max_account_loss = '-1E+99999999%' is out of range: allowed (0, 1]"),
        ("signals.bb_fast_k", "1e301", "signals.bb_fast_k = '1e301' is out of range: allowed (0, 10]"),
        (
            "stop_loss_by_stage.initial",
            "-1e999",
            "stop_loss_by_stage.initial = '-1e999' is out of range: allowed (-1, 0)",
        ),
        (
            "stop_loss_by_stage",
            "initial=-9e99999999%",
            "stop_loss_by_stage.initial = '-9e99999999%' is out of range: allowed (-1, 0)",
        ),
        ("leverage", "9" * 5000, "leverage = '" + "9" * 37 + "...' is out of range: allowed [1, 125]"),
        ("signals.ma_fast", "-" + "1" * 30, "signals.ma_fast = '-" + "1" * 30 + "' is out of range: allowed [1, 2000]"),
    ],
)
def test_numbers_that_cannot_be_represented_are_refused_with_the_allowed_range(
    key: str, raw: str, expected: str
) -> None:
    assert error_of(key, raw) == expected


def test_tiny_and_huge_values_that_can_be_represented_go_on_to_the_range_check() -> None:
    assert parse_value("taker_fee", "0e-999999") == 0.0  # zero is zero, whatever its exponent
    assert parse_value("leverage", "000000000000000000000000005") == 5  # leading zeros are not digits of value
    assert parse_value("max_account_loss", "1e-300") == 1e-300
    assert parse_value("signals.bb_fast_k", "1e300") == 1e300  # refused later: out of range


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("leverage", "10x", "leverage: expected an integer, e.g. 10, got '10x'"),
        ("leverage", "10.5", "leverage: expected an integer, e.g. 10, got '10.5'"),
        ("leverage", "10%", "leverage: expected an integer (no %), got '10%'"),
        ("max_account_loss", "lots", "max_account_loss: expected a number, e.g. 0.03 or 3%, got 'lots'"),
        ("max_account_loss", "nan", "max_account_loss: expected a finite number, got 'nan'"),
        (
            "cooldown_after_stop_h",
            "50%",
            "cooldown_after_stop_h: expected a plain number (this key takes no %), got '50%'",
        ),
        ("signals.bb_fast_k", "2%", "signals.bb_fast_k: expected a plain number (this key takes no %), got '2%'"),
        ("backstop_on_exchange", "maybe", "backstop_on_exchange: expected true or false, got 'maybe'"),
        ("symbol_blacklist", "BTC-USDT", "symbol_blacklist: expected symbols like BTCUSDT,ETHUSDT (or 'none')"),
        ("stop_loss_by_stage", "third=-0.1", "stop_loss_by_stage: expected stage=value pairs like"),
        ("stop_loss_by_stage", "initial=-0.1,initial=-0.2", "stop_loss_by_stage: stage 'initial' given twice"),
        ("stop_loss_by_stage", "", "stop_loss_by_stage: expected stage=value pairs like"),
        ("stop_loss_by_stage.initial", "x", "stop_loss_by_stage.initial: expected a number"),
        ("stop_loss_by_stage.third", "-0.1", "unknown key 'stop_loss_by_stage.third'"),
        ("signals", "ma_fast=3", "signals: set one signal parameter at a time"),
        ("signals.ma_fats", "3", "unknown key 'signals.ma_fats' (did you mean 'signals.ma_fast'?)"),
        ("levrage", "3", "unknown key 'levrage' (did you mean 'leverage'?)"),
        ("report_timezone", "", "report_timezone: expected a text value, got nothing"),
    ],
)
def test_parse_value_errors_name_the_key_and_expected_type(key: str, raw: str, expected: str) -> None:
    assert error_of(key, raw).startswith(expected)


def _text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def test_every_key_parses_its_own_default_back() -> None:
    cfg = StrategyConfig()
    keys = [f.name for f in dataclasses.fields(StrategyConfig) if f.name != "signals"]
    keys += [f"signals.{f.name}" for f in dataclasses.fields(SignalParams)]
    for key in keys:
        default = cfg.to_dict()[key] if "." not in key else getattr(cfg.signals, key.split(".")[1])
        if isinstance(default, list):
            default = tuple(default)
        parsed = parse_value(key, _text_of(default))
        assert (tuple(parsed) if isinstance(parsed, list) else parsed) == default, key
        assert cfg.with_value(key, parsed) == cfg, key


def test_fraction_keys_are_fractions_in_the_config() -> None:
    cfg = StrategyConfig()
    for key in FRACTION_KEYS:
        section, _, name = key.partition(".")
        value = (
            cfg.stop_loss_by_stage[name]
            if section == "stop_loss_by_stage"
            else getattr(cfg.signals, name)
            if section == "signals"
            else getattr(cfg, key)
        )
        assert isinstance(value, float) and -1 < value <= 1, key


# ------------------------------------------------------------------ text
def test_risk_table_text_has_aligned_columns() -> None:
    for cfg in (StrategyConfig(), StrategyConfig(margin_mode="isolated", leverage=5)):
        text = format_risk_table(risk_table(cfg, Decimal(1000)))
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if line.startswith("stage"))
        block = lines[start : start + 5]  # header, rule, three stages
        assert [line.split()[0] for line in block[2:]] == ["initial", "first_dca", "second_dca"]
        assert len({len(line) for line in block}) == 1, block
        # every column ends at the same place on every line (right-aligned numbers)
        rule = block[1]
        ends = [i for i, ch in enumerate(rule) if ch == "-" and (i + 1 == len(rule) or rule[i + 1] == " ")]
        for line in block[2:]:
            assert all(line[i] != " " for i in ends[1:]), line  # the stage column is left-aligned
    isolated = format_risk_table(risk_table(StrategyConfig(margin_mode="isolated"), Decimal(1000)))
    assert "liquidation" in isolated and "NO" in isolated


def test_to_toml_marks_changes() -> None:
    text = to_toml(StrategyConfig().with_value("signals.ma_fast", 3))
    assert "ma_fast = 3  # default: 5" in text
    assert "leverage = 10\n" in text


# ------------------------------------------------------------------ check-config
def test_check_config_defaults(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("STRATEGY_FILE", raising=False)
    assert main(["check-config"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "SPEC defaults" in out
    assert "loss 275.00 USDT = 27.50% of the balance" in out
    assert "Result: OK" in out
    assert 'margin_mode = "cross"' in out


def test_check_config_isolated_file_fails_with_the_liquidation_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STRATEGY_FILE", raising=False)
    path = write(tmp_path, 'margin_mode = "isolated"\n')
    assert main(["check-config", "--file", str(path)]) == 1
    out, err = capsys.readouterr()
    assert "liquidated before the stop fires" in err
    assert "margin_mode = 'isolated' at leverage 10x" in err
    assert "Result: INVALID" in out and "stop above liq." in out  # the table is still shown


def test_check_config_bad_value_names_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "take_half_fraction = 1.5\nlevrage = 20\n")
    monkeypatch.setenv("STRATEGY_FILE", str(path))  # found through the environment
    assert main(["check-config"]) == 1
    out, err = capsys.readouterr()
    assert "take_half_fraction = 1.5 is out of range: allowed (0, 1)" in err
    assert "unknown key 'levrage' = 20 (did you mean 'leverage'?)" in err
    assert str(path) in err
    assert out == ""


def test_check_config_balance_is_used_and_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STRATEGY_FILE", "")
    assert main(["check-config", "--balance", "5000"]) == 0
    out, _ = capsys.readouterr()
    assert "5,000.00 USDT" in out and "loss 1,375.00 USDT = 27.50%" in out
    assert main(["check-config", "--balance", "0"]) == 2
    assert "--balance must be a positive number" in capsys.readouterr().err


def test_check_config_console_script(tmp_path: Path) -> None:
    script = REPO / ".venv" / "bin" / "surgedca"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "trading.cli"]
    env = {k: v for k, v in os.environ.items() if k != "STRATEGY_FILE"}
    ok = subprocess.run([*cmd, "check-config"], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
    assert "275.00" in ok.stdout and "27.50%" in ok.stdout
    bad = write(tmp_path, 'margin_mode = "isolated"\n')
    res = subprocess.run(
        [*cmd, "check-config", "--file", str(bad)], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert res.returncode == 1
    assert "liquidat" in res.stderr
