"""Order discipline end to end: an exchange that refuses, rate-limits and loses replies the way Binance does.

Each test is one defect of issue 9 reproduced through the real service (live mode: ccxt adapter, WebSocket
streams, SQLite) against the loopback fake Binance; each failed on the code before the execution core.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"
ORDER = "/fapi/v1/order"
ALGO = "/fapi/v1/algoOrder"


async def _adopted(harness: Harness, qty: str = "1.00", **over: object) -> None:
    await harness.fake.open_position_by_hand(SYM, qty, price="100.00")
    await harness.start(**over)
    await until(lambda: harness.db_position(SYM), what="adoption")
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="backstop")
    await until(lambda: harness.fake.ws_clients("private"), what="the user-data stream connected")


def _posts(harness: Harness, path: str = ORDER, **match: str) -> list[object]:
    return [
        r
        for r in harness.fake.requests
        if r.method == "POST" and r.path == path and all(r.params.get(k) == v for k, v in match.items())
    ]


async def _ticks(harness: Harness, price: str, n: int) -> None:
    """``n`` trades at ``price``, each one waited for until the service's monitor has handled it (whatever it
    decided is on its way by then)."""
    monitor = harness.engine.monitor
    for _ in range(n):
        seen = monitor.ticks
        await harness.fake.set_price(SYM, price)
        await until(lambda seen=seen: monitor.ticks > seen, what="the trade handled")  # type: ignore[misc]
        await asyncio.sleep(0)  # and the order task it may have started gets its first turn


def _short_rest_timeout(harness: Harness, seconds: float) -> None:
    """The adapter's REST timeout (10 s in service) shortened so a held request times out quickly."""
    harness.engine.ctx.port._ex.timeout = int(seconds * 1000)


