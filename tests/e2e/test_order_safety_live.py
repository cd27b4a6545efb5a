"""Order safety end to end: lost replies, stream outages, positions changed by hand."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"


def _floor(x: Decimal, step: str) -> Decimal:
    return (x / D(step)).to_integral_value(rounding=ROUND_DOWN) * D(step)


async def _adopted(harness: Harness, qty: str = "1.00") -> None:
    await harness.fake.open_position_by_hand(SYM, qty, price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM), what="adoption")
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="backstop")


async def test_a_filled_order_whose_reply_is_lost_is_found_not_sent_twice(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    fake.faults.lose_response_next("POST", "/fapi/v1/order")
    await fake.set_price(SYM, "97.00")
    rec = await until(
        lambda: (r := harness.db_position(SYM)) and r.state.stage.value == "first_dca" and r,
        timeout=20,
        what="DCA applied after the lost reply",
    )
    dca = [o for o in fake.orders if "-dca1-" in o.client_order_id]
    assert len(dca) == 1, "exactly one order on the exchange"
    posts = [
        r
        for r in fake.requests
        if r.method == "POST"
        and r.path == "/fapi/v1/order"
        and r.params.get("newClientOrderId") == dca[0].client_order_id
    ]
    assert len(posts) == 1, "the executor asked instead of re-sending"
    row = harness.store.journal.get(dca[0].client_order_id)
    assert row is not None and row.status == "filled" and row.attempts == 1
    assert len(harness.store.fills.for_order(dca[0].client_order_id)) == 1
    assert rec.state.qty == harness.exchange_qty(SYM)
    await until(lambda: harness.assert_agree(SYM) is not None, what="backstop replaced")


async def test_stops_fire_through_the_rest_fallback_while_the_market_stream_is_silent(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    fake.faults.silence_market(60)  # sockets stay open, nothing is delivered
    stop = D("90.00")
    polls_before = sum(1 for r in fake.requests if "ticker/price" in r.path)
    await fake.set_price(SYM, str(stop - D("0.50")), mark="91.00")  # mark above the backstop: only we can act
    await until(lambda: harness.db_position(SYM) is None, timeout=15, what="stop via the REST fallback")
    closed = harness.store.positions.list_closed()[-1]
    assert closed.close_reason == "stop_loss"
    assert sum(1 for r in fake.requests if "ticker/price" in r.path) > polls_before, "the price came over REST"
    assert harness.exchange_qty(SYM) == 0
    await until(lambda: harness.resting_stops(SYM) == [], what="backstop cancelled")


async def test_positions_closed_and_opened_by_hand_are_reported_and_fixed_by_sync(harness: Harness) -> None:
    fake = harness.fake
    harness.strategy.write_text("reconcile_interval_s = 3600\nfallback_poll_interval_s = 1\n")
    await _adopted(harness)
    fake.faults.silence_private(60)  # the user stream would trigger a reconcile by itself: show /sync doing it
    await fake.close_position_by_hand(SYM)
    await fake.open_position_by_hand("DOGEUSDT", "1000", price="0.10000")
    assert harness.service is not None and harness.service.api is not None
    report = await harness.service.api.sync("tg:42")
    kinds = {(i.kind, i.symbol) for i in report.items}
    assert ("vanished", SYM) in kinds and ("adopted", "DOGEUSDT") in kinds
    assert harness.db_position(SYM) is None
    closed = harness.store.positions.list_closed()[-1]
    assert closed.symbol == SYM and closed.close_reason == "external" and closed.realized_pnl is not None
    doge = harness.db_position("DOGEUSDT")
    assert doge is not None and doge.origin == "adopted" and doge.state.qty == D("1000")
    await until(lambda: harness.resting_stops(SYM) == [], what="the vanished position's backstop cancelled")
    await until(lambda: len(harness.resting_stops("DOGEUSDT")) == 1, what="a backstop for the adopted one")
    await harness.agree("DOGEUSDT")
    audit = harness.store.audit.recent(20, action="reconcile")
    assert audit and audit[0].actor == "tg:42"
    kinds = harness.recorder.kinds()
    assert "PositionVanished" in kinds and "PositionAdopted" in kinds
    # a second sync finds nothing left to fix
    again = await harness.service.api.sync("tg:42")
    assert [i for i in again.items if i.kind in ("vanished", "adopted", "qty_drift")] == []


async def test_quantity_drift_is_set_to_the_exchange_figure(harness: Harness) -> None:
    fake = harness.fake
    harness.strategy.write_text("reconcile_interval_s = 3600\nfallback_poll_interval_s = 1\n")
    await _adopted(harness, "2.00")
    fake.faults.silence_private(60)
    await fake.open_position_by_hand(SYM, "0.50")  # someone added to it in the app
    assert harness.service is not None and harness.service.api is not None
    report = await harness.service.api.sync("tg:7")
    assert ("qty_drift", SYM) in {(i.kind, i.symbol) for i in report.items}
    rec = harness.db_position(SYM)
    assert rec is not None and rec.state.qty == D("2.50") == harness.exchange_qty(SYM)
    assert sum(leg.qty for leg in rec.state.legs) == D("2.50")
