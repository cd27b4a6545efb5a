"""Shared test fixtures: where the steering side's real data lives."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SHARED_DATA = SHARED / "data"
KLINES_DIR = SHARED_DATA / "klines"
BINANCE_SAMPLES = SHARED_DATA / "binance-api"
TELEGRAM_SAMPLES = SHARED_DATA / "telegram-api"


@pytest.fixture(scope="session")
def klines_dir() -> Path:
    if not KLINES_DIR.is_dir():
        pytest.fail(f"real candles expected in {KLINES_DIR} (../shared beside the repo)")
    return KLINES_DIR
