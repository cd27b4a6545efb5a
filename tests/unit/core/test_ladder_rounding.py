"""Quantities rounded down to the step, prices to the tick, and orders below the minimums."""

from __future__ import annotations

from decimal import Decimal as D

from trading.core.config import StrategyConfig
from trading.core.ladder import (
    adopted_position,
    apply_fill,
    backstop_price,
    decide,
    entry_action,
    new_position,
    size_order,
    with_exchange_qty,
)
from trading.core.models import (
    CloseAll,
    Dca,
    Enter,
    ExitReason,
    Fill,
    Leg,
    PositionState,
    Sell,
    Skip,
    Stage,
    SymbolRules,
)

CFG = StrategyConfig()
BTC = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"), min_notional=D("100"))
ALT = SymbolRules("ALTUSDT", tick_size=D("0.0001"), step_size=D("1"), min_qty=D("1"), min_notional=D("5"))


def test_size_order_rounds_the_quantity_down_to_the_step() -> None:
    # 1,000 x 1.5% = 15 margin, 150 notional; 150 / 3.3333 = 45.0004... -> 45 (step 1)
    assert size_order(D(1000), D("0.015"), 10, D("3.3333"), ALT) == (D("15.000"), D("150.000"), D("45"))
    # 150 / 3.3334 = 44.9991... -> 44, never 45 (that would be more than asked)
    assert size_order(D(1000), D("0.015"), 10, D("3.3334"), ALT)[2] == D("44")
    # BTC step 0.001: 1,500 / 61,234.5 = 0.024495... -> 0.024
    assert size_order(D(10_000), D("0.015"), 10, D("61234.5"), BTC)[2] == D("0.024")


def test_round_qty_respects_max_qty_and_prices_round_to_the_tick() -> None:
    capped = SymbolRules("X", D("0.01"), D("0.5"), D("0.5"), D("5"), max_qty=D("10.7"))
    assert capped.round_qty(D("12.3")) == D("10.5")
    assert capped.round_qty(D("7.9")) == D("7.5")
    assert BTC.round_price_down(D("45923.67")) == D("45923.6")
    assert BTC.round_price_up(D("45923.61")) == D("45923.7")


def test_entry_below_min_notional_is_skipped_not_sent() -> None:
    # 500 x 1.5% x 10 = 75 USDT notional: below BTCUSDT's 100
    action = entry_action("BTCUSDT", D("50000"), D(500), CFG, BTC)
    assert isinstance(action, Skip)
    assert action.what == "enter"
    assert "min notional 100" in action.why
    # the same balance is fine on a symbol with a 5 USDT minimum
    assert isinstance(entry_action("ALTUSDT", D("2"), D(500), CFG, ALT), Enter)


def test_entry_whose_quantity_rounds_to_zero_is_skipped() -> None:
    # 150 notional at 200 a unit with a step of 1: 0.75 -> 0
    action = entry_action("ALTUSDT", D("200"), D(1000), CFG, ALT)
    assert isinstance(action, Skip) and "order of 0" in action.why


def test_dca_below_min_notional_is_skipped_with_the_level_named() -> None:
    state = adopted_position("BTCUSDT", D("0.002"), D("50000"))  # a small position found on the exchange
    # balance 600: the DCA is 120 USDT notional at 48,500 -> 0.00247 -> 0.002 = 97 USDT < 100
    action = decide(state, D("48500"), cfg=CFG, rules=BTC, balance=D(600))
    assert isinstance(action, Skip)
    assert action.what == "first_dca"
    assert "0.002" in action.why
    # with a larger balance the same DCA is sent
    action = decide(state, D("48500"), cfg=CFG, rules=BTC, balance=D(1000))
    assert action == Dca("BTCUSDT", Stage.FIRST_DCA, D("20.000"), D("200.000"), D("0.004"), D("48500"))


def test_take_half_rounds_down_and_closes_all_when_too_small_to_split() -> None:
    state = new_position("BTCUSDT", Fill("BUY", D("50000"), D("0.031"), stage=Stage.INITIAL))
    action = decide(state, D("55000"), cfg=CFG, rules=BTC, balance=D(10_000))
    assert action == Sell("BTCUSDT", D("0.015"), ExitReason.TAKE_HALF, D("55000"))  # 0.0155 -> 0.015
    after = apply_fill(state, Fill("SELL", D("55000"), D("0.015"), reason=ExitReason.TAKE_HALF))
    assert after.qty == D("0.016") and after.avg_price == D("50000") and after.half_taken

    tiny = new_position("BTCUSDT", Fill("BUY", D("50000"), D("0.001"), stage=Stage.INITIAL))
    action = decide(tiny, D("55000"), cfg=CFG, rules=BTC, balance=D(10_000))
    assert action == CloseAll("BTCUSDT", D("0.001"), ExitReason.TAKE_HALF, D("55000"))


def test_recovery_sell_of_a_lot_below_min_qty_is_skipped() -> None:
    state = PositionState(
        symbol="BTCUSDT",
        stage=Stage.FIRST_DCA,
        legs=(Leg(Stage.INITIAL, D("50000"), D("0.010")), Leg(Stage.FIRST_DCA, D("48500"), D("0.0005"))),
        qty=D("0.0105"),
        initial_price=D("50000"),
        dca1_done=True,
    )
    action = decide(state, D("50000"), cfg=CFG, rules=BTC, balance=D(10_000))
    assert isinstance(action, Skip) and action.what == ExitReason.RECOVERY_FIRST_DCA.value


def test_recovery_leaving_dust_closes_everything() -> None:
    state = PositionState(
        symbol="BTCUSDT",
        stage=Stage.FIRST_DCA,
        legs=(Leg(Stage.INITIAL, D("50000"), D("0.0005")), Leg(Stage.FIRST_DCA, D("48500"), D("0.004"))),
        qty=D("0.0045"),
        initial_price=D("50000"),
        dca1_done=True,
    )
    action = decide(state, D("50000"), cfg=CFG, rules=BTC, balance=D(10_000))
    assert action == CloseAll("BTCUSDT", D("0.0045"), ExitReason.RECOVERY_FIRST_DCA, D("50000"))


def test_backstop_never_sits_above_the_service_stop() -> None:
    state = new_position("ALTUSDT", Fill("BUY", D("1.23456"), D("100"), stage=Stage.INITIAL))
    stop = state.avg_price * D("0.9")  # 1.111104
    assert backstop_price(state, CFG, ALT) == D("1.1111") <= stop


def test_exchange_quantity_fix_keeps_the_average() -> None:
    state = new_position("BTCUSDT", Fill("BUY", D("50000"), D("0.030"), stage=Stage.INITIAL))
    state = apply_fill(state, Fill("BUY", D("48500"), D("0.041"), stage=Stage.FIRST_DCA))
    fixed = with_exchange_qty(state, D("0.070"))
    assert fixed.qty == D("0.070")
    assert abs(fixed.avg_price - state.avg_price) < D("1e-20")
