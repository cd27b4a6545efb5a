"""Backtests: the service's engine over stored 1m candles on a simulated clock (``surgedca backtest``).

``run_backtest(BacktestSpec(...))`` runs one config and returns a ``BacktestResult`` (trades with their
legs, entry signals, equity curve, summary and consistency checks); ``write_outputs`` writes
``summary.json``, ``trades.csv``, ``signals.csv`` and ``equity.png``.
"""

from trading.backtest.data import BacktestInputError, LoadedData, load_candle_dir, warmup_ms
from trading.backtest.output import summary_table, write_outputs
from trading.backtest.results import BacktestResult, Leg, Signal, Trade
from trading.backtest.runner import Backtest, BacktestSpec, Progress, run_backtest

__all__ = [
    "Backtest",
    "BacktestInputError",
    "BacktestResult",
    "BacktestSpec",
    "Leg",
    "LoadedData",
    "Progress",
    "Signal",
    "Trade",
    "load_candle_dir",
    "run_backtest",
    "summary_table",
    "warmup_ms",
    "write_outputs",
]
