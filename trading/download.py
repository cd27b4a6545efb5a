"""``surgedca download``: public 1m klines and funding-rate history into files, resumable.

For every symbol the wanted window is [now - N days, the last closed minute].
The existing file (``OUT/SYMBOL-1m.csv``, or ``.csv.gz`` if that is what is
there) is read first and only the minutes it lacks are asked for, a missing
range at a time, in pages of ``PAGE_LIMIT`` candles; the result is merged and
written atomically (temporary file, then rename). If a run is interrupted (an
error, Ctrl-C) what was fetched so far is still merged and written, so the next
run continues where this one stopped. Minutes the exchange does not have (a
listing later than the window's start, maintenance) are simply never written;
a later run asks for them again, once per range.

Funding: next to each candle file, ``OUT/SYMBOL-funding.csv`` (the format is
``trading.funding_files``'s) gets the symbol's funding events of the same
window from ``GET /fapi/v1/fundingRate`` (1,000 a page; one page covers 333
days at the usual 8-hour interval, 41 days at 1 hour). Resuming: only the
stretch after the newest record (and before the oldest, when the file starts
later than the window) is asked for. Funding requests go through the same
pacing and back-off as the kline pages; Binance also caps them at 500 per 5
minutes per IP, which a download of a few hundred symbols stays under, and a
429 from that cap is waited out like any other.

Rate limits: Binance counts request weight per minute (2,400 on USD-M). Every
page draws from the adapter's request-weight budget
(``trading.exchange.ratelimit``, fed by ``X-MBX-USED-WEIGHT-1M``) with the
download's share, half of the minute: a page that would take the minute past
it waits for the next minute; a 429/418 pauses the budget for its
``Retry-After`` (at least a second) and the page is asked again.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from trading.candle_files import CandleFileError, find_candle_files, read_candles, write_candles
from trading.core.series import OHLCV
from trading.exchange.base import ExchangeError, ExchangePort, FundingRate, Kline, RateLimitedError
from trading.exchange.ratelimit import DOWNLOAD, WeightBudget, budget_of
from trading.funding_files import FundingFileError, funding_path, read_funding, write_funding

if TYPE_CHECKING:
    from trading.settings import Settings

log = logging.getLogger("surgedca.download")

MINUTE_MS = 60_000
DAY_MS = 1_440 * MINUTE_MS
# Binance's /fapi/v1/klines weight: 1 (<100), 2 (<500), 5 (<=1000), 10 (<=1500, the maximum). 1,000 a page
# gets 200 candles per weight unit (499 would get 250 but needs twice the round trips; 1,500 only 150).
PAGE_LIMIT = 1000
PAGE_WEIGHT = 5
FUNDING_PAGE_LIMIT = 1000  # /fapi/v1/fundingRate's maximum
FUNDING_PAGE_WEIGHT = 1  # it has its own 500 / 5 min budget; one unit of ours keeps the pacing honest
MAX_FUNDING_INTERVAL_MS = 8 * 3_600_000  # the longest funding interval: a file starting within it is complete
MAX_RATE_LIMITED = 5  # 429s in a row on one page before giving up (the next run resumes)
RATE_LIMITED_MIN_WAIT_S = 1.0
MAX_DAYS = 3_650
_SYMBOL = re.compile(r"^[A-Z0-9]{2,30}$")

T = TypeVar("T")


class DownloadError(RuntimeError):
    """A symbol could not be completed; what was fetched before the error has been written."""

    def __init__(self, message: str, reports: list[SymbolReport]) -> None:
        super().__init__(message)
        self.reports = reports


@dataclass
class SymbolReport:
    symbol: str
    path: Path
    had: int = 0  # candles in the file's window before
    fetched: int = 0  # new candles written
    requests: int = 0  # kline pages asked for
    ranges: list[tuple[int, int]] = field(default_factory=list)  # missing [first, last] open times asked for
    still_missing: int = 0  # minutes of the window the exchange did not return
    error: str | None = None
    funding_path: Path | None = None
    funding_had: int = 0  # funding records in the window before
    funding_fetched: int = 0  # new funding records written
    funding_requests: int = 0


def own_budget() -> WeightBudget:
    """A budget of the download's own, on this machine's clock, for a port that does not bring one."""
    return WeightBudget(minute_margin_s=0.5)  # this machine's clock may be a little off the exchange's


# ---------------------------------------------------------------------- gaps
def missing_ranges(have: np.ndarray, first_ms: int, last_ms: int) -> list[tuple[int, int]]:
    """Runs of minutes in [first_ms, last_ms] whose open time is not in ``have`` (sorted, unique)."""
    if last_ms < first_ms:
        return []
    inside = have[(have >= first_ms) & (have <= last_ms)]
    edges = np.concatenate(([first_ms - MINUTE_MS], inside, [last_ms + MINUTE_MS]))
    steps = np.diff(edges)
    at = np.flatnonzero(steps > MINUTE_MS)
    return [(int(edges[i]) + MINUTE_MS, int(edges[i + 1]) - MINUTE_MS) for i in at]


def _merge(existing: OHLCV, new: list[Kline]) -> OHLCV:
    """Existing candles plus new ones (a new candle replaces an old one of the same minute), oldest first."""
    rows: dict[int, tuple[float, float, float, float, float]] = {
        int(t): (o, h, lo, c, v)
        for t, o, h, lo, c, v in zip(
            existing.open_time.tolist(),
            existing.open.tolist(),
            existing.high.tolist(),
            existing.low.tolist(),
            existing.close.tolist(),
            existing.volume.tolist(),
            strict=True,
        )
    }
    for k in new:
        rows[k.open_time] = (k.open, k.high, k.low, k.close, k.volume)
    times = sorted(rows)

    def col(i: int) -> np.ndarray:
        return np.array([rows[t][i] for t in times], dtype=np.float64)

    return OHLCV(np.array(times, dtype=np.int64), col(0), col(1), col(2), col(3), col(4))


# ---------------------------------------------------------------------- one symbol
def _existing(out_dir: Path, symbol: str) -> tuple[Path, OHLCV]:
    """The symbol's file (``.csv``, or the ``.csv.gz`` already there) and its candles."""
    files = find_candle_files(out_dir) if out_dir.is_dir() else {}
    path = files.get(symbol, out_dir / f"{symbol}-1m.csv")
    return path, (read_candles(path) if path.exists() else OHLCV.empty())


