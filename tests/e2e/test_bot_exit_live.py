"""/exit from Telegram on the real service: exactly one reduce-only market order, or none.

The confirmation is single-use, expires (the bot's clock is moved), and only
the person who asked can answer it. Orders are counted on the fake exchange.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from bot.formatting import fmt_usdt
from tests.e2e.bot_harness import CHAT, GROUP, TRADER_A, TRADER_B, BotE2E
from tests.e2e.conftest import until

D = Decimal
SYM = "SOLUSDT"


async def _adopted_at(tgbot: BotE2E, last: str = "101.00") -> None:
    fake = tgbot.h.fake
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await fake.set_price(SYM, last)
    await until(lambda: tgbot.h.engine.ctx.book.get(SYM).last_price == D(last), what="the last price")
    await tgbot.alerts_idle()


async def test_confirm_sells_once_and_the_result_replaces_the_question(tgbot: BotE2E) -> None:
    await _adopted_at(tgbot)
    question = await tgbot.say("/exit sol")
    yes = question.button("Yes")  # the message object follows its edits: keep the button's data
    assert question.text.splitlines() == [
        "Exit SOLUSDT?",
        "Sell 1 at market (reduce-only): the whole position, stage initial entry.",
        "Average 100 · last 101",
        "Estimated result: +0.95 USDT",  # 1 x (101 - 100) - 101 x 0.05% taker fee
        "Confirm within 60 s.",
    ]
    assert [label for label, _ in question.buttons] == ["✅ Yes", "✖ No"]
    assert tgbot.sells(SYM) == []

    await tgbot.press(question, yes, until=lambda: "closed." in tgbot.current(question).text)
    (order,) = tgbot.sells(SYM)
    assert order.reduce_only and order.type == "MARKET" and D(str(order.qty)) == D("1.00")
    assert D(str(order.avg_price)) == D("101.00")
    closed = tgbot.h.store.positions.list_closed()[-1]
    assert closed.symbol == SYM and closed.close_reason == "manual" and closed.realized_pnl is not None
    result = tgbot.current(question)
    assert result.text.splitlines() == [
        "✅ SOLUSDT closed.",
        "Sold 1 at 101",
        f"Result: {fmt_usdt(closed.realized_pnl, signed=True)} USDT",
    ]
    assert closed.realized_pnl > 0 and result.buttons == []  # nothing left to press twice
    assert tgbot.replies_after(question) == []  # replaced in place, no new message
    assert tgbot.h.exchange_qty(SYM) == 0
    await until(lambda: tgbot.h.resting_stops(SYM) == [], what="backstop cancelled")
    (row,) = tgbot.h.store.audit.recent(5, action="exit_requested")
    assert row.actor == f"tg:{CHAT}" and row.symbol == SYM

    # The close is an alert in both chats, and the trade is in /stats and /report.
    await until(lambda: tgbot.alerts(CHAT, "Closed") and tgbot.alerts(GROUP, "Closed"), what="close alerts")
    # Two closed minutes on the stream: the service records the balance at each (the equity curve).
    minute = tgbot.h.fake.now_ms() // 60_000 * 60_000
    store, clock = tgbot.h.store, tgbot.h.engine.ctx.clock
    for n, m in enumerate((minute - 120_000, minute - 60_000), start=1):
        await tgbot.h.fake.push_kline(SYM, m, 101, 101, 101, 101, 10, closed=True)
        await until(lambda n=n: len(store.equity.between(0, clock.now_ms() + 1)) >= n, what="a balance record")
        await asyncio.sleep(0.01)  # records are keyed by the ms
    stats = (await tgbot.say("/stats")).text
    assert "Today: 1 trades, win rate 100.0%" in stats
    report = await tgbot.say("/report")
    assert report.photo is not None and report.photo.startswith(b"\x89PNG")
    assert "Trades: 1" in report.text

    # Pressing the old question again does nothing.
    query = await tgbot.press(question, yes)
    assert tgbot.tg.callback_answer(query)["text"] == "Already done."
    assert len(tgbot.sells(SYM)) == 1


async def test_a_double_tap_sends_one_order(tgbot: BotE2E) -> None:
    await _adopted_at(tgbot)
    question = await tgbot.say("/exit SOLUSDT")
    yes = question.button("Yes")
    first = tgbot.tg.push_callback(CHAT, CHAT, question.message_id, yes)
    second = tgbot.tg.push_callback(CHAT, CHAT, question.message_id, yes)
    await tgbot.tg.wait_for(lambda: tgbot.tg.callback_answer(first) and tgbot.tg.callback_answer(second), 10)
    await tgbot.tg.wait_for(lambda: "closed." in tgbot.current(question).text, 10)
    answers = sorted(str(tgbot.tg.callback_answer(q).get("text")) for q in (first, second))
    assert answers == ["Already done.", "Selling…"]
    await tgbot.settle()
    assert len(tgbot.sells(SYM)) == 1
    posts = [
        r
        for r in tgbot.h.fake.requests
        if r.method == "POST" and r.path == "/fapi/v1/order" and r.params.get("side") == "SELL"
    ]
    assert len(posts) == 1


async def test_an_expired_confirmation_sells_nothing(tgbot: BotE2E) -> None:
    await _adopted_at(tgbot)
    clock = tgbot.inject_clock()
    question = await tgbot.say("/exit sol")
    clock.advance(61)
    query = await tgbot.press(question, question.button("Yes"))  # still there: nothing edited it yet
    assert tgbot.tg.callback_answer(query)["text"] == "Expired: nothing was done."
    await tgbot.tg.wait_for(lambda: tgbot.current(question).text.startswith("Expired"), 10)
    assert tgbot.current(question).text == "Expired: nothing was sold. Send /exit again if you still want out."
    await tgbot.settle()
    assert tgbot.sells(SYM) == [] and tgbot.h.exchange_qty(SYM) == D("1.00")
    assert tgbot.h.db_position(SYM) is not None and tgbot.h.store.audit.recent(5, action="exit_requested") == []

    # A fresh question within the time works.
    again = await tgbot.say("/exit sol")
    clock.advance(59)
    await tgbot.press(again, again.button("Yes"), until=lambda: "closed." in tgbot.current(again).text)
    assert len(tgbot.sells(SYM)) == 1


async def test_another_allowed_user_cannot_confirm(tgbot: BotE2E) -> None:
    await _adopted_at(tgbot)
    question = await tgbot.say("/exit sol", chat=GROUP, user=TRADER_A)
    yes, no = question.button("Yes"), question.button("No")
    query = await tgbot.press(question, yes, user=TRADER_B)
    answer = tgbot.tg.callback_answer(query)
    assert answer["text"] == "Only the person who asked can answer this." and answer.get("show_alert") in (True, "true")
    query = await tgbot.press(question, no, user=TRADER_B)
    assert tgbot.tg.callback_answer(query)["text"] == "Only the person who asked can answer this."
    await tgbot.settle(GROUP)
    assert tgbot.sells(SYM) == [] and tgbot.h.exchange_qty(SYM) == D("1.00")
    assert tgbot.current(question).text.startswith("Exit SOLUSDT?")  # still open for the one who asked

    await tgbot.press(question, yes, user=TRADER_A, until=lambda: "closed." in tgbot.current(question).text)
    assert len(tgbot.sells(SYM)) == 1
    assert tgbot.h.store.audit.recent(5, action="exit_requested")[0].actor == f"tg:{TRADER_A}"
