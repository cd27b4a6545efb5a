"""Delistings: which contracts leave the universe, and when a held one must be closed (pure policy)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from trading.core.config import ConfigError, StrategyConfig, parse_config
from trading.core.delisting import DAY_MS, HOUR_MS, delisting_due, universe_exclusion

NOW = 1_767_225_600_000  # 2026-01-01 00:00 UTC
PERPETUAL = 4_133_404_800_000  # the deliveryDate exchangeInfo gives a perpetual that is not being delisted
CFG = StrategyConfig()


@dataclass(frozen=True)
class Contract:
    status: str = "TRADING"
    delivery_ms: int | None = PERPETUAL


def test_a_normal_perpetual_stays_and_needs_nothing() -> None:
    assert universe_exclusion(Contract(), NOW, CFG) is None
    assert delisting_due(Contract(), NOW, CFG) is None
    assert delisting_due(Contract(delivery_ms=None), NOW, CFG) is None  # the exchange said nothing


def test_delivery_within_the_guard_leaves_the_universe_and_outside_it_does_not() -> None:
    inside = Contract(delivery_ms=NOW + 14 * DAY_MS)  # exactly the guard: already in
    outside = Contract(delivery_ms=NOW + 14 * DAY_MS + 1)
    assert universe_exclusion(inside, NOW, CFG) == "delisting announced"
    assert universe_exclusion(outside, NOW, CFG) is None
    assert universe_exclusion(outside, NOW, StrategyConfig(delist_guard_days=15)) == "delisting announced"


def test_a_contract_that_no_longer_trades_leaves_the_universe() -> None:
    for status in ("SETTLING", "CLOSE", "PENDING_TRADING", "PRE_SETTLE", ""):
        why = universe_exclusion(Contract(status=status), NOW, CFG)
        assert why is not None and why.startswith("status ")


def test_a_held_contract_is_closed_exit_before_delist_h_before_its_delivery() -> None:
    delivery = NOW + 3 * DAY_MS
    plan = delisting_due(Contract(delivery_ms=delivery), NOW, CFG)
    assert plan is not None and not plan.due  # announced: alert now, close later
    assert plan.delivery_ms == delivery and plan.close_at_ms == delivery - 24 * HOUR_MS
    assert plan.cause == "delisting announced"
    just_before = delisting_due(Contract(delivery_ms=delivery), plan.close_at_ms - 1, CFG)
    at = delisting_due(Contract(delivery_ms=delivery), plan.close_at_ms, CFG)
    assert just_before is not None and not just_before.due
    assert at is not None and at.due
    six = delisting_due(Contract(delivery_ms=delivery), NOW, StrategyConfig(exit_before_delist_h=6.5))
    assert six is not None and six.close_at_ms == delivery - 6 * HOUR_MS - 30 * 60_000


def test_announced_late_or_already_past_is_due_at_once() -> None:
    plan = delisting_due(Contract(delivery_ms=NOW + 2 * HOUR_MS), NOW, CFG)  # less than 24 h left
    assert plan is not None and plan.due
    passed = delisting_due(Contract(delivery_ms=NOW - 1), NOW, CFG)
    assert passed is not None and passed.due


def test_a_held_contract_that_stopped_trading_is_closed_now() -> None:
    plan = delisting_due(Contract(status="SETTLING", delivery_ms=NOW + 5 * DAY_MS), NOW, CFG)
    assert plan is not None and plan.due and plan.close_at_ms == NOW and plan.cause == "status SETTLING"
    unknown = delisting_due(Contract(status="CLOSE", delivery_ms=None), NOW, CFG)
    assert unknown is not None and unknown.due and unknown.delivery_ms is None


def test_the_config_keys_have_their_defaults_and_ranges() -> None:
    assert (CFG.delist_guard_days, CFG.exit_before_delist_h) == (14, 24.0)
    ok = parse_config({"delist_guard_days": 30, "exit_before_delist_h": 48})
    assert (ok.delist_guard_days, ok.exit_before_delist_h) == (30, 48.0)
    bad = {
        "delist_guard_days": [0, 366, 1.5, True, "14"],
        "exit_before_delist_h": [0, 0.5, -1, float("nan"), 24 * 365 + 1, "24"],
    }
    for key, values in bad.items():
        for value in values:
            with pytest.raises(ConfigError) as exc:
                parse_config({key: value})
            assert any(p.startswith(f"{key} = ") for p in exc.value.problems), (key, value, exc.value.problems)


def test_the_close_must_fall_inside_the_watched_window() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"delist_guard_days": 1, "exit_before_delist_h": 24})
    assert "exit_before_delist_h = 24 must be below delist_guard_days = 1 x 24 h" in str(exc.value)
    assert parse_config({"delist_guard_days": 2, "exit_before_delist_h": 24}).delist_guard_days == 2
    with pytest.raises(ConfigError):
        CFG.with_value("exit_before_delist_h", 14 * 24)  # /config set goes through the same check
