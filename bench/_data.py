"""The candle data of the benchmarks: ``--data DIR``, by default ``tests/data`` (the real candles the tests use).

Any directory of ``SYMBOL-1m.csv[.gz]`` candle files works, for instance what
``surgedca download --symbols BTCUSDT,ETHUSDT --days 30 --out DIR`` writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trading.candle_files import CandleFileError, find_candle_files

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO / "tests" / "data"


def add_data_option(ap: argparse.ArgumentParser) -> None:
    ap.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        metavar="DIR",
        help="directory of SYMBOL-1m.csv[.gz] candle files, e.g. from `surgedca download` (default: tests/data)",
    )


def candle_files(directory: Path) -> dict[str, Path]:
    """Symbol -> file of every candle file in ``directory``; exits with a clear message when there is none."""
    try:
        files = find_candle_files(directory)
    except CandleFileError as exc:
        raise SystemExit(f"--data: {exc}") from None
    if not files:
        raise SystemExit(f"--data: no SYMBOL-1m.csv[.gz] candle files in {directory}")
    return files


def shown(directory: Path) -> str:
    """The directory as the JSON output shows it: relative to the repository when inside it."""
    path = directory.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
