"""Polling hygiene, unit level: which updates are stale, when 409 Conflicts stop polling."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiogram.exceptions import TelegramConflictError
from aiogram.methods import GetUpdates, SendMessage
from aiogram.types import Update

from bot.polling import ConflictGuard, stale_reason

NOW = 1_767_225_600.0  # wall-clock seconds
CHAT = {"id": 408258968, "first_name": "A", "type": "private"}
USER = {"id": 408258968, "is_bot": False, "first_name": "A"}
BOT = {"id": 7000000001, "is_bot": True, "first_name": "SurgeDCA"}


def message(age_s: float, **extra: Any) -> Update:
    body = {"message_id": 5, "from": USER, "chat": CHAT, "date": int(NOW - age_s), "text": "/pause", **extra}
    return Update.model_validate({"update_id": 1, "message": body})


def press(message_age_s: float | None) -> Update:
    query: dict[str, Any] = {"id": "42", "from": USER, "chat_instance": "-1", "data": "x"}
    if message_age_s is not None:
        query["message"] = {"message_id": 4, "from": BOT, "chat": CHAT, "date": int(NOW - message_age_s), "text": "?"}
    return Update.model_validate({"update_id": 2, "callback_query": query})


def test_a_message_older_than_two_minutes_is_stale_at_start_up_and_later() -> None:
    for backlog in (True, False):
        assert stale_reason(message(119), NOW, backlog=backlog) is None
        assert stale_reason(message(121), NOW, backlog=backlog) == "sent 121 s ago"
        assert stale_reason(message(3600), NOW, backlog=backlog, max_age_s=7200) is None


def test_news_about_the_chat_is_never_stale() -> None:
    assert stale_reason(message(86_400, migrate_to_chat_id=-1_002_345_678_901), NOW, backlog=True) is None
    assert stale_reason(message(86_400, migrate_from_chat_id=-4_012_345_678), NOW, backlog=True) is None


def test_a_waiting_button_press_runs_only_when_its_message_is_fresh() -> None:
    # At start-up a press has no date: only its message's date bounds when it was pressed.
    assert stale_reason(press(30), NOW, backlog=True) is None
    assert stale_reason(press(600), NOW, backlog=True) == "button pressed while the service was not running"
    assert stale_reason(press(None), NOW, backlog=True) is not None  # no message (an inline message)
    # While polling, a press arrives as it happens (confirmations expire on their own after 60 s).
    assert stale_reason(press(600), NOW, backlog=False) is None


class _Session:
    """The next request in the chain: raises 409 on getUpdates while ``conflict`` is set."""

    def __init__(self) -> None:
        self.conflict = True
        self.calls = 0

    async def __call__(self, bot: object, method: object) -> str:
        self.calls += 1
        if self.conflict:
            raise TelegramConflictError(method=method, message="Conflict: terminated by other getUpdates request")  # type: ignore[arg-type]
        return "ok"


async def test_three_conflicts_within_the_window_trip_the_guard_once_and_hold_later_polls() -> None:
    now = [0.0]
    trips: list[tuple[int, str]] = []
    guard = ConflictGuard(lambda n, d: trips.append((n, d)), limit=3, window_s=300, monotonic=lambda: now[0])
    session = _Session()
    poll = GetUpdates(timeout=10)
    for t in (0.0, 200.0, 400.0, 600.0):  # never three within 300 s
        now[0] = t
        with pytest.raises(TelegramConflictError):
            await guard(session, None, poll)  # type: ignore[arg-type]
    assert not guard.tripped and trips == []
    now[0] = 650.0  # 400, 600, 650: three within 300 s
    with pytest.raises(TelegramConflictError):
        await guard(session, None, poll)  # type: ignore[arg-type]
    assert guard.tripped and trips == [(3, "Conflict: terminated by other getUpdates request")]
    assert guard.conflicts == 5

    # Tripped: a later poll is held without a request until polling is stopped (the task cancelled).
    calls = session.calls
    held = asyncio.ensure_future(guard(session, None, poll))  # type: ignore[arg-type]
    for _ in range(5):
        await asyncio.sleep(0)
    assert not held.done() and session.calls == calls
    held.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held
    # Sending (alerts) is never held, and a conflict outside getUpdates is not counted.
    session.conflict = False
    assert await guard(session, None, SendMessage(chat_id=1, text="alert")) == "ok"  # type: ignore[arg-type]
    assert trips == [(3, "Conflict: terminated by other getUpdates request")]


def test_the_limit_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ConflictGuard(lambda n, d: None, limit=0)
