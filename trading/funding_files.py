"""Funding-rate history files, beside the candle files: ``DIR/SYMBOL-funding.csv``.

The format (written by ``surgedca download``, read by the backtest)::

    funding_time,funding_rate,mark_price
    1767225600000,0.00010000,87654.32100000
    1767254400000,-0.00002311,

One row per funding event of the symbol, oldest first: ``funding_time`` in epoch milliseconds (UTC),
``funding_rate`` as Binance prints it (a fraction per funding interval: 0.0001 = 0.01%; positive means
longs pay shorts) and ``mark_price``, the mark price the exchange charged at (empty where Binance gave
none; the backtest charges at its own mark, the last price). These are the fields ``fundingTime``,
``fundingRate`` and ``markPrice`` of ``GET /fapi/v1/fundingRate``. The interval between rows is the
symbol's funding interval (8 h on most symbols; 4 h or 1 h on some, and it can change over time), so the
file needs no other column.
"""

from __future__ import annotations

import csv
import io
import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

from trading.exchange.base import FundingRate

HEADER = ("funding_time", "funding_rate", "mark_price")
_NAME = re.compile(r"^(?P<symbol>[A-Z0-9]+)-funding\.csv$")


class FundingFileError(ValueError):
    pass


def funding_path(directory: Path, symbol: str) -> Path:
    return Path(directory) / f"{symbol}-funding.csv"


def find_funding_files(directory: Path) -> dict[str, Path]:
    """Symbol -> file for every ``SYMBOL-funding.csv`` in ``directory``."""
    if not Path(directory).is_dir():
        raise FundingFileError(f"{directory} is not a directory")
    out = {}
    for path in sorted(Path(directory).iterdir()):
        m = _NAME.match(path.name)
        if m:
            out[m.group("symbol")] = path
    return out


def read_funding(path: Path) -> list[FundingRate]:
    """Every record of a file, oldest first, one per funding time (a later duplicate wins)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FundingFileError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if rows and rows[0] and not rows[0][0].strip().lstrip("-").isdigit():
        rows = rows[1:]
    by_time: dict[int, FundingRate] = {}
    for n, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            t = int(row[0])
            rate = Decimal(row[1].strip())
            mark = Decimal(row[2].strip()) if len(row) > 2 and row[2].strip() else None
        except (ValueError, IndexError, InvalidOperation):
            raise FundingFileError(
                f"{path}: line {n} is not 'funding_time,funding_rate,mark_price' (got {','.join(row)!r})"
            ) from None
        if not rate.is_finite() or (mark is not None and not mark.is_finite()):
            raise FundingFileError(f"{path}: line {n} holds a non-finite number")
        by_time[t] = FundingRate(t, rate, mark)
    return [by_time[t] for t in sorted(by_time)]


def write_funding(path: Path, records: list[FundingRate]) -> None:
    """Write the records (sorted, one per time) to a temporary file, then rename it over ``path``."""
    by_time = {r.time_ms: r for r in records}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    for t in sorted(by_time):
        r = by_time[t]
        w.writerow((t, str(r.rate), "" if r.mark_price is None else str(r.mark_price)))
    tmp = Path(path).with_name(Path(path).name + ".tmp")
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, path)


__all__ = [
    "HEADER",
    "FundingFileError",
    "find_funding_files",
    "funding_path",
    "read_funding",
    "write_funding",
]
