"""``/report``'s figures and chart (``trading.reporting.live_report``) on a real SQLite store."""

from __future__ import annotations

import io
from decimal import Decimal as D
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from storage.db import Database
from trading.core.models import Leg, PositionState, Stage
from trading.reporting import Mark, live_report, max_drawdown, report_marks, thin
from trading.store import Store

MIN = 60_000
DAY = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
NOW = T0 + 3 * DAY

GREEN = (0x2C / 255, 0xA0 / 255, 0x2C / 255)  # entry markers
ORANGE = (0xFF / 255, 0x7F / 255, 0x0E / 255)  # exit markers
SHADE = tuple(0.6 + 0.4 * c for c in (0xD6 / 255, 0x27 / 255, 0x28 / 255))  # drawdown panel (alpha 0.4 on white)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    db = Database.open(tmp_path / "report.sqlite3")
    yield Store.of(db)  # type: ignore[misc]
    db.close()


def equity_at(t: int) -> float:
    """1000 -> 1100 over the first 1.5 days, down to 1045 by day 2.5 (-5%), then up to 1070."""
    d = (t - T0) / DAY
    if d <= 1.5:
        return 1000 + 100 * d / 1.5
    if d <= 2.5:
        return 1100 - 55 * (d - 1.5)
    return 1045 + 25 * (d - 2.5) / 0.5


def add_equity(store: Store) -> None:
    with store.db.transaction():
        for t in range(T0, NOW, MIN):
            v = D(repr(round(equity_at(t), 6)))
            store.equity.add(t, v, v)


def trade(store: Store, symbol: str, opened: int, closed: int | None, *, buy: str, sell: str, qty: str) -> int:
    """A position through the repositories as the executor records it: pending -> open (-> closed)."""
    q, b, s = D(qty), D(buy), D(sell)
    fee_in = b * q * D("0.0005")
    pid = store.positions.create_pending(symbol, "signal", opened)
    state = PositionState(symbol, Stage.INITIAL, (Leg(Stage.INITIAL, b, q),), q, b)
    store.positions.activate(pid, state, b * q / 10, fee_in, opened)
    store.fills.add(pid, f"sdca-{pid}-entry-1", "BUY", b, q, fee_in, opened, stage=Stage.INITIAL)
    if closed is not None:
        fee_out = s * q * D("0.0005")
        store.fills.add(pid, f"sdca-{pid}-sl-1", "SELL", s, q, fee_out, closed, reason="stop_loss")
        store.positions.close(pid, "stop_loss", (s - b) * q - fee_in - fee_out, fee_out, closed)
    return pid


def colour_pixels(png: bytes, rgb: tuple[float, float, float], tol: float = 0.06) -> int:
    img = mpimg.imread(io.BytesIO(png), format="png")[:, :, :3]
    return int(np.sum(np.all(np.abs(img - np.array(rgb)) < tol, axis=2)))


