"""An in-memory service implementing ``trading.views.ServiceAPI`` faithfully, for the bot's tests.

It behaves like the real one where the bot can tell: positions are built
from the strategy config (ladder legs, average, stop, next DCA), ``exit``
really removes the position and returns a fill with its PnL, config changes
are validated by ``trading.core.config`` and persisted to a JSON file, the
risk table follows SPEC 6, every change writes an audit row. Each call is
recorded in ``calls`` so tests can count what the bot asked for.
"""

from __future__ import annotations

import asyncio
import json
import struct
import tomllib
import zlib
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from trading.clock import Clock, ManualClock
from trading.core.config import ConfigError, StrategyConfig
from trading.core.models import Stage
from trading.core.reports import RiskRow, RiskTable, SignalReport
from trading.views import (
    AdoptionOutcome,
    AdoptionResult,
    ConfigChange,
    ConfigPreview,
    ExitPreview,
    ExitResult,
    HealthView,
    InvalidConfig,
    LegView,
    NoPosition,
    NotManaged,
    NotManagedView,
    PeriodStats,
    PositionView,
    Report,
    StatsView,
    StreamHealth,
    SymbolBusy,
    SyncReport,
    UnknownSymbol,
)

DEFAULT_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "1000PEPEUSDT", "XRPUSDT", "WIFUSDT", "SUIUSDT")
MAINTENANCE_MARGIN = Decimal("0.004")  # rough Binance tier-1 rate, for the isolated liquidation estimate


def _d(x: float | int | str | Decimal) -> Decimal:
    return x if isinstance(x, Decimal) else Decimal(str(x))


def parse_raw_value(raw: str) -> Any:
    """A value typed in Telegram, read as a TOML value (``5``, ``0.02``, ``true``, ``["BTCUSDT"]``); else the text."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def tiny_png(width: int = 4, height: int = 3) -> bytes:
    """A real (valid) PNG, small: what a chart would be in a test."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([40, 160, 90]) * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def risk_table(cfg: StrategyConfig, balance: Decimal) -> RiskTable:
    """SPEC 6: cumulative margin/notional per stage, loss at that stage's stop (notional x stop), fees both ways."""
    lev = _d(cfg.leverage)
    fee = _d(cfg.taker_fee)
    rows = []
    cumulative = Decimal(0)
    problems: list[str] = []
    for stage in (Stage.INITIAL, Stage.FIRST_DCA, Stage.SECOND_DCA):
        cumulative += cfg.weight_for(stage)
        margin = balance * cumulative
        notional = margin * lev
        stop = cfg.stop_for(stage)
        loss = notional * -stop
        fees = notional * fee * 2
        liq = stop_ok = None
        if cfg.margin_mode == "isolated":
            liq = -(Decimal(1) / lev) + MAINTENANCE_MARGIN
            stop_ok = stop > liq
            if not stop_ok:
                problems.append(f"{stage.value}: stop {stop:.2%} is at or below the liquidation estimate {liq:.2%}")
        rows.append(RiskRow(stage.value, margin, notional, stop, loss, fees, (loss + fees) / balance, liq, stop_ok))
    worst_row = max(rows, key=lambda r: r.loss_at_stop + r.fees)
    n = _d(cfg.max_positions)
    worst_loss = worst_row.loss_at_stop * n
    worst_fees = worst_row.fees * n
    worst_pct = (worst_loss + worst_fees) / balance
    limit = _d(cfg.max_account_loss)
    if worst_pct > limit:
        problems.append(f"worst case {worst_pct:.1%} of the balance exceeds max_account_loss {limit:.0%}")
    return RiskTable(
        balance=balance,
        leverage=cfg.leverage,
        margin_mode=cfg.margin_mode,
        max_positions=cfg.max_positions,
        rows=tuple(rows),
        per_position_worst=worst_row.loss_at_stop + worst_row.fees,
        worst_case_loss=worst_loss,
        worst_case_fees=worst_fees,
        worst_case_pct=worst_pct,
        max_account_loss=limit,
        margin_in_use_full=n * sum((cfg.weight_for(s) for s in Stage), Decimal(0)),
        ok=not problems,
        problems=tuple(problems),
    )


@dataclass
class _Position:
    position_id: int
    symbol: str
    stage: Stage
    legs: list[LegView]
    initial_price: Decimal
    last_price: Decimal | None
    opened_at_ms: int
    origin: str = "signal"
    half_taken: bool = False
    peak: Decimal | None = None


