"""SPEC 6: the true worst case, isolated-mode liquidation, and the refusals."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trading.core.config import StrategyConfig
from trading.core.risk import (
    DEFAULT_BRACKETS,
    bracket_for,
    build_brackets,
    liquidation_price_long_isolated,
    risk_table,
    validate_strategy,
)
from trading.exchange.base import Bracket

FEE = D("0.0005")


# ------------------------------------------------------------------ brackets
def test_default_brackets_cum_follows_binance_rule_and_is_continuous() -> None:
    assert DEFAULT_BRACKETS[0].notional_floor == 0 and DEFAULT_BRACKETS[0].cum == 0
    assert DEFAULT_BRACKETS[0].maint_margin_ratio == D("0.010")
    for prev, cur in itertools.pairwise(DEFAULT_BRACKETS):
        assert cur.notional_floor == prev.notional_cap
        assert cur.maint_margin_ratio > prev.maint_margin_ratio
        assert cur.max_leverage <= prev.max_leverage
        assert cur.cum == prev.cum + cur.notional_floor * (cur.maint_margin_ratio - prev.maint_margin_ratio)
        # the maintenance margin is the same at the boundary from both sides
        x = cur.notional_floor
        assert x * prev.maint_margin_ratio - prev.cum == x * cur.maint_margin_ratio - cur.cum
        # a tier's ratio must stay below its initial margin ratio, or a max-leverage position starts liquidated
        assert cur.maint_margin_ratio < D(1) / cur.max_leverage


def test_build_brackets_computes_cum_like_binance() -> None:
    # cum_n = cum_{n-1} + floor_n x (mmr_n - mmr_{n-1}), by hand:
    # 0; 50,000 x 0.001 = 50; 50 + 600,000 x 0.0015 = 950; 950 + 3,000,000 x 0.0035 = 11,450;
    # 11,450 + 12,000,000 x 0.01 = 131,450
    tiers = build_brackets(
        (
            (0, 50_000, "0.004", 125),
            (50_000, 600_000, "0.005", 100),
            (600_000, 3_000_000, "0.0065", 75),
            (3_000_000, 12_000_000, "0.01", 50),
            (12_000_000, 70_000_000, "0.02", 25),
        )
    )
    assert [b.cum for b in tiers] == [D(0), D(50), D(950), D(11450), D(131450)]


def test_bracket_for_picks_the_tier_by_notional() -> None:
    assert bracket_for(D(0)).maint_margin_ratio == D("0.010")
    assert bracket_for(D("4999.99")).maint_margin_ratio == D("0.010")
    assert bracket_for(D(5000)).maint_margin_ratio == D("0.025")
    assert bracket_for(D(10**9)) is DEFAULT_BRACKETS[-1]
    with pytest.raises(ValueError):
        bracket_for(D(1), ())


# ------------------------------------------------------------------ liquidation
def test_liquidation_price_by_hand() -> None:
    # 1 unit at 100 with 10 of margin, MMR 1%, cum 0: LP = (10 - 100) / (0.01 - 1) = 90.9090...
    lp = liquidation_price_long_isolated(D(100), D(1), D(10))
    assert lp == D(90) / D("0.99")
    # 100 units at 100 (10,000 notional, tier 2: MMR 2.5%, cum 75), 1,000 margin:
    # LP = (1000 + 75 - 10000) / (100 x 0.025 - 100) = 8925 / 97.5
    assert liquidation_price_long_isolated(D(100), D(100), D(1000)) == D(8925) / D("97.5")


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(
    entry=st.decimals(min_value=D("0.001"), max_value=D(100_000), places=3),
    qty=st.decimals(min_value=D("0.001"), max_value=D(10_000), places=3),
    leverage=st.integers(2, 125),
)
def test_at_the_liquidation_price_equity_equals_maintenance_margin(entry: D, qty: D, leverage: int) -> None:
    margin = qty * entry / leverage
    lp = liquidation_price_long_isolated(entry, qty, margin)
    b = bracket_for(qty * entry)
    if lp == 0:  # fully collateralised for this tier: never liquidated
        assert margin + b.cum >= qty * entry
        return
    equity = margin + qty * (lp - entry)
    maintenance = qty * lp * b.maint_margin_ratio - b.cum
    assert abs(equity - maintenance) <= D("1e-15") * qty * entry
    if leverage <= b.max_leverage:  # within the tier's leverage a new position is not born liquidated
        assert lp < entry


def test_fully_collateralised_long_has_no_liquidation() -> None:
    assert liquidation_price_long_isolated(D(100), D(1), D(100)) == 0
    with pytest.raises(ValueError):
        liquidation_price_long_isolated(D(100), D(0), D(10))


# ------------------------------------------------------------------ the table
def test_defaults_true_worst_case_is_275_usdt_not_the_notes_27_50() -> None:
    t = risk_table(StrategyConfig(), D(1000))
    assert [r.stage for r in t.rows] == ["initial", "first_dca", "second_dca"]
    assert [r.margin for r in t.rows] == [15, 35, 55]
    assert [r.notional for r in t.rows] == [150, 350, 550]
    assert [r.stop_pct for r in t.rows] == [D("-0.10"), D("-0.07"), D("-0.05")]
    # notional x |stop|: the notes had 1.50 / 2.45 / 2.75 (margin x |stop|)
    assert [r.loss_at_stop for r in t.rows] == [15, D("24.5"), D("27.5")]
    assert t.worst_case_loss == 275
    assert t.worst_case_loss / t.balance == D("0.275")  # 27.5%, not the notes' 2.75%
    # fees: every buy and the stop's sell (550 x 0.95 = 522.5) at 0.05%, ten times
    assert t.worst_case_fees == 10 * (D(550) + D("522.5")) * FEE
    assert t.worst_case_pct == (275 + t.worst_case_fees) / 1000
    assert t.per_position_worst == D("27.5") + (D(550) + D("522.5")) * FEE
    assert t.margin_in_use_full == D("0.55")
    assert t.max_account_loss == D("0.3")
    assert (t.ok, t.problems, t.margin_mode, t.leverage, t.max_positions) == (True, (), "cross", 10, 10)
    assert all(r.liquidation_pct is None and r.stop_above_liquidation is None for r in t.rows)


def test_row_fees_and_loss_percent() -> None:
    t = risk_table(StrategyConfig(), D(1000))
    first = t.rows[1]
    assert first.fees == (D(350) + D(350) * D("0.93")) * FEE
    assert first.loss_pct_of_balance == (D("24.5") + first.fees) / 1000


def test_risk_in_percent_does_not_depend_on_the_balance_within_a_tier() -> None:
    a, b = risk_table(StrategyConfig(), D(1000)), risk_table(StrategyConfig(), D(7000))
    assert a.worst_case_pct == b.worst_case_pct
    assert [r.loss_pct_of_balance for r in a.rows] == [r.loss_pct_of_balance for r in b.rows]


def test_isolated_at_10x_with_a_10_percent_stop_is_refused() -> None:
    cfg = StrategyConfig(margin_mode="isolated")
    t = risk_table(cfg, D(1000))
    assert not t.ok
    initial = t.rows[0]
    assert initial.stop_above_liquidation is False
    assert initial.liquidation_pct is not None and D("-0.10") < initial.liquidation_pct < D("-0.09")
    assert [r.stop_above_liquidation for r in t.rows[1:]] == [True, True]
    assert len(t.problems) == 1
    assert "isolated" in t.problems[0] and "stop_loss_by_stage.initial" in t.problems[0]
    assert "liquidat" in t.problems[0]
    assert validate_strategy(cfg) == list(t.problems)


def test_isolated_liquidation_matches_the_formula_at_the_trigger_averages() -> None:
    t = risk_table(StrategyConfig(margin_mode="isolated"), D(1000))
    # independent recomputation: initial price 1, DCAs at 0.97 and 0.94
    notional = qty = margin = fees = D(0)
    for row, (price, weight) in zip(
        t.rows, ((D(1), D("0.015")), (D("0.97"), D("0.02")), (D("0.94"), D("0.02"))), strict=True
    ):
        notional += 1000 * weight * 10
        margin += 1000 * weight
        qty += 1000 * weight * 10 / price
        fees += 1000 * weight * 10 * FEE
        avg = notional / qty
        lp = (margin - fees + 0 - qty * avg) / (qty * D("0.01") - qty)
        assert row.liquidation_pct is not None
        assert abs(row.liquidation_pct - (lp / avg - 1)) < D("1e-20")


def test_isolated_at_lower_leverage_is_accepted() -> None:
    t = risk_table(StrategyConfig(margin_mode="isolated", leverage=5), D(1000))
    assert t.ok, t.problems
    assert all(r.stop_above_liquidation for r in t.rows)
    assert all(r.liquidation_pct is not None and r.liquidation_pct < D("-0.18") for r in t.rows)


def test_exchange_brackets_replace_the_default_table() -> None:
    strict = (Bracket(D(0), D(10**9), D("0.05"), D(0), 10),)
    cfg = StrategyConfig(
        margin_mode="isolated",
        leverage=10,
        stop_loss_by_stage={"initial": -0.04, "first_dca": -0.04, "second_dca": -0.04},
        first_dca_trigger=-0.03,
        second_dca_trigger=-0.035,
    )
    assert risk_table(cfg, D(1000)).ok
    # MMR 5%: liquidation about -5.2% from the average, still below the -4% stops
    t = risk_table(cfg, D(1000), strict)
    assert t.ok, t.problems
    assert all(r.liquidation_pct is not None and D("-0.06") < r.liquidation_pct < D("-0.05") for r in t.rows)
    # MMR 8%: liquidation about -2.1%, above every stop: all three stages refused
    tighter = (Bracket(D(0), D(10**9), D("0.08"), D(0), 10),)
    t2 = risk_table(cfg, D(1000), tighter)
    assert not t2.ok and all(r.stop_above_liquidation is False for r in t2.rows)


def test_worst_case_above_max_account_loss_is_refused() -> None:
    cfg = StrategyConfig(max_account_loss=0.25)
    t = risk_table(cfg, D(1000))
    assert not t.ok
    assert len(t.problems) == 1 and "max_account_loss = 0.25" in t.problems[0]
    assert "28.04%" in t.problems[0]
    # 11 positions: 11 x 28.04 = 30.8% > 30%
    t11 = risk_table(StrategyConfig(max_positions=11), D(1000))
    assert not t11.ok and "max_account_loss" in t11.problems[0]
    assert validate_strategy(StrategyConfig()) == []


def test_worst_stage_need_not_be_the_last() -> None:
    # a wide second-DCA stop is not the worst when the first DCA's is wider still on more notional share
    cfg = StrategyConfig(
        stop_loss_by_stage={"initial": -0.10, "first_dca": -0.09, "second_dca": -0.01},
        second_dca_weight=0.005,
    )
    t = risk_table(cfg, D(1000))
    first, second = t.rows[1], t.rows[2]
    assert first.loss_at_stop == D("31.5") and second.loss_at_stop == D("4.0")
    assert t.per_position_worst == first.loss_at_stop + first.fees
    assert t.worst_case_loss == 10 * D("31.5")


def test_cross_account_liquidation_before_the_stops_is_refused() -> None:
    # 11 positions of 9% margin at 10x, stopped at -10%: 99% of the balance lost (99.9% with fees, within a
    # max_account_loss of 100%); the equity left is below the maintenance margin of 11 x 810 USDT at 1%.
    cfg = StrategyConfig(
        max_positions=11,
        max_account_loss=1.0,
        initial_weight=0.03,
        first_dca_weight=0.03,
        second_dca_weight=0.03,
        stop_loss_by_stage={"initial": -0.10, "first_dca": -0.10, "second_dca": -0.10},
        first_dca_trigger=-0.01,
        second_dca_trigger=-0.02,
    )
    t = risk_table(cfg, D(1000))
    assert not t.ok
    assert any("maintenance margin" in p and "cross" in p for p in t.problems), t.problems
    assert not any("max_account_loss" in p for p in t.problems)


def test_balance_must_be_positive() -> None:
    with pytest.raises(ValueError):
        risk_table(StrategyConfig(), D(0))
