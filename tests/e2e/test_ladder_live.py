"""The ladder end to end: real service, real HTTP/WS, fake Binance; exchange and database agree at every step."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"


def _floor(x: Decimal, step: str) -> Decimal:
    return (x / D(step)).to_integral_value(rounding=ROUND_DOWN) * D(step)


async def test_adopt_then_two_dcas_then_stop_at_the_second_dca_stop(harness: Harness) -> None:
    fake = harness.fake
    # A long opened by hand before the service starts: the start-up reconcile adopts it.
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    rec = await until(lambda: harness.db_position(SYM), what="adoption")
    assert rec.origin == "adopted" and rec.state.stage.value == "initial" and rec.state.qty == D("1.00")
    assert "PositionAdopted" in harness.recorder.kinds(SYM)
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="backstop")
    rec = await harness.agree(SYM)
    assert rec is not None and rec.backstop_price == D("90.00")  # -10% from the exchange entry

    # -3% from the initial entry: first DCA, 2% of the wallet as margin x 10.
    wallet = fake.wallet_balance
    await fake.set_price(SYM, "97.00")
    rec = await until(
        lambda: (r := harness.db_position(SYM)) and r.state.stage.value == "first_dca" and r, what="first DCA"
    )
    dca1 = [o for o in fake.orders if o.client_order_id.endswith("-dca1-1")]
    assert len(dca1) == 1 and dca1[0].side == "BUY" and not dca1[0].reduce_only
    expected_qty = _floor(wallet * D("0.02") * 10 / D("97.00"), "0.01")
    assert abs(D(str(dca1[0].qty)) - expected_qty) <= D("0.01")  # sized from the wallet at the order
    await until(
        lambda: (
            harness.db_position(SYM).backstop_price
            == _floor(harness.db_position(SYM).state.avg_price * D("0.93"), "0.01")
        ),
        what="backstop moved to the -7% stop",
    )
    await harness.agree(SYM)

    # -6%: second DCA.
    await fake.set_price(SYM, "94.00")
    rec = await until(
        lambda: (r := harness.db_position(SYM)) and r.state.stage.value == "second_dca" and r, what="second DCA"
    )
    dca2 = [o for o in fake.orders if o.client_order_id.endswith("-dca2-1")]
    assert len(dca2) == 1
    notional = D(str(dca2[0].qty)) * D("94.00")
    assert D("0.0199") * 10 * wallet * D("0.99") <= notional <= D("0.0201") * 10 * wallet
    avg = rec.state.avg_price
    stop = avg * D("0.95")
    await until(lambda: harness.db_position(SYM).backstop_price == _floor(stop, "0.01"), what="-5% backstop")
    await harness.agree(SYM)

    # Last price through the -5% stop while the mark lags above the backstop: the service's own stop fires.
    last = _floor(stop, "0.01") - D("0.05")
    await fake.set_price(SYM, str(last), mark=str(_floor(stop, "0.01") + D("0.50")))
    await until(lambda: harness.db_position(SYM) is None, what="stop loss close")
    closed = harness.store.positions.list_closed()[-1]
    assert closed.close_reason == "stop_loss"
    assert harness.exchange_qty(SYM) == 0
    await until(lambda: harness.resting_stops(SYM) == [], what="backstop cancelled")
    until_ms = harness.store.cooldowns.get(SYM)
    assert until_ms is not None and until_ms - harness.engine.ctx.clock.now_ms() > 23 * 3_600_000
    sells = [o for o in fake.orders if o.client_order_id.startswith("sdca-") and o.side == "SELL"]
    assert len(sells) == 1 and sells[0].reduce_only
    # the journal is fully resolved and agrees with the exchange
    assert [r.client_order_id for r in harness.store.journal.unresolved()] == []
    assert "PositionClosed" in harness.recorder.kinds(SYM)
    await harness.agree(SYM)


async def test_recovery_sells_take_half_and_trailing_runner(harness: Harness) -> None:
    fake = harness.fake
    await fake.open_position_by_hand(SYM, "2.00", price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM), what="adoption")
    await fake.set_price(SYM, "97.00")
    await until(lambda: harness.db_position(SYM).state.stage.value == "first_dca", what="DCA 1")
    await fake.set_price(SYM, "94.00")
    await until(lambda: harness.db_position(SYM).state.stage.value == "second_dca", what="DCA 2")
    dca2_qty = harness.db_position(SYM).state.leg(harness.db_position(SYM).state.stage).qty

    # Back to the first DCA's fill price: the second DCA's lot is sold.
    first_dca_price = next(leg for leg in harness.db_position(SYM).state.legs if leg.stage.value == "first_dca").price
    await fake.set_price(SYM, str(first_dca_price))
    await until(lambda: harness.db_position(SYM).state.stage.value == "first_dca", what="recovery of DCA 2")
    rec2 = [o for o in fake.orders if "-rec2-" in o.client_order_id]
    assert len(rec2) == 1 and D(str(rec2[0].qty)) == dca2_qty and rec2[0].reduce_only
    await harness.agree(SYM)

    # Back to the initial price: the first DCA's lot is sold; the position is the initial lot again.
    await fake.set_price(SYM, "100.00")
    await until(lambda: harness.db_position(SYM).state.stage.value == "initial", what="recovery of DCA 1")
    assert harness.db_position(SYM).state.qty == D("2.00")
    await until(lambda: harness.db_position(SYM).backstop_price == D("90.00"), what="backstop back at -10%")
    await harness.agree(SYM)

    # +10% from the average: half is sold; the runner follows the peak.
    await fake.set_price(SYM, "110.00")
    await until(lambda: harness.db_position(SYM).state.half_taken, what="take half")
    assert harness.db_position(SYM).state.qty == D("1.00")
    await fake.set_price(SYM, "115.00")
    await until(lambda: harness.engine.ctx.book.get(SYM).state.peak_price == D("115.00"), what="new peak")
    # 3% under the peak: the runner exits.
    await fake.set_price(SYM, "111.50")
    await until(lambda: harness.db_position(SYM) is None, what="trailing exit")
    closed = harness.store.positions.list_closed()[-1]
    assert closed.close_reason == "trailing_stop" and closed.realized_pnl is not None and closed.realized_pnl > 0
    await until(lambda: harness.resting_stops(SYM) == [], what="backstop cancelled")
    reasons = [f.reason for f in harness.store.fills.for_position(closed.id) if f.side == "SELL"]
    assert reasons == ["recovery_second_dca", "recovery_first_dca", "take_half", "trailing_stop"]
    until_ms = harness.store.cooldowns.get(SYM)
    assert until_ms is not None and 0.9 * 3_600_000 < until_ms - harness.engine.ctx.clock.now_ms() <= 3_600_000
    await harness.agree(SYM)
