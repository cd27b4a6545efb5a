"""The funding schedule (recorded rates, the flat rate around them) and the funding file format."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

import pytest

from trading.backtest.funding import DEFAULT_FLAT_RATE, FundingSchedule
from trading.exchange.base import FundingRate
from trading.funding_files import FundingFileError, find_funding_files, funding_path, read_funding, write_funding

H = 3_600_000


def test_without_records_the_flat_rate_every_8_hours_on_binances_grid() -> None:
    s = FundingSchedule()
    events = s.events("ANYUSDT", 5 * H, 40 * H)
    assert [e.time_ms for e in events] == [8 * H, 16 * H, 24 * H, 32 * H, 40 * H]
    assert all(e.rate == DEFAULT_FLAT_RATE and not e.recorded for e in events)
    assert s.events("ANYUSDT", 8 * H, 8 * H) == [] and s.events("ANYUSDT", 8 * H - 1, 8 * H)[0].time_ms == 8 * H


def test_recorded_rates_inside_the_file_and_the_flat_rate_on_its_grid_outside() -> None:
    recs = [FundingRate(t * H, D("0.0005") + t) for t in (100, 104, 108, 112)]  # a 4-hour symbol
    s = FundingSchedule.from_records({"X": recs}, flat_rate=D("0.0002"))
    events = s.events("X", 90 * H, 125 * H)
    assert [(e.time_ms // H, e.recorded) for e in events] == [
        (92, False), (96, False), (100, True), (104, True), (108, True), (112, True), (116, False), (120, False),
        (124, False),
    ]  # fmt: skip
    assert [e.rate for e in events if e.recorded] == [r.rate for r in recs]
    assert {e.rate for e in events if not e.recorded} == {D("0.0002")}


def test_the_file_round_trips_and_bad_lines_are_named(tmp_path: Path) -> None:
    recs = [FundingRate(1_000, D("0.00010000"), D("95000.5")), FundingRate(2_000, D("-0.00002311"), None)]
    path = funding_path(tmp_path, "BTCUSDT")
    write_funding(path, list(reversed(recs)))
    assert path.read_text() == ("funding_time,funding_rate,mark_price\n1000,0.00010000,95000.5\n2000,-0.00002311,\n")
    assert read_funding(path) == recs
    assert find_funding_files(tmp_path) == {"BTCUSDT": path}
    path.write_text("funding_time,funding_rate,mark_price\n1000,abc,\n")
    with pytest.raises(FundingFileError, match="line 2"):
        read_funding(path)
