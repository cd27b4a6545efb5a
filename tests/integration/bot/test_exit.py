"""/exit and the Exit button: confirmation is single-use, expires after 60 s, and belongs to who asked."""

from __future__ import annotations

import asyncio

from tests.integration.bot.conftest import CHAT, GROUP, TRADER_A, TRADER_B, USER, BotHarness
from trading.core.models import Stage


async def _ask(h: BotHarness, symbol: str = "btc", chat: int = CHAT, user: int | None = None):
    question = await h.say(f"/exit {symbol}", chat=chat, user=user)
    assert question.text.startswith("Exit ")
    return question


async def test_confirm_exits_once_and_shows_the_fill(harness: BotHarness) -> None:
    pos = await harness.sim.open_position("BTCUSDT", "64000", stage=Stage.FIRST_DCA, last_price="63500")
    qty = pos.state.qty
    mark = harness.sim.last_audit_id()
    question = await _ask(harness)
    assert "Sell " + f"{qty}" in question.text and "stage first DCA" in question.text
    assert "Confirm within 60 s." in question.text
    assert [label for label, _ in question.buttons] == ["✅ Yes", "✖ No"]
    assert all(len(data.encode()) <= 64 for _, data in question.buttons)

    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)

    assert harness.service.count("exit") == 1
    assert ("exit", "BTCUSDT", f"tg:{USER}") in harness.service.calls
    result = harness.fake.message(CHAT, question.message_id)  # the question was replaced in place
    assert result.text.startswith("✅ BTCUSDT closed.")
    assert f"Sold {qty} at 63,500" in result.text and "Result: +" in result.text  # above the average of 62,848
    assert result.buttons == []  # no button left to press twice
    assert "BTCUSDT" not in [p.symbol for p in await harness.service.positions()]
    (sell,) = harness.sim.sells("BTCUSDT")  # one reduce-only sell of the whole position, at the market
    assert (sell.qty, str(sell.price)) == (qty, "63500")
    assert [r.action for r in harness.sim.audit(since_id=mark, actor=f"tg:{USER}")] == ["exit_requested", "fill:manual"]


async def test_double_tap_exits_once(harness: BotHarness) -> None:
    await harness.sim.open_position("ETHUSDT", "2500", last_price="2450")
    question = await _ask(harness, "eth")
    yes = question.button("Yes")
    # An order of ETHUSDT is in flight (its lock is held): the first exit waits for it while the second tap comes.
    lock = harness.sim.engine.executor.lock("ETHUSDT")
    await lock.acquire()
    try:
        first = harness.fake.push_callback(CHAT, USER, question.message_id, yes)
        second = harness.fake.push_callback(CHAT, USER, question.message_id, yes)
        await harness.fake.wait_for(
            lambda: harness.fake.callback_answer(first) and harness.fake.callback_answer(second)
        )
        await harness.fake.wait_for(lambda: harness.service.count("exit") == 1)  # the first one's exit is waiting
        assert harness.sim.sells("ETHUSDT") == []
    finally:
        lock.release()
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    answers = {harness.fake.callback_answer(q).get("text") for q in (first, second)}
    assert "Already done." in answers
    # A third, late tap: still only one exit.
    third = await harness.press(question, yes)
    assert harness.fake.callback_answer(third)["text"] == "Already done."
    assert harness.service.count("exit") == 1
    assert len(harness.sim.sells("ETHUSDT")) == 1


