"""Property tests of the ladder: random price paths through ``decide`` / ``apply_fill``.

Every decided order fills at the decided price. A path mixes random-walk moves
(basis points from the last price, with occasional gaps) and jumps to a level
relative to the entry price (so that prices come back to the ladder's levels and
recovery sells happen), with a 3m dead cross on about one update in ten.
"""

from __future__ import annotations

import copy
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal as D

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trading.core.config import StrategyConfig
from trading.core.ladder import (
    RunnerMA,
    apply_fill,
    decide,
    entry_action,
    new_position,
    stop_price,
    triggers,
    with_peak,
)
from trading.core.models import (
    Action,
    CloseAll,
    Dca,
    Enter,
    ExitReason,
    Fill,
    PositionState,
    Sell,
    SetPeak,
    Skip,
    Stage,
    SymbolRules,
)

RULES = SymbolRules("ALTUSDT", tick_size=D("0.001"), step_size=D("0.1"), min_qty=D("0.1"), min_notional=D("5"))
CONFIGS = (
    StrategyConfig(),
    StrategyConfig(leverage=5, take_half_fraction=0.3, runner_trailing_stop=0.05, take_half_at=0.06),
    StrategyConfig(
        first_dca_trigger=-0.02,
        second_dca_trigger=-0.04,
        stop_loss_by_stage={"initial": -0.08, "first_dca": -0.06, "second_dca": -0.03},
        take_half_fraction=0.7,
    ),
    # take-half can come before the recovery price, and a wide trailing stop leaves room below the entry
    StrategyConfig(take_half_at=0.02, runner_trailing_stop=0.15),
)
DEAD = RunnerMA(fast_prev=1.0, slow_prev=1.0, fast_now=0.9, slow_now=1.0)
CALM = RunnerMA(fast_prev=1.1, slow_prev=1.0, fast_now=1.2, slow_now=1.0)
# The defaults' levels in bps from the entry: DCA triggers, recovery, take-half, stops.
LEVELS_BPS = (-1000, -900, -700, -600, -500, -400, -300, -200, 0, 1, 600, 1000, 1100, 1500)
RUNNER_EXITS = {ExitReason.TRAILING_STOP, ExitReason.DEAD_CROSS, ExitReason.STOP_LOSS}


@dataclass(frozen=True)
class Step:
    bps: int  # basis points from the last price, or from the entry when ``from_entry``
    from_entry: bool
    dead_cross: bool


steps = st.lists(
    st.builds(
        Step,
        bps=st.one_of(st.integers(-150, 150), st.integers(-1200, 1200), st.sampled_from(LEVELS_BPS)),
        from_entry=st.booleans(),
        dead_cross=st.integers(0, 9).map(lambda n: n == 0),  # a dead cross on about one update in ten
    ),
    min_size=1,
    max_size=80,
)


def next_price(price: D, entry: D, step: Step) -> D:
    base = entry if step.from_entry else price
    moved = RULES.round_price_down(base * (1 + D(step.bps) / D(10000)))
    return max(moved, RULES.tick_size)


def run_path(cfg: StrategyConfig, entry: D, balance: D, path: list[Step]):
    """Yields (state before, price, runner, action, state after) for every update of the path."""
    enter = entry_action("ALTUSDT", entry, balance, cfg, RULES)
    if not isinstance(enter, Enter):
        return
    state = new_position("ALTUSDT", Fill("BUY", entry, enter.qty, stage=Stage.INITIAL))
    price = entry
    for step in path:
        price = next_price(price, entry, step)
        runner = DEAD if step.dead_cross else CALM
        action = decide(state, price, cfg=cfg, rules=RULES, balance=balance, runner=runner)
        after = execute(state, action)
        yield state, price, runner, action, after
        state = after
        if state.qty <= 0:
            return


def execute(state: PositionState, action: Action | None) -> PositionState:
    if isinstance(action, Dca):
        return apply_fill(state, Fill("BUY", action.ref_price, action.qty, stage=action.level))
    if isinstance(action, Sell | CloseAll):
        return apply_fill(state, Fill("SELL", action.ref_price, action.qty, reason=action.reason))
    if isinstance(action, SetPeak):
        return with_peak(state, action.peak)
    return state


common = settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
configs = st.sampled_from(CONFIGS)
entries = st.integers(50, 5_000_000).map(lambda n: D(n) * RULES.tick_size)  # 0.05 .. 5,000
balances = st.sampled_from([D(300), D(1000), D(10_000), D(250_000)])


@common
@given(cfg=configs, entry=entries, balance=balances, path=steps)
def test_sells_never_exceed_the_position_and_quantity_never_goes_negative(
    cfg: StrategyConfig, entry: D, balance: D, path: list[Step]
) -> None:
    for before, _price, _runner, action, after in run_path(cfg, entry, balance, path):
        if isinstance(action, Sell | CloseAll):
            assert D(0) < action.qty <= before.qty
            if isinstance(action, CloseAll):
                assert action.qty == before.qty
                assert after.qty == 0 and after.legs == ()
        assert after.qty >= 0
        assert all(leg.qty > 0 for leg in after.legs)
        if after.qty > 0:
            assert sum(leg.qty for leg in after.legs) == after.qty


