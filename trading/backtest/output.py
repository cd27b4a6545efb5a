"""Backtest outputs: ``summary.json``, ``trades.csv``, ``signals.csv``, ``equity.png`` and the terminal table."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from trading.backtest.results import BacktestResult, Trade
from trading.reporting import Mark, equity_png

OUTPUT_FILES = ("summary.json", "trades.csv", "signals.csv", "equity.png")


def write_outputs(result: BacktestResult, out_dir: Path) -> dict[str, Path]:
    """The four files of one run in ``out_dir`` (created); each written to a temporary name, then renamed."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in OUTPUT_FILES}
    _atomic_text(paths["summary.json"], json.dumps(result.summary, indent=2, default=_json_default) + "\n")
    _atomic_text(paths["trades.csv"], trades_csv(result))
    _atomic_text(paths["signals.csv"], signals_csv(result))
    _atomic_bytes(paths["equity.png"], equity_chart(result))
    return paths


# ---------------------------------------------------------------------- CSV
TRADE_COLUMNS = (
    "position_id",
    "symbol",
    "opened_at",
    "closed_at",
    "hold_minutes",
    "exit_reason",
    "max_stage",
    "qty_bought",
    "qty_sold",
    "avg_buy_price",
    "avg_sell_price",
    "buy_value",
    "sell_value",
    "fees",
    "funding",
    "pnl",
    "pnl_pct_of_margin",
    "legs",
)


def trades_csv(result: BacktestResult) -> str:
    """One row per position (closed ones; open ones only if the run kept them open), every leg in ``legs``."""
    rows = [TRADE_COLUMNS]
    for t in result.trades:
        rows.append(_trade_row(t, result.leverage))
    return _csv(rows)


def _trade_row(t: Trade, leverage: int) -> tuple[Any, ...]:
    bought, sold = t.bought, t.sold
    pct = t.pnl_pct_of_margin(leverage)
    legs = [
        {
            "time": _iso(leg.ts_ms),
            "side": leg.side,
            "qty": str(leg.qty),
            "price": str(leg.price),
            "fee": str(leg.fee),
            **({"stage": leg.stage} if leg.stage else {}),
            **({"reason": leg.reason} if leg.reason else {}),
            "client_order_id": leg.client_order_id,
        }
        for leg in t.legs
    ]
    return (
        t.position_id,
        t.symbol,
        _iso(t.opened_ms),
        _iso(t.closed_ms) if t.closed_ms is not None else "",
        round(t.hold_ms / 60_000, 1) if t.hold_ms is not None else "",
        t.exit_reason or "",
        t.max_stage,
        bought,
        sold,
        _q(t.buy_value / bought) if bought else "",
        _q(t.sell_value / sold) if sold else "",
        _q(t.buy_value),
        _q(t.sell_value),
        _q(t.fees),
        _q(t.funding),
        _q(t.pnl) if t.closed else "",
        _q(pct, 4) if pct is not None and t.closed else "",
        json.dumps(legs, separators=(",", ":")),
    )


def signals_csv(result: BacktestResult) -> str:
    """Every entry signal: the groups' verdicts, each condition's truth (1/0, empty when not evaluated) and,
    in ``values``, the numbers behind every condition (JSON)."""
    names: list[str] = []
    for s in result.signals:
        for c in s.report.conditions:
            if c.name not in names:
                names.append(c.name)
    head = (
        "time",
        "symbol",
        "price",
        "entered",
        "prefilter_ok",
        "strategy_1m_ok",
        "strategy_3m_ok",
        "filter_15m_ok",
        *names,
        "values",
    )
    rows: list[Sequence[Any]] = [head]
    for s in result.signals:
        r = s.report
        truth = {c.name: int(c.ok) for c in r.conditions}
        values = {c.name: c.values for c in r.conditions}
        rows.append(
            (
                _iso(r.at_ms),
                r.symbol,
                r.price if r.price is not None else "",
                int(s.entered),
                int(r.prefilter_ok),
                int(r.strategy_1m_ok),
                int(r.strategy_3m_ok),
                int(r.filter_15m_ok),
                *(truth.get(n, "") for n in names),
                json.dumps(values, separators=(",", ":"), default=_json_default),
            )
        )
    return _csv(rows)


