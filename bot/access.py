"""Who may do what through the bot, and how often: the policy, handler flags, the rate limiter, the audit tally.

* Chats: only ``TELEGRAM_ALLOWED_CHAT_IDS`` are answered (``AuthMiddleware``).
* Users: in an allowed chat everyone may *read*; only ``TELEGRAM_ALLOWED_USER_IDS`` may *act* (sell, change
  the config, pause, resume, sync, answer a confirmation). In a private chat its own user may act: a private
  chat's id is its user's id, so listing the chat is listing the person.
* A handler says what it needs with a flag: ``flags=READ`` for the read-only ones; a handler without the flag
  needs :attr:`Access.ACT` (deny by default, so a new command is never open to every group member by mistake).
* A router whose work is heavy (a reconcile, a chart) declares itself with one line, ``heavy(router)``: each
  user gets a small burst of its commands and then one every ``HEAVY_EVERY_S`` seconds.
* Unknown chats and refusals are audited as one row per key per clock hour, with a count (``HourlyTally``):
  a flood of messages costs a counter, not a row each.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.types import Chat, User

from trading.clock import Clock

log = logging.getLogger(__name__)

ACCESS_FLAG = "access"
HOUR_MS = 3_600_000
HEAVY_BURST = 2  # heavy requests a user may make in a row
HEAVY_EVERY_S = 30.0  # then one per this many seconds


class Access(StrEnum):
    READ = "read"  # any member of an allowed chat
    ACT = "act"  # only allowed users (the default of a handler without the flag)


READ: dict[str, Any] = {ACCESS_FLAG: Access.READ}  # router.message.register(handler, ..., flags=READ)


class _NotHeavy:
    def __repr__(self) -> str:
        return "NOT_HEAVY"


# Returned by a handler of a heavy router that refused its input before doing the heavy part (a usage message):
# the request is not counted against the user's rate limit.
NOT_HEAVY: Any = _NotHeavy()


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    chats: frozenset[int]
    users: frozenset[int]

    @classmethod
    def of(cls, chat_ids: Iterable[int], user_ids: Iterable[int] = ()) -> AccessPolicy:
        return cls(frozenset(int(c) for c in chat_ids), frozenset(int(u) for u in user_ids))

    def chat_allowed(self, chat: Chat | None) -> bool:
        return chat is not None and chat.id in self.chats

    def may_act(self, chat: Chat | None, user: User | None) -> bool:
        if user is None or not self.chat_allowed(chat):
            return False
        if user.id in self.users:
            return True
        assert chat is not None
        return chat.type == ChatType.PRIVATE and chat.id == user.id


# ------------------------------------------------------------------ rate limit
@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """A token bucket per key (user, command family): ``burst`` at once, then one per ``every_s`` seconds."""

    def __init__(self, clock: Clock, *, burst: int = HEAVY_BURST, every_s: float = HEAVY_EVERY_S) -> None:
        self.clock = clock  # public: a test may move it
        self.burst = burst
        self.every_s = every_s
        self._buckets: dict[Hashable, _Bucket] = {}

    def take(self, key: Hashable, *, burst: int | None = None, every_s: float | None = None) -> float:
        """0 when the request may go ahead (a token is used), else the seconds until it may.

        ``burst`` / ``every_s``: a command family's own limits (the limiter's defaults otherwise)."""
        burst = self.burst if burst is None else burst
        every_s = self.every_s if every_s is None else every_s
        now = self.clock.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(burst), now)
            if len(self._buckets) > 10_000:  # users come and go: drop the full (idle) buckets
                self._forget_idle(now)
        bucket.tokens = min(float(burst), bucket.tokens + (now - bucket.at) / every_s)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) * every_s

    def refund(self, key: Hashable, *, burst: int | None = None) -> None:
        """Give back the token of a request that turned out cheap."""
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.tokens = min(float(self.burst if burst is None else burst), bucket.tokens + 1.0)

    def _forget_idle(self, now: float) -> None:
        full_after = self.burst * self.every_s
        for key in [k for k, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[key]


def heavy(router: Router, *, burst: int | None = None, every_s: float | None = None) -> Router:
    """Rate-limit every command and button of ``router`` per user (one line in the router's factory); ``burst``
    and ``every_s`` override the defaults for this family."""
    from bot.middlewares import RateLimitMiddleware

    middleware = RateLimitMiddleware(router.name, burst=burst, every_s=every_s)
    router.message.middleware(middleware)
    router.callback_query.middleware(middleware)
    return router


# ------------------------------------------------------------------ audit tally
@dataclass(slots=True)
class Tally:
    """What one key did during one clock hour."""

    hour: int  # ms since the epoch // HOUR_MS
    first_ms: int
    last_ms: int
    count: int = 0
    users: list[int] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)


class HourlyTally:
    """Counts events per key and clock hour; ``write(key, tally)`` once per key and hour, when the hour is over
    (checked at each new event) or at :meth:`flush` (the bot stopping). ``note`` is True for the first event of
    a key in its hour: the caller logs that one, so the log too has one line per key and hour."""

    MAX_USERS = 10
    MAX_SAMPLES = 5

    def __init__(self, clock: Clock, write: Callable[[Hashable, Tally], None]) -> None:
        self.clock = clock  # public: a test may move it
        self._write = write
        self._open: dict[Hashable, Tally] = {}

    def note(self, key: Hashable, *, user_id: int | None = None, sample: str = "") -> bool:
        now = self.clock.now_ms()
        hour = now // HOUR_MS
        self._close_before(hour)
        tally = self._open.get(key)
        first = tally is None
        if tally is None:
            tally = self._open[key] = Tally(hour, now, now)
        tally.count += 1
        tally.last_ms = now
        if user_id is not None and user_id not in tally.users and len(tally.users) < self.MAX_USERS:
            tally.users.append(user_id)
        if sample and sample not in tally.samples and len(tally.samples) < self.MAX_SAMPLES:
            tally.samples.append(sample)
        return first

    def flush(self) -> None:
        """Write every open tally now (the bot is stopping)."""
        self._close_before(None)

    def _close_before(self, hour: int | None) -> None:
        done = [k for k, t in self._open.items() if hour is None or t.hour < hour]
        for key in done:
            tally = self._open.pop(key)
            try:
                self._write(key, tally)
            except Exception:  # the audit must never become a reply or a crash
                log.exception("could not audit %s (%d events)", key, tally.count)
