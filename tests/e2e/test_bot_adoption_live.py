"""Adoption by consent through the real bot (``adopt_positions = "ask"``, the default) on the fake Bot API.

A long the service did not open is announced in every allowed chat with Adopt / Ignore. Until someone allowed
to act answers Adopt it gets no backstop, no DCA and no exit. The answer is single-use (a second tap, in any
chat, is told what the first was), a reader cannot answer, and the question survives a restart. An ignored
long stays listed in /positions as not managed, with an Adopt button that asks to confirm.
"""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.bot_harness import CHAT, GROUP, READER, TRADER_A, TRADER_B, BotE2E
from tests.fakes.telegram import FakeMessage

D = Decimal
SYM = "SOLUSDT"
STRATEGY = 'reconcile_interval_s = 5\nfallback_poll_interval_s = 1\nadopt_positions = "ask"\n'
REFUSAL = "🚫 Only the users in TELEGRAM_ALLOWED_USER_IDS can do this. Everyone here may read (/positions, /health)."


def _orders_sent(tgbot: BotE2E) -> list[object]:
    paths = ("/fapi/v1/order", "/fapi/v1/algoOrder")
    return [r for r in tgbot.h.fake.requests if r.method == "POST" and r.path in paths]


def _question(tgbot: BotE2E, chat: int) -> FakeMessage | None:
    found = [m for m in tgbot.tg.bot_messages(chat) if "Position not opened by SurgeDCA" in m.text]
    return found[-1] if found else None


async def _asked(tgbot: BotE2E) -> tuple[FakeMessage, FakeMessage]:
    tgbot.h.strategy.write_text(STRATEGY)
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    private = await tgbot.tg.wait_for(lambda: _question(tgbot, CHAT), 10)
    group = await tgbot.tg.wait_for(lambda: _question(tgbot, GROUP), 10)
    assert private.text == (
        "📥 Position not opened by SurgeDCA SOLUSDT: a long of 1 at 100 is on the account. Adopt it (SurgeDCA then "
        "manages it: backstop, DCA, exits) or ignore it? Until adopted it gets no backstop, no DCA and no exit."
    )
    assert [label for label, _ in private.buttons] == ["📥 Adopt", "🙈 Ignore"]
    assert tgbot.h.db_position(SYM) is None and _orders_sent(tgbot) == []
    return private, group


def _shown_alert(tgbot: BotE2E, query: str) -> str:
    answer = tgbot.tg.callback_answer(query)
    assert answer is not None and answer.get("show_alert") in (True, "true"), answer
    return str(answer["text"])


async def test_adopt_from_the_alert_once_and_not_by_a_reader(tgbot: BotE2E) -> None:
    private, group = await _asked(tgbot)
    adopt_group, adopt_private = group.button("Adopt"), private.button("Adopt")
    # A reader of the group cannot answer: nothing changes.
    query = await tgbot.press(group, adopt_group, user=READER)
    assert _shown_alert(tgbot, query) == REFUSAL
    assert tgbot.h.db_position(SYM) is None and _orders_sent(tgbot) == []

    await tgbot.press(group, adopt_group, user=TRADER_A, until=lambda: "adopted by" in tgbot.current(group).text)
    rec = tgbot.h.assert_agree(SYM)  # managed now: its backstop rests on the exchange
    assert rec is not None and rec.origin == "adopted" and rec.state.qty == D("1.00")
    answered = tgbot.current(group)
    assert rec.backstop_price == D("90.00")  # the initial stage's stop, -10% from 100
    assert answered.text.splitlines() == [
        f"📥 SOLUSDT adopted by @user{TRADER_A}: the long of 1 at 100 is managed by SurgeDCA from now on.",
        "Backstop on the exchange at 90.",
    ]
    assert answered.buttons == []
    (audit,) = tgbot.h.store.audit.recent(5, action="adopt")
    assert audit.actor == f"tg:{TRADER_A}" and audit.symbol == SYM
    # The same question in the other chat (or the same button again) is single-use: told what happened.
    query = await tgbot.press(private, adopt_private)
    assert _shown_alert(tgbot, query) == "Already answered: adopted."
    query = await tgbot.press(private, private.button("Ignore"))
    assert _shown_alert(tgbot, query) == "Already answered: adopted."
    assert len([o for o in tgbot.h.fake.algo_orders if o.symbol == SYM]) == 1  # adopted once, one backstop
    assert tgbot.h.store.adoptions.live() == []


async def test_ignore_leaves_it_alone_until_adopted_from_positions(tgbot: BotE2E) -> None:
    private, group = await _asked(tgbot)
    ignore = private.button("Ignore")
    await tgbot.press(private, ignore, until=lambda: "ignored by" in tgbot.current(private).text)
    assert tgbot.current(private).text == (
        f"🙈 SOLUSDT ignored by @user{CHAT}: SurgeDCA leaves it alone (no backstop, no DCA, no exit). /positions "
        "lists it and can still adopt it."
    )
    (audit,) = tgbot.h.store.audit.recent(5, action="adoption_ignored")
    assert audit.actor == f"tg:{CHAT}"
    query = await tgbot.press(group, group.button("Adopt"), user=TRADER_B)
    assert _shown_alert(tgbot, query) == "Already answered: ignored."

    # Left alone: a DCA level, then below every stop, round after round: nothing is sent.
    fake, api = tgbot.h.fake, tgbot.service.api
    for price in ("96.90", "80.00"):
        await fake.set_price(SYM, price)
        await api.sync(actor="test")
    assert _orders_sent(tgbot) == [] and tgbot.h.db_position(SYM) is None and fake.position(SYM).qty == D("1.00")

    # A restart keeps the answer: the old buttons still say so, nothing is asked again.
    await tgbot.restart()
    query = await tgbot.press(group, group.button("Adopt"), user=TRADER_A)
    assert _shown_alert(tgbot, query) == "Already answered: ignored."
    await tgbot.alerts_idle()
    assert len([m for m in tgbot.tg.bot_messages(GROUP) if "Position not opened" in m.text]) == 1  # not asked again

    # /positions lists it as not managed, with an Adopt button that asks to confirm.
    await fake.set_price(SYM, "99.00")  # back above its stop (adopted below it, it would be sold at once)
    listing = await tgbot.say("/positions")
    assert "Not managed (1): positions SurgeDCA did not open" in listing.text
    assert "• SOLUSDT long 1 at 100 · ignored" in listing.text
    await tgbot.press(listing, listing.button("Adopt SOLUSDT"), until=lambda: tgbot.replies_after(listing))
    asked = tgbot.replies_after(listing)[-1]
    assert asked.text.startswith("Adopt SOLUSDT?") and [label for label, _ in asked.buttons] == ["✅ Yes", "✖ No"]
    yes = asked.button("Yes")
    await tgbot.press(asked, yes, until=lambda: "adopted by" in tgbot.current(asked).text)
    assert tgbot.h.assert_agree(SYM) is not None
    (audit,) = tgbot.h.store.audit.recent(5, action="adopt")
    assert audit.actor == f"tg:{CHAT}"
    query = await tgbot.press(asked, yes)
    assert tgbot.tg.callback_answer(query)["text"] == "Already done."
