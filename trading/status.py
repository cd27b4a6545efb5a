"""``surgedca status``: positions and health, read from the database (works while the service runs)."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from storage.db import Database
from trading.core import ladder
from trading.core.config import ConfigError, StrategyConfig
from trading.core.order_state import OrderKind
from trading.settings import Settings
from trading.store import Store


def _open_read_only(settings: Settings) -> Store | None:
    path = settings.db_path
    if not path.exists():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    return Store.of(Database(path, conn))


def _config(settings: Settings, store: Store) -> StrategyConfig:
    from trading.service import effective_config

    try:
        return effective_config(settings, store)
    except ConfigError:
        return StrategyConfig()


def collect_status(settings: Settings) -> dict[str, Any] | None:
    store = _open_read_only(settings)
    if store is None:
        return None
    try:
        cfg = _config(settings, store)
        now = int(time.time() * 1000)
        positions = []
        for rec in store.positions.list_open():
            st = rec.state
            positions.append(
                {
                    "symbol": rec.symbol,
                    "stage": st.stage.value,
                    "qty": str(st.qty),
                    "avg_price": str(st.avg_price),
                    "stop_price": str(ladder.stop_price(st, cfg)),
                    "backstop_price": str(rec.backstop_price) if rec.backstop_price is not None else None,
                    "half_taken": st.half_taken,
                    "origin": rec.origin,
                    "opened_at_ms": rec.opened_at_ms,
                    "funding": str(rec.funding),
                }
            )
        closed = store.positions.list_closed()[-10:]
        return {
            "db_path": str(settings.db_path),
            "now_ms": now,
            "health": store.state.get("health"),
            "paused": bool(store.state.get("paused", False)),
            "binding": store.state.get("binding"),
            "open_positions": positions,
            "recent_trades": [
                {
                    "symbol": r.symbol,
                    "reason": r.close_reason,
                    "pnl": str(r.realized_pnl) if r.realized_pnl is not None else None,
                    "funding": str(r.funding),
                    "closed_at_ms": r.closed_at_ms,
                }
                for r in closed
            ],
            "unresolved_orders": [r.client_order_id for r in store.journal.unresolved() if r.kind is OrderKind.MARKET],
        }
    finally:
        store.db.conn.close()


def _ts(ms: int | None) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(x: Any, places: int = 6) -> str:
    if x is None:
        return "-"
    d = Decimal(str(x))
    return f"{d:.{places}f}".rstrip("0").rstrip(".") if "." in f"{d:.{places}f}" else str(d)


def render(status: dict[str, Any]) -> str:
    lines = [f"SurgeDCA status  (database {status['db_path']})"]
    binding = status.get("binding")
    if binding:
        lines.append(
            f"  belongs to mode {binding.get('mode')}, exchange environment {binding.get('environment')}, "
            f"account {binding.get('account')}"
        )
    h = status.get("health")
    if h:
        age = (status["now_ms"] - h.get("written_wall_ms", h.get("written_ms", 0))) / 1000
        running = "running" if age < 60 else f"NOT RUNNING? (last health {age:.0f} s ago)"
        lines.append(
            f"  {running} · mode {h['mode']} · up {h['uptime_s'] / 60:.0f} min · "
            f"paused: {'yes' if status['paused'] else 'no'}"
        )
        lines.append(
            f"  balance {_num(h.get('balance'), 2)} USDT · margin in use {_num(h.get('margin_in_use'), 2)} · "
            f"errors last hour {h.get('errors_last_hour', 0)} · REST weight {h.get('rest_weight_1m', 0)}/2400"
        )
        tg = h.get("telegram")
        if tg:
            if tg.get("up"):
                lines.append("  telegram: up")
            else:
                what = "REJECTS THE TOKEN" if tg.get("rejected") else "UNREACHABLE"
                lines.append(
                    f"  telegram: {what} since {_ts(tg.get('since_ms'))} ({tg.get('failures')} failed requests): "
                    f"{tg.get('last_error')}"
                )
        for s in h.get("streams", []):
            age_s = s.get("last_message_age_s")
            lines.append(
                f"  stream {s['name']}: {'up' if s['up'] else 'DOWN'}"
                + (f" (last message {age_s:.1f} s ago)" if age_s is not None else "")
            )
        lines.append(f"  last reconcile {_ts(h.get('last_reconcile_ms'))}: {h.get('last_reconcile_summary')}")
        lines.append(
            f"  last scan {_ts(h.get('last_scan_ms'))}: {h.get('last_scan_symbols')} symbols, "
            f"{h.get('last_scan_signals')} signal(s)"
        )
    else:
        lines.append("  no health snapshot yet (has the service run?)")
    pos = status["open_positions"]
    lines.append(f"Open positions: {len(pos)}")
    for p in pos:
        lines.append(
            f"  {p['symbol']:<14} {p['stage']:<11} qty {_num(p['qty'])}  avg {_num(p['avg_price'])}  "
            f"stop {_num(p['stop_price'])}  backstop {_num(p['backstop_price'])}  "
            f"{'runner ' if p['half_taken'] else ''}{p['origin']} since {_ts(p['opened_at_ms'])}"
            + (f"  funding {_num(p['funding'], 4)}" if Decimal(p.get("funding") or 0) else "")
        )
    trades = status["recent_trades"]
    if trades:
        lines.append("Recent closed trades (PnL after fees and funding):")
        for t in trades:
            lines.append(
                f"  {t['symbol']:<14} {t['reason'] or '-':<20} PnL {_num(t['pnl'], 4)} USDT  {_ts(t['closed_at_ms'])}"
                + (f"  (funding {_num(t['funding'], 4)} included)" if Decimal(t.get("funding") or 0) else "")
            )
    if status["unresolved_orders"]:
        lines.append(f"Orders awaiting resolution: {', '.join(status['unresolved_orders'])}")
    return "\n".join(lines)


HEALTHY_WITHIN_S = 60  # the running service writes its health snapshot every 10 s


def check(status: dict[str, Any]) -> tuple[bool, str]:
    """Is the service running and writing its health (the container's HEALTHCHECK)? (verdict, one line)."""
    h = status.get("health")
    if not h:
        return False, "no health snapshot yet: the service has not finished starting"
    age_s = (status["now_ms"] - h.get("written_wall_ms", 0)) / 1000
    if h.get("stopping"):
        return False, "the service stopped (its last health snapshot says so)"
    if age_s > HEALTHY_WITHIN_S:
        return False, f"the last health snapshot is {age_s:.0f} s old: the service is not running (or stuck)"
    return True, f"running: mode {h.get('mode')}, health written {age_s:.0f} s ago"


def print_status(settings: Settings, *, as_json: bool = False, check_only: bool = False) -> int:
    try:
        status = collect_status(settings)
    except sqlite3.DatabaseError as exc:
        print(f"surgedca: cannot read {settings.db_path}: {exc}", file=sys.stderr)
        return 2
    if status is None:
        print(f"surgedca: no database at {settings.db_path} yet (start the service with `make run`)", file=sys.stderr)
        return 1
    if check_only:
        healthy, line = check(status)
        print(line, file=sys.stdout if healthy else sys.stderr)
        return 0 if healthy else 1
    print(json.dumps(status, indent=2, default=str) if as_json else render(status))
    return 0
