"""Exchange environments and market metadata end to end: demo-trading settings, delistings leaving the universe.

The real service in live mode against the loopback fake Binance (BINANCE_REST_URL / BINANCE_WS_URL point at it).
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import pytest

from tests.e2e.conftest import Harness, until
from trading.exchange.environments import BinanceEnv

D = Decimal
DAY_MS = 86_400_000


async def test_live_mode_with_demo_settings_trades_through_the_overridden_urls(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    fake = harness.fake
    await fake.open_position_by_hand("SOLUSDT", "1.00", price="100.00")
    with caplog.at_level(logging.INFO, logger="surgedca.service"):
        await harness.start(binance_demo=True)
    adapter = harness.engine.ctx.port
    assert adapter.environment == BinanceEnv.DEMO
    assert all(u.startswith(fake.rest_url) for u in adapter.api_urls.values())  # BINANCE_REST_URL still wins
    assert any("Binance USD-M demo" in r.getMessage() and fake.ws_url in r.getMessage() for r in caplog.records)
    # Start-up reconcile adopted the long, the backstop rests, both streams run on the fake's routed paths.
    await until(lambda: harness.db_position("SOLUSDT"), what="adoption")
    await until(lambda: len(harness.resting_stops("SOLUSDT")) == 1, what="backstop")
    await until(lambda: fake.ws_clients("private") and fake.ws_clients("market"), what="user and market streams")
    # An order through the whole path: -3% -> first DCA, filled, reported on the user stream.
    await fake.set_price("SOLUSDT", "97.00")
    rec = await until(
        lambda: (r := harness.db_position("SOLUSDT")) and r.state.stage.value == "first_dca" and r, what="first DCA"
    )
    assert rec.state.qty == harness.exchange_qty("SOLUSDT")
    await until(lambda: harness.assert_agree("SOLUSDT") is not None, what="backstop moved")


async def _next_minute_closes(harness: Harness, symbol: str) -> None:
    """A closed 1m kline of ``symbol`` (the engine's per-minute work runs on it)."""
    fake = harness.fake
    stream = f"{symbol.lower()}@kline_1m"
    await until(lambda: any(stream in c.streams for c in fake.ws_clients("market")), what="kline subscription")
    minute = (int(time.time() * 1000) // 60_000 - 1) * 60_000
    last = harness.engine.last_minute_ms
    if last is not None and minute <= last:
        minute = last + 60_000
    await fake.push_kline(symbol, minute, "100", "100", "100", "100", "10", closed=True)
    await until(lambda: harness.engine.last_minute_ms == minute, what="the minute handled")


async def test_an_announced_delisting_leaves_the_universe_at_the_next_markets_refresh(harness: Harness) -> None:
    fake = harness.fake
    await harness.start()
    scanner = harness.engine.scanner
    assert {"SOLUSDT", "DOGEUSDT", "BTCUSDT"} <= set(scanner.universe.symbols)

    # Binance announces DOGEUSDT's delisting: deliveryDate moves to 10 days from now (within the 14-day guard),
    # and BTCUSDT stops trading. They stay until the markets are read again (hourly).
    fake.set_delivery_date("DOGEUSDT", int(time.time() * 1000) + 10 * DAY_MS)
    fake.set_symbol_status("BTCUSDT", "SETTLING")
    infos_before = sum(1 for r in fake.requests if r.path == "/fapi/v1/exchangeInfo")
    await _next_minute_closes(harness, "SOLUSDT")
    assert "DOGEUSDT" in scanner.universe  # the refresh is not due yet: no exchangeInfo request
    assert sum(1 for r in fake.requests if r.path == "/fapi/v1/exchangeInfo") == infos_before

    # The hour is up but exchangeInfo fails (every retry): the known markets are kept and the refresh is tried
    # again five minutes later, not an hour later.
    scanner.universe.refreshed_ms = 0
    fake.faults.fail_next("GET", "/fapi/v1/exchangeInfo", times=20)
    await _next_minute_closes(harness, "SOLUSDT")
    now = harness.engine.ctx.clock.now_ms()
    await until(lambda: scanner.universe.refreshed_ms > 0, timeout=15, what="the failed refresh finishing")
    retry_in = scanner.universe.refreshed_ms + 3_600_000 - now
    assert 4 * 60_000 <= retry_in <= 5 * 60_000 + 5_000, retry_in
    assert "DOGEUSDT" in scanner.universe and harness.engine.ctx.markets["DOGEUSDT"].delivery_ms > now + 365 * DAY_MS

    # Markets answer again: both leave the universe; their klines are no longer watched.
    fake.faults.clear()
    scanner.universe.refreshed_ms = 0
    await _next_minute_closes(harness, "SOLUSDT")
    await until(
        lambda: "DOGEUSDT" not in scanner.universe and "BTCUSDT" not in scanner.universe,
        timeout=15,
        what="the delisted symbols leaving the universe",
    )
    assert scanner.excluded == {"DOGEUSDT": "delisting announced", "BTCUSDT": "status SETTLING"}
    assert "SOLUSDT" in scanner.universe
    assert harness.engine.ctx.markets["DOGEUSDT"].delivery_ms < now + 11 * DAY_MS
    await until(
        lambda: not any("dogeusdt@kline_1m" in c.streams for c in fake.ws_clients("market")),
        what="DOGEUSDT's klines unsubscribed",
    )
