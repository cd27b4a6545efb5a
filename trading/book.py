"""The engine's in-memory view of open positions (the monitor's hot-path data).

The database is the source of truth; the book is rebuilt from it at start and
changed only by the position ledger, *after* a change is committed. Each entry
keeps its trigger band as floats so a price tick costs one or two comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from trading.core import ladder
from trading.core.config import StrategyConfig
from trading.core.models import PositionState, Triggers
from trading.core.order_state import Origin


@dataclass(slots=True)
class BookEntry:
    position_id: int
    state: PositionState
    margin: Decimal
    opened_at_ms: int
    origin: Origin
    backstop_client_id: str | None = None
    backstop_price: Decimal | None = None
    triggers: Triggers | None = None
    low: float = float("-inf")  # act at or below
    high: float = float("inf")  # act at or above
    busy: bool = False  # a ladder action is queued or being sent: the monitor waits for it
    last_px: str | None = None  # last price as the exchange wrote it (Decimal only when needed)
    last_price_ms: int = 0  # local time of the last market data (trade or mark): REST polling starts when stale
    version: int = 0  # bumped on every change; the reconciler skips symbols that moved under it
    skip_noted: set[str] = field(default_factory=set)  # Skip alerts already sent (no alert per tick)
    peak_saved_ms: int = 0
    funding: Decimal = Decimal(0)  # funding recorded so far (Binance's sign: < 0 paid)

    @property
    def last_price(self) -> Decimal | None:
        return Decimal(self.last_px) if self.last_px is not None else None

    def retrigger(self, cfg: StrategyConfig) -> None:
        self.version += 1
        t = ladder.triggers(self.state, cfg)
        self.triggers = t
        self.low = float(t.low)
        self.high = float(t.high) if t.high is not None else float("inf")

    def outside_band(self, price: float) -> bool:
        return price <= self.low or price >= self.high


class PositionBook:
    def __init__(self) -> None:
        self._by_symbol: dict[str, BookEntry] = {}
        self.listeners: list[Callable[[], None]] = []  # the set of held symbols changed (subscriptions)

    def get(self, symbol: str) -> BookEntry | None:
        return self._by_symbol.get(symbol)

    def put(self, entry: BookEntry, cfg: StrategyConfig) -> None:
        entry.retrigger(cfg)
        new = entry.state.symbol not in self._by_symbol
        self._by_symbol[entry.state.symbol] = entry
        if new:
            self._changed()

    def remove(self, symbol: str) -> BookEntry | None:
        entry = self._by_symbol.pop(symbol, None)
        if entry is not None:
            self._changed()
        return entry

    def _changed(self) -> None:
        for listener in self.listeners:
            listener()

    def symbols(self) -> list[str]:
        return list(self._by_symbol)

    def entries(self) -> list[BookEntry]:
        return list(self._by_symbol.values())

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._by_symbol

    def __len__(self) -> int:
        return len(self._by_symbol)

    def margin_in_use(self) -> Decimal:
        return sum((e.margin for e in self._by_symbol.values()), Decimal(0))

    def retrigger_all(self, cfg: StrategyConfig) -> None:
        for e in self._by_symbol.values():
            e.retrigger(cfg)
