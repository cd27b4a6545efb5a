"""The scanner's gates, with a real candle store, store and executor (no exchange calls are made)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from storage.db import Database
from trading.book import BookEntry
from trading.candles import CandleStore
from trading.clock import ManualClock
from trading.context import EngineContext
from trading.core.config import StrategyConfig
from trading.core.models import Leg, PositionState, Stage
from trading.executor import Executor
from trading.orders import ClientIds
from trading.runner import WorkRunner
from trading.scanner import Scanner
from trading.store import Store


class _Silent:
    def publish(self, event: object) -> None:
        pass


def _scanner(tmp_path: Path, **cfg: object) -> Scanner:
    db = Database.open(tmp_path / "db.sqlite3")
    ctx = EngineContext(
        cfg=StrategyConfig(**cfg),
        store=Store.of(db),
        port=None,  # type: ignore[arg-type]
        clock=ManualClock(1_767_225_600_000),
        notifier=_Silent(),
    )
    return Scanner(ctx, Executor(ctx, WorkRunner(inline=True), ClientIds("abcdef")), CandleStore())


def test_scan_interval_picks_the_closes_it_names(tmp_path: Path) -> None:
    every_minute = _scanner(tmp_path)
    assert all(every_minute._scan_minute(m * 60_000) for m in range(10))
    five = _scanner(tmp_path / "b", scan_interval_s=300)
    chosen = [m for m in range(20) if five._scan_minute(m * 60_000)]
    assert chosen == [4, 9, 14, 19]  # candles opened at :04, :09... close at :05, :10...


def test_blocked_by_pause_holdings_cooldown_and_margin(tmp_path: Path) -> None:
    sc = _scanner(tmp_path, max_positions=2)
    ctx = sc.ctx
    ctx.account.wallet = Decimal(1000)
    assert sc.blocked("AUSDT") is None
    ctx.paused = True
    assert sc.blocked("AUSDT") == "paused"
    ctx.paused = False
    sc.executor.ledger.set_cooldown("AUSDT", ctx.clock.now_ms() + 60_000, "stop_loss", actor="test")
    assert sc.blocked("AUSDT") == "cooldown"
    state = PositionState(
        "BUSDT", Stage.INITIAL, (Leg(Stage.INITIAL, Decimal(1), Decimal(540)),), Decimal(540), Decimal(1)
    )
    ctx.book.put(BookEntry(1, state, Decimal(540), 0, "signal"), ctx.cfg)
    assert sc.blocked("BUSDT") == "held"
    # 540 of margin in use + 15 for a new entry > 55% of 1000
    assert sc.blocked("CUSDT") == "max_margin_usage"
    ctx.book.get("BUSDT").margin = Decimal(100)  # type: ignore[union-attr]
    assert sc.blocked("CUSDT") is None


def test_entries_admitted_in_one_turn_count_against_the_limits(tmp_path: Path) -> None:
    """Five symbols signalling at one close with max_positions = 2: the first two reserve their slots at once."""
    sc = _scanner(tmp_path, max_positions=2)
    sc.ctx.account.wallet = Decimal(1000)
    admitted = [s for s in ("AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUSDT") if sc.executor.admit(s)]
    assert admitted == ["AUSDT", "BUSDT"]
    assert sc.blocked("CUSDT") == "max_positions"
    assert sc.blocked("AUSDT") == "held"  # its entry is in flight
    sc.executor.admission.release("AUSDT")  # the entry failed: the slot is free again
    assert sc.blocked("CUSDT") is None


def test_reserved_margin_counts_against_max_margin_usage(tmp_path: Path) -> None:
    sc = _scanner(tmp_path, max_margin_usage=0.04, initial_weight=0.015)
    sc.ctx.account.wallet = Decimal(1000)
    assert sc.executor.admit("AUSDT") and sc.executor.admit("BUSDT")  # 15 + 15 of 40
    assert sc.blocked("CUSDT") == "max_margin_usage"  # 15 + 15 + 15 > 40
    assert not sc.executor.admit("CUSDT")


def test_blacklist_and_timed_blocks_from_memory_alone_and_they_expire(tmp_path: Path) -> None:
    sc = _scanner(tmp_path, symbol_blacklist=("DUSDT",))
    ctx = sc.ctx
    clock: ManualClock = ctx.clock  # type: ignore[assignment]
    now = clock.now_ms()
    ctx.store.blocks.set("EUSDT", now + 3_600_000, "tg:1", now)
    ctx.load_flags()  # what the engine does at start: the table, read once
    statements: list[str] = []
    ctx.store.db.conn.set_trace_callback(statements.append)
    try:
        assert sc.blocked("DUSDT") == "blacklisted" and sc.executor.entry_blocker("DUSDT") == "blacklisted"
        assert sc.blocked("EUSDT") == "blocked" and sc.executor.entry_blocker("EUSDT") == "blocked"
        assert sc.blocked("FUSDT") is None
        clock.advance(3599)
        assert sc.blocked("EUSDT") == "blocked"
        clock.advance(1)  # the block ends by itself, exactly at its time
        assert sc.blocked("EUSDT") is None and sc.executor.entry_blocker("EUSDT") is None
    finally:
        ctx.store.db.conn.set_trace_callback(None)
    assert statements == []  # no database read per symbol per minute


# ------------------------------------------------------------------ complete candles before a decision
def _day_of_candles(symbol_file: str = "SOLUSDT") -> list:
    from tests.conftest import KLINES_DIR
    from trading.candle_files import read_candles
    from trading.exchange.base import Kline

    c = read_candles(KLINES_DIR / f"{symbol_file}-1m.csv.gz")
    day = next(i for i, t in enumerate(c.open_time.tolist()) if t % 86_400_000 == 0)
    return [
        Kline(
            int(c.open_time[i]),
            float(c.open[i]),
            float(c.high[i]),
            float(c.low[i]),
            float(c.close[i]),
            float(c.volume[i]),
        )
        for i in range(day, day + 800)
    ]


async def test_a_symbol_with_a_hole_is_skipped_then_evaluated_when_repaired_within_the_minute(
    tmp_path: Path,
) -> None:
    import asyncio

    sc = _scanner(tmp_path)
    ks = _day_of_candles()
    store = sc.candles
    for k in ks[:700]:
        store.on_closed_1m("SOLUSDT", k)
    sc.universe.replace(["SOLUSDT"], 0)
    await sc.on_minute_closed("SOLUSDT", ks[699].open_time)
    assert sc.reports["SOLUSDT"].at_ms == ks[699].open_time  # complete: evaluated

    store.on_closed_1m("SOLUSDT", ks[702])  # minutes 700 and 701 never arrived
    store.mark_loading("SOLUSDT", "repair")  # the keeper starts its REST repair
    await sc.on_minute_closed("SOLUSDT", ks[702].open_time)
    assert sc.reports["SOLUSDT"].at_ms == ks[699].open_time  # not evaluated on the series with a hole
    assert sc.current is not None and sc.current.incomplete == 1 and sc.waiting == {"SOLUSDT": ks[702].open_time}

    store.backfill("SOLUSDT", "1m", ks[700:702])  # the repair's reply; the keeper then says it is done
    store.mark_loaded("SOLUSDT")
    await asyncio.sleep(0.01)
    assert sc.reports["SOLUSDT"].at_ms == ks[702].open_time  # evaluated at the same minute, complete now
    assert sc.waiting == {}


async def test_a_repair_that_ends_after_the_next_minute_leaves_the_skipped_minute_alone(tmp_path: Path) -> None:
    import asyncio

    sc = _scanner(tmp_path)
    ks = _day_of_candles()
    store = sc.candles
    for k in ks[:700]:
        store.on_closed_1m("SOLUSDT", k)
    sc.universe.replace(["SOLUSDT"], 0)
    store.on_closed_1m("SOLUSDT", ks[701])
    store.mark_loading("SOLUSDT", "repair")
    await sc.on_minute_closed("SOLUSDT", ks[701].open_time)
    store.on_closed_1m("SOLUSDT", ks[702])  # the next minute closes while the repair still runs
    await sc.on_minute_closed("SOLUSDT", ks[702].open_time)
    assert "SOLUSDT" not in sc.reports and sc.waiting == {"SOLUSDT": ks[702].open_time}
    store.on_closed_1m("SOLUSDT", ks[703])  # stored; the engine has not reached the scanner yet
    store.backfill("SOLUSDT", "1m", ks[700:701])
    store.mark_loaded("SOLUSDT")
    await asyncio.sleep(0.01)
    assert "SOLUSDT" not in sc.reports  # 702 is no longer the newest minute: no late evaluation of it
    await sc.on_minute_closed("SOLUSDT", ks[703].open_time)
    assert sc.reports["SOLUSDT"].at_ms == ks[703].open_time and sc.waiting == {}
