"""Telegram's harmless refusals, HTML injection and long messages."""

from __future__ import annotations

from tests.fakes.telegram.server import NOT_MODIFIED, QUERY_TOO_OLD
from tests.integration.bot.conftest import CHAT, BotHarness
from trading.core.reports import Condition, SignalReport


async def test_refresh_edits_in_place(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000", last_price="64000")
    listing = await harness.say("/positions")
    harness.service.set_price("BTCUSDT", "66000")
    harness.clock.advance(5)
    await harness.press(listing, listing.button("Refresh"))
    await harness.fake.wait_for(lambda: "66,000" in harness.fake.message(CHAT, listing.message_id).text)
    assert len(harness.fake.bot_messages(CHAT)) == 1  # edited, not re-sent
    assert harness.fake.message(CHAT, listing.message_id).edit_count == 1


async def test_refresh_with_nothing_new_is_harmless(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    listing = await harness.say("/positions")
    # Same prices, same clock: Telegram answers "message is not modified" (the fake does, as Telegram would).
    query = await harness.press(listing, listing.button("Refresh"))
    edits = harness.fake.calls("editMessageText")
    assert len(edits) == 1 and edits[0].status == 400
    assert harness.fake.callback_answer(query)["text"] == "Already up to date."
    # And when Telegram says so for its own reasons, too:
    harness.clock.advance(5)
    harness.fake.fail_next("editMessageText", 400, NOT_MODIFIED)
    await harness.press(listing, listing.button("Refresh"))
    await harness.settle()
    texts = harness.fake.messages(CHAT)
    assert len(texts) == 2  # the listing and the /help reply: no error message in between
    assert not any("Something went wrong" in t for t in texts)


async def test_query_too_old_is_harmless(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000", last_price="64000")
    listing = await harness.say("/positions")
    harness.service.set_price("BTCUSDT", "61000")
    harness.clock.advance(5)
    harness.fake.fail_next("answerCallbackQuery", 400, QUERY_TOO_OLD)
    harness.fake.push_callback(CHAT, CHAT, listing.message_id, listing.button("Refresh"))
    await harness.fake.wait_for(lambda: "61,000" in harness.fake.message(CHAT, listing.message_id).text)
    await harness.settle()
    assert [c.status for c in harness.fake.calls("answerCallbackQuery")] == [400]
    assert not any("Something went wrong" in t for t in harness.fake.messages(CHAT))


async def test_query_too_old_on_a_confirmation_still_exits_once(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    question = await harness.say("/exit btc")
    harness.fake.fail_next("answerCallbackQuery", 400, QUERY_TOO_OLD)
    harness.fake.push_callback(CHAT, CHAT, question.message_id, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 1


async def test_html_in_a_symbol_is_escaped(harness: BotHarness) -> None:
    # A symbol the bot did not type itself (e.g. adopted from the exchange) with markup in it.
    harness.service.add_position("<i>X</i>&USDT", "1", origin="adopted")
    listing = await harness.say("/positions")
    assert "<i>X</i>&USDT · initial entry · adopted" in listing.text  # shown literally
    assert "&lt;i&gt;X&lt;/i&gt;&amp;USDT" in (listing.html or "")
    # What a user types is escaped too.
    reply = await harness.say("/why <b>btc</b>")
    assert reply.text == "<b>btc</b> is not a symbol. Write it like btc or BTCUSDT."
    reply = await harness.say("/moon<script>")
    assert reply.text.startswith("Unknown command /moon<script>.")


async def test_long_reply_is_split_under_the_limit(harness: BotHarness) -> None:
    conditions = tuple(
        Condition(f"C{i}", i % 2 == 0, {"value": i * 1.5, "threshold": 3.25}, "x" * 120 + " <&> " + str(i))
        for i in range(60)
    )
    harness.service.why_reports["BTCUSDT"] = SignalReport("BTCUSDT", 1_761_699_960_000, prefilter=(), m1=conditions)
    before = len(harness.fake.bot_messages(CHAT))
    harness.fake.push_message(CHAT, CHAT, "/why btc")
    await harness.fake.wait_for(lambda: len(harness.fake.bot_messages(CHAT)) >= before + 3)
    await harness.settle()
    parts = [m for m in harness.fake.bot_messages(CHAT)[before:] if "/positions —" not in m.text]
    assert len(parts) >= 3
    assert all(len(m.html or m.text) <= 4096 for m in parts)
    joined = "\n".join(m.text for m in parts)
    for i in range(60):
        assert f"C{i} " in joined
    assert joined.count("<&>") == 60  # nothing lost or cut inside an entity


async def test_a_429_on_a_reply_is_waited_out(harness: BotHarness) -> None:
    harness.fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    reply = await harness.say("/help", within=5)
    assert "/positions" in reply.text
    attempts = harness.fake.calls("sendMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.95
