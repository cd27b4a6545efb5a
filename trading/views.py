"""What the service API returns to front ends (the bot, `surgedca status`).

Plain values: the bot's presenters format them; nothing here talks to
Telegram or the exchange.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from trading.core.chart import DEFAULT_INTERVAL, ChartLabels
from trading.core.config import StrategyConfig
from trading.core.reports import RiskTable, SignalReport


class ServiceError(Exception):
    """A request the service refuses; ``code`` is a stable id the bot translates, ``params`` fill it in."""

    code = "error"

    def __init__(self, message: str = "", **params: Any) -> None:
        super().__init__(message or self.code)
        self.params = params


class UnknownSymbol(ServiceError):
    code = "unknown_symbol"  # params: symbol


class NoPosition(ServiceError):
    code = "no_position"  # params: symbol


class SymbolBusy(ServiceError):
    code = "symbol_busy"  # params: symbol (another action holds the symbol's lock)


class ExchangeUnavailable(ServiceError):
    code = "exchange_unavailable"  # params: detail


class InvalidConfig(ServiceError):
    code = "invalid_config"  # params: problems (list[str])


class ChartUnavailable(ServiceError):
    code = "chart_unavailable"  # params: symbol, reason (ChartProblem)


class InvalidBlock(ServiceError):
    code = "invalid_block"  # params: hours, max_hours


class TradingRefused(ServiceError):
    code = "trading_refused"  # params: reason (the account's settings forbid sending orders now)


@dataclass(frozen=True, slots=True)
class LegView:
    stage: str
    price: Decimal
    qty: Decimal


@dataclass(frozen=True, slots=True)
class PositionView:
    position_id: int
    symbol: str
    stage: str
    qty: Decimal
    avg_price: Decimal
    last_price: Decimal | None
    unrealized_pnl: Decimal | None  # USDT
    unrealized_pct: Decimal | None  # price change from the average, e.g. 0.034
    margin: Decimal
    next_dca_stage: str | None
    next_dca_price: Decimal | None
    stop_price: Decimal
    backstop_price: Decimal | None
    half_taken: bool
    trailing_stop: Decimal | None
    opened_at_ms: int
    origin: str  # "signal" | "adopted"
    legs: tuple[LegView, ...] = ()
    funding: Decimal = Decimal(0)  # funding so far, USDT (Binance's sign: < 0 paid, > 0 received)


class AdoptionOutcome(StrEnum):
    ADOPTED = "adopted"  # the service manages it now (backstop, DCA, exits)
    IGNORED = "ignored"  # left alone: no backstop, no DCA, no exit
    ALREADY_ADOPTED = "already_adopted"  # answered before (or adopted from /positions)
    ALREADY_IGNORED = "already_ignored"
    GONE = "gone"  # the long is no longer on the exchange
    UNKNOWN = "unknown"  # no such question (forged, or from another database)
    REFUSED = "refused"  # trading is halted: nothing is adopted now (``detail`` says why)
    UNAVAILABLE = "unavailable"  # the exchange could not be asked; nothing changed (``detail``)


@dataclass(frozen=True, slots=True)
class AdoptionResult:
    outcome: AdoptionOutcome
    symbol: str | None
    position_id: int | None = None
    qty: Decimal | None = None
    entry_price: Decimal | None = None
    backstop_price: Decimal | None = None
    answered_by: str | None = None  # who answered first (ALREADY_*)
    detail: str = ""


class NotManagedStatus(StrEnum):
    ASKED = "asked"  # waiting for an answer on Telegram
    LEFT = "left"  # not asked (adopt_positions = "none", or no Telegram)
    IGNORED = "ignored"  # someone answered Ignore


@dataclass(frozen=True, slots=True)
class NotManagedView:
    """A long on the exchange that the service does not manage (``/positions``): it is never touched."""

    symbol: str
    qty: Decimal
    entry_price: Decimal
    unrealized_pnl: Decimal | None
    status: NotManagedStatus
    since_ms: int


class NotManaged(ServiceError):
    code = "not_managed"  # params: symbol (no long of the user's on it that the service could adopt)


@dataclass(frozen=True, slots=True)
class StreamHealth:
    name: str
    up: bool
    last_message_age_s: float | None


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """The connection to Telegram, as the bot's own requests found it (None in a headless service)."""

    up: bool
    since_ms: int | None  # when the current state (up or down) began; None before the first request
    failures: int  # failed requests in a row
    last_error: str | None
    last_outage_s: float | None = None  # the length of the last outage that ended
    rejected: bool = False  # Telegram refuses the token (revoked): only a restart with a valid one helps


