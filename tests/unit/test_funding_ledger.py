"""Funding in the ledger and the tracker: one record per payment, on the position that held the symbol, in the
trade's result and the day's statistics; the tracker's look-ups and when the reconciler looks."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from storage.db import Database
from trading.clock import ManualClock
from trading.context import EngineContext
from trading.core.config import StrategyConfig
from trading.core.models import ExitReason
from trading.events import EngineEvent, PositionClosed
from trading.exchange.base import FUNDING_FEE, AccountUpdate, FundingIncome, RetriableError
from trading.execution import funding
from trading.execution.funding import CHECK_GRACE_MS, LOOKBACK_MS, FundingTracker
from trading.execution.ledger import ExternalSell, PositionLedger
from trading.runner import WorkRunner
from trading.store import Store

D = Decimal
HOUR = 3_600_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC: a funding time
SYM = "SOLUSDT"


class Recorder:
    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def publish(self, event: EngineEvent) -> None:
        self.events.append(event)


class IncomeHistory:
    """The port's income look-up over a list of payments (what GET /fapi/v1/income answers), with its calls."""

    def __init__(self) -> None:
        self.rows: list[FundingIncome] = []
        self.calls: list[tuple[int, int]] = []
        self.down = False
        self.hidden = 0  # the next look-ups that do not list the newest row yet (Binance writing it)

    def pay(self, symbol: str, amount: str, time_ms: int, asset: str = "USDT") -> FundingIncome:
        row = FundingIncome(str(9_000 + len(self.rows)), symbol, D(amount), asset, time_ms)
        self.rows.append(row)
        return row

    async def fetch_funding_income(self, start_ms: int, end_ms: int) -> list[FundingIncome]:
        self.calls.append((start_ms, end_ms))
        if self.down:
            raise RetriableError("HTTP 503")
        rows = self.rows[:-1] if self.hidden else self.rows
        self.hidden = max(0, self.hidden - 1)
        return [r for r in rows if start_ms <= r.time_ms <= end_ms]


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    db = Database.open(tmp_path / "db.sqlite3")
    clock = ManualClock(T0 - 2 * HOUR)
    income = IncomeHistory()
    notes = Recorder()
    ctx = EngineContext(
        cfg=StrategyConfig(report_timezone="UTC"),
        store=Store.of(db),
        port=income,  # type: ignore[arg-type]
        clock=clock,
        notifier=notes,
    )
    ledger = PositionLedger(ctx)
    tracker = FundingTracker(ctx, ledger, WorkRunner(inline=True))
    yield ctx, clock, ledger, tracker, income, notes
    db.close()


def _close(ctx: EngineContext, ledger: PositionLedger, price: str, at_ms: int) -> Decimal:
    ctx.clock.set(at_ms)  # type: ignore[attr-defined]
    entry = ctx.book.get(SYM)
    assert entry is not None
    pnl, estimated = ledger.close_external(
        entry,
        ExitReason.MANUAL,
        [ExternalSell("ext-1", D(price), D("1"), D("0.05"), at_ms)],
        actor="test",
        exchange_qty=D(0),
    )
    assert not estimated
    return pnl


def test_a_payment_is_recorded_once_on_the_position_that_held_the_symbol(world) -> None:  # type: ignore[no-untyped-def]
    ctx, clock, ledger, _, _, _ = world
    entry = ledger.adopt(SYM, D("1"), D("100"), actor="test")  # created at T0 - 2 h
    clock.set(T0 + 1_000)
    done = ledger.record_funding(SYM, D("-0.05"), T0, "777", actor="stream")
    assert done is not None and (done.position_id, done.amount, done.after_close) == (
        entry.position_id, D("-0.05"), False,
    )  # fmt: skip
    assert ledger.record_funding(SYM, D("-0.05"), T0, "777", actor="reconciler") is None  # the same tranId
    rows = ctx.store.funding.for_position(entry.position_id)
    assert [(r.key, r.amount, r.ts_ms, r.recorded_at_ms) for r in rows] == [("777", D("-0.05"), T0, T0 + 1_000)]
    assert ctx.store.positions.get(entry.position_id).funding == D("-0.05") == entry.funding  # row and book
    [audit] = ctx.store.audit.recent(5, action="funding")
    assert (audit.actor, audit.symbol) == ("stream", SYM)
    ledger.record_funding(SYM, D("0.01"), T0 + 8 * HOUR, "778", actor="stream")  # received (negative rate)
    assert ctx.store.positions.get(entry.position_id).funding == D("-0.04")


