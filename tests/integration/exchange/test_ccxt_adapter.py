"""The live adapter against the loopback fake Binance, over real HTTP: every port method, signing, URLs, weight."""

from __future__ import annotations

import csv
import gzip
import io
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from itertools import islice

import aiohttp
import pytest

from tests.conftest import KLINES_DIR
from tests.fakes.binance import FakeBinance
from tests.fakes.binance.catalog import BTCUSDT
from trading.exchange.base import (
    AlgoOrder,
    AuthError,
    ExchangePort,
    ListenKeyAPI,
    NotFoundError,
    OrderStatus,
    RejectedError,
    Side,
)
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
from trading.exchange.environments import BinanceEnv, environment_of, rest_base_url, ws_base_url
from trading.exchange.streams import BinanceMarketStream, BinanceUserStream, _MarketConnection
from trading.settings import Settings

KEY, SECRET = "test-key", "test-secret"
PRODUCTION_FAPI_KEYS = {
    "fapiPublic",
    "fapiPublicV2",
    "fapiPublicV3",
    "fapiPrivate",
    "fapiPrivateV2",
    "fapiPrivateV3",
    "fapiData",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key=KEY, api_secret=SECRET, balance="1000", taker_fee="0.0005")
    fb.add_symbol(**BTCUSDT)
    fb.add_symbol(
        "ETHUSDT",
        price="3000",
        tick_size="0.01",
        step_size="0.001",
        min_qty="0.001",
        min_notional="20",
        max_leverage=100,
        quote_volume="5e8",
    )
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


class UrlLog:
    """Every URL the adapter's HTTP session sends a request to (aiohttp trace hook)."""

    def __init__(self) -> None:
        self.urls: list[str] = []
        self.config = aiohttp.TraceConfig()
        self.config.on_request_start.append(self._start)

    async def _start(self, session: object, ctx: object, params: aiohttp.TraceRequestStartParams) -> None:
        self.urls.append(str(params.url))


@pytest.fixture
def url_log() -> UrlLog:
    return UrlLog()


@pytest.fixture
async def adapter(fake: FakeBinance, url_log: UrlLog) -> AsyncIterator[CcxtBinanceAdapter]:
    ad = CcxtBinanceAdapter(
        api_key=KEY,
        api_secret=SECRET,
        rest_url=fake.rest_url,
        timeout_s=3.0,
        retry_base_s=0.01,
        retry_cap_s=0.05,
        trace_configs=[url_log.config],
    )
    try:
        yield ad
    finally:
        await ad.close()


def _requests(fake: FakeBinance, method: str, path: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path == path]


# ------------------------------------------------------------------ construction and URLs
def test_satisfies_both_protocols_and_hides_secrets() -> None:
    ad = CcxtBinanceAdapter(api_key="my-key-123", api_secret="my-secret-456", rest_url="http://127.0.0.1:9")
    assert isinstance(ad, ExchangePort)
    listen_key_api: ListenKeyAPI = ad  # not runtime_checkable: check its methods by name
    assert all(
        callable(getattr(listen_key_api, m)) for m in ("create_listen_key", "keepalive_listen_key", "close_listen_key")
    )
    assert "my-secret-456" not in repr(ad) and "my-key-123" not in repr(ad)


def test_rest_url_rewrites_every_fapi_entry() -> None:
    ad = CcxtBinanceAdapter(rest_url="http://127.0.0.1:9/")
    urls = ad.api_urls
    assert set(urls) >= PRODUCTION_FAPI_KEYS
    assert all(u.startswith("http://127.0.0.1:9/") for u in urls.values()), urls
    assert urls["fapiPrivateV3"] == "http://127.0.0.1:9/fapi/v3"
    assert urls["fapiData"] == "http://127.0.0.1:9/futures/data"


def test_testnet_then_rewrite() -> None:
    testnet = CcxtBinanceAdapter(testnet=True)
    assert all("testnet.binancefuture.com" in u for u in testnet.api_urls.values())
    both = CcxtBinanceAdapter(testnet=True, rest_url="http://127.0.0.1:9")
    assert set(both.api_urls) >= PRODUCTION_FAPI_KEYS
    assert all(u.startswith("http://127.0.0.1:9/") for u in both.api_urls.values())
    plain = CcxtBinanceAdapter()
    assert all(u.startswith("https://fapi.binance.com/") for u in plain.api_urls.values())


