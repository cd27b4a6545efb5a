"""OHLCV series as numpy arrays: what indicators and signals read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class OHLCV:
    """Candles of one symbol and timeframe, oldest first. Arrays may be views (never written through)."""

    open_time: np.ndarray  # int64, ms UTC
    open: np.ndarray  # float64
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return int(self.close.shape[0])

    def tail(self, n: int) -> OHLCV:
        if n >= len(self):
            return self
        s = slice(len(self) - n, None)
        return OHLCV(self.open_time[s], self.open[s], self.high[s], self.low[s], self.close[s], self.volume[s])

    def upto(self, end: int) -> OHLCV:
        """The first ``end`` candles (a view)."""
        s = slice(0, end)
        return OHLCV(self.open_time[s], self.open[s], self.high[s], self.low[s], self.close[s], self.volume[s])

    @staticmethod
    def empty() -> OHLCV:
        f = np.empty(0, dtype=np.float64)
        return OHLCV(np.empty(0, dtype=np.int64), f, f, f, f, f)

    @staticmethod
    def from_rows(rows: list[tuple[int, float, float, float, float, float]]) -> OHLCV:
        if not rows:
            return OHLCV.empty()
        arr = np.asarray(rows, dtype=np.float64)
        return OHLCV(
            arr[:, 0].astype(np.int64),
            arr[:, 1].copy(),
            arr[:, 2].copy(),
            arr[:, 3].copy(),
            arr[:, 4].copy(),
            arr[:, 5].copy(),
        )


TIMEFRAME_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 180_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "1d": 86_400_000,
}