async def test_a_refused_dca_is_not_sent_again_on_every_price_tick(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    # After a market-wide drop the account has no margin left for the DCA: Binance answers -2019 to every buy.
    fake.faults.refuse("POST", ORDER, -2019, side="BUY", seconds=120)
    for i in range(200):  # 200 ticks at the DCA level over ~4 s
        await fake.set_price(SYM, "96.90" if i % 2 else "96.80")
        await asyncio.sleep(0.02)
    buys = _posts(harness, side="BUY")
    assert 1 <= len(buys) <= 4, f"{len(buys)} DCA orders sent into a refusal"
    refused = [e for e in harness.recorder.events if e.kind == "OrderRefused" and e.symbol == SYM]
    assert len(refused) == 1 and refused[0].code == -2019 and refused[0].what == "first_dca"  # one alert, in words
    rec = harness.db_position(SYM)
    assert rec is not None and rec.state.stage.value == "initial" and rec.state.qty == D("1.00")
    # The position stays managed: its stop still fires (the mark above the backstop, so the service acts).
    await fake.set_price(SYM, "89.50", mark="91.00")
    await until(lambda: harness.db_position(SYM) is None, what="stop loss after the refused DCA")
    assert harness.store.positions.list_closed()[-1].close_reason == "stop_loss"


async def test_a_refused_dca_is_given_up_after_a_few_tries_and_the_position_stays_managed(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    fake.faults.refuse("POST", ORDER, -2019, side="BUY", seconds=120)
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline and not any(
        e.kind == "OrderRefused" and e.gave_up for e in harness.recorder.events
    ):
        await fake.set_price(SYM, "96.90")
        await asyncio.sleep(0.1)
    buys = len(_posts(harness, side="BUY"))
    assert buys == 3, buys  # 2 s, then 4 s of back-off, then given up
    await _ticks(harness, "96.80", 20)
    assert len(_posts(harness, side="BUY")) == buys  # given up: no more buys for this position
    await fake.set_price(SYM, "110.50")  # its take-half still happens
    await until(lambda: (r := harness.db_position(SYM)) and r.state.half_taken, what="take-half of a given-up DCA")


async def test_an_exit_refused_with_a_rate_limit_is_done_within_seconds_not_after_retry_after(
    harness: Harness,
) -> None:
    fake = harness.fake
    await _adopted(harness)
    fake.faults.refuse("POST", ORDER, -1003, status=429, retry_after=30, times=1, reduce_only=True)
    t0 = time.monotonic()
    await fake.set_price(SYM, "89.50", mark="91.00")  # through the stop; the mark keeps the backstop resting
    await until(lambda: harness.db_position(SYM) is None, timeout=10, what="stop loss despite the 429")
    assert time.monotonic() - t0 < 6, "the exit waited for Retry-After"
    sells = _posts(harness, side="SELL")
    assert len(sells) == 2  # refused once (429), sent again after the back-off floor
    assert harness.store.positions.list_closed()[-1].close_reason == "stop_loss"
    assert harness.exchange_qty(SYM) == 0


async def test_a_take_half_whose_reply_was_lost_never_sells_more_than_half(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness, qty="2.00")
    _short_rest_timeout(harness, 1.5)
    held = fake.faults.hold_next("POST", ORDER)  # the take-half is on its way but has not reached the exchange
    await fake.set_price(SYM, "110.50")
    await until(lambda: held.hits == 1, what="the take-half held on its way")
    await until(
        lambda: any(r.status == "unknown" for r in harness.store.journal.unresolved()),
        timeout=10,
        what="its outcome unknown after the timeout",
    )
    # The lookups found nothing; the original may still arrive. Nothing else may sell meanwhile.
    await _ticks(harness, "110.60", 30)
    assert len(_posts(harness, side="SELL")) == 1, "sent again while the original could still arrive"
    held.release()  # it arrives, inside its request window, and executes
    await until(
        lambda: (r := harness.db_position(SYM)) is not None and r.state.half_taken,
        timeout=20,
        what="the late take-half found and applied",
    )
    assert harness.exchange_qty(SYM) == D("1.00")
    halves = [o for o in fake.orders if "-half-" in o.client_order_id]
    assert len(halves) == 1 and D(str(halves[0].qty)) == D("1.00")
    await harness.agree(SYM)


async def test_a_take_half_that_never_arrived_is_sent_again_only_after_its_request_window(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness, qty="2.00")
    _short_rest_timeout(harness, 1.0)
    held = fake.faults.hold_next("POST", ORDER, timeout_s=40)
    await fake.set_price(SYM, "110.50")
    await until(lambda: held.hits == 1, what="the take-half held on its way")
    t_sent = time.monotonic()
    while time.monotonic() - t_sent < 8:  # well inside the 10 s window: nothing is sent again
        await fake.set_price(SYM, "110.60")
        await asyncio.sleep(0.1)
    assert len(_posts(harness, side="SELL")) == 1
    # Once the window has passed and the exchange confirms it absent, the ladder decides anew.
    await until(
        lambda: (r := harness.db_position(SYM)) is not None and r.state.half_taken,
        timeout=25,
        what="the take-half sent again after the window",
    )
    assert time.monotonic() - t_sent >= 10
    held.release()  # the original shows up now: too late, refused -1021, never executed
    await until(lambda: [r for r in _posts(harness, side="SELL") if r.code == -1021], what="the late original refused")
    assert harness.exchange_qty(SYM) == D("1.00")
    assert len([o for o in fake.orders if "-half-" in o.client_order_id]) == 1
    await harness.agree(SYM)


async def test_a_failed_backstop_replacement_leaves_the_old_stop_resting(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    old = harness.resting_stops(SYM)[0]
    assert D(str(old.trigger_price)) == D("90.00")
    # Refused at the DCA and again at the next reconcile round (the old stop must still rest in between).
    fake.faults.refuse("POST", ALGO, -1003, status=429, retry_after=1, times=2)
    await fake.set_price(SYM, "97.00")  # first DCA: the backstop must move to the -7% stop
    await until(lambda: harness.db_position(SYM).state.stage.value == "first_dca", what="first DCA")
    await until(
        lambda: any(e.kind == "ErrorEvent" and e.where == "backstop" for e in harness.recorder.events),
        what="the refused replacement reported",
    )
    stops = harness.resting_stops(SYM)
    assert [s.client_algo_id for s in stops] == [old.client_algo_id], "the position lost its exchange stop"
    assert harness.db_position(SYM).backstop_client_id == old.client_algo_id
    # Once the exchange accepts again, the reconciler moves it to the new stage's price (bridge, then swap).
    rec = await until(
        lambda: (
            (r := harness.db_position(SYM))
            and r.backstop_client_id != old.client_algo_id
            and "-bs-" in (r.backstop_client_id or "")
            and r
        ),
        timeout=20,
        what="the backstop moved",
    )
    assert rec.backstop_price < D("97.00") * D("0.94") and rec.backstop_price > D("90.00")
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="the bridge retired")
    harness.assert_agree(SYM)


async def test_a_backstop_cancelled_by_hand_is_back_within_seconds(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    old = harness.resting_stops(SYM)[0]
    t0 = time.monotonic()
    await fake.cancel_algo_by_hand(old.client_algo_id)
    await until(
        lambda: [s.client_algo_id for s in harness.resting_stops(SYM)] not in ([], [old.client_algo_id]),
        timeout=5,
        what="the backstop put back",
    )
    assert time.monotonic() - t0 < 5
    lost = [e for e in harness.recorder.events if e.kind == "BackstopLost"]
    assert len(lost) == 1 and lost[0].status == "CANCELED" and lost[0].restored_price == D("90.00")
    await harness.agree(SYM)
    # And when the exchange expires it (system cancel), too.
    second = harness.resting_stops(SYM)[0]
    await fake.expire_algo_order(second.client_algo_id)
    await until(
        lambda: [s.client_algo_id for s in harness.resting_stops(SYM)] not in ([], [second.client_algo_id]),
        timeout=5,
        what="the expired backstop put back",
    )
    await harness.agree(SYM)


async def test_held_positions_are_decided_at_once_after_a_restart(harness: Harness) -> None:
    fake = harness.fake
    # Mark prices keep the symbol "alive", so the REST price fallback (here: after 30 s) plays no part.
    harness.strategy.write_text("reconcile_interval_s = 5\nfallback_poll_interval_s = 30\n")
    await _adopted(harness)
    await fake.set_price(SYM, "97.00")
    await until(lambda: harness.db_position(SYM).state.stage.value == "first_dca", what="first DCA")
    await until(lambda: harness.resting_stops(SYM) and harness.assert_agree(SYM) is not None, what="backstop moved")
    await harness.stop()
    await fake.set_price(SYM, "93.90", mark="94.50")  # past the second DCA level while the service was down
    orders_before = len(fake.orders)

    async def marks() -> None:  # markPrice@1s keeps ticking while nothing trades: no REST polling starts
        while True:
            await fake.set_mark_price(SYM, "94.50")
            await asyncio.sleep(0.5)

    ticker = asyncio.create_task(marks())
    try:
        await harness.start()
        # No new trade arrives: the price read at start-up decides.
        await until(
            lambda: harness.db_position(SYM).state.stage.value == "second_dca", timeout=8, what="second DCA at start-up"
        )
    finally:
        ticker.cancel()
    assert len([o for o in fake.orders[orders_before:] if o.side == "BUY"]) == 1


async def test_a_second_installation_on_the_same_account_refuses_to_trade_and_cancels_nothing(
    harness: Harness, tmp_path: Path
) -> None:
    fake = harness.fake
    await _adopted(harness)  # the first installation holds the position and its backstop
    deletes_from = len(fake.requests)
    posts_before = sum(1 for r in fake.requests if r.method == "POST" and r.path in (ORDER, ALGO))

    (tmp_path / "second").mkdir()
    second = Harness(fake, tmp_path / "second")  # another database: another instance tag
    try:
        await second.start()
        ctx = second.engine.ctx
        assert ctx.halted and "another SurgeDCA installation" in (ctx.halt_reason or "")
        halted = [e for e in second.recorder.events if e.kind == "TradingHalted"]
        assert len(halted) == 1 and halted[0].cause == "foreign_instance"
        assert second.service is not None and second.service.api is not None
        health = await second.service.api.health()
        assert health.halted is not None  # /health says why
        # It neither adopted the first one's position nor touched its stop, and sends nothing while halted.
        assert second.db_position(SYM) is None
        await fake.set_price(SYM, "96.50")  # a DCA level for the first installation's position
        await until(lambda: harness.db_position(SYM).state.stage.value == "first_dca", what="the first one's DCA")
        await until(lambda: harness.assert_agree(SYM) is not None, what="the first one's backstop moved")
        report = await second.service.api.sync("tg:1")
        assert any(i.kind == "foreign_instance" for i in report.items)
    finally:
        await second.stop()
    tag = harness.engine.executor.ids.tag
    cancels = [r for r in fake.requests[deletes_from:] if r.method == "DELETE" and r.path in (ORDER, ALGO)]
    ids = [r.params.get("clientAlgoId") or r.params.get("origClientOrderId") or "" for r in cancels]
    assert all(i.startswith(f"sdca-{tag}-") for i in ids), ids  # only the first replacing its own stop
    buys = [r for r in fake.requests[posts_before:] if r.method == "POST" and r.path == ORDER]
    assert all(r.params.get("newClientOrderId", "").startswith(f"sdca-{tag}-") for r in buys)
    harness.assert_agree(SYM)


async def test_an_exit_asked_from_the_phone_is_sent_again_after_a_rate_limit(harness: Harness) -> None:
    fake = harness.fake
    await _adopted(harness)
    fake.faults.refuse("POST", ORDER, -1003, status=429, retry_after=30, times=1, reduce_only=True)
    assert harness.service is not None and harness.service.api is not None
    t0 = time.monotonic()
    result = await harness.service.api.exit("sol", "tg:42")
    assert result.filled and result.qty == D("1.00")
    assert 1.5 < time.monotonic() - t0 < 6  # once refused, sent again after the 2 s floor, not after 30 s
    assert len(_posts(harness, side="SELL")) == 2
    assert harness.db_position(SYM) is None and harness.exchange_qty(SYM) == 0
