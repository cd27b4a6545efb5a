"""Every command against the real service: live mode on the fake Binance, aiogram polling the fake Bot API.

A normal case and a bad-input case per command; the figures come from the
real engine (an adopted position, real wallet and fills), so these tests also
check the bot's texts on real view objects.
"""

from __future__ import annotations

from decimal import Decimal

from bot.commands import COMMANDS
from bot.formatting import fmt_usdt
from tests.e2e.bot_harness import CHAT, GROUP, BotE2E
from tests.e2e.conftest import until

D = Decimal
SYM = "SOLUSDT"


async def _adopted(tgbot: BotE2E, symbol: str = SYM, qty: str = "1.00", price: str = "100.00", **over: object) -> None:
    """A position opened by hand before the service starts: the start-up reconcile adopts it."""
    await tgbot.h.fake.open_position_by_hand(symbol, qty, price=price)
    await tgbot.start(**over)
    await until(lambda: tgbot.h.db_position(symbol), what="adoption")
    await until(lambda: len(tgbot.h.resting_stops(symbol)) == 1, what="backstop")
    await tgbot.alerts_idle()


async def test_start_help_unknown_command_and_plain_text(tgbot: BotE2E) -> None:
    await tgbot.start()
    start = await tgbot.say("/start")
    assert start.text.startswith("Hello! SurgeDCA is running in live mode.")
    assert start.html is not None and "<b>live</b>" in start.html
    help_ = await tgbot.say("/help")
    for cmd in COMMANDS:
        assert f"/{cmd.name}" in help_.text, cmd.name
    assert help_.text == start.text.split("\n\n", 1)[1]

    reply = await tgbot.say("/frobnicate now")
    assert reply.text == "Unknown command /frobnicate. /help lists what I understand."
    reply = await tgbot.say("sell everything")
    assert reply.text == "I answer commands only. /help lists them."
    # A command meant for another bot in a group is not ours to answer.
    tgbot.tg.push_message(GROUP, 996_202_131, "/positions@some_other_bot")
    await tgbot.settle(GROUP)
    assert not [m for m in tgbot.tg.bot_messages(GROUP) if "Positions" in m.text]

    # The command menu, in the service's LOCALE (en) for everyone and in Korean for Korean users.
    menu = {c["command"]: c["description"] for c in tgbot.tg.commands[""]}
    assert list(menu) == [c.name for c in COMMANDS] and menu["sync"] == "reconcile with the exchange now"
    ko = {c["command"]: c["description"] for c in tgbot.tg.commands["ko"]}
    assert list(ko) == list(menu) and ko["sync"] != menu["sync"]
    assert all(any("\uac00" <= ch <= "\ud7a3" for ch in text) for text in ko.values())  # Hangul, every one


