"""Chats not in TELEGRAM_ALLOWED_CHAT_IDS: no reply at all, no service call, one audit row per chat and hour."""

from __future__ import annotations

from tests.integration.bot.conftest import CHAT, STRANGER, BotHarness


async def test_stranger_messages_get_nothing_but_one_audit_row_an_hour(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    harness.fake.push_message(STRANGER, STRANGER, "/exit btc")
    harness.fake.push_message(STRANGER, STRANGER, "/exit btc")
    harness.fake.push_message(STRANGER, STRANGER, "/positions")
    await harness.settle()  # an allowed round trip afterwards: the stranger's updates are fully handled by now
    assert harness.fake.bot_messages(STRANGER) == []
    assert not [c for c in harness.fake.sent if str(c.params.get("chat_id")) == str(STRANGER)]
    assert [c[0] for c in harness.service.calls] == []  # not even exit_preview
    assert harness.service.audit_rows == []  # counted while the hour lasts

    harness.clock.advance(3600)  # the next hour: the first one from anybody closes the last hour's tally
    harness.fake.push_message(STRANGER, STRANGER, "/help")
    await harness.fake.wait_for(lambda: harness.service.audit_rows)
    (row,) = harness.service.audit_rows
    assert row["actor"] == f"tg:{STRANGER}"
    assert row["action"] == "unauthorized"
    after = row["after"]
    assert (after["chat_id"], after["count"], after["users"]) == (STRANGER, 3, [STRANGER])
    assert after["samples"] == ["/exit btc", "/positions"]


async def test_stranger_button_press_gets_no_answer(harness: BotHarness) -> None:
    # A button forged or left over in a chat that is not (or no longer) allowed.
    query = harness.fake.push_callback(STRANGER, STRANGER, 42, "cf:x:AAAAAAAAAAAA:1")
    await harness.settle()
    harness.dp["audit_tally"].flush()  # what stopping the bot does
    assert harness.fake.callback_answer(query) is None  # not even answerCallbackQuery
    assert not harness.fake.calls("answerCallbackQuery")
    (row,) = harness.service.audit_rows
    assert row["after"]["samples"] == ["button:cf:x:AAAAAAAAAAAA:1"] and row["after"]["count"] == 1
    assert harness.service.count("exit") == 0


async def test_allowed_chat_is_answered(harness: BotHarness) -> None:
    reply = await harness.say("/help", chat=CHAT)
    assert "/positions" in reply.text
    assert harness.service.audit_rows == []
