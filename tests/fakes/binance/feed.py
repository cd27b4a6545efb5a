"""Synthetic market for standalone runs: symbols, 1m history and a random-walk price feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.fakes.binance.server import FakeBinance

log = logging.getLogger(__name__)

# (symbol, price, tick, step, min notional, max leverage): the two majors as Binance lists them
_MAJORS = (
    ("BTCUSDT", "50000", "0.10", "0.001", "100", 125),
    ("ETHUSDT", "3000", "0.01", "0.001", "20", 100),
)


def _round_to(value: Decimal, step: Decimal) -> Decimal:
    return max(step, (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def synthetic_symbols(count: int, rng: random.Random) -> list[dict[str, Any]]:
    """``count`` perpetuals: BTCUSDT, ETHUSDT, then S003USDT... with varied prices and 5 USDT min notional."""
    symbols: list[dict[str, Any]] = []
    for symbol, price, tick, step, notional, leverage in _MAJORS[:count]:
        symbols.append(
            {
                "symbol": symbol,
                "price": price,
                "tick_size": tick,
                "step_size": step,
                "min_notional": notional,
                "max_leverage": leverage,
                "quote_volume": "10000000000",
            }
        )
    for i in range(len(symbols), count):
        magnitude = rng.choice((-3, -2, -1, 0, 1, 2))
        tick = Decimal(1).scaleb(magnitude - 3)
        price = _round_to(Decimal(str(round(rng.uniform(1, 9.99), 3))).scaleb(magnitude), tick)
        step = Decimal(1).scaleb(min(0, 3 - max(0, magnitude + 3)))
        symbols.append(
            {
                "symbol": f"S{i + 1:03d}USDT",
                "price": format(price, "f"),
                "tick_size": format(tick, "f"),
                "step_size": format(step, "f"),
                "min_notional": "5",
                "max_leverage": rng.choice((20, 25, 50, 75)),
                "quote_volume": str(rng.randint(5_000_000, 500_000_000)),
            }
        )
    return symbols


def synthetic_history(
    last: Decimal, tick: Decimal, now_ms: int, minutes: int, rng: random.Random
) -> list[tuple[int, str, str, str, str, str]]:
    """``minutes`` closed 1m candles ending before the current minute, walking back to ``last``."""
    start = (now_ms // 60_000 - minutes) * 60_000
    price = last
    closes = []
    for _ in range(minutes):
        closes.append(price)
        price = _round_to(price * Decimal(str(1 + rng.gauss(0, 0.002))), tick)
    closes.reverse()
    rows = []
    previous = closes[0]
    for i, close in enumerate(closes):
        high = max(previous, close) + tick * rng.randint(0, 3)
        low = max(tick, min(previous, close) - tick * rng.randint(0, 3))
        volume = Decimal(rng.randint(100, 10_000))
        rows.append(
            (start + i * 60_000, *(format(x.quantize(tick), "f") for x in (previous, high, low, close)), str(volume))
        )
        previous = close
    return rows


class RandomWalkFeed:
    """Moves every symbol's price by a small random step each ``period_ms``."""

    def __init__(self, fake: FakeBinance, *, period_ms: int, rng: random.Random, volatility: float = 0.0005) -> None:
        self.fake = fake
        self.period_s = period_ms / 1000
        self.rng = rng
        self.volatility = volatility
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            for symbol, spec in list(self.fake.exchange.specs.items()):
                price = self.fake.price(symbol)
                step = Decimal(str(1 + self.rng.gauss(0, self.volatility)))
                try:
                    await self.fake.set_price(symbol, _round_to(price * step, spec.tick_size))
                except Exception:  # a broken tick must not stop the feed of a manual run
                    log.exception("random-walk tick failed for %s", symbol)
            deadline += self.period_s
            # a fixed schedule, not sleep(period) after the work, so the feed does not drift
            await asyncio.sleep(max(0.0, deadline - loop.time()))
