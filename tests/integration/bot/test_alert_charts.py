"""Trade alerts with buttons and charts, through the real aiogram Bot to the fake Bot API: a late or refused
chart never costs the alert, and never holds it up beyond its limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from decimal import Decimal

import numpy as np
import pytest

from bot.app import create_bot
from bot.i18n import make_i18n
from bot.notifier import AlertNotifier, TelegramSink
from tests.fakes.telegram import FakeTelegram
from tests.integration.bot.conftest import close_session
from trading.charts.render import render_request
from trading.core.chart import ChartLabels, ChartRequest
from trading.core.config import SignalParams
from trading.core.series import OHLCV
from trading.events import DcaFilled, EntryFilled, ErrorEvent

CHAT = 408_258_968
T = 1_761_700_000_000


def entry() -> EntryFilled:
    return EntryFilled(
        ts_ms=T,
        symbol="ETHUSDT",
        price=Decimal("2461.7"),
        qty=Decimal("0.06"),
        notional=Decimal("147.7"),
        position_id=7,
    )


def dca() -> DcaFilled:
    return DcaFilled(
        ts_ms=T,
        symbol="ETHUSDT",
        level="first_dca",
        price=Decimal("2425.5"),
        qty=Decimal("0.082"),
        avg_price=Decimal("2461.73"),
        total_qty=Decimal("0.142"),
        position_id=7,
    )


def chart_png() -> bytes:
    n = 200
    close = np.linspace(100, 110, n)
    candles = OHLCV(np.arange(n, dtype=np.int64) * 180_000 + T, close, close + 0.2, close - 0.2, close, np.ones(n))
    return render_request(ChartRequest("ETHUSDT", "3m", candles, SignalParams())).png


class Source:
    """A chart source as the service's: asked with the symbol, the position and the label sets."""

    def __init__(self, png: bytes | None, delay_s: float = 0.0) -> None:
        self.png, self.delay_s = png, delay_s
        self.asked: list[tuple[str, int, Sequence[ChartLabels]]] = []

    async def __call__(self, symbol: str, position_id: int, labels: Sequence[ChartLabels]) -> bytes | None:
        self.asked.append((symbol, position_id, labels))
        await asyncio.sleep(self.delay_s)
        return self.png


@pytest.fixture
async def make(telegram: FakeTelegram) -> AsyncIterator:
    bot = create_bot(telegram.token, telegram.base_url)
    made: list[AlertNotifier] = []

    async def factory(source: Source | None, *, locale: str = "en", chart_timeout_s: float = 3.0) -> AlertNotifier:
        sink = TelegramSink(
            bot, (CHAT,), i18n=make_i18n("en"), locale=locale, chart_source=source, chart_timeout_s=chart_timeout_s
        )
        n = AlertNotifier(sink)
        await n.start()
        made.append(n)
        return n

    yield factory
    for n in made:
        await n.stop(grace_s=1)
    await close_session(bot)


async def test_entry_and_dca_alerts_carry_the_chart_and_their_buttons(telegram: FakeTelegram, make) -> None:
    source = Source(chart_png())
    notifier = await make(source, locale="ko")
    notifier.publish(entry())
    notifier.publish(dca())
    notifier.publish(ErrorEvent(ts_ms=T, where="scanner", message="kline gap"))
    msgs = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 3 and telegram.bot_messages(CHAT))
    first, second, error = msgs
    assert first.photo is not None and first.photo[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.text.startswith("🟢 진입 ETHUSDT")  # the caption is the alert, in the alerts' locale
    assert [label for label, _ in first.buttons] == ["📈 차트", "🚫 차단"]
    assert first.button("차트") == "ch:ETHUSDT:3m:7" and first.button("차단") == "bl:a:ETHUSDT:0"
    assert second.photo is not None and [label for label, _ in second.buttons] == ["📈 차트"]
    assert error.photo is None and error.buttons == []  # not a trade: no chart, no buttons
    assert [(s, p) for s, p, _ in source.asked] == [("ETHUSDT", 7), ("ETHUSDT", 7)]
    labels = source.asked[0][2]
    assert labels[0].avg == "평단" and labels[1] == ChartLabels()  # the locale's words, English as the fallback


async def test_a_late_chart_sends_the_alert_as_text_within_its_limit(telegram: FakeTelegram, make) -> None:
    notifier = await make(Source(chart_png(), delay_s=30), chart_timeout_s=0.3)
    t0 = time.monotonic()
    notifier.publish(entry())
    (msg,) = await telegram.wait_for(lambda: telegram.bot_messages(CHAT), 5)
    assert time.monotonic() - t0 < 2.0  # bounded by chart_timeout_s, not by the chart
    assert msg.photo is None and msg.text.startswith("🟢 Entry ETHUSDT")
    assert [label for label, _ in msg.buttons] == ["📈 Chart", "🚫 Block"]  # the buttons stay


async def test_no_chart_refused_chart_and_rate_limit(telegram: FakeTelegram, make) -> None:
    notifier = await make(Source(None))  # alert_charts off: the source gives nothing
    notifier.publish(dca())
    (plain,) = await telegram.wait_for(lambda: telegram.bot_messages(CHAT), 5)
    assert plain.photo is None and [label for label, _ in plain.buttons] == ["📈 Chart"]

    notifier = await make(Source(chart_png()))
    telegram.fail_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    notifier.publish(entry())
    msgs = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 2 and telegram.bot_messages(CHAT))
    assert msgs[1].photo is None and msgs[1].text.startswith("🟢 Entry ETHUSDT") and msgs[1].buttons

    telegram.fail_next("sendPhoto", 429, "Too Many Requests: retry after 1", retry_after=1)
    notifier.publish(entry())
    msgs = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 3 and telegram.bot_messages(CHAT), 15)
    assert msgs[2].photo is not None  # waited retry_after and sent the photo again
    assert [c.status for c in telegram.calls("sendPhoto")][-2:] == [429, 200]