@common
@given(cfg=configs, entry=entries, balance=balances, path=steps)
def test_each_dca_level_fires_at_most_once(cfg: StrategyConfig, entry: D, balance: D, path: list[Step]) -> None:
    fired: Counter[Stage] = Counter()
    for before, _price, _runner, action, after in run_path(cfg, entry, balance, path):
        if isinstance(action, Dca):
            fired[action.level] += 1
            assert action.level is (Stage.FIRST_DCA if before.stage is Stage.INITIAL else Stage.SECOND_DCA)
            assert after.stage is action.level
        assert after.dca1_done >= before.dca1_done and after.dca2_done >= before.dca2_done  # never reset
    assert all(n <= 1 for n in fired.values()), fired


@common
@given(cfg=configs, entry=entries, balance=balances, path=steps)
def test_the_stop_is_always_checked_first(cfg: StrategyConfig, entry: D, balance: D, path: list[Step]) -> None:
    for before, price, _runner, action, _after in run_path(cfg, entry, balance, path):
        stop = stop_price(before, cfg)
        if price <= stop:
            assert action == CloseAll("ALTUSDT", before.qty, ExitReason.STOP_LOSS, price)
        else:
            assert not (isinstance(action, CloseAll) and action.reason is ExitReason.STOP_LOSS)


@common
@given(cfg=configs, entry=entries, balance=balances, path=steps)
def test_after_take_half_the_runner_exits_only_by_trailing_dead_cross_or_stop(
    cfg: StrategyConfig, entry: D, balance: D, path: list[Step]
) -> None:
    for before, price, runner, action, _after in run_path(cfg, entry, balance, path):
        if not before.half_taken:
            continue
        assert action is None or isinstance(action, CloseAll | SetPeak), action
        if isinstance(action, CloseAll):
            assert action.reason in RUNNER_EXITS
            if action.reason is ExitReason.DEAD_CROSS:
                assert runner.dead_cross
            if action.reason is ExitReason.TRAILING_STOP:
                assert before.peak_price is not None
                assert price <= max(before.peak_price, price) * (1 - D(repr(cfg.runner_trailing_stop)))
        if isinstance(action, SetPeak):
            assert before.peak_price is not None and action.peak > before.peak_price


@common
@given(cfg=configs, entry=entries, balance=balances, path=steps)
def test_decide_never_mutates_its_input(cfg: StrategyConfig, entry: D, balance: D, path: list[Step]) -> None:
    cfg_before = copy.deepcopy(cfg)
    for before, price, runner, _action, _after in run_path(cfg, entry, balance, path):
        snapshot = copy.deepcopy(before)
        again = decide(before, price, cfg=cfg, rules=RULES, balance=balance, runner=runner)
        assert before == snapshot
        assert again == _action  # and is deterministic
    assert cfg == cfg_before


def _edges(state: PositionState, cfg: StrategyConfig, balance: D) -> None:
    """triggers() agrees with decide(): nothing strictly inside the band, something at and beyond its edges."""
    t = triggers(state, cfg)

    def act(p: D) -> Action | None:
        return decide(state, p, cfg=cfg, rules=RULES, balance=balance)

    assert t.stop == stop_price(state, cfg)
    assert t.low >= t.stop
    eps = D("1e-9")
    # at or below the low edge a rule applies (stop, a DCA or the trailing stop)
    assert act(t.low) is not None
    assert act(t.low - eps) is not None
    assert act(t.stop) == CloseAll(state.symbol, state.qty, ExitReason.STOP_LOSS, t.stop)
    if t.trailing is not None:
        assert t.low >= t.trailing
    if t.high is None:
        assert act(t.low + eps) is None
        assert act(t.low * 10) is None
        return
    if t.high > t.low:
        for inside in (t.low + eps, (t.low + t.high) / 2, t.high - eps):
            assert act(inside) is None, (inside, t)
    above = act(t.high + eps)
    assert above is not None
    at_high = act(t.high)
    peak_edge = state.half_taken and state.peak_price == t.high
    if peak_edge:
        assert at_high is None  # the peak moves only on a strictly higher price
        assert above == SetPeak(state.symbol, t.high + eps) or isinstance(above, CloseAll | Sell | Skip)
    else:
        assert at_high is not None


@common
@given(cfg=configs, entry=entries, balance=balances, path=steps)
def test_triggers_are_consistent_with_decide(cfg: StrategyConfig, entry: D, balance: D, path: list[Step]) -> None:
    for before, _price, _runner, _action, after in run_path(cfg, entry, balance, path):
        _edges(before, cfg, balance)
        if after.qty > 0:
            _edges(after, cfg, balance)
