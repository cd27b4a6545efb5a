"""/block, /unblock, /blocked and the Block buttons on the real service.

The signal test drives the scanner with the real 1000PEPEUSDT candles of ``tests/e2e/test_scanner_live.py``:
the entry signal holds at SIGNAL_MINUTE and three minutes later; blocked, the service places no order; unblocked,
it enters, and the entry alert (with its chart: ``alert_charts = true``) carries the Block button.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.bot_harness import CHAT, BotE2E
from tests.e2e.conftest import TEST_STRATEGY, until
from tests.e2e.test_bot_charts_live import png_size
from tests.e2e.test_scanner_live import SIGNAL_MINUTE, _report_at, _rows

PEPE = "1000PEPEUSDT"
SYM = "SOLUSDT"


@pytest.mark.timeout(150)
async def test_blocked_symbol_gets_no_entry_and_the_entry_alerts_block_button_offers_exit(tgbot: BotE2E) -> None:
    fake = tgbot.h.fake
    tgbot.h.strategy.write_text(TEST_STRATEGY + "alert_charts = true\n")
    rows = [r for r in _rows() if r[0] <= SIGNAL_MINUTE + 3 * 60_000]
    by_minute = {r[0]: r for r in rows}
    before = SIGNAL_MINUTE - 60_000
    assert _report_at(rows, SIGNAL_MINUTE).entry and _report_at(rows, SIGNAL_MINUTE + 3 * 60_000).entry
    fake.add_symbol(
        PEPE,
        price=f"{by_minute[before][4]:.7f}",
        tick_size="0.0000001",
        step_size="1",
        min_notional="5",
        max_leverage=25,
        quote_volume="800000000",
    )
    fake.load_klines(PEPE, "1m", [r for r in rows if r[0] < before])
    fake.time_offset_ms = before + 30_000 - int(time.time() * 1000)  # the exchange lives in that minute
    await tgbot.start()
    engine = tgbot.h.engine
    await until(
        lambda: PEPE in engine.scanner.universe and engine.candles.last_open_time(PEPE) == before - 60_000,
        timeout=30,
        what="backfill of the real history",
    )
    await until(
        lambda: any(f"{PEPE.lower()}@kline_1m" in c.streams for c in fake.ws_clients("market")),
        what="kline subscription",
    )

    async def close_minute(minute: int) -> None:
        r = by_minute[minute]
        await fake.push_kline(PEPE, r[0], r[1], r[2], r[3], r[4], r[5], closed=True)
        await until(lambda: engine.candles.last_open_time(PEPE) == minute, what=f"minute {minute} stored")

    # A timed block, from the phone.
    reply = await tgbot.say("/block 1000pepe 2")
    assert reply.text.startswith("🚫 1000PEPEUSDT blocked until ") and "(2h 0m left)" in reply.text
    assert reply.buttons == []  # not held: nothing to exit
    row = tgbot.h.store.audit.recent(1, action="block")[0]
    assert (row.actor, row.symbol, row.after["until_ms"]) == (f"tg:{CHAT}", PEPE, engine.ctx.blocks[PEPE])

    # The signal minute closes: the signal holds, the block is why nothing is bought.
    await close_minute(before)
    await close_minute(SIGNAL_MINUTE)
    why = (await tgbot.say("/why 1000pepe")).text
    assert why.splitlines()[1] == "Verdict: ✅ entry signal"
    assert engine.scanner.blocked(PEPE) == "blocked" and engine.executor.entry_blocker(PEPE) == "blocked"
    assert [o for o in fake.orders if o.symbol == PEPE] == [] and tgbot.h.db_position(PEPE) is None

    listing = (await tgbot.say("/blocked")).text
    timed = listing.split("For a time (/block SYMBOL HOURS)\n", 1)[1].split("\n\n", 1)[0]
    assert timed.startswith(f"• {PEPE} until ") and f"left) · tg:{CHAT}" in timed
    assert listing.split("Permanently (symbol_blacklist)\n", 1)[1].startswith("none")

    # Lifted: the next signal minute enters.
    assert (await tgbot.say("/unblock 1000pepe")).text == "✅ 1000PEPEUSDT unblocked: new entries are allowed again."
    assert tgbot.h.store.blocks.active(engine.ctx.clock.now_ms()) == []
    await close_minute(SIGNAL_MINUTE + 60_000)
    await close_minute(SIGNAL_MINUTE + 2 * 60_000)
    await close_minute(SIGNAL_MINUTE + 3 * 60_000)
    await until(lambda: (r := tgbot.h.db_position(PEPE)) and r.status == "open", timeout=20, what="the entry")

    # The entry alert: a photo (alert_charts) whose caption is the alert, with Chart and Block.
    alert = await tgbot.tg.wait_for(
        lambda: next((m for m in tgbot.tg.bot_messages(CHAT) if m.text.startswith(f"🟢 Entry {PEPE}")), None), 20
    )
    assert png_size(alert.photo) == (1080, 1260)
    assert [label for label, _ in alert.buttons] == ["📈 Chart", "🚫 Block"]

    # Block from the alert: the durations, and Exit (the symbol is held).
    n = len(tgbot.tg.bot_messages(CHAT))
    await tgbot.press(alert, alert.button("Block"), until=lambda: len(tgbot.tg.bot_messages(CHAT)) > n)
    question = tgbot.tg.last_message(CHAT)
    assert question.text.startswith(f"Block {PEPE}? No new entries on it for the time you choose.")
    assert f"You hold {PEPE}" in question.text
    assert [label for label, _ in question.buttons] == ["1 h", "24 h", "7 days", "Permanently", f"❌ Exit {PEPE}"]
    assert engine.ctx.block_reason(PEPE) is None  # the first press only asks
    await tgbot.press(question, question.button("24 h"))
    done = tgbot.current(question)
    assert done.text.startswith(f"🚫 {PEPE} blocked until ") and "(1d 0h left)" in done.text
    assert done.text.endswith(f"You hold {PEPE}: the position goes on (DCA and exits). Exit it?")
    assert [label for label, _ in done.buttons] == [f"❌ Exit {PEPE}"]
    assert engine.ctx.block_reason(PEPE) == "blocked" and tgbot.h.db_position(PEPE).status == "open"

    # Exit is confirmed as any exit: "No" sells nothing.
    n = len(tgbot.tg.bot_messages(CHAT))
    await tgbot.press(done, done.button("Exit"), until=lambda: len(tgbot.tg.bot_messages(CHAT)) > n)
    confirm = tgbot.tg.last_message(CHAT)
    assert confirm.text.startswith(f"Exit {PEPE}?")
    await tgbot.press(confirm, confirm.button("No"), until=lambda: "Cancelled" in tgbot.current(confirm).text)
    assert tgbot.sells(PEPE) == [] and tgbot.h.db_position(PEPE).status == "open"

    # The timed block survives a restart (SQLite) and still ends by itself.
    until_ms = engine.ctx.blocks[PEPE]
    await tgbot.restart()
    engine = tgbot.h.engine
    assert engine.ctx.blocks == {PEPE: until_ms} and engine.scanner.blocked(PEPE) in ("held", "blocked")
    assert engine.ctx.block_reason(PEPE) == "blocked"
    assert f"• {PEPE} · held until " in (await tgbot.say("/blocked")).text


async def test_permanent_block_is_the_blacklist_and_bad_input_changes_nothing(tgbot: BotE2E) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM), what="adoption")
    engine = tgbot.h.engine

    for text, answer in (
        ("/block", "Usage: /block SYMBOL [HOURS]"),
        ("/block sol 0", "HOURS must be a number of hours from 0 to 8760"),
        ("/block sol soon", "HOURS must be a number of hours from 0 to 8760"),
        ("/block sol 9000", "HOURS must be a number of hours from 0 to 8760"),
        ("/block sol 1 2", "Usage: /block SYMBOL [HOURS]"),
        ("/block nosuchcoin 1", "Unknown symbol NOSUCHCOINUSDT."),
        ("/unblock", "Usage: /unblock SYMBOL"),
    ):
        assert (await tgbot.say(text)).text.startswith(answer), text
    assert tgbot.h.store.audit.recent(5, action="block") == [] and engine.ctx.blocks == {}
    assert (await tgbot.say("/unblock doge")).text == "DOGEUSDT is not blocked."

    # Without HOURS: the blacklist, as /config set would write it (override, history, audit).
    reply = await tgbot.say("/block sol")
    assert reply.text.startswith("🚫 SOLUSDT blocked permanently: no new entries (added to symbol_blacklist).")
    assert reply.text.endswith("You hold SOLUSDT: the position goes on (DCA and exits). Exit it?")
    assert [label for label, _ in reply.buttons] == ["❌ Exit SOLUSDT"]
    assert engine.ctx.cfg.symbol_blacklist == ("SOLUSDT",)
    assert tgbot.h.store.config.overrides() == {"symbol_blacklist": ["SOLUSDT"]}
    history = (await tgbot.say("/config history")).text
    assert f"tg:{CHAT} · symbol_blacklist: [] → ['SOLUSDT']" in history
    assert (await tgbot.say("/block sol 3")).text.startswith("SOLUSDT is already blocked permanently")
    listing = (await tgbot.say("/blocked")).text
    assert listing.split("Permanently (symbol_blacklist)\n", 1)[1].startswith("• SOLUSDT · held\n")

    # A timed block of another symbol, then made permanent: one block, no timed row left.
    await tgbot.say("/block doge 5")
    assert "DOGEUSDT" in engine.ctx.blocks
    await tgbot.say("/block doge")
    assert engine.ctx.cfg.symbol_blacklist == ("SOLUSDT", "DOGEUSDT") and "DOGEUSDT" not in engine.ctx.blocks
    assert tgbot.h.store.blocks.active(engine.ctx.clock.now_ms()) == []

    reply = await tgbot.say("/unblock sol")
    assert reply.text == "✅ SOLUSDT unblocked: new entries are allowed again."
    assert engine.ctx.cfg.symbol_blacklist == ("DOGEUSDT",)
    assert [r.symbol for r in tgbot.h.store.audit.recent(10, action="unblock")] == ["SOLUSDT"]
    # Kept across a restart: the override is stored.
    await tgbot.restart()
    assert tgbot.h.engine.ctx.cfg.symbol_blacklist == ("DOGEUSDT",)
