"""The sim mode end to end: bundle, paced stream, broker-first prices, clock, restart from the database."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal as D
from pathlib import Path

import pytest

from storage.migrations import apply_migrations
from tests.conftest import KLINES_DIR
from trading.core.models import floor_to
from trading.exchange.base import (
    AlgoUpdate,
    ExchangePort,
    KlineEvent,
    MarketEvent,
    OrderUpdate,
    PriceEvent,
    RejectedError,
    Side,
    StreamStatus,
)
from trading.exchange.sim import ReplayClock, SimExchange, SimMarketStream, SimStateMismatch, build_sim_bundle
from trading.exchange.synthetic import SyntheticMarket
from trading.settings import Settings

FAST = 1e9  # simulated seconds per wall second: no real waiting, same code path


def settings(tmp_path: Path, **kw: object) -> Settings:
    values: dict[str, object] = {"db_path": tmp_path / "sim.sqlite3", "sim_speed": FAST, "sim_seed": 7}
    values.update(kw)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def connect(path: Path) -> sqlite3.Connection:
    """A connection to a database the storage migrations set up (they create the simulated exchange's tables)."""
    conn = sqlite3.connect(path, isolation_level=None)
    apply_migrations(conn, str(path))
    conn.execute("PRAGMA journal_mode=WAL")
    return conn


async def take(stream: SimMarketStream, minutes: int) -> list[MarketEvent]:
    """Consume ``minutes`` whole minutes of events (a minute ends with its klines)."""
    out: list[MarketEvent] = []
    klines_per_minute = len(stream.replay.symbols) if stream._kline_symbols is None else len(stream._kline_symbols)
    seen = 0
    async for event in stream.events():
        out.append(event)
        if isinstance(event, KlineEvent):
            seen += 1
            if seen == minutes * klines_per_minute:
                break
    return out


async def test_bundle_is_a_port_with_streams_and_the_replay_clock(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sim.sqlite3")
    bundle = build_sim_bundle(settings(tmp_path), conn)
    port = bundle.port
    assert bundle.mode == "sim" and isinstance(port, ExchangePort) and isinstance(port, SimExchange)
    assert isinstance(bundle.clock, ReplayClock)
    start = SyntheticMarket(7).replay_start_ms
    assert bundle.clock.now_ms() == await port.server_time() == start
    markets = await port.load_markets()
    assert len(markets) == 20 and all(m.trading for m in markets.values())
    tickers = await port.fetch_tickers_24h()
    assert len(tickers) == 20 and all(t.quote_volume > 0 for t in tickers)
    klines = await port.fetch_klines("ZORBUSDT", "15m", limit=700)
    assert len(klines) == 672 and klines[-1].open_time < start  # backfill works at once
    balance = await port.fetch_balance()
    assert balance.wallet == D(1000) and await port.fetch_positions() == [] and port.used_weight() == 0
    with pytest.raises(RejectedError):
        await port.fetch_klines("NOPEUSDT", "1m")
    await bundle.close()
    conn.close()


async def test_stream_order_clock_and_symbol_filter(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sim.sqlite3")
    bundle = build_sim_bundle(settings(tmp_path), conn)
    stream = bundle.market
    assert isinstance(stream, SimMarketStream)
    clock = bundle.clock
    assert isinstance(clock, ReplayClock)
    await stream.set_symbols(["ZORBUSDT", "KWIXUSDT", "PLONKUSDT"], ["KWIXUSDT"])
    times: list[int] = []
    clock_times: list[int] = []
    events = []
    async for event in stream.events():
        events.append(event)
        times.append(event.event_time)
        now = clock.now_ms()
        assert now >= event.event_time  # the clock shows the event's time (or a little later)...
        clock_times.append(now)
        if len(events) >= 10 * (3 + 4):  # ten minutes: 3 klines + 4 prices of the one price symbol
            break
    assert times == sorted(times) and clock_times == sorted(clock_times)
    assert all(a <= b for a, b in zip(clock_times, times[1:], strict=False))  # ...never past the next one
    assert {e.symbol for e in events if isinstance(e, PriceEvent)} == {"KWIXUSDT"}
    assert {e.symbol for e in events if isinstance(e, KlineEvent)} == {"ZORBUSDT", "KWIXUSDT", "PLONKUSDT"}
    per_symbol = [e for e in events if e.symbol == "KWIXUSDT"]
    kinds = [type(e).__name__ for e in per_symbol[:5]]
    assert kinds == ["PriceEvent"] * 4 + ["KlineEvent"]
    assert stream.last_message_age() is not None
    # the broker saw every symbol's prices, not only the ones the engine asked for
    assert bundle.port.broker.last_price("HALOXUSDT") is not None  # type: ignore[attr-defined]
    await bundle.close()
    conn.close()


def _crossing_stop(seed: int, minutes: int) -> tuple[str, D, D]:
    """A symbol and a stop just above its lowest low in the first ``minutes`` after the warm-up (so it fires)."""
    market = SyntheticMarket(seed)
    day = market.day(market.warmup_days)
    for i, s in enumerate(market.symbols):
        first = D(f"{day.open[i, 0]:.{s.decimals}f}")
        low = D(f"{day.low[i, :minutes].min():.{s.decimals}f}")
        trigger = floor_to(low * D("1.0002"), s.tick)
        if low < trigger < first * D("0.999"):
            return s.symbol, trigger, first
    raise AssertionError("no symbol dips in that window")


async def test_the_engine_sees_a_crossing_price_before_the_exchange_stop_fires(tmp_path: Path) -> None:
    """The backstop works on a mark price that trails the last trade by one price: the engine, reacting to the
    last price as on Binance, gets the first chance at its own stop; the backstop fires on the next price."""
    conn = connect(tmp_path / "sim.sqlite3")
    bundle = build_sim_bundle(settings(tmp_path), conn)
    port, stream, user = bundle.port, bundle.market, bundle.user
    assert isinstance(port, SimExchange) and isinstance(stream, SimMarketStream)
    symbol, trigger, first = _crossing_stop(7, 120)
    await port.load_markets()
    port.broker.on_price(symbol, str(first), port.replay.cursor_ms)  # the price at the warm-up's end
    await port.set_leverage(symbol, 10)
    rules = port.broker.markets[symbol].rules
    qty = rules.round_qty(D(150) / first)
    order = await port.create_market_order(symbol, Side.BUY, qty, client_order_id="sdca-1-enter-1", reduce_only=False)
    await port.create_stop_market_close(symbol, trigger, client_algo_id="sdca-1-backstop-1")
    crossing = after = None
    async for event in stream.events():
        if not (isinstance(event, PriceEvent) and event.symbol == symbol):
            continue
        if crossing is None and D(event.price) <= trigger:
            crossing = event
            assert await port.fetch_positions() != []  # still open: the engine acts first
            continue
        if crossing is not None:
            after = event
            break
    assert crossing is not None and after is not None
    assert await port.fetch_positions() == [] and await port.fetch_open_algo_orders() == []
    fill = await port.fetch_order(symbol, "sdca-1-backstop-1")
    assert fill is not None and fill.filled_qty == qty and fill.update_time == after.event_time
    # the user stream already holds the whole story, as Binance would have sent it
    got = []
    async for ev in user.events():
        got.append(ev)
        if isinstance(ev, AlgoUpdate) and ev.status == "FINISHED":
            break
    fills = [e for e in got if isinstance(e, OrderUpdate) and e.execution_type == "TRADE"]
    assert [f.client_order_id for f in fills] == [order.client_order_id, "sdca-1-backstop-1"]
    assert [e.status for e in got if isinstance(e, AlgoUpdate)] == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    await bundle.close()
    conn.close()


async def test_restart_continues_the_replay_with_the_same_account(tmp_path: Path) -> None:
    db = tmp_path / "sim.sqlite3"
    conn = connect(db)
    bundle = build_sim_bundle(settings(tmp_path), conn)
    port, stream = bundle.port, bundle.market
    assert isinstance(port, SimExchange) and isinstance(stream, SimMarketStream)
    await port.load_markets()
    await take(stream, 30)
    await port.set_leverage("JUXTAUSDT", 10)
    price = port.broker.last_price("JUXTAUSDT")
    assert price is not None
    await port.create_market_order("JUXTAUSDT", Side.BUY, D("1"), client_order_id="e1", reduce_only=False)
    await port.create_stop_market_close("JUXTAUSDT", floor_to(price * D("0.5"), D("0.01")), client_algo_id="b1")
    await take(stream, 5)
    cursor = port.replay.cursor_ms
    before = (await port.fetch_balance(), await port.fetch_positions(), await port.fetch_open_algo_orders())
    await bundle.close()
    conn.close()

    conn = connect(db)
    again = build_sim_bundle(settings(tmp_path), conn)
    port2, stream2 = again.port, again.market
    assert isinstance(port2, SimExchange) and isinstance(stream2, SimMarketStream)
    assert port2.replay.cursor_ms == cursor and again.clock.now_ms() == cursor  # type: ignore[attr-defined]
    after = (await port2.fetch_balance(), await port2.fetch_positions(), await port2.fetch_open_algo_orders())
    assert after[0].wallet == before[0].wallet
    assert [(p.symbol, p.qty, p.entry_price) for p in after[1]] == [(p.symbol, p.qty, p.entry_price) for p in before[1]]
    assert after[2] == before[2]
    assert (await port2.fetch_order("JUXTAUSDT", "e1")) is not None
    first = (await take(stream2, 1))[0]
    assert first.event_time == cursor  # the next minute, not the start again
    hist = await port2.fetch_klines("JUXTAUSDT", "1m", limit=40)
    assert hist[-1].open_time == cursor  # the history before the restart is there too
    await again.close()
    conn.close()


async def test_other_market_data_than_the_saved_account_is_refused(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sim.sqlite3")
    await build_sim_bundle(settings(tmp_path), conn).close()
    with pytest.raises(SimStateMismatch, match="SIM_SEED"):
        build_sim_bundle(settings(tmp_path, sim_seed=8), conn)
    await build_sim_bundle(settings(tmp_path, sim_symbols=5), conn).close()  # fewer symbols: same market
    conn.close()


async def test_candle_files_mode(tmp_path: Path) -> None:
    # Three files of one period (tests/data also holds another period): SIM_SYMBOLS=2 takes the first two by name.
    data = tmp_path / "klines"
    data.mkdir()
    for symbol in ("SUIUSDT", "DOGEUSDT", "1000PEPEUSDT"):
        (data / f"{symbol}-1m.csv.gz").symlink_to(KLINES_DIR / f"{symbol}-1m.csv.gz")
    conn = connect(tmp_path / "sim.sqlite3")
    bundle = build_sim_bundle(settings(tmp_path, sim_data_dir=data, sim_symbols=2), conn)
    markets = await bundle.port.load_markets()
    assert sorted(markets) == ["1000PEPEUSDT", "DOGEUSDT"]
    events = await take(bundle.market, 3)  # type: ignore[arg-type]
    assert len(events) == 3 * 2 * 5
    await bundle.close()
    conn.close()


async def test_end_of_data_reports_a_stream_status(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sim.sqlite3")
    bundle = build_sim_bundle(settings(tmp_path, sim_data_dir=KLINES_DIR, sim_symbols=1), conn)
    port, stream = bundle.port, bundle.market
    assert isinstance(port, SimExchange) and isinstance(stream, SimMarketStream)
    last = int(port.replay.history("1000PEPEUSDT").open_time[-1])
    port.replay.seek(10**15)  # everything played
    assert port.replay.klines("1000PEPEUSDT", "1m", limit=1)[0].open_time >= last
    events = stream.events()
    status = await anext(events)
    assert isinstance(status, StreamStatus) and not status.up and stream.finished
    closer = asyncio.create_task(stream.close())
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(events), 5)
    await closer
    await bundle.close()
    conn.close()


async def test_replay_clock_follows_events_and_scales_sleep() -> None:
    stepped = ReplayClock(1_000, speed=None)
    assert stepped.now_ms() == 1_000
    stepped.set(5_000)
    await stepped.sleep(3600)  # step-driven: only yields
    assert stepped.now_ms() == 5_000 and stepped.monotonic() == 5.0
    paced = ReplayClock(0, speed=1e6)
    paced.anchor(10_000, 20_000)
    await asyncio.sleep(0.01)
    assert paced.now_ms() == 20_000  # runs on at speed, capped at the next undelivered event
    paced.anchor(15_000, 30_000)  # an earlier anchor never turns the clock back
    assert paced.now_ms() >= 20_000
    with pytest.raises(ValueError):
        ReplayClock(0, speed=0)


async def test_a_running_user_consumer_gets_the_backstop_fill_before_the_next_price(tmp_path: Path) -> None:
    conn = connect(tmp_path / "sim.sqlite3")
    bundle = build_sim_bundle(settings(tmp_path), conn)
    port, stream, user = bundle.port, bundle.market, bundle.user
    assert isinstance(port, SimExchange) and isinstance(stream, SimMarketStream)
    symbol, trigger, first = _crossing_stop(7, 120)
    await port.load_markets()
    port.broker.on_price(symbol, str(first), port.replay.cursor_ms)
    qty = port.broker.markets[symbol].rules.round_qty(D(150) / first)
    await port.create_market_order(symbol, Side.BUY, qty, client_order_id="e", reduce_only=False)
    await port.create_stop_market_close(symbol, trigger, client_algo_id="b")
    seen: list[str] = []

    async def consume_user() -> None:
        async for ev in user.events():
            if isinstance(ev, OrderUpdate) and ev.execution_type == "TRADE" and ev.client_order_id == "b":
                seen.append("fill")

    task = asyncio.create_task(consume_user())
    async for event in stream.events():
        if isinstance(event, PriceEvent) and event.symbol == symbol:
            if "crossing" in seen:
                seen.append("next price")
                break
            if D(event.price) <= trigger:
                seen.append("crossing")
    # the engine saw the crossing price first; the backstop's fill reached the user stream before the next price
    assert seen == ["crossing", "fill", "next price"]
    await bundle.close()
    await asyncio.wait_for(task, 5)
    conn.close()
