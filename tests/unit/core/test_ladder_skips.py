"""SPEC 5 as amended: a rule that cannot send does not end the check, and no fee churn after a gap.

- A rule whose order cannot be sent (a lot below the symbol's minimum: ``Skip``) or may not be sent yet
  (``blocked``) lets the later rules act on the same price: a position is never frozen by one small lot.
- After a gap through both DCA levels the second lot is sold back only when the price returns to where the
  first DCA was meant to fire, and a DCA fill and a recovery sell never happen on the same price update.
"""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.core.test_ladder_properties import CONFIGS, DEAD, Step, execute, next_price, steps
from trading.core.config import StrategyConfig
from trading.core.ladder import decide, entry_action, new_position, rule_of
from trading.core.models import (
    CloseAll,
    Dca,
    Enter,
    ExitReason,
    Fill,
    Leg,
    PositionState,
    Sell,
    SetPeak,
    Skip,
    Stage,
    SymbolRules,
)

# A coarse step: the first and second DCA lots are often smaller than the minimum quantity.
COARSE = SymbolRules("ALTUSDT", tick_size=D("0.001"), step_size=D("1"), min_qty=D("3"), min_notional=D("5"))
PARTIAL_RULES = (
    ExitReason.RECOVERY_SECOND_DCA.value,
    ExitReason.RECOVERY_FIRST_DCA.value,
    ExitReason.TAKE_HALF.value,
    Stage.FIRST_DCA.value,
    Stage.SECOND_DCA.value,
)
common = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)


def _walk(cfg: StrategyConfig, entry: D, balance: D, path: list[Step], rules: SymbolRules):
    enter = entry_action("ALTUSDT", entry, balance, cfg, rules)
    if not isinstance(enter, Enter):
        return
    state = new_position("ALTUSDT", Fill("BUY", entry, enter.qty, stage=Stage.INITIAL))
    price = entry
    for step in path:
        price = next_price(price, entry, step)
        runner = DEAD if step.dead_cross else None
        action = decide(state, price, cfg=cfg, rules=rules, balance=balance, runner=runner)
        yield state, price, runner, action
        state = execute(state, action)
        if state.qty <= 0:
            return


def _real(action: object) -> bool:
    return isinstance(action, Dca | Sell | CloseAll | SetPeak)


@common
@given(
    cfg=st.sampled_from(CONFIGS),
    entry=st.integers(500, 500_000).map(lambda n: D(n) / 1000),
    balance=st.sampled_from([D(300), D(1000), D(5000)]),
    path=steps,
    blocked=st.sets(st.sampled_from(PARTIAL_RULES), max_size=2),
)
def test_a_skipped_or_blocked_rule_never_hides_a_later_one(
    cfg: StrategyConfig, entry: D, balance: D, path: list[Step], blocked: set[str]
) -> None:
    """If a later rule would fire with the skipped (or blocked) one removed, ``decide`` returns it."""
    for state, price, runner, plain in _walk(cfg, entry, balance, path, COARSE):
        action = decide(state, price, cfg=cfg, rules=COARSE, balance=balance, runner=runner, blocked=frozenset(blocked))
        if _real(action):
            assert rule_of(action) not in blocked if not isinstance(action, SetPeak) else True
        # Whatever the ladder skipped or was told to hold back, removing it changes nothing for later rules.
        skipped = {action.what} if isinstance(action, Skip) else set()
        if isinstance(plain, Skip):
            skipped.add(plain.what)
        for rule in skipped | blocked:
            without = decide(
                state,
                price,
                cfg=cfg,
                rules=COARSE,
                balance=balance,
                runner=runner,
                blocked=frozenset(blocked | {rule}),
            )
            if _real(without):
                assert action == without, (state, price, rule, action, without)
        # and a skipped rule is only reported when nothing else fires
        if isinstance(action, Skip):
            assert not _real(
                decide(
                    state,
                    price,
                    cfg=cfg,
                    rules=COARSE,
                    balance=balance,
                    runner=runner,
                    blocked=frozenset(blocked | {action.what}),
                )
            )


@common
@given(
    cfg=st.sampled_from(CONFIGS),
    entry=st.integers(500, 500_000).map(lambda n: D(n) / 1000),
    balance=st.sampled_from([D(300), D(1000), D(5000)]),
    path=steps,
)
def test_a_dca_fill_and_a_recovery_sell_never_happen_on_the_same_price(
    cfg: StrategyConfig, entry: D, balance: D, path: list[Step]
) -> None:
    rules = SymbolRules("ALTUSDT", tick_size=D("0.001"), step_size=D("0.1"), min_qty=D("0.1"), min_notional=D("5"))
    for state, price, runner, action in _walk(cfg, entry, balance, path, rules):
        if not isinstance(action, Dca):
            continue
        after = execute(state, action)
        again = decide(after, price, cfg=cfg, rules=rules, balance=balance, runner=runner)
        assert not (
            isinstance(again, Sell | CloseAll)
            and again.reason in (ExitReason.RECOVERY_FIRST_DCA, ExitReason.RECOVERY_SECOND_DCA)
        ), (state, price, again)


