"""/config set: preview (old -> new, new risk), confirm, apply and persist; invalid input changes nothing."""

from __future__ import annotations

from storage.db import Database
from tests.integration.bot.conftest import CHAT, USER, BotHarness
from trading.service import effective_config
from trading.settings import Settings
from trading.store import Store


async def test_valid_change_is_previewed_confirmed_applied_and_persisted(harness: BotHarness) -> None:
    question = await harness.say("/config set leverage 5")
    assert question.text.startswith("Change the config?")
    assert "leverage: 10 → 5" in question.text
    assert "Worst case: 28.0% → 14.0% of the balance (limit 30.0%)" in question.text
    assert harness.service.count("config_set") == 0  # nothing changes before the confirmation
    assert harness.sim.store.config.history(10) == []

    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: harness.fake.message(CHAT, question.message_id).text.startswith("✅"))
    assert harness.fake.message(CHAT, question.message_id).text == "✅ leverage = 5 (was 10)."
    assert harness.sim.ctx.cfg.leverage == 5
    assert ("config_set", "leverage", "5", f"tg:{USER}") in harness.service.calls
    (row,) = harness.sim.audit(actor=f"tg:{USER}")
    assert (row.action, row.before, row.after) == ("config.set", {"leverage": 10}, {"leverage": 5})

    # Persisted: what a restart reads from the database file.
    db = Database.open(harness.sim.db_path, migrate=False)
    try:
        reloaded = effective_config(Settings(_env_file=None, db_path=harness.sim.db_path), Store.of(db))  # type: ignore[call-arg]
    finally:
        db.close()
    assert reloaded.leverage == 5

    history = await harness.say("/config history")
    assert "Config history" in history.text and f"tg:{USER} · leverage: 10 → 5" in history.text
    assert "leverage = 5" in (await harness.say("/config")).text


async def test_dotted_key_and_list_value(harness: BotHarness) -> None:
    question = await harness.say("/config set stop_loss_by_stage.initial -0.08")
    assert "stop_loss_by_stage.initial: -0.1 → -0.08" in question.text
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: harness.sim.ctx.cfg.stop_loss_by_stage["initial"] == -0.08)

    question = await harness.say('/config set symbol_blacklist ["BTCUSDT", "ETHUSDT"]')
    assert "symbol_blacklist: [] → ['BTCUSDT', 'ETHUSDT']" in question.text
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: harness.sim.ctx.cfg.symbol_blacklist == ("BTCUSDT", "ETHUSDT"))


async def test_invalid_value_gets_the_reason_and_changes_nothing(harness: BotHarness) -> None:
    reply = await harness.say("/config set leverage abc")
    assert reply.text.startswith("❌ Invalid value; nothing was changed:")
    assert "leverage: expected an integer, e.g. 10, got 'abc'" in reply.text
    assert reply.buttons == []
    reply = await harness.say("/config set leverage 500")
    assert "leverage = 500 is out of range: allowed [1, 125]" in reply.text
    reply = await harness.say("/config set no_such_key 1")
    assert "unknown key 'no_such_key'" in reply.text
    reply = await harness.say("/config set first_dca_trigger -0.07")  # below the second trigger: ladder inverted
    assert "must be ordered: second < first < 0" in reply.text
    assert harness.service.count("config_set") == 0 and harness.sim.store.config.history(10) == []
    assert harness.sim.ctx.cfg.leverage == 10 and harness.sim.ctx.cfg.first_dca_trigger == -0.03


async def test_change_over_the_risk_limit_is_refused_with_the_figures(harness: BotHarness) -> None:
    reply = await harness.say("/config set max_positions 20")
    assert reply.text.startswith("❌ Invalid value; nothing was changed:")
    assert (
        "worst case: 20 positions all stopped at their worst stage (second_dca) lose 550.00 USDT + 10.72 USDT fees = "
        "56.07% of the balance, above max_account_loss = 0.3 (30.00%)" in reply.text
    )
    assert reply.buttons == []
    assert harness.sim.ctx.cfg.max_positions == 10 and harness.sim.store.config.history(10) == []


async def test_no_keeps_the_config(harness: BotHarness) -> None:
    question = await harness.say("/config set take_half_at 0.2")
    await harness.press(question, question.button("No"))
    await harness.fake.wait_for(lambda: "Cancelled" in harness.fake.message(CHAT, question.message_id).text)
    assert harness.sim.ctx.cfg.take_half_at == 0.10
    assert harness.service.count("config_set") == 0 and harness.sim.store.config.history(10) == []


async def test_expired_config_confirmation(harness: BotHarness) -> None:
    question = await harness.say("/config set take_half_at 0.2")
    harness.clock.advance(120)
    await harness.press(question, question.button("Yes"))
    await harness.fake.wait_for(lambda: "Expired" in harness.fake.message(CHAT, question.message_id).text)
    assert harness.sim.ctx.cfg.take_half_at == 0.10
    assert harness.service.count("config_set") == 0 and harness.sim.store.config.history(10) == []


async def test_html_in_a_config_value_is_escaped(harness: BotHarness) -> None:
    reply = await harness.say("/config set margin_mode <b>isolated</b>&co")
    # The fake Bot API refuses unparsable HTML, so getting a reply at all proves the escaping;
    # the user sees the characters literally.
    assert "margin_mode = '<b>isolated</b>&co' is invalid" in reply.text
    assert "&lt;b&gt;isolated&lt;/b&gt;&amp;co" in (reply.html or "")
    assert harness.sim.ctx.cfg.margin_mode == "cross"
