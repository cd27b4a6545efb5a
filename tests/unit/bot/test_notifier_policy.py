"""The notifier's queue and coalescing rules, driven by a manual clock and an in-memory sink."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from decimal import Decimal

from bot.notifier import Alert, AlertMessage, AlertNotifier, SinkRetryAfter, coalesce_key, is_trade
from trading.clock import ManualClock
from trading.events import (
    DcaFilled,
    EngineEvent,
    ErrorEvent,
    OrderRefused,
    PositionClosed,
    ServiceStarted,
    StreamDown,
    StreamUp,
)

T = 1_761_700_000_000


class MemorySink:
    def __init__(self, fail_first: int = 0) -> None:
        self.sent: list[str] = []
        self.fail_first = fail_first
        self.attempts = 0

    @property
    def destinations(self) -> Sequence[int | None]:
        return (1,)

    def render(self, alert: Alert) -> str:
        if alert.event is None:
            return f"dropped {alert.dropped} ({alert.dropped_trades} trades)"
        suffix = f" +{alert.more}" if alert.more else ""
        return f"{alert.event.kind}:{getattr(alert.event, 'where', '')}:{alert.event.ts_ms - T}{suffix}"

    async def compose(self, alert: Alert, text: str) -> AlertMessage:
        return AlertMessage(text)

    async def send(self, destination: int | None, message: AlertMessage) -> None:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            raise SinkRetryAfter(0.01)
        self.sent.append(message.text)


def err(i: int, where: str = "scanner") -> ErrorEvent:
    return ErrorEvent(ts_ms=T + i, where=where, message="x")


def dca(i: int) -> DcaFilled:
    return DcaFilled(
        ts_ms=T + i,
        symbol="ETHUSDT",
        level="first_dca",
        price=Decimal(1),
        qty=Decimal(1),
        avg_price=Decimal(1),
        total_qty=Decimal(2),
        position_id=1,
    )


def queued(n: AlertNotifier) -> list[str]:
    sink = MemorySink()
    return [sink.render(a) for a in n._queue]


def test_classification() -> None:
    closed = PositionClosed(
        ts_ms=T,
        symbol="X",
        reason="stop_loss",
        price=Decimal(1),
        qty=Decimal(1),
        pnl=Decimal(-1),
        pnl_pct=Decimal(-1),
        position_id=1,
    )
    assert is_trade(dca(0)) and is_trade(closed)
    assert not is_trade(err(0)) and not is_trade(ServiceStarted(ts_ms=T, mode="sim"))
    assert coalesce_key(dca(0)) is None and coalesce_key(closed) is None  # trades are never coalesced
    assert coalesce_key(err(0)) == coalesce_key(err(5)) != coalesce_key(err(0, "executor"))
    assert coalesce_key(StreamDown(ts_ms=T, name="market", detail="")) == coalesce_key(
        StreamUp(ts_ms=T, name="market", down_for_s=1)
    )
    rejected: EngineEvent = OrderRefused(
        ts_ms=T, symbol="BTCUSDT", what="first_dca", code=-2019, refusal="margin", message="margin", retry_in_s=2
    )
    assert coalesce_key(rejected) == ("OrderRefused", "BTCUSDT|first_dca|-2019")


def test_one_alert_per_key_per_window_then_a_summary() -> None:
    clock = ManualClock(0)
    n = AlertNotifier(MemorySink(), clock=clock, window_s=60)
    for i in range(13):
        n.publish(err(i))
        clock.advance(1)
    n.publish(dca(50))
    assert queued(n) == ["ErrorEvent:scanner:0", "DcaFilled::50"]
    clock.advance(30)  # 43 s after the first: window still open
    assert n._close_due_windows() is not None
    assert len(n._queue) == 2
    clock.advance(20)  # 63 s: window over -> the summary of the 12 held back, showing the latest
    n._close_due_windows()
    assert queued(n)[-1] == "ErrorEvent:scanner:12 +12"
    # The summary counts as the next window's alert: another error right away is held again...
    n.publish(err(100))
    assert len(n._queue) == 3
    # ...and a quiet window closes silently.
    clock.advance(61)
    n._close_due_windows()
    n._close_due_windows()
    assert queued(n)[-1] == "ErrorEvent:scanner:100 +1"
    clock.advance(61)
    n._close_due_windows()
    assert not n._windows


def test_full_queue_drops_oldest_non_trade_first_and_counts() -> None:
    n = AlertNotifier(MemorySink(), clock=ManualClock(0), max_queue=3)
    n.publish(err(1, "a"))
    n.publish(dca(2))
    n.publish(err(3, "b"))
    n.publish(dca(4))  # drops error a
    n.publish(dca(5))  # drops error b
    assert queued(n) == ["DcaFilled::2", "DcaFilled::4", "DcaFilled::5"]
    n.publish(dca(6))  # only trades left: the oldest trade goes, and is counted as such
    assert queued(n) == ["DcaFilled::4", "DcaFilled::5", "DcaFilled::6"]
    assert n.dropped == 3
    assert (n._unreported_dropped, n._unreported_dropped_trades) == (3, 1)


async def test_sender_reports_drops_after_the_next_delivery_and_honours_retry_after() -> None:
    sink = MemorySink(fail_first=2)
    n = AlertNotifier(sink, max_queue=2, window_s=60)
    n.publish(err(1, "a"))
    n.publish(err(2, "b"))
    n.publish(dca(3))  # drops error a
    await n.start()
    assert await n.wait_idle(2)
    await n.stop(grace_s=1)
    assert sink.sent == ["ErrorEvent:b:2", "dropped 1 (0 trades)", "DcaFilled::3"]
    assert sink.attempts == 5  # two 429s on the first message, then three deliveries


async def test_publish_survives_a_broken_render_and_other_threads() -> None:
    class Broken(MemorySink):
        def render(self, alert: Alert) -> str:
            raise ValueError("bug")

    sink = Broken()
    n = AlertNotifier(sink)
    await n.start()
    n.publish(err(1))  # rendered by the fallback line instead
    await asyncio.to_thread(n.publish, dca(2))  # the engine may publish from a worker thread
    await asyncio.sleep(0)
    assert await n.wait_idle(2)
    await n.stop()
    assert sink.sent == ["ERROR in scanner: x", "DCA ETHUSDT first_dca: bought 1 at 1; avg 1, total 2"]
