"""The time-window rules of userTrades and income, on a frozen server clock."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.fakes.binance import FakeBinance
from tests.integration.fake_binance.conftest import T0, BinanceClient

D = Decimal
DAY = 86_400_000


@pytest.fixture
async def history(fake: FakeBinance) -> FakeBinance:
    """Fills at T0 - 10 days, T0 - 3 days and T0 (the server clock ends at T0)."""
    fake.enforce_recv_window = False
    for days_ago in (10, 3, 0):
        fake.set_time_ms(T0 - days_ago * DAY)
        await fake.open_position_by_hand("BTCUSDT", "0.002")
    return fake


def _times(rows: list[dict]) -> list[int]:
    return [r["time"] for r in rows]


async def test_user_trades_windows(history: FakeBinance, client: BinanceClient) -> None:
    trades = lambda **kw: client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT", **kw)  # noqa: E731
    assert _times((await trades()).body) == [T0 - 3 * DAY, T0]  # no times: the last 7 days
    # startTime only: startTime .. startTime + 7 days
    assert _times((await trades(startTime=T0 - 11 * DAY)).body) == [T0 - 10 * DAY]
    assert _times((await trades(startTime=T0 - 10 * DAY)).body) == [T0 - 10 * DAY, T0 - 3 * DAY]
    assert _times((await trades(endTime=T0 - 2 * DAY)).body) == [T0 - 3 * DAY]  # endTime only: the 7 days before
    assert _times((await trades(startTime=T0 - 7 * DAY, endTime=T0)).body) == [T0 - 3 * DAY, T0]
    too_wide = await trades(startTime=T0 - 10 * DAY, endTime=T0)
    assert (too_wide.status, too_wide.body) == (
        400, {"code": -1127, "msg": "More than 168 hours between startTime and endTime."},
    )  # fmt: skip
    assert (await trades(startTime=T0, endTime=T0 - DAY)).code == -1023
    first_id = history.trades[0].trade_id
    assert (await trades(fromId=first_id, startTime=T0 - DAY)).code == -1128
    assert _times((await trades(fromId=first_id)).body) == [T0 - 10 * DAY, T0 - 3 * DAY, T0]
    assert _times((await trades(fromId=first_id, limit=1)).body) == [T0 - 10 * DAY]
    assert _times((await trades(limit=1)).body) == [T0]  # no start: the most recent


async def test_income_windows(history: FakeBinance, client: BinanceClient) -> None:
    income = lambda **kw: client.signed("GET", "/fapi/v1/income", **kw)  # noqa: E731
    # every fill wrote a COMMISSION row (no PnL was realized)
    assert {r.income_type for r in history.income} == {"COMMISSION"}
    assert _times((await income()).body) == [T0 - 3 * DAY, T0]  # no times: the last 7 days
    assert _times((await income(startTime=T0 - 11 * DAY)).body) == [T0 - 10 * DAY, T0 - 3 * DAY, T0]  # to now
    assert _times((await income(endTime=T0 - DAY)).body) == [T0 - 10 * DAY, T0 - 3 * DAY]
    assert _times((await income(startTime=T0 - 11 * DAY, limit=2)).body) == [T0 - 10 * DAY, T0 - 3 * DAY]
    assert _times((await income(startTime=T0 - 11 * DAY, limit=2, page=2)).body) == [T0]
    assert (await income(incomeType="FUNDING_FEE")).body == []
    assert (await income(incomeType="NOPE")).code == -1130
    assert (await income(limit=1001)).code == -1130
    history.set_time_ms(T0 + 100 * DAY)  # three months on, the oldest rows are gone
    assert (await income(startTime=T0 - 11 * DAY)).body == []
    before = history.wallet_balance
    history.set_balance("1500")
    transfer = (await income(incomeType="TRANSFER")).body
    assert [(r["symbol"], D(r["income"])) for r in transfer] == [("", D("1500") - before)]  # a deposit


async def test_an_old_orders_trades_need_a_time_window(history: FakeBinance, client: BinanceClient) -> None:
    oldest = history.trades[0]
    by_order = await client.signed("GET", "/fapi/v1/userTrades", symbol="BTCUSDT", orderId=oldest.order_id)
    assert by_order.body == []  # ten days old: outside the default 7 days
    windowed = await client.signed(
        "GET", "/fapi/v1/userTrades", symbol="BTCUSDT", orderId=oldest.order_id, startTime=oldest.time
    )
    assert [t["id"] for t in windowed.body] == [oldest.trade_id]
