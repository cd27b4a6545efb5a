"""The position ladder: SPEC sections 4 (DCA) and 5 (exits), as pure functions.

``decide`` looks at one price update and returns at most one action, checked
in SPEC order (stop, staged recovery, take-half, runner), then the DCA levels
and the runner's peak. It never mutates its input; ``apply_fill`` turns a
reported fill into the next state. ``triggers`` precomputes the price band in
which nothing can happen so the monitor needs one comparison per tick.

Interpretation (README "Trading rules as implemented"): the ladder's average
is the average of the lots still held. A staged-recovery sell removes the
newest lot (LIFO), so the position returns to exactly what it was before that
DCA; the exchange keeps its blended entry price, which only matters for PnL
attribution, not for the trade's total result.

Once half is taken the position is a runner: it is neither averaged down nor
reduced by staged-recovery sells; it leaves by the trailing stop, the 3m dead
cross or the stage's stop loss (SPEC 5.4).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from trading.core.config import StrategyConfig
from trading.core.indicators import ge, lt
from trading.core.models import (
    ZERO,
    Action,
    CloseAll,
    Dca,
    Enter,
    ExitReason,
    Fill,
    Leg,
    PositionState,
    ReplaceBackstop,
    Sell,
    SetPeak,
    Skip,
    Stage,
    SymbolRules,
    Triggers,
)

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class RunnerMA:
    """3m MA(fast)/MA(slow) at the previous and the newest bar (for the runner's dead cross)."""

    fast_prev: float
    slow_prev: float
    fast_now: float
    slow_now: float

    @property
    def dead_cross(self) -> bool:
        # Same tie tolerance as the signals: rounding noise of two equal averages is not a cross.
        return ge(self.fast_prev, self.slow_prev) and lt(self.fast_now, self.slow_now)


# ------------------------------------------------------------------ sizing
def size_order(
    balance: Decimal, weight: Decimal, leverage: int, price: Decimal, rules: SymbolRules
) -> tuple[Decimal, Decimal, Decimal]:
    """(margin, notional, qty) for a buy of ``weight`` of the wallet balance at ``price``."""
    margin = balance * weight
    notional = margin * leverage
    qty = rules.round_qty(notional / price) if price > 0 else ZERO
    return margin, notional, qty


def entry_action(
    symbol: str, price: Decimal, balance: Decimal, cfg: StrategyConfig, rules: SymbolRules
) -> Enter | Skip:
    margin, notional, qty = size_order(balance, cfg.weight_for(Stage.INITIAL), cfg.leverage, price, rules)
    if not rules.tradable(qty, price):
        return Skip(symbol, "enter", _below_min(qty, price, rules))
    return Enter(symbol, margin, notional, qty, price)


def _below_min(qty: Decimal, price: Decimal, rules: SymbolRules) -> str:
    return (
        f"order of {qty} at {price} (notional {qty * price:.4f}) is below the symbol minimum "
        f"(min qty {rules.min_qty}, min notional {rules.min_notional})"
    )


# ------------------------------------------------------------------ prices
def stop_price(state: PositionState, cfg: StrategyConfig) -> Decimal:
    return state.avg_price * (ONE + cfg.stop_for(state.stage))


def backstop_price(state: PositionState, cfg: StrategyConfig, rules: SymbolRules) -> Decimal:
    """The exchange-side stop: the stage's stop, rounded down to the tick.

    Rounded down so that it never sits above the service's own stop: while the
    service runs, its (last-price) stop acts first; the backstop is the net.
    """
    return rules.round_price_down(stop_price(state, cfg))


def sync_backstop(
    state: PositionState, resting: Decimal | None, cfg: StrategyConfig, rules: SymbolRules
) -> ReplaceBackstop | None:
    """The backstop action needed, if the resting one is missing or at another price."""
    if not cfg.backstop_on_exchange or state.qty <= 0:
        return None
    want = backstop_price(state, cfg, rules)
    if resting is not None and resting == want:
        return None
    return ReplaceBackstop(state.symbol, want)


def _next_dca(state: PositionState) -> Stage | None:
    if state.half_taken:  # a runner is never averaged down
        return None
    if state.stage is Stage.INITIAL and not state.dca1_done:
        return Stage.FIRST_DCA
    if state.stage is Stage.FIRST_DCA and not state.dca2_done:
        return Stage.SECOND_DCA
    return None


def _recovery(state: PositionState, cfg: StrategyConfig) -> tuple[Decimal, ExitReason, Leg] | None:
    """(price to regain, reason, the lot to sell) for the current stage, if any.

    The newest lot is sold when the price it came from is regained. For the second-DCA lot that is the
    higher of the first DCA's fill and the level where the first DCA was meant to fire (SPEC 5, amended):
    after a gap through both levels both lots fill at one price, and "regained" must mean the price came
    back, not that it never left.
    """
    if state.half_taken:  # after take-half the runner leaves only by trailing stop, dead cross or stop loss
        return None
    if state.stage is Stage.SECOND_DCA:
        first, lot = state.leg(Stage.FIRST_DCA), state.leg(Stage.SECOND_DCA)
        if first is None or lot is None:
            return None
        meant = state.initial_price * (ONE + cfg.trigger_for(Stage.FIRST_DCA))
        return max(first.price, meant), ExitReason.RECOVERY_SECOND_DCA, lot
    if state.stage is Stage.FIRST_DCA:
        lot = state.leg(Stage.FIRST_DCA)
        if lot is None or state.leg(Stage.INITIAL) is None:
            return None
        return state.initial_price, ExitReason.RECOVERY_FIRST_DCA, lot
    return None


def triggers(state: PositionState, cfg: StrategyConfig) -> Triggers:
    stop = stop_price(state, cfg)
    low = stop
    extra: dict[str, Decimal] = {"stop": stop}
    nxt = _next_dca(state)
    if nxt is not None:
        dca_at = state.initial_price * (ONE + cfg.trigger_for(nxt))
        extra[nxt.value] = dca_at
        low = max(low, dca_at)
    trailing = None
    highs: list[Decimal] = []
    rec = _recovery(state, cfg)
    if rec is not None:
        highs.append(rec[0])
        extra["recovery"] = rec[0]
    if not state.half_taken:
        th = state.avg_price * (ONE + cfg.fractions.take_half_at)
        highs.append(th)
        extra["take_half"] = th
    else:
        peak = state.peak_price or state.avg_price
        trailing = peak * (ONE - cfg.fractions.runner_trailing_stop)
        low = max(low, trailing)
        highs.append(peak)  # a new high moves the trailing stop
        extra["trailing"] = trailing
    return Triggers(stop=stop, low=low, high=min(highs) if highs else None, trailing=trailing, extra=extra)


# ------------------------------------------------------------------ decision
def rule_of(action: Dca | Sell | CloseAll | Skip) -> str:
    """The ladder rule an action comes from: a DCA level or an exit reason (``Skip.what`` for skips)."""
    if isinstance(action, Dca):
        return action.level.value
    if isinstance(action, Skip):
        return action.what
    return action.reason.value


def decide(
    state: PositionState,
    price: Decimal,
    *,
    cfg: StrategyConfig,
    rules: SymbolRules,
    balance: Decimal,
    runner: RunnerMA | None = None,
    blocked: frozenset[str] = frozenset(),
) -> Action | None:
    """The one thing to do at this price: SPEC 5's exits in order, then the DCA levels, then the runner's peak.

    A rule whose order cannot be sent (a lot below the symbol's minimum: ``Skip``) or may not be sent yet
    (its rule is in ``blocked``: backing off after a refusal, given up, or an earlier order of the position
    still unknown) does not end the check: the later rules are checked on the same price (SPEC 5, amended).
    When nothing else fires, the first ``Skip`` is returned so the caller can say why. A blocked *close*
    ends the check: nothing else may happen to a position whose stop is waiting to be sent again.
    """
    if state.qty <= 0:
        return None
    sym = state.symbol
    first_skip: Skip | None = None

    # 1. stop loss on the current stage
    if price <= stop_price(state, cfg):
        return None if ExitReason.STOP_LOSS.value in blocked else CloseAll(sym, state.qty, ExitReason.STOP_LOSS, price)

    # 2. staged recovery: sell the newest lot when the price it came from is regained
    rec = _recovery(state, cfg)
    if rec is not None and price >= rec[0]:
        _, reason, lot = rec
        qty = rules.round_qty(min(lot.qty, state.qty))
        act: Action
        if state.qty - qty < rules.min_qty:  # a dust remainder could never be sold alone
            act = CloseAll(sym, state.qty, reason, price)
        elif qty < rules.min_qty:
            act = Skip(sym, reason.value, f"lot of {qty} is below the minimum quantity {rules.min_qty}")
        else:
            act = Sell(sym, qty, reason, price)
        if reason.value not in blocked:
            if not isinstance(act, Skip):
                return act
            first_skip = act
        elif isinstance(act, CloseAll):
            return None

    # 3. take half
    if not state.half_taken and price >= state.avg_price * (ONE + cfg.fractions.take_half_at):
        qty = rules.round_qty(state.qty * cfg.fractions.take_half_fraction)
        if ExitReason.TAKE_HALF.value not in blocked:
            if qty < rules.min_qty or state.qty - qty < rules.min_qty:
                # Too small to split: take the whole profit rather than never taking it.
                return CloseAll(sym, state.qty, ExitReason.TAKE_HALF, price)
            return Sell(sym, qty, ExitReason.TAKE_HALF, price)

    # 4. runner (after take-half): trailing stop, or 3m dead cross
    if state.half_taken:
        peak = max(state.peak_price or price, price)
        if price <= peak * (ONE - cfg.fractions.runner_trailing_stop):
            blocked_close = ExitReason.TRAILING_STOP.value in blocked
            return None if blocked_close else CloseAll(sym, state.qty, ExitReason.TRAILING_STOP, price)
        if runner is not None and runner.dead_cross:
            blocked_close = ExitReason.DEAD_CROSS.value in blocked
            return None if blocked_close else CloseAll(sym, state.qty, ExitReason.DEAD_CROSS, price)

    # DCA levels, each at most once, in ladder order
    nxt = _next_dca(state)
    if nxt is not None and nxt.value not in blocked and price <= state.initial_price * (ONE + cfg.trigger_for(nxt)):
        margin, notional, qty = size_order(balance, cfg.weight_for(nxt), cfg.leverage, price, rules)
        if rules.tradable(qty, price):
            return Dca(sym, nxt, margin, notional, qty, price)
        first_skip = first_skip or Skip(sym, nxt.value, _below_min(qty, price, rules))

    if state.half_taken and (state.peak_price is None or price > state.peak_price):
        return SetPeak(sym, price)
    return first_skip


# ------------------------------------------------------------------ fills
def new_position(symbol: str, fill: Fill) -> PositionState:
    """The state after the initial entry fill."""
    return PositionState(
        symbol=symbol,
        stage=Stage.INITIAL,
        legs=(Leg(Stage.INITIAL, fill.price, fill.qty),),
        qty=fill.qty,
        initial_price=fill.price,
    )


def adopted_position(symbol: str, qty: Decimal, entry_price: Decimal) -> PositionState:
    """A long found on the exchange that the database does not know (SPEC: stage initial)."""
    return PositionState(
        symbol=symbol,
        stage=Stage.INITIAL,
        legs=(Leg(Stage.INITIAL, entry_price, qty),),
        qty=qty,
        initial_price=entry_price,
    )


def apply_fill(state: PositionState, fill: Fill) -> PositionState:
    """The state after a fill; a sell of everything leaves ``qty == 0`` (closed)."""
    if fill.qty <= 0:
        return state
    if fill.side == "BUY":
        stage = fill.stage or Stage.INITIAL
        merged = _merge(state.leg(stage), stage, fill)
        legs = tuple(sorted((*(leg for leg in state.legs if leg.stage is not stage), merged), key=_leg_rank))
        return replace(
            state,
            legs=legs,
            qty=state.qty + fill.qty,
            # an entry reported in several partial fills: the DCA triggers are measured from its average
            initial_price=merged.price if stage is Stage.INITIAL else state.initial_price,
            stage=max(state.stage, stage, key=_stage_rank),
            dca1_done=state.dca1_done or stage is Stage.FIRST_DCA,
            dca2_done=state.dca2_done or stage is Stage.SECOND_DCA,
        )

    sold = min(fill.qty, state.qty)
    remaining = state.qty - sold
    if remaining <= 0:
        return replace(state, qty=ZERO, legs=())
    reason = fill.reason
    if reason in (ExitReason.RECOVERY_SECOND_DCA, ExitReason.RECOVERY_FIRST_DCA):
        lot_stage = Stage.SECOND_DCA if reason is ExitReason.RECOVERY_SECOND_DCA else Stage.FIRST_DCA
        back = Stage.FIRST_DCA if lot_stage is Stage.SECOND_DCA else Stage.INITIAL
        legs = _take_from_lot(state.legs, lot_stage, sold)
        return replace(state, legs=legs, qty=remaining, stage=back)
    legs = _scale_to(state.legs, remaining)
    if reason is ExitReason.TAKE_HALF:
        return replace(state, legs=legs, qty=remaining, half_taken=True, peak_price=fill.price)
    return replace(state, legs=legs, qty=remaining)


def with_peak(state: PositionState, peak: Decimal) -> PositionState:
    return replace(state, peak_price=peak)


def with_exchange_qty(state: PositionState, qty: Decimal) -> PositionState:
    """Quantity drift fixed to the exchange's figure: lots scaled, average kept."""
    if state.qty <= 0 or qty <= 0:
        return replace(state, qty=max(qty, ZERO))
    return replace(state, qty=qty, legs=_scale_to(state.legs, qty))


def _stage_rank(stage: Stage) -> int:
    return (Stage.INITIAL, Stage.FIRST_DCA, Stage.SECOND_DCA).index(stage)


def _leg_rank(leg: Leg) -> int:
    return _stage_rank(leg.stage)


def _merge(old: Leg | None, stage: Stage, fill: Fill) -> Leg:
    if old is None:
        return Leg(stage, fill.price, fill.qty)
    qty = old.qty + fill.qty
    return Leg(stage, (old.price * old.qty + fill.price * fill.qty) / qty, qty)


def _take_from_lot(legs: tuple[Leg, ...], stage: Stage, qty: Decimal) -> tuple[Leg, ...]:
    out: list[Leg] = []
    for leg in legs:
        if leg.stage is stage:
            rest = leg.qty - qty
            if rest > 0:
                out.append(Leg(stage, leg.price, rest))
        else:
            out.append(leg)
    return tuple(out)


def _scale_to(legs: tuple[Leg, ...], total: Decimal) -> tuple[Leg, ...]:
    """Lots scaled in proportion so that they add up to ``total`` exactly (the average is kept).

    A ratio like 14.9 / 29.7 has no exact decimal form: the newest lot takes the
    rounding remainder, so the lots never drift from the held quantity.
    """
    held = sum((leg.qty for leg in legs), ZERO)
    if not legs or held <= 0:
        return legs
    factor = total / held
    scaled = [Leg(leg.stage, leg.price, leg.qty * factor) for leg in legs[:-1]]
    last = legs[-1]
    scaled.append(Leg(last.stage, last.price, total - sum((leg.qty for leg in scaled), ZERO)))
    return tuple(scaled)
