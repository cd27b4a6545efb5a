"""Public market data: shapes against the real payloads, kline semantics, weights."""

from __future__ import annotations

import csv
import gzip
import json

from tests.conftest import BINANCE_SAMPLES, KLINES_DIR
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import T0, BinanceClient

MINUTE = 60_000


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


def _rows(start: int, count: int, base: float = 100.0) -> list[tuple[int, str, str, str, str, str]]:
    rows = []
    for i in range(count):
        o = base + i
        rows.append((start + i * MINUTE, f"{o:.2f}", f"{o + 2:.2f}", f"{o - 1:.2f}", f"{o + 1:.2f}", f"{10 + i}"))
    return rows


async def test_exchange_info_has_the_real_fields_and_filters(client: BinanceClient) -> None:
    reply = await client.public("/fapi/v1/exchangeInfo")
    assert reply.status == 200
    ours = {s["symbol"]: s for s in reply.body["symbols"]}
    real = next(
        s
        for s in _sample("nautilus/tests__http_responses__http_futures_market_exchange_info.json")["symbols"]
        if s["symbol"] == "BTCUSDT"
    )
    btc = ours["BTCUSDT"]
    assert set(real) - set(btc) == set(), "every field of the real symbol entry is present"
    for key, value in real.items():
        assert type(btc[key]) is type(value), key  # strings stay strings, numbers stay numbers
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert {f["filterType"] for f in real["filters"]} <= set(filters)
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10"
    assert filters["LOT_SIZE"] == {
        "filterType": "LOT_SIZE",
        "minQty": "0.001",
        "maxQty": "1000000",
        "stepSize": "0.001",
    }
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    assert (
        filters["MIN_NOTIONAL"]["notional"]
        != {f["filterType"]: f for f in ours["ETHUSDT"]["filters"]}["MIN_NOTIONAL"]["notional"]
    )
    assert (btc["contractType"], btc["quoteAsset"], btc["marginAsset"], btc["status"]) == (
        "PERPETUAL",
        "USDT",
        "USDT",
        "TRADING",
    )
    assert "STOP_MARKET" in btc["orderTypes"] and btc["pricePrecision"] == 2 and btc["quantityPrecision"] == 3
    assert set(_sample("nautilus/tests__http_responses__http_futures_market_exchange_info.json")) <= set(reply.body)


async def test_symbol_status_is_served(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_symbol_status("ETHUSDT", "SETTLING")
    symbols = {s["symbol"]: s for s in (await client.public("/fapi/v1/exchangeInfo")).body["symbols"]}
    assert symbols["ETHUSDT"]["status"] == "SETTLING" and symbols["BTCUSDT"]["status"] == "TRADING"


async def test_klines_rows_have_binance_types(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0 + 10 * MINUTE + 5_000)
    fake.load_klines("BTCUSDT", "1m", _rows(T0, 10))
    reply = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=3)
    real = _sample("ccxt-static/swap_fetchOHLCV__GET_fapi_v1_klines__BTCUSDT_1m_limit3.json")
    assert len(reply.body) == 3 and len(reply.body[0]) == len(real[0]) == 12
    for ours, theirs in zip(reply.body[0], real[0], strict=True):
        assert type(ours) is type(theirs)
    assert reply.body[0][0] == T0 + 8 * MINUTE and reply.body[0][6] == T0 + 9 * MINUTE - 1


async def test_klines_window_rules(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0 + 10 * MINUTE + 5_000)  # inside the 11th minute
    fake.load_klines("BTCUSDT", "1m", _rows(T0, 10))

    def opens(reply) -> list[int]:
        return [(row[0] - T0) // MINUTE for row in reply.body]

    latest = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=4)
    # the last row is the in-progress candle of the current minute, built from the last price
    assert opens(latest) == [7, 8, 9, 10]
    assert latest.body[-1][1:6] == ["50000.00", "50000.00", "50000.00", "50000.00", "0"]
    forward = await client.public(
        "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", startTime=T0 + 2 * MINUTE, limit=3
    )
    assert opens(forward) == [2, 3, 4]
    between = await client.public(
        "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", startTime=T0 + 30_000, endTime=T0 + 3 * MINUTE
    )
    assert opens(between) == [1, 2, 3]  # start rounds up to the next open, end includes the candle it falls in
    back = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", endTime=T0 + 5 * MINUTE, limit=2)
    assert opens(back) == [4, 5]
    future = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", startTime=T0 + 20 * MINUTE)
    assert future.body == []
    bad = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="7m")
    assert bad.body == {"code": -1120, "msg": "Invalid interval."}
    too_many = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1501)
    assert too_many.code == -1130
    reversed_window = await client.public(
        "/fapi/v1/klines", symbol="BTCUSDT", interval="1m", startTime=T0 + MINUTE, endTime=T0
    )
    assert reversed_window.code == -1023


async def test_in_progress_candle_follows_set_price(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0 + 10 * MINUTE + 5_000)
    fake.load_klines("BTCUSDT", "1m", _rows(T0, 10))
    await fake.set_price("BTCUSDT", "50100.0")
    await fake.set_price("BTCUSDT", "49900.0")
    await fake.set_price("BTCUSDT", "50050.0", qty="0.5")
    row = (await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=1)).body[0]
    assert row[0] == T0 + 10 * MINUTE
    assert row[1:6] == ["50100.00", "50100.00", "49900.00", "50050.00", "0.502"]


