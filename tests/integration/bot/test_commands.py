"""Every command through real HTTP: aiogram polls the fake Bot API, the handlers call the fake service.

One normal case and one bad-input case per command (where input exists).
"""

from __future__ import annotations

from decimal import Decimal

from tests.integration.bot.conftest import CHAT, USER, BotHarness
from tests.integration.bot.fake_service import tiny_png
from trading.core.models import Stage
from trading.core.reports import Condition, SignalReport
from trading.views import ExchangeUnavailable, SyncItem, SyncReport


async def test_start_and_help_list_every_command(harness: BotHarness) -> None:
    start = await harness.say("/start")
    assert "paper" in start.text and "running" in start.text
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
    harness.service.add_position("BTCUSDT", "64000", stage=Stage.FIRST_DCA, last_price="63500")
    harness.service.add_position("ETHUSDT", "2500", last_price="2600")
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
        "❌ Exit BTCUSDT", "🔎 Details", "📈 Chart", "🚫 Block",
        "❌ Exit ETHUSDT", "🔎 Details", "📈 Chart", "🚫 Block",
        "🔄 Refresh",
    ]


async def test_positions_before_their_first_price(harness: BotHarness) -> None:
    # Right after an adoption the service has no last price yet: unknown, never counted as zero.
    harness.service.add_position("SOLUSDT", "150", origin="adopted", priced=False)
    reply = await harness.say("/positions")
    assert "Unrealised total: — USDT" in reply.text
    assert "last —" in reply.text and "Unrealised: — USDT (—)" in reply.text
    harness.service.add_position("ETHUSDT", "2500", last_price="2550")
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
    for i, sym in enumerate(("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT", "WIFUSDT", "SUIUSDT")):
        harness.service.add_position(sym, str(10 + i))
    reply = await harness.say("/positions")
    assert "page 1/2" in reply.text and "SUIUSDT" not in reply.text
    await harness.press(reply, reply.button("Next"))
    page2 = harness.fake.message(CHAT, reply.message_id)
    assert "page 2/2" in page2.text and "SUIUSDT" in page2.text and "BTCUSDT ·" not in page2.text


async def test_details_button_sends_lots(harness: BotHarness) -> None:
    harness.service.add_position("SOLUSDT", "150", stage=Stage.SECOND_DCA, last_price="140")
    reply = await harness.say("/positions")
    before = len(harness.fake.bot_messages(CHAT))
    await harness.press(reply, reply.button("Details"), until=lambda: len(harness.fake.bot_messages(CHAT)) > before)
    details = harness.fake.last_message(CHAT)
    assert "SOLUSDT details" in details.text
    assert "Lots held" in details.text and "initial entry" in details.text and "second DCA" in details.text
    assert details.buttons and details.buttons[0][0] == "❌ Exit SOLUSDT"


async def test_health_normal_and_exchange_down(harness: BotHarness, monkeypatch) -> None:
    reply = await harness.say("/health")
    for part in (
        "mode paper",
        "Uptime: 3h 0m",
        "market: up",
        "REST weight (last minute): 37 / 2400",
        "Last reconcile: 9.0s ago — clean",
        "Last scan: 31s ago, took 184.2 ms, 150 symbols",
        "Database: 3.1 MB",
        "Balance: 1,000.00 USDT",
        "Errors in the last hour: 0",
    ):
        assert part in reply.text, part

    async def down() -> None:
        raise ExchangeUnavailable("timeout", detail="fapi.binance.com timed out")

    monkeypatch.setattr(harness.service, "health", down)
    reply = await harness.say("/health")
    assert reply.text == "The exchange cannot be reached right now: fapi.binance.com timed out"


async def test_unexpected_error_gets_a_short_reply(harness: BotHarness, monkeypatch) -> None:
    async def broken() -> None:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(harness.service, "stats", broken)
    reply = await harness.say("/stats")
    assert "Something went wrong" in reply.text
    assert "database is locked" not in reply.text  # internals stay in the log


async def test_sync_clean_and_with_findings(harness: BotHarness) -> None:
    reply = await harness.say("/sync")
    assert "In sync with the exchange" in reply.text
    assert ("sync", f"tg:{USER}") in harness.service.calls
    harness.service.sync_result = SyncReport(
        at_ms=harness.clock.now_ms(),
        items=(
            SyncItem("adopted", "WIFUSDT", "qty 120 at 2.31 found on the exchange", "adopted as position 7"),
            SyncItem("qty_drift", "BTCUSDT", "db 0.010, exchange 0.008", "db set to 0.008"),
        ),
        duration_ms=311.5,
    )
    reply = await harness.say("/sync")
    assert "Sync: 2 findings (311.5 ms)" in reply.text
    assert "position adopted WIFUSDT: qty 120 at 2.31 found on the exchange → adopted as position 7" in reply.text
    assert "quantity drift BTCUSDT" in reply.text


async def test_exit_bad_inputs(harness: BotHarness) -> None:
    assert (await harness.say("/exit")).text.startswith("Usage: /exit SYMBOL")
    assert (await harness.say("/exit btc eth")).text.startswith("Usage: /exit SYMBOL")
    assert (await harness.say("/exit zzz")).text == "Unknown symbol ZZZUSDT. Write it like btc or BTCUSDT."
    assert (await harness.say("/exit eth")).text == "No open position in ETHUSDT."
    assert (await harness.say("/exit $$$")).text == "$$$ is not a symbol. Write it like btc or BTCUSDT."
    assert harness.service.count("exit") == 0


