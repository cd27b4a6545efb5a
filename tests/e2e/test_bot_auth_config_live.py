"""/config set end to end on the real service (applied live, persisted, audited); who may talk to the bot is in
test_bot_access_live.py."""

from __future__ import annotations

from decimal import Decimal

from tests.e2e.bot_harness import CHAT, BotE2E
from tests.e2e.conftest import until

D = Decimal
SYM = "SOLUSDT"


async def _adopted(tgbot: BotE2E) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await tgbot.alerts_idle()


async def test_config_set_applies_live_persists_across_a_restart_and_is_audited(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    engine = tgbot.h.engine
    assert tgbot.h.db_position(SYM).backstop_price == D("90.00")

    question = await tgbot.say("/config set stop_loss_by_stage.initial -8%")
    yes = question.button("Yes")
    lines = question.text.splitlines()
    assert lines[0] == "Change the config?"
    assert lines[1] == "stop_loss_by_stage.initial: -0.1 → -0.08"
    assert lines[-1] == "Confirm within 60 s."
    assert engine.ctx.cfg.stop_loss_by_stage["initial"] == -0.1  # nothing before the confirmation

    await tgbot.press(question, yes, until=lambda: tgbot.current(question).text.startswith("✅"))
    assert tgbot.current(question).text == "✅ stop_loss_by_stage.initial = -0.08 (was -0.1)."
    assert engine.ctx.cfg.stop_loss_by_stage["initial"] == -0.08
    # The backstop on the exchange follows: cancelled and re-placed at -8% of the average.
    await until(
        lambda: [s.trigger_price for s in tgbot.h.resting_stops(SYM)] == [D("92.00")], what="the backstop moved to 92"
    )
    await until(lambda: tgbot.h.db_position(SYM).backstop_price == D("92.00"), what="the database's backstop")
    await tgbot.h.agree(SYM)
    assert "Stop: 92 · backstop: 92" in (await tgbot.say("/positions")).text

    (row,) = tgbot.h.store.audit.recent(5, action="config.set")
    assert row.actor == f"tg:{CHAT}"
    assert row.before == {"stop_loss_by_stage.initial": -0.1} and row.after == {"stop_loss_by_stage.initial": -0.08}
    history = (await tgbot.say("/config history")).text.splitlines()
    assert history[0] == "Config history"
    assert history[1].endswith(f"· tg:{CHAT} · stop_loss_by_stage.initial: -0.1 → -0.08")

    # A restart on the same database keeps the value.
    await tgbot.restart()
    engine = tgbot.h.engine
    assert engine.ctx.cfg.stop_loss_by_stage["initial"] == -0.08
    assert "stop_loss_by_stage.initial = -0.08" in (await tgbot.say("/config")).text.splitlines()
    await until(lambda: tgbot.h.db_position(SYM) is not None, what="the position after the restart")
    await tgbot.h.agree(SYM)
    assert tgbot.h.db_position(SYM).backstop_price == D("92.00")
    assert f"tg:{CHAT} · stop_loss_by_stage.initial" in (await tgbot.say("/config history")).text


async def test_config_set_refusals_change_nothing(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    engine = tgbot.h.engine
    before = engine.ctx.cfg
    stops_before = [(s.client_algo_id, s.trigger_price) for s in tgbot.h.resting_stops(SYM)]

    out_of_range = (await tgbot.say("/config set stop_loss_by_stage.initial 0.05")).text
    assert out_of_range.startswith("❌ Invalid value; nothing was changed:")
    assert "stop_loss_by_stage" in out_of_range
    # A number no float can hold (it used to raise decimal.Overflow inside the handler).
    overflow = (await tgbot.say("/config set taker_fee 9e999999999%")).text
    assert overflow.startswith("❌ Invalid value; nothing was changed:")
    assert "taker_fee = '9e999999999%' is out of range: allowed [0, 0.01]" in overflow
    wrong_type = (await tgbot.say("/config set leverage 5%")).text
    assert wrong_type.startswith("❌ Invalid value; nothing was changed:") and "leverage" in wrong_type
    # Passes the type checks, fails the SPEC 6 risk limit (10 positions x 30% stops = far over 30% of the account).
    too_risky = (await tgbot.say("/config set stop_loss_by_stage.second_dca -0.3")).text
    assert too_risky.startswith("❌ Invalid value; nothing was changed:")
    # In this account's terms (wallet ~10,000 USDT: 10 x 5,500 notional x 30%), not the 1,000 USDT reference.
    assert "lose 16,49" in too_risky and "% of the balance, above max_account_loss" in too_risky

    # A valid question answered "No".
    question = await tgbot.say("/config set leverage 5")
    await tgbot.press(question, question.button("No"), until=lambda: "Cancelled" in tgbot.current(question).text)
    assert tgbot.current(question).text == "Cancelled: the config is unchanged."

    assert engine.ctx.cfg is before
    assert tgbot.h.store.config.history() == [] and tgbot.h.store.config.overrides() == {}
    assert tgbot.h.store.audit.recent(5, action="config.set") == []
    assert [(s.client_algo_id, s.trigger_price) for s in tgbot.h.resting_stops(SYM)] == stops_before
