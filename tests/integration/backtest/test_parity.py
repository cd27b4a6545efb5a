"""Parity: a backtest decides exactly what the running service decides when fed the same candles.

The real ``Service`` runs in sim mode (``SIM_SPEED=0``, headless, a temp SQLite
file) over a few days cut from the real candle files; a backtest replays the
same files over the same window. Every position (times, close reason, highest
stage) and every fill (time, side, quantity, price, fee, stage, reason, client
order id) must be equal.
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from storage.db import Database
from tests.conftest import KLINES_DIR
from trading.backtest import Backtest, BacktestSpec, load_candle_dir
from trading.candle_files import read_candles
from trading.core.config import StrategyConfig
from trading.orders import ClientIds
from trading.service import Service
from trading.settings import Settings
from trading.store import Store

# The 2026-01 window: from 2026-01-12 these symbols give the default strategy entries, both DCA levels,
# recovery sells, take-half, a runner's dead-cross exit and stop losses within three days.
SYMBOLS = ("1000PEPEUSDT", "DOGEUSDT", "SUIUSDT", "XMRUSDT", "ZECUSDT")
DAY_MS = 86_400_000
SKIP_DAYS = 1  # the files start 2026-01-04; the cut starts a day later
WARMUP_DAYS = 7  # the replay's default start: the first candle + 7 days
REPLAY_DAYS = 3


def cut_files(dest: Path) -> None:
    """The warm-up plus two days of each symbol, as plain CSV (the service reads SIM_DATA_DIR)."""
    dest.mkdir()
    for symbol in SYMBOLS:
        c = read_candles(KLINES_DIR / f"{symbol}-1m.csv.gz")
        first = int(c.open_time[0]) + SKIP_DAYS * DAY_MS
        a, b = np.searchsorted(c.open_time, [first, first + (WARMUP_DAYS + REPLAY_DAYS) * DAY_MS])
        rows = zip(
            c.open_time[a:b].tolist(),
            c.open[a:b].tolist(),
            c.high[a:b].tolist(),
            c.low[a:b].tolist(),
            c.close[a:b].tolist(),
            c.volume[a:b].tolist(),
            strict=True,
        )
        lines = ["open_time,open,high,low,close,volume", *(",".join(map(repr, r)) for r in rows)]
        (dest / f"{symbol}-1m.csv").write_text("\n".join(lines) + "\n")


def decisions(store: Store) -> list[tuple[Any, ...]]:
    """Every position with its fills, in a comparable form."""
    out = []
    records = [*store.positions.list_closed(), *store.positions.list_open()]
    for p in sorted(records, key=lambda r: (r.opened_at_ms, r.symbol)):
        ids = store.client_ids()  # each database has its own instance tag: compare the rest of the id
        fills = tuple(
            (_untagged(ids, f.client_order_id), f.ts_ms, f.side, f.qty, f.price, f.fee, f.stage, f.reason)
            for f in store.fills.for_position(p.id)
        )
        out.append((p.id, p.symbol, p.status, p.opened_at_ms, p.closed_at_ms, p.close_reason, p.max_stage, fills))
    return out


def _untagged(ids: ClientIds, client_id: str) -> str:
    parsed = ids.ours(client_id)
    return f"{parsed.position_id}-{parsed.action}-{parsed.n}" if parsed is not None else client_id


async def run_service(data_dir: Path, db_path: Path) -> list[tuple[Any, ...]]:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        trading_mode="sim",
        sim_data_dir=data_dir,
        sim_speed=0,
        sim_balance=1000,
        sim_slippage=0.0005,
        db_path=db_path,
        log_level="WARNING",
    )
    service = Service(settings)
    await service.start()
    try:
        market = service.bundle.market  # type: ignore[union-attr]
        deadline = time.monotonic() + 90
        while not market.finished:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "the sim replay did not finish in time"
            await asyncio.sleep(0.05)
        engine = service.engine
        assert engine is not None
        assert await engine.runner.drain(10)
        for _ in range(20):  # the last user events and their handlers
            await asyncio.sleep(0)
    finally:
        await service.shutdown("parity test done")
    db = Database.open(db_path)
    try:
        return decisions(Store.of(db))
    finally:
        db.close()


async def test_backtest_decides_exactly_what_the_sim_service_decides(tmp_path: Path) -> None:
    data_dir = tmp_path / "klines"
    cut_files(data_dir)

    live = await run_service(data_dir, tmp_path / "service.sqlite3")

    data = load_candle_dir(data_dir)
    spec = BacktestSpec(
        data=data.data,
        cfg=StrategyConfig(),
        balance=Decimal(1000),
        slippage=Decimal("0.0005"),
        close_at_end=False,  # the service keeps them open too
    )
    bt = Backtest(spec)
    try:
        await bt.run()
        backtest = decisions(bt.store)
        result = await bt.finish()
    finally:
        await bt.keeper.close()
        bt.close()

    # The window is worth comparing: entries, both DCA levels and several kinds of exit happened.
    reasons = {f[7] for p in backtest for f in p[7] if f[2] == "SELL"}
    assert len(backtest) >= 5, backtest
    assert {p[6].value for p in backtest} == {"initial", "first_dca", "second_dca"}
    assert {"stop_loss", "take_half", "recovery_first_dca"} <= reasons, reasons
    assert result.problems == []

    assert len(live) == len(backtest)
    for mine, theirs in zip(backtest, live, strict=True):
        assert mine == theirs