async def test_longer_intervals_are_built_from_1m(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0 + 12 * MINUTE + 1_000)
    fake.load_klines("BTCUSDT", "1m", _rows(T0, 12))
    reply = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="5m", startTime=T0, limit=2)
    first, second = reply.body
    assert first[0] == T0 and first[6] == T0 + 5 * MINUTE - 1
    assert first[1:6] == ["100.00", "106.00", "99.00", "105.00", "60"]  # o of 1st, max h, min l, c of 5th, sum v
    assert second[1] == "105.00" and second[4] == "110.00"


async def test_kline_weight_depends_on_limit(fake: FakeBinance, client: BinanceClient) -> None:
    weights = {}
    for limit in (50, 100, 500, 1000, 1500):
        fake.reset_weight()
        reply = await client.public("/fapi/v1/klines", symbol="BTCUSDT", interval="1m", limit=limit)
        weights[limit] = int(reply.headers["X-MBX-USED-WEIGHT-1M"])
    assert weights == {50: 1, 100: 2, 500: 5, 1000: 5, 1500: 10}


async def test_every_response_carries_the_used_weight(fake: FakeBinance, client: BinanceClient) -> None:
    fake.reset_weight()
    first = await client.public("/fapi/v1/ticker/24hr")  # 40 without a symbol
    second = await client.signed("GET", "/fapi/v3/positionRisk")  # 5
    third = await client.signed("POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET")  # refused, 0
    assert [int(r.headers["X-MBX-USED-WEIGHT-1M"]) for r in (first, second, third)] == [40, 45, 45]
    assert third.status == 400 and fake.used_weight() == 45
    assert third.headers["x-mbx-order-count-1m"] == "1" and "x-mbx-order-count-1m" not in first.headers


async def test_tickers_prices_and_mark(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_ticker_stats("BTCUSDT", quote_volume="1234567.89", open_price="40000")
    await fake.set_price("BTCUSDT", "50000.0", mark="50010.5")
    tickers = {t["symbol"]: t for t in (await client.public("/fapi/v1/ticker/24hr")).body}
    real = _sample("docs-examples-json/public_rest_api__24hr_Ticker_Price_Change_Statistics.json")
    assert set(real) <= set(tickers["BTCUSDT"])
    btc = tickers["BTCUSDT"]
    assert (btc["lastPrice"], btc["openPrice"], btc["quoteVolume"], btc["priceChangePercent"]) == (
        "50000.00",
        "40000.00",
        "1234567.89",
        "25.000",
    )
    one = (await client.public("/fapi/v1/ticker/24hr", symbol="ETHUSDT")).body
    assert one["symbol"] == "ETHUSDT" and isinstance(one["openTime"], int)
    v1 = (await client.public("/fapi/v1/ticker/price", symbol="BTCUSDT")).body
    v2 = (await client.public("/fapi/v2/ticker/price")).body
    assert v1["price"] == "50000.00" and {p["symbol"] for p in v2} == {"BTCUSDT", "ETHUSDT"}
    mark = (await client.public("/fapi/v1/premiumIndex", symbol="BTCUSDT")).body
    assert set(_sample("docs-examples-json/public_rest_api__Mark_Price.json")) <= set(mark)
    assert mark["markPrice"] == "50010.50000000"
    book = (await client.public("/fapi/v1/ticker/bookTicker", symbol="BTCUSDT")).body
    assert float(book["bidPrice"]) < float(book["askPrice"])


async def test_real_candles_load_and_aggregate(fake: FakeBinance, client: BinanceClient) -> None:
    with gzip.open(KLINES_DIR / "ENAUSDT-1m.csv.gz", "rt") as handle:
        rows = [row for row in csv.reader(handle) if row[0].isdigit()][:180]
    fake.add_symbol("ENAUSDT", price=rows[-1][4], tick_size="0.0001", step_size="1", min_notional="5")
    assert fake.load_klines("ENAUSDT", "1m", rows) == 180
    fake.set_time_ms(int(rows[-1][0]) + MINUTE + 1)
    served = (await client.public("/fapi/v1/klines", symbol="ENAUSDT", interval="1m", limit=180)).body
    assert [r[0] for r in served[:-1]] == [int(r[0]) for r in rows[1:]]  # + the in-progress minute at the end
    assert served[0][1:6] == rows[1][1:6]  # values come back exactly as loaded
    hourly = (await client.public("/fapi/v1/klines", symbol="ENAUSDT", interval="1h", startTime=rows[0][0])).body
    start = int(hourly[0][0])
    members = [r for r in rows if start <= int(r[0]) < start + 60 * MINUTE]
    assert start % (60 * MINUTE) == 0 and start >= int(rows[0][0])
    assert hourly[0][2] == max((r[2] for r in members), key=float)
    assert hourly[0][3] == min((r[3] for r in members), key=float)
    assert hourly[0][4] == members[-1][4] and hourly[0][1] == members[0][1]
