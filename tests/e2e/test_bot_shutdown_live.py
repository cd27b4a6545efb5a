"""Stopping the real service with its bot on: a confirmed /exit finishes, later ones are refused, nothing leaks."""

from __future__ import annotations

import asyncio
import gc
import logging
import warnings
from decimal import Decimal

import pytest

from tests.e2e.bot_harness import CHAT, GROUP, BotE2E
from tests.e2e.conftest import until

D = Decimal
SYM = "SOLUSDT"
LEAK_MARKERS = ("unclosed", "was destroyed but it is pending", "never retrieved", "exception was never")


async def _adopted(tgbot: BotE2E) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await tgbot.alerts_idle()


async def test_a_confirmed_exit_finishes_during_the_stop_and_nothing_is_left_running(
    tgbot: BotE2E, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    baseline = set(asyncio.all_tasks())  # the fakes' own server tasks
    await _adopted(tgbot)
    fake, tg = tgbot.h.fake, tgbot.tg
    service = tgbot.service
    question = await tgbot.say("/exit sol")
    fake.faults.delay("POST", "/fapi/v1/order", 1.0)  # the sell is still on the wire when the stop begins
    tg.push_callback(CHAT, CHAT, question.message_id, question.button("Yes"))
    await until(lambda: "Selling" in tgbot.current(question).text, what="the exit under way")

    await tgbot.h.stop()
    # The stop waited for the exit: its result replaced the question, and it was the only order.
    assert tgbot.current(question).text.startswith("✅ SOLUSDT closed.")
    assert len(tgbot.sells(SYM)) == 1 and fake.position(SYM).qty == 0
    for chat in (CHAT, GROUP):
        assert tgbot.alerts(chat, "SurgeDCA stopping: test finished")
    assert service.bot_task is not None and service.bot_task.done() and service.bot_task.exception() is None
    http = getattr(service.bot.session, "_session", None) if service.bot is not None else None
    assert http is None or http.closed  # the bot's HTTP session is closed

    def leftovers() -> list[asyncio.Task[object]]:
        me = asyncio.current_task()
        return [t for t in asyncio.all_tasks() if t not in baseline and t is not me and not t.done()]

    await until(lambda: not leftovers(), timeout=3, what=f"no task left running: {leftovers()}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    leaks = [r.getMessage() for r in caplog.records if any(m in r.getMessage().lower() for m in LEAK_MARKERS)]
    assert leaks == []

    # A restart on the same database: the position is closed, nothing is left to resolve, no second order.
    await tgbot.start()
    assert tgbot.h.db_position(SYM) is None and tgbot.h.store.journal.unresolved() == []
    closed = tgbot.h.store.positions.list_closed()[-1]
    assert closed.close_reason == "manual"
    await tgbot.settle()
    assert len(tgbot.sells(SYM)) == 1


async def test_an_exit_confirmed_while_the_service_stops_is_refused(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    fake = tgbot.h.fake
    question = await tgbot.say("/exit sol")
    # Order work in flight (a DCA whose reply is slow) keeps the stop draining for a while.
    fake.faults.delay("POST", "/fapi/v1/order", 1.5)
    await fake.set_price(SYM, "97.00")
    await until(lambda: tgbot.h.engine.runner.in_flight > 0, what="the DCA in flight")
    stopping = asyncio.create_task(tgbot.h.stop())
    await until(lambda: tgbot.h.service is None or tgbot.h.engine.ctx.stopping, what="the stop under way")
    assert not stopping.done()

    tgbot.tg.push_callback(CHAT, CHAT, question.message_id, question.button("Yes"))
    await tgbot.tg.wait_for(lambda: "stopping" in tgbot.current(question).text, 10)
    assert tgbot.current(question).text == "The service is stopping: nothing was done. Try again once it is back."
    await asyncio.wait_for(stopping, 20)
    assert tgbot.sells(SYM) == []  # the DCA went through; no sell was sent
    assert fake.position(SYM).qty > D("1.00")
