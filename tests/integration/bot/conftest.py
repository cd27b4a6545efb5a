"""Fixtures: a loopback fake Telegram, the fake service, and the real bot polling it.

Swapping the ``service`` fixture for the real service runs the same tests
against it (the tests use ``FakeService`` helpers only to arrange state and
to count calls).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiogram import Bot, Dispatcher

from bot.app import create_bot, create_dispatcher, start_bot, stop_bot
from tests.fakes.telegram import FakeMessage, FakeTelegram
from tests.integration.bot.fake_service import FakeService
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
    service: FakeService
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
def service(tmp_path: Path, clock: ManualClock) -> FakeService:
    return FakeService(clock=clock, state_path=tmp_path / "service-state.json")


@pytest.fixture
def bot_locale() -> str:
    return "en"


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeTelegram, service: FakeService, clock: ManualClock, *, locale: str = "en"
) -> AsyncIterator[BotHarness]:
    bot = create_bot(fake.token, fake.base_url)
    users = [TRADER_A, TRADER_B]
    dp = create_dispatcher(
        service, allowed_chat_ids=[CHAT, GROUP], allowed_user_ids=users, default_locale=locale, clock=clock
    )
    task = asyncio.create_task(start_bot(bot, dp, polling_timeout=1))
    try:
        await fake.wait_for(lambda: fake.polls > 0 or task.done(), timeout=5)
        if task.done():
            task.result()  # start failed: raise its error here
        yield BotHarness(fake, service, clock, bot, dp)
    finally:
        await stop_bot(bot, dp)
        try:
            await asyncio.wait_for(task, timeout=5)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()


@pytest.fixture
async def harness(
    telegram: FakeTelegram, service: FakeService, clock: ManualClock, bot_locale: str
) -> AsyncIterator[BotHarness]:
    async with running_bot(telegram, service, clock, locale=bot_locale) as h:
        yield h