async def test_expired_confirmation_does_nothing(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    question = await _ask(harness)
    harness.clock.advance(61)
    query = await harness.press(question, question.button("Yes"))
    assert harness.fake.callback_answer(query)["text"] == "Expired: nothing was done."
    await harness.fake.wait_for(lambda: "Expired" in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 0
    assert [p.symbol for p in await harness.service.positions()] == ["BTCUSDT"]
    assert harness.sim.sells("BTCUSDT") == []


async def test_just_before_expiry_still_works(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    question = await _ask(harness)
    harness.clock.advance(59)
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 1
    assert len(harness.sim.sells("BTCUSDT")) == 1


async def test_another_allowed_user_cannot_confirm(harness: BotHarness) -> None:
    await harness.sim.enter("SOLUSDT", "150")
    question = await _ask(harness, "sol", chat=GROUP, user=TRADER_A)
    query = await harness.press(question, question.button("Yes"), user=TRADER_B)
    answer = harness.fake.callback_answer(query)
    assert answer["text"] == "Only the person who asked can answer this."
    assert answer.get("show_alert") in ("true", "True", "1", True)
    query = await harness.press(question, question.button("No"), user=TRADER_B)
    assert harness.fake.callback_answer(query)["text"] == "Only the person who asked can answer this."
    assert harness.service.count("exit") == 0
    assert harness.fake.message(GROUP, question.message_id).text.startswith("Exit SOLUSDT?")  # untouched
    # The one who asked still can.
    await harness.press(question, question.button("Yes"), user=TRADER_A)
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(GROUP, question.message_id).text)
    assert ("exit", "SOLUSDT", f"tg:{TRADER_A}") in harness.service.calls
    assert harness.service.count("exit") == 1
    assert [r.action for r in harness.sim.audit(actor=f"tg:{TRADER_A}")] == ["exit_requested", "fill:manual"]


async def test_no_cancels(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    question = await _ask(harness)
    yes = question.button("Yes")
    await harness.press(question, question.button("No"))
    await harness.fake.wait_for(lambda: "Cancelled" in harness.fake.message(CHAT, question.message_id).text)
    assert harness.fake.message(CHAT, question.message_id).buttons == []
    query = await harness.press(question, yes)  # a Yes pressed from a client that had not refreshed yet
    assert harness.fake.callback_answer(query)["text"] == "Already cancelled."
    assert harness.service.count("exit") == 0
    assert harness.sim.sells("BTCUSDT") == []


async def test_exit_button_on_positions_asks_first(harness: BotHarness) -> None:
    await harness.sim.open_position("DOGEUSDT", "0.2", last_price="0.21")
    listing = await harness.say("/positions")
    before = len(harness.fake.bot_messages(CHAT))
    await harness.press(
        listing, listing.button("Exit DOGEUSDT"), until=lambda: len(harness.fake.bot_messages(CHAT)) > before
    )
    question = harness.fake.last_message(CHAT)
    assert question.text.startswith("Exit DOGEUSDT?")
    assert harness.service.count("exit") == 0
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 1
    assert len(harness.sim.sells("DOGEUSDT")) == 1


async def test_position_gone_between_question_and_yes(harness: BotHarness) -> None:
    entry = await harness.sim.enter("BTCUSDT", "64000")
    question = await _ask(harness)
    await harness.sim.trade("BTCUSDT", "57000")  # the stop loss (-10 % at the first stage) fires meanwhile
    assert "BTCUSDT" not in harness.sim.ctx.book
    assert harness.sim.store.positions.get(entry.position_id).close_reason == "stop_loss"
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(
        lambda: harness.fake.message(CHAT, question.message_id).text == "No open position in BTCUSDT."
    )
    assert harness.service.count("exit") == 1  # asked, and refused by the service
    assert len(harness.sim.sells("BTCUSDT")) == 1  # the stop's sell only


async def test_concurrent_questions_are_independent(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    await harness.sim.enter("ETHUSDT", "2500")
    q1 = await _ask(harness, "btc")
    q2 = await _ask(harness, "eth")
    await asyncio.gather(harness.press(q2, q2.button("Yes")), harness.press(q1, q1.button("No")))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, q2.message_id).text)
    assert [c for c in harness.service.calls if c[0] == "exit"] == [("exit", "ETHUSDT", f"tg:{USER}")]
    assert harness.sim.sells("BTCUSDT") == [] and len(harness.sim.sells("ETHUSDT")) == 1