# ---------------------------------------------------------------------- chart
def equity_chart(result: BacktestResult) -> bytes:
    """Equity curve with drawdown shading, entries and closes marked (``reporting.equity_png``)."""
    marks = [Mark(t.opened_ms, "entry", t.symbol) for t in result.trades]
    marks += [Mark(t.closed_ms, "exit", t.symbol) for t in result.trades if t.closed_ms is not None]
    title = f"{result.name}: {len(result.symbols)} symbols, {_day(result.start_ms)} .. {_day(result.end_ms)}"
    return equity_png(result.equity.times_ms, result.equity.equity, marks, title=title)


# ---------------------------------------------------------------------- terminal
_ROWS: tuple[tuple[str, str], ...] = (
    ("period", "period"),
    ("symbols", "symbols"),
    ("candles replayed", "candles"),
    ("balance start", "balance_start"),
    ("balance end", "balance_end"),
    ("return %", "return_pct"),
    ("realised PnL", "realized_pnl"),
    ("fees", "fees"),
    ("funding", "funding"),
    ("net PnL", "net_pnl"),
    ("max drawdown %", "max_drawdown_pct"),
    ("trades", "trades"),
    ("win rate %", "win_rate_pct"),
    ("avg hold (min)", "avg_hold_minutes"),
    ("max margin in use", "max_margin_in_use"),
    ("max margin in use %", "max_margin_in_use_pct"),
    ("entry signals", "entry_signals"),
    ("checks", "checks_text"),
    ("wall time (s)", "wall_s"),
)


def summary_table(results: Sequence[BacktestResult]) -> str:
    """A plain-text table, one column per run (side by side for a comparison)."""
    cols = [_flat(r.summary) for r in results]
    rows: list[tuple[str, list[str]]] = [("", [r.name for r in results])]
    rows += [(label, [_fmt(c.get(key)) for c in cols]) for label, key in _ROWS]
    reasons = sorted({k for r in results for k in r.summary["exit_reasons"]})
    rows += [(f"exits: {k}", [_fmt(r.summary["exit_reasons"].get(k, 0)) for r in results]) for k in reasons]
    partials = sorted({k for r in results for k in r.summary["partial_exits"]})
    rows += [(f"partial sells: {k}", [_fmt(r.summary["partial_exits"].get(k, 0)) for r in results]) for k in partials]
    rows += [
        (f"max stage: {k}", [_fmt(r.summary["max_stage_reached"].get(k, 0)) for r in results])
        for k in results[0].summary["max_stage_reached"]
    ]
    width = max(len(label) for label, _ in rows)
    col_w = [max(len(v[i]) for _, v in rows) for i in range(len(results))]
    lines = []
    for n, (label, values) in enumerate(rows):
        cells = "  ".join(v.rjust(col_w[i]) for i, v in enumerate(values))
        lines.append(f"{label.ljust(width)}  {cells}".rstrip())
        if n == 0:
            lines.append("-" * (width + 2 + sum(col_w) + 2 * (len(col_w) - 1)))
    return "\n".join(lines)


def _flat(summary: dict[str, Any]) -> dict[str, Any]:
    out = dict(summary)
    out["period"] = f"{summary['start'][:16].replace('T', ' ')} .. {summary['end'][:16].replace('T', ' ')}"
    out["symbols"] = len(summary["symbols"])
    out["win_rate_pct"] = round(summary["win_rate"] * 100, 1) if summary["win_rate"] is not None else None
    checks = summary["checks"]
    failed = [k for k in ("balance", "legs", "sizes") if str(checks.get(k, "")).startswith("FAILED")]
    out["checks_text"] = "FAILED: " + ", ".join(failed) if failed else "ok"
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.2f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


# ---------------------------------------------------------------------- helpers
def _csv(rows: Sequence[Sequence[Any]]) -> str:
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerows(rows)
    return buf.getvalue()


def _q(d: Decimal, places: int = 8) -> str:
    return str(round(d, places))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d")


def _json_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return float(o)
    if hasattr(o, "item"):  # numpy scalars in condition values
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _atomic_text(path: Path, text: str) -> None:
    _atomic_bytes(path, text.encode("utf-8"))


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
