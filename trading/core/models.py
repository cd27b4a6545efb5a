"""Domain values of the strategy: ladder stages, legs, position state, actions.

Pure data. Prices and quantities are ``Decimal`` so that averages, rounding to
tick/step and the quantities we send are exact; indicators work on float arrays
elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_UP, Decimal
from enum import StrEnum

ZERO = Decimal(0)


class Stage(StrEnum):
    INITIAL = "initial"
    FIRST_DCA = "first_dca"
    SECOND_DCA = "second_dca"


STAGE_ORDER: tuple[Stage, ...] = (Stage.INITIAL, Stage.FIRST_DCA, Stage.SECOND_DCA)


class ExitReason(StrEnum):
    STOP_LOSS = "stop_loss"
    RECOVERY_SECOND_DCA = "recovery_second_dca"  # second-DCA lot sold when the first DCA price is regained
    RECOVERY_FIRST_DCA = "recovery_first_dca"  # first-DCA lot sold when the initial price is regained
    TAKE_HALF = "take_half"
    TRAILING_STOP = "trailing_stop"
    DEAD_CROSS = "dead_cross"  # runner exit on the 3m MA5/MA20 dead cross
    MANUAL = "manual"  # /exit from Telegram
    BACKSTOP = "backstop"  # the exchange-side STOP_MARKET fired
    EXTERNAL = "external"  # closed outside the service (by hand) and found by the reconciler
    LIQUIDATION = "liquidation"  # the exchange liquidated it (force order)
    DELISTING = "delisting"  # closed ahead of the symbol's delivery (delisting)

    @property
    def closes_all(self) -> bool:
        """Whether a sell for this reason ends the position (the others sell a part of it)."""
        return self not in (ExitReason.RECOVERY_SECOND_DCA, ExitReason.RECOVERY_FIRST_DCA, ExitReason.TAKE_HALF)

    @property
    def is_stop(self) -> bool:
        """Closes that start the long (after-stop) cooldown."""
        return self in (ExitReason.STOP_LOSS, ExitReason.BACKSTOP, ExitReason.LIQUIDATION)


@dataclass(frozen=True, slots=True)
class SymbolRules:
    """Exchange trading rules of one symbol, as the ladder and the sizer need them."""

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_qty: Decimal | None = None

    def round_price_down(self, price: Decimal) -> Decimal:
        return floor_to(price, self.tick_size)

    def round_price_up(self, price: Decimal) -> Decimal:
        return ceil_to(price, self.tick_size)

    def round_qty(self, qty: Decimal) -> Decimal:
        """Quantities are always rounded down: never buy or sell more than asked."""
        q = floor_to(qty, self.step_size)
        if self.max_qty is not None and q > self.max_qty:
            q = floor_to(self.max_qty, self.step_size)
        return q

    def tradable(self, qty: Decimal, price: Decimal) -> bool:
        return qty >= self.min_qty and qty > ZERO and qty * price >= self.min_notional


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_UP) * step


@dataclass(frozen=True, slots=True)
class Bracket:
    """One maintenance-margin tier (Binance leverageBracket)."""

    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal
    max_leverage: int


@dataclass(frozen=True, slots=True)
class Leg:
    """One ladder buy still held (a lot). Recovery sells remove the newest lot (LIFO)."""

    stage: Stage
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class PositionState:
    """What the ladder needs to know about one open long position."""

    symbol: str
    stage: Stage
    legs: tuple[Leg, ...]
    qty: Decimal  # held quantity (the exchange's figure once reconciled)
    initial_price: Decimal  # fill price of the initial entry: DCA triggers are measured from it
    dca1_done: bool = False
    dca2_done: bool = False
    half_taken: bool = False
    peak_price: Decimal | None = None  # highest price since take-half (runner)

    @property
    def avg_price(self) -> Decimal:
        """Average entry of the lots still held (quantity weighted)."""
        total = sum((leg.qty for leg in self.legs), ZERO)
        if total <= 0:
            return self.initial_price
        return sum((leg.price * leg.qty for leg in self.legs), ZERO) / total

    def leg(self, stage: Stage) -> Leg | None:
        for leg in self.legs:
            if leg.stage is stage:
                return leg
        return None


# ----------------------------------------------------------------- actions
@dataclass(frozen=True, slots=True)
class Enter:
    symbol: str
    margin: Decimal  # USDT of margin (balance x weight)
    notional: Decimal  # margin x leverage
    qty: Decimal  # rounded to step at the reference price
    ref_price: Decimal


@dataclass(frozen=True, slots=True)
class Dca:
    symbol: str
    level: Stage  # FIRST_DCA or SECOND_DCA
    margin: Decimal
    notional: Decimal
    qty: Decimal
    ref_price: Decimal


@dataclass(frozen=True, slots=True)
class Sell:
    """Reduce-only partial sell."""

    symbol: str
    qty: Decimal
    reason: ExitReason
    ref_price: Decimal


@dataclass(frozen=True, slots=True)
class CloseAll:
    symbol: str
    qty: Decimal
    reason: ExitReason
    ref_price: Decimal


@dataclass(frozen=True, slots=True)
class SetPeak:
    """Bookkeeping only: the runner's highest price moved up (no order)."""

    symbol: str
    peak: Decimal


@dataclass(frozen=True, slots=True)
class ReplaceBackstop:
    symbol: str
    price: Decimal


@dataclass(frozen=True, slots=True)
class Skip:
    """An action the ladder wanted but cannot send (e.g. below min notional)."""

    symbol: str
    what: str
    why: str


Action = Enter | Dca | Sell | CloseAll | SetPeak | ReplaceBackstop | Skip


@dataclass(frozen=True, slots=True)
class Fill:
    """An executed order as the exchange reports it (summed over its trades)."""

    side: str  # "BUY" | "SELL"
    price: Decimal  # average fill price
    qty: Decimal
    fee: Decimal = ZERO
    stage: Stage | None = None  # for buys: which ladder level this was
    reason: ExitReason | None = None  # for sells
    realized_pnl: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Triggers:
    """Prices at which the ladder would act, precomputed per position (monitor hot path).

    Between ``low`` and ``high`` (exclusive) nothing can happen except the
    runner's peak moving up, so the monitor needs one comparison per tick.
    """

    stop: Decimal
    low: Decimal  # max(stop, next DCA trigger): act at or below
    high: Decimal | None  # min(recovery, take-half, peak): act at or above; None = never
    trailing: Decimal | None = None  # runner: act at or below (included in ``low``)
    extra: dict[str, Decimal] = field(default_factory=dict)
