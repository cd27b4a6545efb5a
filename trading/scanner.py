"""Universe, 1h pre-filter and entry signal -> entry intents (SPEC 2-3).

A symbol is evaluated when its 1m candle closes, from the candle store (no
REST per scan). The last report of every symbol is kept for ``/why``.
Entries respect the paused flag, cooldowns, symbols already held,
``max_positions`` and ``max_margin_usage``, counting filled positions plus
entries already decided (the executor's reservations): a signal that passes
reserves its slot in the same turn of the loop, so several symbols signalling
at one close cannot together exceed the limits. The executor checks again,
with the real balance, under the symbol's lock.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from trading.candles import CandleStore
from trading.context import EngineContext
from trading.core import signals
from trading.core.decimals import decimal_of
from trading.core.delisting import universe_exclusion
from trading.core.models import Stage
from trading.core.reports import SignalReport
from trading.exchange.base import ExchangeError, Ticker24h
from trading.executor import Executor

log = logging.getLogger("surgedca.scanner")
HOUR_MS = 3_600_000


@dataclass
class ScanStats:
    """One 1m close across the universe."""

    minute_ms: int
    symbols: int = 0
    prefilter_passed: int = 0
    signals: int = 0
    entries: int = 0
    incomplete: int = 0  # skipped: their candles have a hole being repaired (or their history is loading)
    cpu_ms: float = 0.0
    finished_ms: int = 0


@dataclass
class Universe:
    symbols: list[str] = field(default_factory=list)
    refreshed_ms: int = 0

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._set

    def __post_init__(self) -> None:
        self._set = set(self.symbols)

    def replace(self, symbols: list[str], now_ms: int) -> None:
        self.symbols = symbols
        self._set = set(symbols)
        self.refreshed_ms = now_ms


class Scanner:
    def __init__(self, ctx: EngineContext, executor: Executor, candles: CandleStore) -> None:
        self.ctx = ctx
        self.executor = executor
        self.candles = candles
        self.universe = Universe()
        self.reports: dict[str, SignalReport] = {}
        self.current: ScanStats | None = None
        self.last: ScanStats | None = None
        self.signal_log: list[SignalReport] = []  # entry signals (the backtest writes them out)
        self.keep_signal_log = False
        self.excluded: dict[str, str] = {}  # symbol -> why it is kept out of the universe (last refresh)
        # Symbols skipped because their candles were incomplete, with the minute skipped: evaluated when the
        # repair completes if no newer minute has closed by then.
        self.waiting: dict[str, int] = {}
        candles.completion_listeners.append(self._on_candles_complete)

    # ------------------------------------------------------------------ universe
    async def refresh_universe(self) -> list[str]:
        """Top ``universe_size`` USDT perpetuals by 24h quote volume that are trading and not being delisted
        (``delist_guard_days``), minus the blacklist."""
        ctx = self.ctx
        try:
            tickers = await ctx.port.fetch_tickers_24h()
        except ExchangeError as exc:
            log.warning("universe refresh failed (%r); keeping %d symbols", exc, len(self.universe.symbols))
            return self.universe.symbols
        now = ctx.clock.now_ms()
        blacklist = set(ctx.cfg.symbol_blacklist)
        eligible = []
        excluded: dict[str, str] = {}
        for t in tickers:
            m = ctx.markets.get(t.symbol)
            if m is None or m.quote != "USDT" or t.symbol in blacklist:
                continue
            why = universe_exclusion(m, now, ctx.cfg)
            if why is not None:
                excluded[t.symbol] = why
                continue
            eligible.append(t)
        self._log_exclusions(excluded, tickers)
        eligible.sort(key=lambda t: t.quote_volume, reverse=True)
        chosen = [t.symbol for t in eligible[: ctx.cfg.universe_size]]
        changed = set(chosen) != set(self.universe.symbols)
        self.universe.replace(chosen, ctx.clock.now_ms())
        self.waiting = {s: m for s, m in self.waiting.items() if s in self.universe}
        log.log(
            logging.INFO if changed else logging.DEBUG,
            "universe: %d symbols (of %d eligible)",
            len(chosen),
            len(eligible),
        )
        return chosen

    def _log_exclusions(self, excluded: dict[str, str], tickers: list[Ticker24h]) -> None:
        """Delistings that would otherwise rank among the scanned symbols: once each, when they appear."""
        if not excluded:
            self.excluded = {}
            return
        volumes = sorted((t.quote_volume for t in tickers), reverse=True)
        cutoff = volumes[min(len(volumes), self.ctx.cfg.universe_size) - 1] if volumes else 0.0
        for t in tickers:
            why = excluded.get(t.symbol)
            if why is not None and self.excluded.get(t.symbol) != why and t.quote_volume >= cutoff:
                log.info("universe: %s left out (%s)", t.symbol, why)
        self.excluded = excluded

    # ------------------------------------------------------------------ evaluation
    def blocked(self, symbol: str) -> str | None:
        """In-memory checks only (this runs for every symbol at every minute)."""
        ctx = self.ctx
        if ctx.paused:
            return "paused"
        if ctx.stopping:
            return "stopping"
        if ctx.halted:
            return "halted"
        admission = self.executor.admission
        if symbol in ctx.book or admission.reserved(symbol):
            return "held"
        if len(ctx.book) + admission.count >= ctx.cfg.max_positions:
            return "max_positions"
        if ctx.in_cooldown(symbol):
            return "cooldown"
        if (why := ctx.block_reason(symbol)) is not None:
            return why
        wallet = ctx.account.wallet
        if wallet > 0:
            fractions = ctx.cfg.fractions  # made once per config: this runs every minute for every symbol
            usage, weight = fractions.max_margin_usage, fractions.weights[Stage.INITIAL]
            if ctx.book.margin_in_use() + admission.margin + wallet * weight > usage * wallet:
                return "max_margin_usage"
        return None

    def evaluate(self, symbol: str, minute_ms: int, *, full: bool = False) -> SignalReport | None:
        if symbol not in self.candles:
            return None
        if not full:
            # The 1h pre-filter first, on the 1h candles alone: most symbols stop here every minute, and
            # building all five timeframes for them would cost more than the pre-filter itself.
            h1 = self.candles.series(symbol, "1h")
            if len(h1) and h1.open_time[-1] <= minute_ms < h1.open_time[-1] + HOUR_MS:
                ok, pre = signals.evaluate_prefilter(h1, self.ctx.cfg.signals)
                if not ok:
                    report = SignalReport(
                        symbol=symbol, at_ms=minute_ms, prefilter=pre, price=self.candles.last_close(symbol)
                    )
                    self.reports[symbol] = report
                    return report
        frames = self.candles.frames(symbol)
        try:
            report = signals.evaluate(symbol, frames, self.ctx.cfg.signals, at_ms=minute_ms, full=full)
        except signals.SignalInputError as exc:
            log.debug("%s not evaluated: %s", symbol, exc)
            return None
        self.reports[symbol] = report
        return report

    async def on_minute_closed(self, symbol: str, minute_ms: int) -> None:
        """Called after the candle store has the closed 1m candle of ``symbol`` opened at ``minute_ms``."""
        stats = self._stats_for(minute_ms)
        if symbol not in self.universe or not self._scan_minute(minute_ms):
            return
        stats.symbols += 1
        if self.blocked(symbol):
            return
        why = self.candles.incomplete(symbol)
        if why is not None:
            # Never on a series with missing minutes: the rules could signal where the complete one would not.
            stats.incomplete += 1
            if symbol not in self.waiting:
                log.info("%s not evaluated at %d: %s; evaluated once its candles are complete", symbol, minute_ms, why)
            self.waiting[symbol] = minute_ms
            return
        if self.waiting.pop(symbol, None) is not None:
            log.info("%s evaluated again at %d: candles complete", symbol, minute_ms)
        await self._evaluate_minute(symbol, minute_ms, stats)

    def _on_candles_complete(self, symbol: str) -> None:
        """The repair of ``symbol`` finished: evaluate the minute it skipped, if that is still its newest one."""
        minute = self.waiting.pop(symbol, None)
        if minute is None:
            return
        if self.candles.last_open_time(symbol) != minute:
            return  # a newer minute has closed: its own evaluation follows
        log.info("%s candles repaired within the minute: evaluating %d now", symbol, minute)
        cur = self.current
        stats = cur if cur is not None and cur.minute_ms == minute else ScanStats(minute)
        self.executor.runner.spawn(self._evaluate_late(symbol, minute, stats))

    async def _evaluate_late(self, symbol: str, minute_ms: int, stats: ScanStats) -> None:
        if symbol in self.universe and not self.blocked(symbol) and self.candles.complete(symbol):
            await self._evaluate_minute(symbol, minute_ms, stats)

    async def _evaluate_minute(self, symbol: str, minute_ms: int, stats: ScanStats) -> None:
        t0 = time.perf_counter()
        report = self.evaluate(symbol, minute_ms)
        stats.cpu_ms += (time.perf_counter() - t0) * 1000
        if report is None:
            return
        if report.prefilter_ok:
            stats.prefilter_passed += 1
        if not report.entry:
            return
        stats.signals += 1
        if self.keep_signal_log:
            self.signal_log.append(report)
        log.info(
            "entry signal %s at %s (1m=%s 3m=%s)", symbol, report.price, report.strategy_1m_ok, report.strategy_3m_ok
        )
        price = decimal_of(report.price) if report.price is not None else None
        if price is None or not self.executor.admit(symbol):
            return
        stats.entries += 1  # admitted: the slot is reserved now; the executor logs the outcome
        await self.executor.runner.run(self.executor.enter(symbol, price))

    def _scan_minute(self, minute_ms: int) -> bool:
        """Evaluations happen at 1m closes (SPEC 1); ``scan_interval_s`` (whole minutes, at least one) says at
        which: with 300, the closes at :00, :05, :10... UTC."""
        every_ms = max(1, round(self.ctx.cfg.scan_interval_s / 60)) * 60_000
        return (minute_ms + 60_000) % every_ms == 0

    def _stats_for(self, minute_ms: int) -> ScanStats:
        cur = self.current
        if cur is None or cur.minute_ms != minute_ms:
            if cur is not None and cur.minute_ms < minute_ms:
                cur.finished_ms = self.ctx.clock.now_ms()
                self.last = cur
                log.debug(
                    "scan %d: %d symbols, %d pre-filtered, %d signals, %.1f ms",
                    cur.minute_ms,
                    cur.symbols,
                    cur.prefilter_passed,
                    cur.signals,
                    cur.cpu_ms,
                )
            cur = self.current = ScanStats(minute_ms)
        return cur

    def why(self, symbol: str) -> SignalReport | None:
        """Every condition at the newest closed minute (the scan itself stops after a failed pre-filter)."""
        last_open = self.candles.last_open_time(symbol) if symbol in self.candles else None
        if last_open is None:
            return self.reports.get(symbol)
        return self.evaluate(symbol, last_open, full=True) or self.reports.get(symbol)
