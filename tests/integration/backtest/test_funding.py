"""Funding: ``surgedca download`` pages the history into SYMBOL-funding.csv (resumable, paced), the simulated
broker charges it, and the backtest reports it per trade and in total."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import KLINES_DIR
from tests.fakes.binance import FakeBinance
from tests.integration.backtest.funding_route import funding_history, funding_requests, serve_funding
from trading.backtest import BacktestSpec, load_candle_dir, run_backtest
from trading.backtest.funding import DEFAULT_FLAT_RATE, FundingSchedule
from trading.candle_files import read_candles
from trading.cli import main
from trading.core.config import StrategyConfig
from trading.download import FUNDING_PAGE_LIMIT, SymbolReport, download_funding
from trading.exchange.base import FundingRate
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
from trading.exchange.ratelimit import WeightBudget
from trading.funding_files import HEADER, funding_path, read_funding, write_funding
from trading.settings import Settings

HOUR = 3_600_000
DAY = 24 * HOUR
NOW = 1_750_000_000_000  # 2025-06-15T15:06:40Z
HISTORY = funding_history(NOW - 500 * DAY, NOW)


class Sleeps:
    """Records waits instead of waiting: the fake exchange's (frozen) clock moves on by each one. The adapter's
    own pause after a 429 still happens for real."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.fake.advance_time_ms(round(seconds * 1000))
        await asyncio.sleep(0)


def budget_on(fake: FakeBinance, sleeps: Sleeps) -> WeightBudget:
    """The download's weight budget on the fake exchange's clock (as ``surgedca download``'s own would be)."""
    return WeightBudget(now_ms=fake.now_ms, monotonic=lambda: fake.now_ms() / 1000, sleep=sleeps, minute_margin_s=0.5)


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key="k", api_secret="s")
    fb.add_symbol("BTCUSDT", price="95000", tick_size="0.10", step_size="0.001", min_notional="100")
    fb.set_time_ms(NOW)
    serve_funding(fb, {"BTCUSDT": HISTORY})
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


@pytest.fixture
async def port(fake: FakeBinance) -> AsyncIterator[CcxtBinanceAdapter]:
    settings = Settings(_env_file=None, binance_rest_url=fake.rest_url)  # type: ignore[call-arg]
    ad = CcxtBinanceAdapter.from_settings(settings, api_key=None, api_secret=None, retry_base_s=0.01)
    try:
        yield ad
    finally:
        await ad.close()


def expected(first: int, last: int) -> list[tuple[int, Decimal, Decimal | None]]:
    return [r for r in HISTORY if first <= r[0] <= last]


async def test_funding_history_is_paged_into_the_file_and_resumed(
    fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path
) -> None:
    first = NOW - 400 * DAY  # 1,200 events at 8 h: two pages
    report = SymbolReport("BTCUSDT", tmp_path / "BTCUSDT-1m.csv")
    budget = budget_on(fake, Sleeps(fake))
    await download_funding(port, "BTCUSDT", tmp_path, report, first_ms=first, last_ms=NOW, budget=budget)
    want = expected(first, NOW)
    assert len(want) > FUNDING_PAGE_LIMIT
    reqs = funding_requests(fake)
    assert [int(q.params["startTime"]) for q in reqs] == [first, want[FUNDING_PAGE_LIMIT - 1][0] + 1]
    assert all(q.params["limit"] == str(FUNDING_PAGE_LIMIT) and int(q.params["endTime"]) == NOW for q in reqs)
    assert (report.funding_requests, report.funding_fetched, report.funding_had) == (2, len(want), 0)
    path = funding_path(tmp_path, "BTCUSDT")
    assert path.read_text().splitlines()[0] == ",".join(HEADER)
    assert [(r.time_ms, r.rate, r.mark_price) for r in read_funding(path)] == want

    # eight hours later: one request, for what is new only
    fake.advance_time_ms(8 * HOUR)
    later = SymbolReport("BTCUSDT", tmp_path / "BTCUSDT-1m.csv")
    now = NOW + 8 * HOUR
    await download_funding(port, "BTCUSDT", tmp_path, later, first_ms=first, last_ms=now, budget=budget)
    [q] = funding_requests(fake)[2:]
    assert int(q.params["startTime"]) == want[-1][0] + 1
    assert later.funding_had == len(want) and later.funding_fetched == len(expected(NOW + 1, now))


