"""The notes' verified scenarios, step by step, against ``trading.core.ladder``.

BTCUSDT-like rules (tick 0.1, step 0.001, min qty 0.001, min notional 100 USDT)
and a wallet balance of 10,000 USDT with the SPEC defaults: the initial entry
is 150 USDT margin = 1,500 USDT notional, each DCA 200 USDT margin = 2,000 USDT
notional. Fills happen at the decided price.

Quantities: 1,500 / 50,000 = 0.03; 2,000 / 48,500 = 0.041237... -> 0.041;
2,000 / 47,000 = 0.042553... -> 0.042 (rounded down to the step).
"""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from trading.core.config import StrategyConfig
from trading.core.ladder import (
    RunnerMA,
    apply_fill,
    backstop_price,
    decide,
    entry_action,
    new_position,
    stop_price,
    sync_backstop,
    with_peak,
)
from trading.core.models import (
    CloseAll,
    Dca,
    Enter,
    ExitReason,
    Fill,
    PositionState,
    ReplaceBackstop,
    Sell,
    SetPeak,
    Stage,
    SymbolRules,
)

CFG = StrategyConfig()
RULES = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"), min_notional=D("100"))
BALANCE = D("10000")
SYM = "BTCUSDT"

# Averages of the lots held, written out by hand.
AVG_AFTER_DCA1 = (D("50000") * D("0.030") + D("48500") * D("0.041")) / D("0.071")  # 49,133.80...
AVG_AFTER_DCA2 = (D("50000") * D("0.030") + D("48500") * D("0.041") + D("47000") * D("0.042")) / D("0.113")  # 48,340.7


def at(state: PositionState, price: str, runner: RunnerMA | None = None):
    return decide(state, D(price), cfg=CFG, rules=RULES, balance=BALANCE, runner=runner)


def buy_fill(action: Enter | Dca, stage: Stage) -> Fill:
    return Fill("BUY", action.ref_price, action.qty, stage=stage)


def sell_fill(action: Sell | CloseAll) -> Fill:
    return Fill("SELL", action.ref_price, action.qty, reason=action.reason)


def laddered() -> PositionState:
    """Entry at 50,000, DCA1 at 48,500, DCA2 at 47,000 (the common start of both scenarios)."""
    enter = entry_action(SYM, D("50000"), BALANCE, CFG, RULES)
    assert enter == Enter(SYM, D("150.000"), D("1500.000"), D("0.030"), D("50000"))
    state = new_position(SYM, buy_fill(enter, Stage.INITIAL))
    assert (state.stage, state.qty, state.avg_price, state.initial_price) == (
        Stage.INITIAL,
        D("0.030"),
        D("50000"),
        D("50000"),
    )
    assert not (state.dca1_done or state.dca2_done or state.half_taken)
    assert backstop_price(state, CFG, RULES) == D("45000.0")  # -10% from 50,000
    assert sync_backstop(state, None, CFG, RULES) == ReplaceBackstop(SYM, D("45000.0"))

    # 48,500.1 is above the first trigger (50,000 x 0.97 = 48,500): nothing to do
    assert at(state, "48500.1") is None
    dca1 = at(state, "48500")
    assert dca1 == Dca(SYM, Stage.FIRST_DCA, D("200.000"), D("2000.000"), D("0.041"), D("48500"))
    state = apply_fill(state, buy_fill(dca1, Stage.FIRST_DCA))
    assert (state.stage, state.qty, state.dca1_done, state.dca2_done) == (Stage.FIRST_DCA, D("0.071"), True, False)
    assert state.avg_price == AVG_AFTER_DCA1
    assert stop_price(state, CFG) == AVG_AFTER_DCA1 * D("0.93")  # 45,694.43...
    assert backstop_price(state, CFG, RULES) == D("45694.4")
    assert sync_backstop(state, D("45000.0"), CFG, RULES) == ReplaceBackstop(SYM, D("45694.4"))

    assert at(state, "47000.1") is None  # above the second trigger (50,000 x 0.94 = 47,000)
    dca2 = at(state, "47000")
    assert dca2 == Dca(SYM, Stage.SECOND_DCA, D("200.000"), D("2000.000"), D("0.042"), D("47000"))
    state = apply_fill(state, buy_fill(dca2, Stage.SECOND_DCA))
    assert (state.stage, state.qty, state.dca1_done, state.dca2_done) == (Stage.SECOND_DCA, D("0.113"), True, True)
    assert state.avg_price == AVG_AFTER_DCA2
    assert backstop_price(state, CFG, RULES) == D("45923.6")  # 48,340.70... x 0.95 = 45,923.67, down to the tick
    assert [(leg.stage, leg.price, leg.qty) for leg in state.legs] == [
        (Stage.INITIAL, D("50000"), D("0.030")),
        (Stage.FIRST_DCA, D("48500"), D("0.041")),
        (Stage.SECOND_DCA, D("47000"), D("0.042")),
    ]
    return state


