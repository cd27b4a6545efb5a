"""State shared by the engine's parts (scanner, monitor, executor, reconciler).

One object, owned by the one event loop: no locks are needed for it, only
the per-symbol order locks of the executor.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from trading.book import PositionBook
from trading.clock import Clock
from trading.core.config import StrategyConfig
from trading.core.models import SymbolRules
from trading.events import EngineEvent, Notifier
from trading.exchange.base import ExchangePort, Market
from trading.store import Store

log = logging.getLogger("surgedca.engine")


@dataclass
class Account:
    wallet: Decimal = Decimal(0)
    available: Decimal = Decimal(0)
    updated_ms: int = 0


@dataclass
class EngineContext:
    cfg: StrategyConfig
    store: Store
    port: ExchangePort
    clock: Clock
    notifier: Notifier
    book: PositionBook = field(default_factory=PositionBook)
    markets: dict[str, Market] = field(default_factory=dict)
    account: Account = field(default_factory=Account)
    stopping: bool = False  # graceful stop: no new orders except resolving what is in flight
    mode: str = "sim"
    paused: bool = False  # no new entries (exits and DCA continue); persisted in SystemState
    cooldowns: dict[str, int] = field(default_factory=dict)  # symbol -> until ms (the ledger's cache of the table)
    blocks: dict[str, int] = field(default_factory=dict)  # timed /block: symbol -> until ms (cache of the table)
    halts: dict[str, str] = field(default_factory=dict)  # source -> why the service refuses to trade now
    # source -> why no new entry is made now (an account setting); positions held stay managed
    no_entries: dict[str, str] = field(default_factory=dict)
    # symbol -> a long on the exchange the service does not manage (not adopted): never entered, never touched
    unmanaged: dict[str, Decimal] = field(default_factory=dict)

    @property
    def halted(self) -> bool:
        """The service refuses to trade (another instance on the account, an account mode it cannot trade in);
        it stays up for /health and says why."""
        return bool(self.halts)

    @property
    def halt_reason(self) -> str | None:
        return "; ".join(self.halts.values()) if self.halts else None

    def set_halt(self, source: str, reason: str | None) -> bool:
        """Start (``reason``) or end (None) one cause of a halt; True when that changed anything."""
        if reason is None:
            return self.halts.pop(source, None) is not None
        if self.halts.get(source) == reason:
            return False
        self.halts[source] = reason
        return True

    def set_no_entries(self, source: str, reason: str | None) -> bool:
        """Start (``reason``) or end (None) one cause of refusing new entries; True when that changed anything."""
        if reason is None:
            return self.no_entries.pop(source, None) is not None
        if self.no_entries.get(source) == reason:
            return False
        self.no_entries[source] = reason
        return True

    def rules(self, symbol: str) -> SymbolRules | None:
        m = self.markets.get(symbol)
        return m.rules if m is not None else None

    def notify(self, event: EngineEvent) -> None:
        try:
            self.notifier.publish(event)
        except Exception:  # an alert must never break trading
            log.exception("notifier failed on %s", event.kind)

    def load_flags(self) -> None:
        """Cache what the scanner reads at every 1m close (no DB reads per scan)."""
        self.paused = bool(self.store.state.get("paused", False))
        self.cooldowns = dict(self.store.cooldowns.active(self.clock.now_ms()))
        self.blocks = {b.symbol: b.until_ms for b in self.store.blocks.active(self.clock.now_ms())}

    def in_cooldown(self, symbol: str) -> bool:
        until = self.cooldowns.get(symbol)
        return until is not None and until > self.clock.now_ms()

    def block_reason(self, symbol: str) -> str | None:
        """Why ``symbol`` gets no new entry: the permanent blacklist, a timed /block, a position of the user's
        on it that the service does not manage (a buy would merge into it), or an account setting (in memory:
        the scanner asks for every symbol at every minute)."""
        if self.no_entries:
            return "no new entries: " + "; ".join(self.no_entries.values())
        if symbol in self.unmanaged:
            return "a position not managed by SurgeDCA is open on it"
        if symbol in self.cfg.symbol_blacklist:
            return "blacklisted"
        until = self.blocks.get(symbol)
        if until is not None and until > self.clock.now_ms():
            return "blocked"
        return None

    def local_day(self, ts_ms: int) -> str:
        tz = ZoneInfo(self.cfg.report_timezone)
        return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).astimezone(tz).strftime("%Y-%m-%d")
