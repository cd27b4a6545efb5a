"""Candle store: per symbol and timeframe, bounded numpy ring buffers fed by closed 1m candles.

SPEC section 1: evaluation happens when a 1m candle closes. At that moment every
timeframe's series ends with the candle that contains that minute: the closed 1m
candle itself, and for 3m/15m/1h/1d the candle in progress aggregated from its 1m
candles up to and including that minute. Periods are Binance's (UTC, aligned to
the epoch; 1d starts at 00:00 UTC).

``CandleStore`` is synchronous and does no I/O. ``CandleKeeper`` fills it from
REST (backfill, gap repair) and from the stream's closed 1m klines.

Views returned by ``series``/``frames`` are read-only and valid until the next
update of that symbol (the in-progress candle is updated in place and a ring
buffer is compacted now and then): copy them (``copy=True``) before holding them
across an ``await`` or handing them to another thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trading.clock import Clock, SystemClock
from trading.core.backoff import Backoff
from trading.core.config import SignalParams
from trading.core.series import OHLCV, TIMEFRAME_MS
from trading.exchange.base import ExchangePort, Kline, KlineEvent
from trading.exchange.ratelimit import BACKFILL, BACKFILL_FRACTION, Share, WeightBudget, budget_of
from trading.retry import Attempts

log = logging.getLogger(__name__)

TIMEFRAMES: tuple[str, ...] = ("1m", "3m", "15m", "1h", "1d")
HIGHER_TIMEFRAMES: tuple[str, ...] = TIMEFRAMES[1:]
MINUTE_MS = TIMEFRAME_MS["1m"]
DAY_MINUTES = TIMEFRAME_MS["1d"] // MINUTE_MS

# 1m must hold a whole UTC day (the in-progress 1d candle is rebuilt from it) plus a margin;
# 3m/15m hold MA480 + 150 bars of cross look-back with room to spare.
DEFAULT_CAPACITY: dict[str, int] = {"1m": 1_600, "3m": 1_000, "15m": 1_000, "1h": 240, "1d": 60}

_F_OPEN, _F_HIGH, _F_LOW, _F_CLOSE, _F_VOLUME = range(5)


def history_needed(params: SignalParams) -> dict[str, int]:
    """Bars per timeframe that SPEC sections 2-3 need.

    A cross "within k bars" of two indicators of up to w bars needs w + k bars (the oldest bar looked at
    compares with the bar before it).
    """
    p = params
    ma_pair = max(p.ma_mid, p.ma_long)  # MA80/MA480
    bb_pair = max(p.bb_fast_n, p.bb_slow_n)  # BB200/BB480
    dead = max(p.ma_short, p.ma_mid) + p.dead_cross_lookback  # MA20/MA80
    one_minute = max(ma_pair + p.cross_lookback, bb_pair + p.cross_lookback, dead, max(p.ma_fast, ma_pair) + 1)
    three_minute = max(
        ma_pair + p.cross_lookback,  # T1
        bb_pair + p.cross_lookback,  # T2
        dead,  # T3
        p.ma_fast,  # T4 (MA5 vs MA480)
        p.ma_long,
        max(p.ma_fast, p.ma_short) + p.fast_cross_lookback,  # T5
    )
    fifteen_minute = max(ma_pair, p.ma_fast, bb_pair, p.ma_short + p.f4_falling_bars)  # F1-F3; F4 needs MA20[-3]
    return {
        "1m": one_minute,
        "3m": three_minute,
        "15m": fifteen_minute,
        "1h": p.prefilter_bars + p.prefilter_volume_lookback,
        "1d": p.m6_days,
    }


def capacities_for(need: Mapping[str, int], margin: float = 0.25) -> dict[str, int]:
    """Default capacities, raised where ``need`` (plus a margin) asks for more."""
    caps = dict(DEFAULT_CAPACITY)
    for tf, n in need.items():
        _check_tf(tf)
        caps[tf] = max(caps[tf], math.ceil(n * (1 + margin)))
    caps["1m"] = max(caps["1m"], DAY_MINUTES + 60)
    return caps


def period_start(ms: int, tf: str) -> int:
    size = TIMEFRAME_MS[tf]
    return ms - ms % size


def _check_tf(tf: str) -> None:
    if tf not in TIMEFRAME_MS or tf not in TIMEFRAMES:
        raise ValueError(f"unknown timeframe {tf!r}; expected one of {', '.join(TIMEFRAMES)}")


# ------------------------------------------------------------------ ring buffer
class _Ring:
    """Rows oldest first in ``[start, end)`` of arrays twice the capacity.

    Appending writes at ``end``; when ``end`` reaches the storage size the live rows
    are copied down to the front (``capacity`` rows every ``capacity`` appends: O(1)
    amortised), so the live rows are always one contiguous slice.
    """

    __slots__ = (
        "_f_ro",
        "_t_ro",
        "c",
        "capacity",
        "end",
        "f",
        "h",
        "last_t",
        "lo",
        "o",
        "rows_moved",
        "start",
        "t",
        "v",
    )

    def __init__(self, capacity: int) -> None:
        if capacity < 2:
            raise ValueError(f"ring capacity must be >= 2, got {capacity}")
        self.capacity = capacity
        self.t = np.zeros(2 * capacity, dtype=np.int64)
        self.f = np.zeros((5, 2 * capacity), dtype=np.float64)  # open, high, low, close, volume
        # Read-only views of the same memory: slices of them are read-only too, at no cost per call.
        self._t_ro = self.t.view()
        self._t_ro.flags.writeable = False
        self._f_ro = self.f.view()
        self._f_ro.flags.writeable = False
        # 1-D row views: item access on them is cheaper than 2-D indexing on the hot path.
        self.o, self.h, self.lo, self.c, self.v = self.f
        self.start = 0
        self.end = 0
        self.last_t = -1  # open time of the last row as a Python int (-1: empty)
        self.rows_moved = 0  # rows written or copied: lets tests check O(1) amortised work by counting

    def __len__(self) -> int:
        return self.end - self.start

    @property
    def nbytes(self) -> int:
        return self.t.nbytes + self.f.nbytes

    def last_time(self) -> int | None:
        return self.last_t if self.end > self.start else None

    def _refresh_last(self) -> None:
        self.last_t = int(self.t[self.end - 1]) if self.end > self.start else -1

    def first_time(self) -> int | None:
        return int(self.t[self.start]) if self.end > self.start else None

    def times(self) -> np.ndarray:
        return self.t[self.start : self.end]

    def fields(self) -> np.ndarray:
        return self.f[:, self.start : self.end]

    def _compact(self) -> None:
        n = self.end - self.start
        if self.start:
            self.t[:n] = self.t[self.start : self.end]
            self.f[:, :n] = self.f[:, self.start : self.end]
            self.rows_moved += n
        self.start, self.end = 0, n

    def append(self, t: int, row: tuple[float, float, float, float, float]) -> None:
        """Add a row (open, high, low, close, volume) after the last one."""
        if self.end == self.t.shape[0]:
            self._compact()
        i = self.end
        self.t[i] = t
        self.o[i], self.h[i], self.lo[i], self.c[i], self.v[i] = row
        self.end = i + 1
        self.last_t = t
        self.rows_moved += 1
        if self.end - self.start > self.capacity:
            self.start += 1

    def extend_last(self, h: float, lo: float, c: float, v: float) -> None:
        """Fold one more 1m candle into the last row (the candle in progress)."""
        i = self.end - 1
        highs, lows = self.h, self.lo
        if h > highs[i]:  # noqa: PLR1730 - a comparison is cheaper than max() on numpy scalars
            highs[i] = h
        if lo < lows[i]:  # noqa: PLR1730
            lows[i] = lo
        self.c[i] = c
        self.v[i] += v

    def truncate_after(self, t: int) -> None:
        """Drop rows with open time > ``t`` (they sit at the end)."""
        k = int(np.searchsorted(self.times(), t, side="right"))
        self.end = self.start + k
        self._refresh_last()

    def upsert(self, t: np.ndarray, f: np.ndarray) -> None:
        """Merge rows (``t`` ascending, unique; ``f`` shaped (5, n)); a given row replaces one with the same time."""
        n = int(t.shape[0])
        if n == 0:
            return
        last = self.last_time()
        if last is None or int(t[0]) > last:
            if n >= self.capacity:
                t, f, n = t[-self.capacity :], f[:, -self.capacity :], self.capacity
                self.start = self.end = 0
            elif self.end + n > self.t.shape[0]:
                self._compact()  # live rows <= capacity and n < capacity: they fit after compaction
            self.t[self.end : self.end + n] = t
            self.f[:, self.end : self.end + n] = f
            self.end += n
            self.rows_moved += n
            if self.end - self.start > self.capacity:
                self.start = self.end - self.capacity
            self._refresh_last()
            return
        # General merge (backfill into the middle, gap repair): rare, O(n log n).
        all_t = np.concatenate((self.times(), t))
        all_f = np.concatenate((self.fields(), f), axis=1)
        order = np.argsort(all_t, kind="stable")  # stable: the new row comes after the old one of equal time
        all_t = all_t[order]
        all_f = all_f[:, order]
        keep = np.ones(all_t.shape[0], dtype=bool)
        keep[:-1] = all_t[:-1] != all_t[1:]  # keep the last of each equal run
        all_t = all_t[keep][-self.capacity :]
        all_f = all_f[:, keep][:, -self.capacity :]
        m = int(all_t.shape[0])
        self.t[:m] = all_t
        self.f[:, :m] = all_f
        self.start, self.end = 0, m
        self.rows_moved += m
        self._refresh_last()

    def view(self, copy: bool) -> OHLCV:
        s, e = self.start, self.end
        if copy:
            f = self.f[:, s:e].copy()
            return OHLCV(self.t[s:e].copy(), f[0], f[1], f[2], f[3], f[4])
        f = self._f_ro
        return OHLCV(self._t_ro[s:e], f[0, s:e], f[1, s:e], f[2, s:e], f[3, s:e], f[4, s:e])


# ------------------------------------------------------------------ per-symbol state
@dataclass
class _SymbolCandles:
    rings: dict[str, _Ring]
    higher: tuple[tuple[str, int, _Ring], ...] = ()  # (tf, period ms, ring) of 3m..1d, for the hot path
    # Open time of the higher-timeframe row that was built from 1m candles and may be extended in place.
    agg_time: dict[str, int | None] = field(default_factory=lambda: dict.fromkeys(HIGHER_TIMEFRAMES))
    accepted_holes: set[tuple[int, int]] = field(default_factory=set)
    # Holes in the 1m ring, oldest first, kept up to date as candles arrive (so that checking a symbol before each
    # evaluation costs nothing when, as usual, there is none); recomputed after a REST merge.
    holes: list[tuple[int, int]] = field(default_factory=list)


def _aggregate(t: np.ndarray, f: np.ndarray, tf: str) -> tuple[np.ndarray, np.ndarray]:
    """Group consecutive 1m rows by ``tf`` period: first open, max high, min low, last close, summed volume."""
    size = TIMEFRAME_MS[tf]
    keys = t - t % size
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    ends = np.r_[starts[1:], t.shape[0]] - 1
    out = np.empty((5, starts.shape[0]), dtype=np.float64)
    out[_F_OPEN] = f[_F_OPEN, starts]
    out[_F_HIGH] = np.maximum.reduceat(f[_F_HIGH], starts)
    out[_F_LOW] = np.minimum.reduceat(f[_F_LOW], starts)
    out[_F_CLOSE] = f[_F_CLOSE, ends]
    out[_F_VOLUME] = np.add.reduceat(f[_F_VOLUME], starts)
    return keys[starts], out


def _klines_to_arrays(klines: Sequence[Kline]) -> tuple[np.ndarray, np.ndarray]:
    t = np.fromiter((k.open_time for k in klines), dtype=np.int64, count=len(klines))
    f = np.empty((5, len(klines)), dtype=np.float64)
    for j, k in enumerate(klines):
        f[:, j] = (k.open, k.high, k.low, k.close, k.volume)
    return t, f


def _find_holes(data: _SymbolCandles) -> None:
    """Recompute the holes of the 1m ring from scratch (after a REST merge: rare, O(n))."""
    t = data.rings["1m"].times()
    if t.shape[0] < 2:
        data.holes = []
    else:
        idx = np.flatnonzero(np.diff(t) != MINUTE_MS)
        data.holes = [(int(t[i]) + MINUTE_MS, int(t[i + 1]) - MINUTE_MS) for i in idx]
    data.accepted_holes &= set(data.holes)


def _trim_holes(data: _SymbolCandles) -> None:
    """Forget holes that lie before the oldest row of the 1m ring (evicted with it)."""
    m1 = data.rings["1m"]
    if m1.end == m1.start:
        data.holes = []
        return
    first = int(m1.t[m1.start])
    holes = data.holes
    while holes and holes[0][1] < first:
        data.accepted_holes.discard(holes.pop(0))


# ------------------------------------------------------------------ the store
class CandleStore:
    """Closed 1m candles plus 3m/15m/1h/1d candles (closed ones and the one in progress), per symbol."""

    def __init__(self, capacities: Mapping[str, int] | None = None) -> None:
        caps = dict(DEFAULT_CAPACITY)
        for tf, n in (capacities or {}).items():
            _check_tf(tf)
            if not isinstance(n, int) or n < 2:
                raise ValueError(f"capacity of {tf} must be an integer >= 2, got {n!r}")
            caps[tf] = n
        if caps["1m"] < DAY_MINUTES:
            raise ValueError(
                f"1m capacity must cover a whole UTC day ({DAY_MINUTES} candles) to rebuild the 1d candle, "
                f"got {caps['1m']}"
            )
        self.capacities: dict[str, int] = caps
        self._data: dict[str, _SymbolCandles] = {}
        self._loading: dict[str, str] = {}  # symbol -> REST work pending on it ("backfill", "repair")
        # Called with a symbol when the REST work on it is done and its candles are complete (the scanner
        # evaluates a minute it had to skip). Listeners must not raise; errors are logged.
        self.completion_listeners: list[Callable[[str], None]] = []

    # ---- bookkeeping
    def _get(self, symbol: str) -> _SymbolCandles:
        data = self._data.get(symbol)
        if data is None:
            rings = {tf: _Ring(self.capacities[tf]) for tf in TIMEFRAMES}
            data = _SymbolCandles(rings, tuple((tf, TIMEFRAME_MS[tf], rings[tf]) for tf in HIGHER_TIMEFRAMES))
            self._data[symbol] = data
        return data

    def _known(self, symbol: str) -> _SymbolCandles:
        try:
            return self._data[symbol]
        except KeyError:
            raise KeyError(f"no candles for symbol {symbol!r}") from None

    def symbols(self) -> list[str]:
        return sorted(self._data)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._data

    def drop(self, symbol: str) -> None:
        self._data.pop(symbol, None)
        self._loading.pop(symbol, None)

    def memory_bytes(self) -> int:
        return sum(r.nbytes for d in self._data.values() for r in d.rings.values())

    def rows_moved(self, symbol: str) -> int:
        """Rows written or copied for this symbol so far (a work counter, for tests and benchmarks)."""
        return sum(r.rows_moved for r in self._known(symbol).rings.values())

    # ---- reading
    def series(self, symbol: str, tf: str, *, copy: bool = False) -> OHLCV:
        _check_tf(tf)
        return self._known(symbol).rings[tf].view(copy)

    def frames(self, symbol: str, *, copy: bool = False) -> dict[str, OHLCV]:
        rings = self._known(symbol).rings
        return {tf: rings[tf].view(copy) for tf in TIMEFRAMES}

    def last_close(self, symbol: str) -> float | None:
        data = self._data.get(symbol)
        if data is None:
            return None
        r = data.rings["1m"]
        return float(r.f[_F_CLOSE, r.end - 1]) if len(r) else None

    def last_open_time(self, symbol: str) -> int | None:
        data = self._data.get(symbol)
        return data.rings["1m"].last_time() if data is not None else None

    def missing_minutes(self, symbol: str) -> list[tuple[int, int]]:
        """Holes in the 1m buffer as (first missing open time, last missing open time), minus accepted ones."""
        data = self._data.get(symbol)
        if data is None or not data.holes:
            return []
        _trim_holes(data)
        return [h for h in data.holes if h not in data.accepted_holes]

    def accept_gap(self, symbol: str, first_ms: int, last_ms: int) -> None:
        """Mark a hole as known to be missing at the exchange too (e.g. maintenance): ``ready`` ignores it."""
        self._get(symbol).accepted_holes.add((first_ms, last_ms))

    # ---- completeness: what the signals read
    def mark_loading(self, symbol: str, what: str = "backfill") -> None:
        """REST work on ``symbol`` is pending (its history is loading, a hole is being repaired): not complete."""
        self._loading[symbol] = what

    def mark_loaded(self, symbol: str) -> None:
        """The REST work on ``symbol`` is done; tells the completion listeners if its candles are complete now."""
        if self._loading.pop(symbol, None) is None or self.incomplete(symbol) is not None:
            return
        for listener in list(self.completion_listeners):
            try:
                listener(symbol)
            except Exception:  # a listener's bug must not stop the candle keeper
                log.exception("candles: completion listener failed for %s", symbol)

    def incomplete(self, symbol: str) -> str | None:
        """Why what the signals read of ``symbol`` is not complete now (None when it is). Cheap: O(timeframes).

        Complete means: no REST backfill or repair pending on it, no unrepaired hole in the 1m buffer (the 1m
        signals read its last bars directly and every 3m/15m/1h/1d candle the buffer covers is built from it),
        and the candles in progress of 3m..1d rebuilt from 1m since the start of their period. A short history
        (a young listing) is not incomplete: a condition that lacks candles is false.
        """
        data = self._data.get(symbol)
        if data is None:
            return "no candles"
        m1 = data.rings["1m"]
        last = m1.last_t
        if last < 0:
            return "no candles"
        if data.holes:
            holes = self.missing_minutes(symbol)
            if holes:
                first, end = holes[0]
                n = sum((b - a) // MINUTE_MS + 1 for a, b in holes)
                return (
                    f"{n} missing 1m candle(s) from {first} to {end}"
                    if len(holes) == 1
                    else (f"{n} missing 1m candle(s) in {len(holes)} holes, the first from {first} to {end}")
                )
        what = self._loading.get(symbol)
        if what is not None:
            return f"{what} in progress"
        first_1m = int(m1.t[m1.start])
        agg_time = data.agg_time
        for tf, size, ring in data.higher:
            p = last - last % size
            # A row rebuilt from a 1m buffer that starts inside its period lacks the first minutes.
            if ring.last_t != p or (first_1m > p and agg_time[tf] == p):
                return f"the {tf} candle in progress lacks minutes"
        return None

    def complete(self, symbol: str) -> bool:
        return self.incomplete(symbol) is None

    def ready(self, symbol: str, need: Mapping[str, int]) -> bool:
        """Enough candles for ``need``, the in-progress candles fully rebuilt from 1m, and no unrepaired 1m hole."""
        data = self._data.get(symbol)
        if data is None:
            return False
        m1 = data.rings["1m"]
        last = m1.last_time()
        first = m1.first_time()
        if last is None or first is None:
            return False
        for tf, n in need.items():
            _check_tf(tf)
            ring = data.rings[tf]
            if len(ring) < n:
                return False
            if tf != "1m" and n > 0:
                p = period_start(last, tf)
                # A row rebuilt from a 1m buffer that starts inside its period lacks the first minutes.
                if ring.last_time() != p or (first > p and data.agg_time[tf] == p):
                    return False
        return not self.missing_minutes(symbol)

    # ---- writing
    def on_closed_1m(self, symbol: str, kline: Kline) -> int:
        """Store one closed 1m candle; return how many minutes are missing right before it (0 normally).

        A duplicate or older minute is ignored (returns 0). A gap is stored as a hole that
        the caller repairs with ``backfill(symbol, "1m", missing)``.
        """
        t = kline.open_time
        if not kline.closed:
            raise ValueError(f"{symbol}: on_closed_1m needs a closed candle (open time {t})")
        if t % MINUTE_MS:
            raise ValueError(f"{symbol}: 1m open time {t} is not aligned to a minute")
        o, h, lo, c, v = kline.open, kline.high, kline.low, kline.close, kline.volume
        if not math.isfinite(o + h + lo + c + v):  # one check: NaN and inf propagate through the sum
            raise ValueError(f"{symbol}: non-finite value in candle {kline}")
        data = self._data.get(symbol) or self._get(symbol)
        m1 = data.rings["1m"]
        last = m1.last_t
        if last >= 0 and t <= last:
            return 0
        missing = 0 if last < 0 else (t - last) // MINUTE_MS - 1
        row = (o, h, lo, c, v)
        m1.append(t, row)
        if missing:
            data.holes.append((last + MINUTE_MS, t - MINUTE_MS))
        if data.holes:
            _trim_holes(data)  # the oldest rows may have left the ring, and the holes before them
        agg_time = data.agg_time
        for tf, size, ring in data.higher:
            p = t - t % size
            lt = ring.last_t
            if lt < p:  # a new period (or an empty ring)
                ring.append(p, row)
                agg_time[tf] = p
            elif lt == p and agg_time[tf] == p:
                ring.extend_last(h, lo, c, v)
            else:
                # The last row came from REST (or lies ahead of the 1m stream): rebuild it from 1m.
                self._rebuild(data, tf, p)
        return missing

    def backfill(
        self, symbol: str, tf: str, klines: Sequence[Kline], *, now_ms: int | None = None
    ) -> dict[str, tuple[int, int]]:
        """Merge closed candles (idempotent). Candles not closed (``closed=False``, or ending after ``now_ms``) are
        skipped; for 3m..1d also those ending after the newest 1m candle: the candle in progress is always
        rebuilt from the 1m buffer.

        Returns, for a 1m backfill, the closed higher-timeframe periods touched by the new minutes that the 1m
        buffer cannot rebuild entirely (tf -> first and last open time): fetch those from REST to refresh them.
        """
        _check_tf(tf)
        size = TIMEFRAME_MS[tf]
        bad = [k.open_time for k in klines if k.open_time % size]
        if bad:
            raise ValueError(f"{symbol}: {tf} open times not aligned to the timeframe: {bad[:5]}")
        rows = [k for k in klines if k.closed and (now_ms is None or k.open_time + size <= now_ms)]
        if not rows:
            return {}
        rows.sort(key=lambda k: k.open_time)
        t, f = _klines_to_arrays(rows)
        if not np.isfinite(f).all():
            raise ValueError(f"{symbol}: non-finite values in {tf} candles")
        keep = np.ones(t.shape[0], dtype=bool)
        keep[:-1] = t[:-1] != t[1:]  # duplicates in the input: the last one wins
        t, f = t[keep], f[:, keep]
        data = self._get(symbol)
        if tf == "1m":
            data.rings["1m"].upsert(t, f)
            _find_holes(data)
            return self._after_1m_merge(data, int(t[0]))
        last = data.rings["1m"].last_time()
        if last is not None:
            ok = t + size <= last + MINUTE_MS
            t, f = t[ok], f[:, ok]
        ring = data.rings[tf]
        agg = data.agg_time[tf]
        ring.upsert(t, f)
        if agg is not None and t.shape[0] and int(t[-1]) >= agg:
            data.agg_time[tf] = None  # the aggregated row was replaced by the exchange's (complete) candle
        if last is not None:
            self._rebuild(data, tf, period_start(last, tf))
        return {}

    # ---- aggregation from 1m
    def _after_1m_merge(self, data: _SymbolCandles, first_new: int) -> dict[str, tuple[int, int]]:
        m1 = data.rings["1m"]
        first_1m = m1.first_time()
        last = m1.last_time()
        if first_1m is None or last is None:
            return {}
        stale: dict[str, tuple[int, int]] = {}
        for tf in HIGHER_TIMEFRAMES:
            p_from = period_start(max(first_new, first_1m), tf)
            if p_from < first_1m and p_from < period_start(last, tf):
                stale[tf] = (p_from, p_from)  # a closed period that began before the 1m buffer
            self._rebuild(data, tf, p_from)
        return stale

    def _rebuild(self, data: _SymbolCandles, tf: str, p_from: int) -> None:
        """Rewrite ``tf`` rows from period ``p_from`` up to the one containing the newest 1m candle.

        Closed periods are written only when the 1m buffer covers them from their start; the in-progress one
        always is (a partial rebuild then makes ``ready`` false until the buffer covers it).
        """
        m1 = data.rings["1m"]
        ring = data.rings[tf]
        last = m1.last_time()
        first_1m = m1.first_time()
        if last is None or first_1m is None:
            return
        p_last = period_start(last, tf)
        ring.truncate_after(p_last)
        if (
            first_1m > p_last
            and ring.last_time() == p_last
            and data.agg_time[tf] != p_last
            and p_last + TIMEFRAME_MS[tf] == last + MINUTE_MS
        ):
            return  # the exchange's complete candle ending with the newest minute beats a partial rebuild
        lo_ms = max(p_from, first_1m)
        if period_start(lo_ms, tf) < first_1m and period_start(lo_ms, tf) < p_last:
            lo_ms = period_start(lo_ms, tf) + TIMEFRAME_MS[tf]  # skip a closed period the buffer starts inside
        lo_ms = min(lo_ms, p_last)
        times = m1.times()
        i = int(np.searchsorted(times, lo_ms, side="left"))
        seg_t = times[i:]
        if seg_t.shape[0] == 0:
            return
        keys, rows = _aggregate(seg_t, m1.fields()[:, i:], tf)
        ring.upsert(keys, rows)
        data.agg_time[tf] = p_last


# ------------------------------------------------------------------ REST weight
def klines_weight(limit: int) -> int:
    """Binance USD-M ``GET /fapi/v1/klines`` request weight for a ``limit``."""
    if limit < 100:
        return 1
    if limit < 500:
        return 2
    if limit <= 1000:
        return 5
    return 10


KLINES_CHUNK = 499  # the cheapest bars per weight unit (weight 2 for up to 499 bars)


# ------------------------------------------------------------------ the keeper
@dataclass(frozen=True)
class BackfillResult:
    done: tuple[str, ...]
    failed: dict[str, str]  # symbol -> error text; these are retried in the background


class CandleKeeper:
    """Fills a ``CandleStore`` from REST (paced backfill, gap repair) and from the stream's closed 1m klines.

    ``on_kline_event`` is synchronous and never waits for the network: gap repairs and retries of failed
    backfills run as background tasks (``close()`` cancels them).
    """

    def __init__(
        self,
        store: CandleStore,
        port: ExchangePort,
        *,
        need: Mapping[str, int] | None = None,
        clock: Clock | None = None,
        concurrency: int = 4,
        budget: WeightBudget | None = None,
        limit_per_minute: int = 2400,
        target_fraction: float = BACKFILL_FRACTION,
        retry_delays_s: Sequence[float] = (5, 15, 60, 300),
        margin: float = 0.1,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.store = store
        self.port = port
        self.clock: Clock = clock or SystemClock()
        self.need: dict[str, int] = dict(need) if need is not None else history_needed(SignalParams())
        for tf, n in self.need.items():
            _check_tf(tf)
            if n > store.capacities[tf]:
                raise ValueError(f"{tf}: {n} candles needed but the store keeps {store.capacities[tf]}")
        # The exchange adapter's budget when there is one (live, paper): the IP's one budget. Otherwise one of
        # the keeper's own, on its clock.
        self.budget = budget or WeightBudget(
            limit_per_minute, now_ms=self.clock.now_ms, monotonic=self.clock.monotonic, sleep=self.clock.sleep
        )
        # A budget the port does not feed from the header itself learns the port's figure after each reply.
        self._reading = None if self.budget is budget_of(port) else port.used_weight
        self.share = Share(BACKFILL.name, target_fraction)
        self._sem = asyncio.Semaphore(concurrency)
        self._margin = margin
        steps = tuple(retry_delays_s) or (60.0,)
        self._retry_policy = Backoff(steps=steps, jitter=(0.8, 1.2))  # failed backfills: spread, not in step
        self._repair_policy = Backoff(steps=steps)
        self._symbols: set[str] = set()
        self._failed: dict[str, str] = {}
        self._attempts: dict[str, Attempts] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}  # (kind, symbol) -> task
        self._repair_again: set[str] = set()
        self._closed = False

    # ---- symbols
    def symbols(self) -> set[str]:
        return set(self._symbols)

    def failed(self) -> dict[str, str]:
        """Symbols whose backfill failed and waits for a retry."""
        return dict(self._failed)

    def busy(self) -> bool:
        return any(not t.done() for t in self._tasks.values())

    async def add_symbols(self, symbols: Iterable[str], now_ms: int | None = None) -> BackfillResult:
        new = [s for s in dict.fromkeys(symbols) if s not in self._symbols]
        return await self.backfill(new, self.clock.now_ms() if now_ms is None else now_ms)

    def remove_symbols(self, symbols: Iterable[str]) -> None:
        for s in symbols:
            self._symbols.discard(s)
            self._failed.pop(s, None)
            self._attempts.pop(s, None)
            self._repair_again.discard(s)
            for kind in ("repair", "retry"):
                task = self._tasks.pop((kind, s), None)
                if task is not None:
                    task.cancel()
            self.store.drop(s)

    # ---- backfill
    async def backfill(self, symbols: Sequence[str], now_ms: int) -> BackfillResult:
        """Load history of every symbol (concurrency-limited, weight-paced); failures are retried later."""
        symbols = list(dict.fromkeys(symbols))
        self._symbols.update(symbols)
        results = await asyncio.gather(*(self._backfill_one(s, now_ms) for s in symbols))
        tracked = [(s, err) for s, err in zip(symbols, results, strict=True) if s in self._symbols]
        done = tuple(s for s, err in tracked if err is None)
        failed = {s: err for s, err in tracked if err is not None}
        for s, err in failed.items():
            self._failed[s] = err
            self._schedule_retry(s)
        return BackfillResult(done, failed)

    def bars_to_fetch(self, tf: str, now_ms: int) -> int:
        n = math.ceil(self.need.get(tf, 0) * (1 + self._margin))
        if tf == "1m":
            last_closed = period_start(now_ms, "1m") - MINUTE_MS
            since_day_start = (last_closed - period_start(last_closed, "1d")) // MINUTE_MS + 1
            n = max(n, since_day_start, 60)  # the in-progress 1h/1d candles are rebuilt from 1m
        return max(1, min(n, self.store.capacities[tf]))

    async def _backfill_one(self, symbol: str, now_ms: int) -> str | None:
        if symbol not in self._symbols:
            return "removed"
        if ("repair", symbol) not in self._tasks:
            self.store.mark_loading(symbol, "backfill")  # not evaluated until its history is in
        try:
            async with self._sem:
                fetched: dict[str, list[Kline]] = {}
                for tf in (*HIGHER_TIMEFRAMES, "1m"):
                    n = self.bars_to_fetch(tf, now_ms)
                    size = TIMEFRAME_MS[tf]
                    last_closed = period_start(now_ms, tf) - size
                    fetched[tf] = await self._fetch_range(symbol, tf, last_closed - (n - 1) * size, last_closed)
            if symbol not in self._symbols:
                return "removed"
            for tf in HIGHER_TIMEFRAMES:  # higher first: the 1m merge then rebuilds the candles in progress
                self.store.backfill(symbol, tf, fetched[tf], now_ms=now_ms)
            self.store.backfill(symbol, "1m", fetched["1m"], now_ms=now_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("candles: backfill of %s failed: %s", symbol, exc)
            return f"{type(exc).__name__}: {exc}"
        self._failed.pop(symbol, None)
        self._attempts.pop(symbol, None)
        if self.store.missing_minutes(symbol):
            self._schedule_repair(symbol)
        elif ("repair", symbol) not in self._tasks:
            self.store.mark_loaded(symbol)
        return None

    async def _fetch_range(self, symbol: str, tf: str, first_ms: int, last_ms: int) -> list[Kline]:
        """Closed candles with open time in [first_ms, last_ms], in weight-cheap chunks."""
        size = TIMEFRAME_MS[tf]
        out: list[Kline] = []
        start = first_ms
        while start <= last_ms:
            limit = min(KLINES_CHUNK, (last_ms - start) // size + 1)
            end = start + (limit - 1) * size
            out.extend(await self._fetch(symbol, tf, start, end, limit))
            start = end + size
        return out

    async def _fetch(self, symbol: str, tf: str, start_ms: int, end_ms: int, limit: int) -> list[Kline]:
        rows = await self.budget.call(
            lambda: self.port.fetch_klines(symbol, tf, start_ms=start_ms, end_ms=end_ms, limit=limit),
            share=self.share,
            weight=klines_weight(limit),
            tries=3,
            reading=self._reading,
            what=f"candles: {symbol} {tf}",
        )
        return [k for k in rows if start_ms <= k.open_time <= end_ms]

    def _schedule_retry(self, symbol: str) -> None:
        if self._closed or ("retry", symbol) in self._tasks:
            return
        delay = self._attempts.setdefault(symbol, Attempts(self._retry_policy)).next_delay()
        self._failed.setdefault(symbol, "pending")
        self._spawn("retry", symbol, self._retry(symbol, delay))

    async def _retry(self, symbol: str, delay: float) -> None:
        await self.clock.sleep(delay)
        if symbol not in self._symbols:
            return
        err = await self._backfill_one(symbol, self.clock.now_ms())
        self._tasks.pop(("retry", symbol), None)
        if err is not None and symbol in self._symbols:
            self._failed[symbol] = err
            self._schedule_retry(symbol)

    # ---- stream
    def on_kline_event(self, event: KlineEvent) -> int:
        """Store a closed 1m kline of a tracked symbol; start a background repair on a gap. Returns the gap size."""
        k = event.kline
        if event.interval != "1m" or not k.closed or event.symbol not in self._symbols:
            return 0
        try:
            missing = self.store.on_closed_1m(event.symbol, k)
        except ValueError as exc:
            log.error("candles: rejected kline of %s: %s", event.symbol, exc)
            return 0
        if missing:
            log.warning("candles: %s missed %d minute(s) before %d; repairing", event.symbol, missing, k.open_time)
            self._schedule_repair(event.symbol)
        return missing

    def _schedule_repair(self, symbol: str) -> None:
        if self._closed:
            return
        self.store.mark_loading(symbol, "repair")  # the scanner waits for the repair rather than guessing
        task = self._tasks.get(("repair", symbol))
        if task is not None and not task.done():
            self._repair_again.add(symbol)  # the running repair looks again when it is done
            return
        self._spawn("repair", symbol, self._repair(symbol))

    async def _repair(self, symbol: str) -> None:
        attempts = Attempts(self._repair_policy)
        while symbol in self._symbols:
            self._repair_again.discard(symbol)
            holes = self.store.missing_minutes(symbol)
            if not holes:
                break
            fetched: list[tuple[int, int]] = []
            try:
                for hole_first, last in holes:
                    cap_first = last - (self.store.capacities["1m"] - 1) * MINUTE_MS
                    first = max(hole_first, cap_first)  # older minutes would not fit in the buffer anyway
                    rows = await self._fetch_range(symbol, "1m", first, last)
                    if symbol not in self._symbols:
                        return
                    stale = self.store.backfill(symbol, "1m", rows, now_ms=self.clock.now_ms())
                    for tf, (p_first, p_last) in stale.items():
                        fresh = await self._fetch_range(symbol, tf, p_first, p_last)
                        self.store.backfill(symbol, tf, fresh, now_ms=self.clock.now_ms())
                    fetched.append((first, last))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = attempts.next_delay()
                log.warning("candles: repair of %s failed (%s), retrying in %.0fs", symbol, exc, delay)
                await self.clock.sleep(delay)
                continue
            attempts.reset()
            # What is still missing inside a range the exchange just answered for does not exist there
            # (e.g. maintenance): accept it so that ``ready`` does not wait for it forever.
            for first, last in self.store.missing_minutes(symbol):
                if any(f <= first and last <= lst for f, lst in fetched):
                    log.warning("candles: exchange has no 1m candles of %s in [%d, %d]", symbol, first, last)
                    self.store.accept_gap(symbol, first, last)
            if symbol not in self._repair_again:
                break
        if symbol in self._symbols and ("retry", symbol) not in self._tasks and symbol not in self._failed:
            self.store.mark_loaded(symbol)  # complete again: the scanner may evaluate the minute it skipped

    def _spawn(self, kind: str, symbol: str, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        key = (kind, symbol)
        self._tasks[key] = task

        def _done(t: asyncio.Task[None], key: tuple[str, str] = key) -> None:
            if self._tasks.get(key) is t:
                del self._tasks[key]
            if not t.cancelled() and t.exception() is not None:
                log.error("candles: %s task of %s crashed: %r", key[0], key[1], t.exception())

        task.add_done_callback(_done)

    async def wait_idle(self, within_s: float = 30.0) -> None:
        """Wait until no repair or retry is running (tests, orderly shutdown)."""
        async with asyncio.timeout(within_s):
            while True:
                pending = [t for t in self._tasks.values() if not t.done()]
                if not pending:
                    return
                await asyncio.wait(pending)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._tasks.values())
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._tasks.clear()
