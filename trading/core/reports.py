"""Report values shared by the core, the service API and the presenters."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Condition:
    """One rule of SPEC 2-3: its name (e.g. ``M1``), whether it holds, and the numbers behind it."""

    name: str
    ok: bool
    values: dict[str, float | int | bool | None] = field(default_factory=dict)
    note: str = ""  # short human description, e.g. "MA80 > MA480 or golden cross within 150 bars"


@dataclass(frozen=True, slots=True)
class SignalReport:
    """One evaluation of one symbol at one 1m close."""

    symbol: str
    at_ms: int  # open time of the 1m candle that just closed
    prefilter: tuple[Condition, ...]
    m1: tuple[Condition, ...] = ()
    m3: tuple[Condition, ...] = ()
    f15: tuple[Condition, ...] = ()
    prefilter_ok: bool = False
    strategy_1m_ok: bool = False
    strategy_3m_ok: bool = False
    filter_15m_ok: bool = False
    entry: bool = False
    price: float | None = None  # close of the 1m candle evaluated

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return self.prefilter + self.m1 + self.m3 + self.f15


@dataclass(frozen=True, slots=True)
class RiskRow:
    """One ladder stage of one position, with everything bought up to and including it."""

    stage: str
    margin: Decimal  # cumulative margin of the position at this stage (USDT)
    notional: Decimal  # cumulative notional at this stage (USDT)
    stop_pct: Decimal  # e.g. -0.05
    loss_at_stop: Decimal  # notional x |stop| (USDT, positive number = money lost)
    fees: Decimal  # taker fees of the buys and of the stop's sell
    loss_pct_of_balance: Decimal  # (loss + fees) / balance
    liquidation_pct: Decimal | None  # isolated only: liquidation price relative to the average entry
    stop_above_liquidation: bool | None  # isolated only


@dataclass(frozen=True, slots=True)
class RiskTable:
    """SPEC 6: what the configuration can lose, stage by stage and in the worst case."""

    balance: Decimal
    leverage: int
    margin_mode: str
    max_positions: int
    rows: tuple[RiskRow, ...]
    per_position_worst: Decimal  # the worst stage's loss + fees, one position (USDT)
    worst_case_loss: Decimal  # max_positions fully laddered, all stopped (USDT, before fees)
    worst_case_fees: Decimal
    worst_case_pct: Decimal  # (loss + fees) / balance
    max_account_loss: Decimal
    margin_in_use_full: Decimal  # margin of max_positions fully laddered positions / balance
    ok: bool
    problems: tuple[str, ...] = ()
