"""Benchmark: the ladder's decision (the pure part of the hot path), in microseconds per call (JSON output).

``ladder.decide`` runs when a price leaves a position's trigger band; ``ladder.triggers`` after every fill and
config change. Both are timed on positions at each stage (initial, after the first and second DCA, a runner
after take-half) over prices across the whole ladder (stop, DCA levels, recovery, take-half, trailing stop),
so every rule is reached. The config's fractions are Decimal views made once per config: the figures show
what a decision costs with them.

    .venv/bin/python bench/bench_ladder.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trading.core import ladder
from trading.core.config import StrategyConfig
from trading.core.models import Leg, PositionState, Stage, SymbolRules

D = Decimal
RULES = SymbolRules("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"), min_qty=D("0.001"), min_notional=D("5"))


def positions() -> list[PositionState]:
    initial = PositionState("BTCUSDT", Stage.INITIAL, (Leg(Stage.INITIAL, D("100"), D("1.5")),), D("1.5"), D("100"))
    first = PositionState(
        "BTCUSDT",
        Stage.FIRST_DCA,
        (Leg(Stage.INITIAL, D("100"), D("1.5")), Leg(Stage.FIRST_DCA, D("97"), D("2.06"))),
        D("3.56"),
        D("100"),
        dca1_done=True,
    )
    second = PositionState(
        "BTCUSDT",
        Stage.SECOND_DCA,
        (
            Leg(Stage.INITIAL, D("100"), D("1.5")),
            Leg(Stage.FIRST_DCA, D("97"), D("2.06")),
            Leg(Stage.SECOND_DCA, D("94"), D("2.12")),
        ),
        D("5.68"),
        D("100"),
        dca1_done=True,
        dca2_done=True,
    )
    runner = PositionState(
        "BTCUSDT",
        Stage.INITIAL,
        (Leg(Stage.INITIAL, D("100"), D("0.75")),),
        D("0.75"),
        D("100"),
        half_taken=True,
        peak_price=D("112"),
    )
    return [initial, first, second, runner]


PRICES = [D(p) for p in ("85", "92.9", "93.5", "96.9", "97.5", "99", "100.1", "105", "108.5", "110.2", "113")]


def _per_call_us(fn, calls: int, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        fn()
        samples.append((time.perf_counter_ns() - t0) / calls / 1000)
    return round(statistics.median(samples), 3)


def run(rounds: int) -> dict[str, object]:
    cfg = StrategyConfig()
    states = positions()
    balance = D("1000")
    pairs = [(s, p) for s in states for p in PRICES]

    def decide_all() -> None:
        for s, p in pairs:
            ladder.decide(s, p, cfg=cfg, rules=RULES, balance=balance)

    def triggers_all() -> None:
        for s in states:
            ladder.triggers(s, cfg)

    decide_all()  # warm: caches, the config's Decimal views
    return {
        "benchmark": "ladder decision (pure part of the hot path)",
        "unit": "microseconds per call (median of rounds)",
        "decide": _per_call_us(decide_all, len(pairs), rounds),
        "triggers": _per_call_us(triggers_all, len(states), rounds),
        "calls_per_round": {"decide": len(pairs), "triggers": len(states)},
        "rounds": rounds,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=20_000)
    args = ap.parse_args()
    print(json.dumps(run(args.rounds), indent=2))


if __name__ == "__main__":
    main()
