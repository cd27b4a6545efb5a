"""Micro-benchmark: the orders-journal insert on the price-to-order hot path (order-safety rule 1).

A file database in WAL mode with synchronous=NORMAL, as the service opens it;
each ``insert_pending`` is timed alone (autocommit: one INSERT, one commit),
once with SQLite's automatic checkpoints and once with ``Database.start_checkpointer``
(what ``surgedca run`` should use). Prints JSON: microseconds per insert (p50/p90/p99/p99.9/max).

    .venv/bin/python bench/bench_journal_insert.py [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage import Database, OrdersJournal, PositionsRepo
from trading.core.models import Leg, PositionState, Stage

T0 = 1_767_225_600_000


def _pct(sorted_us: list[float], q: float) -> float:
    return round(sorted_us[min(len(sorted_us) - 1, int(q * len(sorted_us)))], 1)


def run(n: int, *, checkpointer: bool, positions: int = 10) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.open(Path(tmp) / "bench.sqlite3")
        if checkpointer:
            db.start_checkpointer(interval_s=0.5)
        try:
            repo = PositionsRepo(db)
            pids = []
            for i in range(positions):
                sym = f"SYM{i}USDT"
                state = PositionState(
                    sym, Stage.INITIAL, (Leg(Stage.INITIAL, Decimal("1.2345"), Decimal(100)),), Decimal(100),
                    Decimal("1.2345"),
                )  # fmt: skip
                pids.append(repo.create_open(sym, state, "signal", Decimal(15), T0))
            journal = OrdersJournal(db)
            qty = Decimal("123.456")
            times: list[float] = []
            for k in range(n):
                pid = pids[k % positions]
                cid = f"sdca-{pid}-close-{k}"
                now = T0 + k
                t = time.perf_counter_ns()
                journal.insert_pending(
                    cid, position_id=pid, symbol=f"SYM{k % positions}USDT", action="close", kind="market",
                    side="SELL", qty=qty, reduce_only=True, now_ms=now,
                )  # fmt: skip
                times.append((time.perf_counter_ns() - t) / 1000)
                if k % 2 == 0:  # as in life, most orders get their outcome written back
                    journal.mark(cid, "filled", now_ms=now + 1, filled_qty=qty, avg_price=Decimal("1.3"))
            mode = db.conn.execute("PRAGMA journal_mode").fetchone()[0]
            sync = db.conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            db.close()
    times_sorted = sorted(times)
    return {
        "checkpoints": "background thread" if checkpointer else "sqlite automatic (in the committing call)",
        "journal_mode": mode,
        "synchronous": {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(sync, sync),
        "us_p50": _pct(times_sorted, 0.50),
        "us_p90": _pct(times_sorted, 0.90),
        "us_p99": _pct(times_sorted, 0.99),
        "us_p999": _pct(times_sorted, 0.999),
        "us_max": round(times_sorted[-1], 1),
        "us_mean": round(statistics.fmean(times), 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000, help="inserts to time")
    args = p.parse_args()
    results = [run(args.n, checkpointer=False), run(args.n, checkpointer=True)]
    print(json.dumps({"benchmark": "journal_insert_pending", "n": args.n, "results": results}, indent=1))


if __name__ == "__main__":
    main()
