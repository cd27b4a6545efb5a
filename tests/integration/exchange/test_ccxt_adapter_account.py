"""The live adapter's account endpoints against the fake Binance: the account configuration and position mode,
trade history read in exact seven-day windows, and the account's liquidation (force) orders."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from itertools import pairwise

import pytest

from tests.fakes.binance import FakeBinance
from trading.exchange import ccxt_adapter
from trading.exchange.base import AutoCloseKind, PositionMode, RejectedError, Side
from trading.exchange.ccxt_adapter import WEEK_MS, CcxtBinanceAdapter, time_windows

KEY, SECRET = "test-key", "test-secret"
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC
DAY = 86_400_000
D = Decimal


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key=KEY, api_secret=SECRET, balance="1000")
    fb.add_symbol("BTCUSDT", price="50000", tick_size="0.10", step_size="0.001", min_notional="100", max_leverage=125)
    fb.add_symbol("ETHUSDT", price="3000", tick_size="0.01", step_size="0.001", min_notional="20", max_leverage=100)
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


@pytest.fixture
async def adapter(fake: FakeBinance) -> AsyncIterator[CcxtBinanceAdapter]:
    ad = CcxtBinanceAdapter(api_key=KEY, api_secret=SECRET, rest_url=fake.rest_url, timeout_s=3.0,
                            retry_base_s=0.01, retry_cap_s=0.05)  # fmt: skip
    try:
        yield ad
    finally:
        await ad.close()


def _requests(fake: FakeBinance, method: str, path: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path == path]


def test_time_windows_cover_the_span_exactly_in_weeks() -> None:
    assert time_windows(0, 10, 4) == [(0, 3), (4, 7), (8, 10)]
    assert time_windows(5, 5, 4) == [(5, 5)]
    assert time_windows(6, 5, 4) == []
    windows = time_windows(T0 - 20 * DAY, T0, WEEK_MS)
    assert windows[0][0] == T0 - 20 * DAY and windows[-1][1] == T0
    assert all(hi - lo < WEEK_MS for lo, hi in windows)  # Binance: "more than 168 hours" is refused
    assert all(b[0] == a[1] + 1 for a, b in pairwise(windows))  # no gap, no overlap
    with pytest.raises(ValueError):
        time_windows(0, 1, 0)


async def test_account_config_and_position_mode(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    config = await adapter.fetch_account_config()
    assert (config.position_mode, config.multi_assets, config.can_trade) == (PositionMode.ONE_WAY, False, True)
    assert _requests(fake, "GET", "/fapi/v1/accountConfig")[-1].signed_ok
    fake.set_position_mode(dual_side=True)
    fake.set_multi_assets_mode(True)
    config = await adapter.fetch_account_config()
    assert (config.position_mode, config.multi_assets) == (PositionMode.HEDGE, True)
    await adapter.set_position_mode(PositionMode.ONE_WAY)
    assert not fake.hedge_mode
    assert _requests(fake, "POST", "/fapi/v1/positionSide/dual")[-1].params["dualSidePosition"] == "false"
    await adapter.set_position_mode(PositionMode.ONE_WAY)  # already one-way: -4059 is not an error
    assert _requests(fake, "POST", "/fapi/v1/positionSide/dual")[-1].code == -4059
    await fake.open_hedge_position_by_hand("BTCUSDT", "LONG", "0.010")
    with pytest.raises(RejectedError) as refused:
        await adapter.set_position_mode(PositionMode.ONE_WAY)
    assert refused.value.code == -4068 and fake.hedge_mode


async def test_without_account_config_the_modes_are_read_from_their_own_endpoints(
    fake: FakeBinance, adapter: CcxtBinanceAdapter
) -> None:
    fake.unserve("GET", "/fapi/v1/accountConfig")  # a gateway or stand-in exchange that predates it
    fake.set_position_mode(dual_side=True)
    fake.set_multi_assets_mode(True)
    config = await adapter.fetch_account_config()
    assert (config.position_mode, config.multi_assets, config.can_trade) == (PositionMode.HEDGE, True, True)
    assert len(_requests(fake, "GET", "/fapi/v1/accountConfig")) == 1  # a 404 is not retried, nor asked again
    assert _requests(fake, "GET", "/fapi/v1/positionSide/dual")[-1].signed_ok
    # Those cost 30 weight each: a reading is reused for a while, but not past a change of mode by the service.
    fake.set_multi_assets_mode(False)
    assert (await adapter.fetch_account_config()).multi_assets is True
    assert len(_requests(fake, "GET", "/fapi/v1/multiAssetsMargin")) == 1
    await adapter.set_position_mode(PositionMode.ONE_WAY)
    config = await adapter.fetch_account_config()
    assert (config.position_mode, config.multi_assets) == (PositionMode.ONE_WAY, False)
    assert len(_requests(fake, "GET", "/fapi/v1/positionSide/dual")) == 2
    assert len(_requests(fake, "GET", "/fapi/v1/accountConfig")) == 1
    # An exchange that has no Multi-Assets mode at all: single-asset.
    fake.unserve("GET", "/fapi/v1/multiAssetsMargin")
    await adapter.set_position_mode(PositionMode.ONE_WAY)
    assert (await adapter.fetch_account_config()).multi_assets is False


async def test_a_refused_account_config_is_not_mistaken_for_a_missing_one(
    fake: FakeBinance, adapter: CcxtBinanceAdapter
) -> None:
    fake.faults.refuse(
        "GET",
        "/fapi/v1/accountConfig",
        -2015,
        status=401,
        times=1,
        msg="Invalid API-key, IP, or permissions for action.",
    )
    with pytest.raises(RejectedError):
        await adapter.fetch_account_config()
    assert _requests(fake, "GET", "/fapi/v1/positionSide/dual") == []
    assert (await adapter.fetch_account_config()).position_mode is PositionMode.ONE_WAY
    assert len(_requests(fake, "GET", "/fapi/v1/accountConfig")) == 2


async def test_trades_of_an_old_position_are_read_in_exact_weeks(
    fake: FakeBinance, adapter: CcxtBinanceAdapter
) -> None:
    fake.enforce_recv_window = False
    for days_ago, qty in ((20, "0.004"), (10, "0.003"), (3, "-0.002"), (0, "-0.005")):
        fake.set_time_ms(T0 - days_ago * DAY)
        await fake.open_position_by_hand("BTCUSDT", qty)
    trades = await adapter.fetch_trades("BTCUSDT", start_ms=T0 - 21 * DAY)
    assert [(t.side, t.qty) for t in trades] == [
        (Side.BUY, D("0.004")), (Side.BUY, D("0.003")), (Side.SELL, D("0.002")), (Side.SELL, D("0.005")),
    ]  # fmt: skip
    assert len({t.trade_id for t in trades}) == 4 and all(t.trade_id for t in trades)
    sent = [r for r in _requests(fake, "GET", "/fapi/v1/userTrades")]
    assert all(r.status == 200 for r in sent)  # the fake refuses a span over 168 hours with -1127
    windows = [(int(r.params["startTime"]), int(r.params["endTime"])) for r in sent]
    assert windows[0][0] == T0 - 21 * DAY and windows[-1][1] >= T0
    assert all(hi - lo == WEEK_MS - 1 for lo, hi in windows[:-1])
    assert all(b[0] == a[1] + 1 for a, b in pairwise(windows))
    # startTime alone (the request before windows) sees the first seven days only: one trade of four
    lone = await adapter._call(
        "fapiPrivate", "GET", "userTrades", {"symbol": "BTCUSDT", "startTime": T0 - 21 * DAY}, signed=True, retry=False
    )
    assert [row["qty"] for row in lone] == ["0.004"]
    # an end bound: the trades up to it
    early = await adapter.fetch_trades("BTCUSDT", start_ms=T0 - 21 * DAY, end_ms=T0 - 5 * DAY)
    assert [t.qty for t in early] == [D("0.004"), D("0.003")]


async def test_a_crowded_window_is_paged_by_trade_id(
    fake: FakeBinance, adapter: CcxtBinanceAdapter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ccxt_adapter, "TRADES_PAGE", 2)
    fake.enforce_recv_window = False
    fake.set_time_ms(T0 - 2 * DAY)
    for n in range(5):
        fake.advance_time_ms(60_000)
        await fake.open_position_by_hand("BTCUSDT", f"0.00{n + 1}")
    fake.set_time_ms(T0 + 8 * DAY)  # one more trade in the next window
    await fake.open_position_by_hand("BTCUSDT", "-0.015")
    trades = await adapter.fetch_trades("BTCUSDT", start_ms=T0 - 3 * DAY)
    assert [t.qty for t in trades] == [D("0.001"), D("0.002"), D("0.003"), D("0.004"), D("0.005"), D("0.015")]
    paged = [r.params for r in _requests(fake, "GET", "/fapi/v1/userTrades") if "fromId" in r.params]
    assert paged and all("startTime" not in p and "endTime" not in p for p in paged)  # -1128 otherwise


async def test_force_orders_of_a_symbol(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    start = fake.now_ms()
    await fake.open_position_by_hand("BTCUSDT", "0.010", price="50000.0")
    await fake.open_position_by_hand("ETHUSDT", "-1.000", price="3000.00")
    liquidation = await fake.liquidate("BTCUSDT", price="45800.0")
    await fake.liquidate("ETHUSDT", price="3100.00", adl=True)
    (order,) = await adapter.fetch_force_orders("BTCUSDT", start_ms=start - 20 * DAY)
    assert (order.kind, order.client_order_id, order.side) == (AutoCloseKind.LIQUIDATION,
                                                              liquidation.client_order_id, Side.SELL)  # fmt: skip
    assert (order.avg_price, order.filled_qty, order.order_id) == (D("45800"), D("0.010"), str(liquidation.order_id))
    (adl,) = await adapter.fetch_force_orders("ETHUSDT", start_ms=start)
    assert adl.kind is AutoCloseKind.ADL
    assert await adapter.fetch_force_orders("BTCUSDT", start_ms=fake.now_ms() + 1) == []
    sent = _requests(fake, "GET", "/fapi/v1/forceOrders")
    assert all(int(r.params["endTime"]) - int(r.params["startTime"]) < WEEK_MS for r in sent)
