"""A held symbol announced for delisting, end to end: an alert at once, the close ``exit_before_delist_h`` before the
settlement (reason ``delisting``), through the real service against the fake Binance.

The strategy uses the shortest guard the config allows (one day, one hour before): the fake announces the
settlement one hour and a few seconds ahead, so the close falls due a few seconds later.
"""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"
HOUR = 3_600_000
STRATEGY = """
reconcile_interval_s = 5
fallback_poll_interval_s = 1
adopt_positions = "all"
delist_guard_days = 1
exit_before_delist_h = 1
"""


def _sells(harness: Harness) -> list:
    return [o for o in harness.fake.orders if o.symbol == SYM and o.side == "SELL" and o.type == "MARKET"]


async def test_a_held_symbol_announced_for_delisting_is_closed_ahead_of_its_settlement(harness: Harness) -> None:
    fake = harness.fake
    harness.strategy.write_text(STRATEGY)
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM) and len(harness.resting_stops(SYM)) == 1, what="adoption")
    await fake.set_price(SYM, "101.00")
    settle_at = fake.now_ms() + HOUR + 2_500
    fake.announce_delisting(SYM, settle_at)

    # The markets are re-read (here on /sync; hourly otherwise): the alert comes at once, the close is not due yet.
    await harness.service.api.sync(actor="test")
    (ahead,) = [e for e in harness.recorder.events if e.kind == "DelistingAhead"]
    assert (ahead.symbol, ahead.delivery_ms, ahead.close_at_ms) == (SYM, settle_at, settle_at - HOUR)
    assert _sells(harness) == [] and harness.db_position(SYM) is not None
    (row,) = harness.store.audit.recent(5, action="delisting")
    assert row.after["close_at_ms"] == settle_at - HOUR
    assert harness.engine.scanner.blocked(SYM) == "held"

    # Seconds later (one hour before the settlement): sold at market, reduce-only, reason delisting.
    closed = await until(harness.store.positions.list_closed, timeout=10, what="the delisting close")
    assert closed[-1].close_reason == "delisting"
    (sell,) = _sells(harness)
    assert sell.reduce_only and "-dl-" in sell.client_order_id and D(str(sell.qty)) == D("1.00")
    assert sell.time >= settle_at - HOUR  # not before its time
    assert fake.position(SYM).qty == 0 and fake.now_ms() < settle_at  # well ahead of the exchange's settlement
    await until(lambda: harness.resting_stops(SYM) == [], what="backstop cancelled")
    close = [e for e in harness.recorder.events if e.kind == "PositionClosed"][-1]
    assert close.reason == "delisting"
    kinds = [e.kind for e in harness.recorder.events if e.symbol == SYM]
    assert kinds.index("DelistingAhead") < kinds.index("PositionClosed")
    assert kinds.count("DelistingAhead") == 1  # the alert is said once
    # An ordinary close: the short cooldown, and the universe keeps the symbol out anyway.
    until_ms = harness.engine.ctx.cooldowns[SYM]
    assert abs(until_ms - (closed[-1].closed_at_ms + HOUR)) < 5_000


async def test_a_restart_does_not_announce_the_same_delisting_again(harness: Harness) -> None:
    fake = harness.fake
    harness.strategy.write_text(STRATEGY.replace("exit_before_delist_h = 1", "exit_before_delist_h = 2"))
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM) and len(harness.resting_stops(SYM)) == 1, what="adoption")
    fake.announce_delisting(SYM, fake.now_ms() + 20 * HOUR)  # the close is 18 hours away
    await harness.service.api.sync(actor="test")
    assert [e.kind for e in harness.recorder.events].count("DelistingAhead") == 1
    await harness.stop()

    await harness.start()
    await harness.service.api.sync(actor="test")
    assert harness.db_position(SYM) is not None and _sells(harness) == []
    assert [e.kind for e in harness.recorder.events].count("DelistingAhead") == 1  # said once, not at each start
    assert len(harness.store.audit.recent(10, action="delisting")) == 1
    # A changed settlement date is news again.
    fake.announce_delisting(SYM, fake.now_ms() + 22 * HOUR)  # still within the one-day guard
    await harness.service.api.sync(actor="test")
    assert [e.kind for e in harness.recorder.events].count("DelistingAhead") == 2