async def test_positions_of_an_adopted_position_refresh_in_place_and_details(tgbot: BotE2E) -> None:
    # No REST price fallback during this test: after the price read at start-up, prices come when the test sends one.
    tgbot.h.strategy.write_text("reconcile_interval_s = 5\nfallback_poll_interval_s = 60\n")
    await _adopted(tgbot)
    listing = await tgbot.say("/positions")
    text = listing.text
    assert text.startswith("Positions (1)")
    assert "Unrealised total: 0.00 USDT" in text  # the price read at start-up (held positions decide at once)
    assert "SOLUSDT · initial entry · adopted" in text
    assert "Qty 1 · avg 100 · last 100" in text
    assert "Unrealised: 0.00 USDT (0.00%)" in text
    assert "Next DCA: first DCA at 97" in text
    assert "Stop: 90 · backstop: 90" in text
    buttons = listing.buttons  # the message object follows its edits: keep what it showed
    assert [label for label, _ in buttons] == ["❌ Exit SOLUSDT", "🔎 Details", "📈 Chart", "🚫 Block", "🔄 Refresh"]

    await tgbot.h.fake.set_price(SYM, "101.50")
    await until(lambda: tgbot.h.engine.ctx.book.get(SYM).last_price == D("101.50"), what="the price on the stream")
    await tgbot.press(listing, listing.button("Refresh"))
    refreshed = tgbot.current(listing)
    assert refreshed.edit_count == 1 and tgbot.replies_after(listing) == []  # edited, nothing new sent
    assert "Qty 1 · avg 100 · last 101.5" in refreshed.text
    assert "Unrealised: +1.50 USDT (+1.50%)" in refreshed.text
    assert "Unrealised total: +1.50 USDT" in refreshed.text
    assert refreshed.buttons == buttons

    # Details: margin, origin, the one lot an adopted position has (no DCA legs).
    before = len(tgbot.tg.bot_messages(CHAT))
    await tgbot.press(refreshed, refreshed.button("Details"), until=lambda: len(tgbot.tg.bot_messages(CHAT)) > before)
    details = tgbot.tg.last_message(CHAT)
    assert details.text.startswith("SOLUSDT details")
    assert "Margin: 10.00 USDT" in details.text  # 1 x 100 / 10x leverage
    assert "Origin: adopted" in details.text
    lots = details.text.split("Lots held\n", 1)[1].splitlines()
    assert lots == ["• initial entry: 1 @ 100"]
    assert [label for label, _ in details.buttons] == ["❌ Exit SOLUSDT", "📈 Chart", "🚫 Block"]

    # The Exit button asks first; "No" sells nothing.
    before = len(tgbot.tg.bot_messages(CHAT))
    await tgbot.press(details, details.button("Exit"), until=lambda: len(tgbot.tg.bot_messages(CHAT)) > before)
    question = tgbot.tg.last_message(CHAT)
    assert question.text.startswith("Exit SOLUSDT?")
    await tgbot.press(question, question.button("No"), until=lambda: "Cancelled" in tgbot.current(question).text)
    assert tgbot.current(question).text == "Cancelled: nothing was sold."
    assert tgbot.sells(SYM) == [] and tgbot.h.exchange_qty(SYM) == D("1.00")


async def test_positions_with_real_prices_of_very_different_sizes(tgbot: BotE2E) -> None:
    fake = tgbot.h.fake
    fake.add_symbol(
        "PEPEUSDT",
        price="0.0000123",
        tick_size="0.0000001",
        step_size="1",
        min_notional="5",
        max_leverage=25,
        quote_volume="700000000",
        max_qty="10000000000",
    )
    await fake.open_position_by_hand("PEPEUSDT", "2000000", price="0.0000123")
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000.1")
    await tgbot.start()
    for sym in ("PEPEUSDT", "BTCUSDT"):
        await until(lambda s=sym: tgbot.h.db_position(s) and len(tgbot.h.resting_stops(s)) == 1, what=f"{sym} adopted")
    await fake.set_price("PEPEUSDT", "0.0000125")
    await fake.set_price("BTCUSDT", "49000.3")
    book = tgbot.h.engine.ctx.book
    await until(lambda: book.get("PEPEUSDT").last_price and book.get("BTCUSDT").last_price, what="prices")
    text = (await tgbot.say("/positions")).text
    assert "Qty 2,000,000 · avg 0.0000123 · last 0.0000125" in text
    assert "Unrealised: +0.40 USDT (+1.63%)" in text  # 2e6 x 0.0000002
    assert "Stop: 0.00001107 · backstop: 0.000011" in text  # the exchange's stop is on the 1e-7 tick
    assert "Next DCA: first DCA at 0.00001193" in text
    assert "Qty 0.01 · avg 50,000.1 · last 49,000.3" in text
    assert "Unrealised: -10.00 USDT (-2.00%)" in text
    assert "Stop: 45,000.09 · backstop: 45,000" in text
    assert "e-" not in text.lower() and "E+" not in text  # never scientific notation