def test_live_report_figures_marks_and_chart(store: Store) -> None:
    add_equity(store)
    # Before the 2-day window (ignored), straddling its start (exit only), inside it (won, lost), still open.
    trade(store, "AAAUSDT", T0 + DAY // 5, T0 + DAY * 4 // 5, buy="10", sell="11", qty="10")
    trade(store, "BBBUSDT", T0 + DAY // 2, T0 + DAY * 6 // 5, buy="20", sell="19", qty="5")
    trade(store, "CCCUSDT", T0 + DAY * 8 // 5, T0 + 2 * DAY, buy="5", sell="6", qty="30")
    trade(store, "DDDUSDT", T0 + DAY * 11 // 5, T0 + DAY * 13 // 5, buy="50", sell="45", qty="3")
    open_id = trade(store, "EEEUSDT", T0 + DAY * 14 // 5, None, buy="7", sell="0", qty="20")

    report = live_report(store, NOW, 2)

    closed = [p for p in store.positions.list_closed() if p.closed_at_ms >= NOW - 2 * DAY]
    assert [p.symbol for p in closed] == ["BBBUSDT", "CCCUSDT", "DDDUSDT"]
    s = report.summary
    assert s["trades"] == 3
    assert s["wins"] == 1 and s["win_rate"] == pytest.approx(1 / 3)
    # Net results after both fees, exactly as the executor stores them.
    expected_pnl = (
        (D(19) - 20) * 5
        + (D(6) - 5) * 30
        + (D(45) - 50) * 3
        - D("0.0005") * (20 * 5 + 19 * 5 + 5 * 30 + 6 * 30 + 50 * 3 + 45 * 3)
    )
    assert s["realized_pnl"] == expected_pnl
    assert s["fees"] == D("0.0005") * (20 * 5 + 19 * 5 + 5 * 30 + 6 * 30 + 50 * 3 + 45 * 3)
    since = NOW - 2 * DAY
    assert s["start_equity"] == D(repr(round(equity_at(since), 6)))
    assert s["end_equity"] == D(repr(round(equity_at(NOW - MIN), 6)))
    assert s["max_drawdown_pct"] == pytest.approx(5.0, abs=0.01)

    marks = report_marks(store, since, NOW)
    assert [(m.kind, m.label) for m in marks] == [
        ("exit", "BBBUSDT"),
        ("entry", "CCCUSDT"),
        ("exit", "CCCUSDT"),
        ("entry", "DDDUSDT"),
        ("exit", "DDDUSDT"),
        ("entry", "EEEUSDT"),
    ]
    assert store.positions.get(open_id).status == "open"  # type: ignore[union-attr]

    png = report.png
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n")
    assert colour_pixels(png, GREEN) > 20, "entry markers missing"
    assert colour_pixels(png, ORANGE) > 20, "exit markers missing"
    assert colour_pixels(png, SHADE) > 500, "drawdown shading missing"


def test_live_report_without_trades_draws_no_markers(store: Store) -> None:
    add_equity(store)
    report = live_report(store, NOW, 2)
    assert report.summary["trades"] == 0 and report.summary["win_rate"] is None
    assert report.png is not None
    assert colour_pixels(report.png, GREEN) == 0
    assert colour_pixels(report.png, ORANGE) == 0


def test_live_report_needs_two_equity_points(store: Store) -> None:
    store.equity.add(NOW - MIN, D(1000), D(1000))
    report = live_report(store, NOW, 1)
    assert report.png is None and report.summary["trades"] == 0


def test_thinning_keeps_extremes_last_point_and_drawdown() -> None:
    rng = np.random.default_rng(3)
    times = list(range(0, 365 * 1440 * MIN, MIN))
    values = (1000 + np.cumsum(rng.normal(0, 1, len(times)))).tolist()
    t, v = thin(times, values, 4000)
    assert len(t) <= 4001 and t == sorted(t)
    assert t[-1] == times[-1] and v[-1] == values[-1]
    assert max(v) == max(values) and min(v) == min(values)
    assert max_drawdown(v) == pytest.approx(max_drawdown(values), rel=0.02)


def test_marks_outside_the_curve_are_left_out() -> None:
    from trading.reporting import equity_png

    times = [T0 + i * MIN for i in range(100)]
    values = [1000.0 + i for i in range(100)]
    inside = equity_png(times, values, [Mark(T0 + 50 * MIN, "entry")])
    outside = equity_png(times, values, [Mark(T0 - DAY, "entry")])
    assert colour_pixels(inside, GREEN) > 20
    assert colour_pixels(outside, GREEN) == 0


async def test_the_report_can_be_drawn_off_the_loop_beside_the_open_database(store: Store) -> None:
    """``live_report_at`` reads through its own connection in a worker thread while the service's is open."""
    import asyncio

    from trading.reporting import live_report_at

    add_equity(store)
    trade(store, "CCCUSDT", T0 + DAY * 8 // 5, T0 + 2 * DAY, buy="5", sell="6", qty="30")
    here = live_report(store, NOW, 2)
    there = await asyncio.to_thread(live_report_at, store.db.path, NOW, 2)
    assert there.summary == here.summary and there.png is not None
    store.equity.add(NOW, D(1070), D(1070))  # the service's connection still writes afterwards
