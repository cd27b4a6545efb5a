"""Push alerts and /pause on the real service: price moves on the fake exchange -> fills -> both allowed chats.

The pause test drives the scanner with the real 1000PEPEUSDT candles of
``tests/e2e/test_scanner_live.py``: the entry signal holds at four of the
minutes pushed; while paused the service places no order, after /resume it enters.
"""

from __future__ import annotations

import re
import time
from decimal import ROUND_DOWN, Decimal

import pytest

from bot.formatting import fmt_price, fmt_qty
from tests.e2e.bot_harness import CHAT, GROUP, BotE2E
from tests.e2e.conftest import until
from tests.e2e.test_scanner_live import SIGNAL_MINUTE, _report_at, _rows

D = Decimal
SYM = "SOLUSDT"
PEPE = "1000PEPEUSDT"


def _floor(x: Decimal, step: str) -> Decimal:
    return (x / D(step)).to_integral_value(rounding=ROUND_DOWN) * D(step)


async def _adopted(tgbot: BotE2E) -> None:
    await tgbot.h.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await tgbot.start()
    await until(lambda: tgbot.h.db_position(SYM) and len(tgbot.h.resting_stops(SYM)) == 1, what="adoption")
    await tgbot.alerts_idle()


async def test_dca_and_stop_loss_alerts_reach_both_chats_through_a_429(tgbot: BotE2E) -> None:
    await _adopted(tgbot)
    fake, tg = tgbot.h.fake, tgbot.tg
    for chat in (CHAT, GROUP):  # start-up alerts went to both chats already
        assert tgbot.alerts(chat, "Adopted SOLUSDT") and tgbot.alerts(chat, "SurgeDCA started in live mode")

    # Telegram rate-limits the next message: the DCA alert waits retry_after and is delivered, to both chats.
    tg.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    await fake.set_price(SYM, "97.00")
    rec = await until(
        lambda: (r := tgbot.h.db_position(SYM)) and r.state.stage.value == "first_dca" and r, what="first DCA"
    )
    await until(
        lambda: tgbot.alerts(CHAT, "DCA SOLUSDT") and tgbot.alerts(GROUP, "DCA SOLUSDT"),
        timeout=15,
        what="DCA alerts in both chats",
    )
    dca_leg = rec.state.legs[-1]
    expected = (
        f"🔵 DCA SOLUSDT (first DCA): bought {fmt_qty(dca_leg.qty)} at {fmt_price(dca_leg.price)}; "
        f"average {fmt_price(rec.state.avg_price)}, total {fmt_qty(rec.state.qty)}"
    )
    assert tgbot.alerts(CHAT, "DCA SOLUSDT") == [expected] == tgbot.alerts(GROUP, "DCA SOLUSDT")
    refused = [c for c in tg.calls("sendMessage") if c.status == 429]
    assert len(refused) == 1 and "DCA" in refused[0].params["text"]
    delivered = [c for c in tg.calls("sendMessage", ok_only=True) if c.params["text"] == refused[0].params["text"]]
    assert len(delivered) == 2 and delivered[0].at - refused[0].at >= 1.0  # waited, resent, nothing lost

    # Paused: the stop loss still fires (exits never pause) and is an alert in both chats.
    assert (await tgbot.say("/pause")).text.startswith("⏸ Paused")
    stop = _floor(rec.state.avg_price * D("0.93"), "0.01")
    await until(lambda: tgbot.h.db_position(SYM).backstop_price == stop, what="the -7% backstop")
    await fake.set_price(SYM, str(stop - D("0.05")), mark=str(stop + D("0.50")))  # the service's own stop acts
    await until(lambda: tgbot.h.db_position(SYM) is None, what="stop loss")
    closed = tgbot.h.store.positions.list_closed()[-1]
    assert closed.close_reason == "stop_loss" and closed.realized_pnl is not None and closed.realized_pnl < 0
    await until(lambda: tgbot.alerts(CHAT, "Stop loss") and tgbot.alerts(GROUP, "Stop loss"), what="stop alerts")
    (alert,) = tgbot.alerts(GROUP, "Stop loss")
    assert alert.startswith(f"🛑 Stop loss SOLUSDT: sold {fmt_qty(rec.state.qty)} at ")
    for chat in (CHAT, GROUP):  # in the order they happened
        texts = [m.text for m in tg.bot_messages(chat)]
        dca_at = next(i for i, t in enumerate(texts) if t.startswith("🔵 DCA"))
        stop_at = next(i for i, t in enumerate(texts) if t.startswith("🛑 Stop loss"))
        assert dca_at < stop_at
    assert tgbot.h.engine.ctx.paused