async def test_funding_requests_share_the_downloads_pacing(
    fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path
) -> None:
    # Someone else used this minute's budget (fundingRate itself weighs nothing: it has its own 500 / 5 min).
    fake.weights.add(1200)
    sleeps = Sleeps(fake)
    budget = budget_on(fake, sleeps)
    report = SymbolReport("BTCUSDT", tmp_path / "BTCUSDT-1m.csv")
    await download_funding(port, "BTCUSDT", tmp_path, report, first_ms=NOW - DAY, last_ms=NOW, budget=budget)
    assert budget.waits == 0  # the first request learns the minute's count (1,200) from the reply
    funding_path(tmp_path, "BTCUSDT").unlink()
    await download_funding(port, "BTCUSDT", tmp_path, report, first_ms=NOW - DAY, last_ms=NOW, budget=budget)
    assert budget.waits == 1 and sleeps.calls == [pytest.approx(20.5)]  # to the next minute (now is hh:mm:40)
    # a 429 is waited out (Retry-After) and the page asked again
    fake.advance_time_ms(60_000)  # a new minute: the count starts again
    sleeps = Sleeps(fake)
    budget = budget_on(fake, sleeps)
    fake.faults.rate_limit_next("GET", "/fapi/v1/fundingRate", retry_after=2)
    path = funding_path(tmp_path, "BTCUSDT")
    path.unlink()
    again = SymbolReport("BTCUSDT", tmp_path / "BTCUSDT-1m.csv")
    await download_funding(port, "BTCUSDT", tmp_path, again, first_ms=NOW - DAY, last_ms=NOW, budget=budget)
    assert [q.status for q in funding_requests(fake)][-2:] == [429, 200] and sleeps.calls == [2.0]
    assert len(read_funding(path)) == len(expected(NOW - DAY, NOW)) == 3


# ---------------------------------------------------------------------- the backtest charges it
def copy_candles(dest: Path, symbols: list[str]) -> Path:
    dest.mkdir()
    for s in symbols:
        (dest / f"{s}-1m.csv.gz").write_bytes((KLINES_DIR / f"{s}-1m.csv.gz").read_bytes())
    return dest


def test_the_backtest_charges_recorded_funding_and_the_flat_rate_elsewhere(tmp_path: Path) -> None:
    data_dir = copy_candles(tmp_path / "data", ["XMRUSDT", "ZECUSDT"])
    zec = read_candles(data_dir / "ZECUSDT-1m.csv.gz")
    # ZECUSDT has a funding file with a distinctive rate, every 4 hours; XMRUSDT has none (the flat rate)
    times = range(int(zec.open_time[0]) - int(zec.open_time[0]) % (4 * HOUR), int(zec.open_time[-1]), 4 * HOUR)
    write_funding(funding_path(data_dir, "ZECUSDT"), [FundingRate(t, Decimal("0.00123")) for t in times])
    out = tmp_path / "out"
    assert main(["backtest", "--data", str(data_dir), "--to", "2026-01-16", "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["problems"] == [] and summary["checks"]["balance"] == "ok"  # wallet = start + PnL - fees - funding

    data = load_candle_dir(data_dir)
    spec = BacktestSpec(
        data=data.data,
        cfg=StrategyConfig(),
        end_ms=int(np.datetime64("2026-01-16", "ms").astype(np.int64)),
        funding=FundingSchedule.from_dir(data_dir),
    )
    result = asyncio.run(run_backtest(spec))
    assert summary["funding"] == pytest.approx(float(result.funding_total), abs=1e-8) and result.funding_total != 0
    for t in result.trades:
        step = 4 * HOUR if t.symbol == "ZECUSDT" else 8 * HOUR
        rate = Decimal("0.00123") if t.symbol == "ZECUSDT" else DEFAULT_FLAT_RATE
        held = [x for x in range(t.opened_ms - t.opened_ms % step + step, (t.closed_ms or 0) + 1, step)]
        assert [c.ts_ms for c in t.funding_charges] == held, t.symbol
        assert all(
            c.rate == rate and c.amount == (c.qty * c.mark * rate).quantize(Decimal("1e-8")) for c in t.funding_charges
        )
        assert t.pnl == t.gross - t.fees - t.funding
    assert sum((t.funding for t in result.trades), Decimal(0)) == result.funding_total
    assert {t.symbol for t in result.trades if t.funding_charges} == {"XMRUSDT", "ZECUSDT"}


def test_no_funding_charges_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["backtest", "--data", str(KLINES_DIR), "--symbols", "XMRUSDT", "--to", "2026-01-16", "--no-funding"]
    assert main([*args, "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["funding"] == 0 and summary["funding_source"] == "none"
