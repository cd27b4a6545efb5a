"""What a backtest produced: trades with their legs, entry signals, the equity curve, the summary and its checks.

Accounting (all exact Decimal, from the store's fills, which carry the
broker's fill prices and fees):

- a trade's ``gross`` = sell value - buy value; its ``funding`` = the funding
  it paid (received when negative), as the service's ledger recorded it (the
  engine records each FUNDING_FEE charge of the broker on the position that
  held the symbol, exactly as live); its ``pnl`` = gross - fees - funding;
- ``realized_pnl`` = sum of the trades' gross results, ``fees`` = sum of their
  fees, ``funding`` = every funding charge, ``net_pnl`` = realized_pnl - fees -
  funding;
- with every position closed at the end (the default), the broker's wallet
  must equal ``balance_start + realized_pnl - fees - funding`` to the cent (it books
  realised PnL with Binance's average-cost rule in 1e-8 USDT units; the
  difference is rounding only). Positions left open would make the two differ
  by their partial results, so the check is then reported as skipped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from trading.core.models import ZERO, Stage
from trading.core.reports import SignalReport
from trading.reporting import max_drawdown

if TYPE_CHECKING:
    from trading.backtest.runner import Backtest

CENT = Decimal("0.01")
END_OF_DATA = "end_of_data"  # close reason shown for positions the backtest closed at the end of the window


@dataclass
class EquityCurve:
    """One sample per simulated minute: wallet balance and equity (wallet + unrealised PnL at the last price)."""

    times_ms: list[int] = field(default_factory=list)
    wallet: list[float] = field(default_factory=list)
    equity: list[float] = field(default_factory=list)

    def add(self, ts_ms: int, wallet: Decimal, equity: Decimal) -> None:
        if self.times_ms and ts_ms <= self.times_ms[-1]:
            self.wallet[-1], self.equity[-1] = float(wallet), float(equity)
            return
        self.times_ms.append(ts_ms)
        self.wallet.append(float(wallet))
        self.equity.append(float(equity))


@dataclass(frozen=True)
class Leg:
    """One fill of a trade."""

    ts_ms: int
    side: str  # BUY | SELL
    qty: Decimal
    price: Decimal
    fee: Decimal
    stage: str | None  # buys: the ladder stage it opened
    reason: str | None  # sells: why
    client_order_id: str
    wallet_before: Decimal | None = None  # buys: the wallet balance the order was sized from


@dataclass(frozen=True)
class FundingCharge:
    """One funding time of a held position (``amount`` > 0: paid)."""

    ts_ms: int
    rate: Decimal
    mark: Decimal
    qty: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Trade:
    """One position from its entry to its close."""

    position_id: int
    symbol: str
    opened_ms: int
    closed_ms: int | None
    exit_reason: str | None
    max_stage: str
    legs: tuple[Leg, ...]
    funding_charges: tuple[FundingCharge, ...] = ()

    @property
    def funding(self) -> Decimal:
        return sum((f.amount for f in self.funding_charges), ZERO)

    @property
    def bought(self) -> Decimal:
        return sum((leg.qty for leg in self.legs if leg.side == "BUY"), ZERO)

    @property
    def sold(self) -> Decimal:
        return sum((leg.qty for leg in self.legs if leg.side == "SELL"), ZERO)

    @property
    def buy_value(self) -> Decimal:
        return sum((leg.qty * leg.price for leg in self.legs if leg.side == "BUY"), ZERO)

    @property
    def sell_value(self) -> Decimal:
        return sum((leg.qty * leg.price for leg in self.legs if leg.side == "SELL"), ZERO)

    @property
    def fees(self) -> Decimal:
        return sum((leg.fee for leg in self.legs), ZERO)

    @property
    def gross(self) -> Decimal:
        return self.sell_value - self.buy_value

    @property
    def pnl(self) -> Decimal:
        return self.gross - self.fees - self.funding

    @property
    def hold_ms(self) -> int | None:
        return None if self.closed_ms is None else self.closed_ms - self.opened_ms

    @property
    def closed(self) -> bool:
        return self.closed_ms is not None

    def pnl_pct_of_margin(self, leverage: int) -> Decimal | None:
        """The result against the most margin the trade had committed (all its buys / leverage)."""
        margin = self.buy_value / leverage
        return self.pnl / margin * 100 if margin > 0 else None


@dataclass(frozen=True)
class Signal:
    """An entry signal of the scanner, and whether a position was opened on it."""

    report: SignalReport
    entered: bool


@dataclass
class BacktestResult:
    name: str
    symbols: list[str]
    joined_after_start: dict[str, int]  # symbol -> its first candle, after the start (a listing)
    left_before_end: dict[str, int]  # symbol -> its last candle, before the end (a delisting)
    start_ms: int
    end_ms: int
    balance_start: Decimal
    balance_end: Decimal
    leverage: int
    trades: list[Trade]
    signals: list[Signal]
    equity: EquityCurve
    event_counts: dict[str, int]
    max_margin: Decimal
    max_margin_pct: Decimal
    max_positions: int
    minutes: int
    candles: int
    wall_s: float
    funding_total: Decimal = ZERO  # every funding charge of the run (> 0: paid)
    funding_source: str = "none"
    problems: list[str] = field(default_factory=list)  # consistency checks that failed
    checks: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def closed_trades(self) -> list[Trade]:
        return [t for t in self.trades if t.closed]


# ---------------------------------------------------------------------- gathering
def collect_result(bt: Backtest) -> BacktestResult:
    store = bt.store
    wallets = bt.counters.buy_wallets
    records = [*store.positions.list_closed(), *store.positions.list_open()]
    charges = {str(f.tran_id): f for f in bt.broker.funding}
    trades = []
    for rec in sorted(records, key=lambda r: (r.opened_at_ms, r.id)):
        legs = tuple(
            Leg(
                ts_ms=f.ts_ms,
                side=f.side,
                qty=f.qty,
                price=f.price,
                fee=f.fee,
                stage=f.stage.value if f.stage is not None else None,
                reason=f.reason,
                client_order_id=f.client_order_id,
                wallet_before=wallets.get(f.client_order_id) if f.side == "BUY" else None,
            )
            for f in store.fills.for_position(rec.id)
        )
        reason = rec.close_reason
        if rec.id in bt.closed_at_end:  # sold by the backtest itself (a manual close in the store)
            reason = END_OF_DATA
            legs = (*legs[:-1], replace(legs[-1], reason=END_OF_DATA))
        paid = tuple(
            FundingCharge(c.time_ms, c.rate, c.mark, c.qty, c.amount)
            for r in store.funding.for_position(rec.id)
            if (c := charges.get(r.key)) is not None
        )
        trades.append(
            Trade(rec.id, rec.symbol, rec.opened_at_ms, rec.closed_at_ms, reason, rec.max_stage.value, legs, paid)
        )
    opened = {(t.symbol, t.opened_ms // 60_000) for t in trades}
    signals = [Signal(r, (r.symbol, r.at_ms // 60_000) in opened) for r in bt.engine.scanner.signal_log]
    result = BacktestResult(
        name=bt.spec.name,
        symbols=list(bt.replay.symbols),
        joined_after_start=dict(bt.joined_after_start),
        left_before_end=dict(bt.left_before_end),
        start_ms=bt.start_ms,
        end_ms=bt.replay.cursor_ms,
        balance_start=bt.spec.balance,
        balance_end=bt.broker.wallet,
        leverage=bt.cfg.leverage,
        trades=trades,
        signals=signals,
        equity=bt.equity,
        event_counts=dict(bt.notifier.counts),
        max_margin=bt.peaks.margin,
        max_margin_pct=bt.peaks.margin_pct,
        max_positions=bt.peaks.positions,
        minutes=bt.counters.minutes,
        candles=bt.counters.candles,
        wall_s=bt.wall_s,
        funding_total=sum((f.amount for f in bt.broker.funding), ZERO),
        funding_source=bt.funding.describe() if bt.funding is not None else "none",
    )
    result.checks, result.problems = check_consistency(result, bt)
    result.summary = summarize(result)
    return result


# ---------------------------------------------------------------------- checks
def check_consistency(result: BacktestResult, bt: Backtest) -> tuple[dict[str, Any], list[str]]:
    """Books balance, legs add up, no buy larger than its ladder size. Returns (figures, problems)."""
    cfg = bt.cfg
    problems: list[str] = []
    checks: dict[str, Any] = {}
    open_trades = [t for t in result.trades if not t.closed]
    closed = result.closed_trades
    expected = (
        result.balance_start
        + sum((t.gross for t in closed), ZERO)
        - sum((t.fees for t in closed), ZERO)
        - result.funding_total
    )
    if open_trades:
        checks["balance"] = f"skipped: {len(open_trades)} position(s) still open"
    else:
        diff = result.balance_end - expected
        checks["balance"] = "ok" if abs(diff) < CENT else "FAILED"
        checks["balance_difference"] = diff
        if abs(diff) >= CENT:
            problems.append(
                f"wallet {result.balance_end} != start {result.balance_start} + realised PnL - fees - funding"
                f" = {expected}"
            )
    unassigned = result.funding_total - sum((t.funding for t in result.trades), ZERO)
    if unassigned != 0:
        problems.append(f"funding of {unassigned} USDT belongs to no trade")
    charged = {str(f.tran_id): f.amount for f in bt.broker.funding}
    for t in result.trades:  # the ledger's records: Binance's sign (negative when paid), the broker's amounts
        for r in bt.store.funding.for_position(t.position_id):
            if charged.get(r.key) != -r.amount:
                problems.append(f"trade {t.position_id} {t.symbol}: funding {r.key} of {r.amount} not as charged")
    bad_legs = [t for t in closed if t.bought != t.sold]
    checks["legs"] = "ok" if not bad_legs else "FAILED"
    problems += [f"trade {t.position_id} {t.symbol}: bought {t.bought} but sold {t.sold}" for t in bad_legs]
    slip = bt.spec.slippage
    oversized = []
    for t in result.trades:
        rules = bt.ctx.rules(t.symbol)
        tick = rules.tick_size if rules is not None else ZERO
        for leg in t.legs:
            if leg.side != "BUY" or leg.wallet_before is None or leg.stage is None:
                continue
            limit = cfg.weight_for(Stage(leg.stage)) * leg.wallet_before * cfg.leverage
            # The quantity is rounded down at the reference price; the fill adds slippage and a tick at most.
            if leg.qty * leg.price > limit * (1 + slip) + leg.qty * tick:
                oversized.append(f"{leg.client_order_id}: notional {leg.qty * leg.price} above {limit}")
    checks["sizes"] = "ok" if not oversized else "FAILED"
    problems += oversized
    missing = [
        leg.client_order_id for t in result.trades for leg in t.legs if leg.side == "BUY" and leg.wallet_before is None
    ]
    if missing:
        problems.append(f"buys without a recorded wallet: {', '.join(missing[:5])}")
    return checks, problems


# ---------------------------------------------------------------------- summary
def summarize(result: BacktestResult) -> dict[str, Any]:
    """The figures of ``summary.json`` (money as numbers rounded to 1e-8 USDT)."""
    closed = result.closed_trades
    realized = sum((t.gross for t in closed), ZERO)
    fees = sum((t.fees for t in closed), ZERO)
    funding = result.funding_total
    wins = sum(1 for t in closed if t.pnl > 0)
    holds = [t.hold_ms for t in closed if t.hold_ms is not None]
    eq = result.equity.equity
    exits = Counter(t.exit_reason or "unknown" for t in closed)
    partials = Counter(leg.reason or "unknown" for t in result.trades for leg in _partial_sells(t))
    stages = Counter(t.max_stage for t in result.trades)
    ret = (result.balance_end - result.balance_start) / result.balance_start * 100
    return {
        "name": result.name,
        "symbols": result.symbols,
        "joined_after_start": {s: _iso(ms) for s, ms in sorted(result.joined_after_start.items())},
        "left_before_end": {s: _iso(ms) for s, ms in sorted(result.left_before_end.items())},
        "start": _iso(result.start_ms),
        "end": _iso(result.end_ms),
        "start_ms": result.start_ms,
        "end_ms": result.end_ms,
        "minutes": result.minutes,
        "candles": result.candles,
        "balance_start": _num(result.balance_start),
        "balance_end": _num(result.balance_end),
        "realized_pnl": _num(realized),
        "fees": _num(fees),
        "funding": _num(funding),
        "funding_source": result.funding_source,
        "net_pnl": _num(realized - fees - funding),
        "return_pct": _num(ret, 4),
        "max_drawdown_pct": round(max_drawdown(eq) * 100, 4) if eq else 0.0,
        "trades": len(closed),
        "wins": wins,
        "losses": len(closed) - wins,
        "win_rate": round(wins / len(closed), 4) if closed else None,
        "avg_hold_minutes": round(sum(holds) / len(holds) / 60_000, 1) if holds else None,
        "max_margin_in_use": _num(result.max_margin),
        "max_margin_in_use_pct": _num(result.max_margin_pct * 100, 4),
        "max_open_positions": result.max_positions,
        "exit_reasons": dict(sorted(exits.items())),
        "partial_exits": dict(sorted(partials.items())),
        "max_stage_reached": {s.value: stages.get(s.value, 0) for s in Stage},
        "entry_signals": len(result.signals),
        "entries": len(result.trades),
        "open_at_end": sum(1 for t in result.trades if not t.closed),
        "closed_at_end": exits.get(END_OF_DATA, 0),
        "checks": {k: (_num(v) if isinstance(v, Decimal) else v) for k, v in result.checks.items()},
        "problems": list(result.problems),
        "wall_s": round(result.wall_s, 3),
        "candles_per_minute_wall": round(result.candles / result.wall_s * 60) if result.wall_s > 0 else None,
    }


def _partial_sells(t: Trade) -> list[Leg]:
    sells = [leg for leg in t.legs if leg.side == "SELL"]
    return sells[:-1] if t.closed else sells


def _num(d: Decimal, places: int = 8) -> float:
    return float(round(d, places))


def _iso(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
