"""Telegram's harmless refusals, HTML injection and long messages."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from tests.fakes.telegram.server import NOT_MODIFIED, QUERY_TOO_OLD
from tests.integration.bot.conftest import CHAT, USER, BotHarness
from tests.integration.bot.sim_service import MARKET, Listing

ODD = "<i>X</i>&USDT"  # a symbol the bot did not type itself, with markup in it


@pytest.fixture
def market() -> Iterable[Listing]:
    return (*MARKET, Listing(ODD, "1.000", 10))


async def test_refresh_edits_in_place(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    listing = await harness.say("/positions")
    await harness.sim.trade("BTCUSDT", "66000")
    harness.clock.advance(5)
    await harness.press(listing, listing.button("Refresh"))
    await harness.fake.wait_for(lambda: "66,000" in harness.fake.message(CHAT, listing.message_id).text)
    assert len(harness.fake.bot_messages(CHAT)) == 1  # edited, not re-sent
    assert harness.fake.message(CHAT, listing.message_id).edit_count == 1


async def test_refresh_with_nothing_new_is_harmless(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
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
    await harness.sim.enter("BTCUSDT", "64000")
    listing = await harness.say("/positions")
    await harness.sim.trade("BTCUSDT", "62500")
    harness.clock.advance(5)
    harness.fake.fail_next("answerCallbackQuery", 400, QUERY_TOO_OLD)
    harness.fake.push_callback(CHAT, CHAT, listing.message_id, listing.button("Refresh"))
    await harness.fake.wait_for(lambda: "62,500" in harness.fake.message(CHAT, listing.message_id).text)
    await harness.settle()
    assert [c.status for c in harness.fake.calls("answerCallbackQuery")] == [400]
    assert not any("Something went wrong" in t for t in harness.fake.messages(CHAT))


async def test_query_too_old_on_a_confirmation_still_exits_once(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    question = await harness.say("/exit btc")
    harness.fake.fail_next("answerCallbackQuery", 400, QUERY_TOO_OLD)
    harness.fake.push_callback(CHAT, CHAT, question.message_id, question.button("Yes"))
    await harness.fake.wait_for(lambda: "closed." in harness.fake.message(CHAT, question.message_id).text)
    assert harness.service.count("exit") == 1
    assert len(harness.sim.sells("BTCUSDT")) == 1


async def test_html_in_a_symbol_is_escaped(harness: BotHarness) -> None:
    # A symbol the bot did not type itself (here adopted from the exchange) with markup in it.
    await harness.sim.adopt(ODD)
    listing = await harness.say("/positions")
    assert "<i>X</i>&USDT · initial entry · adopted" in listing.text  # shown literally
    assert "&lt;i&gt;X&lt;/i&gt;&amp;USDT" in (listing.html or "")
    # What a user types is escaped too.
    reply = await harness.say("/why <b>btc</b>")
    assert reply.text == "<b>btc</b> is not a symbol. Write it like btc or BTCUSDT."
    reply = await harness.say("/moon<script>")
    assert reply.text.startswith("Unknown command /moon<script>.")


async def test_long_reply_is_split_under_the_limit(harness: BotHarness) -> None:
    # Six changes of a long blacklist: /config history shows each old -> new list on one line, quoted (escaped
    # on the wire as &#x27;), far beyond one message.
    lists = [[f"{chr(65 + i)}{n:03d}QUSDT" for n in range(100)] for i in range(2)]
    for k in range(6):
        await harness.sim.api.config_set("symbol_blacklist", ",".join(lists[k % 2]), f"tg:{USER}")
    before = len(harness.fake.bot_messages(CHAT))

    def parts() -> list:
        return [m for m in harness.fake.bot_messages(CHAT)[before:] if "/positions —" not in m.text]

    def joined() -> str:
        return "\n".join(m.text for m in parts())

    harness.fake.push_message(CHAT, CHAT, "/config history")
    await harness.fake.wait_for(lambda: joined().count("symbol_blacklist:") == 6 and joined().endswith("']"))
    await harness.settle()  # and nothing more comes
    assert len(parts()) >= 3
    assert all(len(m.html or m.text) <= 4096 for m in parts())
    joined_text = joined()
    assert joined_text.count("symbol_blacklist:") == 6
    for symbol in lists[0] + lists[1]:
        assert f"'{symbol}'" in joined_text  # nothing lost or cut inside an entity
    assert joined_text.count("'") == 2 * (5 * 200 + 100)  # every quote came through whole: six new lists, five old


async def test_a_429_on_a_reply_is_waited_out(harness: BotHarness) -> None:
    harness.fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    reply = await harness.say("/help", within=5)
    assert "/positions" in reply.text
    attempts = harness.fake.calls("sendMessage")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 0.95
