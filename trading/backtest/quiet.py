"""Where nothing can happen: the 1h pre-filter (SPEC 2) and the 15m filter (SPEC 3) over a symbol's whole
history at once.

The backtest's fast path replays a symbol through the engine only at the minutes where the scanner could
see an entry signal, or while something is held or resting at the broker for it. An entry needs the 1h
pre-filter to pass and the 15m filter to pass (at least ``min_15m_conditions`` of F1-F4). At the close of
minute ``i`` both read nothing but the candles that end with the hour (the quarter hour) containing ``i``,
the one in progress built from the 1m candles up to ``i``. This module computes, vectorised over every
minute of the data, a flag that is False only where the two cannot both pass at that minute.

The flag errs on the side of True, never the other way: every comparison the scanner makes within
rounding noise (``indicators.TIE_TOLERANCE``) is made here with a far wider margin, and a minute with a gap
in the day before it is always flagged. A minute flagged True is simply evaluated by the engine as usual,
so a wide margin costs a little speed and never a decision. The scanner may hold fewer 1h candles than the
data (a symbol that joined the universe late): fewer candles can only make its pre-filter false.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from trading.core.config import SignalParams
from trading.core.series import OHLCV

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
DAY_MS = 86_400_000
QUARTER_MS = 900_000
RATIO_MARGIN = 1e-9  # absolute, on rises (the scanner's own tolerance is 1e-10)
VOLUME_MARGIN = 1e-6  # relative, on the volume means (the scanner's own tolerance is 1e-10)
MA_MARGIN = 1e-7  # relative to the price, on moving averages and disparities (their rounding: ~1e-13)
BAND_MARGIN = 1e-6  # relative to the price, on Bollinger bands (a flat window's std from sums: ~1e-8)

_cache: dict[tuple[int, tuple[object, ...]], tuple[OHLCV, np.ndarray]] = {}
_CACHE_LIMIT = 4_096


def prefilter_key(p: SignalParams) -> tuple[object, ...]:
    """The parameters the pre-filter reads (configs that differ elsewhere share their flags)."""
    return (p.prefilter_bars, p.prefilter_high_pct, p.prefilter_volume_ratio, p.prefilter_volume_lookback,
            p.prefilter_min_bullish, p.ma_fast, p.ma_short, p.ma_mid, p.ma_long, p.bb_fast_n, p.bb_fast_k,
            p.bb_slow_n, p.bb_slow_k, p.f1_max_disp, p.f2_max_disp, p.f4_falling_bars,
            p.min_15m_conditions)  # fmt: skip


def may_signal(candles: OHLCV, p: SignalParams) -> np.ndarray:
    """One flag per 1m candle: False where no entry signal is possible at that candle's close."""
    out = may_pass_prefilter(candles, p)
    if out.any():
        out &= may_pass_15m(candles, p)
    return _flag_gaps(candles, out)


