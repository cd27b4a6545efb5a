"""Chats not in TELEGRAM_ALLOWED_CHAT_IDS: no reply at all, no service call, one audit row each."""

from __future__ import annotations

from tests.integration.bot.conftest import CHAT, STRANGER, BotHarness


async def test_stranger_message_gets_nothing_but_an_audit_row(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    harness.fake.push_message(STRANGER, STRANGER, "/exit btc")
    await harness.fake.wait_for(lambda: harness.service.audit_rows)
    await harness.settle()  # an allowed round trip afterwards: the stranger's update is fully handled by now
    assert harness.fake.bot_messages(STRANGER) == []
    assert not [c for c in harness.fake.sent if str(c.params.get("chat_id")) == str(STRANGER)]
    assert [c[0] for c in harness.service.calls] == []  # not even exit_preview
    (row,) = harness.service.audit_rows
    assert row["actor"] == f"tg:{STRANGER}"
    assert row["action"] == "unauthorized"
    assert row["after"] == {"chat_id": STRANGER, "user_id": STRANGER, "text": "/exit btc"}


async def test_stranger_button_press_gets_no_answer(harness: BotHarness) -> None:
    # A button forged or left over in a chat that is not (or no longer) allowed.
    query = harness.fake.push_callback(STRANGER, STRANGER, 42, "cf:x:AAAAAAAAAAAA:1")
    await harness.fake.wait_for(lambda: harness.service.audit_rows)
    await harness.settle()
    assert harness.fake.callback_answer(query) is None  # not even answerCallbackQuery
    assert not harness.fake.calls("answerCallbackQuery")
    (row,) = harness.service.audit_rows
    assert row["after"] == {"chat_id": STRANGER, "user_id": STRANGER, "data": "cf:x:AAAAAAAAAAAA:1"}
    assert harness.service.count("exit") == 0


async def test_allowed_chat_is_answered(harness: BotHarness) -> None:
    reply = await harness.say("/help", chat=CHAT)
    assert "/positions" in reply.text
    assert harness.service.audit_rows == []