@dataclass(frozen=True, slots=True)
class AccountHealth:
    """The account's settings as last read (``/health``): what SurgeDCA needs is one-way mode, single-asset mode
    and ``canTrade``. None where never read."""

    position_mode: str | None  # "one-way" | "hedge"
    multi_assets: bool | None
    can_trade: bool | None
    checked_ms: int | None
    refusal: str | None = None  # why nothing is sent now (the account's settings)
    no_entries: str | None = None  # why no new entry is made now (positions held stay managed)
    error: str | None = None  # the last reading failed (the previous one is shown)


@dataclass(frozen=True, slots=True)
class HealthView:
    mode: str
    started_at_ms: int
    uptime_s: float
    streams: tuple[StreamHealth, ...]
    rest_weight_1m: int
    last_reconcile_ms: int | None
    last_reconcile_summary: str
    last_scan_ms: int | None
    last_scan_duration_ms: float | None
    last_scan_symbols: int
    last_scan_signals: int
    db_size_bytes: int
    last_backup_ms: int | None
    balance: Decimal | None
    margin_in_use: Decimal | None
    open_positions: int
    paused: bool
    errors_last_hour: int
    telegram: LinkHealth | None = None
    halted: str | None = None  # why the service refuses to trade (another instance, the account's mode), if it does
    account: AccountHealth | None = None


@dataclass(frozen=True, slots=True)
class SyncItem:
    kind: str  # pending_resolved, adopted, vanished, qty_drift, stray_cancelled, backstop_recreated, ...
    symbol: str | None
    detail: str
    action: str  # what the reconciler did about it ("" when only reported)


@dataclass(frozen=True, slots=True)
class SyncReport:
    at_ms: int
    items: tuple[SyncItem, ...]
    duration_ms: float
    error: str | None = None

    @property
    def clean(self) -> bool:
        return not self.items and self.error is None


@dataclass(frozen=True, slots=True)
class ExitPreview:
    position_id: int
    symbol: str
    stage: str
    qty: Decimal
    avg_price: Decimal
    last_price: Decimal | None
    est_pnl: Decimal | None


@dataclass(frozen=True, slots=True)
class ExitResult:
    symbol: str
    filled: bool
    price: Decimal | None
    qty: Decimal
    pnl: Decimal | None  # the whole trade's realised result after fees and funding
    message: str = ""


@dataclass(frozen=True, slots=True)
class ConfigPreview:
    key: str
    old: Any
    new: Any
    risk_before: RiskTable
    risk_after: RiskTable


@dataclass(frozen=True, slots=True)
class ConfigChange:
    ts_ms: int
    actor: str
    key: str
    old: Any
    new: Any


@dataclass(frozen=True, slots=True)
class PeriodStats:
    label: str  # "today" | "7d"
    trades: int
    wins: int
    realized_pnl: Decimal  # the closed trades' results: after fees and funding
    fees: Decimal
    funding: Decimal = Decimal(0)  # the closed trades' funding (< 0 paid), part of realized_pnl

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class StatsView:
    today: PeriodStats
    week: PeriodStats
    timezone: str


@dataclass(frozen=True, slots=True)
class Report:
    """`/report`: equity curve of live/paper trading and its figures."""

    days: int
    png: bytes | None
    summary: dict[str, Any] = field(default_factory=dict)


class ChartProblem(StrEnum):
    INTERVAL = "interval"  # not one of trading.core.chart.CHART_INTERVALS
    NO_CANDLES = "no_candles"  # the symbol is neither held nor scanned: no candles kept
    FAILED = "failed"  # the worker failed or was too slow


