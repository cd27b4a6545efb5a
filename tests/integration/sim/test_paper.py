"""Paper mode: public data from a real port (here the offline simulator), fills and stops from a persisted broker."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from decimal import Decimal as D
from pathlib import Path

import pytest

from storage.migrations import apply_migrations
from trading.core.models import ceil_to, floor_to
from trading.exchange.base import ExchangePort, PriceEvent, RetriableError, Side
from trading.exchange.paper import PaperExchange, PaperMarketStream, build_paper_bundle
from trading.exchange.replay import MarketReplay
from trading.exchange.sim import ReplayClock, SimExchange, SimMarketStream
from trading.exchange.simbroker import SimBroker
from trading.settings import Settings

SEED = 7


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a database the storage migrations set up (they create the simulated exchange's tables)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    apply_migrations(conn, str(path))
    return conn


class FlakyPublic(SimExchange):
    """A public port whose price endpoint is down (a real SimExchange otherwise)."""

    down = False

    async def fetch_prices(self, symbols: Sequence[str]) -> dict[str, D]:
        if self.down:
            raise RetriableError("HTTP 503 from the public API")
        return await super().fetch_prices(symbols)


def live_world(start_ms: int | None = None) -> tuple[FlakyPublic, SimMarketStream]:
    """Stand-in for Binance's public side: a replay behind a port and a stream (no keys, no network)."""
    replay = MarketReplay.synthetic(SEED, start_ms=start_ms)
    exchange_side = SimBroker(None, markets=replay.markets())
    clock = ReplayClock(replay.cursor_ms, speed=None)
    return FlakyPublic(replay, exchange_side, clock), SimMarketStream(replay, exchange_side, clock, speed=None)


def paper_settings(tmp_path: Path) -> Settings:
    return Settings(_env_file=None, trading_mode="paper", db_path=tmp_path / "p.sqlite3", sim_balance=500)  # type: ignore[call-arg]


async def test_paper_fills_at_the_public_price_and_persists(tmp_path: Path) -> None:
    db = tmp_path / "p.sqlite3"
    conn = connect(db)
    public, live = live_world()
    bundle = build_paper_bundle(paper_settings(tmp_path), conn, public, live)
    port = bundle.port
    assert isinstance(port, PaperExchange) and isinstance(port, ExchangePort) and bundle.mode == "paper"
    assert (await port.fetch_balance()).wallet == D(500)
    markets = await port.load_markets()
    assert (await port.fetch_klines("WOBLUSDT", "1h", limit=5)) == (
        await public.fetch_klines("WOBLUSDT", "1h", limit=5)
    )
    assert await port.fetch_tickers_24h() == await public.fetch_tickers_24h()
    price = (await public.fetch_prices(["WOBLUSDT"]))["WOBLUSDT"]
    await port.set_leverage("WOBLUSDT", 10)
    order = await port.create_market_order("WOBLUSDT", Side.BUY, D("1"), client_order_id="pe-1", reduce_only=False)
    tick = markets["WOBLUSDT"].rules.tick_size
    assert order.avg_price == ceil_to(price * D("1.0005"), tick)  # the public price + slippage, up to the tick
    assert await port.fetch_order("WOBLUSDT", "pe-1") == order
    assert (await port.fetch_balance()).wallet == D(500) - order.fee
    await bundle.close()
    conn.close()

    conn = connect(db)
    again = SimBroker(conn, account="paper", markets=markets)
    assert again.wallet == D(500) - order.fee and again.positions["WOBLUSDT"].qty == D("1")
    assert SimBroker(conn, account="sim", markets=markets).positions == {}  # another account
    conn.close()


async def test_stream_wrapper_feeds_the_broker_so_paper_stops_fire(tmp_path: Path) -> None:
    """Simulated backstops work on a mark that trails the last trade: the engine sees the crossing price while
    the position is still open (its own stop acts first); the backstop fires on the next price if it did not."""
    conn = connect(tmp_path / "p.sqlite3")
    public, live = live_world()
    bundle = build_paper_bundle(paper_settings(tmp_path), conn, public, live)
    port, stream = bundle.port, bundle.market
    assert isinstance(port, PaperExchange) and isinstance(stream, PaperMarketStream)
    await port.load_markets()
    await stream.set_symbols(["JUXTAUSDT"], ["JUXTAUSDT"])
    price = (await public.fetch_prices(["JUXTAUSDT"]))["JUXTAUSDT"]
    await port.create_market_order("JUXTAUSDT", Side.BUY, D("1"), client_order_id="pe-1", reduce_only=False)
    trigger = floor_to(price * D("0.9995"), D("0.01"))
    await port.create_stop_market_close("JUXTAUSDT", trigger, client_algo_id="pb-1")
    crossed = False
    after = None
    n = 0
    async for event in stream.events():
        n += 1
        assert n < 20_000, "the price never reached the stop"
        if not isinstance(event, PriceEvent) or event.symbol != "JUXTAUSDT":
            continue
        if crossed:
            after = event
            break
        assert await port.fetch_positions()  # open until the engine has seen the crossing price
        crossed = D(event.price) <= trigger
    assert after is not None
    assert await port.fetch_positions() == []
    fill = await port.fetch_order("JUXTAUSDT", "pb-1")
    assert fill is not None and fill.update_time == after.event_time
    await bundle.close()
    conn.close()


async def test_no_fresh_price_no_order(tmp_path: Path) -> None:
    conn = connect(tmp_path / "p.sqlite3")
    public, live = live_world()
    bundle = build_paper_bundle(paper_settings(tmp_path), conn, public, live)
    port = bundle.port
    assert isinstance(port, PaperExchange)
    await port.load_markets()
    public.down = True
    with pytest.raises(RetriableError, match="not placed"):
        await port.create_market_order("KWIXUSDT", Side.BUY, D("1000"), client_order_id="pe-1", reduce_only=False)
    assert await port.fetch_order("KWIXUSDT", "pe-1") is None and await port.fetch_positions() == []
    # a price the stream delivered a moment ago is good enough while the REST endpoint is down
    port.note_price("KWIXUSDT", "0.010021", 1)
    order = await port.create_market_order("KWIXUSDT", Side.BUY, D("1000"), client_order_id="pe-2", reduce_only=False)
    assert order.avg_price == D("0.010027")  # 0.010021 x 1.0005 = 0.0100260105 -> up to the tick
    await bundle.close()
    conn.close()
