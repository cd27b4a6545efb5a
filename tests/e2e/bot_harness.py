"""The real service with its Telegram bot on: aiogram polls the loopback fake Bot API over real HTTP.

``BotE2E`` wraps the engine harness (``tests/e2e/conftest.py``: live mode on
the fake Binance, a real SQLite file) and a ``FakeTelegram``. Settings are
the ones an operator writes: ``TELEGRAM_BOT_TOKEN`` = the fake's token,
``TELEGRAM_API_URL`` = its base URL, ``TELEGRAM_ALLOWED_CHAT_IDS`` = a
private chat and a group, ``TELEGRAM_ALLOWED_USER_IDS`` = the two traders of
the group (its other member, ``READER``, may only read). Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiogram import Dispatcher

from bot.confirmations import ConfirmationStore
from tests.e2e.conftest import Harness, until
from tests.fakes.telegram import FakeMessage, FakeTelegram
from trading.service import Service

CHAT = 408_258_968  # a private chat: chat id == user id
GROUP = -1_001_234_567_890  # an allowed supergroup with two traders in it
TRADER_A = 996_202_131
TRADER_B = 996_202_132
READER = 996_202_199  # a member of the group who is not in TELEGRAM_ALLOWED_USER_IDS
STRANGER = 555_000_111  # a chat that is not on the list


class ShiftClock:
    """The system clock, shifted forward on demand: lets a test age the bot's confirmations."""

    def __init__(self) -> None:
        self.offset_s = 0.0

    def advance(self, seconds: float) -> None:
        self.offset_s += seconds

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + int(self.offset_s * 1000)

    def monotonic(self) -> float:
        return time.monotonic() + self.offset_s

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class BotE2E:
    def __init__(self, harness: Harness, telegram: FakeTelegram) -> None:
        self.h = harness
        self.tg = telegram
        self.locale = "en"
        self.clock: ShiftClock | None = None

    # ---- lifecycle
    def telegram_settings(self) -> dict[str, Any]:
        return {
            "telegram_bot_token": self.tg.token,
            "telegram_api_url": self.tg.base_url,
            "telegram_allowed_chat_ids": [CHAT, GROUP],
            "telegram_allowed_user_ids": [TRADER_A, TRADER_B],
            "locale": self.locale,
        }

    async def start(self, **over: Any) -> Service:
        """Start the service (bot on) and wait until aiogram polls the fake."""
        polls = self.tg.polls
        service = await self.h.start(**{**self.telegram_settings(), **over})
        await until(lambda: self.tg.polls > polls, timeout=10, what="the bot polling the fake Bot API")
        return service

    async def restart(self, **over: Any) -> Service:
        await self.h.stop()
        return await self.start(**over)

    @property
    def service(self) -> Service:
        assert self.h.service is not None
        return self.h.service

    @property
    def dp(self) -> Dispatcher:
        assert self.service.dispatcher is not None
        return self.service.dispatcher  # type: ignore[no-any-return]

    def inject_clock(self) -> ShiftClock:
        """Give the running bot's confirmations a clock the test can move (the service builds the bot with the
        system clock; aiogram copied the workflow data when polling started, so the store itself is changed)."""
        clock = ShiftClock()
        confirmations: ConfirmationStore = self.dp["confirmations"]
        confirmations.clock = clock
        self.clock = clock
        return clock

    # ---- talking to the bot
    @staticmethod
    def _user(chat: int, user: int | None) -> int:
        return user if user is not None else (chat if chat > 0 else TRADER_A)

    async def say(self, text: str, *, chat: int = CHAT, user: int | None = None, within: float = 10.0) -> FakeMessage:
        """Send ``text`` as a user; return the bot's reply: its newest new message that is not an alert
        (alerts may arrive at any time)."""
        before = {m.message_id for m in self.tg.bot_messages(chat)}
        self.tg.push_message(chat, self._user(chat, user), text)

        def reply() -> FakeMessage | None:
            fresh = [m for m in self.tg.bot_messages(chat) if m.message_id not in before and not _is_alert(m)]
            return fresh[-1] if fresh else None

        return await self.tg.wait_for(reply, within)  # type: ignore[no-any-return]

    async def press(
        self,
        message: FakeMessage,
        data: str,
        *,
        user: int | None = None,
        until: Callable[[], object] | None = None,
        within: float = 10.0,
    ) -> str:
        """Press a button of ``message``; wait until the press is answered (or ``until`` holds)."""
        query_id = self.tg.push_callback(message.chat_id, self._user(message.chat_id, user), message.message_id, data)
        await self.tg.wait_for(until or (lambda: self.tg.callback_answer(query_id)), within)
        return query_id

    def current(self, message: FakeMessage) -> FakeMessage:
        """The message as it is now (edits applied)."""
        return self.tg.message(message.chat_id, message.message_id)

    def replies_after(self, message: FakeMessage) -> list[FakeMessage]:
        """Bot messages in that chat newer than ``message`` that are not alerts."""
        return [
            m for m in self.tg.bot_messages(message.chat_id) if m.message_id > message.message_id and not _is_alert(m)
        ]

    def alerts(self, chat: int, marker: str) -> list[str]:
        return [m.text for m in self.tg.bot_messages(chat) if _is_alert(m) and marker in m.text]

    async def alerts_idle(self) -> None:
        """Every alert published so far has been delivered (or given up on)."""
        assert await self.service.alerts.wait_idle(10.0), "alerts still queued after 10 s"

    async def settle(self, chat: int = CHAT) -> None:
        """Every update pushed so far was received and handled up to its first wait: a /help round trip after
        them (getUpdates hands them out in order; aiogram starts one task per update, in that order)."""
        await self.say("/help", chat=chat)

    # ---- exchange views
    def sells(self, symbol: str) -> list[Any]:
        """Orders of the service that sell ``symbol`` (market orders; the backstop is an algo order)."""
        return [
            o
            for o in self.h.fake.orders
            if o.symbol == symbol and o.side == "SELL" and o.client_order_id.startswith("sdca-")
        ]


# How alerts begin (presenters.alert_text, in English: the service's LOCALE in these tests); no reply to a
# command begins like this (e.g. "▶ Resumed" has no emoji variation selector, "⚠️ Sync failed" no <b>).
_ALERT_ICONS = ("🟢", "🔵", "🟡", "🛑", "✅ <b>Closed", "🔻", "📥", "❓", "⚖️", "⏭", "⛔", "📡", "⚠️ <b>", "▶️", "⏹",
                "💥", "📅", "🔧", "⏸ <b>")  # fmt: skip


_ALERT_BUTTONS = ("ch:", "bl:", "ad:")  # 📈 Chart (and 🚫 Block under an entry); Adopt / Ignore


def _is_alert(m: FakeMessage) -> bool:
    html = m.html or m.text
    return html.startswith(_ALERT_ICONS) and all(data.startswith(_ALERT_BUTTONS) for _, data in m.buttons)
