"""Funding: the wallet, ACCOUNT_UPDATE (FUNDING_FEE), income rows, funding history, premiumIndex and fundingInfo."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.conftest import BINANCE_SAMPLES
from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import T0, BinanceClient, recv_until, user_stream

D = Decimal
HOUR = 3_600_000


def _sample(name: str):
    return json.loads((BINANCE_SAMPLES / name).read_text())


async def test_a_long_pays_positive_funding(fake: FakeBinance, client: BinanceClient) -> None:
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000.0")
    await fake.set_mark_price("BTCUSDT", "51000.0")
    wallet = fake.wallet_balance
    async with await user_stream(fake, client) as ws:
        paid = await fake.charge_funding("BTCUSDT", "0.0001")
        update, _ = await recv_until(ws, lambda e: e["e"] == "ACCOUNT_UPDATE")
    assert paid == D("-0.051") and fake.wallet_balance == wallet - D("0.051")  # 0.010 x 51000 x 0.0001
    account = update["a"]
    # cross position: only the balance, no position rows (the documented FUNDING FEE shape)
    assert (account["m"], account["P"]) == ("FUNDING_FEE", [])
    assert account["B"] == [{"a": "USDT", "wb": f"{fake.wallet_balance:.8f}", "cw": f"{fake.wallet_balance:.8f}",
                             "bc": "-0.05100000"}]  # fmt: skip
    income = (await client.signed("GET", "/fapi/v1/income", incomeType="FUNDING_FEE")).body
    real = _sample("docs-examples-json/private_rest_api__Get_Income_History_USER_DATA.json")[0]
    assert len(income) == 1 and set(income[0]) == set(real)
    row = income[0]
    assert (row["symbol"], row["incomeType"], row["income"], row["asset"], row["tradeId"]) == (
        "BTCUSDT", "FUNDING_FEE", "-0.05100000", "USDT", "",
    )  # fmt: skip
    history = (await client.public("/fapi/v1/fundingRate", symbol="BTCUSDT")).body
    assert set(history[0]) == set(_sample("docs-examples-json/public_rest_api__Get_Funding_Rate_History.json")[0])
    assert (history[0]["fundingRate"], history[0]["markPrice"]) == ("0.00010000", "51000.00000000")
    premium = (await client.public("/fapi/v1/premiumIndex", symbol="BTCUSDT")).body
    assert premium["lastFundingRate"] == "0.00010000"


async def test_a_short_receives_and_an_isolated_position_is_listed(fake: FakeBinance, client: BinanceClient) -> None:
    await client.signed("POST", "/fapi/v1/marginType", symbol="ETHUSDT", marginType="ISOLATED")
    await fake.open_position_by_hand("ETHUSDT", "-2.000", price="3000.00")
    async with await user_stream(fake, client) as ws:
        received = await fake.charge_funding("ETHUSDT", "0.0005")
        update, _ = await recv_until(ws, lambda e: e["e"] == "ACCOUNT_UPDATE")
    assert received == D("3")  # -(-2 x 3000) x 0.0005
    assert update["a"]["m"] == "FUNDING_FEE" and [p["s"] for p in update["a"]["P"]] == ["ETHUSDT"]
    assert update["a"]["P"][0]["mt"] == "isolated"


async def test_no_position_no_charge_but_history_is_written(fake: FakeBinance, client: BinanceClient) -> None:
    wallet = fake.wallet_balance
    assert await fake.charge_funding("BTCUSDT", "-0.0002") == 0
    assert fake.wallet_balance == wallet and [r.income_type for r in fake.income] == []
    assert [(r.symbol, r.rate) for r in fake.funding_history] == [("BTCUSDT", D("-0.0002"))]


async def test_automatic_funding_at_each_symbols_funding_times(fake: FakeBinance, client: BinanceClient) -> None:
    fake.set_time_ms(T0 - 1_000)  # T0 is a funding time for both 8-hour and 4-hour symbols
    fake.enforce_recv_window = False
    fake.set_funding_interval("ETHUSDT", 4)
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000.0")
    await fake.open_position_by_hand("ETHUSDT", "1.000", price="3000.00")
    fake.set_funding_rate("BTCUSDT", "0.0001")
    fake.set_funding_rate("ETHUSDT", "0.0002")
    fake.set_auto_funding()
    premium = {p["symbol"]: p for p in (await client.public("/fapi/v1/premiumIndex")).body}
    assert premium["BTCUSDT"]["nextFundingTime"] == T0 and premium["ETHUSDT"]["nextFundingTime"] == T0
    assert [r for r in fake.income if r.income_type == "FUNDING_FEE"] == []  # not yet (commissions are there)
    fake.set_time_ms(T0 + 4 * HOUR)  # BTC funded once (T0), ETH twice (T0, T0 + 4h)
    await client.public("/fapi/v1/time")
    funding = [(r.symbol, r.time, r.income) for r in fake.income if r.income_type == "FUNDING_FEE"]
    assert sorted(funding) == [
        ("BTCUSDT", T0, D("-0.05")),
        ("ETHUSDT", T0, D("-0.6")),
        ("ETHUSDT", T0 + 4 * HOUR, D("-0.6")),
    ]
    premium = {p["symbol"]: p for p in (await client.public("/fapi/v1/premiumIndex")).body}
    assert premium["BTCUSDT"]["nextFundingTime"] == T0 + 8 * HOUR
    assert premium["ETHUSDT"]["nextFundingTime"] == T0 + 8 * HOUR
    info = (await client.public("/fapi/v1/fundingInfo")).body
    real = _sample("docs-examples-json/public_rest_api__Get_Funding_Rate_Info.json")[0]
    assert [r["symbol"] for r in info] == ["ETHUSDT"] and set(info[0]) == set(real)
    assert info[0]["fundingIntervalHours"] == 4


async def test_funding_history_windows(fake: FakeBinance, client: BinanceClient) -> None:
    for n in range(5):
        fake.set_time_ms(T0 + n * 8 * HOUR)
        await fake.charge_funding("BTCUSDT", f"0.000{n + 1}")
    everything = (await client.public("/fapi/v1/fundingRate", symbol="BTCUSDT")).body
    assert [r["fundingTime"] for r in everything] == [T0 + n * 8 * HOUR for n in range(5)]
    first_two = (await client.public("/fapi/v1/fundingRate", symbol="BTCUSDT", startTime=T0, limit=2)).body
    assert [r["fundingRate"] for r in first_two] == ["0.00010000", "0.00020000"]
    bounded = (await client.public("/fapi/v1/fundingRate", startTime=T0 + 1, endTime=T0 + 16 * HOUR)).body
    assert [r["fundingTime"] for r in bounded] == [T0 + 8 * HOUR, T0 + 16 * HOUR]
    assert (await client.public("/fapi/v1/fundingRate", limit=1001)).code == -1130
