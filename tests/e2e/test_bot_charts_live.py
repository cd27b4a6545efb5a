"""/chart and the Chart buttons on the real service while it trades: the chart worker (a real process) draws,
aiogram sends the photo to the fake Bot API with its caption, and the ladder goes on meanwhile."""

from __future__ import annotations

import asyncio
import math
import struct
from decimal import Decimal

import pytest

from tests.e2e.bot_harness import CHAT, BotE2E
from tests.e2e.conftest import until
from tests.fakes.binance import FakeBinance
from tests.fakes.telegram import FakeMessage
from trading.charts.renderer import WorkerKind

D = Decimal
SYM = "SOLUSDT"
MINUTE = 60_000


def load_history(fake: FakeBinance, symbol: str, last: float, *, minutes: int = 720, decimals: int = 2) -> None:
    """``minutes`` closed 1m candles up to the minute before now, a gentle wave ending at ``last``."""
    now = fake.now_ms()
    first = now - now % MINUTE - minutes * MINUTE
    rows = []
    prev = last
    for i in range(minutes):
        close = last * (1 + 0.01 * math.sin(i / 37) * (minutes - i) / minutes)
        hi, lo = max(prev, close) * 1.0015, min(prev, close) * 0.9985
        rows.append(
            (
                first + i * MINUTE,
                round(prev, decimals),
                round(hi, decimals),
                round(lo, decimals),
                round(close, decimals),
                1000 + 10 * (i % 17),
            )
        )
        prev = round(close, decimals)
    fake.load_klines(symbol, "1m", rows)


def png_size(png: bytes | None) -> tuple[int, int]:
    assert png is not None and png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def photos(tgbot: BotE2E, chat: int = CHAT) -> list[FakeMessage]:
    return [m for m in tgbot.tg.bot_messages(chat) if m.photo is not None]


@pytest.mark.timeout(120)
async def test_charts_of_a_held_and_a_not_held_symbol_arrive_while_the_service_trades(tgbot: BotE2E) -> None:
    fake = tgbot.h.fake
    load_history(fake, SYM, 100.0)
    load_history(fake, "DOGEUSDT", 0.1, decimals=5)
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    engine = tgbot.h.engine
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await until(
        lambda: engine.candles.last_open_time(SYM) and engine.candles.last_open_time("DOGEUSDT"),
        timeout=20,
        what="candles backfilled",
    )
    await tgbot.alerts_idle()
    assert tgbot.service.api.charts.kind is WorkerKind.PROCESS

    # The price falls to the first DCA while the chart is being asked for and drawn.
    async def trade() -> None:
        for px in ("99.60", "99.10", "98.40", "97.80", "97.00"):
            await fake.set_price(SYM, px)
            await asyncio.sleep(0.05)

    trading = asyncio.create_task(trade())
    held = await tgbot.say("/chart sol", within=60)  # the worker process starts with the first chart
    await trading
    assert png_size(held.photo) == (1080, 1260)
    lines = held.text.splitlines()
    assert lines[0].startswith("SOLUSDT · 3m · ")
    assert lines[0].endswith(("· initial entry", "· first DCA"))  # drawn before or after the DCA fill
    assert any(line.startswith("Stop: ") and " · backstop: " in line for line in lines)
    assert [label for label, _ in held.buttons] == ["1m", "• 3m", "15m", "1h", "❌ Exit SOLUSDT"]

    rec = await until(
        lambda: (r := tgbot.h.db_position(SYM)) and r.state.stage.value == "first_dca" and r,
        what="the first DCA filled meanwhile",
    )
    await until(lambda: tgbot.alerts(CHAT, "DCA SOLUSDT"), what="the DCA alert")
    await until(
        lambda: (
            tgbot.h.assert_agree(SYM) is not None
            and tgbot.h.db_position(SYM).backstop_price
            == (rec.state.avg_price * D("0.93")).quantize(D("0.01"), "ROUND_DOWN")
        ),
        what="the backstop moved to the first-DCA stop",
    )

    # The DCA alert's Chart button: the position as it is now (a new position state: drawn anew).
    alert = next(m for m in tgbot.tg.bot_messages(CHAT) if m.text.startswith("🔵 DCA SOLUSDT"))
    assert [label for label, _ in alert.buttons] == ["📈 Chart"]
    before = len(photos(tgbot))
    await tgbot.press(alert, alert.button("Chart"), until=lambda: len(photos(tgbot)) > before, within=30)
    after_dca = photos(tgbot)[-1]
    assert after_dca.text.splitlines()[0].endswith("· first DCA")
    assert "Next DCA: second DCA at 94" in after_dca.text
    assert png_size(after_dca.photo) == (1080, 1260)

    # A symbol not held: the candles and the state of the entry conditions; another interval.
    other = await tgbot.say("/chart doge 1m", within=30)
    assert png_size(other.photo) == (1080, 1260)
    assert other.text.startswith("DOGEUSDT · 1m · ")
    assert "Not held. Entry conditions: " in other.text and "Every value: /why DOGEUSDT" in other.text
    assert [label for label, _ in other.buttons] == ["• 1m", "3m", "15m", "1h"]
    before = len(photos(tgbot))
    await tgbot.press(other, other.button("15m"), until=lambda: len(photos(tgbot)) > before, within=30)
    assert photos(tgbot)[-1].text.startswith("DOGEUSDT · 15m · ")

    # From /positions: the Chart button of the position.
    listing = await tgbot.say("/positions")
    before = len(photos(tgbot))
    await tgbot.press(listing, listing.button("Chart"), until=lambda: len(photos(tgbot)) > before, within=30)
    assert photos(tgbot)[-1].text.startswith("SOLUSDT · 3m · ")
    assert tgbot.service.api.charts.renders >= 4  # each one drawn by the worker, none refused

    # Bad input changes nothing and says why.
    assert (await tgbot.say("/chart")).text.startswith("Usage: /chart SYMBOL [1m|3m|15m|1h]")
    assert (await tgbot.say("/chart sol 5m")).text == "Charts come in 1m, 3m, 15m or 1h."
    assert (await tgbot.say("/chart nosuchcoin")).text == "Unknown symbol NOSUCHCOINUSDT. Write it like btc or BTCUSDT."
    await tgbot.h.agree(SYM)
