"""Candle files for a backtest: loaded once, cut to the window, shared by every run of a comparison.

The replay is built exactly as ``MarketReplay.from_files`` builds it (same
files, same symbol order, same trading rules from ``file_market``); loading
here instead lets the CLI read the files once for two configs and end the data
at ``--to`` so that symbols are ``CLOSE`` after it, as on the exchange.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from trading.candle_files import CandleFileError, find_candle_files, read_candles
from trading.candles import history_needed
from trading.core.config import SignalParams
from trading.core.series import OHLCV, TIMEFRAME_MS
from trading.exchange.base import Market
from trading.exchange.replay import WARMUP_MS, file_market

MINUTE_MS = 60_000

CandleData = Mapping[str, tuple[Market, OHLCV]]


class BacktestInputError(ValueError):
    """Bad command-line input or data: a message for the operator, nothing was run."""


@dataclass(frozen=True)
class LoadedData:
    directory: Path
    data: dict[str, tuple[Market, OHLCV]]  # symbol -> (rules, 1m candles), symbols in name order

    @property
    def symbols(self) -> list[str]:
        return list(self.data)

    @property
    def first_ms(self) -> int:
        return min(int(c.open_time[0]) for _, c in self.data.values())

    @property
    def last_ms(self) -> int:
        """Open time of the newest candle of any symbol."""
        return max(int(c.open_time[-1]) for _, c in self.data.values())


def load_candle_dir(directory: Path, symbols: Iterable[str] | None = None) -> LoadedData:
    """Every ``SYMBOL-1m.csv[.gz]`` of ``directory`` (or the ``symbols`` asked), as the replay reads them."""
    try:
        files = find_candle_files(Path(directory))
    except CandleFileError as exc:
        raise BacktestInputError(str(exc)) from None
    if symbols is not None:
        wanted = list(dict.fromkeys(s.strip().upper() for s in symbols if s.strip()))
        if not wanted:
            raise BacktestInputError("--symbols names no symbol")
        missing = [s for s in wanted if s not in files]
        if missing:
            raise BacktestInputError(
                f"no candle file for {', '.join(missing)} in {directory} (expected SYMBOL-1m.csv or SYMBOL-1m.csv.gz)"
            )
        files = {s: files[s] for s in wanted}
    if not files:
        raise BacktestInputError(f"no SYMBOL-1m.csv[.gz] candle files in {directory}")
    data: dict[str, tuple[Market, OHLCV]] = {}
    for name in sorted(files):
        try:
            candles = read_candles(files[name])
        except CandleFileError as exc:
            raise BacktestInputError(str(exc)) from None
        if len(candles):
            data[name] = (file_market(name, candles), candles)
    if not data:
        raise BacktestInputError(f"the candle files in {directory} hold no candles")
    return LoadedData(Path(directory), data)


def warmup_ms(params: SignalParams) -> int:
    """History the signals need before the first evaluation: the replay's default, or more for longer settings."""
    need = history_needed(params)
    longest = max(TIMEFRAME_MS[tf] * bars for tf, bars in need.items())
    return max(WARMUP_MS, math.ceil(longest / MINUTE_MS) * MINUTE_MS)


def cut(data: CandleData, end_ms: int | None) -> dict[str, tuple[Market, OHLCV]]:
    """The candles that open before ``end_ms`` (exclusive); symbols left without candles are dropped.

    A symbol that loses candles gets its trading rules derived again from the candles it keeps (they are
    guessed from the prices, see ``file_market``): a run reads nothing after its end, not even to size a tick.
    """
    if end_ms is None:
        return dict(data)
    out: dict[str, tuple[Market, OHLCV]] = {}
    for symbol, (market, c) in data.items():
        n = int(np.searchsorted(c.open_time, end_ms))
        if n == len(c):
            out[symbol] = (market, c)
        elif n:
            kept = c.upto(n)
            out[symbol] = (file_market(symbol, kept), kept)
    return out


def parse_time(text: str, what: str) -> int:
    """``YYYY-MM-DD`` or an ISO time (UTC when no zone is given) -> epoch ms."""
    raw = text.strip()
    try:
        when = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BacktestInputError(
            f"{what} {text!r} is not a date: write YYYY-MM-DD or an ISO time like 2026-01-12T08:00 (UTC)"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
