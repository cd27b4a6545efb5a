"""Minute-by-minute replay of 1m candles of many symbols (candle files or the synthetic market).

``step()`` plays the next minute synchronously and returns its events, in time
order across symbols. For every symbol with a candle at that minute ``T``:

=========================  ==================  ======================================
event                      ``event_time``      price
=========================  ==================  ======================================
``PriceEvent`` (last)      ``T``               open
``PriceEvent`` (last)      ``T + 20 s``        the nearer of high/low to the open
``PriceEvent`` (last)      ``T + 40 s``        the other extreme
``PriceEvent`` (last)      ``T + 59.999 s``    close
``KlineEvent`` (closed)    ``T + 59.999 s``    the whole candle
=========================  ==================  ======================================

When high and low are equally far from the open, the low comes first (the
conservative order for a long-only book). In the simulator the mark price is
the last price, so only "last" events are produced and the broker treats them
as both. With a broker attached, each price goes to the broker *before* it is
appended to the events: exchange-side stops fire before the engine sees the
price, as on the real exchange.

History for backfill (``klines``, ``frame``, ``tickers_24h``) only ever uses
minutes already played: strictly before ``cursor_ms``. Higher timeframes are
aggregated from 1m on Binance's grid (UTC, epoch-aligned; days start at 00:00
UTC) and the newest one is the bucket in progress (``closed=False``).

A fresh replay starts after a 7-day warm-up, enough for every signal (15m
MA480 plus 150 bars of look-back is ~6.6 days; M6 wants 7 daily candles), so
the engine can backfill and trade at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import numpy as np

from trading.candle_files import find_candle_files, read_candles
from trading.core.models import SymbolRules
from trading.core.series import OHLCV, TIMEFRAME_MS
from trading.exchange.base import Kline, KlineEvent, Market, PriceEvent, Ticker24h
from trading.exchange.synthetic import (
    DAY_MS,
    MINUTE_MS,
    WARMUP_DAYS,
    SyntheticMarket,
    decimal_places,
    step_for,
    tick_for,
)

WARMUP_MS = WARMUP_DAYS * DAY_MS
PRICE_OFFSETS_MS = (0, 20_000, 40_000, 59_999)  # open, nearer extreme, other extreme, close
KLINE_EVENT_OFFSET_MS = 59_999
MAX_KLINES_LIMIT = 1500  # Binance USD-M /fapi/v1/klines
SYNTHETIC_KEEP_MS = 10 * DAY_MS  # synthetic history kept behind the cursor (backfill needs ~8 days; it runs forever)
_WINDOW = 120  # candles converted to Python values at a time for step() (memory: 150 symbols x this)


class PriceSink(Protocol):
    def on_price(self, symbol: str, price: str, ts_ms: int) -> None: ...


def min_notional_for(symbol: str) -> Decimal:
    """Binance's minimum notional: 100 USDT on BTCUSDT, 20 on ETHUSDT, 5 on most others."""
    return {"BTCUSDT": Decimal(100), "ETHUSDT": Decimal(20)}.get(symbol, Decimal(5))


