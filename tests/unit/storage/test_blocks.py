"""Timed symbol blocks: replaced by the latest, end by themselves, survive a restart, cleared by reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from storage.blocks import SymbolBlock, SymbolBlocks
from storage.db import Database

T = 1_767_225_600_000
H = 3_600_000


def test_set_replace_expire_clear_and_purge(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db.sqlite3") as db:
        blocks = SymbolBlocks(db)
        blocks.set("DOGEUSDT", T + 24 * H, "tg:1", T)
        blocks.set("SOLUSDT", T + 2 * H, "tg:2", T)
        assert blocks.active(T) == [
            SymbolBlock("SOLUSDT", T + 2 * H, "tg:2", T),
            SymbolBlock("DOGEUSDT", T + 24 * H, "tg:1", T),
        ]  # the soonest to end first
        blocks.set("DOGEUSDT", T + H, "tg:3", T + 10)  # the latest /block decides, shorter too
        assert blocks.get("DOGEUSDT", T) == SymbolBlock("DOGEUSDT", T + H, "tg:3", T + 10)
        assert blocks.get("DOGEUSDT", T + H) is None  # ended at its time: nothing deletes it for that
        assert [b.symbol for b in blocks.active(T + H)] == ["SOLUSDT"]
        assert blocks.purge(T + H) == 1 and blocks.purge(T + H) == 0
        assert blocks.clear("SOLUSDT") and not blocks.clear("SOLUSDT")
        assert blocks.active(T) == []


def test_blocks_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with Database.open(path) as db:
        SymbolBlocks(db).set("DOGEUSDT", T + 5 * H, "tg:1", T)
    with Database.open(path) as db:
        assert SymbolBlocks(db).get("DOGEUSDT", T + 4 * H) == SymbolBlock("DOGEUSDT", T + 5 * H, "tg:1", T)


@pytest.mark.parametrize(
    ("symbol", "until", "actor"), [("", T, "tg:1"), ("A USDT", T, "tg:1"), ("AUSDT", -1, "tg:1"), ("AUSDT", T, "")]
)
def test_bad_values_are_refused(tmp_path: Path, symbol: str, until: int, actor: str) -> None:
    with Database.open(tmp_path / "db.sqlite3") as db:
        with pytest.raises(ValueError):
            SymbolBlocks(db).set(symbol, until, actor, T)
        assert SymbolBlocks(db).active(0) == []