@common
@given(
    cfg=st.sampled_from(CONFIGS),
    entry=st.integers(500, 500_000).map(lambda n: D(n) / 1000),
    gap_bps=st.integers(0, 300),
    back_bps=st.integers(0, 10_000),
)
def test_after_a_gap_through_both_levels_the_second_lot_waits_for_the_first_level(
    cfg: StrategyConfig, entry: D, gap_bps: int, back_bps: int
) -> None:
    rules = SymbolRules("ALTUSDT", tick_size=D("0.001"), step_size=D("0.1"), min_qty=D("0.1"), min_notional=D("5"))
    balance = D(10_000)
    state = new_position("ALTUSDT", Fill("BUY", entry, D(100), stage=Stage.INITIAL))
    level1 = entry * (1 + cfg.trigger_for(Stage.FIRST_DCA))
    level2 = entry * (1 + cfg.trigger_for(Stage.SECOND_DCA))
    gap = rules.round_price_down(level2 * (1 - D(gap_bps) / 10_000))
    stop_floor = level2 * (1 + cfg.stop_for(Stage.SECOND_DCA))  # below this the stop fires, not the ladder
    if gap <= stop_floor:
        return
    first = decide(state, gap, cfg=cfg, rules=rules, balance=balance)
    assert isinstance(first, Dca) and first.level is Stage.FIRST_DCA
    state = execute(state, first)
    second = decide(state, gap, cfg=cfg, rules=rules, balance=balance)  # the next update, same gapped price
    if isinstance(second, CloseAll) and second.reason is ExitReason.STOP_LOSS:
        return  # the gap went through the first DCA stage's stop as well: not the churn case
    assert isinstance(second, Dca) and second.level is Stage.SECOND_DCA
    state = execute(state, second)
    # any price back up to (but below) the first level: the second lot is not sold back
    price = rules.round_price_down(gap + (level1 - gap) * D(back_bps) / 10_000)
    if price >= level1:
        price = rules.round_price_down(level1) - rules.tick_size
    act = decide(state, price, cfg=cfg, rules=rules, balance=balance)
    assert not (isinstance(act, Sell | CloseAll) and act.reason is ExitReason.RECOVERY_SECOND_DCA), (price, act)
    # at the first level it is
    at = decide(state, rules.round_price_down(level1) + rules.tick_size, cfg=cfg, rules=rules, balance=balance)
    assert isinstance(at, Sell | CloseAll) and at.reason in (ExitReason.RECOVERY_SECOND_DCA, ExitReason.TAKE_HALF)


def test_a_position_whose_recovery_lot_is_too_small_still_takes_half_and_is_not_frozen() -> None:
    """The defect: a lot below the minimum made decide() return Skip on every price; +50% left only by the stop."""
    cfg = StrategyConfig()
    rules = SymbolRules("ALTUSDT", tick_size=D("0.01"), step_size=D("1"), min_qty=D("5"), min_notional=D("5"))
    state = PositionState(
        "ALTUSDT",
        Stage.FIRST_DCA,
        (Leg(Stage.INITIAL, D(100), D(40)), Leg(Stage.FIRST_DCA, D(97), D(3))),
        D(43),
        D(100),
        dca1_done=True,
    )
    at_plus_50 = decide(state, D(150), cfg=cfg, rules=rules, balance=D(10_000))
    assert isinstance(at_plus_50, Sell) and at_plus_50.reason is ExitReason.TAKE_HALF and at_plus_50.qty == D(21)
    # Between the recovery price and take-half only the skip is left to report (once, for the alert).
    between = decide(state, D(101), cfg=cfg, rules=rules, balance=D(10_000))
    assert isinstance(between, Skip) and between.what == ExitReason.RECOVERY_FIRST_DCA.value
    # Below the initial price, the second DCA still fires.
    second = decide(state, D(94), cfg=cfg, rules=rules, balance=D(10_000))
    assert isinstance(second, Dca) and second.level is Stage.SECOND_DCA


def test_a_blocked_close_ends_the_check_nothing_else_happens_meanwhile() -> None:
    cfg = StrategyConfig()
    rules = SymbolRules("ALTUSDT", tick_size=D("0.01"), step_size=D("0.01"), min_qty=D("0.01"), min_notional=D("5"))
    state = new_position("ALTUSDT", Fill("BUY", D(100), D(1), stage=Stage.INITIAL))
    # The stop is waiting to be sent again (refused): no DCA slips in at a stop-loss price.
    assert decide(state, D(89), cfg=cfg, rules=rules, balance=D(10_000), blocked=frozenset({"stop_loss"})) is None
    assert isinstance(decide(state, D(89), cfg=cfg, rules=rules, balance=D(10_000)), CloseAll)
