"""Paper funding: the paper account pays funding at each funding time, at the rate Binance's premiumIndex shows.

The public side is the real adapter (no keys) over HTTP against the loopback fake Binance; the paper account is
a ``SimBroker`` in a real SQLite file. The mark-price stream's event times drive it (``note_stream_price``, as
``PaperMarketStream`` calls it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from storage.db import Database
from tests.e2e.conftest import until
from tests.fakes.binance import FakeBinance
from trading.exchange.base import FUNDING_FEE, AccountUpdate, Side, UserEvent
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
from trading.exchange.paper import RATE_LEAD_MS, PaperExchange
from trading.exchange.simbroker import SimBroker

D = Decimal
SYM = "SOLUSDT"
T = 1_767_254_400_000  # 2026-01-01 08:00 UTC, a funding time
PREMIUM = "/fapi/v1/premiumIndex"


class FakeTime:
    """The exchange's clock (the paper account's times are the exchange's)."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake

    def now_ms(self) -> int:
        return self.fake.now_ms()

    def monotonic(self) -> float:
        return self.fake.now_ms() / 1000

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(balance="1000")
    fb.add_symbol(SYM, price="100.00", tick_size="0.01", step_size="0.01", min_notional="5")
    fb.set_time_ms(T - 90_000)
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


async def _mark(port: PaperExchange, fake: FakeBinance, at_ms: int) -> None:
    fake.set_time_ms(at_ms)
    port.note_stream_price(SYM, "100.00", at_ms, mark=True)
    await asyncio.sleep(0)


def _asked(fake: FakeBinance) -> int:
    return sum(1 for r in fake.requests if r.path == PREMIUM)


async def test_the_paper_account_pays_funding_at_the_funding_time(fake: FakeBinance, tmp_path: Path) -> None:
    fake.set_funding_rate(SYM, "0.0004")
    db = Database.open(tmp_path / "paper.sqlite3")
    public = CcxtBinanceAdapter(rest_url=fake.rest_url, timeout_s=3.0)
    broker = SimBroker(db.conn, account="paper", balance=D(1000), slippage=D(0))
    events: list[UserEvent] = []
    broker.add_listener(events.append)
    port = PaperExchange(public, broker, FakeTime(fake))  # type: ignore[arg-type]
    assert port.funding is not None  # the live adapter tells the funding rate
    try:
        await port.load_markets()
        await port.create_market_order(SYM, Side.BUY, D("2"), client_order_id="p-1", reduce_only=False)
        wallet = broker.wallet
        await _mark(port, fake, T - 90_000)  # the first mark of a held symbol: when is its next funding?
        await until(lambda: _asked(fake) == 1 and not port.funding.asking, timeout=5, what="premiumIndex read")
        fake.set_funding_rate(SYM, "0.0005")  # Binance's estimate moves before the settlement
        await _mark(port, fake, T - 50_000)  # within RATE_LEAD_MS of it: the rate is read again
        assert T - 50_000 >= T - RATE_LEAD_MS
        await until(lambda: _asked(fake) == 2 and not port.funding.asking, timeout=5, what="the rate read again")
        await _mark(port, fake, T - 1)
        assert broker.funding == [] and broker.wallet == wallet and _asked(fake) == 2
        await _mark(port, fake, T + 250)  # the first mark at or after the funding time: charged
        [fee] = broker.funding
        assert (fee.time_ms, fee.rate, fee.qty, fee.amount) == (T, D("0.0005"), D("2"), D("0.1"))  # 2 x 100 x rate
        assert broker.wallet == wallet - D("0.1")
        [update] = [e for e in events if isinstance(e, AccountUpdate) and e.reason == FUNDING_FEE]
        assert (update.reason, update.balance_change, update.event_time) == (FUNDING_FEE, D("-0.1"), T)
        [income] = await port.fetch_funding_income(T - 1, T + 1)  # what the engine records on the position
        assert (income.symbol, income.amount, income.time_ms) == (SYM, D("-0.1"), T)
        await _mark(port, fake, T + 1_250)
        await until(lambda: not port.funding.asking, timeout=5, what="the next funding time read")
        assert port.funding.next_funding_ms(SYM) == T + 8 * 3_600_000 and len(broker.funding) == 1  # charged once
    finally:
        await port.close()
    # After a restart just past the funding time nothing is charged again.
    again = SimBroker(db.conn, account="paper")
    public = CcxtBinanceAdapter(rest_url=fake.rest_url, timeout_s=3.0)
    port = PaperExchange(public, again, FakeTime(fake))  # type: ignore[arg-type]
    try:
        await port.load_markets()
        await _mark(port, fake, T + 2_000)
        await until(lambda: _asked(fake) == 4 and not port.funding.asking, timeout=5, what="premiumIndex read")
        await _mark(port, fake, T + 3_000)
        assert again.funding == [] and len(await port.fetch_funding_income(0, T + 3_000)) == 1
        # no position, no funding (and no request)
        await port.create_market_order(SYM, Side.SELL, D("2"), client_order_id="p-2", reduce_only=True)
        await _mark(port, fake, T + 8 * 3_600_000 + 1)
        assert again.funding == [] and _asked(fake) == 4
    finally:
        await port.close()
        db.close()