def may_pass_prefilter(candles: OHLCV, p: SignalParams) -> np.ndarray:
    """One flag per 1m candle: False where the 1h pre-filter cannot pass at that candle's close."""
    n = len(candles)
    out = np.ones(n, dtype=bool)
    if n == 0:
        return out
    nb, lb = p.prefilter_bars, p.prefilter_volume_lookback
    t = candles.open_time.astype(np.int64)
    bucket = t - t % HOUR_MS
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    nbk = starts.shape[0]
    k_of = np.cumsum(np.r_[False, bucket[1:] != bucket[:-1]])  # bucket index of every minute
    pos = (t % HOUR_MS) // MINUTE_MS

    # Minute-of-hour grid: running high, running volume (summed in time order, as the candle store does).
    grid_h = np.full((nbk, 60), -np.inf)
    grid_v = np.zeros((nbk, 60))
    grid_h[k_of, pos] = candles.high
    grid_v[k_of, pos] = candles.volume
    run_h = np.maximum.accumulate(grid_h, axis=1)[k_of, pos]
    run_v = np.cumsum(grid_v, axis=1)[k_of, pos]
    ends = np.r_[starts[1:], n] - 1
    o_k = candles.open[starts]
    h_k = np.maximum.reduceat(candles.high, starts)
    c_k = candles.close[ends]
    v_k = np.cumsum(grid_v, axis=1)[np.arange(nbk), pos[ends]]

    k = k_of
    o_now = o_k[k]
    with np.errstate(divide="ignore", invalid="ignore"):
        rise_k = np.where(o_k > 0, (h_k - o_k) / o_k, -np.inf)
        rise_now = np.where(o_now > 0, (run_h - o_now) / o_now, -np.inf)
    bull_k = (c_k > o_k).astype(np.int64)

    # H1 and H4 over the nb - 1 closed candles before the one in progress.
    prev_rise = np.full(nbk, -np.inf)
    prev_bull = np.zeros(nbk, dtype=np.int64)
    for back in range(1, nb):
        prev_rise[back:] = np.maximum(prev_rise[back:], rise_k[:-back])
        prev_bull[back:] += bull_k[:-back]
    enough = k >= nb - 1
    h1 = np.maximum(prev_rise[k], rise_now) >= p.prefilter_high_pct - RATIO_MARGIN
    first_open = o_k[np.maximum(k - (nb - 1), 0)]
    h2 = candles.close > first_open
    h4 = prev_bull[k] + (candles.close > o_now) >= p.prefilter_min_bullish

    # H3: mean volume of the last nb candles (the last in progress) against the lb before them.
    h3 = np.zeros(n, dtype=bool)
    if nbk >= nb + lb:
        csum = np.concatenate(([0.0], np.cumsum(v_k)))
        idx = np.arange(nbk)
        ok_k = idx >= nb + lb - 1
        # Window sums as differences of a running sum: their rounding error (about 1e-16 of the running total)
        # stays orders of magnitude below VOLUME_MARGIN.
        before = np.zeros(nbk)
        closed_now = np.zeros(nbk)
        kk = idx[ok_k]
        before[ok_k] = csum[kk - nb + 1] - csum[kk - nb - lb + 1]
        closed_now[ok_k] = csum[kk] - csum[kk - nb + 1]
        mean_before = before[k] / lb
        mean_now = (closed_now[k] + run_v) / nb
        h3 = ok_k[k] & (mean_now >= p.prefilter_volume_ratio * mean_before * (1 - VOLUME_MARGIN) - 1e-12)
    return enough & h1 & h2 & h3 & h4


def may_pass_15m(candles: OHLCV, p: SignalParams) -> np.ndarray:
    """One flag per 1m candle: False where fewer than ``min_15m_conditions`` of F1-F4 can hold at its close.

    The 15m closes at minute ``i`` are the closed quarters' closes and ``close[i]`` for the quarter in
    progress; every comparison below is the scanner's, loosened by ``MA_MARGIN`` / ``BAND_MARGIN``.
    """
    n = len(candles)
    t = candles.open_time.astype(np.int64)
    c = candles.close
    bucket = t - t % QUARTER_MS
    new = np.r_[True, bucket[1:] != bucket[:-1]]
    q = np.cumsum(new) - 1  # quarter index of every minute
    ends = np.r_[np.flatnonzero(new)[1:], n] - 1
    closed = c[ends]  # each quarter's close (the last one's is only used once it is closed)

    def ma(span: int) -> np.ndarray:
        """MA(span) of the 15m closes at every minute (NaN without ``span`` quarters)."""
        return _with_last(closed, q, c, span, squares=False)[0]

    def band(span: int, k: float) -> np.ndarray:
        mean, var = _with_last(closed, q, c, span, squares=True)
        return mean + k * np.sqrt(np.maximum(var, 0.0))

    price = np.abs(c)
    fast, mid, long_ = ma(p.ma_fast), ma(p.ma_mid), ma(p.ma_long)
    slack = MA_MARGIN * price
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = (mid - long_ > -slack) | (
            (long_ - mid > -slack) & (np.abs(mid - long_) / long_ - p.f1_max_disp <= MA_MARGIN * 10)
        )
        f2 = (fast - long_ > -slack) | (np.abs(fast - long_) / long_ - p.f2_max_disp <= MA_MARGIN * 10)
        f3 = band(p.bb_fast_n, p.bb_fast_k) - band(p.bb_slow_n, p.bb_slow_k) > -BAND_MARGIN * price
        # F4: MA(short) falling at each of the last f4_falling_bars bars; the older values are closed quarters'.
        short_now = ma(p.ma_short)
        short_closed = _closed_ma(closed, p.ma_short)  # at each closed quarter
        f4 = np.ones(n, dtype=bool)
        prev = short_now
        for back in range(1, p.f4_falling_bars + 1):
            idx = q - back
            older = np.where(idx >= 0, short_closed[np.maximum(idx, 0)], np.nan)
            f4 &= older - prev > -slack
            prev = older
    count = f1.astype(np.int64) + f2 + f3 + f4
    return count >= p.min_15m_conditions


