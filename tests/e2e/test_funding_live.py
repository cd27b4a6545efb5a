"""Funding end to end: the real service (live mode) against the loopback fake Binance.

Binance charges a held long every funding time (00:00, 08:00, 16:00 UTC on most symbols), tells the user stream
with an ACCOUNT_UPDATE whose reason is FUNDING_FEE (for a cross position: the balance only, no symbol) and
lists the payment in its income history. Each payment must be recorded once on its position and count in the
trade's result, the daily statistics and the views, whether the stream's update arrives, is lost, or comes late.
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from tests.e2e.conftest import Harness, until
from trading.execution.funding import CHECK_GRACE_MS
from trading.status import collect_status, render

D = Decimal
SYM = "SOLUSDT"
INCOME = "/fapi/v1/income"
EIGHT_HOURS_MS = 8 * 3_600_000


async def _adopted(harness: Harness) -> int:
    await harness.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    rec = await until(lambda: harness.db_position(SYM), what="adoption")
    await until(lambda: harness.fake.ws_clients("private"), what="the user-data stream connected")
    return int(rec.id)


def _income_requests(harness: Harness) -> int:
    return sum(1 for r in harness.fake.requests if r.path == INCOME)


def _result_of_fills(harness: Harness, position_id: int) -> tuple[Decimal, Decimal]:
    """(sells - buys - fees, fees) from the position's fills."""
    fills = harness.store.fills.for_position(position_id)
    sold = sum((f.price * f.qty for f in fills if f.side == "SELL"), D(0))
    bought = sum((f.price * f.qty for f in fills if f.side == "BUY"), D(0))
    fees = sum((f.fee for f in fills), D(0))
    return sold - bought - fees, fees


async def test_a_funding_payment_on_the_user_stream_is_recorded_and_counts_in_the_trade(harness: Harness) -> None:
    fake = harness.fake
    pid = await _adopted(harness)
    api = harness.service.api  # type: ignore[union-attr]
    looked_up = _income_requests(harness)
    paid = await fake.charge_funding(SYM, "0.0005")  # a long of 1 at mark 100 pays 0.05
    assert paid == D("-0.05")
    rows = await until(lambda: harness.store.funding.for_position(pid), timeout=5, what="the payment recorded")
    assert [(r.symbol, r.amount, r.key) for r in rows] == [(SYM, D("-0.05"), str(fake.income[-1].tran_id))]
    assert _income_requests(harness) == looked_up + 1  # one look-up (weight 30) for the update
    assert harness.db_position(SYM).funding == D("-0.05")
    assert (await api.position(SYM)).funding == D("-0.05")  # /positions: funding so far
    assert [p.funding for p in await api.positions()] == [D("-0.05")]
    status = collect_status(harness.settings())  # `surgedca status`, from the database beside the running service
    assert status is not None and [D(p["funding"]) for p in status["open_positions"]] == [D("-0.05")]
    assert "funding -0.05" in render(status)
    # /sync looks again and finds nothing new: the payment stays recorded once
    report = await api.sync("tg:1")
    assert [i for i in report.items if i.kind == "funding_recorded"] == []
    assert len(harness.store.funding.for_position(pid)) == 1

    result = await api.exit(SYM, "tg:1")
    assert result.filled
    trade, fees = _result_of_fills(harness, pid)
    closed = harness.store.positions.get(pid)
    assert closed.realized_pnl == trade - D("0.05") == result.pnl  # sells - buys - fees + funding
    assert closed.funding == D("-0.05")
    alert = [e for e in harness.recorder.events if e.kind == "PositionClosed"][-1]
    assert (alert.pnl, alert.funding) == (trade - D("0.05"), D("-0.05"))
    stats = await api.stats()
    assert (stats.today.trades, stats.today.funding, stats.today.realized_pnl, stats.today.fees) == (
        1, D("-0.05"), trade - D("0.05"), fees,
    )  # fmt: skip
    status = collect_status(harness.settings())
    assert status is not None and D(status["recent_trades"][-1]["funding"]) == D("-0.05")
    assert "(funding -0.05 included)" in render(status)
    report_figures = (await api.report(1)).summary
    assert report_figures["funding"] == D("-0.05") and report_figures["realized_pnl"] == trade - D("0.05")


