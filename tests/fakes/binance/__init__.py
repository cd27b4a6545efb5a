"""A loopback fake of Binance USD-M futures (REST + routed WebSocket) for tests and benchmarks.

One aiohttp server on 127.0.0.1 (a free port) speaks Binance's wire formats: decimals as
JSON strings, ids and times as numbers, Binance's error bodies and HTTP statuses.

    fake = FakeBinance(api_key="test-key", api_secret="test-secret", balance="1000", taker_fee="0.0005")
    fake.add_symbol("BTCUSDT", price="50000", tick_size="0.10", step_size="0.001", min_qty="0.001",
                    min_notional="100", max_leverage=125, quote_volume="1e9", status="TRADING")
    await fake.start()
    fake.rest_url / fake.ws_url          # replace https://fapi.binance.com / wss://fstream.binance.com

Market and time: ``set_price(symbol, price, mark=None, qty=None)`` (aggTrade, markPrice, bookTicker,
in-progress klines; fills crossing limits; fires algo stops), ``set_mark_price``, ``push_kline``,
``load_klines`` (1m history also serves every longer interval), ``set_ticker_stats``,
``set_symbol_status``, ``set_time_ms`` (freeze; None = system clock), ``time_offset_ms``,
``advance_time_ms``.

Account: ``open_position_by_hand``, ``close_position_by_hand``, ``set_balance``, ``set_leverage``,
``expire_listen_key``, ``set_position_mode`` (hedge mode), ``open_hedge_position_by_hand``,
``set_multi_assets_mode``; reads: ``orders``, ``algo_orders``, ``trades``, ``position(symbol,
position_side)``, ``wallet_balance``, ``leverage(symbol)``, ``margin_mode(symbol)``, ``open_orders()``,
``open_algo_orders()``, ``income``, ``funding_history``, ``order_counts()``.

The exchange's own doings: ``charge_funding`` / ``set_auto_funding`` / ``set_funding_rate`` /
``set_funding_interval``, ``liquidate`` (liquidation or ADL), ``announce_delisting`` /
``settle_symbol``, ``cancel_algo_by_hand``, ``expire_algo_order``; order-rate limits:
``set_order_limits``.

Wire inspection: ``requests`` (method, path, params, signed_ok, status, weight, code, fault),
``ws_clients(kind)``, ``ws_client_messages``, ``used_weight()`` / ``reset_weight()``,
``drop_ws_connections(kind, abrupt=False)``, ``flush()``.

Faults (``fake.faults``): ``refuse`` (a Binance code, matched on method, path and order parameters),
``fail_next`` (optionally ``execute=True``), ``rate_limit_next``, ``lose_response_next``, ``delay``
(optionally ``after=True``), ``hold_next`` / ``release``, ``arrive_late_next``, ``silence_market``,
``silence_private``, ``clear``. See the ``server`` module docstring for the full control API.

Standalone: ``python -m tests.fakes.binance --port 0 --symbols 150 --tick-ms 250``; speed of the
fake itself: ``python -m tests.fakes.binance.selfbench``.
"""

from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.faults import Fault, FaultPlan
from tests.fakes.binance.models import (
    FakeAlgoOrder,
    FakeOrder,
    FakeTrade,
    FundingRecord,
    IncomeRow,
    PositionView,
    RequestRecord,
    WsClientInfo,
    WsClientMessage,
)
from tests.fakes.binance.server import FakeBinance
from tests.fakes.binance.signing import sign

__all__ = [
    "BinanceError",
    "FakeAlgoOrder",
    "FakeBinance",
    "FakeOrder",
    "FakeTrade",
    "Fault",
    "FaultPlan",
    "FundingRecord",
    "IncomeRow",
    "PositionView",
    "RequestRecord",
    "WsClientInfo",
    "WsClientMessage",
    "sign",
]