def test_profit_scenario_recovery_take_half_and_trailing_runner() -> None:
    state = laddered()
    # no third DCA, no stop: 46,000 is above the second-DCA stop (45,923.67)
    assert at(state, "46000") is None

    # second lot sold when the first DCA's price (48,500) is regained
    assert at(state, "48499.9") is None
    sell2 = at(state, "48500")
    assert sell2 == Sell(SYM, D("0.042"), ExitReason.RECOVERY_SECOND_DCA, D("48500"))
    state = apply_fill(state, sell_fill(sell2))
    assert (state.stage, state.qty, state.dca1_done, state.dca2_done) == (Stage.FIRST_DCA, D("0.071"), True, True)
    assert not state.half_taken and state.peak_price is None
    assert state.avg_price == AVG_AFTER_DCA1
    assert backstop_price(state, CFG, RULES) == D("45694.4")
    # the second DCA never fires again, even at its trigger
    assert at(state, "47000") is None

    # first lot sold when the initial price (50,000) is regained
    assert at(state, "49999.9") is None
    sell1 = at(state, "50000")
    assert sell1 == Sell(SYM, D("0.041"), ExitReason.RECOVERY_FIRST_DCA, D("50000"))
    state = apply_fill(state, sell_fill(sell1))
    assert (state.stage, state.qty, state.avg_price) == (Stage.INITIAL, D("0.030"), D("50000"))
    assert (state.dca1_done, state.dca2_done, state.half_taken) == (True, True, False)
    assert [(leg.stage, leg.qty) for leg in state.legs] == [(Stage.INITIAL, D("0.030"))]
    assert backstop_price(state, CFG, RULES) == D("45000.0")
    assert at(state, "48500") is None  # the first DCA fired once already

    # take half at +10% from the average (55,000)
    assert at(state, "54999.9") is None
    half = at(state, "55000")
    assert half == Sell(SYM, D("0.015"), ExitReason.TAKE_HALF, D("55000"))
    state = apply_fill(state, sell_fill(half))
    assert (state.stage, state.qty, state.half_taken, state.peak_price) == (
        Stage.INITIAL,
        D("0.015"),
        True,
        D("55000"),
    )
    assert state.avg_price == D("50000")
    assert backstop_price(state, CFG, RULES) == D("45000.0")

    # the runner: a new high only moves the peak; no second take-half
    assert at(state, "60000") == SetPeak(SYM, D("60000"))
    state = with_peak(state, D("60000"))
    assert at(state, "58200.1") is None  # trailing stop at 60,000 x 0.97 = 58,200
    out = at(state, "58200")
    assert out == CloseAll(SYM, D("0.015"), ExitReason.TRAILING_STOP, D("58200"))
    state = apply_fill(state, sell_fill(out))
    assert (state.qty, state.legs) == (D("0"), ())
    assert sync_backstop(state, D("45000.0"), CFG, RULES) is None  # nothing to protect any more
    assert at(state, "40000") is None


def test_profit_scenario_runner_exits_on_3m_dead_cross() -> None:
    state = laddered()
    for price, reason in (("48500", ExitReason.RECOVERY_SECOND_DCA), ("50000", ExitReason.RECOVERY_FIRST_DCA)):
        action = at(state, price)
        assert isinstance(action, Sell) and action.reason is reason
        state = apply_fill(state, sell_fill(action))
    half = at(state, "55000")
    assert isinstance(half, Sell)
    state = apply_fill(state, sell_fill(half))

    no_cross = RunnerMA(fast_prev=56000.0, slow_prev=55500.0, fast_now=56100.0, slow_now=55600.0)
    assert at(state, "56000", runner=no_cross) == SetPeak(SYM, D("56000"))
    dead = RunnerMA(fast_prev=56000.0, slow_prev=55900.0, fast_now=55800.0, slow_now=55850.0)
    assert dead.dead_cross
    # 54,500 is above the trailing stop (55,000 x 0.97 = 53,350): only the dead cross closes
    out = at(state, "54500", runner=dead)
    assert out == CloseAll(SYM, D("0.015"), ExitReason.DEAD_CROSS, D("54500"))
    state = apply_fill(state, sell_fill(out))
    assert state.qty == 0 and state.legs == ()


def test_loss_scenario_stop_at_the_second_dca_stop_closes_everything() -> None:
    state = laddered()
    stop = stop_price(state, CFG)
    assert stop == AVG_AFTER_DCA2 * D("0.95")
    assert D("45923.6") < stop < D("45923.7")
    # the notes' "-10% at 45,000" never comes: the second-DCA stop (-5% from the average) fires first
    assert at(state, "45923.7") is None
    out = at(state, "45923.6")
    assert out == CloseAll(SYM, D("0.113"), ExitReason.STOP_LOSS, D("45923.6"))
    state = apply_fill(state, sell_fill(out))
    assert (state.qty, state.legs) == (D("0"), ())
    assert at(state, "30000") is None