async def test_a_payment_lost_on_the_stream_is_found_by_the_reconciler_and_recorded_once(harness: Harness) -> None:
    fake = harness.fake
    now = int(time.time() * 1000)
    funding_time = now - now % EIGHT_HOURS_MS + EIGHT_HOURS_MS  # the next 8-hour funding time
    fake.time_offset_ms = funding_time - 60_000 - now  # the exchange lives a minute before it
    sent: list[dict[str, Any]] = []
    emit = fake.exchange.emit
    fake.exchange.emit = lambda event: (sent.append(event), emit(event))[1]  # type: ignore[method-assign]
    pid = await _adopted(harness)
    engine = harness.engine
    tracker = engine.executor.funding
    assert tracker.next_check_ms() == funding_time + CHECK_GRACE_MS  # looked at start-up; next after the funding
    fake.faults.silence_private(2.0)  # the user stream stalls: the FUNDING_FEE update is lost
    fake.time_offset_ms += 60_000  # the funding time
    paid = await fake.charge_funding(SYM, "0.0003")
    assert paid == D("-0.03")
    update = [e for e in sent if e["e"] == "ACCOUNT_UPDATE" and e["a"]["m"] == "FUNDING_FEE"][-1]
    await until(lambda: not fake.faults.private_silent(), timeout=3, what="the stream speaking again")
    assert harness.store.funding.for_position(pid) == []  # lost: nothing told the service
    # The exchange's clock passes the reconciler's moment; the service follows it (its clock sync, as live).
    fake.time_offset_ms += CHECK_GRACE_MS
    await engine.ctx.port.sync_time()
    await engine.ctx.clock.sync(engine.ctx.port.server_time)
    rows = await until(lambda: harness.store.funding.for_position(pid), timeout=8, what="the reconciler's look-up")
    assert [(r.amount, r.key) for r in rows] == [(D("-0.03"), str(fake.income[-1].tran_id))]
    found = engine.reconciler.last
    assert [(i.kind, i.symbol) for i in found.items if i.kind == "funding_recorded"] == [("funding_recorded", SYM)]
    assert harness.db_position(SYM).funding == D("-0.03")
    assert tracker.next_check_ms() == funding_time + EIGHT_HOURS_MS + CHECK_GRACE_MS

    # The lost update arrives after all (a late delivery): it prompts a look-up, which records nothing twice.
    looked_up = _income_requests(harness)
    emit(update)
    await fake.flush()
    await until(lambda: _income_requests(harness) > looked_up, timeout=5, what="the look-up after the late update")
    await until(lambda: not tracker.looking, timeout=5, what="the look-up done")
    assert len(harness.store.funding.for_position(pid)) == 1
    assert harness.db_position(SYM).funding == D("-0.03")
    audit = harness.store.audit.recent(50, action="funding")
    assert len(audit) == 1 and audit[0].actor == "reconciler"


async def test_an_exchange_without_income_history_is_not_asked_at_every_round(harness: Harness) -> None:
    """A gateway or stand-in exchange that does not serve the income history (404): the service keeps trading and
    asks again after the next funding time, not at every 15 s reconcile (30 weight each)."""
    harness.fake.unserve("GET", INCOME)
    await _adopted(harness)
    engine = harness.engine
    asked = _income_requests(harness)
    assert asked == 1  # the start-up look, answered 404 once (not retried)
    for _ in range(3):
        await engine.reconciler.run()
    assert _income_requests(harness) == asked
    assert engine.executor.funding.next_check_ms() > engine.ctx.clock.now_ms()
    assert not engine.ctx.halted and harness.assert_agree(SYM) is not None
