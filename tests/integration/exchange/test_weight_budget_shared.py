"""One request-weight budget for the process: the candle keeper and the download draw from the adapter's.

The live adapter on the loopback fake Binance, whose clock runs a second or two before a minute turns and whose
weight counter already holds what "someone else" spent: the keeper (60%) and the download (50%) must hold their
requests for the next minute on the weight the adapter read from the header, with no 429.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fakes.binance import FakeBinance
from trading.candles import CandleKeeper, CandleStore
from trading.clock import ExchangeClock
from trading.download import download
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
from trading.exchange.ratelimit import budget_of

SYM = "BTCUSDT"
MIN = 60_000


def _rows(last_open: int, n: int) -> list[list[float]]:
    return [[last_open - i * MIN, 100.0, 101.0, 99.0, 100.5, 10.0] for i in range(n)][::-1]


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key="k", api_secret="s")
    fb.add_symbol(SYM, price="100.5", tick_size="0.10", step_size="0.001", min_notional="5")
    fb.load_klines(SYM, "1m", _rows(fb.now_ms() // MIN * MIN, 3_000))
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


@pytest.fixture
async def adapter(fake: FakeBinance) -> AsyncIterator[CcxtBinanceAdapter]:
    ad = CcxtBinanceAdapter(rest_url=fake.rest_url)
    try:
        yield ad
    finally:
        await ad.close()


async def _near_the_minutes_end(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> int:
    """Move the exchange's (running) clock to 2 s before a minute turns; the adapter learns it. The minute."""
    now = fake.now_ms()
    fake.time_offset_ms += (now // MIN + 1) * MIN - 2_000 - now
    await adapter.sync_time()
    return fake.now_ms() // MIN


def _klines(fake: FakeBinance) -> list:
    return [r for r in fake.requests if r.path == "/fapi/v1/klines"]


def _weight_in(fake: FakeBinance, minute: int) -> int:
    return sum(r.weight for r in fake.requests if r.time_ms // MIN == minute)


@pytest.mark.timeout(30)
async def test_the_keeper_draws_from_the_adapters_budget(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    minute = await _near_the_minutes_end(fake, adapter)
    fake.weights.add(1_436)  # someone else: 4 short of the keeper's 60% of 2,400 (the two /time calls take 2)
    clock = ExchangeClock()
    await clock.sync(adapter.server_time)  # one more weight unit, read from the header
    keeper = CandleKeeper(CandleStore(), adapter, need={"1m": 60}, clock=clock, budget=budget_of(adapter))
    assert keeper.budget is adapter.weight_budget
    result = await keeper.backfill([SYM], clock.now_ms())
    assert result.done == (SYM,)
    assert keeper.budget.waits >= 1
    first = _klines(fake)[0].time_ms // MIN
    assert first == minute and 1_436 + _weight_in(fake, minute) <= 1_440  # within 60% in that minute
    assert _klines(fake)[-1].time_ms // MIN == minute + 1  # the rest waited for the next minute
    assert not any(r.status == 429 for r in fake.requests)
    await keeper.close()


@pytest.mark.timeout(30)
async def test_the_download_draws_from_the_adapters_budget(
    fake: FakeBinance, adapter: CcxtBinanceAdapter, tmp_path: Path
) -> None:
    minute = await _near_the_minutes_end(fake, adapter)
    fake.weights.add(1_190)  # someone else: 10 short of the download's half of 2,400
    [report] = await download(adapter, [SYM], 1, tmp_path, funding=False)
    assert report.error is None and report.fetched > 0
    assert adapter.weight_budget.waits == 1  # the adapter's own budget paced the pages
    pages = _klines(fake)
    assert pages[0].time_ms // MIN == minute and pages[1].time_ms // MIN == minute + 1
    assert 1_190 + _weight_in(fake, minute) <= 1_200
    assert not any(r.status == 429 for r in fake.requests)
