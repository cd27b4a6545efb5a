"""``surgedca download`` against the loopback fake Binance: pages, resumption, gaps, rate limits, weight."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import KLINES_DIR
from tests.fakes.binance import FakeBinance
from tests.integration.backtest.funding_route import funding_history, serve_funding
from trading.candle_files import read_candles
from trading.download import PAGE_LIMIT, DownloadError, download
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
from trading.exchange.ratelimit import WeightBudget
from trading.settings import Settings

MIN = 60_000
DAY = 1_440 * MIN
SOURCE = read_candles(KLINES_DIR / "BTCUSDT-1m.csv.gz")
FIRST = int(SOURCE.open_time[0])
NOW = FIRST + 2 * DAY + 30_000  # half-way through a minute
WINDOW_FIRST = NOW - NOW % MIN - DAY  # --days 1
WINDOW_LAST = NOW - NOW % MIN - MIN  # the last closed minute


def source_rows(days: float = 3) -> list[tuple[object, ...]]:
    n = int(days * 1440)
    return [
        (int(t), repr(o), repr(h), repr(lo), repr(c), repr(v))
        for t, o, h, lo, c, v in zip(
            SOURCE.open_time[:n].tolist(),
            SOURCE.open[:n].tolist(),
            SOURCE.high[:n].tolist(),
            SOURCE.low[:n].tolist(),
            SOURCE.close[:n].tolist(),
            SOURCE.volume[:n].tolist(),
            strict=True,
        )
    ]


def make_fake() -> FakeBinance:
    fb = FakeBinance(api_key="k", api_secret="s")
    fb.add_symbol("BTCUSDT", price="95000", tick_size="0.10", step_size="0.001", min_notional="100")
    fb.add_symbol("ETHUSDT", price="1800", tick_size="0.01", step_size="0.001", min_notional="20")
    fb.load_klines("BTCUSDT", "1m", source_rows())
    fb.set_time_ms(NOW)
    serve_funding(fb, {"BTCUSDT": funding_history(FIRST - 400 * DAY, NOW + 30 * DAY)})
    return fb


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = make_fake()
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


def kline_requests(fake: FakeBinance) -> list:
    return [r for r in fake.requests if r.method == "GET" and r.path == "/fapi/v1/klines"]


def assert_complete(path: Path, first: int, last: int) -> None:
    """Every minute of [first, last] exactly once, with the exchange's values."""
    c = read_candles(path)
    t = c.open_time
    assert np.all(np.diff(t) == MIN), "duplicates or gaps"
    assert int(t[0]) == first and int(t[-1]) == last
    a = int(np.searchsorted(SOURCE.open_time, first))
    n = len(c)
    assert np.array_equal(t, SOURCE.open_time[a : a + n])
    for col in ("open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(c, col), getattr(SOURCE, col)[a : a + n]), col


async def test_a_fresh_download_pages_through_the_window(fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path):
    reports = await download(port, ["BTCUSDT"], 1, tmp_path)
    [r] = reports
    assert (r.had, r.fetched, r.still_missing, r.error) == (0, 1440, 0, None)
    assert_complete(tmp_path / "BTCUSDT-1m.csv", WINDOW_FIRST, WINDOW_LAST)
    reqs = kline_requests(fake)
    assert len(reqs) == r.requests == -(-1440 // PAGE_LIMIT)  # 2 pages
    assert [int(q.params["startTime"]) for q in reqs] == [WINDOW_FIRST, WINDOW_FIRST + PAGE_LIMIT * MIN]
    assert all(q.params["limit"] == str(PAGE_LIMIT) and q.weight == 5 for q in reqs)
    assert all(int(q.params["endTime"]) == WINDOW_LAST for q in reqs)


async def test_a_second_run_fetches_only_what_is_new(fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path):
    await download(port, ["BTCUSDT"], 1, tmp_path)
    before = len(kline_requests(fake))
    [same] = await download(port, ["BTCUSDT"], 1, tmp_path)
    assert (same.requests, same.fetched, same.had) == (0, 0, 1440)
    assert len(kline_requests(fake)) == before

    fake.advance_time_ms(7 * MIN)
    [later] = await download(port, ["BTCUSDT"], 1, tmp_path)
    assert (later.requests, later.fetched) == (1, 7)
    [q] = kline_requests(fake)[before:]
    assert int(q.params["startTime"]) == WINDOW_LAST + MIN
    # the file keeps the minutes that fell out of the window at the front and gains the new ones
    assert_complete(tmp_path / "BTCUSDT-1m.csv", WINDOW_FIRST, WINDOW_LAST + 7 * MIN)


async def test_holes_in_the_file_are_filled_and_nothing_else(
    fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path
) -> None:
    await download(port, ["BTCUSDT"], 1, tmp_path)
    path = tmp_path / "BTCUSDT-1m.csv"
    lines = path.read_text().splitlines()
    del lines[301:421]  # rows 300..419 of the window (line 0 is the header)
    del lines[11:16]  # rows 10..14
    path.write_text("\n".join(lines) + "\n")
    before = len(kline_requests(fake))
    [r] = await download(port, ["BTCUSDT"], 1, tmp_path)
    assert r.ranges == [
        (WINDOW_FIRST + 10 * MIN, WINDOW_FIRST + 14 * MIN),
        (WINDOW_FIRST + 300 * MIN, WINDOW_FIRST + 419 * MIN),
    ]
    asked = [(int(q.params["startTime"]), int(q.params["endTime"])) for q in kline_requests(fake)[before:]]
    assert asked == r.ranges
    assert r.fetched == 125
    assert_complete(path, WINDOW_FIRST, WINDOW_LAST)


async def test_a_gzipped_file_is_resumed_in_place(fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path):
    await download(port, ["BTCUSDT"], 1, tmp_path)
    plain = tmp_path / "BTCUSDT-1m.csv"
    gz = tmp_path / "BTCUSDT-1m.csv.gz"
    gz.write_bytes(gzip.compress(plain.read_bytes()))
    plain.unlink()
    fake.advance_time_ms(3 * MIN)
    [r] = await download(port, ["BTCUSDT"], 1, tmp_path)
    assert (r.path, r.fetched, r.requests) == (gz, 3, 1)
    assert not plain.exists()
    assert_complete(gz, WINDOW_FIRST, WINDOW_LAST + 3 * MIN)


async def test_an_interrupted_run_keeps_its_pages_and_the_next_one_resumes(
    fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path
) -> None:
    def break_after_first_page(report: object) -> None:
        fake.faults.fail_next("GET", "/fapi/v1/klines", status=400, body={"code": -1100, "msg": "Illegal characters"})

    with pytest.raises(DownloadError, match="BTCUSDT") as info:
        await download(port, ["BTCUSDT"], 1, tmp_path, on_page=break_after_first_page)
    [r] = info.value.reports
    assert r.fetched == PAGE_LIMIT and r.error is not None
    path = tmp_path / "BTCUSDT-1m.csv"
    assert_complete(path, WINDOW_FIRST, WINDOW_FIRST + (PAGE_LIMIT - 1) * MIN)  # the first page, written

    fake.faults.clear()
    before = len(kline_requests(fake))
    [again] = await download(port, ["BTCUSDT"], 1, tmp_path)
    assert (again.had, again.fetched, again.requests) == (PAGE_LIMIT, 1440 - PAGE_LIMIT, 1)
    [q] = kline_requests(fake)[before:]
    assert int(q.params["startTime"]) == WINDOW_FIRST + PAGE_LIMIT * MIN
    assert_complete(path, WINDOW_FIRST, WINDOW_LAST)
    # all told: two good pages, one refused, one resumed; no candle asked for twice
    assert [q.status for q in kline_requests(fake)] == [200, 400, 200]


async def test_a_429_is_waited_out_then_retried(fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path) -> None:
    fake.faults.rate_limit_next("GET", "/fapi/v1/klines", retry_after=1)
    sleeps = Sleeps(fake)
    [r] = await download(port, ["BTCUSDT"], 1, tmp_path, budget=budget_on(fake, sleeps))
    assert r.error is None and r.fetched == 1440
    assert [q.status for q in kline_requests(fake)] == [429, 200, 200]
    assert sleeps.calls == [1.0]  # Retry-After
    assert_complete(tmp_path / "BTCUSDT-1m.csv", WINDOW_FIRST, WINDOW_LAST)


async def test_the_weight_budget_makes_it_wait_for_the_next_minute(
    fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path
) -> None:
    fake.weights.add(1190)  # someone else (the service?) used most of this minute's budget
    sleeps = Sleeps(fake)
    budget = budget_on(fake, sleeps)
    [r] = await download(port, ["BTCUSDT"], 1, tmp_path, budget=budget, funding=False)
    assert r.fetched == 1440 and budget.waits == 1
    # after the first page the minute stands at 1190 + 1 (time) + 5: one more page would pass 1,200
    assert sleeps.calls == [pytest.approx(30.5)]  # to the next minute (now is hh:mm:30)


async def test_an_unknown_symbol_fails_alone(fake: FakeBinance, port: CcxtBinanceAdapter, tmp_path: Path) -> None:
    with pytest.raises(DownloadError) as info:
        await download(port, ["NOPEUSDT", "BTCUSDT"], 1, tmp_path)
    nope, btc = info.value.reports
    assert nope.error is not None and "NOPEUSDT" in str(info.value)
    assert btc.error is None and btc.fetched == 1440
    assert not (tmp_path / "NOPEUSDT-1m.csv").exists()


# ---------------------------------------------------------------------- the command line
@contextmanager
def fake_in_thread() -> Iterator[FakeBinance]:
    """The fake on its own event loop: ``trading.cli.main`` runs ``asyncio.run`` itself."""
    fb = make_fake()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fb.start(), loop).result(10)
    try:
        yield fb
    finally:
        asyncio.run_coroutine_threadsafe(fb.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def test_the_command_downloads_and_resumes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from trading.cli import main

    with fake_in_thread() as fb:
        monkeypatch.setenv("BINANCE_REST_URL", fb.rest_url)
        monkeypatch.setenv("BINANCE_API_KEY", "must-not-be-used")
        monkeypatch.setenv("BINANCE_API_SECRET", "must-not-be-used")
        monkeypatch.chdir(tmp_path)  # no .env from the repository
        out = tmp_path / "klines"
        assert main(["download", "--symbols", "btcusdt", "--days", "1", "--out", str(out)]) == 0
        assert "BTCUSDT: 1440 new candle(s) in 2 request(s)" in capsys.readouterr().out
        assert main(["download", "--symbols", "BTCUSDT", "--days", "1", "--out", str(out)]) == 0
        assert "BTCUSDT: 0 new candle(s) in 0 request(s), 1440 already there" in capsys.readouterr().out
        assert all(r.signed_ok is None for r in fb.requests)  # public endpoints only, nothing signed
    assert_complete(out / "BTCUSDT-1m.csv", WINDOW_FIRST, WINDOW_LAST)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--symbols", ",", "--days", "1"], "names no symbol"),
        (["--symbols", "BTC-USDT", "--days", "1"], "not a symbol"),
        (["--symbols", "BTCUSDT", "--days", "0"], "--days must be between"),
    ],
)
def test_bad_arguments_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from trading.cli import build_parser
    from trading.download import cmd_download

    args = build_parser().parse_args(["download", *argv, "--out", str(tmp_path / "k")])
    assert cmd_download(args, Settings(_env_file=None)) == 2  # type: ignore[call-arg]
    assert message in capsys.readouterr().err
    assert not (tmp_path / "k").exists()
