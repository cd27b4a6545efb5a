"""Indicators of SPEC 1 on the tail of a series (pure; numpy only).

Conventions used throughout:

- Series are numpy arrays, oldest first. A *tail of m* is an indicator's
  value at the last ``m`` bars, oldest first and always ``m`` long: a bar that
  does not exist or lacks data (e.g. MA480 over 300 candles) holds NaN.
- Only the closes a tail needs are read (MA480 over 151 bars reads the last
  630 closes), with one prefix sum per series, so nothing walks whole
  histories bar by bar.
- Any comparison that meets NaN is false, so a condition lacking candles is
  false, never an error.
- Ties: MAs and bands are sums of floats, so two values that are equal in
  exact arithmetic (a flat market, prices toggling between two ticks) can
  differ in the last bits depending on the summation order. Comparisons of
  computed values therefore treat a difference within ``TIE_TOLERANCE`` of
  the right-hand side as equality (``a > b`` means ``a - b > 1e-10 * |b|``);
  for dimensionless ratios against a threshold (disparity <= 2%, rise >= 3%)
  the same 1e-10 is absolute, so a disparity of two equal prices is 0 even
  when they differ by rounding. That is far below one tick of any listed
  price and far above float noise, so a rounding artefact can never
  fabricate (or hide) a cross.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

Mask = npt.NDArray[np.bool_]

TIE_TOLERANCE = 1e-10
_STD_BUDGET = TIE_TOLERANCE / 100  # largest error allowed on k * std, relative to the MA
_EPS = float(np.finfo(np.float64).eps)
_EPS_WIDE = float(np.finfo(np.longdouble).eps)  # 80-bit on x86-64 Linux; equals _EPS where there is none
_DIRECT_WINDOWS = 8  # up to this many windows, the exact two-pass std is also the cheapest
_NAN = float("nan")


# ------------------------------------------------------------------ tolerant comparisons
def gt(a: float, b: float) -> bool:
    """``a > b`` beyond rounding noise; false on NaN."""
    return a - b > TIE_TOLERANCE * abs(b)


def lt(a: float, b: float) -> bool:
    """``a < b`` beyond rounding noise; false on NaN."""
    return b - a > TIE_TOLERANCE * abs(b)


def ge(a: float, b: float) -> bool:
    """``a >= b`` up to rounding noise (the negation of ``lt`` for numbers); false on NaN."""
    return b - a <= TIE_TOLERANCE * abs(b)


def le(a: float, b: float) -> bool:
    """``a <= b`` up to rounding noise (the negation of ``gt`` for numbers); false on NaN."""
    return a - b <= TIE_TOLERANCE * abs(b)


def ratio_ge(r: float, threshold: float) -> bool:
    """Dimensionless ``r >= threshold`` up to rounding noise; false on NaN."""
    return threshold - r <= TIE_TOLERANCE


def ratio_le(r: float, threshold: float) -> bool:
    """Dimensionless ``r <= threshold`` up to rounding noise; false on NaN."""
    return r - threshold <= TIE_TOLERANCE


def gt_array(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> Mask:
    return (a - b) > TIE_TOLERANCE * np.abs(b)


def lt_array(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> Mask:
    return (b - a) > TIE_TOLERANCE * np.abs(b)


def ge_array(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> Mask:
    return (b - a) <= TIE_TOLERANCE * np.abs(b)


def le_array(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> Mask:
    return (a - b) <= TIE_TOLERANCE * np.abs(b)


# ------------------------------------------------------------------ scalar helpers
def disparity(a: float, b: float) -> float:
    """SPEC 1 ``disp(a, b) = |a - b| / b``; NaN when b is not a positive number."""
    if not b > 0:
        return _NAN
    return abs(a - b) / b


def spread(a: float, b: float) -> float:
    """Signed ``(a - b) / b``; NaN when b is not a positive number."""
    if not b > 0:
        return _NAN
    return (a - b) / b


# ------------------------------------------------------------------ moving averages and bands
def _windows(seg: np.ndarray, n: int) -> np.ndarray:
    """Read-only view of every run of n consecutive values of ``seg``, one per row (no copy).

    What ``sliding_window_view`` gives, without its argument checks, which cost
    more than the arithmetic on a look-back of a few hundred bars.
    """
    seg = np.ascontiguousarray(seg, dtype=np.float64)
    step = seg.strides[0]
    view = np.ndarray((seg.shape[0] - n + 1, n), dtype=np.float64, buffer=seg, strides=(step, step))
    view.flags.writeable = False
    return view


class Bands(NamedTuple):
    mid: np.ndarray
    upper: np.ndarray
    lower: np.ndarray


class RollingCloses:
    """The last ``span`` closes of a series and their prefix sums.

    Every MA tail of the series then costs one subtraction, and the MAs of
    one timeframe are computed from the same sums (so MA80 in M1 and MA80 in
    M4 are the very same numbers). The sums are taken relative to the newest
    close, which keeps them small: a window that is flat at the newest close
    sums to exactly zero, whatever came before it.
    """

    __slots__ = ("_csum", "_shift", "_size", "_truncated", "_wide", "_x")

    def __init__(self, close: np.ndarray, span: int) -> None:
        if span < 1:
            raise ValueError(f"span must be >= 1, got {span}")
        total = int(close.shape[0])
        self._truncated = total > span
        self._x = close[total - span :] if self._truncated else close
        self._size = int(self._x.shape[0])
        self._shift = float(self._x[-1]) if self._size else 0.0
        self._csum = np.empty(self._size + 1, dtype=np.float64)
        self._csum[0] = 0.0
        np.cumsum(self._x - self._shift, out=self._csum[1:])
        self._wide: tuple[np.ndarray, np.ndarray, float, float, float] | None = None  # for bands, on demand

    def _available(self, n: int, m: int) -> int:
        """How many of the last m bars have a full window of n closes."""
        if n < 1 or m < 1:
            raise ValueError(f"window and tail length must be >= 1, got n={n}, m={m}")
        if self._truncated and n + m - 1 > self._size:
            raise ValueError(f"a tail of {self._size} closes cannot give MA({n}) over {m} bars")
        return max(0, min(m, self._size - n + 1))

    def sma(self, n: int, m: int = 1) -> np.ndarray:
        """MA(n) of close at the last m bars (NaN where fewer than n closes exist)."""
        k = self._available(n, m)
        c, size = self._csum, self._size
        if k == m:
            return (c[size - k + 1 :] - c[size - k + 1 - n : size + 1 - n]) / n + self._shift
        out = np.full(m, np.nan)
        if k:
            out[m - k :] = (c[size - k + 1 :] - c[size - k + 1 - n : size + 1 - n]) / n + self._shift
        return out

    def _wide_sums(self) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        """Prefix sums of deviations and of their squares in extended precision, and their totals (built once)."""
        if self._wide is None:
            dev = self._x.astype(np.longdouble) - np.longdouble(self._shift)
            c = np.zeros(self._size + 1, dtype=np.longdouble)
            q = np.zeros(self._size + 1, dtype=np.longdouble)
            np.cumsum(dev, out=c[1:])
            np.cumsum(dev * dev, out=q[1:])
            absdev = np.abs(dev)
            self._wide = (c, q, float(absdev.sum()), float(q[-1]), float(absdev.max()) if self._size else 0.0)
        return self._wide

    def _std_exact(self, n: int, mid: np.ndarray, rows: np.ndarray | None, k: int) -> np.ndarray:
        """Centred two-pass std of the last k windows (or of the given rows among them)."""
        windows = _windows(self._x[self._size - (n + k - 1) :], n)
        if rows is not None:
            windows, mid = windows[rows], mid[rows]
        dev = windows - mid[:, None]
        squares: np.ndarray = np.einsum("ij,ij->i", dev, dev)  # einsum's stubs return Any
        return np.sqrt(squares / n)

    def _std(self, n: int, mid: np.ndarray, k: int, width: float) -> np.ndarray:
        """Population std of the last k windows of n closes (``mid`` = their MAs).

        A few windows are computed exactly (centred two-pass). Many windows (a
        look-back) come from prefix sums in extended precision; that formula
        cancels digits when a window is much quieter than the tail's distance
        to the newest close (a flat stretch), so a worst-case error bound is
        applied, and every window where ``width * std`` could be off by more
        than ``_STD_BUDGET`` of the price is recomputed exactly. The result is
        as good as the two-pass everywhere, at prefix-sum cost except in flat
        markets.
        """
        if k <= _DIRECT_WINDOWS:
            return self._std_exact(n, mid, None, k)
        c, q, abs_total, sq_total, max_abs = self._wide_sums()
        size = self._size
        hi, lo = slice(size - k + 1, size + 1), slice(size - k + 1 - n, size + 1 - n)
        mean_dev = (c[hi] - c[lo]) / n
        var = ((q[hi] - q[lo]) / n - mean_dev * mean_dev).astype(np.float64)
        std: np.ndarray = np.sqrt(np.maximum(var, 0.0))
        # One bound for all windows: recursive summation of `size` terms errs by at most
        # size * eps of the running totals, plus the rounding of the last steps.
        err = 2 * (size + 2) * _EPS_WIDE / n * (sq_total + 2 * max_abs * abs_total)
        err += 4 * _EPS_WIDE * sq_total / n + 8 * _EPS * max_abs * max_abs
        # |std error| <= err / std: doubtful where width * err / std exceeds the budget.
        doubtful = std * (_STD_BUDGET * np.abs(mid)) < width * err
        if doubtful.any():
            rows = np.flatnonzero(doubtful)
            std[rows] = self._std_exact(n, mid, rows, k)
        return std

    def upper_band(self, n: int, k: float, m: int = 1) -> np.ndarray:
        """Upper Bollinger band BB(n, k) = MA(n) + k * std (ddof=0) at the last m bars."""
        avail = self._available(n, m)
        mid = self.sma(n, m)
        out = np.full(m, np.nan)
        if avail:
            tail = mid[m - avail :]
            out[m - avail :] = tail + k * self._std(n, tail, avail, k)
        return out

    def bands(self, n: int, k: float, m: int = 1) -> Bands:
        """BB(n, k): middle (MA), upper and lower band at the last m bars."""
        avail = self._available(n, m)
        mid = self.sma(n, m)
        width = np.full(m, np.nan)
        if avail:
            tail = mid[m - avail :]
            width[m - avail :] = k * self._std(n, tail, avail, k)
        return Bands(mid, mid + width, mid - width)


def sma_tail(close: np.ndarray, n: int, m: int = 1) -> np.ndarray:
    """MA(n) of ``close`` at its last m bars, oldest first, NaN where not computable."""
    return RollingCloses(close, n + m - 1).sma(n, m)


def bollinger_tail(close: np.ndarray, n: int, k: float, m: int = 1) -> Bands:
    """BB(n, k) with population std (ddof=0) at the last m bars, NaN where not computable."""
    return RollingCloses(close, n + m - 1).bands(n, k, m)


# ------------------------------------------------------------------ crosses and trends
def cross_up_bars_ago(a: np.ndarray, b: np.ndarray) -> int | None:
    """Bars ago (0 = newest) of the newest golden cross of a over b in these tails, else None.

    ``a`` and ``b`` are tails of the same length ending at the newest bar; a
    cross at bar i needs ``a[i-1] <= b[i-1] and a[i] > b[i]``, so tails of
    N + 1 values answer "golden cross within N bars".
    """
    hits = np.flatnonzero(le_array(a[:-1], b[:-1]) & gt_array(a[1:], b[1:]))
    return None if hits.size == 0 else int(a.shape[0] - 2 - hits[-1])


def cross_down_bars_ago(a: np.ndarray, b: np.ndarray) -> int | None:
    """Bars ago of the newest dead cross of a under b (``a[i-1] >= b[i-1] and a[i] < b[i]``), else None."""
    hits = np.flatnonzero(ge_array(a[:-1], b[:-1]) & lt_array(a[1:], b[1:]))
    return None if hits.size == 0 else int(a.shape[0] - 2 - hits[-1])


def falling_each(tail: np.ndarray) -> bool:
    """True when every value of the tail is below the one before (``x[-1] < x[-2] < ...``); NaN gives False."""
    if tail.shape[0] < 2:
        return False
    return bool(np.all(lt_array(tail[1:], tail[:-1])))
