"""ccxt's binanceusdm, pointed at the fake, speaks to it: proof that the fake answers what ccxt sends."""

from __future__ import annotations

import decimal
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import API_KEY, API_SECRET

PROD = "https://fapi.binance.com"


@pytest.fixture
async def exchange(fake: FakeBinance) -> AsyncIterator[ccxt.binanceusdm]:
    ex = ccxt.binanceusdm(
        {
            "apiKey": API_KEY,
            "secret": API_SECRET,
            "enableRateLimit": False,
            "options": {"fetchCurrencies": False},
        }
    )
    for name, url in list(ex.urls["api"].items()):
        if name.startswith("fapi"):
            ex.urls["api"][name] = url.replace(PROD, fake.rest_url)
    # ccxt's unified order methods round with decimal_to_precision, which sets the thread's decimal context to
    # ROUND_HALF_UP (and traps Underflow) for good; the tests that run after this one in the same process must
    # not inherit that (the service's adapter sends raw requests and never calls those helpers).
    context = decimal.getcontext()
    rounding, traps = context.rounding, dict(context.traps)
    try:
        yield ex
    finally:
        await ex.close()
        context.rounding = rounding
        context.traps.update(traps)


async def test_ccxt_markets_balance_and_orders(fake: FakeBinance, exchange: ccxt.binanceusdm) -> None:
    markets = await exchange.load_markets()
    btc = markets["BTC/USDT:USDT"]
    assert btc["id"] == "BTCUSDT" and btc["limits"]["cost"]["min"] == 100 and btc["precision"]["price"] == 0.1
    assert abs(await exchange.fetch_time() - fake.now_ms()) < 5_000

    balance = await exchange.fetch_balance()
    assert balance["USDT"]["total"] == 1000

    order = await exchange.create_order(
        "BTC/USDT:USDT", "market", "buy", 0.01, params={"newClientOrderId": "sdca-1-enter-1"}
    )
    assert (order["status"], order["filled"], order["average"], order["clientOrderId"]) == (
        "closed",
        0.01,
        50000.0,
        "sdca-1-enter-1",
    )
    assert fake.position("BTCUSDT").qty == Decimal("0.010")

    stop = await exchange.create_order(
        "BTC/USDT:USDT",
        "market",
        "sell",
        None,
        params={
            "triggerPrice": 45000,
            "closePosition": True,
            "workingType": "MARK_PRICE",
            "clientAlgoId": "sdca-1-s-1",
        },
    )
    assert (stop["status"], stop["clientOrderId"], stop["triggerPrice"]) == ("open", "sdca-1-s-1", 45000.0)
    assert fake.requests[-1].path == "/fapi/v1/algoOrder" and fake.requests[-1].params["algoType"] == "CONDITIONAL"
    algo = fake.algo_orders[-1]
    assert (algo.client_algo_id, algo.close_position, algo.working_type, algo.trigger_price) == (
        "sdca-1-s-1",
        True,
        "MARK_PRICE",
        Decimal("45000.0"),
    )


async def test_ccxt_queries_and_settings(fake: FakeBinance, exchange: ccxt.binanceusdm) -> None:
    await exchange.load_markets()
    await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01, params={"newClientOrderId": "sdca-2-enter-1"})
    await exchange.create_order(
        "BTC/USDT:USDT", "market", "sell", None, params={"triggerPrice": 45000, "closePosition": True}
    )
    fetched = await exchange.fetch_order(None, "BTC/USDT:USDT", params={"origClientOrderId": "sdca-2-enter-1"})
    assert fetched["status"] == "closed" and fetched["filled"] == 0.01

    positions = await exchange.fetch_positions()
    assert [(p["symbol"], p["contracts"], p["side"]) for p in positions] == [("BTC/USDT:USDT", 0.01, "long")]

    open_algos = await exchange.fetch_open_orders("BTC/USDT:USDT", params={"trigger": True})
    assert len(open_algos) == 1 and open_algos[0]["triggerPrice"] == 45000.0
    assert await exchange.fetch_open_orders("BTC/USDT:USDT") == []
    await exchange.cancel_order(open_algos[0]["id"], "BTC/USDT:USDT", params={"trigger": True})
    assert fake.algo_orders[-1].status == "CANCELED"

    trades = await exchange.fetch_my_trades("BTC/USDT:USDT")
    assert trades[0]["fee"]["cost"] == 0.25 and trades[0]["side"] == "buy"
    candles = await exchange.fetch_ohlcv("BTC/USDT:USDT", "1m", limit=5)
    assert candles and candles[-1][4] == 50000.0
    tickers = await exchange.fetch_tickers()
    assert set(tickers) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}

    await exchange.set_leverage(5, "ETH/USDT:USDT")
    await exchange.set_margin_mode("isolated", "ETH/USDT:USDT")
    assert (fake.leverage("ETHUSDT"), fake.margin_mode("ETHUSDT")) == (5, "isolated")
    brackets = await exchange.load_leverage_brackets()
    assert "BTC/USDT:USDT" in brackets

    with pytest.raises(ccxt.ExchangeError, match="-2013"):
        await exchange.fetch_order(None, "BTC/USDT:USDT", params={"origClientOrderId": "never"})
    with pytest.raises(ccxt.ExchangeError, match="-4164"):
        await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.001)


async def test_ccxt_hedge_mode_funding_and_liquidations(fake: FakeBinance, exchange: ccxt.binanceusdm) -> None:
    await exchange.load_markets()
    assert (await exchange.fetch_position_mode())["hedged"] is False
    await exchange.set_position_mode(True)
    assert fake.hedge_mode and (await exchange.fetch_position_mode())["hedged"] is True
    await exchange.create_order("BTC/USDT:USDT", "market", "buy", 0.01, params={"positionSide": "LONG"})
    headers = {name.lower(): value for name, value in exchange.last_response_headers.items()}
    assert (headers["x-mbx-order-count-10s"], headers["x-mbx-order-count-1m"]) == ("1", "1")
    await exchange.create_order("BTC/USDT:USDT", "market", "sell", 0.004, params={"positionSide": "SHORT"})
    positions = await exchange.fetch_positions()
    assert sorted((p["side"], p["contracts"]) for p in positions) == [("long", 0.01), ("short", 0.004)]

    await fake.charge_funding("BTCUSDT", "0.0001")
    funding = await exchange.fetch_funding_history("BTC/USDT:USDT")
    # one row per leg: the long pays 0.010 x 50000 x 0.0001, the short receives 0.004 x 50000 x 0.0001
    assert [round(f["amount"], 8) for f in funding] == [-0.05, 0.02]
    rates = await exchange.fetch_funding_rate_history("BTC/USDT:USDT")
    assert [r["fundingRate"] for r in rates] == [0.0001]

    await fake.liquidate("BTCUSDT", position_side="SHORT")
    liquidations = await exchange.fetch_my_liquidations("BTC/USDT:USDT")
    assert len(liquidations) == 1 and liquidations[0]["contracts"] == 0.004
    assert fake.requests[-1].path == "/fapi/v1/forceOrders"
