"""Shared test fixtures: the real data the tests read ships in ``tests/data`` (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEST_DATA = REPO / "tests" / "data"
KLINES_DIR = TEST_DATA  # real Binance USD-M 1m candles, SYMBOL-1m.csv.gz
BINANCE_SAMPLES = TEST_DATA / "binance-api"
TELEGRAM_SAMPLES = TEST_DATA / "telegram-api"


@pytest.fixture(scope="session")
def klines_dir() -> Path:
    if not any(KLINES_DIR.glob("*-1m.csv.gz")):
        pytest.fail(f"real candles expected in {KLINES_DIR} (part of the repository; is the checkout complete?)")
    return KLINES_DIR