async def download_symbol(
    port: ExchangePort,
    symbol: str,
    out_dir: Path,
    *,
    first_ms: int,
    last_ms: int,
    budget: WeightBudget,
    on_page: Callable[[SymbolReport], None] | None = None,
) -> SymbolReport:
    """Fill the gaps of one symbol's file in [first_ms, last_ms] (open times of closed 1m candles)."""
    path, existing = _existing(out_dir, symbol)
    report = SymbolReport(symbol, path)
    have = existing.open_time
    report.had = int(np.count_nonzero((have >= first_ms) & (have <= last_ms)))
    report.ranges = missing_ranges(have, first_ms, last_ms)
    fetched: list[Kline] = []
    try:
        for a, b in report.ranges:
            start = a
            while start <= b:
                page = await _page(port, symbol, start, b, budget=budget)
                report.requests += 1
                got = [k for k in page if k.closed and start <= k.open_time <= b]
                fetched.extend(got)
                if on_page is not None:
                    on_page(report)
                if not got:
                    break  # nothing (more) there: a listing after the window start, or a maintenance hole
                start = got[-1].open_time + MINUTE_MS
    except (ExchangeError, OSError) as exc:
        report.error = f"{type(exc).__name__}: {exc}"
        log.error("%s: %s (what was fetched is kept)", symbol, exc)
    finally:
        if fetched:
            # Even after an error: keep what we have, the next run asks only for the rest.
            merged = _merge(existing, fetched)
            write_candles(path, merged)
            report.fetched = len({k.open_time for k in fetched} - set(have.tolist()))
        window = report.had + report.fetched
        report.still_missing = max(0, (last_ms - first_ms) // MINUTE_MS + 1 - window)
    return report


async def _page(port: ExchangePort, symbol: str, start: int, end: int, *, budget: WeightBudget) -> list[Kline]:
    return await _paced(
        port,
        lambda: port.fetch_klines(symbol, "1m", start_ms=start, end_ms=end, limit=PAGE_LIMIT),
        symbol,
        PAGE_WEIGHT,
        budget=budget,
    )


async def _paced(
    port: ExchangePort, request: Callable[[], Awaitable[T]], symbol: str, weight: int, *, budget: WeightBudget
) -> T:
    """One request in the download's share of the weight; a 429/418 is waited out (``Retry-After``, at least a
    second) and the request tried again."""
    return await budget.call(
        request,
        share=DOWNLOAD,
        weight=weight,
        tries=MAX_RATE_LIMITED + 1,
        min_wait_s=RATE_LIMITED_MIN_WAIT_S,
        # A budget the port does not feed from the header itself learns the port's figure after each reply.
        reading=None if budget is budget_of(port) else port.used_weight,
        what=symbol,
    )


# ---------------------------------------------------------------------- funding
def funding_ranges(have: Sequence[int], first_ms: int, last_ms: int) -> list[tuple[int, int]]:
    """What to ask for: the window when nothing is there; else before the oldest record (only when the file
    starts more than an interval into the window) and after the newest."""
    inside = [t for t in have if first_ms <= t <= last_ms]
    if not inside:
        return [(first_ms, last_ms)] if last_ms >= first_ms else []
    out = []
    if inside[0] - first_ms > MAX_FUNDING_INTERVAL_MS:
        out.append((first_ms, inside[0] - 1))
    if inside[-1] < last_ms:
        out.append((inside[-1] + 1, last_ms))
    return out


async def download_funding(
    port: ExchangePort,
    symbol: str,
    out_dir: Path,
    report: SymbolReport,
    *,
    first_ms: int,
    last_ms: int,
    budget: WeightBudget,
) -> None:
    """Fill ``OUT/SYMBOL-funding.csv`` over [first_ms, last_ms]; what was fetched is written even after an error."""
    fetch = getattr(port, "fetch_funding_rates", None)
    if fetch is None:
        raise ExchangeError(f"{type(port).__name__} cannot fetch funding rates")
    path = funding_path(out_dir, symbol)
    report.funding_path = path
    existing = read_funding(path) if path.exists() else []
    have = [r.time_ms for r in existing]
    report.funding_had = sum(1 for t in have if first_ms <= t <= last_ms)
    fetched: list[FundingRate] = []
    try:
        for a, b in funding_ranges(have, first_ms, last_ms):
            start = a
            while start <= b:
                page = await _paced(
                    port,
                    partial(fetch, symbol, start_ms=start, end_ms=b, limit=FUNDING_PAGE_LIMIT),
                    symbol,
                    FUNDING_PAGE_WEIGHT,
                    budget=budget,
                )
                report.funding_requests += 1
                got = [r for r in page if start <= r.time_ms <= b]
                fetched.extend(got)
                if len(page) < FUNDING_PAGE_LIMIT or not got:
                    break  # the last page of this range
                start = got[-1].time_ms + 1
    finally:
        if fetched:
            old = set(have)
            write_funding(path, [*existing, *fetched])
            report.funding_fetched = len({r.time_ms for r in fetched} - old)


# ---------------------------------------------------------------------- all symbols
async def download(
    port: ExchangePort,
    symbols: Sequence[str],
    days: int,
    out_dir: Path,
    *,
    now_ms: int | None = None,
    budget: WeightBudget | None = None,
    on_page: Callable[[SymbolReport], None] | None = None,
    funding: bool = True,
) -> list[SymbolReport]:
    """Every symbol in turn: candles, then (``funding``) funding rates. ``now_ms`` defaults to the exchange's
    time. Raises ``DownloadError`` after the other symbols are done when one could not be completed.

    ``budget``: the request-weight budget to draw from; by default the port's (the adapter's), else one of
    the download's own."""
    now = await port.server_time() if now_ms is None else now_ms
    last = now - now % MINUTE_MS - MINUTE_MS  # the last closed minute
    first = now - now % MINUTE_MS - days * DAY_MS
    budget = budget or budget_of(port) or own_budget()
    reports = []
    for symbol in symbols:
        report = await download_symbol(
            port, symbol, out_dir, first_ms=first, last_ms=last, budget=budget, on_page=on_page
        )
        reports.append(report)
        if funding and report.error is None:
            try:
                await download_funding(port, symbol, out_dir, report, first_ms=first, last_ms=now, budget=budget)
            except (ExchangeError, OSError, FundingFileError) as exc:
                report.error = f"funding: {type(exc).__name__}: {exc}"
                log.error("%s: funding rates: %s (what was fetched is kept)", symbol, exc)
        if report.error and RateLimitedError.__name__ in report.error:
            break  # still refused after backing off: the next run resumes, later
    failed = [r for r in reports if r.error]
    if failed:
        raise DownloadError("; ".join(f"{r.symbol}: {r.error}" for r in failed), reports)
    return reports


# ---------------------------------------------------------------------- command line
def parse_symbols(text: str) -> list[str]:
    symbols = list(dict.fromkeys(s.strip().upper() for s in text.split(",") if s.strip()))
    if not symbols:
        raise ValueError("--symbols names no symbol (e.g. BTCUSDT,ETHUSDT)")
    bad = [s for s in symbols if not _SYMBOL.match(s)]
    if bad:
        raise ValueError(f"not a symbol: {', '.join(bad)} (write them like BTCUSDT)")
    return symbols


def cmd_download(args: argparse.Namespace, settings: Settings) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
        logging.getLogger("ccxt").setLevel(logging.WARNING)
    try:
        symbols = parse_symbols(args.symbols)
        if not 1 <= args.days <= MAX_DAYS:
            raise ValueError(f"--days must be between 1 and {MAX_DAYS}, got {args.days}")
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is not a directory")
        out.mkdir(parents=True, exist_ok=True)
    except ValueError as exc:
        print(f"surgedca download: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(settings, symbols, args.days, out, funding=not args.no_funding))


async def _run(settings: Settings, symbols: list[str], days: int, out: Path, *, funding: bool = True) -> int:
    from trading.exchange.ccxt_adapter import CcxtBinanceAdapter

    # Public data only: never sign anything, whatever keys the environment holds.
    port = CcxtBinanceAdapter.from_settings(settings, api_key=None, api_secret=None)
    code = 0
    try:
        try:
            reports = await download(port, symbols, days, out, funding=funding)  # the adapter's budget
        except DownloadError as exc:
            reports = exc.reports
            print(f"surgedca download: {exc}; run the same command again to resume", file=sys.stderr)
            code = 1
        except (ExchangeError, OSError, CandleFileError) as exc:
            print(f"surgedca download: {exc}", file=sys.stderr)
            return 1
        for r in reports:
            note = f", {r.still_missing} minute(s) not available" if r.still_missing else ""
            print(
                f"{r.symbol}: {r.fetched} new candle(s) in {r.requests} request(s), {r.had} already there{note}"
                f" -> {r.path}"
            )
            if r.funding_path is not None:
                print(
                    f"{r.symbol}: {r.funding_fetched} new funding rate(s) in {r.funding_requests} request(s), "
                    f"{r.funding_had} already there -> {r.funding_path}"
                )
    finally:
        await port.close()
    return code