def _closed_ma(x: np.ndarray, span: int) -> np.ndarray:
    """MA(span) of ``x`` at each index (NaN before ``span`` values)."""
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= span:
        out[span - 1 :] = np.lib.stride_tricks.sliding_window_view(x, span).mean(axis=1)
    return out


def _with_last(
    closed: np.ndarray, q: np.ndarray, last: np.ndarray, span: int, *, squares: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Mean (and population variance) of a window of ``span`` values per minute: the ``span - 1`` closed
    values before quarter ``q`` and ``last`` (the quarter in progress). NaN with fewer than ``span``.

    Sums are taken around each window's own newest closed value, so a quiet window keeps its digits
    wherever the price was before it."""
    nq = closed.shape[0]
    s1 = np.full(nq, np.nan)
    s2 = np.full(nq, np.nan)
    ref = np.zeros(nq)
    if span == 1:
        s1[:] = 0.0
        s2[:] = 0.0
    elif nq >= span:
        win = np.lib.stride_tricks.sliding_window_view(closed, span - 1)[: nq - span + 1]  # closed[q-span+1 .. q-1]
        r = win[:, -1]
        dev = win - r[:, None]
        ref[span - 1 :] = r
        s1[span - 1 :] = dev.sum(axis=1)
        if squares:
            s2[span - 1 :] = (dev * dev).sum(axis=1)
    d = last - ref[q]
    m = (s1[q] + d) / span
    mean = ref[q] + m
    var = (s2[q] + d * d) / span - m * m if squares else m * 0.0
    return mean, var


def _flag_gaps(candles: OHLCV, out: np.ndarray) -> np.ndarray:
    """A gap in the day before a minute: flag it (the candle store's view around a hole is not worth modelling)."""
    t = candles.open_time.astype(np.int64)
    for g in np.flatnonzero(np.diff(t) != MINUTE_MS):
        a = g + 1
        b = int(np.searchsorted(t, int(t[a]) + DAY_MS + HOUR_MS))
        out[a:b] = True
    return out


def may_signal_all(data: Mapping[str, OHLCV], p: SignalParams) -> dict[str, np.ndarray]:
    """``may_signal`` of every symbol. Cached per candle object (kept alive by the cache, so its identity is
    never reused) and pre-filter parameters: a sweep's runs over the same loaded data compute it once."""
    key_p = prefilter_key(p)
    out: dict[str, np.ndarray] = {}
    for symbol, candles in data.items():
        key = (id(candles), key_p)
        hit = _cache.get(key)
        if hit is None or hit[0] is not candles:
            if len(_cache) >= _CACHE_LIMIT:
                _cache.clear()
            hit = _cache[key] = (candles, may_signal(candles, p))
        out[symbol] = hit[1]
    return out
