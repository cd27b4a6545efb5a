"""Every command through real HTTP: aiogram polls the fake Bot API, the handlers call the real service (its engine
on the simulated exchange, a SQLite file).

One normal case and one bad-input case per command (where input exists).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal

from bot.formatting import fmt_bytes
from tests.integration.bot.conftest import CHAT, USER, BotHarness
from trading.core.models import Stage


async def test_start_and_help_list_every_command(harness: BotHarness) -> None:
    start = await harness.say("/start")
    assert "sim" in start.text and "running" in start.text
    help_ = await harness.say("/help")
    for command in (
        "/positions",
        "/health",
        "/sync",
        "/exit",
        "/config",
        "/pause",
        "/resume",
        "/stats",
        "/why",
        "/risk",
        "/report",
        "/lang",
        "/help",
    ):
        assert command in help_.text


async def test_positions_shows_every_figure_and_buttons(harness: BotHarness) -> None:
    await harness.sim.open_position("BTCUSDT", "64000", stage=Stage.FIRST_DCA, last_price="63500")
    await harness.sim.open_position("ETHUSDT", "2500", last_price="2600")
    reply = await harness.say("/positions")
    text = reply.text
    assert "Positions (2)" in text
    assert "BTCUSDT · first DCA" in text and "ETHUSDT · initial entry" in text
    btc = await harness.service.position("BTCUSDT")
    for figure in ("Qty", "avg", "last 63,500", "Unrealised:", "Next DCA: second DCA at 60,160", "Stop:", "backstop:"):
        assert figure in text, figure
    assert f"{btc.qty}" in text
    labels = [label for label, _ in reply.buttons]
    assert labels == [
        "❌ Exit BTCUSDT",
        "🔎 Details",
        "📈 Chart",
        "🚫 Block",
        "❌ Exit ETHUSDT",
        "🔎 Details",
        "📈 Chart",
        "🚫 Block",
        "🔄 Refresh",
    ]


async def test_positions_before_their_first_price(harness: BotHarness) -> None:
    # Right after an adoption the service has no last price yet: unknown, never counted as zero.
    await harness.sim.adopt("SOLUSDT")
    reply = await harness.say("/positions")
    assert "Unrealised total: — USDT" in reply.text
    assert "last —" in reply.text and "Unrealised: — USDT (—)" in reply.text
    await harness.sim.open_position("ETHUSDT", "2500", last_price="2550")
    eth = await harness.service.position("ETHUSDT")
    reply = await harness.say("/positions")
    assert f"Unrealised total: +{eth.unrealized_pnl:,.2f} USDT · 1 without a price yet" in reply.text
    question = await harness.say("/exit sol")
    assert "Average 150 · last —" in question.text and "Estimated result: — USDT" in question.text


async def test_positions_when_flat(harness: BotHarness) -> None:
    reply = await harness.say("/positions")
    assert "No open positions." in reply.text
    assert [label for label, _ in reply.buttons] == ["🔄 Refresh"]


async def test_positions_paginate_beyond_five(harness: BotHarness) -> None:
    for sym in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT", "WIFUSDT", "SUIUSDT"):
        await harness.sim.enter(sym)
        harness.clock.advance(1)  # listed in the order they were opened
    reply = await harness.say("/positions")
    assert "page 1/2" in reply.text and "SUIUSDT" not in reply.text
    await harness.press(reply, reply.button("Next"))
    page2 = harness.fake.message(CHAT, reply.message_id)
    assert "page 2/2" in page2.text and "SUIUSDT" in page2.text and "BTCUSDT ·" not in page2.text


async def test_details_button_sends_lots(harness: BotHarness) -> None:
    await harness.sim.open_position("SOLUSDT", "150", stage=Stage.SECOND_DCA, last_price="140")
    reply = await harness.say("/positions")
    before = len(harness.fake.bot_messages(CHAT))
    await harness.press(reply, reply.button("Details"), until=lambda: len(harness.fake.bot_messages(CHAT)) > before)
    details = harness.fake.last_message(CHAT)
    assert "SOLUSDT details" in details.text
    assert "Lots held" in details.text and "initial entry" in details.text and "second DCA" in details.text
    assert details.buttons and details.buttons[0][0] == "❌ Exit SOLUSDT"


async def test_health(harness: BotHarness) -> None:
    harness.clock.advance(9)  # nine seconds after the start-up reconcile
    reply = await harness.say("/health")
    for part in (
        "mode sim · ▶ running",
        "(since 2025-10-29 01:06 UTC)",  # the uptime itself is wall time
        "Streams: none",  # this harness hands the engine its prices itself (the live streams: tests/e2e)
        "REST weight (last minute): 0 / 2400",  # the simulated exchange spends no weight
        "Last reconcile: 9.0s ago — clean",
        "Last scan: never",
        "Balance: 1,000.00 USDT · margin in use: 0.00 USDT (0.0%)",
        "Open positions: 0",
        "Errors in the last hour: 0",
    ):
        assert part in reply.text, part
    await harness.sim.play_minutes(2)  # closed minutes: the scanner goes through the universe
    await harness.sim.enter("ETHUSDT")
    health = await harness.sim.api.health()
    reply = await harness.say("/health")
    assert "Last scan: 0.0s ago, took " in reply.text  # the minute before the one now closing
    assert ", 8 symbols, 0 signals" in reply.text  # the announced listing is not scanned
    assert f"Database: {fmt_bytes(health.db_size_bytes)}, last backup never" in reply.text
    assert "Open positions: 1" in reply.text
    assert f"margin in use: {health.margin_in_use:.2f} USDT (1.5%)" in reply.text


async def test_exit_the_exchange_refuses(harness: BotHarness) -> None:
    # Closed by hand on the exchange while the user-data stream was down: the service still thinks it holds
    # ETHUSDT, and the exchange refuses the reduce-only sell (-2022). Nothing is sold; the reply says so.
    entry = await harness.sim.enter("ETHUSDT", "2500")
    async with harness.sim.user_stream_down():
        harness.sim.sell_by_hand("ETHUSDT", entry.state.qty)
        question = await harness.say("/exit eth")
        await harness.press(question, question.button("Yes"))
        await harness.fake.wait_for(lambda: "did not fill" in harness.fake.message(CHAT, question.message_id).text)
    text = harness.fake.message(CHAT, question.message_id).text
    assert text == "⚠️ Exit of ETHUSDT was not filled.\nthe exchange did not fill the order (see alerts)"
    assert len(harness.sim.sells("ETHUSDT")) == 1  # only the one by hand
    refusal = harness.sim.store.journal.for_position(entry.position_id)[-1]
    assert refusal.status.value == "rejected" and refusal.error_code == -2022


async def test_unexpected_error_gets_a_short_reply(harness: BotHarness) -> None:
    # The database loses a table under the running service (a broken restore, a bad manual edit).
    with sqlite3.connect(harness.sim.db_path) as other:
        other.execute("DROP TABLE daily_stats")
    reply = await harness.say("/stats")
    assert "Something went wrong" in reply.text
    assert "daily_stats" not in reply.text and "no such table" not in reply.text  # internals stay in the log


async def test_sync_clean_and_with_findings(harness: BotHarness) -> None:
    reply = await harness.say("/sync")
    assert "In sync with the exchange" in reply.text
    (row,) = harness.sim.audit(actor=f"tg:{USER}")
    assert (row.action, row.after["items"]) == ("reconcile", [])
    btc = await harness.sim.enter("BTCUSDT", "64000")
    assert btc.state.qty == Decimal("0.002")
    eth = await harness.sim.enter("ETHUSDT", "2500")
    stop = eth.backstop_client_id
    async with harness.sim.user_stream_down():  # nothing of this reaches the service by itself
        harness.sim.sell_by_hand("BTCUSDT", "0.001")
        harness.sim.sell_by_hand("ETHUSDT", eth.state.qty)
        reply = await harness.say("/sync")
    assert reply.text.startswith("Sync: 2 findings (")
    # Sold by hand at the entry price: the trade lost the two taker fees (2 x 0.059 x 2,500 x 0.0005).
    assert f"position vanished ETHUSDT: position {eth.position_id} ({eth.state.qty}) is gone from the exchange" in (
        reply.text
    )
    assert "quantity drift BTCUSDT: database 0.002, exchange 0.001" in reply.text  # 150 USDT at 64,000: 0.002
    assert "→ set to the exchange's quantity" in reply.text
    # ETHUSDT's backstop (a closePosition stop) outlived the position: cancelled with it, reported once.
    assert f"→ closed, PnL -0.1475 USDT; its backstop {stop} cancelled" in reply.text
    assert "stray order cancelled" not in reply.text
    assert harness.sim.broker.open_algo_orders("ETHUSDT") == []
    assert (await harness.service.position("BTCUSDT")).qty == Decimal("0.001")
    assert "ETHUSDT" not in harness.sim.ctx.book


async def test_exit_bad_inputs(harness: BotHarness) -> None:
    assert (await harness.say("/exit")).text.startswith("Usage: /exit SYMBOL")
    assert (await harness.say("/exit btc eth")).text.startswith("Usage: /exit SYMBOL")
    assert (await harness.say("/exit zzz")).text == "Unknown symbol ZZZUSDT. Write it like btc or BTCUSDT."
    assert (await harness.say("/exit eth")).text == "No open position in ETHUSDT."
    assert (await harness.say("/exit $$$")).text == "$$$ is not a symbol. Write it like btc or BTCUSDT."
    assert harness.service.count("exit") == 0


async def test_symbols_are_case_insensitive_with_or_without_usdt(harness: BotHarness) -> None:
    await harness.sim.enter("BTCUSDT", "64000")
    for typed in ("btc", "BTC", "btcusdt", "Btc/Usdt"):
        reply = await harness.say(f"/exit {typed}")
        assert reply.text.startswith("Exit BTCUSDT?"), typed
    assert [c for c in harness.service.calls if c[0] == "exit_preview"] == [("exit_preview", "BTCUSDT")] * 4


async def test_pause_and_resume(harness: BotHarness) -> None:
    assert (await harness.say("/pause")).text.startswith("⏸ Paused: no new entries. Exits and DCA continue.")
    assert harness.service.paused
    assert (await harness.say("/pause")).text.startswith("Already paused.")
    adopted = await harness.sim.adopt("BTCUSDT")  # a paused service still takes over what it finds
    assert "Paused: no new entries; exits and DCA continue." in (await harness.say("/positions")).text
    assert (await harness.say("/resume")).text.startswith("▶ Resumed")
    assert (await harness.say("/resume")).text.startswith("Not paused")
    assert not harness.service.paused
    actions = [(r.actor, r.action) for r in harness.sim.audit(actor=f"tg:{USER}")]
    assert actions == [(f"tg:{USER}", "pause"), (f"tg:{USER}", "resume")]
    assert adopted.position_id == (await harness.service.position("BTCUSDT")).position_id


async def test_paused_service_enters_nothing(harness: BotHarness) -> None:
    await harness.say("/pause")
    assert await harness.sim.engine.executor.enter("BTCUSDT", harness.sim.price("BTCUSDT")) is None
    assert "BTCUSDT" not in harness.sim.ctx.book and harness.sim.broker.position_list() == []


async def test_stats_without_and_with_trades(harness: BotHarness) -> None:
    reply = await harness.say("/stats")
    assert "Today: no trades" in reply.text and "Last 7 days: no trades" in reply.text
    await harness.sim.open_position("ETHUSDT", "2500", last_price="2600")
    await harness.service.exit("ETHUSDT", "tg:test")
    reply = await harness.say("/stats")
    assert "Today: 1 trades, win rate 100.0%, realised +" in reply.text
    assert "Last 7 days: 1 trades" in reply.text


async def test_why(harness: BotHarness) -> None:
    reply = await harness.say("/why doge")
    text = reply.text
    report = await harness.sim.api.why("DOGEUSDT")
    assert report is not None
    # The newest closed minute opened at 01:05 UTC; the market's price is 0.2.
    assert text.startswith("Why DOGEUSDT · 2025-10-29 01:05 UTC · price 0.2\n")
    assert "Verdict: ❌ no entry" in text
    assert "❌ 1h pre-filter (1/4)" in text  # a calm market: no 1h surge
    assert "✅ H4 at least 2 of the last 4 1h candles are bullish · bullish=2, min_bullish=2" in text
    assert "❌ H1 one of the last 4 1h candles has (high - open) / open >= 3% · max_rise=0.00974" in text
    for section in (report.prefilter, report.m1, report.m3, report.f15):
        for c in section:
            assert f"{'✅' if c.ok else '❌'} {c.name} {c.note}" in text, c.name
    assert "✅ M1 1m MA80 > MA480, or golden cross MA80/MA480 within 150 bars · ma80=0.199875" in text
    assert "&gt;" in (reply.html or "")  # ">" arrives as text, escaped on the wire
    # Listed, not trading yet: no candles, nothing evaluated.
    assert (await harness.say("/why fresh")).text.startswith("No evaluation of FRESHUSDT yet")


async def test_why_bad_inputs(harness: BotHarness) -> None:
    assert (await harness.say("/why")).text == "Usage: /why SYMBOL (e.g. /why btc)"
    assert (await harness.say("/why nope")).text == "Unknown symbol NOPEUSDT. Write it like btc or BTCUSDT."


async def test_risk_table(harness: BotHarness) -> None:
    text = (await harness.say("/risk")).text
    assert text.startswith("Risk: balance 1,000.00 USDT, 10x, cross, up to 10 positions")
    # Fees: the taker fee on the buys and on the sell at the stop price (150 x 0.0005 + 135 x 0.0005).
    assert "initial entry: margin 15.00, notional 150.00, stop -10.00% → loss 15.00 + fees 0.14 USDT" in text
    assert "second DCA: margin 55.00, notional 550.00, stop -5.00% → loss 27.50" in text
    # SPEC 6: ten fully laddered positions stopped at -5% lose 275 USDT (+ fees) = 28.0% of 1,000.
    assert "Worst case, all 10 positions stopped: 275.00 + fees 5.36 USDT = 28.0% of balance (limit 30.0%)" in text
    assert "✅ Within the limits." in text


async def test_report_with_and_without_a_chart(harness: BotHarness) -> None:
    reply = await harness.say("/report")
    assert reply.photo is None
    assert "Report: last 7 days" in reply.text and "Nothing to plot yet" in reply.text
    await harness.sim.play_minutes(2)  # two minutes of the equity log
    harness.clock.advance(1)
    reply = await harness.say("/report 30")
    assert reply.photo is not None and reply.photo[:8] == b"\x89PNG\r\n\x1a\n"
    assert reply.photo == (await harness.sim.api.report(30)).png  # the service's chart, as it drew it
    assert reply.text.startswith("Report: last 30 days") and "Trades: 0" in reply.text
    assert ("report", 30) in harness.service.calls


async def test_report_bad_days(harness: BotHarness) -> None:
    for bad in ("abc", "0", "366", "7 8"):
        assert (await harness.say(f"/report {bad}")).text.startswith("Usage: /report [DAYS]"), bad
    assert harness.service.count("report") == 0


async def test_unknown_command_and_plain_text(harness: BotHarness) -> None:
    assert (await harness.say("/moon")).text == "Unknown command /moon. /help lists what I understand."
    reply = await harness.say("/moon@surgedca_test_bot")
    assert reply.text == "Unknown command /moon@surgedca_test_bot. /help lists what I understand."
    assert "/positions" in (await harness.say("/help@surgedca_test_bot")).text
    before = len(harness.fake.bot_messages(CHAT))
    harness.fake.push_message(CHAT, CHAT, "/start@some_other_bot")
    await harness.settle()
    assert len(harness.fake.bot_messages(CHAT)) == before + 1  # only the /help of settle()
    assert (await harness.say("when lambo?")).text == "I answer commands only. /help lists them."


async def test_config_show_grouped(harness: BotHarness) -> None:
    text = (await harness.say("/config", replies=1)).text
    for group in (
        "Universe and scan",
        "Leverage and limits",
        "Ladder (DCA)",
        "Exits",
        "Cooldowns",
        "Operations",
        "Signals",
    ):
        assert group in text, group
    assert "leverage = 10" in text
    assert "stop_loss_by_stage.first_dca = -0.07" in text
    assert "signals.ma_long = 480" in text
    assert "report_timezone = 'Asia/Seoul'" in text


async def test_config_bad_subcommands(harness: BotHarness) -> None:
    assert (await harness.say("/config frobnicate")).text.startswith("Usage: /config (show)")
    assert (await harness.say("/config set leverage")).text.startswith("Usage: /config set KEY VALUE")
    assert harness.service.count("config_preview") == 0
    assert harness.sim.ctx.cfg.leverage == 10 and harness.sim.store.config.history(10) == []
    assert harness.sim.ctx.account.wallet == Decimal("1000")
