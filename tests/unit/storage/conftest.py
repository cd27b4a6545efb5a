"""Storage fixtures: a real SQLite file per test (WAL needs a file)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from storage import Database
from trading.core.models import Leg, PositionState, Stage

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "surgedca.sqlite3"


@pytest.fixture
def db(db_path: Path) -> Iterator[Database]:
    database = Database.open(db_path)
    yield database
    database.close()


def initial_state(symbol: str = "BTCUSDT", price: str = "100.1", qty: str = "0.3") -> PositionState:
    return PositionState(
        symbol=symbol,
        stage=Stage.INITIAL,
        legs=(Leg(Stage.INITIAL, Decimal(price), Decimal(qty)),),
        qty=Decimal(qty),
        initial_price=Decimal(price),
    )


def laddered_state(symbol: str = "BTCUSDT") -> PositionState:
    """Initial + both DCA legs, runner peak set: every field of PositionState non-default."""
    legs = (
        Leg(Stage.INITIAL, Decimal("100.1"), Decimal("0.3")),
        Leg(Stage.FIRST_DCA, Decimal("97.097"), Decimal("0.412")),
        Leg(Stage.SECOND_DCA, Decimal("94.094"), Decimal("0.425")),
    )
    return PositionState(
        symbol=symbol,
        stage=Stage.SECOND_DCA,
        legs=legs,
        qty=sum((leg.qty for leg in legs), Decimal(0)),
        initial_price=Decimal("100.1"),
        dca1_done=True,
        dca2_done=True,
        half_taken=True,
        peak_price=Decimal("0.1") + Decimal("0.2"),
    )