def test_demo_trading_uses_ccxts_demo_table_and_the_overrides_still_win() -> None:
    demo = CcxtBinanceAdapter(demo=True)
    assert demo.environment == BinanceEnv.DEMO and "demo: https://demo-fapi.binance.com" in repr(demo)
    urls = demo.api_urls
    assert set(urls) >= PRODUCTION_FAPI_KEYS - {"fapiData"}  # ccxt's demo table has no futures/data entry
    assert all(u.startswith("https://demo-fapi.binance.com/fapi/") for u in urls.values()), urls
    assert urls["fapiPrivateV3"] == "https://demo-fapi.binance.com/fapi/v3"
    proxied = CcxtBinanceAdapter(demo=True, rest_url="http://127.0.0.1:9")
    assert all(u.startswith("http://127.0.0.1:9/") for u in proxied.api_urls.values())
    with pytest.raises(ValueError, match="choose one"):
        CcxtBinanceAdapter(demo=True, testnet=True)


def test_the_streams_of_each_environment() -> None:
    def urls(**env: object) -> tuple[str, str]:
        settings = Settings(_env_file=None, trading_mode="live", binance_api_key="k", binance_api_secret="s", **env)  # type: ignore[call-arg]
        market = BinanceMarketStream(ws_base_url(settings))
        market._conns.append(conn := _MarketConnection(market, "market:0", {"btcusdt@kline_1m"}))
        user = BinanceUserStream(ws_base_url(settings), CcxtBinanceAdapter.from_settings(settings))
        return conn._url()[0], user.base_ws_url

    assert urls() == ("wss://fstream.binance.com/market/stream?streams=btcusdt@kline_1m", "wss://fstream.binance.com")
    assert urls(binance_demo=True) == (
        "wss://demo-fstream.binance.com/market/stream?streams=btcusdt@kline_1m",
        "wss://demo-fstream.binance.com",
    )
    assert urls(binance_testnet=True)[1] == "wss://fstream.binancefuture.com"
    assert urls(binance_demo=True, binance_ws_url="ws://127.0.0.1:9/")[1] == "ws://127.0.0.1:9"
    settings = Settings(
        _env_file=None, trading_mode="live", binance_api_key="k", binance_api_secret="s", binance_demo=True
    )  # type: ignore[call-arg]
    assert environment_of(settings) == BinanceEnv.DEMO and rest_base_url(settings) == "https://demo-fapi.binance.com"
    assert CcxtBinanceAdapter.from_settings(settings).environment == BinanceEnv.DEMO


def test_from_settings_and_bad_url() -> None:
    settings = Settings(
        trading_mode="live",
        binance_api_key="k-1",
        binance_api_secret="s-1",
        binance_rest_url="http://127.0.0.1:9/",
        binance_testnet=False,
    )
    ad = CcxtBinanceAdapter.from_settings(settings, timeout_s=1.0)
    assert ad.rest_url == "http://127.0.0.1:9"
    assert "s-1" not in repr(ad)
    with pytest.raises(ValueError, match="BINANCE_REST_URL"):
        CcxtBinanceAdapter(rest_url="fapi.example.com")


