"""Typed engine events, emitted for the notifier (console now, Telegram in the bot).

Each event carries plain values only; presenters turn them into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineEvent:
    ts_ms: int
    symbol: str | None = None

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass(frozen=True, slots=True, kw_only=True)
class EntryFilled(EngineEvent):
    price: Decimal
    qty: Decimal
    notional: Decimal
    position_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DcaFilled(EngineEvent):
    level: str  # "first_dca" | "second_dca"
    price: Decimal
    qty: Decimal
    avg_price: Decimal
    total_qty: Decimal
    position_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PartialExit(EngineEvent):
    """A staged recovery sell or the take-half."""

    reason: str
    price: Decimal
    qty: Decimal
    remaining_qty: Decimal
    pnl: Decimal  # realised on this sell (after fees)
    position_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionClosed(EngineEvent):
    """The position is flat: stop loss, runner exit, manual, backstop, external..."""

    reason: str
    price: Decimal
    qty: Decimal
    pnl: Decimal  # the whole trade's realised result after fees and funding
    pnl_pct: Decimal  # of the margin used
    position_id: int
    funding: Decimal = Decimal(0)  # the funding part of ``pnl`` (Binance's sign: < 0 paid)


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionAdopted(EngineEvent):
    qty: Decimal
    entry_price: Decimal
    position_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class PositionVanished(EngineEvent):
    """A database position no longer on the exchange (closed by hand, liquidated...)."""

    qty: Decimal
    pnl: Decimal | None
    position_id: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BackstopLost(EngineEvent):
    """The exchange-side stop ended without filling while its position is open (cancelled by hand, expired,
    finished with nothing executed); ``restored_price`` is the new one's price, None if it could not be placed."""

    status: str
    client_id: str
    restored_price: Decimal | None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderRefused(EngineEvent):
    """An order the exchange refused (or our share of its order limits held back): what, why, what happens next.

    Sent once per position, rule and refusal code (a storm of refusals is one alert)."""

    what: str  # the ladder rule ("first_dca", "stop_loss", "take_half"...), "entry" or "setup"
    code: int | None  # Binance's code
    refusal: str  # core.refusals.RefusalClass value
    message: str  # the exchange's own text
    retry_in_s: float | None = None  # not sent again before this many seconds
    gave_up: bool = False  # a DCA given up for this position (its stops and exits go on)
    cooldown_min: int | None = None  # a refused entry: no new entry on the symbol for this long


@dataclass(frozen=True, slots=True, kw_only=True)
class TradingHalted(EngineEvent):
    """The service refuses to trade, or trades again (``halted`` False); it stays up for /health either way.

    ``cause`` says why in a word the presenters translate ("foreign_instance", "account_mode"...); ``detail``
    carries the facts (in English, for the log and as the alert's evidence)."""

    cause: str
    detail: str
    halted: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class AccountModeSwitched(EngineEvent):
    """The account was in hedge mode with nothing open: the service switched it to one-way mode (the only mode
    it trades in)."""

    before: str  # "hedge"
    after: str  # "one-way"


@dataclass(frozen=True, slots=True, kw_only=True)
class EntriesRefused(EngineEvent):
    """An account setting keeps the service from new entries (positions held stay managed); ``reason`` is None
    when entries are allowed again. ``cause`` names the setting in a word the presenters translate."""

    reason: str | None
    cause: str = "multi_assets"


@dataclass(frozen=True, slots=True, kw_only=True)
class DelistingAhead(EngineEvent):
    """A held symbol is being delisted: Binance settles it at ``delivery_ms`` (None: not known, the contract
    already stopped trading normally); the position is closed at ``close_at_ms`` (reason ``delisting``)."""

    position_id: int
    delivery_ms: int | None
    close_at_ms: int
    cause: str  # "delisting announced" | "status SETTLING" ...


@dataclass(frozen=True, slots=True, kw_only=True)
class AdoptionAsked(EngineEvent):
    """A long on the exchange the service does not know (``adopt_positions = "ask"``): Adopt or Ignore? Until
    someone who may act answers Adopt it gets no backstop, no DCA and no exit. ``token`` names the question."""

    qty: Decimal
    entry_price: Decimal
    token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class QuantityDrift(EngineEvent):
    db_qty: Decimal
    exchange_qty: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderSkipped(EngineEvent):
    """An order the rules wanted but that could not be sent (e.g. below min notional)."""

    what: str
    why: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamDown(EngineEvent):
    name: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class StreamUp(EngineEvent):
    name: str
    down_for_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorEvent(EngineEvent):
    """Something went wrong that a human should know about. ``where`` groups a storm."""

    where: str
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStarted(EngineEvent):
    mode: str
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceStopping(EngineEvent):
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BotPollingStopped(EngineEvent):
    """Telegram answered 409 Conflict: another process polls the same bot token. This one stopped reading
    commands (they would be split between the two); alerts are still sent."""

    conflicts: int
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatMigrated(EngineEvent):
    """An allowed group became a supergroup: it has a new chat id, which the settings do not list yet."""

    old_chat_id: int
    new_chat_id: int


class Notifier(Protocol):
    """Where engine events go. ``publish`` must never block trading (queue, don't await I/O)."""

    def publish(self, event: EngineEvent) -> None: ...
