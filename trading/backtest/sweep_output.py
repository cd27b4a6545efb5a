"""What a sweep writes besides sweep.csv: the heatmap, the best configs as strategy files, the tables."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trading.backtest.sweep import Combination, Window, values_text
from trading.strategy import to_toml

HEATMAP_METRIC = "return_pct"


# ---------------------------------------------------------------------- heatmap
def heatmap_png(
    rows: Sequence[Mapping[str, Any]],
    *,
    x_key: str,
    y_key: str,
    x_values: Sequence[Any],
    y_values: Sequence[Any],
    title: str,
) -> bytes:
    """Return % per (x, y) cell; where other keys vary too, the cell shows the best of them (said in the
    title). Refused or failed combinations leave their cell empty."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.full((len(y_values), len(x_values)), np.nan)
    for row in rows:
        v = row.get(HEATMAP_METRIC)
        if row.get("status") != "ok" or not isinstance(v, int | float):
            continue
        xi, yi = x_values.index(row[x_key]), y_values.index(row[y_key])
        if math.isnan(grid[yi, xi]) or v > grid[yi, xi]:
            grid[yi, xi] = v
    fig, ax = plt.subplots(figsize=(1.2 * len(x_values) + 3, 0.8 * len(y_values) + 2.5), dpi=100)
    try:
        finite = grid[np.isfinite(grid)]
        span = float(np.max(np.abs(finite))) if finite.size else 1.0
        img = ax.imshow(grid, cmap="RdYlGn", vmin=-span or -1, vmax=span or 1, aspect="auto", origin="lower")
        ax.set_xticks(range(len(x_values)), [_label(v) for v in x_values])
        ax.set_yticks(range(len(y_values)), [_label(v) for v in y_values])
        ax.set_xlabel(x_key)
        ax.set_ylabel(y_key)
        for yi in range(len(y_values)):
            for xi in range(len(x_values)):
                v = grid[yi, xi]
                ax.text(xi, yi, "-" if math.isnan(v) else f"{v:+.1f}%", ha="center", va="center", fontsize=9)
        fig.colorbar(img, ax=ax, label="return %")
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def _label(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------- strategy files
def write_configs(out_dir: Path, named: Sequence[tuple[str, Combination, str]]) -> list[Path]:
    """Each (file stem, combination, comment) as a strategy TOML that ``check-config`` and ``--config`` load."""
    paths = []
    for stem, combo, comment in named:
        assert combo.cfg is not None
        path = out_dir / f"{stem}.toml"
        head = f"# {comment}\n# {values_text(combo.values)}\n"
        atomic_text(path, head + to_toml(combo.cfg))
        paths.append(path)
    return paths


# ---------------------------------------------------------------------- tables
def top_table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], limit: int) -> str:
    head = ["#", "combination", *keys, "return %", "max DD %", "trades", "win %", "funding", "worst case %", "score"]
    body = []
    for n, r in enumerate(rows[:limit], start=1):
        body.append(
            [
                str(n),
                str(r["combination"]),
                *(_label(r[k]) for k in keys),
                _num(r.get("return_pct")),
                _num(r.get("max_drawdown_pct")),
                _num(r.get("trades"), 0),
                _num(None if r.get("win_rate") is None else r["win_rate"] * 100, 1),
                _num(r.get("funding")),
                _num(r.get("worst_case_pct")),
                _num(r.get("score"), 3),
            ]
        )
    return _table(head, body)


WALK_COLUMNS = (
    "window",
    "train_start",
    "train_end",
    "test_start",
    "test_end",
    "combination",
    "values",
    "in_sample_return_pct",
    "in_sample_max_drawdown_pct",
    "in_sample_trades",
    "in_sample_score",
    "out_of_sample_return_pct",
    "out_of_sample_max_drawdown_pct",
    "out_of_sample_trades",
    "out_of_sample_funding",
)


def walk_rows(
    windows: Sequence[Window],
    chosen: Mapping[int, Combination | None],
    train: Mapping[tuple[int, int], Mapping[str, Any]],
    test: Mapping[tuple[int, int], Mapping[str, Any]],
) -> list[dict[str, Any]]:
    out = []
    for w in windows:
        c = chosen.get(w.number)
        row: dict[str, Any] = {
            "window": w.number,
            "train_start": iso(w.train_start),
            "train_end": iso(w.train_end),
            "test_start": iso(w.train_end),
            "test_end": iso(w.test_end),
        }
        if c is not None:
            ins = train.get((w.number, c.index), {})
            oos = test.get((w.number, c.index), {})
            row.update(
                combination=c.index,
                values=values_text(c.values),
                in_sample_return_pct=ins.get("return_pct"),
                in_sample_max_drawdown_pct=ins.get("max_drawdown_pct"),
                in_sample_trades=ins.get("trades"),
                in_sample_score=ins.get("score"),
                out_of_sample_return_pct=oos.get("return_pct"),
                out_of_sample_max_drawdown_pct=oos.get("max_drawdown_pct"),
                out_of_sample_trades=oos.get("trades"),
                out_of_sample_funding=oos.get("funding"),
            )
        out.append(row)
    return out


def walk_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(WALK_COLUMNS)
    for r in rows:
        w.writerow(["" if r.get(c) is None else r.get(c) for c in WALK_COLUMNS])
    return buf.getvalue()


def walk_table(rows: Sequence[Mapping[str, Any]]) -> str:
    head = ["window", "test period", "chosen", "IS return %", "IS max DD %", "IS trades", "OOS return %",
            "OOS max DD %", "OOS trades"]  # fmt: skip
    body = []
    for r in rows:
        body.append(
            [
                str(r["window"]),
                f"{r['test_start'][:16]} .. {r['test_end'][:16]}",
                str(r.get("combination", "-")),
                _num(r.get("in_sample_return_pct")),
                _num(r.get("in_sample_max_drawdown_pct")),
                _num(r.get("in_sample_trades"), 0),
                _num(r.get("out_of_sample_return_pct")),
                _num(r.get("out_of_sample_max_drawdown_pct")),
                _num(r.get("out_of_sample_trades"), 0),
            ]
        )
    ins = [r["in_sample_return_pct"] for r in rows if r.get("in_sample_return_pct") is not None]
    oos = [r["out_of_sample_return_pct"] for r in rows if r.get("out_of_sample_return_pct") is not None]
    lines = [_table(head, body)]
    if ins and oos:
        compounded = (math.prod(1 + x / 100 for x in oos) - 1) * 100
        lines.append(
            f"in-sample: mean {sum(ins) / len(ins):+.2f}% per training window; "
            f"out-of-sample: mean {sum(oos) / len(oos):+.2f}% per test window, {compounded:+.2f}% compounded "
            f"over {len(oos)} test window(s)"
        )
    return "\n".join(lines)


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    widths = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(head, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in body]
    return "\n".join(lines)


def _num(v: Any, places: int = 2) -> str:
    if v is None or v == "":
        return "-"
    return f"{float(v):,.{places}f}"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