async def test_health(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    await until(lambda: tgbot.h.engine.reconciler.last is not None, what="a reconcile")
    text = (await tgbot.say("/health")).text
    lines = text.splitlines()
    assert lines[0] == "Health · mode live · ▶ running"
    assert any(line.startswith("✅ market") and ": up" in line for line in lines)
    assert any(line.startswith("✅ user: up") for line in lines)
    assert "Last reconcile: never" not in text
    wallet = tgbot.h.engine.ctx.account.wallet
    assert f"Balance: {fmt_usdt(wallet)} USDT · margin in use: 10.00 USDT (0.1%)" in text
    assert "Open positions: 1" in text and "✅ Errors in the last hour: 0" in text
    # Arguments are not expected; they change nothing.
    again = await tgbot.say("/health please")
    assert again.text.splitlines()[0] == "Health · mode live · ▶ running"


async def test_sync_lists_a_position_closed_by_hand(tgbot: BotE2E) -> None:
    tgbot.h.strategy.write_text("reconcile_interval_s = 3600\nfallback_poll_interval_s = 1\n")
    await _adopted(tgbot)
    tgbot.h.fake.faults.silence_private(60)  # the user stream would start a reconcile by itself: /sync does it
    await tgbot.h.fake.close_position_by_hand(SYM)
    report = await tgbot.say("/sync")
    assert report.text.startswith("Sync: ")
    assert "• position vanished SOLUSDT" in report.text
    assert tgbot.h.db_position(SYM) is None
    closed = tgbot.h.store.positions.list_closed()[-1]
    assert closed.symbol == SYM and closed.close_reason == "external"
    rows = tgbot.h.store.audit.recent(5, action="reconcile")
    assert rows and rows[0].actor == f"tg:{CHAT}"
    await until(lambda: tgbot.h.resting_stops(SYM) == [], what="the vanished position's backstop cancelled")
    # Nothing left to fix; extra words are ignored.
    again = await tgbot.say("/sync now")
    assert "vanished" not in again.text


async def test_sync_when_the_exchange_fails(tgbot: BotE2E) -> None:
    tgbot.h.strategy.write_text("reconcile_interval_s = 3600\nfallback_poll_interval_s = 1\n")
    await tgbot.start()
    tgbot.h.fake.faults.fail_next(
        "GET",
        "/fapi/v3/positionRisk",
        status=503,
        body={"code": -1001, "msg": "Internal error; unable to process your request."},
        times=10,
    )
    reply = await tgbot.say("/sync")
    assert reply.text.startswith("⚠️ Sync failed after ")


async def test_exit_refusals(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    assert (await tgbot.say("/exit")).text == "Usage: /exit SYMBOL (e.g. /exit btc)"
    assert (await tgbot.say("/exit sol doge")).text == "Usage: /exit SYMBOL (e.g. /exit btc)"
    assert (await tgbot.say("/exit <b>")).text == "<b> is not a symbol. Write it like btc or BTCUSDT."
    assert (await tgbot.say("/exit nosuch")).text == "Unknown symbol NOSUCHUSDT. Write it like btc or BTCUSDT."
    assert (await tgbot.say("/exit doge")).text == "No open position in DOGEUSDT."
    assert tgbot.sells(SYM) == [] and tgbot.h.exchange_qty(SYM) == D("1.00")


async def test_config_show_history_and_refusals(tgbot: BotE2E) -> None:
    await tgbot.start()
    shown = (await tgbot.say("/config")).text
    assert shown.startswith("Strategy config")
    for line in (
        "stop_loss_by_stage.initial = -0.1",
        "reconcile_interval_s = 5",
        "leverage = 10",
        "margin_mode = 'cross'",
        "signals.ma_long = 480",
    ):
        assert line in shown.splitlines(), line
    assert (await tgbot.say("/config history")).text == "No config changes yet."
    usage = "Usage: /config (show), /config set KEY VALUE, /config history"
    assert (await tgbot.say("/config frobnicate")).text == usage
    set_usage = "Usage: /config set KEY VALUE (e.g. /config set leverage 5)"
    assert (await tgbot.say("/config set leverage")).text == set_usage
    bad_type = (await tgbot.say("/config set leverage ten")).text
    assert bad_type.startswith("❌ Invalid value; nothing was changed:") and "leverage" in bad_type
    unknown = (await tgbot.say("/config set stop_loss_by_stage.inital -0.08")).text
    assert "unknown key" in unknown and "stop_loss_by_stage.initial" in unknown  # the near miss is suggested
    too_risky = (await tgbot.say("/config set max_positions 40")).text
    assert too_risky.startswith("❌ Invalid value; nothing was changed:")
    assert tgbot.h.engine.ctx.cfg.max_positions == 10 and tgbot.h.store.config.history() == []


async def test_stats_risk_and_report_without_trades(tgbot: BotE2E) -> None:
    await tgbot.start()
    stats = (await tgbot.say("/stats")).text
    assert stats.splitlines() == ["Statistics (Asia/Seoul)", "Today: no trades", "Last 7 days: no trades"]
    risk = (await tgbot.say("/risk")).text
    wallet = tgbot.h.engine.ctx.account.wallet
    assert risk.startswith(f"Risk: balance {fmt_usdt(wallet)} USDT, 10x, cross, up to 10 positions")
    assert "• initial entry: margin 150.00" in risk and "✅ Within the limits." in risk
    report = await tgbot.say("/report 3")
    assert report.text.startswith("Report: last 3 days") and report.photo is None
    assert "Nothing to plot yet" in report.text
    usage = "Usage: /report [DAYS], DAYS a whole number from 1 to 365 (default 7)"
    assert (await tgbot.say("/report 0")).text == usage
    assert (await tgbot.say("/report week")).text == usage


async def test_why_refusals_and_a_symbol_without_candles(tgbot: BotE2E) -> None:
    await tgbot.start()
    assert (await tgbot.say("/why")).text == "Usage: /why SYMBOL (e.g. /why btc)"
    assert (await tgbot.say("/why sol!")).text == "sol! is not a symbol. Write it like btc or BTCUSDT."
    assert (await tgbot.say("/why nosuch")).text == "Unknown symbol NOSUCHUSDT. Write it like btc or BTCUSDT."
    none = (await tgbot.say("/why doge")).text
    assert none == "No evaluation of DOGEUSDT yet: it is outside the scanned universe or has too few candles."


async def test_lang_switches_one_chat_and_persists(tgbot: BotE2E) -> None:
    await tgbot.start()
    reply = await tgbot.say("/lang ko")
    assert reply.text == "이 채팅의 언어: 한국어."
    assert "/help — 이 목록" in (await tgbot.say("/help")).text
    assert "/help — this list" in (await tgbot.say("/help", chat=GROUP)).text  # the other chat keeps LOCALE
    assert tgbot.h.store.state.get(f"chat_locale:{CHAT}") == "ko"
    (row,) = tgbot.h.store.audit.recent(5, action="set_locale")
    assert row.actor == f"tg:{CHAT}" and row.after == {"chat_id": CHAT, "locale": "ko"}

    bad = (await tgbot.say("/lang fr")).text
    assert bad.startswith("지원하지 않는 언어 fr.")
    assert tgbot.h.store.state.get(f"chat_locale:{CHAT}") == "ko"

    await tgbot.restart()  # the choice is in the database
    assert "/help — 이 목록" in (await tgbot.say("/help")).text
    assert (await tgbot.say("/lang en")).text == "Language of this chat: English."


async def test_pause_and_resume_replies_state_and_audit(tgbot: BotE2E) -> None:
    await tgbot.start()
    assert (await tgbot.say("/pause")).text.startswith("⏸ Paused: no new entries. Exits and DCA continue.")
    assert (await tgbot.say("/pause")).text == "Already paused. /resume allows new entries again."
    assert tgbot.h.engine.ctx.paused and tgbot.h.store.state.get("paused") is True
    assert "paused (no new entries)" in (await tgbot.say("/start")).text
    assert "⏸ paused" in (await tgbot.say("/health")).text.splitlines()[0]
    assert (await tgbot.say("/resume")).text == "▶ Resumed: new entries are allowed again."
    assert (await tgbot.say("/resume")).text == "Not paused: new entries are already allowed."
    assert not tgbot.h.engine.ctx.paused
    actions = [(r.actor, r.action) for r in reversed(tgbot.h.store.audit.recent(10)) if r.action in ("pause", "resume")]
    assert actions == [(f"tg:{CHAT}", "pause"), (f"tg:{CHAT}", "resume")]

    # A command sent while the service is down waits at Telegram and is carried out at the next start.
    await tgbot.h.stop()
    last_id = tgbot.tg.last_message(CHAT).message_id
    tgbot.tg.push_message(CHAT, CHAT, "/pause")
    await tgbot.start()
    await until(lambda: tgbot.h.engine.ctx.paused, what="the /pause sent while the service was down")
    await until(
        lambda: [m for m in tgbot.tg.bot_messages(CHAT) if m.message_id > last_id and m.text.startswith("⏸ Paused")],
        what="its reply",
    )
