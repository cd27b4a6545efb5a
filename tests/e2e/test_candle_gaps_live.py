"""Complete candles before a decision, end to end: a minute missed on the stream is repaired over REST first.

The real service (live mode) on the loopback fake Binance, with the real 1000PEPEUSDT candles around a minute
where the entry signal holds (the same set-up as ``test_scanner_live``). The stream skips the minute before the
signal minute: the scanner must not evaluate the series with the hole, the keeper repairs it over REST, and the
minute is then evaluated (at the same minute) and the entry made.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import Harness, until
from tests.e2e.test_scanner_live import SIGNAL_MINUTE, SYM, _report_at, _rows


@pytest.mark.timeout(120)
async def test_a_missed_minute_is_repaired_before_the_scanner_decides(harness: Harness) -> None:
    fake = harness.fake
    rows = [r for r in _rows() if r[0] <= SIGNAL_MINUTE]
    missed = SIGNAL_MINUTE - 60_000
    assert _report_at(rows, SIGNAL_MINUTE).entry  # with every minute, the rules signal at SIGNAL_MINUTE

    fake.add_symbol(
        SYM,
        price=f"{rows[-2][4]:.7f}",
        tick_size="0.0000001",
        step_size="1",
        min_notional="5",
        max_leverage=25,
        quote_volume="800000000",
    )
    fake.load_klines(SYM, "1m", [r for r in rows if r[0] <= missed])  # REST has the minute the stream will skip
    fake.time_offset_ms = missed + 30_000 - int(time.time() * 1000)  # the exchange lives in the missed minute
    await harness.start()
    engine = harness.engine
    await until(
        lambda: SYM in engine.scanner.universe and engine.candles.last_open_time(SYM) == missed - 60_000,
        timeout=30,
        what="backfill of the real history",
    )
    assert engine.candles.complete(SYM)
    stream = f"{SYM.lower()}@kline_1m"
    await until(lambda: any(stream in c.streams for c in fake.ws_clients("market")), what="kline subscription")

    # The minute `missed` closes but its kline never reaches the service; the signal minute's does. The REST
    # repair is held for 3 s so that we can look at the service meanwhile.
    klines_before = len([r for r in fake.requests if r.path == "/fapi/v1/klines"])
    fake.faults.delay("GET", "/fapi/v1/klines", 3.0)
    r = rows[-1]
    fake.time_offset_ms += 60_000  # a minute later; the service follows the exchange's clock (as it does live)
    await engine.ctx.port.sync_time()
    await engine.ctx.clock.sync(engine.ctx.port.server_time)
    await fake.set_price(SYM, f"{r[4]:.7f}")
    await fake.push_kline(SYM, r[0], r[1], r[2], r[3], r[4], r[5], closed=True)
    await until(lambda: engine.scanner.waiting.get(SYM) == SIGNAL_MINUTE, what="the scanner waiting for the repair")
    assert engine.candles.missing_minutes(SYM) == [(missed, missed)]
    assert (rep := engine.scanner.reports.get(SYM)) is None or rep.at_ms < SIGNAL_MINUTE  # no decision on a hole
    assert [o for o in fake.orders if o.symbol == SYM] == []

    # The repair lands (over REST, exactly the missing minute): the same minute is evaluated and the entry made.
    rec = await until(
        lambda: (p := harness.db_position(SYM)) is not None and p.status == "open" and p,
        timeout=20,
        what="the entry after the repair",
    )
    repair = [r for r in fake.requests if r.path == "/fapi/v1/klines"][klines_before:]
    assert [(q.params.get("interval"), q.params.get("startTime"), q.params.get("endTime")) for q in repair] == [
        ("1m", str(missed), str(missed))
    ]
    report = engine.scanner.reports[SYM]
    assert report.at_ms == SIGNAL_MINUTE and report.entry and engine.scanner.waiting == {}
    assert engine.candles.missing_minutes(SYM) == [] and engine.candles.complete(SYM)
    expected = _report_at(rows, SIGNAL_MINUTE)
    assert [c.ok for c in report.conditions] == [c.ok for c in expected.conditions]  # as on the full series
    orders = [o for o in fake.orders if o.symbol == SYM]
    assert len(orders) == 1 and orders[0].side == "BUY" and rec.origin == "signal"
