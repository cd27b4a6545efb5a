"""Which funding rate the backtest charges, and when.

A symbol with a funding file (``SYMBOL-funding.csv`` beside its candles, see ``trading.funding_files``) is
charged its recorded rates at its recorded funding times. Outside the span the file covers (before its
first record, or more than one interval after its last), and for a symbol without a file, the backtest
charges a flat rate (``DEFAULT_FLAT_RATE``, 0.01% per 8 hours: Binance's rate when the premium is zero,
the interest part alone) every interval on Binance's grid (00:00, 08:00 and 16:00 UTC for 8 hours; the
file's own interval when it has one).

The simulated broker books each charge (``SimBroker.apply_funding``): ``qty x mark x rate`` leaves the
wallet of a long when the rate is positive and comes in when it is negative.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

from trading.exchange.base import FundingRate
from trading.funding_files import FundingFileError, find_funding_files, read_funding

HOUR_MS = 3_600_000
DEFAULT_INTERVAL_MS = 8 * HOUR_MS
DEFAULT_FLAT_RATE = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class FundingEvent:
    time_ms: int
    rate: Decimal
    recorded: bool  # from the symbol's file (False: the flat rate)


@dataclass
class _SymbolFunding:
    times: list[int]
    rates: list[Decimal]
    interval_ms: int

    @property
    def covers(self) -> tuple[int, int]:
        return self.times[0], self.times[-1] + self.interval_ms


@dataclass
class FundingSchedule:
    """Funding times and rates per symbol; ``flat_rate`` where a symbol has no record."""

    recorded: dict[str, _SymbolFunding] = field(default_factory=dict)
    flat_rate: Decimal = DEFAULT_FLAT_RATE
    source: str = "flat"

    @classmethod
    def from_records(
        cls, records: Mapping[str, Iterable[FundingRate]], *, flat_rate: Decimal = DEFAULT_FLAT_RATE, source: str = ""
    ) -> FundingSchedule:
        recorded = {}
        for symbol, given in records.items():
            rows = sorted(given, key=lambda r: r.time_ms)
            if not rows:
                continue
            times = [r.time_ms for r in rows]
            gaps = sorted(b - a for a, b in pairwise(times) if b > a)
            interval = gaps[len(gaps) // 2] if gaps else DEFAULT_INTERVAL_MS  # the median: one odd gap is noise
            recorded[symbol] = _SymbolFunding(times, [r.rate for r in rows], interval)
        return cls(recorded, flat_rate, source or ("files" if recorded else "flat"))

    @classmethod
    def from_dir(
        cls, directory: Path, symbols: Iterable[str] | None = None, *, flat_rate: Decimal = DEFAULT_FLAT_RATE
    ) -> FundingSchedule:
        """The ``SYMBOL-funding.csv`` files of ``directory`` (of ``symbols`` only, when given)."""
        files = find_funding_files(directory)
        wanted = set(symbols) if symbols is not None else None
        records = {s: read_funding(p) for s, p in files.items() if wanted is None or s in wanted}
        return cls.from_records(records, flat_rate=flat_rate, source=f"files:{directory}")

    def has_records(self, symbol: str) -> bool:
        return symbol in self.recorded

    def events(self, symbol: str, after_ms: int, upto_ms: int) -> list[FundingEvent]:
        """Funding events of ``symbol`` with ``after_ms < time <= upto_ms``, oldest first."""
        if upto_ms <= after_ms:
            return []
        rec = self.recorded.get(symbol)
        if rec is None:
            return [FundingEvent(t, self.flat_rate, False) for t in _grid(after_ms, upto_ms, DEFAULT_INTERVAL_MS)]
        first, last = rec.covers
        out: list[FundingEvent] = []
        if after_ms < first:  # before the file: the flat rate on the file's grid
            before = _grid(after_ms, min(upto_ms, first - 1), rec.interval_ms)
            out += [FundingEvent(t, self.flat_rate, False) for t in before]
        i = bisect_right(rec.times, after_ms)
        while i < len(rec.times) and rec.times[i] <= upto_ms:
            out.append(FundingEvent(rec.times[i], rec.rates[i], True))
            i += 1
        if upto_ms >= last:  # after the file's last interval
            start = max(after_ms, last - 1)
            out += [FundingEvent(t, self.flat_rate, False) for t in _grid(start, upto_ms, rec.interval_ms)]
        return out

    def describe(self) -> str:
        n = len(self.recorded)
        flat = f"{float(self.flat_rate) * 100:g}% per 8 h"
        if not n:
            return f"flat {flat} (no funding files)"
        return f"recorded for {n} symbol(s), flat {flat} elsewhere"


def _grid(after_ms: int, upto_ms: int, interval_ms: int) -> list[int]:
    """Multiples of ``interval_ms`` (Binance's grid, UTC) in (after_ms, upto_ms]."""
    first = (after_ms // interval_ms + 1) * interval_ms
    return list(range(first, upto_ms + 1, interval_ms))


def load_funding(directory: Path, symbols: Iterable[str], *, flat_rate: Decimal = DEFAULT_FLAT_RATE) -> FundingSchedule:
    """``FundingSchedule.from_dir`` with the file errors turned into the backtest's input errors."""
    from trading.backtest.data import BacktestInputError

    try:
        return FundingSchedule.from_dir(directory, symbols, flat_rate=flat_rate)
    except FundingFileError as exc:
        raise BacktestInputError(str(exc)) from None


__all__ = ["DEFAULT_FLAT_RATE", "FundingEvent", "FundingSchedule", "load_funding"]