def _decimals_of(values: np.ndarray, max_decimals: int = 10) -> int:
    """The fewest decimals that write every value exactly (float noise aside)."""
    sample = values[:: max(1, values.shape[0] // 5000)]
    for d in range(max_decimals + 1):
        scaled = sample * 10.0**d
        if np.all(np.abs(scaled - np.rint(scaled)) <= 1e-6 * np.maximum(1.0, np.abs(scaled)) + 1e-9):
            return d
    return max_decimals


def file_market(symbol: str, candles: OHLCV) -> Market:
    """Trading rules for a symbol known only from its candles: tick from the price magnitude, fine enough for
    every price in the file; step worth about 1 USDT; Binance's min notional."""
    ref = float(np.median(candles.close)) if len(candles) else 1.0
    ref = ref if ref > 0 else 1.0
    decimals = max(decimal_places(tick_for(ref)), _decimals_of(candles.close), _decimals_of(candles.low))
    tick = Decimal(f"{10.0**-decimals:.{decimals}f}") if decimals > 0 else Decimal(1)  # "0.01", not "1E-2"
    step = step_for(ref)
    quote = "USDT" if symbol.endswith("USDT") else symbol[-4:]
    rules = SymbolRules(symbol, tick, step, step, min_notional_for(symbol))
    max_lev = 125 if symbol in ("BTCUSDT", "ETHUSDT") else 50
    return Market(symbol, symbol.removesuffix(quote), quote, "TRADING", rules, max_leverage=max_lev)


class _Symbol:
    """One symbol's 1m candles and its play position."""

    __slots__ = ("c", "decimals", "h", "l", "market", "next_t", "o", "played", "symbol", "t", "v", "win", "win_start")

    def __init__(self, market: Market, candles: OHLCV) -> None:
        self.market = market
        self.symbol = market.symbol
        self.decimals = decimal_places(market.rules.tick_size.normalize())
        self.t = candles.open_time.astype(np.int64, copy=False)
        self.o, self.h, self.l, self.c, self.v = candles.open, candles.high, candles.low, candles.close, candles.volume
        self.played = 0
        self.next_t: int | None = None
        self.win: list[tuple[int, float, float, float, float, float]] = []
        self.win_start = 0

    def seek(self, cursor_ms: int) -> None:
        self.played = int(np.searchsorted(self.t, cursor_ms))
        self._refresh()

    def _refresh(self) -> None:
        self.next_t = int(self.t[self.played]) if self.played < self.t.shape[0] else None
        self.win = []
        self.win_start = self.played

    def append(self, candles: OHLCV, keep_from_ms: int | None) -> None:
        t = np.concatenate([self.t, candles.open_time])
        arrays = [
            np.concatenate([a, b])
            for a, b in zip(
                (self.o, self.h, self.l, self.c, self.v),
                (candles.open, candles.high, candles.low, candles.close, candles.volume),
                strict=True,
            )
        ]
        drop = int(np.searchsorted(t, keep_from_ms)) if keep_from_ms is not None else 0
        drop = min(drop, self.played)
        self.t = t[drop:]
        self.o, self.h, self.l, self.c, self.v = (a[drop:] for a in arrays)
        self.played -= drop
        self._refresh()

    def row(self) -> tuple[int, float, float, float, float, float]:
        i = self.played - self.win_start
        if i >= len(self.win):
            a, b = self.played, self.played + _WINDOW
            self.win = list(
                zip(
                    self.t[a:b].tolist(),
                    self.o[a:b].tolist(),
                    self.h[a:b].tolist(),
                    self.l[a:b].tolist(),
                    self.c[a:b].tolist(),
                    self.v[a:b].tolist(),
                    strict=True,
                )
            )
            self.win_start = a
            i = 0
        return self.win[i]

    def advance(self) -> None:
        self.played += 1
        self.next_t = int(self.t[self.played]) if self.played < self.t.shape[0] else None

    def history(self) -> OHLCV:
        n = self.played
        return OHLCV(self.t[:n], self.o[:n], self.h[:n], self.l[:n], self.c[:n], self.v[:n])


def aggregate(candles: OHLCV, tf_ms: int) -> OHLCV:
    """1m candles -> ``tf_ms`` candles on Binance's epoch-aligned grid (the last one may be partial)."""
    n = len(candles)
    if n == 0 or tf_ms == MINUTE_MS:
        return candles
    bucket = candles.open_time - candles.open_time % tf_ms
    starts = np.flatnonzero(np.diff(bucket)) + 1
    firsts = np.concatenate([[0], starts])
    lasts = np.concatenate([starts - 1, [n - 1]])
    return OHLCV(
        bucket[firsts],
        candles.open[firsts],
        np.maximum.reduceat(candles.high, firsts),
        np.minimum.reduceat(candles.low, firsts),
        candles.close[lasts],
        np.add.reduceat(candles.volume, firsts),
    )


def _slice(c: OHLCV, a: int, b: int) -> OHLCV:
    return OHLCV(c.open_time[a:b], c.open[a:b], c.high[a:b], c.low[a:b], c.close[a:b], c.volume[a:b])


class MarketReplay:
    """Plays 1m candles of many symbols minute by minute; serves the history already played."""

    def __init__(
        self,
        data: Mapping[str, tuple[Market, OHLCV]],
        *,
        start_ms: int | None = None,
        warmup_ms: int = WARMUP_MS,
        broker: PriceSink | None = None,
        extend: Callable[[], Mapping[str, OHLCV] | None] | None = None,
        keep_ms: int | None = None,
        source: str = "data",
    ) -> None:
        if not data:
            raise ValueError("a replay needs at least one symbol")
        self.source = source
        self.broker = broker
        self._extend = extend
        self._keep_ms = keep_ms
        self._syms = [_Symbol(m, c) for m, c in data.values()]
        self._by_name = {s.symbol: s for s in self._syms}
        firsts = [int(s.t[0]) for s in self._syms if s.t.shape[0]]
        if not firsts:
            raise ValueError("the replay's data holds no candles")
        origin = min(firsts)
        cursor = origin + warmup_ms if start_ms is None else int(start_ms)
        self.cursor_ms = cursor - cursor % MINUTE_MS
        self._ensure_data(self.cursor_ms)
        for s in self._syms:
            s.seek(self.cursor_ms)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_files(
        cls,
        directory: Path,
        symbols: Iterable[str] | None = None,
        *,
        start_ms: int | None = None,
        max_symbols: int | None = None,
        broker: PriceSink | None = None,
    ) -> MarketReplay:
        """Candle files ``DIR/SYMBOL-1m.csv[.gz]``: every file, or the ``symbols`` asked (in name order)."""
        files = find_candle_files(Path(directory))
        if symbols is not None:
            wanted = [s.strip().upper() for s in symbols]
            missing = [s for s in wanted if s not in files]
            if missing:
                raise ValueError(f"no candle file for {', '.join(missing)} in {directory}")
            files = {s: files[s] for s in wanted}
        names = sorted(files)[:max_symbols] if max_symbols else sorted(files)
        if not names:
            raise ValueError(f"no SYMBOL-1m.csv[.gz] candle files in {directory}")
        data = {}
        for name in names:
            candles = read_candles(files[name])
            if len(candles):
                data[name] = (file_market(name, candles), candles)
        return cls(data, start_ms=start_ms, broker=broker, source=f"files:{Path(directory).resolve()}")

    @classmethod
    def synthetic(
        cls,
        seed: int,
        n_symbols: int = 20,
        *,
        start_ms: int | None = None,
        broker: PriceSink | None = None,
        market: SyntheticMarket | None = None,
    ) -> MarketReplay:
        """The synthetic market of ``seed`` (generated a day at a time, without end)."""
        synth = market if market is not None else SyntheticMarket(seed, n_symbols)
        days = synth.days()

        def next_day() -> dict[str, OHLCV]:
            d = next(days)
            return {
                s.symbol: OHLCV(d.open_time, d.open[i], d.high[i], d.low[i], d.close[i], d.volume[i])
                for i, s in enumerate(synth.symbols)
            }

        first = next_day()
        markets = synth.markets()
        data = {name: (markets[name], candles) for name, candles in first.items()}
        replay = cls(
            data,
            start_ms=synth.replay_start_ms if start_ms is None else start_ms,
            warmup_ms=0,
            broker=broker,
            extend=next_day,
            keep_ms=SYNTHETIC_KEEP_MS,
            source=f"synthetic:seed={synth.seed}",
        )
        replay.synthetic_market = synth
        return replay

    synthetic_market: SyntheticMarket | None = None

    # ------------------------------------------------------------------ playing
    @property
    def now_ms(self) -> int:
        """Simulated time: the end of the minute played last (= the open of the next one)."""
        return self.cursor_ms

    @property
    def symbols(self) -> list[str]:
        return [s.symbol for s in self._syms]

    def _ensure_data(self, until_ms: int) -> None:
        """Generated sources: extend until every symbol has data past ``until_ms``."""
        if self._extend is None:
            return
        while any(s.t.shape[0] == 0 or int(s.t[-1]) < until_ms for s in self._syms):
            more = self._extend()
            if more is None:
                self._extend = None
                return
            keep_from = until_ms - self._keep_ms if self._keep_ms is not None else None
            for s in self._syms:
                if s.symbol in more:
                    s.append(more[s.symbol], keep_from)

    def step(self) -> list[PriceEvent | KlineEvent] | None:
        """Play the next minute that has data; None when every symbol's data has been played."""
        if self._extend is not None and any(s.next_t is None for s in self._syms):
            self._ensure_data(self.cursor_ms)
        times = [s.next_t for s in self._syms if s.next_t is not None]
        if not times:
            return None
        t0 = min(times)
        active = [s for s in self._syms if s.next_t == t0]
        broker = self.broker
        paths: list[tuple[str, tuple[str, str, str, str]]] = []
        klines: list[KlineEvent] = []
        for s in active:
            t, o, h, lo, c, v = s.row()
            d = s.decimals
            first, second = (h, lo) if h - o < o - lo else (lo, h)
            paths.append((s.symbol, (f"{o:.{d}f}", f"{first:.{d}f}", f"{second:.{d}f}", f"{c:.{d}f}")))
            klines.append(KlineEvent(s.symbol, "1m", Kline(t, o, h, lo, c, v, True), t + KLINE_EVENT_OFFSET_MS))
            s.advance()
        events: list[PriceEvent | KlineEvent] = []
        for k, offset in enumerate(PRICE_OFFSETS_MS):
            ts = t0 + offset
            for symbol, prices in paths:
                p = prices[k]
                if broker is not None:
                    broker.on_price(symbol, p, ts)
                events.append(PriceEvent(symbol, p, ts, "last"))
        events.extend(klines)
        self.cursor_ms = t0 + MINUTE_MS
        return events

    def step_split(
        self, awake: AbstractSet[str], may_signal: Mapping[str, np.ndarray]
    ) -> tuple[list[PriceEvent], list[tuple[str, str]], list[tuple[KlineEvent, bool]]] | None:
        """``step()`` for a replay that skips quiet symbols (the backtest's fast path; no broker attached).

        A symbol is awake at this minute when it is in ``awake`` (held, or with orders at the broker) or when
        its ``may_signal`` mask (one flag per candle, aligned with its data) is set at this candle. Returns the
        price events of the awake symbols only, in ``step()``'s order; the close of each quiet symbol (its last
        price, as ``step()`` writes it); and every closed candle in ``step()``'s order, each with its awake
        flag. None when every symbol's data has been played.
        """
        if self.broker is not None or self._extend is not None:
            raise RuntimeError("step_split needs a file replay without a broker attached")
        times = [s.next_t for s in self._syms if s.next_t is not None]
        if not times:
            return None
        t0 = min(times)
        paths: list[tuple[str, tuple[str, str, str, str]]] = []
        closes: list[tuple[str, str]] = []
        klines: list[tuple[KlineEvent, bool]] = []
        for s in self._syms:
            if s.next_t != t0:
                continue
            mask = may_signal.get(s.symbol)
            up = s.symbol in awake or (mask is not None and bool(mask[s.played]))
            t, o, h, lo, c, v = s.row()
            d = s.decimals
            if up:
                first, second = (h, lo) if h - o < o - lo else (lo, h)
                paths.append((s.symbol, (f"{o:.{d}f}", f"{first:.{d}f}", f"{second:.{d}f}", f"{c:.{d}f}")))
            else:
                closes.append((s.symbol, f"{c:.{d}f}"))
            klines.append((KlineEvent(s.symbol, "1m", Kline(t, o, h, lo, c, v, True), t + KLINE_EVENT_OFFSET_MS), up))
            s.advance()
        prices = [
            PriceEvent(symbol, p[k], t0 + offset, "last")
            for k, offset in enumerate(PRICE_OFFSETS_MS)
            for symbol, p in paths
        ]
        self.cursor_ms = t0 + MINUTE_MS
        return prices, closes, klines

    def ended(self, symbol: str) -> bool:
        """Every candle of ``symbol`` has been played (file data: it will have no more)."""
        return self._extend is None and self._sym(symbol).next_t is None

    def seek(self, cursor_ms: int) -> None:
        """Jump (forwards or backwards) to a cursor: what has been played is what lies before it."""
        self.cursor_ms = cursor_ms - cursor_ms % MINUTE_MS
        self._ensure_data(self.cursor_ms)
        for s in self._syms:
            s.seek(self.cursor_ms)

    # ------------------------------------------------------------------ history (before the cursor)
    def _sym(self, symbol: str) -> _Symbol:
        s = self._by_name.get(symbol)
        if s is None:
            raise KeyError(f"unknown symbol {symbol!r}")
        return s

    def history(self, symbol: str) -> OHLCV:
        """Every 1m candle of ``symbol`` played so far (views; do not write)."""
        return self._sym(symbol).history()

    def frame(self, symbol: str, interval: str, bars: int) -> OHLCV:
        """The last ``bars`` candles of ``interval`` ending with the bucket of the last played minute."""
        tf = _tf(interval)
        hist = self._sym(symbol).history()
        n = len(hist)
        if n == 0 or bars <= 0:
            return OHLCV.empty()
        if tf == MINUTE_MS:
            return _slice(hist, max(0, n - bars), n)
        last = int(hist.open_time[-1])
        first_bucket = last - last % tf - (bars - 1) * tf
        a = int(np.searchsorted(hist.open_time, first_bucket))
        return aggregate(_slice(hist, a, n), tf)

    def klines(
        self, symbol: str, interval: str, start_ms: int | None = None, end_ms: int | None = None, limit: int = 500
    ) -> list[Kline]:
        """Binance's ``/fapi/v1/klines`` over the played history: open time in [start, end], at most ``limit``,
        oldest first (the newest ``limit`` when no start is given)."""
        tf = _tf(interval)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_KLINES_LIMIT:
            raise ValueError(f"limit must be an integer in [1, {MAX_KLINES_LIMIT}], got {limit!r}")
        if start_ms is not None and end_ms is not None and start_ms > end_ms:
            raise ValueError(f"startTime {start_ms} is after endTime {end_ms}")
        hist = self._sym(symbol).history()
        t = hist.open_time
        n = len(hist)
        hi = n
        if end_ms is not None:
            hi = int(np.searchsorted(t, end_ms - end_ms % tf + tf))
        if start_ms is not None:
            lo_bucket = -(-start_ms // tf) * tf  # the first bucket opening at or after start
            a = int(np.searchsorted(t, lo_bucket))
            b = min(hi, int(np.searchsorted(t, lo_bucket + limit * tf)))
            agg = aggregate(_slice(hist, a, b), tf) if b > a else OHLCV.empty()
            agg = _slice(agg, 0, min(limit, len(agg)))
        else:
            if hi == 0:
                return []
            last = int(t[hi - 1])
            a = int(np.searchsorted(t, last - last % tf - (limit - 1) * tf))
            agg = aggregate(_slice(hist, a, hi), tf)
            agg = _slice(agg, max(0, len(agg) - limit), len(agg))
        cursor = self.cursor_ms
        return [
            Kline(ot, o, h, lo, c, v, ot + tf <= cursor)
            for ot, o, h, lo, c, v in zip(
                agg.open_time.tolist(),
                agg.open.tolist(),
                agg.high.tolist(),
                agg.low.tolist(),
                agg.close.tolist(),
                agg.volume.tolist(),
                strict=True,
            )
        ]

    def tickers_24h(self) -> list[Ticker24h]:
        """Per symbol with history: last close, quote volume = sum(close x volume) of the last 1,440 minutes."""
        out = []
        since = self.cursor_ms - DAY_MS
        for s in self._syms:
            n = s.played
            if n == 0:
                continue
            a = int(np.searchsorted(s.t[:n], since))
            last = float(s.c[n - 1])
            if a < n:
                qv = float(np.dot(s.c[a:n], s.v[a:n]))
                first_open = float(s.o[a])
            else:
                qv, first_open = 0.0, last
            pct = (last / first_open - 1.0) * 100.0 if first_open > 0 else 0.0
            out.append(Ticker24h(s.symbol, last, qv, pct))
        return out

    def last_price(self, symbol: str) -> float | None:
        s = self._sym(symbol)
        return float(s.c[s.played - 1]) if s.played else None

    def markets(self) -> dict[str, Market]:
        """Every symbol; TRADING while its data covers the cursor, PENDING_TRADING before, CLOSE after."""
        out = {}
        for s in self._syms:
            status = "TRADING"
            if self._extend is None and s.t.shape[0]:
                if int(s.t[0]) > self.cursor_ms:
                    status = "PENDING_TRADING"
                elif s.next_t is None and int(s.t[-1]) + MINUTE_MS < self.cursor_ms:
                    status = "CLOSE"
            m = s.market
            out[s.symbol] = (
                m
                if m.status == status
                else Market(m.symbol, m.base, m.quote, status, m.rules, m.max_leverage, m.brackets)
            )
        return out


def _tf(interval: str) -> int:
    tf = TIMEFRAME_MS.get(interval)
    if tf is None:
        raise ValueError(f"interval must be one of {', '.join(TIMEFRAME_MS)}, got {interval!r}")
    return tf


__all__ = [
    "KLINE_EVENT_OFFSET_MS",
    "PRICE_OFFSETS_MS",
    "WARMUP_MS",
    "MarketReplay",
    "PriceSink",
    "aggregate",
    "file_market",
    "min_notional_for",
]
