"""Positions that leave the exchange without an order of ours, end to end: a liquidation is told apart from a close
by hand (reason ``liquidation``, the long cooldown, an alert), and the result of a position held longer than a
week is read from the exchange's trades in exact seven-day windows (the fake refuses a longer span, and serves
only the week after ``startTime`` when no ``endTime`` is sent).
"""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"
HOUR = 3_600_000
DAY = 24 * HOUR
WEEK = 7 * DAY


async def _adopted(harness: Harness) -> None:
    await harness.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM) and len(harness.resting_stops(SYM)) == 1, what="adoption")
    await until(lambda: harness.fake.ws_clients("private"), what="the user-data stream connected")


async def test_a_liquidation_is_closed_as_one_with_the_long_cooldown(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    pid = harness.db_position(SYM).id
    order = await fake.liquidate(SYM, price="91.00")  # the user stream shows the autoclose- order at once
    closed = await until(harness.store.positions.list_closed, what="the liquidation recorded")
    rec = closed[-1]
    assert (rec.id, rec.close_reason) == (pid, "liquidation")
    # Its result from the exchange's own trade: (91 - 100) x 1 and the taker fee on 91.
    assert rec.realized_pnl == D("-9.0455")
    (audit,) = harness.store.audit.recent(5, action="liquidation")
    assert audit.actor == "reconciler" and audit.after["estimated"] is False
    assert [f.client_order_id for f in harness.store.fills.for_position(pid) if f.side == "SELL"] == [
        f"ext-{order.order_id}"
    ]
    # The long cooldown (as after a stop), not the hour after an ordinary close.
    until_ms = harness.engine.ctx.cooldowns[SYM]
    assert abs(until_ms - (rec.closed_at_ms + 24 * HOUR)) < 5_000
    assert harness.engine.scanner.blocked(SYM) == "cooldown"
    (alert,) = [e for e in harness.recorder.events if e.kind == "PositionClosed"]
    assert (alert.reason, alert.pnl) == ("liquidation", D("-9.0455"))
    assert [e for e in harness.recorder.events if e.kind == "PositionVanished"] == []
    forced = [r for r in fake.requests if r.path == "/fapi/v1/forceOrders"]
    assert forced and all(r.params["symbol"] == SYM and r.status == 200 for r in forced)
    await until(lambda: harness.resting_stops(SYM) == [], what="the backstop left behind cancelled")


async def test_a_close_by_hand_is_not_a_liquidation(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    await fake.set_price(SYM, "104.00")
    await fake.close_position_by_hand(SYM)
    closed = await until(harness.store.positions.list_closed, what="the close by hand recorded")
    assert closed[-1].close_reason == "external" and closed[-1].realized_pnl == D("4") - D("0.052")
    assert [e.kind for e in harness.recorder.events if e.kind in ("PositionVanished", "PositionClosed")] == [
        "PositionVanished"
    ]
    assert abs(harness.engine.ctx.cooldowns[SYM] - (closed[-1].closed_at_ms + HOUR)) < 5_000


async def test_a_position_held_ten_days_gets_its_result_from_exact_weekly_windows(harness: Harness) -> None:
    fake = harness.fake
    fake.time_offset_ms = -10 * DAY  # the exchange (and so the service's clock) ten days ago
    await _adopted(harness)
    rec = harness.db_position(SYM)
    await harness.stop()

    fake.time_offset_ms = 0  # ten days later, the position is closed by hand while the service is down
    await fake.set_price(SYM, "110.00")
    await fake.close_position_by_hand(SYM)
    await fake.open_position_by_hand("DOGEUSDT", "100", price="0.10000")  # another symbol's trade: not read
    await fake.close_position_by_hand("DOGEUSDT")
    fake.requests.clear()
    await harness.start()
    closed = await until(harness.store.positions.list_closed, what="the vanished position closed")
    assert (closed[-1].id, closed[-1].close_reason) == (rec.id, "external")
    assert closed[-1].realized_pnl == D("10") - D("0.055")  # (110 - 100) x 1 and the taker fee on 110
    (audit,) = harness.store.audit.recent(5, action="vanished")
    assert audit.after["estimated"] is False
    windows = [
        (int(r.params["startTime"]), int(r.params["endTime"]))
        for r in fake.requests
        if r.path == "/fapi/v1/userTrades" and r.params.get("symbol") == SYM
    ]
    assert len(windows) == 2 and windows[0][0] == rec.opened_at_ms
    assert windows[0][1] - windows[0][0] == WEEK - 1 and windows[1][0] == windows[0][1] + 1
    assert windows[1][1] >= closed[-1].closed_at_ms - 10_000
    assert all(r.status == 200 for r in fake.requests if r.path == "/fapi/v1/userTrades")
