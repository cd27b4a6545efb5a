"""The real service and Telegram's availability: a token Telegram rejects stops the start; an outage later is
shown (/health, the health snapshot, the log), retried with back-off, and never stops trading."""

from __future__ import annotations

import itertools
import logging
from decimal import Decimal

import pytest

from tests.e2e.bot_harness import CHAT, BotE2E
from tests.e2e.conftest import until
from trading.settings import StartupError

D = Decimal
SYM = "SOLUSDT"


@pytest.mark.parametrize("how", ["revoked", "wrong"])
async def test_a_token_telegram_rejects_is_a_start_up_error(tgbot: BotE2E, how: str) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    settings = tgbot.telegram_settings()
    if how == "revoked":
        tgbot.tg.revoke_token()
    else:
        settings["telegram_bot_token"] = "7000000001:AAWrongTokenForSurgeDcaTests_xxxxxxxxxx"
    with pytest.raises(StartupError) as exc:
        await tgbot.h.start(**settings)
    assert str(exc.value) == (
        "Telegram rejected TELEGRAM_BOT_TOKEN (TelegramUnauthorizedError: Unauthorized). Copy the token again from "
        "@BotFather (/mybots → API Token); a revoked token stops working at once. Nothing was started."
    )
    assert [c.method for c in tgbot.tg.requests] == ["getMe"]
    assert tgbot.h.fake.requests == []  # refused before the exchange was asked anything
    assert tgbot.h.service is not None and tgbot.h.service.engine is None  # nothing trades
    await tgbot.h.stop()


async def test_a_telegram_outage_is_shown_retried_and_trading_goes_on(
    tgbot: BotE2E, caplog: pytest.LogCaptureFixture
) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    service = await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await tgbot.alerts_idle()
    assert (await service.api.health()).telegram.up
    caplog.set_level(logging.INFO, logger="bot.link")

    # Telegram goes down: every call gets 502 Bad Gateway.
    polls = len(tgbot.tg.calls("getUpdates"))
    tgbot.tg.outage(502)
    await until(lambda: not service.telegram_link.up, what="the link seen down")
    health = await service.api.health()
    assert not health.telegram.up and not health.telegram.rejected and health.telegram.failures >= 1
    assert "TelegramServerError" in health.telegram.last_error
    await service._write_health()  # what `surgedca status` reads in another terminal
    assert tgbot.h.store.state.get("health")["telegram"]["up"] is False

    # Meanwhile the price falls through the stop: the position is closed (by the service's stop or the backstop
    # resting on the exchange, whichever is first), Telegram or not.
    await tgbot.h.fake.set_price(SYM, "89.00")
    await until(lambda: tgbot.h.db_position(SYM) is None, timeout=15, what="the stop loss during the outage")
    assert tgbot.h.exchange_qty(SYM) == D("0")

    # Polling retries with growing pauses (not a tight loop).
    await until(
        lambda: len([c for c in tgbot.tg.calls("getUpdates")[polls:] if c.status == 502]) >= 4,
        timeout=20,
        what="four failed polls",
    )
    failed = [c.at for c in tgbot.tg.calls("getUpdates")[polls:] if c.status == 502]
    gaps = [b - a for a, b in itertools.pairwise(failed)]
    assert min(gaps) >= 0.85 and gaps[2] > gaps[0]  # 1 s, 1.5 s, 2.25 s... (±10% jitter)

    # Back: the link is up, the outage is on record, the alerts held back are delivered.
    tgbot.tg.outage(None)
    await until(lambda: service.telegram_link.up, timeout=20, what="Telegram reachable again")
    reply = await tgbot.say("/health")
    assert "✅ Telegram: reachable · last outage " in reply.text
    messages = [r.getMessage() for r in caplog.records if r.name == "bot.link"]
    assert len([m for m in messages if m.startswith("Telegram unreachable")]) == 1  # once, not per retry
    assert any(m.startswith("Telegram reachable again after") for m in messages)
    # The alert sender backs off on its own (up to 30 s), then delivers what waited.
    await until(lambda: tgbot.alerts(CHAT, "SOLUSDT: sold 1 at"), timeout=45, what="the close alert, delivered late")


async def test_a_token_revoked_while_running_is_shown_and_trading_goes_on(
    tgbot: BotE2E, caplog: pytest.LogCaptureFixture
) -> None:
    service = await tgbot.start()
    caplog.set_level(logging.ERROR, logger="bot.link")
    tgbot.tg.revoke_token()
    await until(lambda: service.telegram_link.health().rejected, what="the token seen rejected")
    assert any("Telegram rejects the bot token" in r.getMessage() for r in caplog.records)
    health = await service.api.health()
    assert health.telegram.rejected and not health.telegram.up
    assert service.engine is not None and not service.engine.ctx.stopping
    assert service.bot_task is not None and not service.bot_task.done()  # still trying, never silently dead