@dataclass
class ClosedTrade:
    ts_ms: int
    symbol: str
    pnl: Decimal
    fees: Decimal


@dataclass
class FakeService:
    clock: Clock = field(default_factory=lambda: ManualClock(1_761_700_000_000))
    state_path: Path | None = None
    balance: Decimal = Decimal("1000")
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    mode: str = "paper"
    exit_delay_s: float = 0.0  # how long an exit "takes" (concurrency tests)

    def __post_init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.audit_rows: list[dict[str, Any]] = []
        self.why_reports: dict[str, SignalReport] = {}
        self.sync_result = SyncReport(at_ms=self.clock.now_ms(), items=(), duration_ms=42.0)
        self.report_png: bytes | None = None
        self.closed: list[ClosedTrade] = []
        self.history: list[ConfigChange] = []
        self._paused = False
        self._positions: dict[str, _Position] = {}
        self._next_id = 1
        self._locks: dict[str, asyncio.Lock] = {}
        self._overrides: dict[str, Any] = {}
        self._locales: dict[int, str] = {}
        self._started_ms = self.clock.now_ms() - 3 * 3600 * 1000
        self._load()

    # ------------------------------------------------------------ persistence (the real service uses SQLite)
    def _load(self) -> None:
        if self.state_path is None or not self.state_path.exists():
            self.config = StrategyConfig()
            return
        state = json.loads(self.state_path.read_text())
        self._overrides = state.get("config", {})
        self._locales = {int(k): v for k, v in state.get("locales", {}).items()}
        cfg = StrategyConfig()
        for key, value in self._overrides.items():
            cfg = cfg.with_value(key, value)
        self.config = cfg

    def _save(self) -> None:
        if self.state_path is not None:
            state = {"config": self._overrides, "locales": {str(k): v for k, v in self._locales.items()}}
            self.state_path.write_text(json.dumps(state, indent=1))

    # ------------------------------------------------------------ test set-up helpers
    def add_position(
        self,
        symbol: str,
        entry_price: str | Decimal,
        *,
        stage: Stage = Stage.INITIAL,
        last_price: str | Decimal | None = None,
        origin: str = "signal",
        priced: bool = True,
    ) -> PositionView:
        """Open a position as the ladder would have: one leg per stage reached, sized from the balance.

        ``last_price`` defaults to the entry price; ``priced=False`` is a position before its first price
        (as the real service has right after adopting one): no last price, no PnL.
        """
        if symbol not in self.symbols:
            self.symbols = (*self.symbols, symbol)
        p0 = _d(entry_price)
        cfg = self.config
        legs = []
        for s in (Stage.INITIAL, Stage.FIRST_DCA, Stage.SECOND_DCA):
            price = p0 if s is Stage.INITIAL else p0 * (1 + cfg.trigger_for(s))
            qty = (self.balance * cfg.weight_for(s) * cfg.leverage / price).quantize(Decimal("0.001"), ROUND_DOWN)
            legs.append(LegView(s.value, price, qty))
            if s is stage:
                break
        pos = _Position(
            self._next_id,
            symbol,
            stage,
            legs,
            p0,
            (_d(last_price) if last_price is not None else p0) if priced else None,
            self.clock.now_ms() - 3600_000,
            origin,
        )
        self._next_id += 1
        self._positions[symbol] = pos
        return self._view(pos)

    def set_price(self, symbol: str, price: str | Decimal) -> None:
        self._positions[symbol].last_price = _d(price)

    def count(self, method: str) -> int:
        return sum(1 for c in self.calls if c[0] == method)

    # ------------------------------------------------------------ views
    def _view(self, p: _Position) -> PositionView:
        cfg = self.config
        qty = sum((leg.qty for leg in p.legs), Decimal(0))
        cost = sum((leg.qty * leg.price for leg in p.legs), Decimal(0))
        avg = cost / qty
        stop = avg * (1 + cfg.stop_for(p.stage))
        nxt = {Stage.INITIAL: Stage.FIRST_DCA, Stage.FIRST_DCA: Stage.SECOND_DCA}.get(p.stage)
        pnl = (p.last_price - avg) * qty if p.last_price is not None else None
        return PositionView(
            position_id=p.position_id,
            symbol=p.symbol,
            stage=p.stage.value,
            qty=qty,
            avg_price=avg,
            last_price=p.last_price,
            unrealized_pnl=pnl,
            unrealized_pct=(p.last_price - avg) / avg if p.last_price is not None else None,
            margin=cost / cfg.leverage,
            next_dca_stage=nxt.value if nxt else None,
            next_dca_price=p.initial_price * (1 + cfg.trigger_for(nxt)) if nxt else None,
            stop_price=stop,
            backstop_price=stop if cfg.backstop_on_exchange else None,
            half_taken=p.half_taken,
            trailing_stop=p.peak * (1 - _d(cfg.runner_trailing_stop)) if p.peak is not None else None,
            opened_at_ms=p.opened_at_ms,
            origin=p.origin,
            legs=tuple(p.legs),
        )

    def _known(self, symbol: str) -> None:
        if symbol not in self.symbols:
            raise UnknownSymbol(f"unknown symbol {symbol}", symbol=symbol)

    def _held(self, symbol: str) -> _Position:
        self._known(symbol)
        pos = self._positions.get(symbol)
        if pos is None:
            raise NoPosition(f"no position in {symbol}", symbol=symbol)
        return pos

    # ------------------------------------------------------------ ServiceAPI
    @property
    def paused(self) -> bool:
        return self._paused

    async def positions(self) -> list[PositionView]:
        self.calls.append(("positions",))
        return [self._view(p) for p in sorted(self._positions.values(), key=lambda p: p.position_id)]

    async def not_managed(self) -> list[NotManagedView]:
        self.calls.append(("not_managed",))
        return []  # every position of this fake is the service's own

    async def not_managed_one(self, symbol: str) -> NotManagedView:
        raise NotManaged(symbol=symbol)

    async def answer_adoption(self, token: str, adopt: bool, actor: str) -> AdoptionResult:
        self.calls.append(("answer_adoption", token, adopt, actor))
        return AdoptionResult(AdoptionOutcome.UNKNOWN, None)

    async def adopt(self, symbol: str, actor: str) -> AdoptionResult:
        raise NotManaged(symbol=symbol)

    async def position(self, symbol: str) -> PositionView:
        self.calls.append(("position", symbol))
        return self._view(self._held(symbol))

    async def health(self) -> HealthView:
        self.calls.append(("health",))
        now = self.clock.now_ms()
        views = [self._view(p) for p in self._positions.values()]
        return HealthView(
            mode=self.mode,
            started_at_ms=self._started_ms,
            uptime_s=(now - self._started_ms) / 1000,
            streams=(StreamHealth("market", True, 0.4), StreamHealth("user-data", True, 12.5)),
            rest_weight_1m=37,
            last_reconcile_ms=now - 9_000,
            last_reconcile_summary="clean",
            last_scan_ms=now - 31_000,
            last_scan_duration_ms=184.2,
            last_scan_symbols=150,
            last_scan_signals=1,
            db_size_bytes=3_250_000,
            last_backup_ms=now - 5 * 3600_000,
            balance=self.balance,
            margin_in_use=sum((v.margin for v in views), Decimal(0)),
            open_positions=len(views),
            paused=self._paused,
            errors_last_hour=0,
        )

    async def sync(self, actor: str) -> SyncReport:
        self.calls.append(("sync", actor))
        self.audit(actor, "sync", after={"items": len(self.sync_result.items)})
        return self.sync_result

    async def exit_preview(self, symbol: str) -> ExitPreview:
        self.calls.append(("exit_preview", symbol))
        v = self._view(self._held(symbol))
        est = None  # as the real service: no estimate before the first price
        if v.unrealized_pnl is not None and v.last_price is not None:
            est = v.unrealized_pnl - v.qty * v.last_price * _d(self.config.taker_fee)
        return ExitPreview(v.position_id, v.symbol, v.stage, v.qty, v.avg_price, v.last_price, est)

    async def exit(self, symbol: str, actor: str) -> ExitResult:
        self.calls.append(("exit", symbol, actor))
        self._held(symbol)
        lock = self._locks.setdefault(symbol, asyncio.Lock())
        if lock.locked():
            raise SymbolBusy(f"{symbol} is busy", symbol=symbol)
        async with lock:
            if self.exit_delay_s:
                await asyncio.sleep(self.exit_delay_s)
            pos = self._held(symbol)
            before = self._view(pos)
            price = pos.last_price or before.avg_price
            fee_rate = _d(self.config.taker_fee)
            fees = before.qty * (price + before.avg_price) * fee_rate  # the buys' and this sell's taker fees
            pnl = (price - before.avg_price) * before.qty - fees
            del self._positions[symbol]
            self.closed.append(ClosedTrade(self.clock.now_ms(), symbol, pnl, fees))
            self.audit(actor, "exit", symbol, before={"qty": str(before.qty)}, after={"qty": "0", "price": str(price)})
            return ExitResult(symbol=symbol, filled=True, price=price, qty=before.qty, pnl=pnl)

    async def pause(self, actor: str) -> bool:
        self.calls.append(("pause", actor))
        if self._paused:
            return False
        self._paused = True
        self.audit(actor, "pause", before={"paused": False}, after={"paused": True})
        return True

    async def resume(self, actor: str) -> bool:
        self.calls.append(("resume", actor))
        if not self._paused:
            return False
        self._paused = False
        self.audit(actor, "resume", before={"paused": True}, after={"paused": False})
        return True

    async def config_get(self) -> StrategyConfig:
        self.calls.append(("config_get",))
        return self.config

    def _changed(self, key: str, raw_value: str) -> tuple[StrategyConfig, Any, Any]:
        value = parse_raw_value(raw_value)
        try:
            new = self.config.with_value(key, value)
        except ConfigError as exc:
            raise InvalidConfig(str(exc), problems=exc.problems) from None
        old_data, new_data = self.config.to_dict(), new.to_dict()
        for part in key.split("."):
            old_data, new_data = old_data[part], new_data[part]
        return new, old_data, new_data

    async def config_preview(self, key: str, raw_value: str) -> ConfigPreview:
        self.calls.append(("config_preview", key, raw_value))
        new, old, value = self._changed(key, raw_value)
        return ConfigPreview(key, old, value, risk_table(self.config, self.balance), risk_table(new, self.balance))

    async def config_set(self, key: str, raw_value: str, actor: str) -> ConfigChange:
        self.calls.append(("config_set", key, raw_value, actor))
        new, old, value = self._changed(key, raw_value)
        risk = risk_table(new, self.balance)
        if not risk.ok:
            raise InvalidConfig("; ".join(risk.problems), problems=list(risk.problems))
        self.config = new
        self._overrides[key] = value
        self._save()
        change = ConfigChange(self.clock.now_ms(), actor, key, old, value)
        self.history.append(change)
        self.audit(actor, "config_set", before={key: old}, after={key: value})
        return change

    async def config_history(self, limit: int = 20) -> list[ConfigChange]:
        self.calls.append(("config_history", limit))
        return list(reversed(self.history))[:limit]

    async def stats(self) -> StatsView:
        self.calls.append(("stats",))
        now = self.clock.now_ms()
        day_start = now - now % 86_400_000

        def period(label: str, since: int) -> PeriodStats:
            trades = [t for t in self.closed if t.ts_ms >= since]
            return PeriodStats(
                label,
                len(trades),
                sum(1 for t in trades if t.pnl > 0),
                sum((t.pnl for t in trades), Decimal(0)),
                sum((t.fees for t in trades), Decimal(0)),
            )

        return StatsView(period("today", day_start), period("7d", now - 7 * 86_400_000), "UTC")

    async def why(self, symbol: str) -> SignalReport | None:
        self.calls.append(("why", symbol))
        self._known(symbol)
        return self.why_reports.get(symbol)

    async def risk(self) -> RiskTable:
        self.calls.append(("risk",))
        return risk_table(self.config, self.balance)

    async def report(self, days: int) -> Report:
        self.calls.append(("report", days))
        since = self.clock.now_ms() - days * 86_400_000
        trades = [t for t in self.closed if t.ts_ms >= since]
        summary = {
            "trades": len(trades),
            "realized_pnl": sum((t.pnl for t in trades), Decimal(0)),
            "fees": sum((t.fees for t in trades), Decimal(0)),
        }
        return Report(days, self.report_png, summary)

    def chat_locale(self, chat_id: int) -> str | None:
        return self._locales.get(chat_id)

    async def set_chat_locale(self, chat_id: int, locale: str, actor: str) -> None:
        self.calls.append(("set_chat_locale", chat_id, locale, actor))
        before = self._locales.get(chat_id)
        self._locales[chat_id] = locale
        self._save()
        self.audit(
            actor,
            "set_locale",
            before={"chat_id": chat_id, "locale": before},
            after={"chat_id": chat_id, "locale": locale},
        )

    def audit(self, actor: str, action: str, symbol: str | None = None, before: Any = None, after: Any = None) -> None:
        self.audit_rows.append(
            {
                "ts_ms": self.clock.now_ms(),
                "actor": actor,
                "action": action,
                "symbol": symbol,
                "before": before,
                "after": after,
            }
        )


__all__ = ["DEFAULT_SYMBOLS", "FakeService", "parse_raw_value", "risk_table", "tiny_png"]