async def test_funding_times_passed_while_stopped_are_charged_at_the_next_start(
    fake: FakeBinance, tmp_path: Path
) -> None:
    """The paper account held a position through two funding times while the service was stopped: at the next
    start each is charged once, at the rate and mark of Binance's funding history, not at today's price."""
    eight_hours = 8 * 3_600_000
    db = Database.open(tmp_path / "paper.sqlite3")
    broker = SimBroker(db.conn, account="paper", balance=D(1000), slippage=D(0))
    port = PaperExchange(CcxtBinanceAdapter(rest_url=fake.rest_url, timeout_s=3.0), broker, FakeTime(fake))  # type: ignore[arg-type]
    try:
        await port.load_markets()
        await port.create_market_order(SYM, Side.BUY, D("2"), client_order_id="p-1", reduce_only=False)
    finally:
        await port.close()
    wallet = broker.wallet
    # Stopped. The market goes on: two funding times at their own marks and rates.
    for at_ms, price, rate in ((T, "110.00", "0.0003"), (T + eight_hours, "120.00", "-0.0001")):
        fake.set_time_ms(at_ms)
        await fake.set_price(SYM, price)
        await fake.charge_funding(SYM, rate)
    fake.set_time_ms(T + eight_hours + 60_000)
    await fake.set_price(SYM, "125.00")

    again = SimBroker(db.conn, account="paper")
    port = PaperExchange(CcxtBinanceAdapter(rest_url=fake.rest_url, timeout_s=3.0), again, FakeTime(fake))  # type: ignore[arg-type]
    history = "/fapi/v1/fundingRate"
    try:
        await port.load_markets()
        await _mark(port, fake, T + eight_hours + 60_000)
        await until(lambda: len(again.funding) == 2, timeout=5, what="the missed funding times charged")
        first, second = again.funding
        assert (first.time_ms, first.rate, first.mark, first.amount) == (T, D("0.0003"), D("110"), D("0.066"))
        assert (second.time_ms, second.rate, second.mark, second.amount) == (
            T + eight_hours, D("-0.0001"), D("120"), D("-0.024"),
        )  # fmt: skip
        assert again.wallet == wallet - D("0.042")
        incomes = await port.fetch_funding_income(0, T + eight_hours + 60_000)  # what the engine records
        assert [(i.time_ms, i.amount) for i in incomes] == [(T, D("-0.066")), (T + eight_hours, D("0.024"))]
        # Later marks charge nothing more, and the history is not asked again.
        await until(lambda: not port.funding.asking, timeout=5, what="the look done")
        asked = sum(1 for r in fake.requests if r.path == history)
        await _mark(port, fake, T + eight_hours + 120_000)
        await asyncio.sleep(0.05)
        assert len(again.funding) == 2 and sum(1 for r in fake.requests if r.path == history) == asked == 1
    finally:
        await port.close()
        db.close()
