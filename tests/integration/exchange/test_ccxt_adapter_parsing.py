"""The adapter's parsers on real Binance payloads (``binance-api/``): exact Decimals, no raw dicts leaking."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import BINANCE_SAMPLES
from trading.exchange.base import ExchangeError, OrderStatus, Side
from trading.exchange.ccxt_adapter import (
    fmt_decimal,
    parse_algo_order,
    parse_balance,
    parse_funding_income,
    parse_kline,
    parse_market,
    parse_order,
    parse_position,
    parse_ticker_24h,
    parse_trade,
    redact,
)


def _load(relative: str) -> object:
    path: Path = BINANCE_SAMPLES / relative
    if not path.is_file():
        pytest.fail(f"real Binance sample expected at {path}")
    return json.loads(path.read_text())


def test_exchange_info_rules_from_raw_filters() -> None:
    info = _load("nautilus/tests__http_responses__http_futures_market_exchange_info.json")
    brackets = _load("docs-examples-json/private_rest_api__Notional_and_Leverage_Brackets_USER_DATA.json")
    eth_brackets = brackets[0]["brackets"]
    markets = {
        m.symbol: m
        for m in (parse_market(s, eth_brackets if s["symbol"] == "ETHUSDT" else None) for s in info["symbols"])
        if m is not None
    }
    assert set(markets) == {"BTCUSDT", "ETHUSDT"}  # the quarterly BTCUSDT_220325 is not a perpetual
    btc = markets["BTCUSDT"].rules
    assert (btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional, btc.max_qty) == (
        Decimal("0.10"),
        Decimal("0.001"),
        Decimal("0.001"),
        Decimal("10"),
        Decimal("1000"),
    )
    assert markets["BTCUSDT"].max_leverage == 20 and markets["BTCUSDT"].brackets == ()  # no brackets: default
    eth = markets["ETHUSDT"]
    assert eth.max_leverage == 75
    assert eth.brackets[0].maint_margin_ratio == Decimal("0.0065") and eth.brackets[0].notional_cap == 10000


def test_2026_exchange_info_keeps_only_usdt_perpetuals() -> None:
    info = _load("nautilus/crates__futures__http_json__exchange_info_usdm__commit_27a8e54.json")
    parsed = [parse_market(s, None) for s in info["symbols"]]
    kept = [m.symbol for m in parsed if m is not None]
    assert kept == ["BTCUSDT"]  # not the quarterly, not the TRADIFI_PERPETUAL XAUUSDT
    rules = parsed[0].rules
    assert rules.min_notional == Decimal("5") and rules.max_qty == Decimal("1000")  # no MARKET_LOT_SIZE here


def test_delivery_and_onboard_dates_of_a_perpetual_and_of_a_delisting() -> None:
    info = _load("nautilus/crates__futures__http_json__exchange_info_usdm__commit_27a8e54.json")
    raw = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    btc = parse_market(raw, None)
    assert btc is not None
    assert btc.delivery_ms == 4133404800000 and btc.onboard_ms == 1569398400000  # 2100-12-25: not being delisted
    # Binance announces a delisting by moving deliveryDate to the settlement time (as a string here: tolerated).
    announced = parse_market({**raw, "deliveryDate": "1790323200000", "status": "TRADING"}, None)
    assert announced is not None and announced.delivery_ms == 1790323200000 and announced.trading
    silent = parse_market({k: v for k, v in raw.items() if k not in ("deliveryDate", "onboardDate")}, None)
    assert silent is not None and silent.delivery_ms is None and silent.onboard_ms is None
    for bad in (-1, 1.5, "soon", True, [1]):
        with pytest.raises(ExchangeError, match="unreadable deliveryDate of BTCUSDT"):
            parse_market({**raw, "deliveryDate": bad}, None)


def test_position_risk_v3_real_testnet_reply() -> None:
    (raw,) = _load("ccxt-static/swap_fetchPositions__GET_fapi_v3_positionRisk.json")
    pos = parse_position(raw)
    assert pos.symbol == "BTCUSDT" and pos.qty == Decimal("0.009") and pos.entry_price == Decimal("67445.9")
    assert pos.mark_price == Decimal("67502.68519858") and pos.unrealized_pnl == Decimal("0.51106678")
    assert pos.liquidation_price == Decimal("64846.98753790")
    assert pos.leverage is None and pos.margin_mode is None and pos.update_time == 1722161166529


def test_position_risk_v2_carries_leverage_and_mode() -> None:
    (raw,) = _load("nautilus/crates__futures__http_json__position_risk.json")
    pos = parse_position(raw)
    assert pos.leverage == 20 and pos.margin_mode == "cross" and pos.qty == Decimal("0.001")


def test_account_v3_multi_asset_takes_the_usdt_row() -> None:
    balance = parse_balance(_load("ccxt-static/swap_fetchPositions__GET_fapi_v3_account.json"))
    usdt = next(
        a for a in _load("ccxt-static/swap_fetchPositions__GET_fapi_v3_account.json")["assets"] if a["asset"] == "USDT"
    )
    assert balance.wallet == Decimal(usdt["walletBalance"])
    assert balance.available == Decimal(usdt["availableBalance"])
    assert balance.unrealized_pnl == Decimal(usdt["unrealizedProfit"])
    assert balance.margin_in_use == Decimal(usdt["positionInitialMargin"])


def test_account_v2_totals() -> None:
    balance = parse_balance(_load("ccxt-static/swap_fetchBalance__GET_fapi_v2_account.json"))
    assert balance.wallet == Decimal("31.02261200") and balance.available == Decimal("31.02261200")
    assert balance.margin_in_use == 0


def test_filled_market_order_and_open_limit_order() -> None:
    (raw,) = _load("ccxt-static/papi_um_fetchOrders__GET_papi_v1_um_allOrders__MARKET_FILLED_hedge.json")
    order = parse_order(raw)
    assert order.status is OrderStatus.FILLED and order.side is Side.BUY and order.type == "MARKET"
    assert order.avg_price == Decimal("47279.40000") and order.filled_qty == Decimal("0.010")
    assert order.order_id == "262065925771" and order.update_time == 1707550415587
    limit = parse_order(_load("nautilus/crates__futures__http_json__order_response.json"))
    assert limit.status is OrderStatus.NEW and limit.filled_qty == 0 and not limit.reduce_only
    assert parse_order({**raw, "status": "EXPIRED_IN_MATCH"}).status is OrderStatus.EXPIRED


def test_algo_order_reply_and_open_list() -> None:
    algo = parse_algo_order(_load("nautilus/crates__futures__http_json__algo_order_response__commit_27a8e54.json"))
    assert algo.type == "STOP_MARKET" and algo.status == "FINISHED" and algo.trigger_price == Decimal("45000.00")
    assert algo.client_algo_id == "test-algo-order-2" and algo.algo_id == "123456789"
    (open_algo,) = [parse_algo_order(a) for a in _load("nautilus/crates__futures__http_json__open_algo_orders.json")]
    assert open_algo.type == "STOP_MARKET" and open_algo.status == "NEW" and open_algo.working_type == "MARK_PRICE"
    assert not open_algo.close_position


def test_user_trade() -> None:
    (raw,) = _load("ccxt-static/swap_fetchMyTrades__GET_fapi_v1_userTrades.json")
    trade = parse_trade(raw)
    assert trade.price == Decimal("36567.10") and trade.qty == Decimal("0.010")
    assert trade.fee == Decimal("0.14626840") and trade.realized_pnl == 0 and trade.time == 1699972836419


def test_klines_and_the_in_progress_candle() -> None:
    rows = _load("ccxt-static/swap_fetchOHLCV__GET_fapi_v1_klines__BTCUSDT_1m_limit3.json")
    now = rows[-1][0] + 30_000  # the exchange clock inside the last candle
    klines = [parse_kline(r, now) for r in rows]
    assert [k.closed for k in klines] == [True, True, False]
    assert klines[1].low == 70459.4 and klines[2].volume == 1.542
    assert parse_kline(rows[-1], rows[-1][6] + 1).closed


def test_income_rows_keep_binances_sign_and_id() -> None:
    rows = _load("docs-examples-json/private_rest_api__Get_Income_History_USER_DATA.json")
    commission = parse_funding_income(rows[1])  # the docs show no FUNDING_FEE row; the shape is the same
    assert (commission.symbol, commission.amount, commission.asset, commission.time_ms, commission.tran_id) == (
        "BTCUSDT", Decimal("-0.01000000"), "USDT", 1570636800000, "9689322392",
    )  # fmt: skip
    with pytest.raises(ExchangeError, match="malformed income row"):
        parse_funding_income({"symbol": "BTCUSDT", "income": "x", "time": 1, "tranId": 2})


def test_ticker_24h() -> None:
    (raw,) = _load("docs-examples-json/public_rest_api__24hr_Ticker_Price_Change_Statistics__2.json")
    t = parse_ticker_24h(raw)
    assert (t.symbol, t.last_price, t.quote_volume, t.price_change_pct) == ("BTCUSDT", 4.000002, 15.3, -95.96)


def test_wire_formatting_and_redaction() -> None:
    assert fmt_decimal(Decimal("5E+4")) == "50000"
    assert fmt_decimal(Decimal("45000.00")) == "45000"
    assert fmt_decimal(Decimal("0.00100")) == "0.001"
    assert fmt_decimal(Decimal("-0")) == "0"
    text = "GET http://h/fapi/v1/order?symbol=X&timestamp=1&signature=abcdef123 listenKey=LK123"
    assert "abcdef123" not in redact(text) and "LK123" not in redact(text) and "symbol=X" in redact(text)
