"""End-to-end harness: the real service (live mode) against the loopback fake Binance.

Real HTTP and WebSocket on 127.0.0.1, a real SQLite file, the real ccxt
adapter, streams, engine and reconciler. Waits are bounded polls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from storage.positions import PositionRecord
from tests.fakes.binance import FakeBinance
from tests.polling import until
from trading.events import EngineEvent
from trading.service import Service
from trading.settings import Settings

D = Decimal
API_KEY, API_SECRET = "test-key", "test-secret"

# Fast housekeeping for tests; every trading number stays at its SPEC default.
TEST_STRATEGY = """
reconcile_interval_s = 5
fallback_poll_interval_s = 1
"""


class Recorder:
    """Collects the engine's events (the notifier the alerts would get)."""

    def __init__(self) -> None:
        self.events: list[EngineEvent] = []

    def kinds(self, symbol: str | None = None) -> list[str]:
        return [e.kind for e in self.events if symbol is None or e.symbol == symbol]


class Harness:
    def __init__(self, fake: FakeBinance, tmp: Path) -> None:
        self.fake = fake
        self.tmp = tmp
        self.service: Service | None = None
        self.recorder = Recorder()
        self.strategy = tmp / "strategy.toml"
        self.strategy.write_text(TEST_STRATEGY)

    def settings(self, **over: Any) -> Settings:
        values: dict[str, Any] = {
            "trading_mode": "live",
            "binance_api_key": API_KEY,
            "binance_api_secret": API_SECRET,
            "binance_rest_url": self.fake.rest_url,
            "binance_ws_url": self.fake.ws_url,
            "db_path": self.tmp / "surgedca.sqlite3",
            "strategy_file": self.strategy,
            "log_level": "INFO",
        }
        values.update(over)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def start(self, **over: Any) -> Service:
        self._adopt_unless_told()
        # Tap the engine's events (what Telegram or the console receives).
        service = Service(self.settings(**over), event_taps=(self.recorder.events.append,))
        self.service = service
        await service.start()
        return service

    def _adopt_unless_told(self) -> None:
        """Most tests open a position by hand for the service to manage: they adopt every unknown long (the
        default, "ask", would leave it alone until someone answers). A test of adoption sets the key itself."""
        text = self.strategy.read_text() if self.strategy.exists() else ""
        if "adopt_positions" not in text:
            self.strategy.write_text(text.rstrip("\n") + '\nadopt_positions = "all"\n')

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.shutdown("test finished")
            self.service = None

    # ---- views
    @property
    def engine(self) -> Any:
        assert self.service is not None and self.service.engine is not None
        return self.service.engine

    @property
    def store(self) -> Any:
        return self.engine.ctx.store

    def db_position(self, symbol: str) -> PositionRecord | None:
        return self.store.positions.get_active(symbol)

    def exchange_qty(self, symbol: str) -> Decimal:
        return self.fake.position(symbol).qty

    def resting_stops(self, symbol: str) -> list[Any]:
        return [a for a in self.fake.open_algo_orders(symbol)]

    async def agree(self, symbol: str, timeout: float = 10.0) -> PositionRecord | None:  # noqa: ASYNC109
        """``assert_agree`` once the exchange has caught up: a backstop is replaced new-before-old, so for a moment
        after the database moved on two stops may rest (bounded; the last disagreement is raised)."""
        agreed = await until(lambda: [self.assert_agree(symbol)], timeout=timeout, what=f"{symbol} in agreement")
        return agreed[0]  # type: ignore[no-any-return]

    def assert_agree(self, symbol: str) -> PositionRecord | None:
        """The exchange and the database agree: quantity, and exactly one backstop at the DB's price."""
        rec = self.db_position(symbol)
        qty = self.exchange_qty(symbol)
        if rec is None:
            assert qty == 0, f"exchange holds {qty} {symbol} the database does not know"
            assert self.resting_stops(symbol) == [], "a stop rests for a closed position"
            return None
        assert rec.status == "open"
        assert rec.state.qty == qty, f"database {rec.state.qty} vs exchange {qty}"
        stops = self.resting_stops(symbol)
        assert len(stops) == 1, f"expected exactly one backstop, found {len(stops)}"
        assert stops[0].client_algo_id == rec.backstop_client_id
        assert D(str(stops[0].trigger_price)) == rec.backstop_price
        return rec


@pytest.fixture
async def fake() -> AsyncIterator[FakeBinance]:
    fb = FakeBinance(api_key=API_KEY, api_secret=API_SECRET, balance="10000", taker_fee="0.0005")
    fb.add_symbol(
        "SOLUSDT",
        price="100.00",
        tick_size="0.01",
        step_size="0.01",
        min_notional="5",
        max_leverage=50,
        quote_volume="900000000",
    )
    fb.add_symbol(
        "BTCUSDT",
        price="50000.0",
        tick_size="0.1",
        step_size="0.001",
        min_notional="100",
        max_leverage=125,
        quote_volume="9000000000",
    )
    fb.add_symbol(
        "DOGEUSDT",
        price="0.10000",
        tick_size="0.00001",
        step_size="1",
        min_notional="5",
        max_leverage=50,
        quote_volume="500000000",
    )
    await fb.start()
    try:
        yield fb
    finally:
        await fb.stop()


@pytest.fixture
async def harness(fake: FakeBinance, tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(fake, tmp_path)
    try:
        yield h
    finally:
        await h.stop()


# ---- the Telegram side (tests/e2e/test_bot_*.py): the real service with its bot on a loopback fake Bot API
@pytest.fixture
async def telegram() -> AsyncIterator[Any]:
    from tests.fakes.telegram import FakeTelegram

    fake_tg = FakeTelegram()
    await fake_tg.start()
    try:
        yield fake_tg
    finally:
        await fake_tg.stop()


@pytest.fixture
async def tgbot(telegram: Any, harness: Harness) -> AsyncIterator[Any]:
    """``BotE2E``: ``await tgbot.start()`` runs the service with TELEGRAM_* pointing at the fake Bot API."""
    from tests.e2e.bot_harness import BotE2E

    try:
        yield BotE2E(harness, telegram)
    finally:
        await harness.stop()  # while the fake Telegram still answers: the bot and the alerts stop cleanly
