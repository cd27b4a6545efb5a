"""Parameter sweeps: the backtest over every combination of a grid, in parallel processes (``surgedca sweep``).

A grid names strategy keys (as ``/config set`` and the TOML file spell them, dotted for tables) and the
values to try; every combination is applied to a base config and checked as ``check-config`` checks it
(``strategy.validate_full``: ranges, cross checks, risk). Refused combinations are listed, not run.

Runs go to a ``ProcessPoolExecutor`` (spawn start method): each worker process loads the candle and
funding files once, then runs one backtest per task. A backtest is deterministic, so a row depends only
on its combination, never on the worker or the order rows finish in. Rows are appended to the CSV as
they finish (Ctrl-C keeps them); the file is rewritten in combination order at the end.

Ranking (``score``): return over drawdown, ``return_pct / max(max_drawdown_pct, 1)``, among the
combinations with at least ``min_trades`` closed trades; the others rank below all of them. Return alone
favours whatever took the most risk and got lucky; dividing by the drawdown asks what the return cost,
and the floor of 1% keeps a run that barely moved from ranking first on a tiny drawdown. The trade minimum
keeps one lucky trade from winning.

Walk-forward (``TRAIN/TEST``, e.g. ``14d/7d``): windows by time over the run's span. For window ``i`` the
training window is ``[T0 + i x TEST, T0 + i x TEST + TRAIN)`` and the test window the ``TEST`` after it
(complete windows only). Every combination is backtested on the training window alone: its replay is cut
at the training window's end (``BacktestSpec.end_ms``), so no candle of the test window or later is ever
read while ranking. The best-scoring combination is then backtested on the test window alone (with the
candles before it as history, as a live start would have), and the two results are reported side by side.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import re
import signal
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from trading.core.config import ConfigError, StrategyConfig, parse_config
from trading.core.risk import risk_table
from trading.strategy import normalize_key, parse_value, validate_full

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_DRAWDOWN_PCT = 1.0  # the score's floor on the drawdown (see the module docstring)
DEFAULT_MIN_TRADES = 3
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([dh])\s*$", re.IGNORECASE)

# Per-row figures, in sweep.csv's column order after the grid's keys.
METRICS = (
    "return_pct",
    "max_drawdown_pct",
    "trades",
    "win_rate",
    "net_pnl",
    "fees",
    "funding",
    "worst_case_pct",
    "entry_signals",
    "score",
)


class SweepInputError(ValueError):
    """A grid or option the sweep cannot run: a message for the operator."""


# ---------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class Grid:
    keys: tuple[str, ...]
    values: tuple[tuple[Any, ...], ...]  # per key, in the order given

    def combinations(self) -> list[dict[str, Any]]:
        return [dict(zip(self.keys, combo, strict=True)) for combo in itertools.product(*self.values)]

    @property
    def size(self) -> int:
        return math.prod(len(v) for v in self.values)


def parse_grid_text(text: str) -> Grid:
    """``'leverage=5,10 stop_loss_by_stage.initial=-0.08,-0.10'``: space-separated ``key=v1,v2,...``; values
    are typed as ``/config set`` types them (``3%`` is 0.03 on a fraction key)."""
    keys: list[str] = []
    values: list[tuple[Any, ...]] = []
    problems: list[str] = []
    for token in text.split():
        key, sep, raw = token.partition("=")
        key = normalize_key(key)
        if not sep or not key or not raw.strip(","):
            problems.append(f"{token!r} is not key=value1,value2,... (e.g. leverage=5,10)")
            continue
        typed: list[Any] = []
        for item in raw.split(","):
            if not item:
                continue
            try:
                typed.append(parse_value(key, item))
            except ConfigError as exc:
                problems.extend(exc.problems)
                break
        _add_key(keys, values, key, typed, problems)
    if problems:
        raise SweepInputError("bad grid:\n  " + "\n  ".join(problems))
    if not keys:
        raise SweepInputError("the grid names no key (e.g. --grid 'leverage=5,10')")
    return Grid(tuple(keys), tuple(values))


def parse_grid_file(path: Path) -> Grid:
    """A TOML grid: each key holds a list of values (or one value); tables give dotted keys::

    leverage = [5, 10]
    take_half_at = [0.06, 0.10]
    [stop_loss_by_stage]
    initial = [-0.08, -0.10]
    [signals]
    ma_fast = [3, 5]
    """
    try:
        with Path(path).open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise SweepInputError(f"grid file {path} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SweepInputError(f"grid file {path} is not valid TOML: {exc}") from None
    keys: list[str] = []
    values: list[tuple[Any, ...]] = []
    problems: list[str] = []
    for key, raw in _flatten(data):
        items = raw if isinstance(raw, list) else [raw]
        typed: list[Any] = []
        for item in items:
            if isinstance(item, dict):
                problems.append(f"{key}: a list of values is expected, got a table")
                break
            try:
                typed.append(parse_value(key, item if isinstance(item, str) else _as_text(item)))
            except ConfigError as exc:
                problems.extend(exc.problems)
                break
        _add_key(keys, values, key, typed, problems)
    if problems:
        raise SweepInputError(f"bad grid file {path}:\n  " + "\n  ".join(problems))
    if not keys:
        raise SweepInputError(f"grid file {path} names no key")
    return Grid(tuple(keys), tuple(values))


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for k, v in data.items():
        name = f"{prefix}{normalize_key(k)}"
        if isinstance(v, dict):
            yield from _flatten(v, f"{name}.")
        else:
            yield name, v


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def _add_key(keys: list[str], values: list[tuple[Any, ...]], key: str, typed: list[Any], problems: list[str]) -> None:
    if key in keys:
        problems.append(f"{key} is given twice")
        return
    if not typed:
        return
    unique = list(dict.fromkeys(typed))
    keys.append(key)
    values.append(tuple(unique))


def apply_values(base: StrategyConfig, values: Mapping[str, Any]) -> StrategyConfig:
    """``base`` with every (dotted) key set at once, then parsed (so a combination is judged as a whole, not
    key by key); ``ConfigError`` when the result is invalid."""
    data = base.to_dict()
    for key, value in values.items():
        target = data
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(target.get(p), dict):
                raise ConfigError([f"unknown key {key!r}"])
            target = target[p]
        if parts[-1] not in target:
            raise ConfigError([f"unknown key {key!r}"])
        target[parts[-1]] = value
    return parse_config(data)


@dataclass
class Combination:
    index: int  # 1-based, in grid order
    values: dict[str, Any]
    cfg: StrategyConfig | None
    problems: list[str] = field(default_factory=list)

    @property
    def refused(self) -> bool:
        return self.cfg is None


def combinations(base: StrategyConfig, grid: Grid) -> list[Combination]:
    """Every combination of the grid, each checked as check-config checks a file."""
    out = []
    for i, values in enumerate(grid.combinations(), start=1):
        try:
            cfg = apply_values(base, values)
        except ConfigError as exc:
            out.append(Combination(i, values, None, list(exc.problems)))
            continue
        problems = validate_full(cfg)
        out.append(Combination(i, values, None if problems else cfg, list(problems)))
    return out


# ---------------------------------------------------------------------- walk-forward windows
def parse_duration(text: str) -> int:
    m = _DURATION.match(text)
    if not m or float(m.group(1)) <= 0:
        raise SweepInputError(f"{text!r} is not a duration: write e.g. 14d or 36h")
    return int(float(m.group(1)) * (DAY_MS if m.group(2).lower() == "d" else HOUR_MS))


def parse_walk_forward(text: str) -> tuple[int, int]:
    train, sep, test = text.partition("/")
    if not sep:
        raise SweepInputError(f"--walk-forward {text!r}: write TRAIN/TEST, e.g. 14d/7d")
    return parse_duration(train), parse_duration(test)


@dataclass(frozen=True)
class Window:
    number: int  # 1-based
    train_start: int
    train_end: int  # exclusive; the test window starts here
    test_end: int  # exclusive


def walk_forward_windows(start_ms: int, end_ms: int, train_ms: int, test_ms: int) -> list[Window]:
    """Complete windows in ``[start_ms, end_ms)``: training windows step by the test length."""
    out: list[Window] = []
    i = 0
    while True:
        a = start_ms + i * test_ms
        b = a + train_ms
        c = b + test_ms
        if c > end_ms:
            return out
        out.append(Window(i + 1, a, b, c))
        i += 1


# ---------------------------------------------------------------------- one run (in a worker)
@dataclass(frozen=True)
class RunTask:
    """What a worker needs for one backtest: picklable, data-free (the worker holds the data)."""

    key: tuple[int, int]  # (window, combination); window 0: the whole span
    cfg: dict[str, Any]
    start_ms: int | None
    end_ms: int | None
    balance: str
    slippage: str
    fast: bool = True


@dataclass(frozen=True)
class DataSource:
    """Where a worker loads its data from (once, at its start)."""

    directory: str
    symbols: tuple[str, ...] | None
    funding: bool
    flat_rate: str


_worker: dict[str, Any] = {}


def init_worker(source: DataSource) -> None:
    """Worker start: ignore Ctrl-C (the parent decides) and load the data once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _load_into_worker(source)


