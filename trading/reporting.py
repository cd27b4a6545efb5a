"""Equity curves as PNG (matplotlib, Agg backend) and the figures shown next to them.

Used by ``/report`` (live or paper trading so far) and by the backtest.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from trading.views import Report


@dataclass(frozen=True, slots=True)
class Mark:
    ts_ms: int
    kind: str  # "entry" | "exit"
    label: str = ""


def max_drawdown(equity: Sequence[float]) -> float:
    """Largest peak-to-trough fall as a fraction of the peak (0.0 when it never fell)."""
    peak = float("-inf")
    worst = 0.0
    for v in equity:
        peak = max(peak, v)
        if peak > 0:
            worst = max(worst, (peak - v) / peak)
    return worst


MAX_PLOT_POINTS = 4_000  # a year of minutes would take matplotlib seconds (and /report runs on the trading loop)


def thin(
    times_ms: Sequence[int], values: Sequence[float], limit: int = MAX_PLOT_POINTS
) -> tuple[list[int], list[float]]:
    """At most about ``limit`` points: each bucket keeps its lowest and its highest value (so peaks, troughs
    and the drawdowns between them survive) and the last point is kept."""
    n = len(times_ms)
    if n <= limit or limit < 4:
        return list(times_ms), list(values)
    size = -(-n // (limit // 2))
    out_t: list[int] = []
    out_v: list[float] = []
    for a in range(0, n, size):
        b = min(n, a + size)
        lo = min(range(a, b), key=values.__getitem__)
        hi = max(range(a, b), key=values.__getitem__)
        for i in sorted({lo, hi}):
            out_t.append(times_ms[i])
            out_v.append(values[i])
    if out_t[-1] != times_ms[-1]:
        out_t.append(times_ms[-1])
        out_v.append(values[-1])
    return out_t, out_v


def equity_png(
    times_ms: Sequence[int],
    equity: Sequence[float],
    marks: Sequence[Mark] = (),
    title: str = "",
    *,
    max_points: int = MAX_PLOT_POINTS,
) -> bytes:
    """Equity curve with drawdown shading and entry/exit markers (marks outside the curve's time span are left
    out; long curves are thinned to ``max_points``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if times_ms:
        first, last = times_ms[0], times_ms[-1]
        marks = [m for m in marks if first <= m.ts_ms <= last]
        # Marker heights from the full series, before thinning.
        placed = [(m, _equity_at(times_ms, equity, m.ts_ms)) for m in marks]
    else:
        placed = []
    times_ms, equity = thin(times_ms, equity, max_points)
    xs = [datetime.fromtimestamp(t / 1000, tz=UTC) for t in times_ms]
    fig, (ax, ax_dd) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    try:
        ax.plot(xs, equity, color="#1f77b4", linewidth=1.2, label="equity")
        running = []
        peak = float("-inf")
        for v in equity:
            peak = max(peak, v)
            running.append(peak)
        ax.fill_between(
            xs,
            equity,
            running,
            where=[e < p for e, p in zip(equity, running, strict=True)],
            color="#d62728",
            alpha=0.15,
            label="drawdown",
        )
        dd = [(e - p) / p * 100 if p > 0 else 0.0 for e, p in zip(equity, running, strict=True)]
        ax_dd.fill_between(xs, dd, 0, color="#d62728", alpha=0.4)
        ax_dd.set_ylabel("drawdown %")
        if xs:
            for kind, color, marker in (("entry", "#2ca02c", "^"), ("exit", "#ff7f0e", "v")):
                pts = [(datetime.fromtimestamp(m.ts_ms / 1000, tz=UTC), y) for m, y in placed if m.kind == kind]
                if pts:
                    ax.scatter(
                        [p[0] for p in pts],
                        [p[1] for p in pts],
                        color=color,
                        marker=marker,
                        s=25,
                        label=f"{kind} ({len(pts)})",
                        zorder=3,
                    )
        ax.set_ylabel("USDT")
        ax.set_title(title or "Equity")
        ax.grid(alpha=0.3)
        ax_dd.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        ax_dd.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M"))
        fig.autofmt_xdate()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=100)
        return buf.getvalue()
    finally:
        plt.close(fig)


def _equity_at(times: Sequence[int], equity: Sequence[float], ts: int) -> float:
    """The equity sampled at or last before ``ts``."""
    import bisect

    i = bisect.bisect_right(times, ts) - 1
    return equity[max(i, 0)]


def live_report(store: Any, now_ms: int, days: int) -> Report:
    """``/report``: the equity log and the closed trades of the last ``days`` days (their results after fees and
    funding; the funding as its own figure too), and the funding the open positions have paid so far."""
    since = now_ms - days * 86_400_000
    points = store.equity.between(since, now_ms)
    closed = store.positions.list_closed(since_ms=since, until_ms=now_ms)
    pnl = sum((p.realized_pnl or Decimal(0) for p in closed), Decimal(0))
    fees = sum((p.fees for p in closed), Decimal(0))
    funding = sum((p.funding for p in closed), Decimal(0))
    wins = sum(1 for p in closed if (p.realized_pnl or 0) > 0)
    summary: dict[str, Any] = {
        "days": days,
        "trades": len(closed),
        "wins": wins,
        "win_rate": (wins / len(closed)) if closed else None,
        "realized_pnl": pnl,  # after fees and funding
        "fees": fees,
        "funding": funding,  # the closed trades' funding, part of realized_pnl (< 0: paid)
        "open_funding": sum((p.funding for p in store.positions.list_open()), Decimal(0)),
    }
    if len(points) < 2:
        return Report(days, None, summary)
    times = [p.ts_ms for p in points]
    equity = [float(p.equity) for p in points]
    summary.update(
        start_equity=points[0].equity,
        end_equity=points[-1].equity,
        max_drawdown_pct=round(max_drawdown(equity) * 100, 2),
    )
    png = equity_png(times, equity, report_marks(store, since, now_ms), title=f"SurgeDCA - last {days} day(s)")
    return Report(days, png, summary)


def live_report_at(db_path: Path, now_ms: int, days: int) -> Report:
    """``live_report`` on a read connection of its own, for a worker thread: a year of minutes takes seconds to
    read and draw, which must not happen on the trading loop (the service's connection belongs to that loop;
    WAL lets this one read beside it)."""
    from storage.db import Database
    from trading.store import Store

    db = Database.open(db_path, migrate=False, check=False)
    try:
        return live_report(Store.of(db), now_ms, days)
    finally:
        db.close()


def report_marks(store: Any, since_ms: int, now_ms: int) -> list[Mark]:
    """Entries of the positions opened in [since, now) (closed since or still open) and exits of those closed
    in it, oldest first."""
    closed = store.positions.list_closed(since_ms=since_ms, until_ms=now_ms)
    opened = [p for p in (*closed, *store.positions.list_open()) if since_ms <= p.opened_at_ms < now_ms]
    marks = [Mark(p.opened_at_ms, "entry", p.symbol) for p in opened]
    marks += [Mark(p.closed_at_ms, "exit", p.symbol) for p in closed if p.closed_at_ms is not None]
    return sorted(marks, key=lambda m: (m.ts_ms, m.kind))
