"""Push alerts through the real aiogram Bot to the fake Bot API: delivery, 429, storms, outages."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from bot.app import create_bot
from bot.i18n import make_i18n
from bot.notifier import AlertNotifier, ConsoleSink, TelegramSink
from tests.fakes.telegram import FakeTelegram
from tests.integration.bot.conftest import close_session
from trading.events import (
    DcaFilled,
    EntryFilled,
    ErrorEvent,
    PositionClosed,
    StreamDown,
    StreamUp,
)

CHATS = (408_258_968, -1_001_234_567_890)
T = 1_761_700_000_000


def dca(i: int = 0) -> DcaFilled:
    return DcaFilled(
        ts_ms=T + i,
        symbol="ETHUSDT",
        level="first_dca",
        price=Decimal("2425.5"),
        qty=Decimal("0.082"),
        avg_price=Decimal("2461.73"),
        total_qty=Decimal("0.142"),
        position_id=3,
    )


def stop_loss() -> PositionClosed:
    return PositionClosed(
        ts_ms=T,
        symbol="SOLUSDT",
        reason="stop_loss",
        price=Decimal("138.2"),
        qty=Decimal("3.9"),
        pnl=Decimal("-41.37"),
        pnl_pct=Decimal("-0.7"),
        position_id=4,
    )


def error(i: int, where: str = "scanner") -> ErrorEvent:
    return ErrorEvent(ts_ms=T + i, where=where, message=f"kline gap #{i}")


@pytest.fixture
async def notifier_factory(telegram: FakeTelegram) -> AsyncIterator:
    bot = create_bot(telegram.token, telegram.base_url)
    i18n = make_i18n("en")
    made: list[AlertNotifier] = []

    async def make(**kwargs: object) -> AlertNotifier:
        n = AlertNotifier(TelegramSink(bot, CHATS, i18n=i18n, locale=kwargs.pop("locale", "en")), **kwargs)
        await n.start()
        made.append(n)
        return n

    yield make
    for n in made:
        await n.stop(grace_s=1)
    await close_session(bot)


async def test_dca_fill_and_stop_loss_reach_every_allowed_chat(telegram: FakeTelegram, notifier_factory) -> None:
    notifier = await notifier_factory()
    notifier.publish(dca())
    notifier.publish(stop_loss())
    await telegram.wait_for(lambda: all(len(telegram.messages(c)) == 2 for c in CHATS))
    for chat in CHATS:
        first, second = telegram.messages(chat)
        assert first == "🔵 DCA ETHUSDT (first DCA): bought 0.082 at 2,425.5; average 2,461.73, total 0.142"
        assert second == "🛑 Stop loss SOLUSDT: sold 3.9 at 138.2; result -41.37 USDT (-70.00% of margin)"


async def test_alerts_use_the_default_locale(telegram: FakeTelegram, notifier_factory) -> None:
    notifier = await notifier_factory(locale="ko")
    notifier.publish(stop_loss())
    await telegram.wait_for(lambda: telegram.messages(CHATS[0]))
    assert telegram.messages(CHATS[0])[0].startswith("🛑 손절 SOLUSDT: 3.9 매도 @ 138.2")


async def test_429_delays_but_loses_nothing(telegram: FakeTelegram, notifier_factory) -> None:
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    notifier = await notifier_factory()
    started = time.monotonic()
    notifier.publish(dca(1))
    notifier.publish(dca(2))
    await telegram.wait_for(lambda: all(len(telegram.messages(c)) == 2 for c in CHATS), timeout=10)
    attempts = telegram.calls("sendMessage")
    assert [c.status for c in attempts] == [429, 200, 200, 200, 200]
    assert attempts[1].at - attempts[0].at >= 0.95  # retry_after honoured
    assert attempts[0].params == attempts[1].params  # the same message, re-sent
    assert time.monotonic() - started >= 0.95
    assert notifier.dropped == 0


async def test_error_storm_is_one_message_and_a_count(telegram: FakeTelegram, notifier_factory) -> None:
    notifier = await notifier_factory(window_s=0.5)
    for i in range(13):
        notifier.publish(error(i))
    notifier.publish(dca())  # a trade alert in the middle of the storm is never held back
    notifier.publish(error(99, where="user-stream"))  # another source: its own alert
    chat = CHATS[0]
    await telegram.wait_for(lambda: len(telegram.messages(chat)) >= 4, timeout=5)
    # Nothing else is held back: whatever a window still held would be queued by flushing them now.
    notifier.flush_windows()
    assert await notifier.wait_idle(5)
    texts = telegram.messages(chat)
    assert texts[0] == "⚠️ Error in scanner: kline gap #0"
    assert texts[1].startswith("🔵 DCA ETHUSDT")
    assert texts[2] == "⚠️ Error in user-stream: kline gap #99"
    assert texts[3] == "⚠️ Error in scanner: kline gap #12\n…and 12 more like these in the last minute"
    assert len(texts) == 4
    assert notifier.coalesced == 12


async def test_stream_flapping_is_coalesced(telegram: FakeTelegram, notifier_factory) -> None:
    notifier = await notifier_factory(window_s=0.4)
    for i in range(5):
        notifier.publish(StreamDown(ts_ms=T + i, name="market", detail="1006 abnormal closure"))
        notifier.publish(StreamUp(ts_ms=T + i, name="market", down_for_s=1.5))
    chat = CHATS[0]
    await telegram.wait_for(lambda: len(telegram.messages(chat)) >= 2, timeout=5)
    first, summary = telegram.messages(chat)
    assert first == "📡 Stream down: market — 1006 abnormal closure"
    assert summary == "📡 Stream up: market (was down 1.5s)\n…and 9 more like these in the last minute"  # latest state


async def test_outage_keeps_trades_drops_oldest_noise_and_says_so(telegram: FakeTelegram, notifier_factory) -> None:
    telegram.fail_next("sendMessage", 502, "Bad Gateway", times=3)
    notifier = await notifier_factory(max_queue=4, min_backoff_s=0.05, max_backoff_s=0.1)
    notifier.publish(error(0, where="a"))  # in flight: retried through the outage
    await telegram.wait_for(lambda: telegram.calls("sendMessage"))
    notifier.publish(dca(1))
    notifier.publish(error(1, where="b"))
    notifier.publish(error(2, where="c"))
    notifier.publish(dca(2))
    notifier.publish(dca(3))  # queue full: error b goes
    notifier.publish(
        EntryFilled(
            ts_ms=T,
            symbol="WIFUSDT",
            price=Decimal("2.31"),
            qty=Decimal("64"),
            notional=Decimal("147.84"),
            position_id=9,
        )
    )  # full again: error c goes
    chat = CHATS[0]
    await telegram.wait_for(lambda: any("dropped" in t for t in telegram.messages(chat)), timeout=10)
    await notifier.wait_idle(5)
    texts = telegram.messages(chat)
    assert texts[0] == "⚠️ Error in a: kline gap #0"
    assert texts[1] == "⚠️ 2 alerts were dropped while Telegram could not be reached."
    assert [t.split(":")[0] for t in texts[2:]] == ["🔵 DCA ETHUSDT (first DCA)"] * 3 + ["🟢 Entry WIFUSDT"]
    assert notifier.dropped == 2
    assert not any("gap #1" in t or "gap #2" in t for t in texts)


async def test_html_in_event_fields_is_escaped(telegram: FakeTelegram, notifier_factory) -> None:
    notifier = await notifier_factory()
    notifier.publish(ErrorEvent(ts_ms=T, symbol="<b>X</b>", where="exec<utor>", message="code=-2019 & <margin>"))
    await telegram.wait_for(lambda: telegram.messages(CHATS[0]))
    assert telegram.messages(CHATS[0])[0] == "⚠️ Error in exec<utor> <b>X</b>: code=-2019 & <margin>"


async def test_publish_never_raises_and_never_waits(telegram: FakeTelegram, notifier_factory) -> None:
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=100)
    notifier = await notifier_factory(max_queue=50)
    started = time.perf_counter()
    for i in range(2000):
        notifier.publish(dca(i))
    elapsed = time.perf_counter() - started
    assert notifier.published == 2000
    assert notifier.pending <= 51  # bounded, whatever Telegram does
    assert notifier.dropped >= 1949
    assert elapsed < 5  # generous: this is about never blocking on the network, not speed


async def test_console_sink_writes_one_line_per_alert(caplog: pytest.LogCaptureFixture) -> None:
    notifier = AlertNotifier(ConsoleSink(logging.getLogger("surgedca.alerts")), window_s=60)
    await notifier.start()
    with caplog.at_level(logging.INFO, logger="surgedca.alerts"):
        notifier.publish(dca())
        notifier.publish(stop_loss())
        notifier.publish(error(1))
        notifier.publish(error(2))
        await notifier.stop(grace_s=2)  # flushes the held-back error as a summary
    lines = [r.getMessage() for r in caplog.records if r.name == "surgedca.alerts"]
    assert lines == [
        "DCA ETHUSDT first_dca: bought 0.082 at 2,425.5; avg 2,461.73, total 0.142",
        "STOP LOSS SOLUSDT (stop_loss): sold 3.9 at 138.2; pnl -41.37 USDT (-70.00% of margin)",
        "ERROR in scanner: kline gap #1",
        "ERROR in scanner: kline gap #2 (and 1 more like this in the last minute)",
    ]
    levels = [r.levelno for r in caplog.records if r.name == "surgedca.alerts"]
    assert levels == [logging.INFO, logging.WARNING, logging.WARNING, logging.WARNING]
