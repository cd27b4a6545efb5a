"""``surgedca backtest``: run one config (or compare two) over candle files and write the outputs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import sys
from pathlib import Path

from trading.backtest.data import BacktestInputError, LoadedData, iso, load_candle_dir, parse_time, warmup_ms
from trading.backtest.funding import FundingSchedule, load_funding
from trading.backtest.output import summary_table, write_outputs
from trading.backtest.progress import ProgressBar
from trading.backtest.results import BacktestResult
from trading.backtest.runner import BacktestSpec, run_backtest
from trading.core.config import ConfigError, StrategyConfig
from trading.core.decimals import decimal_of
from trading.strategy import load_strategy

MAX_SLIPPAGE = 0.05
MAX_FLAT_FUNDING = 0.01  # per 8 hours; Binance caps most symbols far lower


def cmd_backtest(args: argparse.Namespace) -> int:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        runs = _prepare(args)
    except (BacktestInputError, ConfigError) as exc:
        print(f"surgedca backtest: {_message(exc)}", file=sys.stderr)
        return 2
    data, specs = runs
    results: list[BacktestResult] = []
    for spec, out_dir in specs:
        bar = None if args.no_progress else ProgressBar(spec.name if len(specs) > 1 else "")
        try:
            result = asyncio.run(run_backtest(spec, progress=bar))
        except ValueError as exc:
            print(f"surgedca backtest: {exc}", file=sys.stderr)
            return 2
        finally:
            if bar is not None:
                bar.close()
        if result.joined_after_start:
            names = ", ".join(sorted(result.joined_after_start))
            print(
                f"surgedca backtest: note: the data of {names} begins after the start ({iso(result.start_ms)}); "
                "each joins the universe at the first hourly refresh after its data begins",
                file=sys.stderr,
            )
        paths = write_outputs(result, out_dir)
        print(f"{spec.name}: wrote {', '.join(str(p) for p in paths.values())}")
        results.append(result)
    print()
    print(f"data: {data.directory} ({len(data.symbols)} symbols)")
    print(f"funding: {specs[0][0].funding.describe() if specs[0][0].funding is not None else 'not charged'}")
    print(summary_table(results))
    failed = [r for r in results if r.problems]
    for r in failed:
        for problem in r.problems:
            print(f"surgedca backtest: {r.name}: consistency check failed: {problem}", file=sys.stderr)
    return 1 if failed else 0


def _prepare(args: argparse.Namespace) -> tuple[LoadedData, list[tuple[BacktestSpec, Path]]]:
    """Every input checked before anything runs; returns the data and (spec, output folder) per config."""
    balance = float(args.balance)
    if not math.isfinite(balance) or balance <= 0:
        raise BacktestInputError(f"--balance must be a positive number of USDT, got {args.balance}")
    slippage = float(args.slippage)
    if not math.isfinite(slippage) or not 0 <= slippage < MAX_SLIPPAGE:
        raise BacktestInputError(f"--slippage must be a fraction in [0, {MAX_SLIPPAGE}), got {args.slippage}")
    start = parse_time(args.date_from, "--from") if args.date_from else None
    end = parse_time(args.date_to, "--to") if args.date_to else None
    if start is not None and end is not None and end <= start:
        raise BacktestInputError(f"--to ({args.date_to}) must be after --from ({args.date_from})")
    paths: list[Path | None] = list(args.config) if args.config else [None]
    if len(paths) > 2:
        raise BacktestInputError("give --config once, or twice to compare two configs")
    configs = [(path, _load_config(path)) for path in paths]
    symbols = [s for s in args.symbols.split(",")] if args.symbols else None
    data = load_candle_dir(Path(args.data), symbols)
    if start is not None and start > data.last_ms:
        raise BacktestInputError(f"--from {args.date_from} is after the last candle ({iso(data.last_ms)})")
    if end is not None and end <= data.first_ms:
        raise BacktestInputError(f"--to {args.date_to} is before the first candle ({iso(data.first_ms)})")
    if start is not None:
        history = start - data.first_ms
        need = max(warmup_ms(cfg.signals) for _, cfg in configs)
        if history < need:
            print(
                f"surgedca backtest: warning: only {max(history, 0) / 86_400_000:.1f} day(s) of candles before "
                f"--from; the signals read {need / 86_400_000:.0f} (their conditions are false until then)",
                file=sys.stderr,
            )
    funding = funding_for(args, data)
    names = _names([p for p, _ in configs])
    specs = []
    for (_, cfg), name in zip(configs, names, strict=True):
        out = Path(args.out) / name if len(configs) > 1 else Path(args.out)
        spec = BacktestSpec(
            data=data.data,
            cfg=cfg,
            balance=decimal_of(balance),
            slippage=decimal_of(slippage),
            start_ms=start,
            end_ms=end,
            name=name,
            source=f"files:{data.directory}",
            funding=funding,
            fast=not args.full_replay,
        )
        specs.append((spec, out))
    return data, specs


def funding_for(args: argparse.Namespace, data: LoadedData) -> FundingSchedule | None:
    """The funding the run charges: the data directory's funding files, the flat rate elsewhere; or none."""
    if args.no_funding:
        return None
    rate = float(args.funding_rate)
    if not math.isfinite(rate) or not -MAX_FLAT_FUNDING <= rate <= MAX_FLAT_FUNDING:
        raise BacktestInputError(
            f"--funding-rate must be a fraction per 8 hours in [-{MAX_FLAT_FUNDING}, {MAX_FLAT_FUNDING}],"
            f" got {args.funding_rate}"
        )
    return load_funding(data.directory, data.symbols, flat_rate=decimal_of(rate))


def _load_config(path: Path | None) -> StrategyConfig:
    return load_strategy(path)


def _names(paths: list[Path | None]) -> list[str]:
    """A folder name per config: the file's stem ("default" without a file), made unique."""
    names: list[str] = []
    for i, p in enumerate(paths, start=1):
        name = p.stem if p is not None else "default"
        if name in names:
            name = f"{name}-{i}"
        names.append(name)
    return names


def _message(exc: Exception) -> str:
    if isinstance(exc, ConfigError):
        return "invalid strategy config:\n  " + "\n  ".join(exc.problems)
    return str(exc)