def _load_into_worker(source: DataSource) -> None:
    from trading.backtest.data import load_candle_dir
    from trading.backtest.funding import load_funding

    data = load_candle_dir(Path(source.directory), source.symbols)
    _worker["data"] = data.data
    _worker["funding"] = (
        load_funding(data.directory, data.symbols, flat_rate=Decimal(source.flat_rate)) if source.funding else None
    )


def run_task(task: RunTask) -> tuple[tuple[int, int], dict[str, Any]]:
    """One backtest in this worker: the row's figures (or the error)."""
    import asyncio

    from trading.backtest.runner import BacktestSpec, run_backtest

    cfg = parse_config(task.cfg)
    spec = BacktestSpec(
        data=_worker["data"],
        cfg=cfg,
        balance=Decimal(task.balance),
        slippage=Decimal(task.slippage),
        start_ms=task.start_ms,
        end_ms=task.end_ms,
        name=f"combination {task.key[1]}",
        funding=_worker["funding"],
        fast=task.fast,
    )
    try:
        result = asyncio.run(run_backtest(spec))
    except ValueError as exc:
        return task.key, {"status": "error", "problems": str(exc)}
    return task.key, row_of(result.summary, cfg, Decimal(task.balance))


def row_of(summary: Mapping[str, Any], cfg: StrategyConfig, balance: Decimal) -> dict[str, Any]:
    """A sweep row's figures from a backtest's summary."""
    row = {
        "status": "ok" if not summary["problems"] else "check failed",
        "return_pct": summary["return_pct"],
        "max_drawdown_pct": summary["max_drawdown_pct"],
        "trades": summary["trades"],
        "win_rate": summary["win_rate"],
        "net_pnl": summary["net_pnl"],
        "fees": summary["fees"],
        "funding": summary["funding"] if summary.get("funding_source", "none") != "none" else None,
        "worst_case_pct": round(float(risk_table(cfg, balance).worst_case_pct) * 100, 4),
        "entry_signals": summary["entry_signals"],
        "start": summary["start"],
        "end": summary["end"],
        "problems": "; ".join(summary["problems"]),
    }
    return row


