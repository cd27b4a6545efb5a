"""Chats not in TELEGRAM_ALLOWED_CHAT_IDS: no reply at all, no service call, one audit row per chat and hour."""

from __future__ import annotations

from tests.integration.bot.conftest import CHAT, STRANGER, BotHarness


async def test_stranger_messages_get_nothing_but_one_audit_row_an_hour(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    mark = harness.sim.last_audit_id()
    harness.fake.push_message(STRANGER, STRANGER, "/exit btc")
    harness.fake.push_message(STRANGER, STRANGER, "/exit btc")
    harness.fake.push_message(STRANGER, STRANGER, "/positions")
    await harness.settle()  # an allowed round trip afterwards: the stranger's updates are fully handled by now
    assert harness.fake.bot_messages(STRANGER) == []
    assert not [c for c in harness.fake.sent if str(c.params.get("chat_id")) == str(STRANGER)]
    assert harness.service.calls == [("chat_locale", CHAT)]  # the /help's language; for the stranger not even that
    assert harness.sim.audit(since_id=mark) == []  # counted while the hour lasts
    assert "BTCUSDT" in harness.sim.ctx.book and harness.sim.sells("BTCUSDT") == []

    harness.clock.advance(3600)  # the next hour: the first one from anybody closes the last hour's tally
    harness.fake.push_message(STRANGER, STRANGER, "/help")
    await harness.fake.wait_for(lambda: harness.sim.audit(since_id=mark))
    (row,) = harness.sim.audit(since_id=mark)
    assert row.actor == f"tg:{STRANGER}"
    assert row.action == "unauthorized"
    after = row.after
    assert (after["chat_id"], after["count"], after["users"]) == (STRANGER, 3, [STRANGER])
    assert after["samples"] == ["/exit btc", "/positions"]


async def test_stranger_button_press_gets_no_answer(harness: BotHarness) -> None:
    # A button forged or left over in a chat that is not (or no longer) allowed.
    await harness.sim.enter("BTCUSDT", "64000")
    mark = harness.sim.last_audit_id()
    query = harness.fake.push_callback(STRANGER, STRANGER, 42, "cf:x:AAAAAAAAAAAA:1")
    await harness.settle()
    harness.dp["audit_tally"].flush()  # what stopping the bot does
    assert harness.fake.callback_answer(query) is None  # not even answerCallbackQuery
    assert not harness.fake.calls("answerCallbackQuery")
    (row,) = harness.sim.audit(since_id=mark)
    assert row.after["samples"] == ["button:cf:x:AAAAAAAAAAAA:1"] and row.after["count"] == 1
    assert harness.service.count("exit") == 0 and harness.sim.sells("BTCUSDT") == []


async def test_allowed_chat_is_answered(harness: BotHarness) -> None:
    mark = harness.sim.last_audit_id()
    reply = await harness.say("/help", chat=CHAT)
    assert "/positions" in reply.text
    assert harness.sim.audit(since_id=mark) == []
