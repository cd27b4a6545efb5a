"""BinanceMarketStream over a real WebSocket against the fake Binance on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal

from tests.fakes.binance import FakeBinance
from tests.integration.streams.conftest import Collector, eventually
from trading.exchange.base import KlineEvent, PriceEvent, StreamStatus
from trading.exchange.streams import BinanceMarketStream

MINUTE = 60_000
T0 = 1_767_225_600_000  # 2026-01-01 00:00 UTC


def market_streams(fake: FakeBinance) -> list[set[str]]:
    return [set(c.streams) for c in fake.ws_clients("market")]


async def ticker(fake: FakeBinance, symbol: str, period_s: float = 0.05) -> None:
    """Trades every ``period_s`` (a kline stream ticks several times a second on Binance)."""
    price = 100.0
    while True:
        price += 0.01
        await fake.set_price(symbol, f"{price:.2f}")
        await asyncio.sleep(period_s)


async def test_subscribe_and_unsubscribe_at_runtime(fake: FakeBinance) -> None:
    stream = BinanceMarketStream(fake.ws_url)
    events = Collector(stream.events())
    try:
        await stream.set_symbols(["BTCUSDT", "ETHUSDT"], [])
        await eventually(lambda: market_streams(fake) == [{"btcusdt@kline_1m", "ethusdt@kline_1m"}])
        first_client = fake.ws_clients("market")[0].client_id
        assert fake.ws_clients("market")[0].path.startswith("/market/stream?streams=")

        # ETH leaves the universe, SOL joins, BTC becomes held: prices for it, klines for all.
        await stream.set_symbols(["BTCUSDT", "SOLUSDT"], ["BTCUSDT"])
        want = {"btcusdt@kline_1m", "solusdt@kline_1m", "btcusdt@aggTrade", "btcusdt@markPrice@1s"}
        await eventually(lambda: market_streams(fake) == [want])
        assert fake.ws_clients("market")[0].client_id == first_client  # live change, same socket
        sent = [m.json() for m in fake.ws_client_messages if m.kind == "market"]
        assert {m["method"] for m in sent} == {"SUBSCRIBE", "UNSUBSCRIBE"}
        assert len({m["id"] for m in sent}) == len(sent)  # every request has its own id
        assert sorted(p for m in sent if m["method"] == "UNSUBSCRIBE" for p in m["params"]) == ["ethusdt@kline_1m"]

        await fake.set_price("BTCUSDT", "49000", mark="49010")
        await fake.push_kline("SOLUSDT", T0, "100", "101", "99", "100.5", "1234", closed=True)
        await fake.push_kline("ETHUSDT", T0, "1", "1", "1", "1", "1", closed=True)  # unsubscribed: never delivered
        await eventually(lambda: events.of(KlineEvent))
        await eventually(
            lambda: (
                {(p.kind, Decimal(p.price)) for p in events.of(PriceEvent)}
                >= {("last", Decimal(49000)), ("mark", Decimal(49010))}
            )
        )
        # A later message on the same socket: once it is in, the ETH kline pushed before it would be too.
        await fake.set_price("BTCUSDT", "49001")
        await eventually(lambda: any(Decimal(p.price) == Decimal(49001) for p in events.of(PriceEvent)))
        klines = events.of(KlineEvent)
        assert [(k.symbol, k.kline.open_time, k.kline.close, k.kline.volume) for k in klines] == [
            ("SOLUSDT", T0, 100.5, 1234.0)
        ]
        assert all(p.symbol == "BTCUSDT" for p in events.of(PriceEvent))
        ups = [s for s in events.of(StreamStatus) if s.up]
        assert len(ups) == 1 and ups[0].name == "market:0"
        assert stream.last_message_age() is not None and stream.last_message_age() < 5
    finally:
        await events.stop()
        await stream.close()


async def test_more_than_200_streams_open_a_second_connection(fake: FakeBinance) -> None:
    symbols = [f"S{i:03d}USDT" for i in range(230)]
    for s in symbols:
        fake.add_symbol(s, price="10")
    stream = BinanceMarketStream(fake.ws_url)
    events = Collector(stream.events())
    try:
        await stream.set_symbols(symbols, [])
        await eventually(lambda: len(fake.ws_clients("market")) == 2)
        subs = market_streams(fake)
        assert sorted(len(s) for s in subs) == [30, 200]
        assert set().union(*subs) == {f"{s.lower()}@kline_1m" for s in symbols}
        assert stream.connections() == 2
        # Every connection delivers.
        await fake.push_kline(symbols[0], T0, "10", "11", "9", "10", "5", closed=True)
        await fake.push_kline(symbols[-1], T0, "10", "11", "9", "10", "5", closed=True)
        await eventually(lambda: {k.symbol for k in events.of(KlineEvent)} == {symbols[0], symbols[-1]})
        # Shrinking below 200 closes the connection that has nothing left to carry.
        keep = sorted(set().union(*(s for s in subs if len(s) == 200)))
        await stream.set_symbols([k.split("@")[0].upper() for k in keep[:150]], [])
        await eventually(lambda: len(fake.ws_clients("market")) == 1)
        await eventually(lambda: len(market_streams(fake)[0]) == 150)
    finally:
        await events.stop()
        await stream.close()


async def test_dropped_connection_is_reestablished_and_resubscribed(fake: FakeBinance) -> None:
    stream = BinanceMarketStream(fake.ws_url)
    events = Collector(stream.events())
    try:
        await stream.set_symbols(["BTCUSDT", "ETHUSDT", "SOLUSDT"], ["BTCUSDT"])
        want = [
            {"btcusdt@kline_1m", "ethusdt@kline_1m", "solusdt@kline_1m", "btcusdt@aggTrade", "btcusdt@markPrice@1s"}
        ]
        await eventually(lambda: market_streams(fake) == want)
        before = fake.ws_clients("market")[0].client_id
        dropped_at = time.monotonic()
        assert await fake.drop_ws_connections("market") == 1
        await eventually(lambda: fake.ws_clients("market") and fake.ws_clients("market")[0].client_id != before)
        back_after = time.monotonic() - dropped_at
        assert back_after < 2.0  # first retry after 0.5-1.5 s (1 s with jitter)
        await eventually(lambda: market_streams(fake) == want)
        want_statuses = [("market:0", True), ("market:0", False), ("market:0", True)]
        await eventually(lambda: [(s.name, s.up) for s in events.of(StreamStatus)] == want_statuses)
        await fake.push_kline("ETHUSDT", T0, "1", "2", "0.5", "1.5", "10", closed=True)
        await eventually(lambda: events.of(KlineEvent))
    finally:
        await events.stop()
        await stream.close()


async def test_silence_longer_than_the_threshold_forces_a_reconnect(fake: FakeBinance) -> None:
    stream = BinanceMarketStream(fake.ws_url, silence_timeout_s=0.5)
    events = Collector(stream.events())
    feed = asyncio.get_running_loop().create_task(ticker(fake, "ETHUSDT"))
    try:
        await stream.set_symbols(["ETHUSDT"], [])
        await eventually(lambda: fake.ws_clients("market"))
        await asyncio.sleep(1.0)  # ticking normally: no reconnect
        first = fake.ws_clients("market")[0].client_id
        assert [s.up for s in events.of(StreamStatus)] == [True]
        fake.faults.silence_market(1.5)
        await eventually(lambda: any(not s.up for s in events.of(StreamStatus)), within=3.0)
        down = next(s for s in events.of(StreamStatus) if not s.up)
        assert "silent" in down.detail
        # Once data flows again the stream is up on a new socket.
        await eventually(lambda: events.of(StreamStatus)[-1].up and len(events.of(StreamStatus)) >= 3, within=8.0)
        assert fake.ws_clients("market")[0].client_id != first
        assert stream.last_message_age() is not None and stream.last_message_age() < 1.0
    finally:
        feed.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feed
        await events.stop()
        await stream.close()


async def test_slow_consumer_does_not_stall_the_reader(fake: FakeBinance) -> None:
    fake.set_time_ms(T0 + 1_000)  # frozen clock: set_price never rolls a candle over by itself
    stream = BinanceMarketStream(fake.ws_url)
    events = stream.events()  # nobody reads it while the data arrive
    try:
        await stream.set_symbols(["BTCUSDT", "ETHUSDT"], ["BTCUSDT"])
        first = await asyncio.wait_for(events.__anext__(), 5)
        assert isinstance(first, StreamStatus) and first.up
        await eventually(lambda: len(market_streams(fake)[0]) == 4 if fake.ws_clients("market") else False)
        for i in range(300):
            await fake.push_kline("ETHUSDT", T0 - (300 - i) * MINUTE, "1", "2", "0.5", "1.5", str(i + 1), closed=True)
            await fake.set_price("BTCUSDT", f"{50000 + i}.0")
        # The reader took everything in (the fake's queues are flushed) without anyone consuming.
        await eventually(lambda: stream.messages >= 300 * 4)
        assert stream.last_message_age() is not None and stream.last_message_age() < 1.0
        got: list[object] = []
        while True:
            try:
                got.append(await asyncio.wait_for(events.__anext__(), 0.3))
            except TimeoutError:
                break
        klines = [e for e in got if isinstance(e, KlineEvent)]
        prices = [e for e in got if isinstance(e, PriceEvent)]
        assert [k.kline.volume for k in klines] == [float(i + 1) for i in range(300)]  # all, in order
        last = [p for p in prices if p.kind == "last"]
        marks = [p for p in prices if p.kind == "mark"]
        assert Decimal(last[-1].price) == Decimal(marks[-1].price) == Decimal("50299")  # the latest survives
        assert len(prices) <= 4  # 900 price messages coalesced to the newest per (symbol, kind)
    finally:
        await stream.close()


async def test_rotation_opens_the_new_socket_before_closing_the_old_one(fake: FakeBinance) -> None:
    fake.set_time_ms(T0 + 1_000)
    stream = BinanceMarketStream(fake.ws_url, rotate_after_s=0.6)
    events = Collector(stream.events())
    pushed: list[int] = []

    async def pusher() -> None:
        i = 0
        while True:
            t = T0 + i * MINUTE
            await fake.push_kline("ETHUSDT", t, "1", "2", "0.5", "1.5", "1", closed=True)
            pushed.append(t)
            i += 1
            await asyncio.sleep(0.01)

    try:
        await stream.set_symbols(["ETHUSDT"], [])
        await eventually(lambda: fake.ws_clients("market"))
        first = fake.ws_clients("market")[0].client_id
        task = asyncio.get_running_loop().create_task(pusher())
        await eventually(
            lambda: fake.ws_clients("market") and fake.ws_clients("market")[0].client_id > first + 1,
            within=6.0,
            what="two rotations",
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await fake.flush()
        # nothing lost across rotations (duplicates allowed)
        await eventually(lambda: set(pushed) <= {k.kline.open_time for k in events.of(KlineEvent)})
        assert [s.up for s in events.of(StreamStatus)] == [True]  # a rotation is not an outage
    finally:
        await events.stop()
        await stream.close()


async def test_rapid_changes_stay_under_the_message_limit(fake: FakeBinance) -> None:
    names = [f"R{i:03d}USDT" for i in range(120)]
    for s in names:
        fake.add_symbol(s, price="10")
    stream = BinanceMarketStream(fake.ws_url, subscribe_batch=10)
    try:
        await stream.set_symbols(names[:5], [])
        await eventually(lambda: fake.ws_clients("market"))
        for k in range(10):  # many changes in a burst: batched and throttled, never > 10 messages/s
            await stream.set_symbols(names[: 20 + 10 * k], names[:2])
        want = {f"{s.lower()}@kline_1m" for s in names[:110]} | {
            f"{s.lower()}@{x}" for s in names[:2] for x in ("aggTrade", "markPrice@1s")
        }
        await eventually(lambda: market_streams(fake) == [want], within=20.0)
        times = sorted(m.time_ms for m in fake.ws_client_messages if m.kind == "market")
        assert len(times) >= 10
        assert all(sum(1 for u in times if t <= u < t + 1000) < 10 for t in times)
        assert stream._conns[0].reconnects == 0  # the fake closes sockets that send too fast
    finally:
        await stream.close()
