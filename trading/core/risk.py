"""Risk arithmetic of the ladder (SPEC section 6): what a configuration can lose.

Pure and exact (``Decimal``). With leverage L a price move of p on notional N
changes equity by N*p, and the margin is N/L: the loss at a stop is the
**notional** times the stop distance, not the margin times it (the notes'
table made that mistake and understated every loss by a factor of L).

How the table is built (documented choices):

* Sizes are fractions of the wallet balance used as margin; notional =
  margin x leverage, for each ladder buy.
* The average entry after a DCA depends on where the DCA fills. The table
  assumes each DCA fills exactly at its trigger price, ``initial x (1 +
  trigger)``, to compute the stages' averages. The percentages do not depend
  on that choice: with N the notional paid, ``Q x avg = N`` whatever the fill
  prices, so the loss at the stop (``N x |stop|``) and the liquidation
  distance (``LP / avg - 1 = (N - WB - cum) / (N x (1 - MMR)) - 1``) stay the
  same; only the absolute price levels move.
* The stop loss is a distance from the average entry, so the loss at the stop
  is ``cumulative notional x |stop|``, before fees and slippage.
* Fees: ``taker_fee`` on every buy and on the stop's market sell.
* Liquidation (isolated mode only) uses Binance's one-way formula (see
  :func:`liquidation_price_long_isolated`) with the isolated margin reduced by
  the opening fees (conservative: it can only move the estimate up, towards the
  stop). Funding payments also eat isolated margin over time; they are not
  modelled, which is one more reason to want a clear gap between stop and
  liquidation.
* Worst case: ``max_positions`` positions, each stopped at its worst stage (a
  position can be stopped at any stage; with the defaults the worst is the
  fully laddered one), with fees.
* Refused (``ok`` false, reasons in ``problems``): in isolated mode a stage's
  stop at or below its liquidation estimate; a worst case above
  ``max_account_loss``; and, in cross mode, a worst case that leaves the
  account's equity at or below the maintenance margin of the open positions
  (the account would be liquidated before the stops fire).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from trading.core.config import StrategyConfig
from trading.core.models import STAGE_ORDER, ZERO, Bracket, Stage
from trading.core.reports import RiskRow, RiskTable

ONE = Decimal(1)
DEFAULT_BALANCE = Decimal(1000)
"""Balance used to validate a configuration: risk in % of the balance does not depend on it
(except through the bracket tiers, which start at 5,000 USDT of notional)."""


def build_brackets(tiers: Sequence[tuple[int | str, int | str, str, int]]) -> tuple[Bracket, ...]:
    """Brackets from ``(notional_floor, notional_cap, maint_margin_ratio, max_leverage)`` tiers.

    ``cum`` (the maintenance amount) is computed the way Binance does, so that
    the maintenance margin is continuous across tiers:
    ``cum_n = cum_{n-1} + floor_n * (mmr_n - mmr_{n-1})``.
    """
    out: list[Bracket] = []
    cum = ZERO
    prev_mmr = ZERO
    for floor, cap, mmr, max_lev in tiers:
        floor_d, mmr_d = Decimal(floor), Decimal(mmr)
        cum = cum + floor_d * (mmr_d - prev_mmr)
        out.append(Bracket(floor_d, Decimal(cap), mmr_d, cum, max_lev))
        prev_mmr = mmr_d
    return tuple(out)


# A conservative table typical of a mid-cap USDT perpetual (many majors have lower
# ratios). The service replaces it with the symbol's own leverageBracket when it has it.
DEFAULT_BRACKETS: tuple[Bracket, ...] = build_brackets(
    (
        (0, 5_000, "0.010", 50),
        (5_000, 25_000, "0.025", 20),
        (25_000, 100_000, "0.050", 10),
        (100_000, 250_000, "0.100", 5),
        (250_000, 1_000_000, "0.125", 2),
        (1_000_000, 5_000_000, "0.500", 1),
    )
)


def bracket_for(notional: Decimal, brackets: Sequence[Bracket] = DEFAULT_BRACKETS) -> Bracket:
    """The tier whose ``[floor, cap)`` holds ``notional`` (the last tier beyond the table)."""
    if not brackets:
        raise ValueError("no maintenance-margin brackets given")
    ordered = sorted(brackets, key=lambda b: b.notional_floor)
    for b in ordered:
        if b.notional_floor <= notional < b.notional_cap:
            return b
    return ordered[-1] if notional >= ordered[-1].notional_floor else ordered[0]


def liquidation_price_long_isolated(
    entry: Decimal, qty: Decimal, isolated_margin: Decimal, brackets: Sequence[Bracket] = DEFAULT_BRACKETS
) -> Decimal:
    """Estimated liquidation price of an isolated one-way **long** on Binance USD-M.

    Binance's published formula ("How to Calculate Liquidation Price of
    USDⓈ-M Contracts", Binance Futures FAQ) for one-way mode is::

        LP = (WB - TMM + UPNL + cum - Side*Q*EP) / (Q*MMR - Side*Q)

    In isolated mode ``WB`` is the position's isolated margin and the other
    positions' terms ``TMM`` and ``UPNL`` are 0; for a long ``Side = 1``, so::

        LP = (WB + cum - Q*EP) / (Q*MMR - Q)

    with ``Q`` the quantity, ``EP`` the entry price, and ``MMR`` and ``cum``
    those of the bracket chosen by the position's notional ``Q*EP``. Binance
    picks the tier by the notional at the mark price, which for a long is lower
    at liquidation: the entry notional can only pick the same or a higher
    ratio, i.e. a liquidation estimate at or above the exchange's (the safe
    side). A result below zero means the position cannot be liquidated (it is
    fully collateralised); 0 is returned.
    """
    if qty <= 0 or entry <= 0:
        raise ValueError(f"liquidation price needs a positive quantity and entry, got qty={qty} entry={entry}")
    b = bracket_for(qty * entry, brackets)
    lp = (isolated_margin + b.cum - qty * entry) / (qty * b.maint_margin_ratio - qty)
    return max(lp, ZERO)


def _maintenance_margin(notional: Decimal, brackets: Sequence[Bracket]) -> Decimal:
    b = bracket_for(notional, brackets)
    return max(notional * b.maint_margin_ratio - b.cum, ZERO)


def risk_table(cfg: StrategyConfig, balance: Decimal, brackets: Sequence[Bracket] = DEFAULT_BRACKETS) -> RiskTable:
    """SPEC 6 for one configuration at one wallet balance (see the module docstring for the method)."""
    if balance <= 0:
        raise ValueError(f"balance must be positive, got {balance}")
    leverage = Decimal(cfg.leverage)
    fee_rate = cfg.fractions.taker_fee
    isolated = cfg.margin_mode == "isolated"
    ref = ONE  # the initial entry price; every figure below is relative to it

    rows: list[RiskRow] = []
    stop_notional = ZERO
    margin = notional = qty = buy_fees = ZERO
    for stage in STAGE_ORDER:
        price = ref if stage is Stage.INITIAL else ref * (ONE + cfg.trigger_for(stage))
        leg_margin = balance * cfg.weight_for(stage)
        leg_notional = leg_margin * leverage
        margin += leg_margin
        notional += leg_notional
        qty += leg_notional / price
        buy_fees += leg_notional * fee_rate
        avg = notional / qty
        stop = cfg.stop_for(stage)
        stop_price = avg * (ONE + stop)
        stop_notional = notional * (ONE + stop)  # = qty x stop price, computed without the division
        loss = notional * -stop
        fees = buy_fees + stop_notional * fee_rate
        liq_pct: Decimal | None = None
        above: bool | None = None
        if isolated:
            liq = liquidation_price_long_isolated(avg, qty, margin - buy_fees, brackets)
            liq_pct = liq / avg - ONE
            above = stop_price > liq
        rows.append(
            RiskRow(
                stage=stage.value,
                margin=margin,
                notional=notional,
                stop_pct=stop,
                loss_at_stop=loss,
                fees=fees,
                loss_pct_of_balance=(loss + fees) / balance,
                liquidation_pct=liq_pct,
                stop_above_liquidation=above,
            )
        )

    n = Decimal(cfg.max_positions)
    worst = max(rows, key=lambda r: r.loss_at_stop + r.fees)
    worst_loss = n * worst.loss_at_stop
    worst_fees = n * worst.fees
    worst_pct = (worst_loss + worst_fees) / balance
    max_loss = cfg.fractions.max_account_loss

    problems: list[str] = []
    for row in rows:
        if row.stop_above_liquidation is False and row.liquidation_pct is not None:
            problems.append(
                f"margin_mode = 'isolated' at leverage {cfg.leverage}x: the {row.stage} stop "
                f"(stop_loss_by_stage.{row.stage} = {float(row.stop_pct):g}, i.e. {_pct(row.stop_pct)} from the "
                f"average entry) is at or below the estimated liquidation price ({_pct(row.liquidation_pct)} from "
                "the average): the position would be liquidated before the stop fires. Use margin_mode = 'cross', "
                "a lower leverage or a tighter stop"
            )
    if worst_pct > max_loss:
        problems.append(
            f"worst case: {cfg.max_positions} positions all stopped at their worst stage ({worst.stage}) lose "
            f"{_usdt(worst_loss)} + {_usdt(worst_fees)} fees = {_pct(worst_pct)} of the balance, above "
            f"max_account_loss = {float(max_loss):g} ({_pct(max_loss)})"
        )
    if not isolated:
        # Cross margin: the stops must fire before the whole account is liquidated. With every position
        # at its worst stop, equity must still exceed the maintenance margin of what is open.
        equity = balance - worst_loss - worst_fees
        full = rows[-1]  # the fully laddered position: the largest notional, the largest maintenance margin
        maint = n * _maintenance_margin(stop_notional, brackets)
        if equity <= maint:
            problems.append(
                f"margin_mode = 'cross': with {cfg.max_positions} positions at their stops the account equity "
                f"({_usdt(equity)}) is at or below the maintenance margin ({_usdt(maint)}): the account would be "
                f"liquidated before the stops fire (fully laddered notional {_usdt(full.notional)} per position)"
            )

    return RiskTable(
        balance=balance,
        leverage=cfg.leverage,
        margin_mode=cfg.margin_mode,
        max_positions=cfg.max_positions,
        rows=tuple(rows),
        per_position_worst=worst.loss_at_stop + worst.fees,
        worst_case_loss=worst_loss,
        worst_case_fees=worst_fees,
        worst_case_pct=worst_pct,
        max_account_loss=max_loss,
        margin_in_use_full=n * sum((cfg.weight_for(s) for s in STAGE_ORDER), ZERO),
        ok=not problems,
        problems=tuple(problems),
    )


def validate_strategy(cfg: StrategyConfig, brackets: Sequence[Bracket] = DEFAULT_BRACKETS) -> list[str]:
    """Risk problems of a configuration (empty = acceptable), at the reference balance of 1,000 USDT."""
    return list(risk_table(cfg, DEFAULT_BALANCE, brackets).problems)


def _pct(x: Decimal) -> str:
    return f"{x * 100:.2f}%"


def _usdt(x: Decimal) -> str:
    return f"{x:,.2f} USDT"
