"""Rule 3 edge: a pending position whose entry order never reached the journal (crash between the writes)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from storage.db import Database
from trading.clock import ManualClock
from trading.context import EngineContext
from trading.core.config import StrategyConfig
from trading.core.order_state import PositionStatus
from trading.executor import Executor
from trading.runner import WorkRunner
from trading.store import Store


class _Silent:
    def publish(self, event: object) -> None:
        pass


async def test_a_pending_entry_without_a_journal_row_is_marked_failed_and_unblocks_the_symbol(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "db.sqlite3")
    store = Store.of(db)
    ids = store.client_ids()
    clock = ManualClock(1_767_225_600_000)
    orphan = store.positions.create_pending("AUSDT", "signal", clock.now_ms())
    live = store.positions.create_pending("BUSDT", "signal", clock.now_ms())
    store.journal.insert_pending(
        ids.make(live, "entry", 1),
        position_id=live,
        symbol="BUSDT",
        action="entry",
        kind="market",
        side="BUY",
        qty=Decimal("1"),
        reduce_only=False,
        now_ms=clock.now_ms(),
    )
    ctx = EngineContext(
        cfg=StrategyConfig(),
        store=store,
        port=None,  # type: ignore[arg-type]
        clock=clock,
        notifier=_Silent(),
    )
    ex = Executor(ctx, WorkRunner(inline=True), ids)
    ex.load()  # pending entries keep their slot until resolved
    assert ex.entry_blocker("AUSDT") == "an entry is in flight"
    items = ex.resolver.orphan_entries()
    assert [(i.kind, i.symbol) for i in items] == [("pending_resolved", "AUSDT")]
    rec = store.positions.get(orphan)
    assert rec is not None and rec.status is PositionStatus.FAILED
    assert ex.entry_blocker("AUSDT") is None
    # the one whose order is journaled waits for the exchange's answer
    assert store.positions.get(live).status is PositionStatus.PENDING  # type: ignore[union-attr]
    assert ex.entry_blocker("BUSDT") == "an entry is in flight"
    assert ex.tracker.busy(live)  # its entry order is in flight
    db.close()
