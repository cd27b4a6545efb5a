"""Fixtures: a loopback fake Telegram, the real service on the simulated exchange, and the real bot polling.

The bot is built as the service builds it (``create_dispatcher`` over the service API, the engine's clock for
its confirmations); the service is the product's ``ServiceApi`` over its ``Engine``, a ``SimBroker`` and a
temporary SQLite file (``sim_service.py``). Tests arrange state only through the product: trades on the
simulated exchange, entries through the executor, adoptions through the ledger.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher

from bot.app import create_bot, create_dispatcher, start_bot, stop_bot
from tests.fakes.telegram import FakeMessage, FakeTelegram
from tests.integration.bot.sim_service import MARKET, Listing, ServiceCalls, SimService
from trading.clock import ManualClock

CHAT = 408_258_968  # a private chat: chat id == user id (as in the teloxide sample)
USER = CHAT
GROUP = -1_001_234_567_890  # an allowed supergroup with two traders in it
TRADER_A = 996_202_131
TRADER_B = 996_202_132
STRANGER = 555_000_111  # a chat that is not allowed
T0_MS = 1_761_700_000_000  # 2025-10-29 01:06:40 UTC


@dataclass
class BotHarness:
    fake: FakeTelegram
    service: ServiceCalls  # what the bot holds: the real API, its calls counted
    sim: SimService  # the same service, for arranging the market and reading what it stored
    clock: ManualClock
    bot: Bot
    dp: Dispatcher

    async def say(
        self, text: str, *, chat: int = CHAT, user: int | None = None, replies: int = 1, within: float = 5.0
    ) -> FakeMessage:
        """Send a message as a user; wait for ``replies`` new bot messages; return the last one."""
        before = len(self.fake.bot_messages(chat))
        self.fake.push_message(chat, user if user is not None else (chat if chat > 0 else TRADER_A), text)
        await self.fake.wait_for(lambda: len(self.fake.bot_messages(chat)) >= before + replies, within)
        return self.fake.bot_messages(chat)[-1]

    async def press(
        self,
        message: FakeMessage,
        data: str,
        *,
        user: int | None = None,
        until: Callable[[], object] | None = None,
        within: float = 5.0,
    ) -> str:
        """Press a button of ``message``; wait until the press is answered (or ``until`` holds)."""
        uid = user if user is not None else (message.chat_id if message.chat_id > 0 else TRADER_A)
        query_id = self.fake.push_callback(message.chat_id, uid, message.message_id, data)
        await self.fake.wait_for(until or (lambda: self.fake.callback_answer(query_id)), within)
        return query_id

    async def settle(self, chat: int = CHAT) -> None:
        """Wait until every update pushed so far has been handled: a /help round trip goes through the same queue."""
        await self.say("/help", chat=chat)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    fake = FakeTelegram()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0_MS)


@pytest.fixture
def market() -> Iterable[Listing]:
    """The symbols of the simulated exchange (a test module may list others)."""
    return MARKET


@pytest.fixture
async def sim(tmp_path: Path, clock: ManualClock, market: Iterable[Listing]) -> AsyncIterator[SimService]:
    service = SimService(tmp_path / "surgedca.sqlite3", clock, listings=market)
    await service.start()
    try:
        yield service
    finally:
        await service.close()


@pytest.fixture
def bot_locale() -> str:
    return "en"


async def close_session(bot: Bot) -> None:
    """Close the bot's HTTP session. aiogram's ``AiohttpSession.close`` then sleeps 250 ms for TLS connections to
    wind down; the fake Bot API is plain HTTP on 127.0.0.1, so the tests close the aiohttp session alone."""
    raw = getattr(bot.session, "_session", None)
    if raw is not None and not raw.closed:
        await raw.close()


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeTelegram, sim: SimService, clock: ManualClock, *, locale: str = "en"
) -> AsyncIterator[BotHarness]:
    bot = create_bot(fake.token, fake.base_url)
    users = [TRADER_A, TRADER_B]
    service = ServiceCalls(sim.api)
    dp = create_dispatcher(
        service,  # type: ignore[arg-type]
        allowed_chat_ids=[CHAT, GROUP],
        allowed_user_ids=users,
        default_locale=locale,
        clock=clock,
        publish_alert=sim.ctx.notify,
    )
    task = asyncio.create_task(start_bot(bot, dp, polling_timeout=1))
    try:
        await fake.wait_for(lambda: fake.polls > 0 or task.done(), timeout=5)
        if task.done():
            task.result()  # start failed: raise its error here
        yield BotHarness(fake, service, sim, clock, bot, dp)
    finally:
        await stop_bot(bot, dp, close_session=False)
        await close_session(bot)
        try:
            await asyncio.wait_for(task, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()


@pytest.fixture
async def harness(
    telegram: FakeTelegram, sim: SimService, clock: ManualClock, bot_locale: str
) -> AsyncIterator[BotHarness]:
    async with running_bot(telegram, sim, clock, locale=bot_locale) as h:
        yield h