@dataclass(frozen=True, slots=True)
class ChartView:
    """``/chart``: the PNG and what its caption tells (the position, or the entry conditions of a symbol not held)."""

    symbol: str
    interval: str
    png: bytes
    candle_ms: int  # open time of the newest candle drawn
    position: PositionView | None
    signal: SignalReport | None
    render_ms: float
    cached: bool


@dataclass(frozen=True, slots=True)
class TimedBlock:
    symbol: str
    until_ms: int
    actor: str
    since_ms: int


@dataclass(frozen=True, slots=True)
class CooldownView:
    symbol: str
    until_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class BlockList:
    """``/blocked``: what keeps symbols from new entries. The permanent blacklist (strategy key
    ``symbol_blacklist``), timed blocks (``/block SYMBOL HOURS``), and the strategy's own cooldowns."""

    permanent: tuple[str, ...]
    timed: tuple[TimedBlock, ...]
    cooldowns: tuple[CooldownView, ...]
    held: tuple[str, ...]  # symbols held now (blocking them stops new entries only)


@dataclass(frozen=True, slots=True)
class BlockResult:
    symbol: str
    until_ms: int | None  # None: permanently (the blacklist)
    previous_until_ms: int | None  # a timed block it replaced
    already_permanent: bool  # nothing changed: the symbol was on the blacklist
    held: bool  # a position is open on it (offer to exit)
    changed: bool


@dataclass(frozen=True, slots=True)
class UnblockResult:
    symbol: str
    was_permanent: bool
    was_until_ms: int | None
    cooldown_until_ms: int | None  # the strategy's cooldown still runs until then
    changed: bool


class ServiceAPI(Protocol):
    """Everything a front end may ask of the running service. ``actor`` is e.g. ``tg:12345``."""

    mode: str

    @property
    def paused(self) -> bool: ...

    async def positions(self) -> list[PositionView]: ...
    async def not_managed(self) -> list[NotManagedView]: ...  # longs on the exchange the service leaves alone
    async def not_managed_one(self, symbol: str) -> NotManagedView: ...  # raises UnknownSymbol / NotManaged
    async def answer_adoption(self, token: str, adopt: bool, actor: str) -> AdoptionResult: ...
    async def adopt(self, symbol: str, actor: str) -> AdoptionResult: ...  # raises UnknownSymbol / NotManaged
    async def position(self, symbol: str) -> PositionView: ...  # raises UnknownSymbol / NoPosition
    async def health(self) -> HealthView: ...
    async def sync(self, actor: str) -> SyncReport: ...
    async def exit_preview(self, symbol: str) -> ExitPreview: ...
    async def exit(self, symbol: str, actor: str) -> ExitResult: ...
    async def pause(self, actor: str) -> bool: ...  # False when it already was
    async def resume(self, actor: str) -> bool: ...
    async def config_get(self) -> StrategyConfig: ...
    async def config_preview(self, key: str, raw_value: str) -> ConfigPreview: ...  # raises InvalidConfig
    async def config_set(self, key: str, raw_value: str, actor: str) -> ConfigChange: ...
    async def config_history(self, limit: int = 20) -> list[ConfigChange]: ...
    async def stats(self) -> StatsView: ...
    async def why(self, symbol: str) -> SignalReport | None: ...  # raises UnknownSymbol
    async def risk(self) -> RiskTable: ...
    async def report(self, days: int) -> Report: ...
    async def chart(
        self,
        symbol: str,
        interval: str = DEFAULT_INTERVAL,
        *,
        labels: Sequence[ChartLabels] = (ChartLabels(),),
        position_id: int | None = None,
    ) -> ChartView: ...  # raises UnknownSymbol / ChartUnavailable
    async def blocked(self) -> BlockList: ...
    async def block(self, symbol: str, hours: float | None, actor: str) -> BlockResult: ...  # None: permanently
    async def unblock(self, symbol: str, actor: str) -> UnblockResult: ...
    def chat_locale(self, chat_id: int) -> str | None: ...  # the language chosen with /lang (persisted)
    async def set_chat_locale(self, chat_id: int, locale: str, actor: str) -> None: ...
    def audit(
        self, actor: str, action: str, symbol: str | None = None, before: Any = None, after: Any = None
    ) -> None: ...
