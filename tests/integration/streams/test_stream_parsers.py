"""Stream parsers and dispatch on real Binance payloads (nautilus fixtures and official doc examples)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import BINANCE_SAMPLES
from trading.exchange.base import (
    AccountConfigUpdate,
    AccountUpdate,
    AlgoUpdate,
    KlineEvent,
    OrderStatus,
    OrderUpdate,
    PriceEvent,
    Side,
)
from trading.exchange.streams import (
    LISTEN_KEY_EXPIRED,
    BinanceMarketStream,
    EventBuffer,
    StreamParseError,
    parse_account_update,
    parse_kline_event,
    parse_user_message,
)

NAUTILUS = BINANCE_SAMPLES / "nautilus"
DOCS = BINANCE_SAMPLES / "docs-examples-json"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def inner(msg: dict[str, Any]) -> dict[str, Any]:
    return msg["data"] if "data" in msg and "e" not in msg else msg


ORDER_FILES = sorted(
    [
        *NAUTILUS.glob("tests__ws_messages__ws_futures_order_update_*.json"),
        *NAUTILUS.glob("crates__futures__user_data_json__order_update_*.json"),
        DOCS / "private_websocket_api__Event_Order_Update.json",
    ]
)
ALGO_FILES = sorted(
    [
        *NAUTILUS.glob("tests__ws_messages__ws_futures_algo_update_*.json"),
        *NAUTILUS.glob("crates__futures__user_data_json__algo_update_*.json"),
    ]
)


def test_samples_are_there() -> None:
    assert len(ORDER_FILES) >= 15 and len(ALGO_FILES) >= 6


@pytest.mark.parametrize("path", ORDER_FILES, ids=lambda p: p.stem)
def test_order_trade_update_samples(path: Path) -> None:
    msg = load(path)
    ev = parse_user_message(msg)
    assert isinstance(ev, OrderUpdate)
    o = inner(msg)["o"]
    assert ev.symbol == o["s"] and ev.client_order_id == o["c"] and ev.order_id == str(o["i"])
    assert ev.side == Side(o["S"]) and ev.order_type == o["o"] and ev.execution_type == o["x"]
    assert ev.last_qty == Decimal(o["l"]) and ev.last_price == Decimal(o["L"])
    assert ev.filled_qty == Decimal(o["z"]) and ev.avg_price == Decimal(o["ap"])
    assert ev.fee == Decimal(o.get("n") or "0") and ev.realized_pnl == Decimal(o["rp"])
    assert ev.reduce_only is o["R"] and ev.event_time == int(inner(msg)["E"])
    if o["X"] in {s.value for s in OrderStatus}:
        assert ev.status == OrderStatus(o["X"])
    else:  # NEW_ADL / NEW_INSURANCE: a forced execution, read from its quantities
        assert ev.status == (OrderStatus.FILLED if Decimal(o["z"]) >= Decimal(o["q"]) else OrderStatus.NEW)


def test_a_reduce_only_fill_reads_as_expected() -> None:
    ev = parse_user_message(load(NAUTILUS / "tests__ws_messages__ws_futures_order_update_trade_reduce_only_qty.json"))
    assert ev == OrderUpdate(
        symbol="ETHUSDT",
        client_order_id="O-12345-test-reduce-only-trade",
        order_id="8765432300",
        side=Side.SELL,
        order_type="LIMIT",
        execution_type="TRADE",
        status=OrderStatus.FILLED,
        last_qty=Decimal("1.000"),
        last_price=Decimal("2500.00"),
        filled_qty=Decimal("1.000"),
        avg_price=Decimal("2500.00"),
        fee=Decimal("0.50000000"),
        realized_pnl=Decimal("0.00"),
        reduce_only=True,
        event_time=1759347763200,
    )
    adl = parse_user_message(load(NAUTILUS / "crates__futures__user_data_json__order_update_adl.json"))
    assert isinstance(adl, OrderUpdate)
    assert (
        adl.execution_type == "CALCULATED" and adl.status == OrderStatus.FILLED and adl.filled_qty == Decimal("0.005")
    )


@pytest.mark.parametrize("path", ALGO_FILES, ids=lambda p: p.stem)
def test_algo_update_samples(path: Path) -> None:
    msg = load(path)
    ev = parse_user_message(msg)
    assert isinstance(ev, AlgoUpdate)
    o = inner(msg)["o"]
    assert (ev.symbol, ev.client_algo_id, ev.algo_id, ev.status) == (o["s"], o["caid"], str(o["aid"]), o["X"])
    assert ev.trigger_price == Decimal(o["tp"]) and ev.event_time == int(inner(msg)["E"])


def test_triggered_stop_sample() -> None:
    ev = parse_user_message(load(NAUTILUS / "tests__ws_messages__ws_futures_algo_update_triggered.json"))
    assert ev == AlgoUpdate(
        "DOGEUSDT", "O-20251211-053131-TEST-000-1", "1000000033225453", "TRIGGERED", Decimal("0.13855"), 1765431097037
    )


@pytest.mark.parametrize(
    "path",
    [
        DOCS / "private_websocket_api__Event_Balance_and_Position_Update.json",
        NAUTILUS / "crates__futures__user_data_json__account_update.json",
    ],
    ids=lambda p: p.stem,
)
def test_account_update_keeps_usdt_and_one_way_positions(path: Path) -> None:
    msg = load(path)
    ev = parse_user_message(msg)
    assert isinstance(ev, AccountUpdate)
    assert ev.wallet_balance == Decimal("122624.12345678") and ev.reason == "ORDER"
    both = [p for p in msg["a"]["P"] if p["ps"] == "BOTH"]
    assert [(p.symbol, p.qty, p.entry_price, p.unrealized_pnl) for p in ev.positions] == [
        (p["s"], Decimal(p["pa"]), Decimal(p["ep"]), Decimal(p["up"])) for p in both
    ]
    assert all(p.margin_mode == "isolated" for p in ev.positions)


def test_a_funding_fee_update_carries_the_balance_change_and_no_symbol() -> None:
    msg = load(DOCS / "private_websocket_api__Event_Balance_and_Position_Update.json")
    msg["a"]["m"], msg["a"]["P"] = "FUNDING_FEE", []  # the documented shape for a cross position
    ev = parse_user_message(msg)
    assert isinstance(ev, AccountUpdate)
    [usdt] = [b for b in msg["a"]["B"] if b["a"] == "USDT"]
    assert (ev.reason, ev.positions, ev.balance_change) == ("FUNDING_FEE", (), Decimal(usdt["bc"]))


def test_account_update_without_usdt_has_no_wallet_balance() -> None:
    ev = parse_account_update(load(NAUTILUS / "crates__futures__user_data_json__account_update_bnfcr.json"))
    assert ev.wallet_balance is None and ev.positions == () and ev.balance_change is None


def test_listen_key_expired_and_ignored_events() -> None:
    assert parse_user_message(load(DOCS / "private_websocket_api__Event_User_Data_Stream_Expired.json")) == (
        LISTEN_KEY_EXPIRED
    )
    for name in (
        "private_websocket_api__Event_Trade_Lite_Update.json",
        "private_websocket_api__Event_Margin_Call.json",
    ):
        assert parse_user_message(load(DOCS / name)) is None


def test_account_configuration_updates_say_leverage_or_multi_assets_mode() -> None:
    name = "private_websocket_api__Event_Account_Configuration_Update_previous_Leverage_Update"
    assert parse_user_message(load(DOCS / f"{name}.json")) == AccountConfigUpdate(
        event_time=1611646737476, multi_assets=None, symbol="BTCUSDT", leverage=25
    )
    assert parse_user_message(load(DOCS / f"{name}__2.json")) == AccountConfigUpdate(
        event_time=1611646737476, multi_assets=True
    )
    with pytest.raises(StreamParseError):
        parse_user_message({"e": "ACCOUNT_CONFIG_UPDATE", "E": 1, "ac": {"s": "BTCUSDT", "l": "x"}})


def test_malformed_user_messages_raise_a_parse_error() -> None:
    with pytest.raises(StreamParseError):
        parse_user_message({"e": "ORDER_TRADE_UPDATE", "E": 1, "o": {"s": "BTCUSDT"}})
    with pytest.raises(StreamParseError):
        parse_user_message({"e": "ACCOUNT_UPDATE", "E": 1, "a": {"B": [{"a": "USDT", "wb": "x1"}], "P": []}})


def test_kline_samples() -> None:
    closed = parse_kline_event(load(NAUTILUS / "crates__futures__market_data_json__kline_stream_closed.json"))
    assert closed.symbol == "BTCUSDT" and closed.interval == "1m" and closed.kline.closed
    k = closed.kline
    assert (k.open_time, k.open, k.high, k.low, k.close, k.volume) == (
        1638747660000,
        0.001,
        0.0025,
        0.001,
        0.002,
        1000.0,
    )
    open_ = parse_kline_event(load(DOCS / "public_websocket_api__Kline_Candlestick_Streams.json"))
    assert not open_.kline.closed


# ------------------------------------------------------------------ dispatch without a socket
def combined(stream: str, data: dict[str, Any]) -> str:
    return json.dumps({"stream": stream, "data": data}, separators=(",", ":"))


def drain(buf: EventBuffer[Any]) -> list[Any]:
    out = []
    while (ev := buf.get_nowait()) is not None:
        out.append(ev)
    return out


async def test_dispatch_routes_and_coalesces_without_a_consumer() -> None:
    stream = BinanceMarketStream("ws://127.0.0.1:9")
    consumer = stream.events()
    stream._held, stream._held_lower = frozenset({"BTCUSDT"}), frozenset({"btcusdt"})
    conn: Any = SimpleNamespace(name="market:test", on_reply=lambda msg: None)
    kline_open = load(DOCS / "public_websocket_api__Kline_Candlestick_Streams.json")
    kline_closed = load(NAUTILUS / "crates__futures__market_data_json__kline_stream_closed.json")
    agg = load(NAUTILUS / "crates__futures__market_data_json__agg_trade_stream.json")
    mark = load(NAUTILUS / "crates__futures__market_data_json__mark_price_stream.json")
    eth_open = {**kline_open, "s": "ETHUSDT", "k": {**kline_open["k"], "s": "ETHUSDT"}}
    stream._on_raw(combined("ethusdt@kline_1m", eth_open), conn)  # not held: skipped unparsed
    stream._on_raw(combined("btcusdt@kline_1m", kline_open), conn)
    for p in ("1.5", "1.6", "1.7"):
        stream._on_raw(combined("btcusdt@aggTrade", {**agg, "p": p}), conn)
    stream._on_raw(combined("btcusdt@markPrice@1s", mark), conn)
    stream._on_raw(combined("btcusdt@kline_1m", kline_closed), conn)
    stream._on_raw(combined("ethusdt@kline_1m", {**kline_closed, "s": "ETHUSDT"}), conn)
    stream._on_raw("not json", conn)
    events = drain(consumer.buffer)
    closed = [e for e in events if isinstance(e, KlineEvent)]
    prices = [e for e in events if isinstance(e, PriceEvent)]
    assert [e.symbol for e in closed] == ["BTCUSDT", "ETHUSDT"]  # closed klines: all of them, in order
    # The in-progress kline and three trades of BTCUSDT coalesced into the latest "last"; one "mark".
    assert [(p.symbol, p.kind, p.price) for p in prices] == [("BTCUSDT", "last", "1.7"), ("BTCUSDT", "mark", mark["p"])]
    assert consumer.buffer.coalesced == 3
    assert stream.parse_errors == 1
    await stream.close()
    with pytest.raises(StopAsyncIteration):
        await consumer.__anext__()


async def test_every_consumer_gets_every_event() -> None:
    stream = BinanceMarketStream("ws://127.0.0.1:9")
    a, b = stream.events(), stream.events()
    kline_closed = load(NAUTILUS / "crates__futures__market_data_json__kline_stream_closed.json")
    stream._on_raw(combined("btcusdt@kline_1m", kline_closed), SimpleNamespace(name="t"))  # type: ignore[arg-type]
    assert len(drain(a.buffer)) == 1 and len(drain(b.buffer)) == 1
    await a.aclose()
    stream._on_raw(combined("btcusdt@kline_1m", kline_closed), SimpleNamespace(name="t"))  # type: ignore[arg-type]
    assert len(drain(b.buffer)) == 1
    await stream.close()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="ws://"):
        BinanceMarketStream("https://fstream.binance.com")
    with pytest.raises(ValueError, match="200"):
        BinanceMarketStream("ws://x", max_streams_per_conn=300)
    with pytest.raises(ValueError, match="10 per second"):
        BinanceMarketStream("ws://x", max_messages_per_s=12)
