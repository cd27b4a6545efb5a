"""Adoption questions: one live row per symbol, single-use answers, kept across a reopen, cleared by reset."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from storage.adoptions import LIVE, AdoptionRequests, AdoptionStatus
from storage.db import Database

T = 1_767_225_600_000
D = Decimal
ASKED = frozenset({AdoptionStatus.ASKED})
ASKED_ = AdoptionStatus.ASKED


def test_a_question_is_answered_once(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    with Database.open(path) as db:
        repo = AdoptionRequests(db)
        row = repo.create("SOLUSDT", D("1.00"), D("100.5"), token="tok-1", status=AdoptionStatus.ASKED, now_ms=T)
        assert (row.symbol, row.qty, row.entry_price, row.status) == ("SOLUSDT", D("1.00"), D("100.5"), ASKED_)
        assert repo.live_for("SOLUSDT") == row and repo.by_token("tok-1") == row and repo.live() == [row]
        # A second live question for the symbol is refused by the schema.
        with pytest.raises(sqlite3.IntegrityError):
            repo.create("SOLUSDT", D("2"), D("90"), token="tok-2", status=AdoptionStatus.LEFT, now_ms=T)
        assert repo.move(row.id, ASKED, AdoptionStatus.IGNORED, actor="tg:1", now_ms=T + 5)
        assert not repo.move(row.id, ASKED, AdoptionStatus.ADOPTED, actor="tg:2", now_ms=T + 6)  # single use
    with Database.open(path) as db:  # kept across a restart
        repo = AdoptionRequests(db)
        again = repo.by_token("tok-1")
        assert again is not None and (again.status, again.answered_by, again.answered_at_ms) == (
            AdoptionStatus.IGNORED, "tg:1", T + 5,
        )  # fmt: skip
        assert repo.move(again.id, LIVE, AdoptionStatus.ADOPTED, actor="tg:2", now_ms=T + 7, position_id=None)
        assert repo.live() == [] and repo.live_for("SOLUSDT") is None
        # Once the old one has ended, the symbol may have a new question.
        fresh = repo.create("SOLUSDT", D("3"), D("80"), token="tok-3", status=AdoptionStatus.LEFT, now_ms=T + 8)
        assert repo.live() == [fresh]


def test_only_live_statuses_start_a_question(tmp_path: Path) -> None:
    with Database.open(tmp_path / "db.sqlite3") as db:
        repo = AdoptionRequests(db)
        with pytest.raises(ValueError):
            repo.create("SOLUSDT", D("1"), D("1"), token="t", status=AdoptionStatus.ADOPTED, now_ms=T)
        assert repo.by_token("nope") is None and repo.get(99) is None
