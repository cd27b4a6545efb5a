"""The live adapter under injected faults: unknown outcomes, lost replies, rate limits, clock skew, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.fakes.binance import FakeBinance
from tests.fakes.binance.catalog import BTCUSDT
from tests.polling import until
from trading.exchange.base import (
    AuthError,
    NotFoundError,
    OrderStatus,
    OrderStatusUnknown,
    RateLimitedError,
    RejectedError,
    RetriableError,
    Side,
)
from trading.exchange.ccxt_adapter import CcxtBinanceAdapter

KEY, SECRET = "test-key", "test-secret"
ORDER = ("POST", "/fapi/v1/order")


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key=KEY, api_secret=SECRET, balance="1000", taker_fee="0.0005")
    fb.add_symbol(**BTCUSDT)
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


@pytest.fixture
async def adapter(fake: FakeBinance) -> AsyncIterator[CcxtBinanceAdapter]:
    ad = CcxtBinanceAdapter(
        api_key=KEY, api_secret=SECRET, rest_url=fake.rest_url, timeout_s=3.0, retry_base_s=0.01, retry_cap_s=0.05
    )
    try:
        yield ad
    finally:
        await ad.close()


def _requests(fake: FakeBinance, method: str, path: str) -> list:
    return [r for r in fake.requests if r.method == method and r.path == path]


async def _buy(adapter: CcxtBinanceAdapter, cid: str, qty: str = "0.004", *, reduce_only: bool = False):
    side = Side.SELL if reduce_only else Side.BUY
    return await adapter.create_market_order(
        "BTCUSDT", side, Decimal(qty), client_order_id=cid, reduce_only=reduce_only
    )


# ------------------------------------------------------------------ unknown outcomes: never re-sent
async def test_503_1007_is_status_unknown_and_not_resent(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.faults.fail_next(*ORDER, status=503)  # refused before execution
    with pytest.raises(OrderStatusUnknown) as info:
        await _buy(adapter, "sdca-1-enter-1")
    assert info.value.code == -1007 and info.value.http_status == 503
    assert len(_requests(fake, *ORDER)) == 1
    assert await adapter.fetch_order("BTCUSDT", "sdca-1-enter-1") is None  # asking first: it never ran

    fake.faults.fail_next(*ORDER, status=503, execute=True)  # ... or it did run, and the reply says "unknown"
    with pytest.raises(OrderStatusUnknown):
        await _buy(adapter, "sdca-1-enter-2")
    found = await adapter.fetch_order("BTCUSDT", "sdca-1-enter-2")
    assert found is not None and found.status is OrderStatus.FILLED
    assert len(_requests(fake, *ORDER)) == 2
    assert fake.position("BTCUSDT").qty == Decimal("0.004")


async def test_lost_reply_then_found_filled_and_sent_once(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.faults.lose_response_next(*ORDER)
    with pytest.raises(OrderStatusUnknown):
        await _buy(adapter, "sdca-2-enter-1", "0.005")
    found = await adapter.fetch_order("BTCUSDT", "sdca-2-enter-1")
    assert found is not None and found.status is OrderStatus.FILLED and found.filled_qty == Decimal("0.005")
    assert len(_requests(fake, *ORDER)) == 1
    assert [o.client_order_id for o in fake.orders] == ["sdca-2-enter-1"]
    assert fake.position("BTCUSDT").qty == Decimal("0.005")


async def test_order_timeout_is_status_unknown(fake: FakeBinance) -> None:
    ad = CcxtBinanceAdapter(api_key=KEY, api_secret=SECRET, rest_url=fake.rest_url, timeout_s=0.3)
    try:
        await ad.sync_time()
        fake.faults.delay(*ORDER, seconds=1.0, after=True)  # executed, reply held past our timeout
        with pytest.raises(OrderStatusUnknown, match="timed out"):
            await _buy(ad, "sdca-3-enter-1")
        # The fake answers the held request once its delay is over (no one is listening by then).
        await until(lambda: _requests(fake, *ORDER) and _requests(fake, *ORDER)[0].status == 200, 5, "the reply")
        found = await ad.fetch_order("BTCUSDT", "sdca-3-enter-1")
        assert found is not None and found.status is OrderStatus.FILLED
        assert len(_requests(fake, *ORDER)) == 1
    finally:
        await ad.close()


# ------------------------------------------------------------------ refusals keep Binance's code
async def test_refusals_carry_the_exchange_code(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    cases = [
        ("0.001", False, -4164),  # 50 USDT < min notional 100
        ("5", False, -2019),  # 250,000 USDT at 20x needs more margin than 1,000
        ("0.002", True, -2022),  # reduce-only with no position
        ("0.0015", False, -1111),  # finer than the step (markets not loaded: the exchange refuses it)
    ]
    for qty, reduce_only, code in cases:
        with pytest.raises(RejectedError) as info:
            await _buy(adapter, f"sdca-4-x-{-code}", qty, reduce_only=reduce_only)
        assert info.value.code == code, (qty, info.value)
        assert info.value.exchange_msg  # Binance's own text kept
    assert len(_requests(fake, *ORDER)) == len(cases)  # each sent once, none retried
    assert fake.position("BTCUSDT").qty == 0


async def test_injected_refusal_bodies(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.faults.fail_next(*ORDER, status=400, body={"code": -2019, "msg": "Margin is insufficient."})
    with pytest.raises(RejectedError) as info:
        await _buy(adapter, "sdca-5-enter-1")
    assert info.value.code == -2019 and not isinstance(info.value, OrderStatusUnknown)


# ------------------------------------------------------------------ rate limits: a shared gate, exits pass
async def test_429_pauses_non_exits_but_not_exits(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await fake.open_position_by_hand("BTCUSDT", qty="0.004")
    await adapter.sync_time()
    fake.faults.rate_limit_next("GET", "/fapi/v3/account", retry_after=1)
    with pytest.raises(RateLimitedError) as info:
        await adapter.fetch_balance()
    assert info.value.retry_after == 1.0 and info.value.http_status == 429 and info.value.code == -1003
    assert 0.5 < adapter.rate_limited_for() <= 1.0
    limited_at = _requests(fake, "GET", "/fapi/v3/account")[0].time_ms

    query = asyncio.create_task(adapter.fetch_positions())  # non-exit: waits for the gate
    await asyncio.sleep(0.05)
    exit_order = await _buy(adapter, "sdca-6-stop-1", reduce_only=True)  # exit: goes straight through
    assert exit_order.status is OrderStatus.FILLED
    # So do the monitor's REST price fallback and asking about an exit by client id.
    assert await adapter.fetch_prices(["BTCUSDT"]) == {"BTCUSDT": Decimal("50000")}
    asked = await adapter.fetch_order("BTCUSDT", "sdca-6-stop-1", priority=True)
    assert asked is not None and asked.status is OrderStatus.FILLED
    assert not query.done()
    positions = await asyncio.wait_for(query, timeout=5)
    assert positions == []  # the exit closed it before the query was allowed out
    order_at = _requests(fake, *ORDER)[0].time_ms
    risk_at = _requests(fake, "GET", "/fapi/v3/positionRisk")[0].time_ms
    assert order_at - limited_at < 900  # the exit did not wait
    assert risk_at - limited_at >= 950  # the query waited out Retry-After
    assert adapter.rate_limited_for() == 0


async def test_418_ban_pauses_too(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.faults.rate_limit_next("GET", "/fapi/v1/ticker/24hr", retry_after=2, status=418)
    with pytest.raises(RateLimitedError) as info:
        await adapter.fetch_tickers_24h()
    assert info.value.http_status == 418 and info.value.retry_after == 2.0
    assert adapter.rate_limited_for() > 1.5
    # Cancelling a stop is an exit: it is sent during the ban (and answered: no such stop here).
    with pytest.raises(NotFoundError):
        await adapter.cancel_algo_order("BTCUSDT", "sdca-7-bs-1")
    assert len(_requests(fake, "DELETE", "/fapi/v1/algoOrder")) == 1
    assert adapter.rate_limited_for() > 1.0


# ------------------------------------------------------------------ retries of queries
async def test_queries_retry_on_5xx_with_backoff(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await fake.open_position_by_hand("BTCUSDT", qty="0.004")
    fake.faults.fail_next("GET", "/fapi/v3/positionRisk", status=503, times=2)
    positions = await adapter.fetch_positions()
    assert [p.qty for p in positions] == [Decimal("0.004")]
    assert [r.status for r in _requests(fake, "GET", "/fapi/v3/positionRisk")] == [503, 503, 200]


async def test_queries_give_up_after_four_tries(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.faults.fail_next(
        "GET", "/fapi/v1/openAlgoOrders", status=502, body={"code": -1001, "msg": "Internal"}, times=10
    )
    with pytest.raises(RetriableError) as info:
        await adapter.fetch_open_algo_orders()
    assert info.value.http_status == 502
    assert len(_requests(fake, "GET", "/fapi/v1/openAlgoOrders")) == 4
    fake.faults.clear()


async def test_a_lost_query_reply_is_retried(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    fake.faults.lose_response_next("GET", "/fapi/v1/openOrders")
    assert await adapter.fetch_open_orders() == []
    assert len(_requests(fake, "GET", "/fapi/v1/openOrders")) == 2


# ------------------------------------------------------------------ clock skew
async def test_1021_resyncs_and_retries_once(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await adapter.fetch_balance()  # synced
    fake.time_offset_ms = 90_000  # the exchange clock jumps 90 s ahead: our timestamps fall out of recvWindow
    order = await _buy(adapter, "sdca-8-enter-1")
    assert order.status is OrderStatus.FILLED
    posts = _requests(fake, *ORDER)
    assert [r.code for r in posts] == [-1021, None]  # refused for its timestamp, so safe to send again
    times = [r.path for r in fake.requests if r.path == "/fapi/v1/time"]
    assert len(times) == 2
    assert 88_000 < -adapter.time_offset_ms < 92_000
    assert len(fake.orders) == 1


async def test_1021_twice_gives_up(fake: FakeBinance, adapter: CcxtBinanceAdapter) -> None:
    await adapter.sync_time()
    fake.faults.fail_next(
        "GET",
        "/fapi/v3/account",
        status=400,
        body={"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."},
        times=2,
    )
    with pytest.raises(AuthError) as info:
        await adapter.fetch_balance()
    assert info.value.code == -1021
    assert len(_requests(fake, "GET", "/fapi/v3/account")) == 2


# ------------------------------------------------------------------ weight: slow down past 80% of 2,400
async def test_past_80_percent_weight_non_exits_wait_for_the_next_minute(
    fake: FakeBinance, adapter: CcxtBinanceAdapter
) -> None:
    now = fake.now_ms()
    fake.time_offset_ms = (now // 60_000 + 1) * 60_000 + 56_000 - now  # 4 s before a minute turns
    await adapter.sync_time()
    await fake.open_position_by_hand("BTCUSDT", qty="0.004")
    while adapter.used_weight() < 1920:  # 24h tickers of every symbol cost 40 each
        await adapter.fetch_tickers_24h()
    burst_minute = fake.now_ms() // 60_000
    query = asyncio.create_task(adapter.fetch_positions())
    await asyncio.sleep(0.05)
    assert not query.done()  # held back until the counter resets
    await _buy(adapter, "sdca-9-stop-1", reduce_only=True)  # an exit is not held back
    assert _requests(fake, *ORDER)[0].time_ms // 60_000 == burst_minute
    assert await asyncio.wait_for(query, timeout=10) == []
    assert _requests(fake, "GET", "/fapi/v3/positionRisk")[0].time_ms // 60_000 == burst_minute + 1
    assert not any(r.status == 429 for r in fake.requests)


# ------------------------------------------------------------------ the account's order-count limits
async def test_entries_stop_at_half_the_order_limit_and_exits_keep_the_rest(
    fake: FakeBinance, adapter: CcxtBinanceAdapter
) -> None:
    fake.set_order_limits(per_10s=8)  # read from exchangeInfo's rateLimits at load_markets
    await adapter.load_markets()
    assert adapter.order_budget().limit_10s == 8
    for i in range(4):  # half of 8
        await _buy(adapter, f"sdca-1-entry-{i}", "0.002")
    with pytest.raises(RateLimitedError) as refused:
        await _buy(adapter, "sdca-1-entry-9", "0.002")
    assert getattr(refused.value, "local", False)  # refused here, before the exchange had to
    assert len(_requests(fake, *ORDER)) == 4
    assert fake.order_counts().ten_seconds == 4  # what the headers said: the adapter agrees
    assert adapter.order_budget().used(10, time.monotonic()) == 4
    # Exits may use what entries left, up to 90% of the limit: never locked out by a storm of entries.
    for i in range(3):
        await _buy(adapter, f"sdca-1-sl-{i}", "0.002", reduce_only=True)
    with pytest.raises(RateLimitedError):
        await _buy(adapter, "sdca-1-sl-9", "0.002", reduce_only=True)
    assert len(_requests(fake, *ORDER)) == 7  # the exchange never answered -1015