def test_stop_wins_over_a_dca_on_a_gap() -> None:
    state = laddered()
    # back to the first-DCA stage, then a gap straight through the second-DCA trigger and the stop
    sell2 = at(state, "48500")
    assert isinstance(sell2, Sell)
    state = apply_fill(state, sell_fill(sell2))
    assert at(state, "45000") == CloseAll(SYM, D("0.071"), ExitReason.STOP_LOSS, D("45000"))


def test_initial_stop_and_backstop_without_any_dca() -> None:
    enter = entry_action(SYM, D("50000"), BALANCE, CFG, RULES)
    assert isinstance(enter, Enter)
    state = new_position(SYM, buy_fill(enter, Stage.INITIAL))
    # a gap below both DCA triggers: the stop (45,000) comes first
    assert at(state, "45000") == CloseAll(SYM, D("0.030"), ExitReason.STOP_LOSS, D("45000"))
    # just above the stop but below both triggers: the first DCA only (one level per update)
    dca = at(state, "45000.1")
    assert isinstance(dca, Dca) and dca.level is Stage.FIRST_DCA and dca.qty == D("0.044")


def test_fill_prices_not_intended_prices_drive_the_average() -> None:
    enter = entry_action(SYM, D("50000"), BALANCE, CFG, RULES)
    assert isinstance(enter, Enter)
    state = new_position(SYM, Fill("BUY", D("50010.5"), D("0.030"), stage=Stage.INITIAL))
    assert state.initial_price == D("50010.5")
    dca = at(state, "48510")  # the trigger is measured from the filled price: 50,010.5 x 0.97 = 48,510.185
    assert isinstance(dca, Dca)
    state = apply_fill(state, Fill("BUY", D("48490"), D("0.041"), stage=Stage.FIRST_DCA))
    assert state.avg_price == (D("50010.5") * D("0.030") + D("48490") * D("0.041")) / D("0.071")
    # recovery of the first lot is at the initial *fill* price
    assert at(state, "50010.4") is None
    sell = at(state, "50010.5")
    assert sell == Sell(SYM, D("0.041"), ExitReason.RECOVERY_FIRST_DCA, D("50010.5"))


@pytest.mark.parametrize("price", ["44000", "45000"])
def test_stop_closes_whatever_the_runner_says(price: str) -> None:
    enter = entry_action(SYM, D("50000"), BALANCE, CFG, RULES)
    assert isinstance(enter, Enter)
    state = new_position(SYM, buy_fill(enter, Stage.INITIAL))
    dead = RunnerMA(1.0, 0.5, 0.4, 0.6)
    assert at(state, price, runner=dead) == CloseAll(SYM, D("0.030"), ExitReason.STOP_LOSS, D(price))


def test_a_runner_is_neither_recovered_nor_averaged_down() -> None:
    # A first DCA filled deep (a gap to 46,000) pulls the average down far enough that take-half
    # (+2% here) comes before the initial price is regained, in the first-DCA stage.
    cfg = StrategyConfig(take_half_at=0.02, runner_trailing_stop=0.15)

    def act(state: PositionState, price: str) -> object:
        return decide(state, D(price), cfg=cfg, rules=RULES, balance=BALANCE)

    state = new_position(SYM, Fill("BUY", D("50000"), D("0.030"), stage=Stage.INITIAL))
    dca = act(state, "46000")
    assert dca == Dca(SYM, Stage.FIRST_DCA, D("200.000"), D("2000.000"), D("0.043"), D("46000"))
    state = apply_fill(state, buy_fill(dca, Stage.FIRST_DCA))
    avg = (D("1500") + D("0.043") * D("46000")) / D("0.073")  # 47,643.8
    assert state.avg_price == avg
    assert act(state, "48596.6") is None  # below avg x 1.02 = 48,596.7
    half = act(state, "48600")
    assert half == Sell(SYM, D("0.036"), ExitReason.TAKE_HALF, D("48600"))
    state = apply_fill(state, sell_fill(half))
    assert state.half_taken and state.stage is Stage.FIRST_DCA and state.qty == D("0.037")
    # the initial price is regained: a runner is not reduced by a recovery sell, its peak moves
    assert act(state, "50000") == SetPeak(SYM, D("50000"))
    state = with_peak(state, D("50000"))
    # below the second DCA trigger (47,000), above the stop (47,643.8 x 0.93 = 44,308.7) and the
    # trailing stop (50,000 x 0.85 = 42,500): a runner is not averaged down
    assert act(state, "45000") is None
    assert act(state, "44308") == CloseAll(SYM, D("0.037"), ExitReason.STOP_LOSS, D("44308"))


def test_an_entry_in_partial_fills_measures_the_triggers_from_their_average() -> None:
    state = new_position(SYM, Fill("BUY", D("50000"), D("0.010"), stage=Stage.INITIAL))
    state = apply_fill(state, Fill("BUY", D("50300"), D("0.020"), stage=Stage.INITIAL))
    assert state.qty == D("0.030") and state.initial_price == D("50200") == state.avg_price
    assert [leg.stage for leg in state.legs] == [Stage.INITIAL]
    assert at(state, "48694.1") is None
    assert isinstance(at(state, "48694"), Dca)  # 50,200 x 0.97
