"""The scanner end to end on real candles: backfill over REST, closed klines over the WebSocket, an entry or none.

The fake exchange's clock is set to the historical minute (the service follows the exchange's clock), its
history is the real 1000PEPEUSDT file from ``tests/data`` up to that minute, and the closed 1m
klines arrive on the stream, exactly as in live trading.
"""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.conftest import KLINES_DIR
from tests.e2e.conftest import Harness, until
from trading.candle_files import read_candles
from trading.candles import CandleStore, capacities_for, history_needed
from trading.core import signals
from trading.core.config import SignalParams
from trading.exchange.base import Kline

D = Decimal
SYM = "1000PEPEUSDT"
SIGNAL_MINUTE = 1768347720000  # 2026-01-13 23:42 UTC: the entry signal holds at this close (checked below)


def _rows() -> list[tuple[int, float, float, float, float, float]]:
    c = read_candles(KLINES_DIR / f"{SYM}-1m.csv.gz")
    return list(
        zip(
            c.open_time.tolist(),
            c.open.tolist(),
            c.high.tolist(),
            c.low.tolist(),
            c.close.tolist(),
            c.volume.tolist(),
            strict=True,
        )
    )


def _report_at(rows: list[tuple[int, float, float, float, float, float]], minute: int) -> signals.SignalReport:
    """The signal evaluated independently of the service (same candles, fresh store)."""
    store = CandleStore(capacities_for(history_needed(SignalParams())))
    for r in rows:
        if r[0] > minute:
            break
        store.on_closed_1m(SYM, Kline(*r))
    return signals.evaluate(SYM, store.frames(SYM), SignalParams(), at_ms=minute, full=True)


@pytest.mark.timeout(120)
async def test_an_entry_when_the_signal_holds_and_none_when_it_does_not(harness: Harness) -> None:
    fake = harness.fake
    rows = [r for r in _rows() if r[0] <= SIGNAL_MINUTE]
    before = SIGNAL_MINUTE - 60_000
    assert not _report_at(rows, before).entry and _report_at(rows, SIGNAL_MINUTE).entry

    last_close = f"{rows[-3][4]:.7f}"
    fake.add_symbol(
        SYM,
        price=last_close,
        tick_size="0.0000001",
        step_size="1",
        min_notional="5",
        max_leverage=25,
        quote_volume="800000000",
    )
    fake.load_klines(SYM, "1m", [r for r in rows if r[0] < before])  # history up to two minutes before
    fake.time_offset_ms = before + 30_000 - int(time.time() * 1000)  # the exchange lives in that minute
    await harness.start()
    engine = harness.engine
    await until(
        lambda: SYM in engine.scanner.universe and engine.candles.last_open_time(SYM) == before - 60_000,
        timeout=30,
        what="backfill of the real history",
    )
    stream = f"{SYM.lower()}@kline_1m"
    await until(lambda: any(stream in c.streams for c in fake.ws_clients("market")), what="kline subscription")

    # A closed minute where the signal does not hold: evaluated, no entry.
    r = rows[-2]
    assert r[0] == before
    await fake.push_kline(SYM, r[0], r[1], r[2], r[3], r[4], r[5], closed=True)
    await until(
        lambda: (rep := engine.scanner.reports.get(SYM)) is not None and rep.at_ms == before,
        what="evaluation of the minute before",
    )
    assert not engine.scanner.reports[SYM].entry
    assert [o for o in fake.orders if o.symbol == SYM] == []

    # The signal minute: an entry of 1.5% of the wallet as margin x 10 leverage.
    wallet = fake.wallet_balance
    r = rows[-1]
    fake.time_offset_ms += 60_000
    await fake.set_price(SYM, f"{r[4]:.7f}")
    await fake.push_kline(SYM, r[0], r[1], r[2], r[3], r[4], r[5], closed=True)
    rec = await until(
        lambda: (r := harness.db_position(SYM)) is not None and r.status == "open" and r,
        timeout=20,
        what="the entry filled",
    )
    orders = [o for o in fake.orders if o.symbol == SYM]
    assert len(orders) == 1 and orders[0].side == "BUY" and orders[0].client_order_id.endswith("-entry-1")
    notional = D(str(orders[0].qty)) * D(str(orders[0].avg_price))
    assert wallet * D("0.015") * 10 * D("0.99") <= notional <= wallet * D("0.015") * 10 * D("1.01")
    assert rec.origin == "signal" and rec.state.stage.value == "initial"
    assert fake.leverage(SYM) == 10 and fake.margin_mode(SYM) == "cross"
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="backstop of the new position")
    await harness.agree(SYM)
    assert engine.scanner.reports[SYM].entry and "EntryFilled" in harness.recorder.kinds(SYM)


@pytest.mark.timeout(120)
async def test_five_symbols_signalling_at_one_close_open_only_max_positions(harness: Harness) -> None:
    """The same real history under five names: all five signal at the same close; max_positions = 2 allows two."""
    fake = harness.fake
    harness.strategy.write_text("reconcile_interval_s = 5\nfallback_poll_interval_s = 1\nmax_positions = 2\n")
    rows = [r for r in _rows() if r[0] <= SIGNAL_MINUTE]
    before = SIGNAL_MINUTE - 60_000
    names = [f"PEPE{c}USDT" for c in "ABCDE"]
    for i, name in enumerate(names):
        fake.add_symbol(
            name,
            price=f"{rows[-2][4]:.7f}",
            tick_size="0.0000001",
            step_size="1",
            min_notional="5",
            max_leverage=25,
            quote_volume=str(800_000_000 - i),
        )
        fake.load_klines(name, "1m", [r for r in rows if r[0] <= before])
    fake.time_offset_ms = before + 60_000 + 30_000 - int(time.time() * 1000)  # inside the signal minute
    await harness.start()
    engine = harness.engine
    await until(
        lambda: all(engine.candles.last_open_time(n) == before for n in names),
        timeout=60,
        what="backfill of the five histories",
    )
    await until(
        lambda: all(any(f"{n.lower()}@kline_1m" in c.streams for c in fake.ws_clients("market")) for n in names),
        what="kline subscriptions",
    )
    r = rows[-1]
    for name in names:  # one 1m close, five signals
        await fake.push_kline(name, r[0], r[1], r[2], r[3], r[4], r[5], closed=True)
    await until(
        lambda: sum(1 for n in names if (p := harness.db_position(n)) and p.status == "open") == 2,
        timeout=20,
        what="two entries filled",
    )
    # The scan of that close has seen all five, and no entry is reserved or on its way: none can follow.
    scanner, executor = engine.scanner, engine.executor
    await until(
        lambda: (
            (cur := scanner.current) is not None
            and cur.minute_ms == r[0]
            and cur.symbols == 5
            and executor.admission.count == 0
            and engine.runner.in_flight == 0
        ),
        what="the scan of that close done",
    )
    assert _report_at(rows, SIGNAL_MINUTE).entry  # the same candles under each name: all five signal here
    entries = [o for o in fake.orders if o.client_order_id.endswith("-entry-1")]
    assert len(entries) == 2, [o.symbol for o in entries]
    assert len(engine.ctx.book) == 2