async def test_symbols_are_case_insensitive_with_or_without_usdt(harness: BotHarness) -> None:
    harness.service.add_position("BTCUSDT", "64000")
    for typed in ("btc", "BTC", "btcusdt", "Btc/Usdt"):
        reply = await harness.say(f"/exit {typed}")
        assert reply.text.startswith("Exit BTCUSDT?"), typed
    assert [c for c in harness.service.calls if c[0] == "exit_preview"] == [("exit_preview", "BTCUSDT")] * 4


async def test_pause_and_resume(harness: BotHarness) -> None:
    assert (await harness.say("/pause")).text.startswith("⏸ Paused: no new entries. Exits and DCA continue.")
    assert harness.service.paused
    assert (await harness.say("/pause")).text.startswith("Already paused.")
    harness.service.add_position("BTCUSDT", "64000")
    assert "Paused: no new entries; exits and DCA continue." in (await harness.say("/positions")).text
    assert (await harness.say("/resume")).text.startswith("▶ Resumed")
    assert (await harness.say("/resume")).text.startswith("Not paused")
    assert not harness.service.paused
    actions = [(r["actor"], r["action"]) for r in harness.service.audit_rows]
    assert actions == [(f"tg:{USER}", "pause"), (f"tg:{USER}", "resume")]


async def test_stats_without_and_with_trades(harness: BotHarness) -> None:
    reply = await harness.say("/stats")
    assert "Today: no trades" in reply.text and "Last 7 days: no trades" in reply.text
    harness.service.add_position("ETHUSDT", "2500", last_price="2600")
    await harness.service.exit("ETHUSDT", "tg:test")
    reply = await harness.say("/stats")
    assert "Today: 1 trades, win rate 100.0%, realised +" in reply.text
    assert "Last 7 days: 1 trades" in reply.text


def _report(symbol: str) -> SignalReport:
    return SignalReport(
        symbol=symbol,
        at_ms=1_761_699_960_000,
        prefilter=(
            Condition("H1", True, {"max_rise": 0.052}, "a 1h candle rose >= 3%"),
            Condition("H2", True, {"close": 1.23, "open_first": 1.1}),
        ),
        m1=(
            Condition("M1", True, {"ma80": 1.2, "ma480": 1.1}, "MA80 > MA480"),
            Condition("M2", False, {"spread": 0.001}),
        ),
        m3=(Condition("T1", False, {"cross_age": None}),),
        f15=(Condition("F3", True, {"bb_fast": 1.3, "bb_slow": 1.25}),),
        prefilter_ok=True,
        filter_15m_ok=True,
        entry=False,
        price=1.234,
    )


async def test_why(harness: BotHarness) -> None:
    harness.service.why_reports["DOGEUSDT"] = _report("DOGEUSDT")
    reply = await harness.say("/why doge")
    text = reply.text
    assert text.startswith("Why DOGEUSDT · 2025-10-29 01:06 UTC · price 1.234")
    assert "Verdict: ❌ no entry" in text
    assert "✅ H1 a 1h candle rose >= 3% · max_rise=0.052" in text
    assert "✅ M1 MA80 > MA480 · ma80=1.2, ma480=1.1" in text  # ">" arrives as text, escaped on the wire
    assert "❌ M2 · spread=0.001" in text
    assert "❌ T1 · cross_age=—" in text
    assert "&gt;" in (reply.html or "")
    assert (await harness.say("/why sol")).text.startswith("No evaluation of SOLUSDT yet")


async def test_why_bad_inputs(harness: BotHarness) -> None:
    assert (await harness.say("/why")).text == "Usage: /why SYMBOL (e.g. /why btc)"
    assert (await harness.say("/why nope")).text == "Unknown symbol NOPEUSDT. Write it like btc or BTCUSDT."


async def test_risk_table(harness: BotHarness) -> None:
    text = (await harness.say("/risk")).text
    assert text.startswith("Risk: balance 1,000.00 USDT, 10x, cross, up to 10 positions")
    assert "initial entry: margin 15.00, notional 150.00, stop -10.00% → loss 15.00 + fees 0.15 USDT" in text
    assert "second DCA: margin 55.00, notional 550.00, stop -5.00% → loss 27.50" in text
    # SPEC 6: ten fully laddered positions stopped at -5% lose 275 USDT (+ fees) = 28.1% of 1,000.
    assert "Worst case, all 10 positions stopped: 275.00 + fees 5.50 USDT = 28.1% of balance (limit 30.0%)" in text
    assert "✅ Within the limits." in text


async def test_report_with_and_without_a_chart(harness: BotHarness) -> None:
    reply = await harness.say("/report")
    assert reply.photo is None
    assert "Report: last 7 days" in reply.text and "Nothing to plot yet" in reply.text
    harness.service.report_png = tiny_png()
    reply = await harness.say("/report 30")
    assert reply.photo == harness.service.report_png
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
    assert harness.service.config.leverage == 10
    assert Decimal(harness.service.balance) == Decimal("1000")
