"""The service API the bot (and any other front end) calls: one path into the engine.

Handlers stay transport-agnostic: they get view values back and format them
themselves. Everything that changes state writes an audit row with the actor
(``system`` or ``tg:<user id>``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from trading.book import BookEntry
from trading.charts.renderer import ChartError, ChartRenderer
from trading.clock import Clock
from trading.core.chart import (
    CHART_INTERVALS,
    DEFAULT_INTERVAL,
    MAX_BARS,
    ChartLabels,
    ChartRequest,
    FillPoint,
    lookback_bars,
    position_lines,
)
from trading.core.config import ConfigError, StrategyConfig
from trading.core.reports import RiskTable, SignalReport
from trading.core.risk import risk_table, validate_strategy
from trading.core.series import OHLCV
from trading.core.symbols import normalize_symbol
from trading.engine import Engine
from trading.events import EngineEvent, ErrorEvent, Notifier, OrderRefused
from trading.exchange.base import ExchangeError
from trading.strategy import normalize_key, parse_value, validate_full
from trading.views import (
    AdoptionResult,
    BlockList,
    BlockResult,
    ChartProblem,
    ChartUnavailable,
    ChartView,
    ConfigChange,
    ConfigPreview,
    CooldownView,
    ExchangeUnavailable,
    ExitPreview,
    ExitResult,
    HealthView,
    InvalidBlock,
    InvalidConfig,
    LegView,
    LinkHealth,
    NoPosition,
    NotManaged,
    NotManagedView,
    PeriodStats,
    PositionView,
    Report,
    ServiceError,
    StatsView,
    StreamHealth,
    SyncReport,
    TimedBlock,
    TradingRefused,
    UnblockResult,
    UnknownSymbol,
)

log = logging.getLogger("surgedca.api")
RISK_BALANCE_FALLBACK = Decimal(1000)
CHART_TIMEOUT_S = 10.0  # /chart: the worker's first start (a process importing matplotlib) included
ALERT_CHART_TIMEOUT_S = 3.0  # an alert never waits longer for its chart: it goes as text instead (bot.notifier too)
MAX_BLOCK_HOURS = 24 * 365
BLACKLIST_KEY = "symbol_blacklist"


class StoppingError(ServiceError):
    """Refused because the service is shutting down (additive to ``trading.views``' error codes; the event that
    announces the stop is ``trading.events.ServiceStopping``)."""

    code = "service_stopping"


class CountingNotifier:
    """Passes events on and remembers when errors happened (``/health``: errors in the last hour)."""

    def __init__(
        self, inner: Notifier, clock_ms: Callable[[], int], taps: tuple[Callable[[EngineEvent], None], ...] = ()
    ) -> None:
        self.inner = inner
        self._clock_ms = clock_ms
        self._errors: deque[int] = deque(maxlen=10_000)
        self._taps = taps  # extra observers (tests, metrics); never allowed to break publishing

    def publish(self, event: EngineEvent) -> None:
        if isinstance(event, ErrorEvent | OrderRefused):
            self._errors.append(self._clock_ms())
        for tap in self._taps:
            try:
                tap(event)
            except Exception:
                log.exception("event tap failed")
        self.inner.publish(event)

    def errors_since(self, since_ms: int) -> int:
        while self._errors and self._errors[0] < since_ms:
            self._errors.popleft()
        return len(self._errors)


class ServiceApi:
    """Implements ``trading.views.ServiceAPI`` over a running ``Engine``."""

    def __init__(
        self,
        engine: Engine,
        *,
        mode: str,
        errors: CountingNotifier | None = None,
        stream_age: Callable[[], float | None] | None = None,
        on_config_applied: Callable[[StrategyConfig, StrategyConfig], None] | None = None,
        charts: ChartRenderer | None = None,
        telegram: Callable[[], LinkHealth] | None = None,
    ) -> None:
        self.engine = engine
        self.ctx = engine.ctx
        self.mode = mode
        self.started_ms = self.ctx.clock.now_ms()
        self._started_mono = time.monotonic()
        self._errors = errors
        self._stream_age = stream_age
        self._on_config_applied = on_config_applied
        self.charts = charts or ChartRenderer()  # the worker starts on the first chart
        self._telegram = telegram  # the bot's link to Telegram (None: headless)

    # ------------------------------------------------------------------ helpers
    @property
    def clock(self) -> Clock:
        """The engine's clock (the exchange's time in live mode): front ends show ages and times on it."""
        return self.ctx.clock

    @property
    def paused(self) -> bool:
        return self.ctx.paused

    def _symbol(self, raw: str) -> str:
        symbol = normalize_symbol(raw)
        if not symbol or symbol not in self.ctx.markets:
            raise UnknownSymbol(symbol=symbol or raw)
        return symbol

    def _not_stopping(self) -> None:
        """At SIGINT/SIGTERM no new orders or corrections are started (one already sent is carried through)."""
        if self.ctx.stopping:
            raise StoppingError("the service is stopping: nothing was done")

    def _entry(self, raw: str) -> BookEntry:
        symbol = self._symbol(raw)
        entry = self.ctx.book.get(symbol)
        if entry is None:
            raise NoPosition(symbol=symbol)
        return entry

    def _view(self, e: BookEntry) -> PositionView:
        cfg = self.ctx.cfg
        t = e.triggers
        state = e.state
        last = e.last_price
        avg = state.avg_price
        upnl = (last - avg) * state.qty if last is not None else None
        pct = (last - avg) / avg if last is not None and avg > 0 else None
        next_stage = next_price = None
        if t is not None:
            for stage in ("first_dca", "second_dca"):
                if stage in t.extra:
                    next_stage, next_price = stage, t.extra[stage]
        return PositionView(
            position_id=e.position_id,
            symbol=state.symbol,
            stage=state.stage.value,
            qty=state.qty,
            avg_price=avg,
            last_price=last,
            unrealized_pnl=upnl,
            unrealized_pct=pct,
            margin=e.margin,
            next_dca_stage=next_stage,
            next_dca_price=next_price,
            stop_price=t.stop if t is not None else avg * (1 + cfg.stop_for(state.stage)),
            backstop_price=e.backstop_price if e.backstop_client_id else None,
            half_taken=state.half_taken,
            trailing_stop=t.trailing if t is not None else None,
            opened_at_ms=e.opened_at_ms,
            origin=e.origin,
            legs=tuple(LegView(leg.stage.value, leg.price, leg.qty) for leg in state.legs),
            funding=e.funding,
        )

    # ------------------------------------------------------------------ views
    async def positions(self) -> list[PositionView]:
        return [self._view(e) for e in sorted(self.ctx.book.entries(), key=lambda e: e.opened_at_ms)]

    async def position(self, symbol: str) -> PositionView:
        return self._view(self._entry(symbol))

    async def health(self) -> HealthView:
        ctx, eng = self.ctx, self.engine
        now = ctx.clock.now_ms()
        streams = []
        for name, (up, _since) in sorted(eng.stream_state.items()):
            streams.append(
                StreamHealth(name, up, self._stream_age() if self._stream_age and name.startswith("market") else None)
            )
        if not streams and self._stream_age is not None:
            streams.append(StreamHealth("market", True, self._stream_age()))
        rec = eng.reconciler.last
        scan = eng.scanner.last
        summary = "-"
        if rec is not None:
            summary = rec.error or (f"{len(rec.items)} finding(s)" if rec.items else "clean")
        backup_ms = ctx.store.state.get("last_backup_ms")
        return HealthView(
            mode=self.mode,
            started_at_ms=self.started_ms,
            uptime_s=time.monotonic() - self._started_mono,
            streams=tuple(streams),
            rest_weight_1m=ctx.port.used_weight(),
            last_reconcile_ms=rec.at_ms if rec else None,
            last_reconcile_summary=summary,
            last_scan_ms=scan.finished_ms if scan else None,
            last_scan_duration_ms=scan.cpu_ms if scan else None,
            last_scan_symbols=scan.symbols if scan else 0,
            last_scan_signals=scan.signals if scan else 0,
            db_size_bytes=ctx.store.db.size_bytes(),
            last_backup_ms=int(backup_ms) if backup_ms else None,
            balance=ctx.account.wallet if ctx.account.updated_ms else None,
            margin_in_use=ctx.book.margin_in_use(),
            open_positions=len(ctx.book),
            paused=ctx.paused,
            errors_last_hour=self._errors.errors_since(now - 3_600_000) if self._errors else 0,
            telegram=self._telegram() if self._telegram is not None else None,
            halted=ctx.halt_reason,
            account=eng.reconciler.account.health(),
        )

    # ------------------------------------------------------------------ actions
    async def sync(self, actor: str) -> SyncReport:
        self._not_stopping()
        return await self.engine.reconciler.run(actor=actor)

    async def exit_preview(self, symbol: str) -> ExitPreview:
        e = self._entry(symbol)
        last = e.last_price
        est = None
        if last is not None:
            fee = last * e.state.qty * self.ctx.cfg.fractions.taker_fee
            est = (last - e.state.avg_price) * e.state.qty - fee
        return ExitPreview(
            e.position_id, e.state.symbol, e.state.stage.value, e.state.qty, e.state.avg_price, last, est
        )

    async def exit(self, symbol: str, actor: str) -> ExitResult:
        self._not_stopping()
        e = self._entry(symbol)
        refusal = self.engine.reconciler.account.refusal
        if refusal is not None:  # e.g. hedge mode: the exchange would refuse the sell (-4061)
            raise TradingRefused(reason=refusal)
        sym = e.state.symbol
        self.ctx.store.audit.add(
            actor, "exit_requested", symbol=sym, before={"qty": e.state.qty}, ts_ms=self.ctx.clock.now_ms()
        )
        try:
            facts, pnl = await self.engine.executor.exit_position(sym, actor)
        except ExchangeError as exc:
            raise ExchangeUnavailable(detail=str(exc)) from exc
        if facts is None:
            still = self.ctx.book.get(sym)
            if still is None:
                return ExitResult(sym, False, None, Decimal(0), None, "already closed")
            return ExitResult(sym, False, None, Decimal(0), None, "the exchange did not fill the order (see alerts)")
        return ExitResult(sym, True, facts.price, facts.qty, pnl)

    async def pause(self, actor: str) -> bool:
        return self._set_paused(True, actor)

    async def resume(self, actor: str) -> bool:
        return self._set_paused(False, actor)

    def _set_paused(self, value: bool, actor: str) -> bool:
        ctx = self.ctx
        if ctx.paused == value:
            return False
        with ctx.store.db.transaction():
            ctx.store.state.set("paused", value)
            ctx.store.audit.add(
                actor,
                "pause" if value else "resume",
                before={"paused": not value},
                after={"paused": value},
                ts_ms=ctx.clock.now_ms(),
            )
        ctx.paused = value
        return True

    # ------------------------------------------------------------------ adoption (adopt_positions)
    async def not_managed(self) -> list[NotManagedView]:
        """Longs on the exchange the service does not manage (never touched until adopted)."""
        return self.engine.reconciler.adoptions.not_managed()

    async def not_managed_one(self, symbol: str) -> NotManagedView:
        sym = self._symbol(symbol)
        for view in self.engine.reconciler.adoptions.not_managed():
            if view.symbol == sym:
                return view
        raise NotManaged(symbol=sym)

    async def answer_adoption(self, token: str, adopt: bool, actor: str) -> AdoptionResult:
        """The Adopt / Ignore buttons of an adoption question: the first answer counts."""
        self._not_stopping()
        return await self.engine.reconciler.adoptions.answer(token, adopt, actor)

    async def adopt(self, symbol: str, actor: str) -> AdoptionResult:
        """Adopt a long listed as not managed (``/positions``' Adopt button, after its confirmation)."""
        self._not_stopping()
        sym = self._symbol(symbol)
        row = self.engine.reconciler.adoptions.live_question(sym)
        if row is None:
            raise NotManaged(symbol=sym)
        return await self.engine.reconciler.adoptions.adopt(row, actor)

    # ------------------------------------------------------------------ config
    async def config_get(self) -> StrategyConfig:
        return self.ctx.cfg

    def _risk_balance(self) -> Decimal:
        w = self.ctx.account.wallet
        return w if w > 0 else RISK_BALANCE_FALLBACK

    def _candidate(self, key: str, raw_value: str) -> tuple[str, Any, Any, StrategyConfig]:
        key = normalize_key(key)
        cfg = self.ctx.cfg
        try:
            value = parse_value(key, raw_value)
            new_cfg = cfg.with_value(key, value)
        except ConfigError as exc:
            raise InvalidConfig(str(exc), problems=exc.problems) from None
        problems = validate_full(new_cfg)
        if problems:
            problems = self._at_this_balance(new_cfg, problems)
            raise InvalidConfig("; ".join(problems), problems=problems)
        old = _lookup(cfg.to_dict(), key)
        new = _lookup(new_cfg.to_dict(), key)
        return key, old, new, new_cfg

    def _at_this_balance(self, cfg: StrategyConfig, problems: list[str]) -> list[str]:
        """Risk is validated at a 1,000 USDT reference balance (the verdict does not depend on it); the refusal
        quotes the USDT figures at this account's balance, so they match the preview and /risk."""
        reference = set(validate_strategy(cfg))
        if not reference:
            return problems
        try:
            here = list(risk_table(cfg, self._risk_balance()).problems)
        except (ValueError, ArithmeticError):
            return problems
        if not here:  # a tier boundary can differ between balances: keep the reference verdict
            return problems
        return [p for p in problems if p not in reference] + here

    async def config_preview(self, key: str, raw_value: str) -> ConfigPreview:
        key, old, new, new_cfg = self._candidate(key, raw_value)
        bal = self._risk_balance()
        return ConfigPreview(key, old, new, risk_table(self.ctx.cfg, bal), risk_table(new_cfg, bal))

    async def config_set(self, key: str, raw_value: str, actor: str) -> ConfigChange:
        self._not_stopping()
        key, old, new, new_cfg = self._candidate(key, raw_value)
        now = self.ctx.clock.now_ms()
        with self.ctx.store.db.transaction():
            self.ctx.store.config.set(key, old, new, actor, now)  # override + history + audit
        self._apply_config(new_cfg)
        log.info("config %s: %r -> %r by %s", key, old, new, actor)
        return ConfigChange(now, actor, key, old, new)

    def _apply_config(self, new_cfg: StrategyConfig) -> None:
        """A committed config change, made effective everywhere."""
        ctx = self.ctx
        previous = ctx.cfg
        ctx.cfg = new_cfg
        ctx.book.retrigger_all(new_cfg)
        if self._on_config_applied is not None:
            self._on_config_applied(previous, new_cfg)

    async def config_history(self, limit: int = 20) -> list[ConfigChange]:
        return [ConfigChange(r.ts_ms, r.actor, r.key, r.old, r.new) for r in self.ctx.store.config.history(limit)]

    # ------------------------------------------------------------------ reports
    async def stats(self) -> StatsView:
        ctx = self.ctx
        tz = ZoneInfo(ctx.cfg.report_timezone)
        today = datetime.fromtimestamp(ctx.clock.now_ms() / 1000, tz=UTC).astimezone(tz).date()
        first = today - timedelta(days=6)
        d = ctx.store.daily.summary(today.isoformat(), today.isoformat())
        w = ctx.store.daily.summary(first.isoformat(), today.isoformat())
        return StatsView(
            PeriodStats("today", d.trades, d.wins, d.realized_pnl, d.fees, d.funding),
            PeriodStats("7d", w.trades, w.wins, w.realized_pnl, w.fees, w.funding),
            ctx.cfg.report_timezone,
        )

    async def why(self, symbol: str) -> SignalReport | None:
        return self.engine.scanner.why(self._symbol(symbol))

    async def risk(self) -> RiskTable:
        return risk_table(self.ctx.cfg, self._risk_balance())

    async def report(self, days: int) -> Report:
        from trading.reporting import live_report, live_report_at

        days = max(1, min(int(days), 365))
        path = self.ctx.store.db.path
        if str(path) == ":memory:":  # a backtest's store: no file another connection could read
            return live_report(self.ctx.store, self.ctx.clock.now_ms(), days)
        # Reading a year of minutes and drawing it takes seconds: a worker thread with its own read
        # connection, never the trading loop.
        return await asyncio.to_thread(live_report_at, path, self.ctx.clock.now_ms(), days)

    # ------------------------------------------------------------------ charts
    async def chart(
        self,
        symbol: str,
        interval: str = DEFAULT_INTERVAL,
        *,
        labels: Sequence[ChartLabels] = (ChartLabels(),),
        position_id: int | None = None,
        timeout_s: float = CHART_TIMEOUT_S,
    ) -> ChartView:
        """The candles of ``symbol`` with the strategy's averages and band; for a held symbol (or the closed position
        ``position_id``) its fills and the ladder's prices, else the entry conditions. Gathered here, on the loop
        (a copy of a few hundred candles, one indexed read of the fills); drawn by the chart worker."""
        sym = self._symbol(symbol)
        if interval not in CHART_INTERVALS:
            raise ChartUnavailable(symbol=sym, reason=ChartProblem.INTERVAL)
        candles = self.engine.candles
        minute = candles.last_open_time(sym) if sym in candles else None
        if minute is None or not len(candles.series(sym, interval)):
            raise ChartUnavailable(symbol=sym, reason=ChartProblem.NO_CANDLES)
        entry = self.ctx.book.get(sym)
        if entry is not None and position_id is not None and entry.position_id != position_id:
            entry = None  # the alert is about an earlier position of this symbol
        pid = entry.position_id if entry is not None else position_id
        fills = self.ctx.store.fills.for_position(pid) if pid is not None else []
        label_sets = tuple(labels) or (ChartLabels(),)
        key = (sym, interval, minute, pid, entry.version if entry else None, len(fills), label_sets)
        signal: SignalReport | None = None

        def build() -> ChartRequest:
            nonlocal signal
            if pid is None:
                signal = self.engine.scanner.why(sym)  # every condition at the newest close, as /why shows it
            cfg = self.ctx.cfg
            series = candles.series(sym, interval).tail(MAX_BARS + lookback_bars(cfg.signals))
            last = entry.last_price if entry is not None else None
            return ChartRequest(
                symbol=sym,
                interval=interval,
                candles=_copy(series),
                params=cfg.signals,
                lines=position_lines(entry.state, cfg, backstop=_resting(entry)) if entry is not None else (),
                fills=tuple(_fill_point(f) for f in fills),
                signal=signal,
                held=pid is not None,
                last_price=float(last) if last is not None else candles.last_close(sym),
                labels=label_sets,
                timezone=cfg.report_timezone,
            )

        try:
            result = await self.charts.render(key, build, timeout_s=timeout_s)
        except ChartError as exc:
            log.warning("chart of %s %s: %s", sym, interval, exc)
            raise ChartUnavailable(symbol=sym, reason=ChartProblem.FAILED) from exc
        if pid is None and signal is None:  # from the cache: the report evaluated for it is the scanner's last
            signal = self.engine.scanner.reports.get(sym)
        return ChartView(
            symbol=sym,
            interval=interval,
            png=result.png,
            candle_ms=int(candles.series(sym, interval).open_time[-1]),
            position=self._view(entry) if entry is not None else None,
            signal=signal,
            render_ms=result.render_ms,
            cached=result.cached,
        )

    async def alert_chart(self, symbol: str, position_id: int, labels: Sequence[ChartLabels]) -> bytes | None:
        """The chart a trade alert carries (``alert_charts``), or None: disabled, or not drawn within
        ``ALERT_CHART_TIMEOUT_S`` (the alert then goes as text; a late chart still lands in the cache)."""
        if not self.ctx.cfg.alert_charts or self.ctx.stopping:
            return None
        try:
            view = await self.chart(symbol, labels=labels, position_id=position_id, timeout_s=ALERT_CHART_TIMEOUT_S)
        except ServiceError as exc:
            log.info("alert for %s goes without its chart: %s", symbol, exc.params.get("reason", exc))
            return None
        return view.png

    # ------------------------------------------------------------------ blocks
    async def blocked(self) -> BlockList:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        timed = tuple(TimedBlock(b.symbol, b.until_ms, b.actor, b.created_at_ms) for b in ctx.store.blocks.active(now))
        cooldowns = tuple(CooldownView(c.symbol, c.until_ms, c.reason) for c in ctx.store.cooldowns.active_details(now))
        return BlockList(tuple(ctx.cfg.symbol_blacklist), timed, cooldowns, tuple(sorted(ctx.book.symbols())))

    async def block(self, symbol: str, hours: float | None, actor: str) -> BlockResult:
        """No new entries on ``symbol``: for ``hours`` (a timed block, ends by itself), or permanently (added to
        the ``symbol_blacklist`` key, as ``/config set`` would: override, history, audit). Positions held go on
        (DCA, exits)."""
        self._not_stopping()
        sym = self._symbol(symbol)
        if hours is not None and not (0 < hours <= MAX_BLOCK_HOURS):
            raise InvalidBlock(hours=hours, max_hours=MAX_BLOCK_HOURS)
        ctx = self.ctx
        now = ctx.clock.now_ms()
        previous = self._timed_block(sym, now)
        held = sym in ctx.book
        if sym in ctx.cfg.symbol_blacklist:
            return BlockResult(sym, None, previous, already_permanent=True, held=held, changed=False)
        before = {"until_ms": previous}
        if hours is None:
            key, old, new, new_cfg = self._candidate(BLACKLIST_KEY, ",".join([*ctx.cfg.symbol_blacklist, sym]))
            with ctx.store.db.transaction():
                ctx.store.config.set(key, old, new, actor, now)
                ctx.store.blocks.clear(sym)  # the permanent block replaces a timed one
                ctx.store.audit.add(actor, "block", symbol=sym, before=before, after={"permanent": True}, ts_ms=now)
            ctx.blocks.pop(sym, None)
            self._apply_config(new_cfg)
            until = None
        else:
            until = now + round(hours * 3_600_000)
            with ctx.store.db.transaction():
                ctx.store.blocks.set(sym, until, actor, now)
                ctx.store.audit.add(actor, "block", symbol=sym, before=before, after={"until_ms": until}, ts_ms=now)
            ctx.blocks[sym] = until
        log.info("%s blocked %s by %s", sym, "permanently" if until is None else f"until {until}", actor)
        return BlockResult(sym, until, previous, already_permanent=False, held=held, changed=True)

    async def unblock(self, symbol: str, actor: str) -> UnblockResult:
        """Lift the permanent and the timed block of ``symbol`` (the strategy's cooldown, if any, still runs)."""
        self._not_stopping()
        sym = self._symbol(symbol)
        ctx = self.ctx
        now = ctx.clock.now_ms()
        permanent = sym in ctx.cfg.symbol_blacklist
        timed = self._timed_block(sym, now)
        cooldown = ctx.cooldowns.get(sym)
        cooldown = cooldown if cooldown is not None and cooldown > now else None
        if not permanent and timed is None:
            return UnblockResult(sym, False, None, cooldown, changed=False)
        new_cfg = None
        with ctx.store.db.transaction():
            if permanent:
                rest = [s for s in ctx.cfg.symbol_blacklist if s != sym]
                key, old, new, new_cfg = self._candidate(BLACKLIST_KEY, ",".join(rest) or "none")
                ctx.store.config.set(key, old, new, actor, now)
            ctx.store.blocks.clear(sym)
            ctx.store.audit.add(
                actor, "unblock", symbol=sym, before={"permanent": permanent, "until_ms": timed}, after=None, ts_ms=now
            )
        ctx.blocks.pop(sym, None)
        if new_cfg is not None:
            self._apply_config(new_cfg)
        log.info("%s unblocked by %s", sym, actor)
        return UnblockResult(sym, permanent, timed, cooldown, changed=True)

    def _timed_block(self, symbol: str, now_ms: int) -> int | None:
        until = self.ctx.blocks.get(symbol)
        return until if until is not None and until > now_ms else None

    # ------------------------------------------------------------------ chat settings and audit
    def chat_locale(self, chat_id: int) -> str | None:
        value = self.ctx.store.state.get(f"chat_locale:{chat_id}")
        return str(value) if value else None

    async def set_chat_locale(self, chat_id: int, locale: str, actor: str) -> None:
        ctx = self.ctx
        with ctx.store.db.transaction():
            before = ctx.store.state.get(f"chat_locale:{chat_id}")
            ctx.store.state.set(f"chat_locale:{chat_id}", locale)
            ctx.store.audit.add(
                actor,
                "set_locale",
                before={"chat_id": chat_id, "locale": before},
                after={"chat_id": chat_id, "locale": locale},
                ts_ms=ctx.clock.now_ms(),
            )

    def audit(self, actor: str, action: str, symbol: str | None = None, before: Any = None, after: Any = None) -> None:
        self.ctx.store.audit.add(
            actor, action, symbol=symbol, before=before, after=after, ts_ms=self.ctx.clock.now_ms()
        )


def _copy(series: OHLCV) -> OHLCV:
    """The candle store's arrays are views updated in place: the worker gets its own copy."""
    return OHLCV(
        *(np.array(a) for a in (series.open_time, series.open, series.high, series.low, series.close, series.volume))
    )


def _resting(entry: BookEntry) -> Decimal | None:
    return entry.backstop_price if entry.backstop_client_id else None


def _fill_point(f: Any) -> FillPoint:
    return FillPoint(f.client_order_id, f.side, float(f.price), float(f.qty), f.ts_ms, f.stage, f.reason)


def _lookup(data: dict[str, Any], key: str) -> Any:
    cur: Any = data
    for part in key.split("."):
        cur = cur[part]
    return cur
