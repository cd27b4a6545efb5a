"""The ``surgedca`` command line (ARCHITECTURE's contract).

Each subcommand imports its implementation lazily so ``check-config`` or
``status`` start fast and never pull in aiogram or ccxt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def _settings():
    from trading.settings import SettingsError, load_settings

    try:
        return load_settings()
    except SettingsError as exc:
        print(f"surgedca: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _private_files() -> None:
    """Commands that write the database or its backups create them for their owner only."""
    from storage.permissions import private_umask

    private_umask()


def _run(args: argparse.Namespace) -> int:
    from trading.service import run_service

    return run_service(_settings())


def _status(args: argparse.Namespace) -> int:
    from trading.status import print_status

    return print_status(_settings(), as_json=args.json, check_only=args.check)


def _check_config(args: argparse.Namespace) -> int:
    from trading.strategy import cmd_check_config

    return cmd_check_config(args.file, balance=args.balance)


def _backup(args: argparse.Namespace) -> int:
    from storage.maintenance import cmd_backup

    _private_files()
    return cmd_backup(_settings())


def _reset(args: argparse.Namespace) -> int:
    from storage.maintenance import cmd_reset

    _private_files()
    return cmd_reset(_settings(), yes=args.yes)


def _resume(args: argparse.Namespace) -> int:
    from storage.maintenance import cmd_resume

    _private_files()
    return cmd_resume(_settings())


def _rebind(args: argparse.Namespace) -> int:
    from trading.binding import cmd_rebind

    _private_files()
    return cmd_rebind(_settings(), yes=args.yes)


def _backtest(args: argparse.Namespace) -> int:
    from trading.backtest.cli import cmd_backtest

    return cmd_backtest(args)


def _sweep(args: argparse.Namespace) -> int:
    from trading.backtest.sweep_cli import cmd_sweep

    return cmd_sweep(args)


def _download(args: argparse.Namespace) -> int:
    from trading.download import cmd_download

    return cmd_download(args, _settings())


def _add_run_arguments(sp: argparse.ArgumentParser) -> None:
    """The options ``backtest`` and ``sweep`` share: data, window, account, funding, replay mode."""
    sp.add_argument("--data", type=Path, required=True, help="directory of SYMBOL-1m.csv[.gz] files")
    sp.add_argument("--symbols", default=None, help="comma-separated subset (default: every file)")
    sp.add_argument("--from", dest="date_from", default=None, help="start (YYYY-MM-DD or ISO time, UTC)")
    sp.add_argument("--to", dest="date_to", default=None, help="end (exclusive, YYYY-MM-DD or ISO time, UTC)")
    sp.add_argument("--balance", type=float, default=1000.0, help="starting balance (USDT)")
    sp.add_argument("--slippage", type=float, default=0.0005, help="market order slippage, fraction (0.0005)")
    sp.add_argument(
        "--funding-rate",
        type=float,
        default=0.0001,
        help="flat funding rate per 8 hours for symbols without a SYMBOL-funding.csv file (0.0001 = 0.01%%)",
    )
    sp.add_argument("--no-funding", action="store_true", help="charge no funding at all")
    sp.add_argument(
        "--full-replay",
        action="store_true",
        help="send every symbol's every minute through the engine (slower; the same trades)",
    )
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="surgedca", description="Surge-scanning DCA bot for Binance USD-M futures.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help_, description=help_)
        sp.set_defaults(func=func)
        return sp

    add("run", _run, "run the service (mode from TRADING_MODE; Ctrl-C or SIGTERM stops it cleanly)")
    sp = add("status", _status, "positions and health, read from the database")
    sp.add_argument("--json", action="store_true", help="machine-readable output")
    sp.add_argument(
        "--check", action="store_true", help="exit 0 only if the service is running (writes its health): for probes"
    )
    sp = add("check-config", _check_config, "validate the strategy config and print the risk table")
    sp.add_argument("--file", type=Path, default=None, help="TOML file (default: STRATEGY_FILE, else SPEC defaults)")
    sp.add_argument("--balance", type=float, default=1000.0, help="account balance for the table (USDT)")
    add("backup", _backup, "online backup of the database to a timestamped file")
    sp = add("reset", _reset, "start afresh: backs up, then clears positions and state (keeps the audit log)")
    sp.add_argument("--yes", action="store_true", help="really do it")
    add("resume", _resume, "allow new entries again while the service is stopped (after a reset or a /pause)")
    sp = add("rebind", _rebind, "accept a new API key of the same live account for this database")
    sp.add_argument("--yes", action="store_true", help="really do it")

    sp = add("backtest", _backtest, "replay stored 1m candles through the same engine")
    _add_run_arguments(sp)
    sp.add_argument(
        "--config", action="append", type=Path, default=None, help="strategy TOML; give twice to compare two configs"
    )
    sp.add_argument("--out", type=Path, default=Path("out/backtest"), help="output directory")

    sp = add("sweep", _sweep, "backtest every combination of a grid of strategy values, in parallel")
    _add_run_arguments(sp)
    sp.add_argument("--grid", default=None, help="e.g. 'leverage=5,10 stop_loss_by_stage.initial=-0.08,-0.10'")
    sp.add_argument("--grid-file", type=Path, default=None, help="TOML grid: each key holds a list of values")
    sp.add_argument("--config", type=Path, default=None, help="base strategy TOML (default: SPEC defaults)")
    sp.add_argument("--workers", type=int, default=None, help="parallel processes (default: the CPU cores)")
    sp.add_argument("--out", type=Path, default=Path("out/sweep"), help="output directory")
    sp.add_argument("--heatmap", default=None, help="two grid keys X,Y (default: the first two that vary)")
    sp.add_argument("--top", type=int, default=3, help="best configs to write as strategy files (3)")
    sp.add_argument(
        "--min-trades", type=int, default=None, help="fewest closed trades for a run to be ranked (default 3)"
    )
    sp.add_argument(
        "--walk-forward",
        default=None,
        metavar="TRAIN/TEST",
        help="e.g. 14d/7d: choose on each training window, report the next test window",
    )

    sp = add("download", _download, "download public 1m klines and funding rates (resumable) for backtests")
    sp.add_argument("--symbols", required=True, help="comma-separated, e.g. BTCUSDT,ETHUSDT")
    sp.add_argument("--days", type=int, required=True, help="how many days back from now")
    sp.add_argument("--out", type=Path, required=True, help="output directory")
    sp.add_argument("--no-funding", action="store_true", help="candles only, no funding-rate history")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
