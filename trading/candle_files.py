"""Candle files of ARCHITECTURE's format: ``DIR/SYMBOL-1m.csv`` or ``.csv.gz``.

Binance kline column order (open time ms, open, high, low, close, volume,
then anything), header row optional.
"""

from __future__ import annotations

import gzip
import io
import re
from pathlib import Path

import numpy as np

from trading.core.series import OHLCV

_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-1m\.csv(\.gz)?$")
HEADER = "open_time,open,high,low,close,volume"


class CandleFileError(ValueError):
    pass


def find_candle_files(directory: Path) -> dict[str, Path]:
    """Symbol -> file for every ``SYMBOL-1m.csv[.gz]`` in ``directory`` (plain csv wins over gz)."""
    found: dict[str, Path] = {}
    if not directory.is_dir():
        raise CandleFileError(f"{directory} is not a directory")
    for path in sorted(directory.iterdir()):
        m = _NAME.match(path.name)
        if m and (m.group("symbol") not in found or path.suffix == ".csv"):
            found[m.group("symbol")] = path
    return found


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def read_candles(path: Path) -> OHLCV:
    """All candles of one file, oldest first, duplicates (same open time) dropped."""
    import pandas as pd  # here: ~40 MB that a service on the synthetic market or on the exchange never needs

    with _open_text(path) as fh:
        first = fh.readline()
        has_header = bool(first) and not first.split(",")[0].strip().lstrip("-").isdigit()
    with _open_text(path) as fh:
        try:
            df = pd.read_csv(
                fh,
                header=None,
                skiprows=1 if has_header else 0,
                usecols=[0, 1, 2, 3, 4, 5],
                dtype={0: np.int64, 1: np.float64, 2: np.float64, 3: np.float64, 4: np.float64, 5: np.float64},
            )
        except (ValueError, pd.errors.ParserError) as exc:
            raise CandleFileError(f"{path}: not a kline CSV ({exc})") from exc
    if df.empty:
        return OHLCV.empty()
    arr = df.to_numpy()
    times = arr[:, 0].astype(np.int64)
    order = np.argsort(times, kind="stable")
    times = times[order]
    keep = np.ones(times.shape[0], dtype=bool)
    keep[1:] = times[1:] != times[:-1]
    idx = order[keep]
    return OHLCV(
        times[keep],
        arr[idx, 1].astype(np.float64),
        arr[idx, 2].astype(np.float64),
        arr[idx, 3].astype(np.float64),
        arr[idx, 4].astype(np.float64),
        arr[idx, 5].astype(np.float64),
    )


def write_candles(path: Path, candles: OHLCV) -> None:
    """Write (replace) a candle file with a header row; ``.gz`` compresses."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [HEADER]
    cols = (candles.open_time, candles.open, candles.high, candles.low, candles.close, candles.volume)
    # .tolist(): plain Python ints and floats (numpy 2 would write "np.float64(1.5)")
    for t, o, h, lo, c, v in zip(*(np.asarray(col).tolist() for col in cols), strict=True):
        lines.append(f"{int(t)},{o!r},{h!r},{lo!r},{c!r},{v!r}")
    data = ("\n".join(lines) + "\n").encode()
    tmp = path.with_name(path.name + ".tmp")
    if path.suffix == ".gz":
        tmp.write_bytes(gzip.compress(data))
    else:
        tmp.write_bytes(data)
    tmp.replace(path)
