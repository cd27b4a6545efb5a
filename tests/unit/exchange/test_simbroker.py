"""SimBroker: fills, fees, PnL, Binance's rejections, algo stops, user events, persistence (real SQLite files)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from storage.migrations import apply_migrations
from trading.core.models import SymbolRules
from trading.exchange.base import (
    AccountUpdate,
    AlgoUpdate,
    Market,
    NotFoundError,
    OrderStatus,
    OrderUpdate,
    RejectedError,
    Side,
    UserEvent,
)
from trading.exchange.simbroker import SimBroker, usdt

FEE = D("0.0005")
SLIP = D("0.0005")


def market(symbol: str, tick: str, step: str, min_notional: str, max_leverage: int = 50) -> Market:
    rules = SymbolRules(symbol, D(tick), D(step), D(step), D(min_notional))
    return Market(symbol, symbol.removesuffix("USDT"), "USDT", "TRADING", rules, max_leverage=max_leverage)


MARKETS = {
    "ALTUSDT": market("ALTUSDT", "0.01", "0.001", "5"),
    "BTCUSDT": market("BTCUSDT", "0.1", "0.001", "100", 125),
}


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a database the storage migrations set up (they create the simulated exchange's tables)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    apply_migrations(conn, str(path))
    return conn


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sim.sqlite3"


@pytest.fixture
def conn(db_path: Path) -> Iterator[sqlite3.Connection]:
    c = connect(db_path)
    yield c
    c.close()


def make(conn: sqlite3.Connection | None, balance: str = "1000", **kw: object) -> tuple[SimBroker, list[UserEvent]]:
    broker = SimBroker(conn, markets=MARKETS, balance=D(balance), taker_fee=FEE, slippage=SLIP, **kw)  # type: ignore[arg-type]
    events: list[UserEvent] = []
    broker.add_listener(events.append)
    return broker, events


def snapshot(b: SimBroker) -> tuple[object, ...]:
    return (b.wallet, dict(b.positions), tuple(b.open_algo_orders()), dict(b.leverage))


# ------------------------------------------------------------------ fills
def test_buy_fills_above_price_rounded_up_to_tick_with_taker_fee(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "101.37", 1_000)
    order = b.market_order("ALTUSDT", Side.BUY, D("0.5"), client_order_id="sdca-1-enter-1")
    # 101.37 x 1.0005 = 101.420685 -> up to the tick: 101.43
    assert order.avg_price == D("101.43")
    assert order.status is OrderStatus.FILLED and order.filled_qty == D("0.5")
    assert order.fee == D("101.43") * D("0.5") * FEE == D("0.0253575")
    assert b.wallet == D(1000) - D("0.0253575")
    pos = b.position_list()[0]
    assert (pos.qty, pos.entry_price, pos.mark_price) == (D("0.5"), D("101.43"), D("101.37"))
    assert pos.unrealized_pnl == (D("101.37") - D("101.43")) * D("0.5")


def test_sell_fills_below_price_rounded_down_to_tick(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1_000)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="a")  # fills at 100.05
    b.on_price("ALTUSDT", "101.37", 2_000)
    order = b.market_order("ALTUSDT", Side.SELL, D("1"), client_order_id="b", reduce_only=True)
    # 101.37 x 0.9995 = 101.319315 -> down to the tick: 101.31
    assert order.avg_price == D("101.31")
    assert order.realized_pnl == D("101.31") - D("100.05")
    fees = D("100.05") * FEE + D("101.31") * FEE
    assert b.wallet == D(1000) + (D("101.31") - D("100.05")) - fees
    assert b.positions == {}


def test_zero_slippage_and_fee_fill_at_the_price_exactly(conn: sqlite3.Connection) -> None:
    b = SimBroker(conn, markets=MARKETS, balance=D(500), taker_fee=0, slippage=0)
    b.on_price("ALTUSDT", "12.34", 1)
    order = b.market_order("ALTUSDT", Side.BUY, D("2"), client_order_id="x")
    assert (order.avg_price, order.fee, b.wallet) == (D("12.34"), D(0), D(500))


def test_realised_pnl_uses_average_cost_and_keeps_entry_on_reduce(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    first = b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e1")  # 100.05
    b.on_price("ALTUSDT", "90", 2)
    second = b.market_order("ALTUSDT", Side.BUY, D("2"), client_order_id="e2")  # 90.045 -> 90.05
    assert (first.avg_price, second.avg_price) == (D("100.05"), D("90.05"))
    avg = (D("100.05") * 1 + D("90.05") * 2) / 3
    assert b.positions["ALTUSDT"].entry == avg
    b.on_price("ALTUSDT", "95", 3)
    sell = b.market_order("ALTUSDT", Side.SELL, D("1.5"), client_order_id="x1", reduce_only=True)  # 94.9525 -> 94.95
    assert sell.avg_price == D("94.95")
    assert sell.realized_pnl == usdt((D("94.95") - avg) * D("1.5"))  # booked to 1e-8 USDT
    assert sell.realized_pnl == D("2.35")  # (94.95 - 93.3833...) x 1.5, not 2.350000000000000000000000005
    assert b.positions["ALTUSDT"].entry == avg  # unchanged on reduce (Binance's average-cost rule)
    assert b.positions["ALTUSDT"].qty == D("1.5")
    fees = (D("100.05") + D("90.05") * 2 + D("94.95") * D("1.5")) * FEE
    assert b.wallet == D(1000) - fees + sell.realized_pnl
    trades = b.trades("ALTUSDT")
    assert [t.price for t in trades] == [D("100.05"), D("90.05"), D("94.95")]
    assert sum(t.realized_pnl for t in trades) == sell.realized_pnl


# ------------------------------------------------------------------ rejections (nothing changes)
@pytest.mark.parametrize(
    ("side", "qty"),
    [(Side.SELL, "1.001"), (Side.BUY, "0.5")],
    ids=["flip", "increase"],
)
def test_reduce_only_that_would_flip_or_increase_is_rejected(conn: sqlite3.Connection, side: Side, qty: str) -> None:
    b, events = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    before, n_events = snapshot(b), len(events)
    with pytest.raises(RejectedError) as err:
        b.market_order("ALTUSDT", side, D(qty), client_order_id="x", reduce_only=True)
    assert err.value.code == -2022
    assert snapshot(b) == before and len(events) == n_events
    assert b.order("ALTUSDT", "x") is None


def test_reduce_only_without_position_is_rejected(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    with pytest.raises(RejectedError) as err:
        b.market_order("ALTUSDT", Side.SELL, D("1"), client_order_id="x", reduce_only=True)
    assert err.value.code == -2022


def test_min_notional_rejects_opening_orders_but_not_reduce_only(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("BTCUSDT", "50000", 1)
    with pytest.raises(RejectedError) as err:
        b.market_order("BTCUSDT", Side.BUY, D("0.001"), client_order_id="small")  # 50 USDT < 100
    assert err.value.code == -4164 and "100" in str(err.value)
    b.market_order("BTCUSDT", Side.BUY, D("0.003"), client_order_id="ok")
    sell = b.market_order("BTCUSDT", Side.SELL, D("0.001"), client_order_id="tiny", reduce_only=True)
    assert sell.status is OrderStatus.FILLED
    assert b.positions["BTCUSDT"].qty == D("0.002")


def test_margin_check_uses_leverage_and_wallet(conn: sqlite3.Connection) -> None:
    b, _events = make(conn, balance="100")
    b.set_leverage("ALTUSDT", 2)
    b.on_price("ALTUSDT", "10", 1)
    before = snapshot(b)
    with pytest.raises(RejectedError) as err:
        b.market_order("ALTUSDT", Side.BUY, D("20.5"), client_order_id="big")  # 205 notional / 2 > 100
    assert err.value.code == -2019
    assert snapshot(b) == before
    b.set_leverage("ALTUSDT", 10)
    assert b.market_order("ALTUSDT", Side.BUY, D("20.5"), client_order_id="big").status is OrderStatus.FILLED
    assert b.balance().margin_in_use == D("20.5") * D("10") / 10


@pytest.mark.parametrize(
    ("symbol", "qty", "code"),
    [("ALTUSDT", "0.0005", -1111), ("ALTUSDT", "0", -4003), ("NOPEUSDT", "1", -1121)],
)
def test_bad_orders_rejected_with_binance_codes(conn: sqlite3.Connection, symbol: str, qty: str, code: int) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    with pytest.raises(RejectedError) as err:
        b.market_order(symbol, Side.BUY, D(qty), client_order_id="x")
    assert err.value.code == code


def test_settings_recorded_and_validated(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    with pytest.raises(RejectedError) as err:
        b.set_leverage("ALTUSDT", 51)
    assert err.value.code == -4028
    b.set_leverage("ALTUSDT", 10)
    b.set_margin_mode("ALTUSDT", "isolated")
    b.set_margin_mode("ALTUSDT", "ISOLATED")  # "no need to change" is a success
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    with pytest.raises(RejectedError) as err:
        b.set_margin_mode("ALTUSDT", "cross")
    assert err.value.code == -4048
    pos = b.position_list()[0]
    assert (pos.leverage, pos.margin_mode) == (10, "isolated")


# ------------------------------------------------------------------ conditional (algo) stops
def test_stop_triggers_at_or_below_trigger_and_fills_whole_position(conn: sqlite3.Connection) -> None:
    b, events = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("2"), client_order_id="e")
    algo = b.place_stop_close("ALTUSDT", D("95.00"), client_algo_id="sdca-1-stop-1")
    assert (algo.status, algo.close_position, algo.working_type, algo.side) == ("NEW", True, "MARK_PRICE", Side.SELL)
    b.on_price("ALTUSDT", "95.01", 2)
    assert b.positions and b.open_algo_orders() == [algo]
    b.on_price("ALTUSDT", "95.00", 3)  # at the trigger: fires, fills at the trigger minus slippage
    assert b.positions == {} and b.open_algo_orders() == []
    fill = b.order("ALTUSDT", "sdca-1-stop-1")  # Binance: the fill carries the clientAlgoId
    assert fill is not None and fill.reduce_only and fill.side is Side.SELL
    assert fill.filled_qty == D("2")
    assert fill.avg_price == D("94.95")  # 95 x 0.9995 = 94.9525 -> down to the tick
    statuses = [e.status for e in events if isinstance(e, AlgoUpdate)]
    assert statuses == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]


def test_stop_gapped_through_fills_at_the_current_price(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    b.place_stop_close("ALTUSDT", D("95"), client_algo_id="s")
    b.on_price("ALTUSDT", "90", 2)
    fill = b.order("ALTUSDT", "s")
    assert fill is not None and fill.avg_price == D("89.95")  # min(95, 90) x 0.9995 = 89.955 -> 89.95


def test_close_position_stop_outlives_manual_close_and_finishes_without_trading(conn: sqlite3.Connection) -> None:
    b, events = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    b.place_stop_close("ALTUSDT", D("95"), client_algo_id="s")
    b.market_order("ALTUSDT", Side.SELL, D("1"), client_order_id="manual", reduce_only=True)
    assert b.positions == {} and [a.client_algo_id for a in b.open_algo_orders()] == ["s"]  # still resting
    wallet, n_orders = b.wallet, len(b.trades("ALTUSDT"))
    del events[:]
    b.on_price("ALTUSDT", "94", 2)
    assert b.open_algo_orders() == [] and b.wallet == wallet and len(b.trades("ALTUSDT")) == n_orders
    assert b.order("ALTUSDT", "s") is None
    assert not any(isinstance(e, OrderUpdate | AccountUpdate) for e in events)
    assert [e.status for e in events if isinstance(e, AlgoUpdate)][-1] == "FINISHED"


def test_stop_rejections_and_cancel(conn: sqlite3.Connection) -> None:
    b, events = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    with pytest.raises(RejectedError) as err:
        b.place_stop_close("ALTUSDT", D("100"), client_algo_id="now")
    assert err.value.code == -2021  # would immediately trigger
    with pytest.raises(RejectedError) as err:
        b.place_stop_close("ALTUSDT", D("95.005"), client_algo_id="p")
    assert err.value.code == -1111
    b.place_stop_close("ALTUSDT", D("95"), client_algo_id="s")
    with pytest.raises(RejectedError):
        b.place_stop_close("ALTUSDT", D("94"), client_algo_id="s")  # duplicate while open
    b.cancel_algo("ALTUSDT", "s")
    assert [e.status for e in events if isinstance(e, AlgoUpdate)] == ["NEW", "CANCELED"]
    b.on_price("ALTUSDT", "90", 2)  # a cancelled stop never fires
    assert len(events) == 2
    with pytest.raises(NotFoundError) as nf:
        b.cancel_algo("ALTUSDT", "s")
    assert nf.value.code == -2011
    with pytest.raises(NotFoundError):
        b.cancel_order("ALTUSDT", "anything")  # MARKET orders are never open


# ------------------------------------------------------------------ queries and events
def test_fetch_order_by_client_id(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    first = b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="sdca-7-enter-1")
    assert b.order("ALTUSDT", "sdca-7-enter-1") == first
    assert b.order("BTCUSDT", "sdca-7-enter-1") is None  # another symbol
    assert b.order("ALTUSDT", "never-sent") is None
    # A filled MARKET order's id can be reused (Binance refuses duplicates only while open): newest wins.
    again = b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="sdca-7-enter-1")
    assert again.order_id != first.order_id and b.order("ALTUSDT", "sdca-7-enter-1") == again


def test_user_events_per_fill_like_the_live_stream(conn: sqlite3.Connection) -> None:
    b, events = make(conn)
    b.on_price("ALTUSDT", "100", 5_000)
    order = b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="c1")
    assert [type(e).__name__ for e in events] == ["OrderUpdate", "OrderUpdate", "AccountUpdate"]
    new, trade, account = events
    assert isinstance(new, OrderUpdate) and (new.execution_type, new.status) == ("NEW", OrderStatus.NEW)
    assert isinstance(trade, OrderUpdate) and (trade.execution_type, trade.status) == ("TRADE", OrderStatus.FILLED)
    assert (trade.client_order_id, trade.order_id, trade.last_qty, trade.last_price, trade.fee) == (
        "c1",
        order.order_id,
        D("1"),
        order.avg_price,
        order.fee,
    )
    assert isinstance(account, AccountUpdate) and account.wallet_balance == b.wallet
    assert account.positions[0].qty == D("1") and account.reason == "ORDER"
    assert {e.event_time for e in events} == {5_000}


def test_invalid_client_id_rejected(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    with pytest.raises(RejectedError) as err:
        b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="has space")
    assert err.value.code == -1100


def test_float_prices_are_taken_on_the_tick_grid() -> None:
    b, _ = make(None)
    b.on_price("ALTUSDT", 0.1 + 0.2, 1)  # 0.30000000000000004
    assert b.last_price("ALTUSDT") == D("0.30")


# ------------------------------------------------------------------ persistence
def test_restart_keeps_wallet_positions_algos_orders_and_cursor(db_path: Path) -> None:
    conn = connect(db_path)
    b, _ = make(conn)
    b.set_leverage("ALTUSDT", 10)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("3"), client_order_id="e1")
    b.on_price("BTCUSDT", "50000", 1)
    b.market_order("BTCUSDT", Side.BUY, D("0.004"), client_order_id="e2")
    b.market_order("BTCUSDT", Side.SELL, D("0.001"), client_order_id="x2", reduce_only=True)
    b.place_stop_close("ALTUSDT", D("90"), client_algo_id="stop-alt")
    b.cursor_ms = 1_234_560_000
    b.flush()
    before = (b.wallet, {s: (p.qty, p.entry) for s, p in b.positions.items()}, b.open_algo_orders())
    conn.close()

    conn = connect(db_path)
    again, events = make(conn, balance="55")  # the initial balance only applies to a new account
    assert (again.wallet, {s: (p.qty, p.entry) for s, p in again.positions.items()}, again.open_algo_orders()) == before
    assert again.saved_cursor_ms == again.cursor_ms == 1_234_560_000
    assert again.leverage["ALTUSDT"] == 10
    assert again.order("BTCUSDT", "x2") is not None and again.order("ALTUSDT", "e1") is not None
    assert len(again.trades("BTCUSDT")) == 2
    # the stop still rests on the "exchange" and fires after the restart; ids keep counting
    again.on_price("ALTUSDT", "89", 2)
    fill = again.order("ALTUSDT", "stop-alt")
    assert fill is not None and fill.filled_qty == D("3") and int(fill.order_id) == 4
    assert any(isinstance(e, AlgoUpdate) and e.status == "FINISHED" for e in events)
    conn.close()

    conn = connect(db_path)
    third, _ = make(conn)
    assert "ALTUSDT" not in third.positions and third.open_algo_orders() == []
    assert third.wallet == again.wallet
    conn.close()


def test_accounts_in_one_database_are_separate(conn: sqlite3.Connection) -> None:
    sim = SimBroker(conn, account="sim", markets=MARKETS, balance=D(1000))
    paper = SimBroker(conn, account="paper", markets=MARKETS, balance=D(200))
    sim.on_price("ALTUSDT", "100", 1)
    sim.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    assert paper.positions == {} and paper.wallet == D(200)
    assert SimBroker(conn, account="paper", markets=MARKETS).wallet == D(200)
    assert "ALTUSDT" in SimBroker(conn, account="sim", markets=MARKETS).positions


def test_writes_happen_per_fill_not_per_price(conn: sqlite3.Connection) -> None:
    b, _ = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    b.place_stop_close("ALTUSDT", D("50"), client_algo_id="s")
    changes = conn.total_changes
    for i in range(1_000):
        b.on_price("ALTUSDT", f"{100 + (i % 7) / 100:.2f}", 2 + i)
    assert conn.total_changes == changes
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e2")
    assert conn.total_changes > changes


def test_memory_only_broker_for_backtests() -> None:
    b, events = make(None)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("1"), client_order_id="e")
    assert b.order("ALTUSDT", "e") is not None and len(b.trades("ALTUSDT")) == 1 and len(events) == 3


# ------------------------------------------------------------------ funding
def test_funding_charges_qty_times_mark_times_rate_to_the_wallet(conn: sqlite3.Connection, db_path: Path) -> None:
    b, events = make(conn)
    b.on_price("ALTUSDT", "100", 1)
    b.market_order("ALTUSDT", Side.BUY, D("2"), client_order_id="e")  # 2 @ 100.05
    b.on_price("ALTUSDT", "101.23", 2)
    wallet = b.wallet
    del events[:]
    fee = b.apply_funding("ALTUSDT", D("0.0003"), 28_800_000)
    assert fee is not None and (fee.qty, fee.mark, fee.rate) == (D("2"), D("101.23"), D("0.0003"))
    assert fee.amount == usdt(D("2") * D("101.23") * D("0.0003")) == D("0.060738")
    assert b.wallet == wallet - D("0.060738") and b.funding == [fee]
    # Binance's ACCOUNT_UPDATE for funding on a cross position: the balance only, reason FUNDING_FEE
    [ev] = events
    assert isinstance(ev, AccountUpdate)
    assert (ev.reason, ev.wallet_balance, ev.positions, ev.event_time) == ("FUNDING_FEE", b.wallet, (), 28_800_000)
    assert ev.balance_change == D("-0.060738")  # "bc": the wallet's change, negative when paid
    # a negative rate pays the long; the wallet is persisted
    b.apply_funding("ALTUSDT", D("-0.0001"), 57_600_000)
    assert b.wallet == wallet - D("0.060738") + D("0.020246")
    assert SimBroker(conn, markets=MARKETS).wallet == b.wallet


def test_funding_is_listed_as_income_history_across_restarts(conn: sqlite3.Connection) -> None:
    for c in (conn, None):
        b, _ = make(c)
        b.on_price("ALTUSDT", "100", 1)
        b.market_order("ALTUSDT", Side.BUY, D("2"), client_order_id="e")
        first = b.apply_funding("ALTUSDT", D("0.0003"), 28_800_000)
        second = b.apply_funding("ALTUSDT", D("-0.0001"), 57_600_000)
        assert first is not None and second is not None and second.tran_id == first.tran_id + 1
        income = b.funding_income(28_800_000, 57_600_000)
        assert [(i.tran_id, i.symbol, i.amount, i.time_ms) for i in income] == [
            (str(first.tran_id), "ALTUSDT", -first.amount, 28_800_000),
            (str(second.tran_id), "ALTUSDT", -second.amount, 57_600_000),
        ]  # Binance's sign: the first was paid, the second received
        assert b.funding_income(28_800_001, 57_600_000) == income[1:] and b.funding_income(0, 1) == []
        assert b.last_funding_ms("ALTUSDT") == 57_600_000 and b.last_funding_ms("OTHERUSDT") is None
    again = SimBroker(conn, markets=MARKETS)  # a restart: the history and the ids go on
    assert len(again.funding_income(0, 10**13)) == 2 and again.last_funding_ms("ALTUSDT") == 57_600_000
    again.on_price("ALTUSDT", "100", 60_000_000)
    third = again.apply_funding("ALTUSDT", D("0.0001"), 86_400_000)
    assert third is not None and third.tran_id == 3


def test_funding_on_an_isolated_position_names_it_and_a_short_receives_a_positive_rate() -> None:
    b, events = make(None)
    b.set_margin_mode("ALTUSDT", "isolated")
    b.on_price("ALTUSDT", "50", 1)
    b.market_order("ALTUSDT", Side.SELL, D("1"), client_order_id="s")  # a short of 1
    wallet = b.wallet
    del events[:]
    fee = b.apply_funding("ALTUSDT", D("0.001"), 3_600_000)
    assert fee is not None and fee.amount == D("-0.05") and b.wallet == wallet + D("0.05")
    [ev] = events
    assert isinstance(ev, AccountUpdate) and ev.reason == "FUNDING_FEE"
    assert [(p.symbol, p.qty) for p in ev.positions] == [("ALTUSDT", D("-1"))]


def test_no_position_no_funding() -> None:
    b, events = make(None)
    b.on_price("ALTUSDT", "50", 1)
    assert b.apply_funding("ALTUSDT", D("0.001"), 3_600_000) is None
    assert events == [] and b.wallet == D(1000) and b.funding == []
