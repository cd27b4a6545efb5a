"""Trade alerts with buttons and charts, through the real aiogram Bot to the fake Bot API: a late or refused
chart never costs the alert, and never holds it up beyond its limit."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import pytest

from bot.app import create_bot
from bot.i18n import make_i18n
from bot.notifier import AlertNotifier, ChartSource, TelegramSink
from tests.fakes.telegram import FakeTelegram
from tests.integration.bot.conftest import close_session
from tests.integration.bot.sim_service import SimService
from trading.charts.renderer import ChartRenderer, WorkerKind
from trading.core.chart import ChartLabels
from trading.core.models import Stage
from trading.events import ErrorEvent

CHAT = 408_258_968
T = 1_761_700_000_000


class Asked:
    """The service's chart source (``ServiceApi.alert_chart``), each request recorded on its way through."""

    def __init__(self, source: ChartSource) -> None:
        self.source = source
        self.asked: list[tuple[str, int, Sequence[ChartLabels]]] = []

    async def __call__(self, symbol: str, position_id: int, labels: Sequence[ChartLabels]) -> bytes | None:
        self.asked.append((symbol, position_id, labels))
        return await self.source(symbol, position_id, labels)


@pytest.fixture
async def make(telegram: FakeTelegram) -> AsyncIterator:
    bot = create_bot(telegram.token, telegram.base_url)
    made: list[AlertNotifier] = []

    async def factory(source: ChartSource | None, *, locale: str = "en", chart_timeout_s: float = 3.0) -> AlertNotifier:
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


async def test_entry_and_dca_alerts_carry_the_chart_and_their_buttons(
    telegram: FakeTelegram, sim: SimService, make
) -> None:
    # The real service: its alerts reach the notifier, its alert_chart draws the position's chart.
    await sim.api.config_set("alert_charts", "true", "tg:1")
    source = Asked(sim.api.alert_chart)
    notifier = await make(source, locale="ko")
    sim.alerts.append(notifier.publish)
    entry = await sim.open_position("ETHUSDT", "2500", stage=Stage.FIRST_DCA, last_price="2450")
    await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 2)
    notifier.publish(ErrorEvent(ts_ms=T, where="scanner", message="kline gap"))
    msgs = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 3 and telegram.bot_messages(CHAT))
    first, second, error = msgs
    assert first.photo is not None and first.photo[:8] == b"\x89PNG\r\n\x1a\n"
    assert first.text.startswith("🟢 진입 ETHUSDT")  # the caption is the alert, in the alerts' locale
    assert [label for label, _ in first.buttons] == ["📈 차트", "🚫 차단"]
    pid = entry.position_id
    assert first.button("차트") == f"ch:ETHUSDT:3m:{pid}" and first.button("차단") == "bl:a:ETHUSDT:0"
    assert second.photo is not None and second.text.startswith("🔵 물타기 ETHUSDT")
    assert [label for label, _ in second.buttons] == ["📈 차트"]
    assert second.photo != first.photo  # drawn again: the DCA's fill is on it
    assert error.photo is None and error.buttons == []  # not a trade: no chart, no buttons
    assert [(s, p) for s, p, _ in source.asked] == [("ETHUSDT", pid), ("ETHUSDT", pid)]
    labels = source.asked[0][2]
    assert labels[0].avg == "평단" and labels[1] == ChartLabels()  # the locale's words, English as the fallback


async def test_a_late_chart_sends_the_alert_as_text_within_its_limit(
    telegram: FakeTelegram, sim: SimService, make
) -> None:
    # The service's chart worker process, not started yet: its first chart takes a process start and the import
    # of matplotlib, far longer than the alert's 50 ms limit here.
    sim.api.charts.close()
    sim.api.charts = ChartRenderer(kind=WorkerKind.PROCESS)
    await sim.api.config_set("alert_charts", "true", "tg:1")
    notifier = await make(Asked(sim.api.alert_chart), chart_timeout_s=0.05)
    sim.alerts.append(notifier.publish)
    t0 = time.monotonic()
    await sim.enter("ETHUSDT")
    (msg,) = await telegram.wait_for(lambda: telegram.bot_messages(CHAT), 5)
    assert time.monotonic() - t0 < 2.0  # bounded by chart_timeout_s, not by the chart
    assert sim.api.charts.renders == 0  # the chart was still being drawn when the alert went
    assert msg.photo is None and msg.text.startswith("🟢 Entry ETHUSDT")
    assert [label for label, _ in msg.buttons] == ["📈 Chart", "🚫 Block"]  # the buttons stay


async def test_no_chart_refused_chart_and_rate_limit(telegram: FakeTelegram, sim: SimService, make) -> None:
    notifier = await make(Asked(sim.api.alert_chart))
    sim.alerts.append(notifier.publish)
    await sim.open_position("ETHUSDT", "2500", stage=Stage.FIRST_DCA, last_price="2450")  # alert_charts off
    entry, dca = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 2 and telegram.bot_messages(CHAT))
    assert entry.photo is None and [label for label, _ in entry.buttons] == ["📈 Chart", "🚫 Block"]
    assert dca.photo is None and [label for label, _ in dca.buttons] == ["📈 Chart"]

    await sim.api.config_set("alert_charts", "true", "tg:1")
    telegram.fail_next("sendPhoto", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    await sim.enter("SOLUSDT")
    msgs = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 3 and telegram.bot_messages(CHAT))
    assert msgs[2].photo is None and msgs[2].text.startswith("🟢 Entry SOLUSDT") and msgs[2].buttons

    telegram.fail_next("sendPhoto", 429, "Too Many Requests: retry after 1", retry_after=1)
    await sim.enter("DOGEUSDT")
    msgs = await telegram.wait_for(lambda: len(telegram.bot_messages(CHAT)) >= 4 and telegram.bot_messages(CHAT), 15)
    assert msgs[3].photo is not None and msgs[3].text.startswith("🟢 Entry DOGEUSDT")  # waited, sent the photo again
    assert [c.status for c in telegram.calls("sendPhoto")][-2:] == [429, 200]
