"""``surgedca run``: one asyncio loop holding streams, engine, scheduler, alerts and the bot.

Start-up: single-instance lock -> database (integrity + migrations) ->
effective strategy config (file + persisted overrides) -> exchange bundle of
the trading mode -> engine start (markets, book, rule 3 + reconcile,
universe) -> candle backfill -> subscriptions -> tasks. SIGINT/SIGTERM:
no new orders, in-flight ones resolved, backstops left resting, sockets and
sessions closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from storage.backup import backup
from storage.db import Database
from storage.errors import AlreadyRunning, StorageError
from storage.lock import InstanceLock
from storage.permissions import private_umask, secure_files
from trading.api import CountingNotifier, ServiceApi
from trading.binding import check_binding, refuse_legacy_default
from trading.candles import CandleKeeper, CandleStore, capacities_for, history_needed
from trading.clock import ExchangeClock
from trading.context import EngineContext
from trading.core.config import ConfigError, StrategyConfig
from trading.engine import Engine
from trading.events import EngineEvent, ErrorEvent, ServiceStarted, ServiceStopping
from trading.exchange.base import ExchangeBundle, ExchangeError
from trading.exchange.ratelimit import budget_of
from trading.settings import Settings, StartupError
from trading.store import Store
from trading.strategy import load_strategy, validate_full

log = logging.getLogger("surgedca.service")

HEALTH_KEY = "health"
STOP_GRACE_S = 15.0  # order work in flight at a stop, then a reconcile the scheduler had started: each at most this
BOT_STOP_GRACE_S = 10.0  # bot.app.STOP_GRACE_S: Telegram updates being handled (a confirmed /exit) may finish
ALERTS_STOP_GRACE_S = 5.0  # the last alerts
# The longest orderly stop after SIGTERM (plus closing sockets): a container manager must wait longer than this
# before it kills the process (compose.yaml's stop_grace_period; `docker run --stop-timeout`).
SHUTDOWN_BUDGET_S = 2 * STOP_GRACE_S + BOT_STOP_GRACE_S + ALERTS_STOP_GRACE_S


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level, logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("aiogram.event", "apscheduler", "websockets", "ccxt"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def effective_config(settings: Settings, store: Store) -> StrategyConfig:
    """The strategy file (or SPEC defaults) with the overrides made from Telegram on top."""
    cfg = load_strategy(settings.strategy_file)
    for key, value in sorted(store.config.overrides().items()):
        try:
            candidate = cfg.with_value(key, value)
        except ConfigError as exc:
            log.error("ignoring persisted override %s=%r: %s", key, value, exc)
            continue
        problems = validate_full(candidate)
        if problems:
            log.error("ignoring persisted override %s=%r: %s", key, value, "; ".join(problems))
            continue
        cfg = candidate
    return cfg


def run_service(settings: Settings) -> int:
    setup_logging(settings.log_level)
    private_umask()  # the database, its WAL, backups and the lock: the owner's only
    try:
        refuse_legacy_default(settings)  # before the lock file appears beside a database that should not exist
        lock = InstanceLock.acquire(settings.db_path)
    except AlreadyRunning as exc:
        print(f"surgedca: {exc}", file=sys.stderr)
        return 3
    except StartupError as exc:
        print(f"surgedca: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(Service(settings).run())
    except (StorageError, ConfigError, StartupError) as exc:
        print(f"surgedca: {exc}", file=sys.stderr)
        return 2
    finally:
        lock.release()


class Service:
    def __init__(self, settings: Settings, *, event_taps: tuple[Callable[[EngineEvent], None], ...] = ()) -> None:
        self.settings = settings
        self.event_taps = event_taps
        self.stop_event = asyncio.Event()
        self.tasks: list[asyncio.Task[Any]] = []
        self.db: Database | None = None
        self.bundle: ExchangeBundle | None = None
        self.engine: Engine | None = None
        self.api: ServiceApi | None = None
        self.alerts: Any = None
        self.scheduler: Any = None
        self.bot: Any = None
        self.telegram_sink: Any = None
        self.dispatcher: Any = None
        self._resubscribe_pending = False
        self._stop_reason = "stop requested"
        self.bot_task: asyncio.Task[Any] | None = None
        self.telegram_link: Any = None

    # ------------------------------------------------------------------ lifecycle
    async def run(self, *, install_signals: bool = True) -> int:
        loop = asyncio.get_running_loop()
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_stop, sig.name)
        try:
            await self.start()
        except (ExchangeError, OSError) as exc:
            log.error("start-up failed: %s", exc)
            await self.shutdown("start-up failed")
            return 1
        except BaseException:  # a refusal (StartupError...) reaches the operator; what was opened is closed first
            await self.shutdown("start-up refused")
            raise
        await self.stop_event.wait()
        await self.shutdown(self._stop_reason)
        return 0

    def request_stop(self, reason: str = "stop requested") -> None:
        self._stop_reason = reason
        self.stop_event.set()

    async def start(self) -> None:
        s = self.settings
        refuse_legacy_default(s)
        secure_files(s.db_path, s.backup_dir)  # files an older version left readable by others
        self.db = Database.open(s.db_path, backup_dir=s.backup_dir)
        # Whose database this is, before anything is read from or sent to the exchange.
        check_binding(self.db, s, int(time.time() * 1000))
        if not s.headless:
            await self._check_telegram()  # a token Telegram rejects: refused before trading starts
        # WAL checkpoints on a background thread: never inside an order's journal insert.
        self.db.start_checkpointer()
        store = Store.of(self.db)
        cfg = effective_config(s, store)
        self.bundle = await build_bundle(s, self.db, taker_fee=cfg.taker_fee)
        clock = self.bundle.clock
        if isinstance(clock, ExchangeClock):
            offset = await clock.sync(self.bundle.port.server_time)
            if abs(offset) > 1000:
                log.warning("this machine's clock is %+.1f s off the exchange's; using the exchange's", offset / 1000)
        self.alerts = await self._start_alerts(clock)
        counting = CountingNotifier(self.alerts, clock.now_ms, self.event_taps)
        ctx = EngineContext(
            cfg=cfg,
            store=store,
            port=self.bundle.port,
            clock=clock,
            notifier=counting,
            mode=s.trading_mode,
        )
        need = history_needed(cfg.signals)
        candles = CandleStore(capacities_for(need))
        # Live and paper: the keeper draws from the adapter's weight budget. The simulated exchange has none and
        # spends no request weight: no pacing there (it would wait on simulated minutes).
        budget = budget_of(self.bundle.port)
        keeper = CandleKeeper(candles, self.bundle.port, need=need, clock=clock, budget=budget, limit_per_minute=10**9)
        engine = self.engine = Engine(ctx, candles, keeper)
        # adopt_positions = "ask" needs someone to ask: headless, an unknown long is left alone (as with "none").
        engine.reconciler.adoptions.interactive = not s.headless
        self.api = ServiceApi(
            engine,
            mode=s.trading_mode,
            errors=counting,
            stream_age=self.bundle.market.last_message_age,
            on_config_applied=self._config_applied,
            telegram=self.telegram_link.health if self.telegram_link is not None else None,
        )
        if self.telegram_sink is not None:
            self.telegram_sink.chart_source = self.api.alert_chart  # trade alerts carry charts (alert_charts)
        if cfg.alert_charts and not s.headless:
            self.api.charts.warm()  # the first alert's chart must not wait for the worker to start
        await engine.start()
        watched = engine.watched_symbols()
        log.info("backfilling candles of %d symbols", len(watched))
        result = await keeper.backfill(watched, clock.now_ms())
        if result.failed:
            log.warning("backfill failed for %d symbols (retried in the background)", len(result.failed))
        ctx.book.listeners.append(self._resubscribe_soon)
        engine.universe_hooks.append(self._resubscribe_soon)
        engine.minute_hooks.append(self._each_minute)
        # Consumers first (a stream's first "up" status goes to whoever listens), then subscriptions.
        self.tasks = [
            asyncio.create_task(self._pump_market(), name="market-pump"),
            asyncio.create_task(self._pump_user(), name="user-pump"),
            asyncio.create_task(engine.monitor.fallback_loop(), name="rest-fallback"),
        ]
        await asyncio.sleep(0)
        await self.bundle.market.set_symbols(watched, engine.held_symbols())
        self._start_scheduler()
        await self._write_health()
        if not s.headless:
            await self._start_bot()
        # Everything built so far (markets, candles, modules) lives for the whole run: keep it out of the
        # garbage collector's scans, so a collection never stalls a price update on the hot path for long.
        gc.collect()
        gc.freeze()
        ctx.notify(
            ServiceStarted(
                ts_ms=clock.now_ms(),
                mode=s.trading_mode,
                details={
                    "positions": str(len(ctx.book)),
                    "universe": str(len(watched)),
                    "paused": "yes" if ctx.paused else "no",
                },
            )
        )
        log.info(
            "SurgeDCA running: mode=%s, %d positions, %d symbols watched%s",
            s.trading_mode,
            len(ctx.book),
            len(watched),
            "" if s.headless else ", Telegram bot on",
        )

    async def shutdown(self, reason: str) -> None:
        log.info("stopping: %s", reason)
        engine = self.engine
        if engine is not None:
            ctx = engine.ctx
            ctx.stopping = True
            ctx.notify(ServiceStopping(ts_ms=ctx.clock.now_ms(), reason=reason))
            if not await engine.runner.drain(STOP_GRACE_S):
                log.warning("some order work was still running at stop; rule 3 resolves it at the next start")
            engine.executor.ledger.persist_peaks()
            await self._write_health(stopping=True)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            if engine is not None:
                # a reconcile the scheduler started is allowed to finish (it holds the symbols' locks)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(STOP_GRACE_S), engine.reconciler.busy():
                        pass
        if self.dispatcher is not None and self.bot is not None:
            from bot.app import stop_bot

            with contextlib.suppress(Exception):  # polling stops, updates in hand finish, the audit tally is written
                await stop_bot(self.bot, self.dispatcher, close_session=False)  # alerts still use the session
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.bot_task is not None:
            self.bot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.bot_task
        if engine is not None and engine.keeper is not None:
            with contextlib.suppress(Exception):
                await engine.keeper.close()
        if self.alerts is not None:
            with contextlib.suppress(Exception):
                await self.alerts.stop(grace_s=ALERTS_STOP_GRACE_S)
        if self.api is not None:
            self.api.charts.close()
        if self.bot is not None:
            with contextlib.suppress(Exception):
                await self.bot.session.close()
        if self.bundle is not None:
            with contextlib.suppress(Exception):
                await self.bundle.close()
        if self.db is not None:
            self.db.close()
        log.info("stopped")

    # ------------------------------------------------------------------ event pumps
    async def _pump_market(self) -> None:
        assert self.bundle is not None and self.engine is not None
        engine = self.engine
        async for ev in self.bundle.market.events():
            try:
                await engine.on_market_event(ev)
            except Exception as exc:  # one bad event must not stop the stops
                log.exception("market event failed: %r", ev)
                engine.ctx.notify(ErrorEvent(ts_ms=engine.ctx.clock.now_ms(), where="market_event", message=repr(exc)))

    async def _pump_user(self) -> None:
        assert self.bundle is not None and self.engine is not None
        engine = self.engine
        async for ev in self.bundle.user.events():
            try:
                await engine.on_user_event(ev)
            except Exception as exc:
                log.exception("user event failed: %r", ev)
                engine.ctx.notify(ErrorEvent(ts_ms=engine.ctx.clock.now_ms(), where="user_event", message=repr(exc)))

    def _resubscribe_soon(self) -> None:
        """Held symbols or the universe changed: update the stream subscriptions (coalesced)."""
        if self._resubscribe_pending or self.engine is None or self.engine.ctx.stopping:
            return
        self._resubscribe_pending = True

        async def go() -> None:
            await asyncio.sleep(0)
            self._resubscribe_pending = False
            assert self.bundle is not None and self.engine is not None
            try:
                await self.bundle.market.set_symbols(self.engine.watched_symbols(), self.engine.held_symbols())
            except Exception:
                log.exception("resubscribe failed")

        self.engine.runner.spawn(go())

    # ------------------------------------------------------------------ housekeeping
    def _each_minute(self, minute_ms: int) -> None:
        assert self.engine is not None
        ctx = self.engine.ctx
        wallet = ctx.account.wallet
        if wallet > 0:
            ctx.store.equity.add(ctx.clock.now_ms(), wallet, wallet + self.engine.unrealized())

    def _start_scheduler(self) -> None:
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        assert self.engine is not None
        cfg = self.engine.ctx.cfg
        sched = AsyncIOScheduler(timezone=cfg.report_timezone)
        sched.add_job(
            self._reconcile_job,
            "interval",
            seconds=cfg.reconcile_interval_s,
            id="reconcile",
            max_instances=1,
            coalesce=True,
        )
        sched.add_job(self._write_health, "interval", seconds=10, id="health", max_instances=1, coalesce=True)
        sched.add_job(self._backup_job, "cron", hour=4, minute=7, id="backup", max_instances=1, coalesce=True)
        sched.add_job(self._daily_job, "cron", hour=0, minute=0, second=5, id="daily", max_instances=1, coalesce=True)
        if isinstance(self.engine.ctx.clock, ExchangeClock):
            sched.add_job(self._sync_clock, "interval", minutes=30, id="clock", max_instances=1, coalesce=True)
        sched.start()
        self.scheduler = sched

    async def _reconcile_job(self) -> None:
        assert self.engine is not None
        if self.engine.ctx.stopping:
            return
        try:
            await self.engine.reconciler.run()
        except Exception as exc:
            log.exception("reconcile job")
            self.engine.ctx.notify(
                ErrorEvent(ts_ms=self.engine.ctx.clock.now_ms(), where="reconcile", message=repr(exc))
            )

    async def _sync_clock(self) -> None:
        assert self.engine is not None and self.bundle is not None
        clock = self.engine.ctx.clock
        if isinstance(clock, ExchangeClock):
            try:
                await clock.sync(self.bundle.port.server_time)
            except ExchangeError as exc:
                log.warning("clock sync failed: %r", exc)

    async def _backup_job(self) -> None:
        assert self.db is not None and self.engine is not None
        ctx = self.engine.ctx
        dest = self.settings.backup_dir or self.settings.db_path.parent / "backups"
        try:
            path = backup(self.db, dest, self.settings.backup_keep, ctx.clock.now_ms())
        except Exception as exc:
            log.exception("backup failed")
            ctx.notify(ErrorEvent(ts_ms=ctx.clock.now_ms(), where="backup", message=repr(exc)))
            return
        ctx.store.state.set("last_backup_ms", ctx.clock.now_ms())
        log.info("backup written: %s", path)

    async def _daily_job(self) -> None:
        assert self.engine is not None
        self.engine.executor.ledger.purge_cooldowns()
        assert self.api is not None
        stats = await self.api.stats()
        log.info(
            "day rolled over (%s): 7d trades=%d pnl=%s", stats.timezone, stats.week.trades, stats.week.realized_pnl
        )

    async def _write_health(self, *, stopping: bool = False) -> None:
        """A health snapshot in the database, for ``surgedca status`` in another terminal.

        A coroutine on purpose: APScheduler runs plain functions in a worker thread, away from the loop
        and from the one SQLite connection that belongs to it."""
        if self.api is None or self.engine is None:
            return
        snap = asdict(await self.api.health())
        snap["written_ms"] = self.engine.ctx.clock.now_ms()  # market time (simulated in sim mode)
        snap["written_wall_ms"] = int(time.time() * 1000)  # for "is it running?" in another terminal
        snap["stopping"] = stopping  # the last snapshot of a run: `surgedca status --check` says not running
        try:
            self.engine.ctx.store.state.set(HEALTH_KEY, json.loads(json.dumps(snap, default=_jsonable)))
        except Exception:
            log.exception("health snapshot not written")

    def _config_applied(self, old: StrategyConfig, new: StrategyConfig) -> None:
        """A /config set went through: make every part follow it."""
        assert self.engine is not None
        engine = self.engine
        if (old.leverage, old.margin_mode) != (new.leverage, new.margin_mode):
            engine.executor.forget_symbol_setup()
        if old.stop_loss_by_stage != new.stop_loss_by_stage or old.backstop_on_exchange != new.backstop_on_exchange:
            for entry in engine.ctx.book.entries():
                engine.runner.spawn(self._resync_backstop(entry.state.symbol))
        if (old.universe_size, old.symbol_blacklist, old.delist_guard_days) != (
            new.universe_size,
            new.symbol_blacklist,
            new.delist_guard_days,
        ):
            engine.scanner.universe.refreshed_ms = 0  # refreshed at the next minute
        if new.alert_charts and not old.alert_charts and not self.settings.headless and self.api is not None:
            self.api.charts.warm()
        if old.reconcile_interval_s != new.reconcile_interval_s and self.scheduler is not None:
            self.scheduler.reschedule_job("reconcile", trigger="interval", seconds=new.reconcile_interval_s)

    async def _resync_backstop(self, symbol: str) -> None:
        assert self.engine is not None
        async with self.engine.executor.lock(symbol):
            entry = self.engine.ctx.book.get(symbol)
            if entry is not None:
                await self.engine.executor.keeper.sync(entry)

    # ------------------------------------------------------------------ alerts and the bot
    async def _start_alerts(self, clock: Any) -> Any:
        from bot.notifier import AlertNotifier, ConsoleSink

        s = self.settings
        if s.headless:
            sink: Any = ConsoleSink(logging.getLogger("surgedca.alerts"))
        else:
            from bot.i18n import build_i18n
            from bot.notifier import TelegramSink

            assert self.bot is not None  # made by _check_telegram
            sink = self.telegram_sink = TelegramSink(
                self.bot, s.telegram_allowed_chat_ids, i18n=build_i18n(s.locale), locale=s.locale
            )
        alerts = AlertNotifier(sink)
        await alerts.start()
        return alerts

    async def _check_telegram(self) -> None:
        from bot.app import create_bot
        from bot.link import TelegramLink, check_token

        s = self.settings
        assert s.telegram_bot_token is not None
        self.telegram_link = TelegramLink()
        self.bot = create_bot(s.telegram_bot_token.get_secret_value(), s.telegram_api_url, link=self.telegram_link)
        await check_token(self.bot)

    async def _start_bot(self) -> None:
        from bot.app import create_dispatcher, start_bot
        from bot.polling import StaleUpdates

        s = self.settings
        assert self.api is not None and self.bot is not None
        clock = self.api.ctx.clock
        # Telegram dates messages by real time: use the exchange-corrected clock when there is one (a host clock
        # minutes off would otherwise make every command look stale), never the simulated clock of sim mode.
        wall = (lambda: clock.now_ms() / 1000) if isinstance(clock, ExchangeClock) else time.time
        self.dispatcher = create_dispatcher(
            self.api,
            allowed_chat_ids=s.telegram_allowed_chat_ids,
            allowed_user_ids=s.telegram_allowed_user_ids,
            default_locale=s.locale,
            clock=self.api.ctx.clock,  # confirmations expire on the engine's clock (the exchange's)
            publish_alert=self.api.ctx.notify,  # 409 Conflict, a group that moved: through the alert path
            stale_updates=StaleUpdates(now=wall),
        )
        self.bot_task = asyncio.create_task(start_bot(self.bot, self.dispatcher), name="telegram-bot")
        self.bot_task.add_done_callback(_report_bot_end)


async def build_bundle(settings: Settings, db: Database, *, taker_fee: float = 0.0005) -> ExchangeBundle:
    """The exchange side of the trading mode: sim (offline), paper (live data, simulated fills) or live."""
    mode = settings.trading_mode
    if mode == "sim":
        from trading.exchange.sim import build_sim_bundle

        return build_sim_bundle(settings, db.conn, taker_fee=taker_fee)
    from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
    from trading.exchange.environments import (
        TESTNET_WARNING,
        BinanceEnv,
        environment_of,
        rest_base_url,
        ws_base_url,
    )
    from trading.exchange.streams import BinanceMarketStream, BinanceUserStream

    env = environment_of(settings)
    ws_base = ws_base_url(settings)
    if env is BinanceEnv.TESTNET:
        log.warning(TESTNET_WARNING)
    log.info("exchange: Binance USD-M %s (REST %s, WebSocket %s)", env.value, rest_base_url(settings), ws_base)
    adapter = CcxtBinanceAdapter.from_settings(settings)
    market = BinanceMarketStream(ws_base)
    if mode == "paper":
        from trading.exchange.paper import build_paper_bundle

        return build_paper_bundle(settings, db.conn, adapter, market, taker_fee=taker_fee)
    from trading.clock import ExchangeClock

    user = BinanceUserStream(ws_base, adapter)
    return ExchangeBundle("live", adapter, market, user, ExchangeClock())


def _report_bot_end(task: asyncio.Task[Any]) -> None:
    """The bot task never ends by itself while the service runs: if it does, the log says why (never silently)."""
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("the Telegram bot stopped: %r; trading goes on without it", exc, exc_info=exc)


def _jsonable(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    return str(o)
