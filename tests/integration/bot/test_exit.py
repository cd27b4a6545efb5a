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
    pos = harness.service.add_position("BTCUSDT", "64000", stage=Stage.FIRST_DCA, last_price="65000")
    question = await _ask(harness)
    assert "Sell " + f"{pos.qty}" in question.text and "stage first DCA" in question.text
    assert "Confirm within 60 s." in question.text
    assert [label for label, _ in question.buttons] == ["✅ Yes", "✖ No"]
    assert all(len(data.encode()) <= 64 for _, data in question.buttons)

    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)

    assert harness.service.count("exit") == 1
    assert ("exit", "BTCUSDT", f"tg:{USER}") in harness.service.calls
    result = harness.fake.message(CHAT, question.message_id)  # the question was replaced in place
    assert result.text.startswith("✅ BTCUSDT closed.")
    assert f"Sold {pos.qty} at 65,000" in result.text and "Result: +" in result.text
    assert result.buttons == []  # no button left to press twice
    assert "BTCUSDT" not in [p.symbol for p in await harness.service.positions()]
    assert [r["action"] for r in harness.service.audit_rows] == ["exit"]


async def test_double_tap_exits_once(harness: BotHarness) -> None:
    harness.service.exit_delay_s = 0.2  # the first exit is still running when the second tap arrives
    harness.service.add_position("ETHUSDT", "2500", last_price="2450")
    question = await _ask(harness, "eth")
    yes = question.button("Yes")
    first = harness.fake.push_callback(CHAT, USER, question.message_id, yes)
    second = harness.fake.push_callback(CHAT, USER, question.message_id, yes)
    await harness.fake.wait_for(lambda: harness.fake.callback_answer(first) and harness.fake.callback_answer(second))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    answers = {harness.fake.callback_answer(q).get("text") for q in (first, second)}
    assert "Already done." in answers
    # A third, late tap: still only one exit.
    third = await harness.press(question, yes)
    assert harness.fake.callback_answer(third)["text"] == "Already done."
    assert harness.service.count("exit") == 1


async def test_expired_confirmation_does_nothing(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    question = await _ask(harness)
    harness.clock.advance(61)
    query = await harness.press(question, question.button("Yes"))
    assert harness.fake.callback_answer(query)["text"] == "Expired: nothing was done."
    await harness.fake.wait_for(lambda: "Expired" in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 0
    assert [p.symbol for p in await harness.service.positions()] == ["BTCUSDT"]


async def test_just_before_expiry_still_works(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    question = await _ask(harness)
    harness.clock.advance(59)
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 1


async def test_another_allowed_user_cannot_confirm(harness: BotHarness) -> None:
    harness.service.add_position("SOLUSDT", "150")
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


async def test_no_cancels(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    question = await _ask(harness)
    yes = question.button("Yes")
    await harness.press(question, question.button("No"))
    await harness.fake.wait_for(lambda: "Cancelled" in harness.fake.message(CHAT, question.message_id).text)
    assert harness.fake.message(CHAT, question.message_id).buttons == []
    query = await harness.press(question, yes)  # a Yes pressed from a client that had not refreshed yet
    assert harness.fake.callback_answer(query)["text"] == "Already cancelled."
    assert harness.service.count("exit") == 0


async def test_exit_button_on_positions_asks_first(harness: BotHarness) -> None:
    harness.service.add_position("DOGEUSDT", "0.2", last_price="0.21")
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


async def test_position_gone_between_question_and_yes(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    question = await _ask(harness)
    await harness.service.exit("BTCUSDT", "system")  # e.g. the stop loss fired meanwhile
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(
        lambda: harness.fake.message(CHAT, question.message_id).text == "No open position in BTCUSDT."
    )
    assert harness.service.count("exit") == 2  # the system's, and the refused one


async def test_concurrent_questions_are_independent(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    harness.service.add_position("ETHUSDT", "2500")
    q1 = await _ask(harness, "btc")
    q2 = await _ask(harness, "eth")
    await asyncio.gather(harness.press(q2, q2.button("Yes")), harness.press(q1, q1.button("No")))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, q2.message_id).text)
    assert [c for c in harness.service.calls if c[0] == "exit"] == [("exit", "ETHUSDT", f"tg:{USER}")]