def test_a_payment_the_service_did_not_hold_is_ignored(world, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    ctx, clock, ledger, _, _, _ = world
    clock.set(T0 - HOUR)
    entry = ledger.adopt(SYM, D("1"), D("100"), actor="test")
    with caplog.at_level(logging.INFO, "surgedca.ledger"):
        assert ledger.record_funding(SYM, D("-0.05"), T0 - 2 * HOUR, "1", actor="stream") is None  # before it
        assert ledger.record_funding("BTCUSDT", D("-0.9"), T0, "2", actor="stream") is None  # never held
    assert ctx.store.funding.for_position(entry.position_id) == [] and entry.funding == 0
    assert sum("no position of ours held it" in r.message for r in caplog.records) == 2


def test_the_trade_result_and_the_day_include_funding(world) -> None:  # type: ignore[no-untyped-def]
    ctx, clock, ledger, _, _, notes = world
    entry = ledger.adopt(SYM, D("1"), D("100"), actor="test")
    clock.set(T0 + 1)
    ledger.record_funding(SYM, D("-0.05"), T0, "1", actor="stream")
    ledger.record_funding(SYM, D("-0.07"), T0 + 8 * HOUR, "2", actor="stream")
    pnl = _close(ctx, ledger, "110", T0 + 9 * HOUR)
    assert pnl == D("110") - D("100") - D("0.05") - D("0.12")  # sells - buys - fees + funding
    rec = ctx.store.positions.get(entry.position_id)
    assert (rec.realized_pnl, rec.funding) == (pnl, D("-0.12"))
    day = ctx.store.daily.get("2026-01-01")
    assert (day.trades, day.wins, day.realized_pnl, day.fees, day.funding) == (1, 1, pnl, D("0.05"), D("-0.12"))
    [closed] = [e for e in notes.events if isinstance(e, PositionClosed)]
    assert (closed.pnl, closed.funding) == (pnl, D("-0.12"))


def test_a_payment_found_after_the_close_corrects_the_trade_and_its_day(world) -> None:  # type: ignore[no-untyped-def]
    ctx, clock, ledger, _, _, _ = world
    entry = ledger.adopt(SYM, D("1"), D("100"), actor="test")
    pnl = _close(ctx, ledger, "100.08", T0 + 5_000)  # a small win: +0.03 after fees
    assert pnl == D("0.03") and ctx.store.daily.get("2026-01-01").wins == 1
    clock.set(T0 + 60_000)
    late = ledger.record_funding(SYM, D("-0.05"), T0, "1", actor="reconciler")  # charged at T0, seen later
    assert late is not None and late.after_close
    rec = ctx.store.positions.get(entry.position_id)
    assert (rec.realized_pnl, rec.funding) == (D("-0.02"), D("-0.05"))
    day = ctx.store.daily.get("2026-01-01")
    assert (day.trades, day.wins, day.realized_pnl, day.funding) == (1, 0, D("-0.02"), D("-0.05"))  # now a loss
    # a payment after the close belongs to no position of ours
    assert ledger.record_funding(SYM, D("-0.05"), T0 + 8 * HOUR, "2", actor="reconciler") is None


async def test_each_look_up_reads_from_the_last_one_and_records_nothing_twice(world) -> None:  # type: ignore[no-untyped-def]
    ctx, clock, ledger, tracker, income, _ = world
    entry = ledger.adopt(SYM, D("1"), D("100"), actor="test")
    income.pay(SYM, "-0.05", T0)
    income.pay("BTCUSDT", "-0.5", T0)  # someone else's position on the account
    clock.set(T0 + 1_000)
    first = await tracker.sync(actor="stream")
    assert income.calls == [(T0 - 2 * HOUR - LOOKBACK_MS, T0 + 1_000)]  # since the open position's creation
    assert [(r.symbol, r.amount) for r in first.recorded] == [(SYM, D("-0.05"))] and first.covers(T0 + 500)
    clock.set(T0 + 8 * HOUR + 2_000)
    income.pay(SYM, "-0.06", T0 + 8 * HOUR)
    second = await tracker.sync(actor="stream")
    assert income.calls[-1] == (T0 + 1_000 - LOOKBACK_MS, T0 + 8 * HOUR + 2_000)  # from the last end, minus the hour
    assert [r.amount for r in second.recorded] == [D("-0.06")]
    assert [r.amount for r in ctx.store.funding.for_position(entry.position_id)] == [D("-0.05"), D("-0.06")]
    income.pay(SYM, "-0.5", T0 + 8 * HOUR, asset="BNFCR")  # not USDT: not a figure of the trade
    await tracker.sync(actor="stream")
    assert entry.funding == D("-0.11")


async def test_the_reconciler_looks_only_after_a_funding_time_of_a_held_symbol(world) -> None:  # type: ignore[no-untyped-def]
    ctx, clock, ledger, tracker, income, _ = world
    assert await tracker.catch_up() == [] and income.calls == []  # nothing held: no look-up
    ledger.adopt(SYM, D("1"), D("100"), actor="test")
    assert await tracker.catch_up(force=True) == []  # start-up looks anyway
    assert tracker.next_check_ms() == T0 + CHECK_GRACE_MS  # the next 8-hour funding time, plus the grace
    income.pay(SYM, "-0.05", T0)  # its stream update was lost
    clock.set(T0 + CHECK_GRACE_MS - 1)
    assert await tracker.catch_up() == [] and len(income.calls) == 1
    clock.set(T0 + CHECK_GRACE_MS)
    [item] = await tracker.catch_up()
    assert (item.kind, item.symbol, item.action) == ("funding_recorded", SYM, "recorded")
    assert tracker.next_check_ms() == T0 + 8 * HOUR + CHECK_GRACE_MS
    # two payments 4 hours apart: a 4-hour symbol, looked at every 4 hours
    clock.set(T0 + 4 * HOUR + CHECK_GRACE_MS)
    income.pay(SYM, "-0.05", T0 + 4 * HOUR)
    await tracker.sync(actor="stream")
    assert tracker.interval_ms(SYM) == 4 * HOUR
    assert tracker.next_check_ms() == T0 + 4 * HOUR + CHECK_GRACE_MS  # still due: the last look was before it
    await tracker.catch_up()
    assert tracker.next_check_ms() == T0 + 8 * HOUR + CHECK_GRACE_MS
    # a position closed since the last look still gets its look after the next funding time
    _close(ctx, ledger, "101", T0 + 5 * HOUR)
    assert ctx.book.get(SYM) is None and tracker.next_check_ms() == T0 + 8 * HOUR + CHECK_GRACE_MS


async def test_a_failed_look_up_is_tried_again_at_the_next_round(world) -> None:  # type: ignore[no-untyped-def]
    _, clock, ledger, tracker, income, _ = world
    ledger.adopt(SYM, D("1"), D("100"), actor="test")
    income.down = True
    assert await tracker.catch_up(force=True) == [] and tracker.next_check_ms() == 0  # start-up look failed: due
    income.down = False
    income.pay(SYM, "-0.05", T0 - HOUR)
    clock.set(T0 - HOUR + 15_000)
    [item] = await tracker.catch_up()
    assert item.symbol == SYM and tracker.next_check_ms() == T0 + CHECK_GRACE_MS


async def test_after_a_funding_update_the_tracker_looks_until_the_payment_is_listed(
    world,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    ctx, clock, ledger, _, income, _ = world
    monkeypatch.setattr(funding, "STREAM_DELAYS_S", (0.01, 0.02, 0.03))
    runner = WorkRunner(inline=False)  # live: the look-up runs a moment after the update, as a task
    tracker = FundingTracker(ctx, ledger, runner)
    entry = ledger.adopt(SYM, D("1"), D("100"), actor="test")
    clock.set(T0 + 300)
    income.pay(SYM, "-0.05", T0)
    income.hidden = 1  # the first look-up comes before Binance lists the payment
    update = AccountUpdate(D("999.95"), (), FUNDING_FEE, T0 + 200, balance_change=D("-0.05"))
    await tracker.on_account_update(update)
    await tracker.on_account_update(update)  # two symbols' updates at the same funding time: one look-up
    await tracker.on_account_update(AccountUpdate(D("1"), (), "ORDER", T0 + 250))  # not funding: nothing
    for _ in range(100):
        if entry.funding:
            break
        await asyncio.sleep(0.01)
    assert entry.funding == D("-0.05") and len(income.calls) == 2  # not listed, then listed: recorded
    await asyncio.sleep(0.1)
    assert len(income.calls) == 2  # covered: no more look-ups
    await runner.drain(1.0)
