"""SIGKILL of the service at several points of a ladder, then a restart: no lost position, no duplicate order.

The service runs as a real subprocess (``python -m trading.cli run``) against the fake Binance of this test
process; the kill points are made exact with the fake's request delays:
- before the journal write: the service is dead when the price crosses the trigger;
- after the fill, before the ladder update: the exchange executes the order, the reply is held, we kill;
- after the send, before the exchange executes: the request is held at the exchange, we kill, it executes later.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from storage.db import Database
from tests.e2e.conftest import API_KEY, API_SECRET, until
from tests.fakes.binance import FakeBinance
from trading.store import Store

D = Decimal
SYM = "SOLUSDT"
REPO = Path(__file__).resolve().parents[2]


class ServiceProcess:
    def __init__(self, fake: FakeBinance, tmp: Path) -> None:
        self.fake = fake
        self.tmp = tmp
        self.db_path = tmp / "surgedca.sqlite3"
        # adopt_positions: the position opened by hand below is the service's to manage
        (tmp / "strategy.toml").write_text(
            'reconcile_interval_s = 5\nfallback_poll_interval_s = 1\nadopt_positions = "all"\n'
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.runs = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "BINANCE_", "SIM_"))}
        env.update(
            TRADING_MODE="live",
            BINANCE_API_KEY=API_KEY,
            BINANCE_API_SECRET=API_SECRET,
            BINANCE_REST_URL=self.fake.rest_url,
            BINANCE_WS_URL=self.fake.ws_url,
            DB_PATH=str(self.db_path),
            STRATEGY_FILE=str(self.tmp / "strategy.toml"),
            LOG_LEVEL="INFO",
            PYTHONPATH=str(REPO),
        )
        return env

    def start(self) -> None:
        self.runs += 1
        log = open(self.tmp / f"service-{self.runs}.log", "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "trading.cli", "run"], cwd=self.tmp, env=self.env(), stdout=log, stderr=log
        )

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    async def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        for _ in range(300):
            if self.proc.poll() is not None:
                break
            await asyncio.sleep(0.05)
        else:
            self.proc.kill()
        self.proc = None

    def position(self) -> tuple[str, str, Decimal] | None:
        """(status, stage, qty) of the active position, read from the database file."""
        if not self.db_path.exists():
            return None
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            rec = Store.of(Database(self.db_path, conn)).positions.get_active(SYM)
            return (rec.status, rec.state.stage.value, rec.state.qty) if rec else None
        except sqlite3.OperationalError:
            return None  # schema not created yet
        finally:
            conn.close()

    def unresolved(self) -> list[str]:
        conn = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            return [
                r.client_order_id
                for r in Store.of(Database(self.db_path, conn)).journal.unresolved()
                if r.kind == "market"
            ]
        finally:
            conn.close()

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.tmp.glob("service-*.log")))


def _ours(fake: FakeBinance, marker: str) -> list[object]:
    return [o for o in fake.orders if o.client_order_id.startswith("sdca-") and marker in o.client_order_id]


@pytest.fixture
async def fake() -> FakeBinance:
    fb = FakeBinance(api_key=API_KEY, api_secret=API_SECRET, balance="10000", taker_fee="0.0005")
    fb.add_symbol("SOLUSDT", price="100.00", tick_size="0.01", step_size="0.01", min_notional="5", max_leverage=50)
    await fb.start()
    yield fb
    await fb.stop()


@pytest.mark.timeout(240)
async def test_sigkill_at_three_points_of_the_ladder_loses_nothing_and_duplicates_nothing(
    fake: FakeBinance, tmp_path: Path
) -> None:
    svc = ServiceProcess(fake, tmp_path)
    try:
        await fake.open_position_by_hand(SYM, "1.00", price="100.00")
        svc.start()
        await until(lambda: svc.position() is not None, timeout=30, what="adoption")
        await until(lambda: len(fake.open_algo_orders(SYM)) == 1, timeout=15, what="backstop")

        # 1. Dead when the price crosses the first DCA trigger: the restarted service buys exactly once.
        svc.kill()
        await fake.set_price(SYM, "97.00")
        svc.start()
        await until(lambda: (p := svc.position()) and p[1] == "first_dca", timeout=30, what="DCA 1 after restart")
        assert len(_ours(fake, "-dca1-")) == 1

        # 2. Killed after the exchange filled DCA 2 but before the reply came back (ladder not updated).
        fake.faults.delay("POST", "/fapi/v1/order", seconds=30, after=True)
        await fake.set_price(SYM, "94.00")
        await until(lambda: _ours(fake, "-dca2-"), timeout=15, what="DCA 2 executed at the exchange")
        svc.kill()
        fake.faults.clear()
        assert svc.position()[1] == "first_dca"  # type: ignore[index]  # the database had not heard of it
        svc.start()
        await until(lambda: (p := svc.position()) and p[1] == "second_dca", timeout=30, what="DCA 2 resolved")
        assert len(_ours(fake, "-dca2-")) == 1, "resolved by asking, not by buying again"
        status, _, qty = svc.position()  # type: ignore[misc]
        assert status == "open" and qty == fake.position(SYM).qty

        # 3. Killed after sending the stop-loss sell, before the exchange executed it.
        fake.faults.delay("POST", "/fapi/v1/order", seconds=3)
        await fake.set_price(SYM, "88.00", mark="93.00")  # through the -5% stop; the mark keeps the backstop quiet
        await until(
            lambda: any(
                r.path == "/fapi/v1/order" and "-sl-" in r.params.get("newClientOrderId", "") for r in fake.requests
            ),
            timeout=15,
            what="stop-loss sell sent",
        )
        svc.kill()
        svc.start()
        await until(
            lambda: svc.position() is None and fake.position(SYM).qty == 0, timeout=60, what="closed after restart"
        )
        await until(lambda: fake.open_algo_orders(SYM) == [], timeout=30, what="backstop cancelled")
        # The killed sell's fate is settled by rule 3 once its request window has passed (10 s + margin): from
        # then on it can no longer execute, so what the exchange holds now is final.
        await until(lambda: svc.unresolved() == [], timeout=45, what="every journal row resolved")
        assert fake.position(SYM).qty == 0, "never short: every exit is reduce-only"
        filled_sells = [o for o in _ours(fake, "-sl-") if o.status == "FILLED"]
        assert len(filled_sells) == 1
        await svc.stop()
        conn = sqlite3.connect(svc.db_path)
        conn.row_factory = sqlite3.Row
        store = Store.of(Database(svc.db_path, conn))
        closed = store.positions.list_closed()
        assert len(closed) == 1 and closed[0].close_reason == "stop_loss"
        assert [r.client_order_id for r in store.journal.unresolved() if r.kind == "market"] == []
        buys = [f for f in store.fills.for_position(closed[0].id) if f.side == "BUY"]
        assert [f.stage for f in buys] == ["initial", "first_dca", "second_dca"]
        conn.close()
    except BaseException:
        print(svc.log_text()[-6000:])
        raise
    finally:
        if svc.proc is not None:
            svc.proc.kill()