def score(row: Mapping[str, Any], min_trades: int) -> float | None:
    """Return over drawdown (see the module docstring); None for a run that cannot be ranked."""
    if row.get("status") != "ok" or row.get("trades") is None or row["trades"] < min_trades:
        return None
    return float(row["return_pct"]) / max(float(row["max_drawdown_pct"]), MIN_DRAWDOWN_PCT)


def rank(rows: Mapping[int, Mapping[str, Any]], min_trades: int) -> list[int]:
    """Combination indexes, best first: ranked rows by score, then unranked ones by return; ties by index."""

    def key(i: int) -> tuple[int, float, int]:
        s = score(rows[i], min_trades)
        if s is not None:
            return (0, -s, i)
        r = rows[i].get("return_pct")
        return (1, -float(r) if isinstance(r, int | float) else math.inf, i)

    return sorted(rows, key=key)


# ---------------------------------------------------------------------- running many
class Runner:
    """Submits tasks to a process pool and hands back rows as they finish; Ctrl-C stops it cleanly."""

    def __init__(self, source: DataSource, workers: int) -> None:
        self.source = source
        self.workers = max(1, workers)
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Runner:
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=get_context("spawn"),
            initializer=init_worker,
            initargs=(self.source,),
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(wait_for_workers=exc[0] is None)

    def run(
        self, tasks: Sequence[RunTask], on_row: Callable[[tuple[int, int], dict[str, Any]], None]
    ) -> dict[tuple[int, int], dict[str, Any]]:
        assert self._pool is not None
        done: dict[tuple[int, int], dict[str, Any]] = {}
        pending: set[Future[tuple[tuple[int, int], dict[str, Any]]]] = {self._pool.submit(run_task, t) for t in tasks}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: f.result()[0]):
                key, row = fut.result()
                done[key] = row
                on_row(key, row)
        return done

    def stop(self, *, wait_for_workers: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        if wait_for_workers:
            pool.shutdown(wait=True)
            return
        # Interrupted: drop what has not started and end the workers now (their runs are lost anyway).
        processes = list(getattr(pool, "_processes", {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                proc.terminate()
        for proc in processes:
            proc.join(timeout=5)


# ---------------------------------------------------------------------- the CSV
class RowWriter:
    """sweep.csv: a header, then one row per finished run as it finishes; ``finish`` rewrites it in order."""

    def __init__(self, path: Path, keys: Sequence[str], *, window_column: bool = False) -> None:
        self.path = path
        self.keys = list(keys)
        self.window_column = window_column
        self.columns = [
            *(["window", "train_start", "train_end"] if window_column else []),
            "combination",
            "status",
            *self.keys,
            *METRICS,
            "start",
            "end",
            "problems",
        ]
        self.rows: list[dict[str, Any]] = []
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow(self.columns)

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        with self.path.open("a", newline="") as fh:
            csv.writer(fh, lineterminator="\n").writerow([_cell(row.get(c)) for c in self.columns])
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self) -> None:
        order = sorted(self.rows, key=lambda r: (r.get("window", 0), r["combination"]))
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for row in order:
            w.writerow([_cell(row.get(c)) for c in self.columns])
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(buf.getvalue())
        os.replace(tmp, self.path)


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    return v


def combination_row(c: Combination, figures: Mapping[str, Any] | None, min_trades: int) -> dict[str, Any]:
    row: dict[str, Any] = {"combination": c.index, **c.values}
    if c.refused:
        row.update(status="refused", problems="; ".join(c.problems))
        return row
    row.update(figures or {})
    s = score(row, min_trades)
    row["score"] = None if s is None else round(s, 6)
    return row


def config_dict(cfg: StrategyConfig) -> dict[str, Any]:
    """A config as ``parse_config`` takes it back (what a task carries to a worker)."""
    return cfg.to_dict()


def values_text(values: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_cell(v)}" for k, v in values.items())


__all__ = [
    "DEFAULT_MIN_TRADES",
    "METRICS",
    "Combination",
    "DataSource",
    "Grid",
    "RowWriter",
    "RunTask",
    "Runner",
    "SweepInputError",
    "Window",
    "apply_values",
    "combination_row",
    "combinations",
    "config_dict",
    "parse_duration",
    "parse_grid_file",
    "parse_grid_text",
    "parse_walk_forward",
    "rank",
    "row_of",
    "run_task",
    "score",
    "values_text",
    "walk_forward_windows",
]
