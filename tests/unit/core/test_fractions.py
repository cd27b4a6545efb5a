"""The config's fractions as exact decimals, made once per config (``StrategyConfig.fractions``)."""

from __future__ import annotations

import pickle
from decimal import Decimal

from trading.core.config import StrategyConfig, parse_config
from trading.core.decimals import decimal_of
from trading.core.models import Stage

D = Decimal


def test_each_fraction_is_the_decimal_the_user_wrote() -> None:
    cfg = parse_config(
        {"take_half_at": 0.1, "runner_trailing_stop": 0.03, "taker_fee": 0.0004, "max_margin_usage": 0.55}
    )
    f = cfg.fractions
    assert (f.take_half_at, f.runner_trailing_stop, f.taker_fee, f.max_margin_usage) == (
        D("0.1"),
        D("0.03"),
        D("0.0004"),
        D("0.55"),
    )
    assert (f.take_half_fraction, f.max_account_loss) == (D("0.5"), D("0.3"))
    assert f.weights == {Stage.INITIAL: D("0.015"), Stage.FIRST_DCA: D("0.02"), Stage.SECOND_DCA: D("0.02")}
    assert f.triggers == {Stage.FIRST_DCA: D("-0.03"), Stage.SECOND_DCA: D("-0.06")}
    assert f.stops == {Stage.INITIAL: D("-0.1"), Stage.FIRST_DCA: D("-0.07"), Stage.SECOND_DCA: D("-0.05")}
    assert cfg.stop_for(Stage.FIRST_DCA) == D("-0.07") and cfg.weight_for(Stage.INITIAL) == D("0.015")
    assert cfg.trigger_for(Stage.SECOND_DCA) == D("-0.06")


def test_made_once_per_config_and_anew_for_a_changed_one() -> None:
    cfg = StrategyConfig()
    assert cfg.fractions is cfg.fractions  # no conversion per call on the hot path
    changed = cfg.with_value("take_half_at", 0.12)
    assert changed.fractions.take_half_at == D("0.12") and cfg.fractions.take_half_at == D("0.1")
    assert changed.with_value("stop_loss_by_stage.initial", -0.09).stop_for(Stage.INITIAL) == D("-0.09")


def test_the_cache_does_not_change_what_a_config_is() -> None:
    cfg, other = StrategyConfig(), StrategyConfig()
    _ = cfg.fractions
    assert cfg == other and repr(cfg) == repr(other) and "fractions" not in cfg.to_dict()
    again = pickle.loads(pickle.dumps(cfg))  # the backtest sweep sends configs to worker processes
    assert again == cfg and again.fractions == cfg.fractions


def test_decimal_of_is_the_shortest_round_trip() -> None:
    assert decimal_of(0.1) == D("0.1") and decimal_of(1e-7) == D("1E-7") and decimal_of(3) == D("3.0")
    assert float(decimal_of(0.30000000000000004)) == 0.30000000000000004
