"""Single-use, expiring, per-user confirmations for actions asked from Telegram.

A question (e.g. "Exit BTCUSDT?") gets a random token; its buttons carry
only that token. ``claim`` decides synchronously (no ``await`` between the
check and the state change), so two taps processed concurrently by aiogram
can never both run the action.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass, field
from enum import StrEnum

from trading.clock import Clock, SystemClock

CONFIRM_TTL_S = 60


class State(StrEnum):
    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Outcome(StrEnum):
    OK = "ok"  # the caller may act now (and only this once)
    NOT_FOUND = "not_found"  # unknown token (forged, or forgotten long ago)
    WRONG_USER = "wrong_user"  # pressed by someone other than who asked
    ALREADY_DONE = "already_done"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(slots=True)
class Pending:
    token: str
    kind: str  # "exit" | "config"
    user_id: int
    chat_id: int
    created: float  # clock.monotonic()
    payload: dict[str, str] = field(default_factory=dict)
    state: State = State.PENDING


class ConfirmationStore:
    def __init__(
        self,
        clock: Clock | None = None,
        *,
        ttl_s: float = CONFIRM_TTL_S,
        keep_s: float = 24 * 3600,
        max_entries: int = 1000,
    ) -> None:
        self.clock = clock or SystemClock()  # public: a test may age the questions of a running bot
        self.ttl_s = ttl_s
        self._keep_s = keep_s  # finished entries are remembered so a late tap says "already done"
        self._max = max_entries
        self._items: OrderedDict[str, Pending] = OrderedDict()

    def create(self, kind: str, *, user_id: int, chat_id: int, payload: dict[str, str] | None = None) -> Pending:
        self._prune()
        token = secrets.token_urlsafe(9)  # 12 characters, 72 random bits
        item = Pending(token, kind, user_id, chat_id, self.clock.monotonic(), dict(payload or {}))
        self._items[token] = item
        return item

    def get(self, token: str) -> Pending | None:
        return self._items.get(token)

    def _check(self, token: str, user_id: int) -> tuple[Outcome, Pending | None]:
        item = self._items.get(token)
        if item is None:
            return Outcome.NOT_FOUND, None
        if item.user_id != user_id:
            return Outcome.WRONG_USER, item
        if item.state is State.DONE:
            return Outcome.ALREADY_DONE, item
        if item.state is State.CANCELLED:
            return Outcome.CANCELLED, item
        if item.state is State.EXPIRED:
            return Outcome.EXPIRED, item
        if self.clock.monotonic() - item.created > self.ttl_s:
            item.state = State.EXPIRED
            return Outcome.EXPIRED, item
        return Outcome.OK, item

    def claim(self, token: str, user_id: int) -> tuple[Outcome, Pending | None]:
        """ "Yes": on ``OK`` the confirmation is used up before the caller acts."""
        outcome, item = self._check(token, user_id)
        if outcome is Outcome.OK and item is not None:
            item.state = State.DONE
        return outcome, item

    def cancel(self, token: str, user_id: int) -> tuple[Outcome, Pending | None]:
        """ "No": on ``OK`` the question is closed without acting."""
        outcome, item = self._check(token, user_id)
        if outcome is Outcome.OK and item is not None:
            item.state = State.CANCELLED
        return outcome, item

    def _prune(self) -> None:
        now = self.clock.monotonic()
        for token in [t for t, i in self._items.items() if now - i.created > self._keep_s]:
            del self._items[token]
        while len(self._items) >= self._max:
            self._items.popitem(last=False)
