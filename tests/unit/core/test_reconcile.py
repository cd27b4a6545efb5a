"""The pure reconcile functions: the diff of local and exchange state, and the resolution of a journal row."""

from __future__ import annotations

from decimal import Decimal as D

from trading.core import reconcile as r
from trading.core.order_state import ExchangeOrderStatus as X
from trading.core.order_state import OrderKind, OrderState

WINDOW = 12_000


def _local(pid: int, symbol: str, qty: str, backstop: str | None = None) -> r.LocalPosition:
    return r.LocalPosition(pid, symbol, D(qty), backstop, True)


def test_diff_adopts_fixes_closes_and_reports_shorts() -> None:
    local = [_local(1, "AUSDT", "2", "s-1"), _local(2, "BUSDT", "1", "s-2"), _local(3, "CUSDT", "5", "s-3")]
    remote = [
        r.RemotePosition("AUSDT", D("1.5"), D(10)),  # drift
        r.RemotePosition("CUSDT", D(-5), D(3)),  # a short where we held a long: vanished, and reported
        r.RemotePosition("DUSDT", D(4), D(7)),  # unknown long
    ]
    orders = [r.RemoteOrder("AUSDT", "s-1", True, 1), r.RemoteOrder("CUSDT", "s-3", True, 3)]
    out = r.diff(local, remote, orders)
    assert r.Adopt("DUSDT", D(4), D(7)) in out
    assert r.FixQty(1, "AUSDT", D(2), D("1.5")) in out
    assert r.Vanished(2, "BUSDT", D(1)) in out and r.Vanished(3, "CUSDT", D(5)) in out
    assert r.ForeignShort("CUSDT", D(-5)) in out
    # the vanished positions' own backstops go with them (not reported again as strays)
    assert not [c for c in out if isinstance(c, r.CancelStray)]
    # B's backstop is not resting, but B is gone: nothing to re-create
    assert not [c for c in out if isinstance(c, r.RecreateBackstop)]


def test_diff_cancels_strays_and_recreates_a_missing_backstop() -> None:
    local = [_local(1, "AUSDT", "2", "s-new"), _local(2, "BUSDT", "1", None)]
    remote = [r.RemotePosition("AUSDT", D(2), D(10)), r.RemotePosition("BUSDT", D(1), D(5))]
    orders = [
        r.RemoteOrder("AUSDT", "s-old", True, 1),  # a stop of this position that is not its current backstop
        r.RemoteOrder("AUSDT", "s-new", True, 1),
        r.RemoteOrder("AUSDT", "m-1", False, 1),  # a resting market-order id: never expected
        r.RemoteOrder("EUSDT", "s-9", True, 9),  # ours, for no open position
        r.RemoteOrder("EUSDT", "by-hand", True, None),  # not ours: never touched
    ]
    out = r.diff(local, remote, orders)
    strays = {(c.symbol, c.client_id, c.why) for c in out if isinstance(c, r.CancelStray)}
    assert strays == {
        ("AUSDT", "s-old", "not the position's current backstop"),
        ("AUSDT", "m-1", "a resting market-order id (never expected)"),
        ("EUSDT", "s-9", "belongs to no open position"),
    }
    assert [c for c in out if isinstance(c, r.RecreateBackstop)] == [r.RecreateBackstop(2, "BUSDT")]


def test_diff_leaves_symbols_in_flight_alone() -> None:
    local = [_local(1, "AUSDT", "2", None)]
    remote = [r.RemotePosition("AUSDT", D(3), D(10)), r.RemotePosition("BUSDT", D(1), D(5))]
    assert r.diff(local, remote, [], skip=frozenset({"AUSDT", "BUSDT"})) == []


def _row(kind: OrderKind = OrderKind.MARKET, status: OrderState = OrderState.UNKNOWN, **kw: object) -> r.JournalFacts:
    return r.JournalFacts(kind=kind, status=status, updated_at_ms=1_000, **kw)  # type: ignore[arg-type]


def _resolve(row: r.JournalFacts, reported: r.ReportedOrder | None, *, resting: bool = False, now: int = 2_000):
    return r.resolve_order(row, reported, resting=resting, now_ms=now, window_ms=WINDOW)


def test_market_orders_resolve_from_what_the_exchange_reports() -> None:
    assert _resolve(_row(), r.ReportedOrder(X.FILLED, D(1))) == r.ApplyFill()
    assert _resolve(_row(), r.ReportedOrder(X.EXPIRED, D("0.4"))) == r.ApplyFill()  # partly filled, then ended
    ended = _resolve(_row(), r.ReportedOrder(X.EXPIRED, D(0)))
    assert isinstance(ended, r.Ended) and ended.status is OrderState.EXPIRED
    rejected = _resolve(_row(), r.ReportedOrder(X.REJECTED, D(0)))
    assert isinstance(rejected, r.Ended) and rejected.status is OrderState.REJECTED
    assert isinstance(_resolve(_row(), r.ReportedOrder(X.NEW, D(0))), r.Wait)
    assert isinstance(_resolve(_row(), r.ReportedOrder(X.PARTIALLY_FILLED, D(1))), r.Wait)


def test_an_absent_order_is_not_executed_only_once_its_request_window_has_passed() -> None:
    assert isinstance(_resolve(_row(), None, now=1_000 + WINDOW - 1), r.Wait)  # it may still arrive
    assert isinstance(_resolve(_row(), None, now=1_000 + WINDOW), r.NotExecuted)
    assert isinstance(_resolve(_row(status=OrderState.PENDING), None, now=1_000 + WINDOW), r.NotExecuted)


def test_stops_rest_are_adopted_are_cancelled_or_are_gone() -> None:
    stop = OrderKind.STOP
    current = _row(stop, OrderState.SENT, is_current_backstop=True, position_open=True, position_has_backstop=True)
    assert _resolve(current, None, resting=True) == r.StillResting()
    unowned = _row(stop, OrderState.UNKNOWN, position_open=True, position_has_backstop=False)
    assert _resolve(unowned, None, resting=True) == r.AdoptResting()  # a placement whose reply was lost
    other = _row(stop, OrderState.SENT, position_open=True, position_has_backstop=True)
    assert isinstance(_resolve(other, None, resting=True), r.CancelResting)
    assert _resolve(current, r.ReportedOrder(X.FILLED, D(1))) == r.ApplyFill()  # it triggered and filled
    gone = _resolve(current, None)
    assert isinstance(gone, r.Ended) and gone.status is OrderState.CANCELED
    lost = _row(stop, OrderState.UNKNOWN)
    assert isinstance(_resolve(lost, None, now=1_500), r.Wait)
    assert isinstance(_resolve(lost, None, now=1_000 + WINDOW), r.NotExecuted)
