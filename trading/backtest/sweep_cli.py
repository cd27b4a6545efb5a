"""``surgedca sweep``: a grid of strategy values backtested in parallel; optionally walk-forward."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from trading.backtest.cli import MAX_SLIPPAGE, funding_for
from trading.backtest.data import BacktestInputError, LoadedData, iso, load_candle_dir, parse_time, warmup_ms
from trading.backtest.progress import ProgressBar, eta
from trading.backtest.sweep import (
    DEFAULT_MIN_TRADES,
    Combination,
    DataSource,
    Grid,
    RowWriter,
    Runner,
    RunTask,
    SweepInputError,
    combination_row,
    combinations,
    config_dict,
    parse_grid_file,
    parse_grid_text,
    parse_walk_forward,
    rank,
    values_text,
    walk_forward_windows,
)
from trading.backtest.sweep_output import (
    atomic_text,
    heatmap_png,
    top_table,
    walk_csv,
    walk_rows,
    walk_table,
    write_configs,
)
from trading.core.config import ConfigError
from trading.core.decimals import decimal_of
from trading.strategy import load_strategy

MINUTE_MS = 60_000


class SweepProgress:
    """Runs done out of all, with the time left at this pace."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = max(1, total)
        self.done = 0
        self.t0 = time.perf_counter()
        self.bar = ProgressBar("sweep") if enabled else None

    def tick(self) -> None:
        self.done += 1
        if self.bar is not None:
            frac = self.done / self.total
            elapsed = time.perf_counter() - self.t0
            self.bar.show(frac, f"{self.bar.bar(frac)}  {self.done}/{self.total} runs  ETA {eta(elapsed, frac)}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_sweep(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        plan = _prepare(args)
    except (BacktestInputError, SweepInputError, ConfigError) as exc:
        msg = "invalid base config:\n  " + "\n  ".join(exc.problems) if isinstance(exc, ConfigError) else str(exc)
        print(f"surgedca sweep: {msg}", file=sys.stderr)
        return 2
    combos: list[Combination] = plan["combos"]
    refused = [c for c in combos if c.refused]
    valid = [c for c in combos if not c.refused]
    print(f"grid: {len(combos)} combination(s), {len(valid)} to run, {len(refused)} refused by check-config")
    for c in refused:
        print(f"  refused #{c.index} {values_text(c.values)}: {'; '.join(c.problems)}", file=sys.stderr)
    if not valid:
        print("surgedca sweep: every combination was refused; nothing to run", file=sys.stderr)
        return 2
    if args.walk_forward:
        return _walk_forward(args, plan, valid)
    return _plain(args, plan, combos, valid)


# ---------------------------------------------------------------------- plain sweep
def _plain(args: argparse.Namespace, plan: dict[str, Any], combos: list[Combination], valid: list[Combination]) -> int:
    out: Path = plan["out"]
    grid: Grid = plan["grid"]
    writer = RowWriter(out / "sweep.csv", grid.keys)
    by_index = {c.index: c for c in combos}
    for c in combos:
        if c.refused:
            writer.add(combination_row(c, None, args.min_trades))
    tasks = [_task(plan, (0, c.index), c, plan["start"], plan["end"]) for c in valid]
    progress = SweepProgress(len(tasks), not args.no_progress)
    rows: dict[int, dict[str, Any]] = {}

    def on_row(key: tuple[int, int], figures: dict[str, Any]) -> None:
        row = combination_row(by_index[key[1]], figures, args.min_trades)
        rows[key[1]] = row
        writer.add(row)
        progress.tick()

    interrupted = _run(plan, tasks, on_row)
    progress.close()
    writer.finish()
    print(f"wrote {out / 'sweep.csv'} ({len(rows)} of {len(valid)} run(s))")
    if interrupted:
        print(
            f"surgedca sweep: interrupted; the {len(rows)} finished row(s) are in {out / 'sweep.csv'}", file=sys.stderr
        )
        return 130
    ranked = rank(rows, args.min_trades)
    best = [by_index[i] for i in ranked[: args.top] if rows[i].get("status") == "ok"]
    named = [(f"top-{n}", c, f"sweep rank {n} of {len(rows)} (score: return % / max drawdown %)") for n, c in
             enumerate(best, start=1)]  # fmt: skip
    for path in write_configs(out, named):
        print(f"wrote {path}")
    hm = _heatmap(args, plan, list(rows.values()), "return %")
    if hm is not None:
        print(f"wrote {hm}")
    print()
    print(top_table([rows[i] for i in ranked], grid.keys, args.top))
    return 0


# ---------------------------------------------------------------------- walk-forward
def _walk_forward(args: argparse.Namespace, plan: dict[str, Any], valid: list[Combination]) -> int:
    out: Path = plan["out"]
    grid: Grid = plan["grid"]
    train_ms, test_ms = parse_walk_forward(args.walk_forward)
    windows = walk_forward_windows(plan["span_start"], plan["span_end"], train_ms, test_ms)
    if not windows:
        raise_msg = (
            f"--walk-forward {args.walk_forward} needs {(train_ms + test_ms) / 86_400_000:g} days; the run spans "
            f"{iso(plan['span_start'])} .. {iso(plan['span_end'])}"
        )
        print(f"surgedca sweep: {raise_msg}", file=sys.stderr)
        return 2
    print(f"walk-forward: {len(windows)} window(s) of {args.walk_forward} from {iso(plan['span_start'])}")
    writer = RowWriter(out / "sweep.csv", grid.keys, window_column=True)
    by_index = {c.index: c for c in valid}
    tasks = [_task(plan, (w.number, c.index), c, w.train_start, w.train_end) for w in windows for c in valid]
    progress = SweepProgress(len(tasks) + len(windows), not args.no_progress)
    train: dict[tuple[int, int], dict[str, Any]] = {}
    window_of = {w.number: w for w in windows}

    def on_train(key: tuple[int, int], figures: dict[str, Any]) -> None:
        w = window_of[key[0]]
        row = combination_row(by_index[key[1]], figures, args.min_trades)
        row.update(window=w.number, train_start=iso(w.train_start), train_end=iso(w.train_end))
        train[key] = row
        writer.add(row)
        progress.tick()

    interrupted = _run(plan, tasks, on_train)
    chosen: dict[int, Combination | None] = {}
    test_tasks = []
    if not interrupted:
        for w in windows:
            rows = {i: r for (n, i), r in train.items() if n == w.number}
            best = rank(rows, args.min_trades)[0] if rows else None
            chosen[w.number] = None
            if best is not None and rows[best].get("status") == "ok":
                chosen[w.number] = combo = by_index[best]
                test_tasks.append(_task(plan, (w.number, best), combo, w.train_end, w.test_end))
    test: dict[tuple[int, int], dict[str, Any]] = {}

    def on_test(key: tuple[int, int], figures: dict[str, Any]) -> None:
        test[key] = combination_row(by_index[key[1]], figures, args.min_trades)
        progress.tick()

    if not interrupted and test_tasks:
        interrupted = _run(plan, test_tasks, on_test)
    progress.close()
    writer.finish()
    print(f"wrote {out / 'sweep.csv'} ({len(train)} training run(s))")
    if interrupted:
        print(f"surgedca sweep: interrupted; the {len(train)} finished training row(s) are kept", file=sys.stderr)
        return 130
    table_rows = walk_rows(windows, chosen, train, test)
    atomic_text(out / "walk_forward.csv", walk_csv(table_rows))
    print(f"wrote {out / 'walk_forward.csv'}")
    named = [(f"chosen-window-{n}", c, f"walk-forward window {n}: best on its training window") for n, c in
             chosen.items() if c is not None]  # fmt: skip
    for path in write_configs(out, named):
        print(f"wrote {path}")
    hm = _heatmap(args, plan, list(train.values()), "training return %, the best window")
    if hm is not None:
        print(f"wrote {hm}")
    print()
    print("in-sample (IS: the training window it was chosen on) vs out-of-sample (OOS: the test window after it)")
    print(walk_table(table_rows))
    return 0


# ---------------------------------------------------------------------- shared
def _run(plan: dict[str, Any], tasks: Sequence[RunTask], on_row: Any) -> bool:
    """Run the tasks; True when Ctrl-C interrupted them (finished rows were handed over already)."""
    runner = Runner(plan["source"], plan["workers"])
    try:
        with runner:
            runner.run(tasks, on_row)
    except KeyboardInterrupt:
        return True
    except BrokenProcessPool:
        # A worker died (killed, out of memory): keep what finished, say so, stop like an interruption.
        print("surgedca sweep: a worker process died (out of memory? try fewer --workers)", file=sys.stderr)
        return True
    return False


def _task(plan: dict[str, Any], key: tuple[int, int], c: Combination, start: int | None, end: int | None) -> RunTask:
    assert c.cfg is not None
    return RunTask(key, config_dict(c.cfg), start, end, plan["balance"], plan["slippage"], plan["fast"])


def _heatmap(args: argparse.Namespace, plan: dict[str, Any], rows: list[dict[str, Any]], what: str) -> Path | None:
    grid: Grid = plan["grid"]
    keys = plan["heatmap"]
    if keys is None:
        return None
    x, y = keys
    xv, yv = grid.values[grid.keys.index(x)], grid.values[grid.keys.index(y)]
    others = [k for k in grid.keys if k not in (x, y)]
    title = what + (f" (the best over {', '.join(others)})" if others else "")
    path = plan["out"] / "heatmap.png"
    path.write_bytes(heatmap_png(rows, x_key=x, y_key=y, x_values=xv, y_values=yv, title=title))
    return path


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Every input checked before anything runs."""
    if bool(args.grid) == bool(args.grid_file):
        raise SweepInputError("give the grid either as --grid 'key=v1,v2 ...' or as --grid-file FILE")
    grid = parse_grid_text(args.grid) if args.grid else parse_grid_file(args.grid_file)
    base = load_strategy(args.config)
    balance = float(args.balance)
    if not math.isfinite(balance) or balance <= 0:
        raise BacktestInputError(f"--balance must be a positive number of USDT, got {args.balance}")
    slippage = float(args.slippage)
    if not math.isfinite(slippage) or not 0 <= slippage < MAX_SLIPPAGE:
        raise BacktestInputError(f"--slippage must be a fraction in [0, {MAX_SLIPPAGE}), got {args.slippage}")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise SweepInputError(f"--workers must be at least 1, got {workers}")
    if args.top < 0:
        raise SweepInputError(f"--top must be 0 or more, got {args.top}")
    if args.min_trades is None:
        args.min_trades = DEFAULT_MIN_TRADES
    if args.min_trades < 0:
        raise SweepInputError(f"--min-trades must be 0 or more, got {args.min_trades}")
    if args.walk_forward:
        parse_walk_forward(args.walk_forward)
    heatmap = _heatmap_keys(args.heatmap, grid)
    start = parse_time(args.date_from, "--from") if args.date_from else None
    end = parse_time(args.date_to, "--to") if args.date_to else None
    if start is not None and end is not None and end <= start:
        raise BacktestInputError(f"--to ({args.date_to}) must be after --from ({args.date_from})")
    symbols = args.symbols.split(",") if args.symbols else None
    data: LoadedData = load_candle_dir(Path(args.data), symbols)
    funding = funding_for(args, data)  # checks the funding files and the rate before any worker starts
    combos = combinations(base, grid)
    warm = max([warmup_ms(c.cfg.signals) for c in combos if c.cfg is not None] or [warmup_ms(base.signals)])
    span_start = start if start is not None else data.first_ms + warm
    span_start -= span_start % MINUTE_MS
    span_end = end if end is not None else data.last_ms + MINUTE_MS
    if span_start >= span_end:
        raise BacktestInputError(
            f"the candles ({iso(data.first_ms)} .. {iso(data.last_ms)}) leave nothing after the warm-up and --from/--to"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return {
        "grid": grid,
        "combos": combos,
        "out": out,
        "workers": workers,
        "heatmap": heatmap,
        "start": start,
        "end": end,
        "span_start": span_start,
        "span_end": span_end,
        "balance": str(decimal_of(balance)),
        "slippage": str(decimal_of(slippage)),
        "fast": not args.full_replay,
        "source": DataSource(
            str(data.directory),
            tuple(data.symbols) if symbols is not None else None,
            funding is not None,
            str(funding.flat_rate) if funding is not None else "0",
        ),
    }


def _heatmap_keys(text: str | None, grid: Grid) -> tuple[str, str] | None:
    if text:
        keys = [k.strip().lower() for k in text.split(",")]
        if len(keys) != 2 or keys[0] == keys[1]:
            raise SweepInputError(f"--heatmap takes two different grid keys, e.g. leverage,take_half_at; got {text!r}")
        missing = [k for k in keys if k not in grid.keys]
        if missing:
            raise SweepInputError(f"--heatmap: {', '.join(missing)} not in the grid ({', '.join(grid.keys)})")
        return keys[0], keys[1]
    varied = [k for k, v in zip(grid.keys, grid.values, strict=True) if len(v) > 1]
    return (varied[0], varied[1]) if len(varied) >= 2 else None


__all__ = ["cmd_sweep"]
