"""Who may act through the real service's bot: allowed users act, other members of an allowed group only read.

Live mode on the fake Binance, aiogram polling the fake Bot API. The group is in TELEGRAM_ALLOWED_CHAT_IDS;
TRADER_A and TRADER_B are in TELEGRAM_ALLOWED_USER_IDS, READER is a member of the same group who is not.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from storage import AuditLog, Database
from tests.e2e.bot_harness import CHAT, GROUP, READER, STRANGER, TRADER_A, BotE2E
from tests.e2e.conftest import until
from trading.clock import ManualClock

D = Decimal
SYM = "SOLUSDT"
REFUSAL = "🚫 Only the users in TELEGRAM_ALLOWED_USER_IDS can do this. Everyone here may read (/positions, /health)."
HOUR_START_MS = 1_780_000_200_000 - 1_780_000_200_000 % 3_600_000  # a clock hour, for counts that are per hour


def _tally_clock(tgbot: BotE2E) -> ManualClock:
    """The audit tally on a clock the test moves (the real one might cross an hour in the middle of a test)."""
    clock = ManualClock(HOUR_START_MS + 600_000)
    tgbot.dp["audit_tally"].clock = clock
    return clock


async def _adopted(tgbot: BotE2E) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await tgbot.h.fake.set_price(SYM, "101.00")
    await until(lambda: tgbot.h.engine.ctx.book.get(SYM).last_price == D("101.00"), what="a price")
    await tgbot.alerts_idle()


def _shown_alert(tgbot: BotE2E, query: str) -> str:
    answer = tgbot.tg.callback_answer(query)
    assert answer is not None and answer.get("show_alert") in (True, "true"), answer
    return str(answer["text"])


async def test_a_reader_in_an_allowed_group_cannot_exit_change_the_config_or_pause(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    _tally_clock(tgbot)
    engine = tgbot.h.engine
    cfg_before = engine.ctx.cfg

    for command in ("/exit sol", "/config set leverage 5", "/pause", "/resume", "/sync", "/lang ko", "/block sol 2"):
        reply = await tgbot.say(command, chat=GROUP, user=READER)
        assert reply.text == REFUSAL, command

    # Buttons: the Exit button under /positions, and the Yes of a question an allowed user asked.
    listing = await tgbot.say("/positions", chat=GROUP, user=READER)  # reading is fine
    assert listing.text.startswith("Positions (1)")
    query = await tgbot.press(listing, listing.button("Exit"), user=READER)
    assert _shown_alert(tgbot, query) == REFUSAL
    question = await tgbot.say("/exit sol", chat=GROUP, user=TRADER_A)
    assert question.text.startswith("Exit SOLUSDT?")
    query = await tgbot.press(question, question.button("Yes"), user=READER)
    assert _shown_alert(tgbot, query) == REFUSAL
    query = await tgbot.press(question, question.button("No"), user=READER)
    assert _shown_alert(tgbot, query) == REFUSAL
    await tgbot.settle(GROUP)

    # Nothing changed anywhere.
    assert tgbot.sells(SYM) == [] and tgbot.h.exchange_qty(SYM) == D("1.00")
    assert tgbot.h.db_position(SYM) is not None
    assert engine.ctx.cfg is cfg_before and tgbot.h.store.config.overrides() == {}
    assert not engine.ctx.paused and not tgbot.h.store.state.paused
    assert tgbot.h.store.audit.recent(5, action="exit_requested") == []
    assert tgbot.h.store.audit.recent(5, action="pause") == []
    assert tgbot.h.store.audit.recent(5, action="set_locale") == []
    assert tgbot.current(question).text.startswith("Exit SOLUSDT?")  # still open for the one who asked

    # The reader may read everything.
    for command, start in (
        ("/health", "Health · mode live"),
        ("/stats", "Statistics"),
        ("/risk", "Risk"),
        ("/why sol", "SOLUSDT"),
        ("/config", "Strategy config"),
        ("/config history", "No config changes yet."),
        ("/blocked", "Blocked symbols"),
        ("/chart sol", "SOLUSDT"),
        ("/help", "/positions"),
    ):
        text = (await tgbot.say(command, chat=GROUP, user=READER)).text
        assert text != REFUSAL and start in text, (command, text[:80])

    # The refusals are audited: one row per user and hour with the count, written when the bot stops.
    assert tgbot.h.store.audit.recent(10, action="refused") == []  # counted while the hour lasts
    db_path = tgbot.h.settings().db_path
    await tgbot.h.stop()
    with Database.open(db_path) as db:
        rows = AuditLog(db).recent(10, action="refused")
    assert [(r.actor, r.after["chat_id"], r.after["count"]) for r in rows] == [(f"tg:{READER}", GROUP, 10)]
    assert rows[0].after["samples"][:2] == ["/exit sol", "/config set leverage 5"]


async def test_an_allowed_user_acts_from_the_same_group(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    engine = tgbot.h.engine

    assert (await tgbot.say("/pause", chat=GROUP, user=TRADER_A)).text.startswith("⏸ Paused")
    assert engine.ctx.paused and tgbot.h.store.state.paused
    assert (await tgbot.say("/resume", chat=GROUP, user=TRADER_A)).text.startswith("▶ Resumed")

    question = await tgbot.say("/config set leverage 5", chat=GROUP, user=TRADER_A)
    await tgbot.press(
        question, question.button("Yes"), user=TRADER_A, until=lambda: tgbot.current(question).text.startswith("✅")
    )
    assert engine.ctx.cfg.leverage == 5

    question = await tgbot.say("/exit sol", chat=GROUP, user=TRADER_A)
    await tgbot.press(
        question, question.button("Yes"), user=TRADER_A, until=lambda: "closed." in tgbot.current(question).text
    )
    assert len(tgbot.sells(SYM)) == 1 and tgbot.h.exchange_qty(SYM) == D("0")
    assert [r.actor for r in tgbot.h.store.audit.recent(5, action="exit_requested")] == [f"tg:{TRADER_A}"]
    assert tgbot.h.store.audit.recent(5, action="refused") == []


async def test_the_user_of_an_allowed_private_chat_may_act_without_being_listed(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    assert CHAT not in (tgbot.telegram_settings()["telegram_allowed_user_ids"])
    assert (await tgbot.say("/pause", chat=CHAT)).text.startswith("⏸ Paused")
    assert tgbot.h.engine.ctx.paused


async def test_heavy_commands_are_rate_limited_per_user(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    clock = ManualClock(HOUR_START_MS)
    tgbot.dp["rate_limiter"].clock = clock
    first = await tgbot.say("/sync", chat=GROUP, user=TRADER_A)
    second = await tgbot.say("/sync", chat=GROUP, user=TRADER_A)
    third = await tgbot.say("/sync", chat=GROUP, user=TRADER_A)
    assert not first.text.startswith("⏳") and not second.text.startswith("⏳")
    assert third.text.startswith("⏳ Too many of these requests: try again in ")
    # Per user and per command: another user, and /report for the same user, still go through.
    assert (await tgbot.say("/sync", chat=GROUP, user=READER)).text == REFUSAL  # refused first, not counted
    assert not (await tgbot.say("/report 365", chat=GROUP, user=READER)).text.startswith("⏳")
    assert not (await tgbot.say("/report 2", chat=GROUP, user=READER)).text.startswith("⏳")
    assert (await tgbot.say("/report 30", chat=GROUP, user=READER)).text.startswith("⏳")
    charts = [(await tgbot.say("/chart sol", chat=GROUP, user=READER)).text for _ in range(9)]
    assert [t.startswith("⏳") for t in charts] == [False] * 8 + [True]  # drawing is heavy too (a burst of 8)
    # A usage error costs nothing.
    clock.advance(60)
    for _ in range(3):
        assert (await tgbot.say("/report 999", chat=GROUP, user=READER)).text.startswith("Usage: /report")
    assert not (await tgbot.say("/sync", chat=GROUP, user=TRADER_A)).text.startswith("⏳")


async def test_unknown_chats_cost_one_audit_row_an_hour_and_the_bot_leaves_groups(
    tgbot: BotE2E, caplog: pytest.LogCaptureFixture
) -> None:
    await _adopted(tgbot)
    clock = _tally_clock(tgbot)
    caplog.set_level(logging.WARNING, logger="bot.middlewares")
    sent_before = len(tgbot.tg.sent)
    for _ in range(5):
        tgbot.tg.push_message(STRANGER, STRANGER, "/exit sol")
    query = tgbot.tg.push_callback(STRANGER, STRANGER, 42, "cf:x:AAAAAAAAAAAA:1")  # a forged "Yes"

    # Someone adds the bot to their own group: it leaves at once, whatever is said there.
    other_group = -1_009_999_000_111
    tgbot.tg.add_bot_to_group(other_group, by_user=STRANGER)
    tgbot.tg.push_message(other_group, STRANGER, "/positions")
    await tgbot.tg.wait_for(lambda: tgbot.tg.bot_status(other_group) == "left", 10)
    await tgbot.settle()

    assert tgbot.tg.bot_messages(STRANGER) == [] and tgbot.tg.bot_messages(other_group) == []
    assert tgbot.tg.callback_answer(query) is None
    strangers = (STRANGER, other_group)
    to_strangers = [c for c in tgbot.tg.sent[sent_before:] if int(c.params.get("chat_id", 0)) in strangers]
    assert [c.method for c in to_strangers] == ["leaveChat"]  # once, though the group sent three updates
    assert tgbot.sells(SYM) == [] and tgbot.h.exchange_qty(SYM) == D("1.00")
    audit = tgbot.h.store.audit
    assert audit.recent(10, action="unauthorized") == []  # counted while the hour lasts
    ignored = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ignored an update from chat")]
    assert len(ignored) == 2  # one line per chat and hour, not one per update

    # The next hour: its first update writes the last hour's rows, one per chat with its count.
    clock.advance(3600)
    tgbot.tg.push_message(STRANGER, STRANGER, "/positions")
    await until(lambda: len(audit.recent(10, action="unauthorized")) == 2, what="the hour's audit rows")
    rows = {r.after["chat_id"]: r for r in audit.recent(10, action="unauthorized")}
    assert rows[STRANGER].after["count"] == 6 and rows[STRANGER].actor == f"tg:{STRANGER}"
    assert rows[STRANGER].after["samples"] == ["/exit sol", "button:cf:x:AAAAAAAAAAAA:1"]
    assert rows[other_group].after["count"] >= 2  # my_chat_member (added), the join message, /positions, left
    assert audit.recent(10, action="exit_requested") == []