# ------------------------------------------------------------------ markets, time, account
async def test_load_markets_exact_rules_and_brackets(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    markets = await adapter.load_markets()
    btc = markets["BTCUSDT"]
    assert btc.rules.tick_size == Decimal("0.10") and btc.rules.step_size == Decimal("0.001")
    assert btc.rules.min_qty == Decimal("0.001") and btc.rules.min_notional == Decimal("100")
    assert btc.trading and btc.base == "BTC" and btc.quote == "USDT"
    assert btc.max_leverage == 125
    assert btc.brackets and btc.brackets[0].notional_floor == 0 and btc.brackets[0].max_leverage == 125
    assert all(isinstance(b.maint_margin_ratio, Decimal) and b.maint_margin_ratio > 0 for b in btc.brackets)
    assert markets["ETHUSDT"].rules.min_notional == Decimal("20") and markets["ETHUSDT"].max_leverage == 100
    assert len(_requests(fake, "GET", "/fapi/v1/leverageBracket")) == 1


async def test_load_markets_without_key_uses_default_leverage(fake: FakeBinance) -> None:
    ad = CcxtBinanceAdapter(rest_url=fake.rest_url, default_max_leverage=20)
    try:
        markets = await ad.load_markets()
        assert markets["BTCUSDT"].max_leverage == 20 and markets["BTCUSDT"].brackets == ()
        assert not _requests(fake, "GET", "/fapi/v1/leverageBracket")
        with pytest.raises(AuthError):
            await ad.fetch_balance()
        assert not _requests(fake, "GET", "/fapi/v3/account")  # refused before the wire
    finally:
        await ad.close()


async def test_server_time_measures_the_offset(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.time_offset_ms = -45_000  # the exchange clock is 45 s behind ours
    server = await adapter.server_time()
    assert abs(server - fake.now_ms()) < 2_000
    assert 43_000 < adapter.time_offset_ms < 47_000
    # Signed requests then carry the exchange's time and pass its recvWindow check at once.
    await adapter.fetch_balance()
    assert [r.code for r in _requests(fake, "GET", "/fapi/v3/account")] == [None]


async def test_balance_positions_and_signed_qty(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    balance = await adapter.fetch_balance()
    assert balance.wallet == Decimal("1000") and balance.available == Decimal("1000")
    assert balance.margin_in_use == 0 and balance.unrealized_pnl == 0
    assert await adapter.fetch_positions() == []
    await fake.open_position_by_hand("BTCUSDT", qty="0.010")
    await fake.set_price("BTCUSDT", "51000")
    await fake.open_position_by_hand("ETHUSDT", qty="-0.5")  # someone opened a short by hand
    positions = {p.symbol: p for p in await adapter.fetch_positions()}
    assert set(positions) == {"BTCUSDT", "ETHUSDT"}
    btc = positions["BTCUSDT"]
    assert btc.qty == Decimal("0.010") and btc.entry_price == Decimal("50000")
    assert btc.unrealized_pnl == Decimal("10") and btc.mark_price == Decimal("51000")
    assert btc.leverage is None  # positionRisk v3 carries none
    assert positions["ETHUSDT"].qty == Decimal("-0.5")
    balance = await adapter.fetch_balance()
    assert balance.unrealized_pnl == Decimal("10") and balance.margin_in_use > 0
    assert balance.available < balance.wallet + balance.unrealized_pnl


# ------------------------------------------------------------------ orders
async def test_market_order_result_fill_and_reduce_only_exit(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    order = await adapter.create_market_order(
        "BTCUSDT", Side.BUY, Decimal("0.004"), client_order_id="sdca-1-enter-1", reduce_only=False
    )
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal("0.004")
    assert order.avg_price == Decimal("50000") and order.client_order_id == "sdca-1-enter-1"
    assert not order.reduce_only and order.order_id
    assert fake.position("BTCUSDT").qty == Decimal("0.004")
    sent = _requests(fake, "POST", "/fapi/v1/order")[0].params
    assert sent["newOrderRespType"] == "RESULT" and sent["quantity"] == "0.004" and "reduceOnly" not in sent
    fake.advance_time_ms(5)  # the exit's trade a few ms later on the exchange's clock (never the same ms)
    await fake.set_price("BTCUSDT", "49000")
    exit_order = await adapter.create_market_order(
        "BTCUSDT", Side.SELL, Decimal("0.004"), client_order_id="sdca-1-stop-1", reduce_only=True
    )
    assert exit_order.reduce_only and exit_order.avg_price == Decimal("49000")
    assert fake.position("BTCUSDT").qty == 0
    assert _requests(fake, "POST", "/fapi/v1/order")[1].params["reduceOnly"] == "true"
    # Orders are found again by client id; an id the exchange never saw is None (-2013).
    found = await adapter.fetch_order("BTCUSDT", "sdca-1-enter-1")
    assert found is not None and found.status is OrderStatus.FILLED and found.filled_qty == Decimal("0.004")
    assert await adapter.fetch_order("BTCUSDT", "sdca-9-enter-1") is None
    trades = await adapter.fetch_trades("BTCUSDT")
    assert [t.side for t in trades] == [Side.BUY, Side.SELL]
    assert trades[0].fee == Decimal("0.1")  # 0.004 x 50,000 x 0.0005
    assert trades[1].realized_pnl == Decimal("-4")
    later = await adapter.fetch_trades("BTCUSDT", start_ms=trades[1].time)
    assert [t.order_id for t in later] == [trades[1].order_id]


async def test_bad_quantities_are_refused_before_the_wire(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await adapter.load_markets()
    for qty in (Decimal("0"), Decimal("-1"), Decimal("0.0015")):
        with pytest.raises(ValueError):
            await adapter.create_market_order("BTCUSDT", Side.BUY, qty, client_order_id="sdca-1-x-1", reduce_only=False)
    with pytest.raises(ValueError):
        await adapter.create_market_order("BTCUSDT", Side.BUY, Decimal("0.001"), client_order_id="", reduce_only=False)
    assert not _requests(fake, "POST", "/fapi/v1/order")


async def test_stop_goes_to_the_algo_api_tick_rounded(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await fake.open_position_by_hand("BTCUSDT", qty="0.01")
    stop = await adapter.create_stop_market_close("BTCUSDT", Decimal("45000.07"), client_algo_id="sdca-1-bs-1")
    assert isinstance(stop, AlgoOrder)
    assert stop.trigger_price == Decimal("45000") and stop.close_position and stop.side is Side.SELL
    assert stop.working_type == "MARK_PRICE" and stop.type == "STOP_MARKET" and stop.status == "NEW"
    sent = _requests(fake, "POST", "/fapi/v1/algoOrder")[0].params
    assert sent["triggerPrice"] == "45000" and sent["algoType"] == "CONDITIONAL"
    assert sent["closePosition"] == "true" and sent["clientAlgoId"] == "sdca-1-bs-1"
    # The -4120 path never happens: nothing conditional was sent to /fapi/v1/order.
    assert not _requests(fake, "POST", "/fapi/v1/order")
    assert [a.client_algo_id for a in fake.open_algo_orders("BTCUSDT")] == ["sdca-1-bs-1"]
    listed = await adapter.fetch_open_algo_orders()
    assert [(a.client_algo_id, a.trigger_price) for a in listed] == [("sdca-1-bs-1", Decimal("45000"))]
    assert await adapter.fetch_open_algo_orders("ETHUSDT") == []
    await adapter.cancel_algo_order("BTCUSDT", "sdca-1-bs-1")
    assert fake.open_algo_orders() == []
    with pytest.raises(NotFoundError) as info:
        await adapter.cancel_algo_order("BTCUSDT", "sdca-1-bs-1")
    assert info.value.code == -2011


async def test_open_orders_and_cancel(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    assert await adapter.fetch_open_orders() == []
    # A resting LIMIT order placed outside the port (the port only sends MARKET orders): signed by ccxt itself.
    await adapter._ex.request(
        "order",
        ["fapiPrivate"],
        "POST",
        {
            "symbol": "ETHUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "2500",
            "newClientOrderId": "manual-limit-1",
        },
    )
    orders = await adapter.fetch_open_orders("ETHUSDT")
    assert len(orders) == 1
    o = orders[0]
    assert o.client_order_id == "manual-limit-1" and o.status is OrderStatus.NEW and o.type == "LIMIT"
    assert o.qty == Decimal("0.010") and o.filled_qty == 0
    assert [x.client_order_id for x in await adapter.fetch_open_orders()] == ["manual-limit-1"]
    await adapter.cancel_order("ETHUSDT", "manual-limit-1")
    assert fake.open_orders() == []
    with pytest.raises(NotFoundError):
        await adapter.cancel_order("ETHUSDT", "manual-limit-1")


async def test_leverage_and_margin_mode(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await adapter.set_leverage("BTCUSDT", 10)
    assert fake.leverage("BTCUSDT") == 10
    with pytest.raises(ValueError):
        await adapter.set_leverage("BTCUSDT", 0)
    await adapter.set_margin_mode("ETHUSDT", "isolated")
    assert fake.margin_mode("ETHUSDT") == "isolated"
    await adapter.set_margin_mode("ETHUSDT", "isolated")  # -4046 "No need to change margin type" is success
    assert [r.code for r in _requests(fake, "POST", "/fapi/v1/marginType")] == [None, -4046]
    await fake.open_position_by_hand("BTCUSDT", qty="0.01")
    with pytest.raises(RejectedError, match="open position") as info:
        await adapter.set_margin_mode("BTCUSDT", "isolated")
    assert info.value.code == -4048
    with pytest.raises(ValueError):
        await adapter.set_margin_mode("BTCUSDT", "portfolio")


async def test_listen_key_life_cycle(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    key = await adapter.create_listen_key()
    assert key and key in fake.listen_keys
    await adapter.keepalive_listen_key(key)
    await adapter.close_listen_key(key)
    assert [r.status for r in fake.requests if r.path == "/fapi/v1/listenKey"] == [200, 200, 200]
    assert not fake.listen_keys[key].active


# ------------------------------------------------------------------ market data
def _real_rows(symbol: str, n: int) -> list[list[str]]:
    path = KLINES_DIR / f"{symbol}-1m.csv.gz"
    if not path.is_file():
        pytest.fail(f"real candles expected in {path}")
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        reader = csv.reader(io.StringIO("".join(islice(fh, n + 1))))
        return [row for row in reader if row and row[0].isdigit()][:n]


async def test_klines_real_candles_and_the_open_one(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    rows = _real_rows("BTCUSDT", 120)
    fake.load_klines("BTCUSDT", "1m", rows)
    got = await adapter.fetch_klines("BTCUSDT", "1m", start_ms=int(rows[0][0]), limit=100)
    assert len(got) == 100
    assert [k.open_time for k in got] == [int(r[0]) for r in rows[:100]]
    assert [(k.open, k.high, k.low, k.close, k.volume) for k in got[:3]] == [
        tuple(float(x) for x in r[1:6]) for r in rows[:3]
    ]
    assert all(k.closed for k in got)
    # The exchange clock inside the last loaded candle: that one is still forming.
    last_open = int(rows[-1][0])
    fake.set_time_ms(last_open + 30_000)
    await adapter.sync_time()
    tail = await adapter.fetch_klines("BTCUSDT", "1m", start_ms=int(rows[-3][0]), limit=10)
    assert [k.open_time for k in tail][:3] == [int(r[0]) for r in rows[-3:]]
    assert [k.closed for k in tail][:3] == [True, True, False]
    with pytest.raises(ValueError):
        await adapter.fetch_klines("BTCUSDT", "1m", limit=0)


async def test_tickers_and_prices(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    tickers = {t.symbol: t for t in await adapter.fetch_tickers_24h()}
    assert set(tickers) == {"BTCUSDT", "ETHUSDT"}
    assert tickers["BTCUSDT"].quote_volume == 1e9 and tickers["BTCUSDT"].last_price == 50000.0
    await fake.set_price("ETHUSDT", "3012.34")
    prices = await adapter.fetch_prices(["BTCUSDT", "ETHUSDT", "NOPEUSDT"])
    assert prices == {"BTCUSDT": Decimal("50000"), "ETHUSDT": Decimal("3012.34")}
    assert await adapter.fetch_prices(["ETHUSDT"]) == {"ETHUSDT": Decimal("3012.34")}
    assert await adapter.fetch_prices([]) == {}
    singles = [r for r in fake.requests if r.path == "/fapi/v2/ticker/price"]
    assert [r.weight for r in singles] == [2, 1]  # one symbol asks for that symbol only


async def test_funding_income_page_by_page_and_the_premium_index(
    fake: FakeBinance, adapter: CcxtBinanceAdapter
) -> None:
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000")
    await fake.set_mark_price("BTCUSDT", "51000")
    start = fake.now_ms()
    paid = await fake.charge_funding("BTCUSDT", "0.0001")
    for i in range(1_100):  # a long history: two pages of at most 1000 rows
        fake.exchange.ledger.add_income("ETHUSDT", "FUNDING_FEE", Decimal("-0.01"), start + 1 + i)
    rows = await adapter.fetch_funding_income(start, start + 2_000)
    requests = _requests(fake, "GET", "/fapi/v1/income")
    assert [(r.params["page"], r.params["incomeType"], r.weight) for r in requests] == [
        ("1", "FUNDING_FEE", 30), ("2", "FUNDING_FEE", 30),
    ]  # fmt: skip
    assert len(rows) == 1_101 and len({r.tran_id for r in rows}) == 1_101
    first = rows[0]
    charged = next(r for r in fake.income if r.income_type == "FUNDING_FEE")
    assert (first.symbol, first.amount, first.asset, first.tran_id) == ("BTCUSDT", paid, "USDT", str(charged.tran_id))
    assert paid == Decimal("-0.051")  # Binance's sign: the long paid
    assert await adapter.fetch_funding_income(start + 5_000, start + 6_000) == []
    premium = await adapter.fetch_premium_index("BTCUSDT")
    assert (premium.symbol, premium.mark_price, premium.funding_rate) == ("BTCUSDT", Decimal(51000), Decimal("0.0001"))
    assert premium.next_funding_ms == fake.next_funding_time("BTCUSDT") > premium.time_ms


# ------------------------------------------------------------------ signing, URLs, weight, logs
async def test_wrong_secret_is_an_auth_error(fake: FakeBinance) -> None:
    ad = CcxtBinanceAdapter(api_key=KEY, api_secret="not-the-secret", rest_url=fake.rest_url, retry_base_s=0.01)
    try:
        with pytest.raises(AuthError) as info:
            await ad.fetch_balance()
        assert info.value.code == -1022
        wrong_key = CcxtBinanceAdapter(api_key="other-key", api_secret=SECRET, rest_url=fake.rest_url)
        try:
            with pytest.raises(AuthError) as info2:
                await wrong_key.fetch_positions()
            assert info2.value.code == -2015
        finally:
            await wrong_key.close()
    finally:
        await ad.close()
    assert [r.signed_ok for r in fake.requests if r.path == "/fapi/v3/account"] == [False]


async def test_every_request_hits_the_rewritten_url(
    fake: FakeBinance, adapter: CcxtBinanceAdapter, url_log: UrlLog
) -> None:
    await adapter.load_markets()
    await adapter.fetch_balance()
    await adapter.fetch_positions()
    await adapter.fetch_open_orders()
    await adapter.fetch_open_algo_orders()
    await adapter.fetch_tickers_24h()
    await adapter.fetch_prices(["BTCUSDT", "ETHUSDT"])
    await adapter.fetch_klines("BTCUSDT", "1m", limit=5)
    await adapter.fetch_trades("BTCUSDT")
    await adapter.create_market_order(
        "BTCUSDT", Side.BUY, Decimal("0.003"), client_order_id="sdca-2-enter-1", reduce_only=False
    )
    await adapter.fetch_order("BTCUSDT", "sdca-2-enter-1")
    await adapter.create_stop_market_close("BTCUSDT", Decimal("40000"), client_algo_id="sdca-2-bs-1")
    await adapter.cancel_algo_order("BTCUSDT", "sdca-2-bs-1")
    await adapter.set_leverage("BTCUSDT", 5)
    await adapter.set_margin_mode("ETHUSDT", "cross")
    key = await adapter.create_listen_key()
    await adapter.keepalive_listen_key(key)
    await adapter.close_listen_key(key)
    assert len(url_log.urls) == len(fake.requests) >= 19
    assert all(u.startswith(fake.rest_url + "/") for u in url_log.urls), url_log.urls
    assert all(r.status and r.status != 404 for r in fake.requests)  # every path exists on the fake
    assert {r.path.split("/")[2] for r in fake.requests} <= {"v1", "v2", "v3"}


async def test_weight_is_read_from_every_reply(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    # Start early in an exchange minute so the counter does not reset under the test.
    now = fake.now_ms()
    fake.time_offset_ms = (now // 60_000 + 1) * 60_000 + 2_000 - now
    fake.reset_weight()
    assert adapter.used_weight() == 0
    await adapter.fetch_tickers_24h()  # 40 without a symbol
    assert adapter.used_weight() == fake.used_weight() == 40
    await adapter.fetch_balance()
    await adapter.fetch_open_orders()
    assert adapter.used_weight() == fake.used_weight() == sum(r.weight for r in fake.requests)
    assert adapter.used_weight() >= 40 + 1 + 5 + 40  # + the /time of the first signed call


async def test_no_secret_in_logs(fake: FakeBinance, adapter: CcxtBinanceAdapter, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    await adapter.fetch_balance()
    fake.faults.fail_next("GET", "/fapi/v3/positionRisk", status=503, times=1)
    await adapter.fetch_positions()  # one logged retry
    key = await adapter.create_listen_key()
    assert "retrying" in caplog.text
    assert SECRET not in caplog.text and KEY not in caplog.text and key not in caplog.text
