"""Is Telegram reachable? Every request the bot makes (polling, replies, alerts) says so; ``/health``, the health
snapshot (``surgedca status``) and the log show it.

An outage never stops trading: polling retries with back-off (``POLLING_BACKOFF``), alerts wait in the
notifier's queue. The log gets one line when the link goes down, one every ``REMIND_S`` while it stays down,
and one when it is back. A token Telegram rejects (401, or 404 for a malformed one) is a start-up error
(:func:`check_token`); rejected later (revoked in @BotFather), it is logged as an error and shown as such.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiogram import Bot
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.utils.backoff import BackoffConfig

from trading.settings import StartupError
from trading.views import LinkHealth

log = logging.getLogger(__name__)

REMIND_S = 600.0
TOKEN_CHECK_TIMEOUT_S = 15.0
# aiogram's default (1 s growing to 5 s) would hammer an unreachable Telegram all day; 30 s keeps recovery quick.
POLLING_BACKOFF = BackoffConfig(min_delay=1.0, max_delay=30.0, factor=1.5, jitter=0.1)

_DOWN = (TelegramNetworkError, TelegramServerError)
_REJECTED = (TelegramUnauthorizedError, TelegramNotFound)


class TelegramLink(BaseRequestMiddleware):
    """A request middleware on the bot's session that records whether Telegram answered."""

    def __init__(self, now_ms: Callable[[], int] | None = None) -> None:
        self._now_ms = now_ms or (lambda: int(time.time() * 1000))
        self._up = True
        self._since_ms: int | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._last_outage_s: float | None = None
        self._rejected = False
        self._reminded_ms = 0

    async def __call__(
        self, make_request: NextRequestMiddlewareType[TelegramType], bot: Bot, method: TelegramMethod[TelegramType]
    ) -> Response[TelegramType]:
        try:
            response = await make_request(bot, method)
        except _DOWN as exc:
            self.failed(exc, rejected=False)
            raise
        except _REJECTED as exc:
            self.failed(exc, rejected=True)
            raise
        except TelegramAPIError:  # Telegram answered (a bad request, a rate limit): it is reachable
            self.answered()
            raise
        self.answered()
        return response

    @property
    def up(self) -> bool:
        return self._up

    def answered(self) -> None:
        now = self._now_ms()
        if not self._up and self._since_ms is not None:
            self._last_outage_s = (now - self._since_ms) / 1000
            log.warning(
                "Telegram reachable again after %.0f s (%d failed requests)", self._last_outage_s, self._failures
            )
        if not self._up or self._since_ms is None:
            self._since_ms = now
        self._up, self._failures, self._rejected = True, 0, False

    def failed(self, exc: Exception, *, rejected: bool) -> None:
        now = self._now_ms()
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"[:300]
        if self._up:
            self._up, self._since_ms, self._reminded_ms = False, now, now
            self._rejected = rejected
            if rejected:
                log.error(
                    "Telegram rejects the bot token (%s): the bot is off until the service is restarted with a valid "
                    "TELEGRAM_BOT_TOKEN; trading goes on",
                    self._last_error,
                )
            else:
                log.warning("Telegram unreachable (%s): retrying with back-off; trading goes on", self._last_error)
        elif now - self._reminded_ms >= REMIND_S * 1000:
            self._reminded_ms = now
            down_s = (now - (self._since_ms or now)) / 1000
            log.warning(
                "Telegram still unreachable after %.0f s (%d failed requests): %s",
                down_s,
                self._failures,
                self._last_error,
            )

    def health(self) -> LinkHealth:
        return LinkHealth(
            up=self._up,
            since_ms=self._since_ms,
            failures=self._failures,
            last_error=self._last_error,
            last_outage_s=self._last_outage_s,
            rejected=self._rejected,
        )


async def check_token(bot: Bot, *, timeout_s: float = TOKEN_CHECK_TIMEOUT_S) -> bool:
    """``getMe`` once at start: a token Telegram rejects is a ``StartupError``; True when Telegram answered, False
    when it could not be reached (the bot then keeps trying in the background while the service trades)."""
    try:
        async with asyncio.timeout(timeout_s):
            me = await bot.get_me()
    except _REJECTED as exc:
        raise StartupError(
            f"Telegram rejected TELEGRAM_BOT_TOKEN ({type(exc).__name__}: {exc.message}). Copy the token again from "
            "@BotFather (/mybots → API Token); a revoked token stops working at once. Nothing was started."
        ) from None
    except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter, TimeoutError) as exc:
        log.warning(
            "Telegram not reachable at start (%s): the bot keeps trying; trading starts anyway", exc or "timeout"
        )
        return False
    log.info("Telegram bot @%s (id %s)", me.username, me.id)
    return True
