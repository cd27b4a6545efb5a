"""Equity curves as PNG (matplotlib, Agg backend) and the figures shown next to them.

Used by ``/report`` (live or paper trading so far) and by the backtest.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
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


def equity_png(times_ms: Sequence[int], equity: Sequence[float], marks: Sequence[Mark] = (), title: str = "") -> bytes:
    """Equity curve with drawdown shading and entry/exit markers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

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
            by_time = dict(zip(times_ms, equity, strict=True))
            for kind, color, marker in (("entry", "#2ca02c", "^"), ("exit", "#ff7f0e", "v")):
                pts = [
                    (datetime.fromtimestamp(m.ts_ms / 1000, tz=UTC), _equity_at(by_time, times_ms, m.ts_ms))
                    for m in marks
                    if m.kind == kind
                ]
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


def _equity_at(by_time: dict[int, float], times: Sequence[int], ts: int) -> float:
    if ts in by_time:
        return by_time[ts]
    import bisect

    i = bisect.bisect_right(times, ts) - 1
    return by_time[times[max(i, 0)]]


def live_report(store: Any, now_ms: int, days: int) -> Report:
    """``/report``: the equity log and the closed trades of the last ``days`` days."""
    since = now_ms - days * 86_400_000
    points = store.equity.between(since, now_ms)
    closed = store.positions.list_closed(since_ms=since, until_ms=now_ms)
    pnl = sum((p.realized_pnl or Decimal(0) for p in closed), Decimal(0))
    fees = sum((p.fees for p in closed), Decimal(0))
    wins = sum(1 for p in closed if (p.realized_pnl or 0) > 0)
    summary: dict[str, Any] = {
        "days": days,
        "trades": len(closed),
        "wins": wins,
        "win_rate": (wins / len(closed)) if closed else None,
        "realized_pnl": pnl,
        "fees": fees,
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
    marks = [Mark(p.opened_at_ms, "entry") for p in closed] + [Mark(p.closed_at_ms or now_ms, "exit") for p in closed]
    png = equity_png(times, equity, marks, title=f"SurgeDCA - last {days} day(s)")
    return Report(days, png, summary)
