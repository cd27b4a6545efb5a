"""StrategyConfig: SPEC 7 defaults, validation messages, TOML round trip, ``with_value``."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO
from trading.core.config import ConfigError, SignalParams, StrategyConfig, parse_config
from trading.strategy import load_strategy, to_toml

# SPEC section 7, transcribed.
SPEC_7 = {
    "universe_size": 150,
    "symbol_blacklist": [],
    "scan_interval_s": 60,
    "leverage": 10,
    "margin_mode": "cross",
    "max_positions": 10,
    "max_margin_usage": 0.55,
    "max_account_loss": 0.30,
    "initial_weight": 0.015,
    "first_dca_trigger": -0.03,
    "first_dca_weight": 0.020,
    "second_dca_trigger": -0.06,
    "second_dca_weight": 0.020,
    "stop_loss_by_stage": {"initial": -0.10, "first_dca": -0.07, "second_dca": -0.05},
    "take_half_at": 0.10,
    "take_half_fraction": 0.5,
    "runner_trailing_stop": 0.03,
    "cooldown_after_stop_h": 24,
    "cooldown_after_exit_h": 1,
    "backstop_on_exchange": True,
    "reconcile_interval_s": 15,
    "fallback_poll_interval_s": 3,
    "report_timezone": "Asia/Seoul",
}


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    return exc.value.problems


# ------------------------------------------------------------------ defaults
def test_every_spec_7_default() -> None:
    got = StrategyConfig().to_dict()
    for key, value in SPEC_7.items():
        assert got[key] == value, key
        assert type(got[key]) is type(value) or isinstance(value, float), key


def test_defaults_match_the_block_in_docs_strategy_md() -> None:
    doc = (REPO / "docs" / "strategy.md").read_text(encoding="utf-8")
    block = re.search(r"^## Defaults\b.*?```toml\n(.*?)```", doc, re.S | re.M)
    assert block, "the ```toml block under '## Defaults' was not found in docs/strategy.md"
    documented = tomllib.loads(block.group(1))
    assert documented == StrategyConfig().to_dict()  # every key the code has, each with the code's default
    assert {key: documented[key] for key in SPEC_7} == SPEC_7
    assert parse_config(documented) == StrategyConfig()


def test_signal_defaults_are_the_notes_numbers() -> None:
    s = SignalParams()
    assert (s.ma_fast, s.ma_short, s.ma_mid, s.ma_long) == (5, 20, 80, 480)
    assert (s.bb_fast_n, s.bb_fast_k, s.bb_slow_n, s.bb_slow_k) == (200, 2.0, 480, 1.5)
    assert (s.min_1m_conditions, s.min_15m_conditions, s.prefilter_bars) == (6, 3, 4)


def test_empty_mapping_gives_defaults_and_config_is_frozen() -> None:
    cfg = parse_config({})
    assert cfg == StrategyConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.leverage = 20  # type: ignore[misc]


# ------------------------------------------------------------------ rejections
def test_unknown_key_is_named_with_its_value_and_a_suggestion() -> None:
    (msg,) = problems_of({"levrage": 5})
    assert msg == "unknown key 'levrage' = 5 (did you mean 'leverage'?)"
    (msg,) = problems_of({"signals": {"ma_fats": 3}})
    assert "'signals.ma_fats' = 3" in msg and "signals.ma_fast" in msg
    (msg,) = problems_of({"stop_loss_by_stage": {"third_dca": -0.02}})
    assert "'stop_loss_by_stage.third_dca' = -0.02" in msg


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"leverage": 0}, "leverage = 0 is out of range: allowed [1, 125]"),
        ({"leverage": 126}, "leverage = 126 is out of range: allowed [1, 125]"),
        ({"max_account_loss": 0}, "max_account_loss = 0 is out of range: allowed (0, 1]"),
        ({"take_half_fraction": 1.0}, "take_half_fraction = 1.0 is out of range: allowed (0, 1)"),
        ({"first_dca_trigger": 0.03}, "first_dca_trigger = 0.03 is out of range: allowed (-1, 0)"),
        ({"reconcile_interval_s": 2}, "reconcile_interval_s = 2 is out of range: allowed [5, 3600]"),
        ({"taker_fee": float("nan")}, "taker_fee = nan is out of range: allowed [0, 0.01]"),
        ({"stop_loss_by_stage": {"initial": 0.1}}, "stop_loss_by_stage.initial = 0.1 is out of range: allowed (-1, 0)"),
        ({"signals": {"min_1m_conditions": 8}}, "signals.min_1m_conditions = 8 is out of range: allowed [1, 7]"),
    ],
)
def test_out_of_range_names_key_value_and_range(data: dict, expected: str) -> None:
    assert problems_of(data) == [expected]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"leverage": "10"}, "leverage = '10' has the wrong type: allowed an integer in [1, 125]"),
        ({"leverage": 10.0}, "leverage = 10.0 has the wrong type: allowed an integer in [1, 125]"),
        ({"leverage": True}, "leverage = True has the wrong type: allowed an integer in [1, 125]"),
        ({"initial_weight": "1.5%"}, "initial_weight = '1.5%' has the wrong type: allowed a number in (0, 1]"),
        (
            {"stop_loss_by_stage": {"first_dca": "-7%"}},
            "stop_loss_by_stage.first_dca = '-7%' has the wrong type: allowed a number in (-1, 0)",
        ),
        ({"backstop_on_exchange": "yes"}, "backstop_on_exchange = 'yes' is invalid: allowed true or false"),
        ({"margin_mode": "portfolio"}, "margin_mode = 'portfolio' is invalid: allowed 'cross' or 'isolated'"),
        ({"symbol_blacklist": "BTCUSDT"}, "symbol_blacklist = 'BTCUSDT' is invalid: allowed a list of symbols"),
        ({"signals": [1, 2]}, "signals = [1, 2] must be a table"),
    ],
)
def test_wrong_type_names_key_value_and_what_is_allowed(data: dict, expected: str) -> None:
    (msg,) = problems_of(data)
    assert msg.startswith(expected)


def test_misordered_triggers_are_rejected() -> None:
    (msg,) = problems_of({"first_dca_trigger": -0.06, "second_dca_trigger": -0.03})
    assert "second_dca_trigger = -0.03" in msg and "first_dca_trigger = -0.06" in msg and "second < first" in msg
    (msg,) = problems_of({"first_dca_trigger": -0.05, "second_dca_trigger": -0.05})
    assert "second < first" in msg


def test_initial_stop_above_the_first_trigger_is_rejected() -> None:
    (msg,) = problems_of({"stop_loss_by_stage": {"initial": -0.02}})
    assert "stop_loss_by_stage.initial = -0.02" in msg and "first_dca_trigger = -0.03" in msg


def test_first_dca_stop_above_the_second_trigger_is_rejected() -> None:
    # average after DCA1 (at 0.97) = 0.98263; x 0.95 = -6.65% < -6%: fine
    parse_config({"stop_loss_by_stage": {"first_dca": -0.05}})
    # x 0.96 = -5.67%: at or above the -6% second trigger, which could then never fire
    (msg,) = problems_of({"stop_loss_by_stage": {"first_dca": -0.04}})
    assert "stop_loss_by_stage.first_dca = -0.04" in msg and "second_dca_trigger = -0.06" in msg
    assert "-5.67%" in msg


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of({"leverage": 0, "max_positions": "ten", "colour": "red", "signals": {"ma_fast": -1}})
    assert len(problems) == 4
    assert any(p.startswith("leverage = 0") for p in problems)
    assert any(p.startswith("max_positions = 'ten'") for p in problems)
    assert any(p.startswith("unknown key 'colour'") for p in problems)
    assert any(p.startswith("signals.ma_fast = -1") for p in problems)


def test_cross_field_ma_order_and_weights() -> None:
    (msg,) = problems_of({"signals": {"ma_short": 100}})
    assert "must be increasing" in msg
    (msg,) = problems_of({"initial_weight": 0.5, "first_dca_weight": 0.3, "second_dca_weight": 0.3})
    assert "exceed the whole balance" in msg
    (msg,) = problems_of({"runner_ma_fast": 20})
    assert "runner_ma_fast = 20 must be below runner_ma_slow = 20" in msg


# ------------------------------------------------------------------ TOML round trip
def test_toml_file_round_trip(tmp_path: Path) -> None:
    cfg = parse_config(
        {
            "leverage": 5,
            "margin_mode": "isolated",
            "symbol_blacklist": ["btcusdt", " ETHUSDT "],
            "stop_loss_by_stage": {"initial": -0.08},
            "take_half_at": 0.12,
            "cooldown_after_exit_h": 0.5,
            "report_timezone": "UTC",
            "signals": {"ma_fast": 3, "bb_fast_k": 2.5},
        }
    )
    assert cfg.symbol_blacklist == ("BTCUSDT", "ETHUSDT")
    assert cfg.stop_loss_by_stage == {"initial": -0.08, "first_dca": -0.07, "second_dca": -0.05}
    path = tmp_path / "strategy.toml"
    path.write_text(to_toml(cfg), encoding="utf-8")
    assert load_strategy(path) == cfg
    assert "leverage = 5  # default: 10" in path.read_text(encoding="utf-8")
    assert load_strategy(None) == StrategyConfig()


def test_example_file_holds_every_key_with_its_default() -> None:
    path = REPO / "strategy.example.toml"
    raw = tomllib.loads(path.read_text(encoding="utf-8"))
    assert set(raw) == {f.name for f in dataclasses.fields(StrategyConfig)}
    assert set(raw["signals"]) == {f.name for f in dataclasses.fields(SignalParams)}
    assert set(raw["stop_loss_by_stage"]) == {"initial", "first_dca", "second_dca"}
    assert load_strategy(path) == StrategyConfig()
    # every key's line explains it
    for line in path.read_text(encoding="utf-8").splitlines():
        if re.match(r"^\w+ = ", line):
            assert " # " in line, line


# ------------------------------------------------------------------ with_value
def test_with_value_plain_and_dotted_keys() -> None:
    cfg = StrategyConfig()
    assert cfg.with_value("leverage", 5).leverage == 5
    assert cfg.with_value("signals.ma_fast", 3).signals.ma_fast == 3
    assert cfg.with_value("stop_loss_by_stage.initial", -0.12).stop_loss_by_stage == {
        "initial": -0.12,
        "first_dca": -0.07,
        "second_dca": -0.05,
    }
    assert cfg.with_value("symbol_blacklist", ["dogeusdt"]).symbol_blacklist == ("DOGEUSDT",)
    assert cfg.leverage == 10 and cfg.signals.ma_fast == 5  # the original is untouched


def test_with_value_partial_table_keeps_the_current_values_not_the_defaults() -> None:
    cfg = StrategyConfig().with_value("stop_loss_by_stage.first_dca", -0.06)
    changed = cfg.with_value("stop_loss_by_stage", {"initial": -0.12})
    assert changed.stop_loss_by_stage == {"initial": -0.12, "first_dca": -0.06, "second_dca": -0.05}
    sig = StrategyConfig().with_value("signals.ma_fast", 3).with_value("signals", {"bb_fast_k": 2.5})
    assert (sig.signals.ma_fast, sig.signals.bb_fast_k) == (3, 2.5)


def test_with_value_rejects_unknown_and_invalid_values() -> None:
    cfg = StrategyConfig()
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        cfg.with_value("nope", 1)
    with pytest.raises(ConfigError, match=r"unknown key 'signals\.nope'"):
        cfg.with_value("signals.nope", 1)
    with pytest.raises(ConfigError, match=r"unknown key 'leverage\.x'"):
        cfg.with_value("leverage.x", 1)
    with pytest.raises(ConfigError, match=r"leverage = 0 is out of range: allowed \[1, 125\]"):
        cfg.with_value("leverage", 0)
    with pytest.raises(ConfigError, match="second < first"):
        cfg.with_value("first_dca_trigger", -0.07)