@pytest.mark.timeout(120)
async def test_pause_blocks_a_signal_entry_dca_continues_and_resume_allows_the_next(tgbot: BotE2E) -> None:
    fake = tgbot.h.fake
    rows = [r for r in _rows() if r[0] <= SIGNAL_MINUTE + 3 * 60_000]
    by_minute = {r[0]: r for r in rows}
    before = SIGNAL_MINUTE - 60_000
    assert _report_at(rows, SIGNAL_MINUTE).entry and _report_at(rows, SIGNAL_MINUTE + 3 * 60_000).entry
    assert not _report_at(rows, SIGNAL_MINUTE + 2 * 60_000).entry

    fake.add_symbol(
        PEPE,
        price=f"{by_minute[before][4]:.7f}",
        tick_size="0.0000001",
        step_size="1",
        min_notional="5",
        max_leverage=25,
        quote_volume="800000000",
    )
    fake.load_klines(PEPE, "1m", [r for r in rows if r[0] < before])
    fake.time_offset_ms = before + 30_000 - int(time.time() * 1000)  # the exchange lives in that minute
    await _adopted(tgbot)
    engine = tgbot.h.engine
    await until(
        lambda: PEPE in engine.scanner.universe and engine.candles.last_open_time(PEPE) == before - 60_000,
        timeout=30,
        what="backfill of the real history",
    )
    await until(
        lambda: any(f"{PEPE.lower()}@kline_1m" in c.streams for c in fake.ws_clients("market")),
        what="kline subscription",
    )

    async def close_minute(minute: int) -> None:
        r = by_minute[minute]
        await fake.push_kline(PEPE, r[0], r[1], r[2], r[3], r[4], r[5], closed=True)
        await until(lambda: engine.candles.last_open_time(PEPE) == minute, what=f"minute {minute} stored")

    # The bot tells times on the service's clock (the exchange's, here in January 2026), not the host's.
    await until(lambda: engine.reconciler.last is not None, what="a reconcile")
    health = (await tgbot.say("/health")).text
    assert "(since 2026-01-13 23:4" in health
    assert re.search(r"^Last reconcile: \d+(\.\d)?s ago", health, re.MULTILINE), health

    assert (await tgbot.say("/pause")).text.startswith("⏸ Paused")
    # DCA continues while paused.
    await fake.set_price(SYM, "97.00")
    await until(lambda: tgbot.h.db_position(SYM).state.stage.value == "first_dca", what="DCA while paused")
    await until(lambda: tgbot.alerts(CHAT, "DCA SOLUSDT") and tgbot.alerts(GROUP, "DCA SOLUSDT"), what="DCA alerts")

    # The signal minute closes while paused: no order.
    await close_minute(before)
    await close_minute(SIGNAL_MINUTE)
    why = (await tgbot.say("/why 1000pepe")).text  # the same candles say "entry"...
    assert why.splitlines()[1] == "Verdict: ✅ entry signal"
    assert "1h pre-filter" in why and "1m strategy" in why and "15m filter" in why
    assert engine.executor.entry_blocker(PEPE) == "paused"  # ...the pause is why nothing was bought
    assert [o for o in fake.orders if o.symbol == PEPE] == [] and tgbot.h.db_position(PEPE) is None
    await close_minute(SIGNAL_MINUTE + 60_000)
    await close_minute(SIGNAL_MINUTE + 2 * 60_000)
    assert [o for o in fake.orders if o.symbol == PEPE] == []

    assert (await tgbot.say("/resume")).text == "▶ Resumed: new entries are allowed again."
    await close_minute(SIGNAL_MINUTE + 3 * 60_000)
    # (the position row exists as "pending" before its order is sent: wait for the fill)
    rec = await until(
        lambda: (r := tgbot.h.db_position(PEPE)) and r.status == "open" and r,
        timeout=20,
        what="the entry after /resume",
    )
    orders = [o for o in fake.orders if o.symbol == PEPE]
    assert len(orders) == 1 and orders[0].side == "BUY" and not orders[0].reduce_only
    assert rec.origin == "signal"
    await until(
        lambda: tgbot.alerts(CHAT, f"Entry {PEPE}") and tgbot.alerts(GROUP, f"Entry {PEPE}"), what="entry alerts"
    )
