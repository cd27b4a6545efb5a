"""The access policy, the per-user rate limiter, the hourly audit tally and the Telegram link, on a manual clock."""

from __future__ import annotations

import logging
from collections.abc import Hashable

import pytest
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError
from aiogram.methods import GetMe
from aiogram.types import Chat, User

from bot.access import AccessPolicy, HourlyTally, RateLimiter, Tally
from bot.link import REMIND_S, TelegramLink
from trading.clock import ManualClock

HOUR0 = 1_780_000_000_000 - 1_780_000_000_000 % 3_600_000


def _user(uid: int) -> User:
    return User(id=uid, is_bot=False, first_name="u")


def test_policy_private_chat_user_acts_group_members_only_if_listed() -> None:
    policy = AccessPolicy.of([408, -100123], [7])
    private, other = Chat(id=408, type="private"), Chat(id=9, type="private")
    group = Chat(id=-100123, type="supergroup")
    assert policy.may_act(private, _user(408))  # the private chat's own user, though not listed
    assert policy.may_act(group, _user(7))
    assert not policy.may_act(group, _user(408)) and not policy.may_act(group, _user(8))  # members who only read
    assert not policy.may_act(other, _user(9)) and not policy.chat_allowed(other)  # a chat not on the list
    assert not policy.may_act(group, None)
    assert policy.may_act(private, _user(7))  # a listed user may act anywhere allowed


def test_rate_limiter_burst_then_one_per_interval_per_key_and_refund() -> None:
    clock = ManualClock(HOUR0)
    limiter = RateLimiter(clock, burst=2, every_s=30)
    assert limiter.take((1, "sync")) == 0 and limiter.take((1, "sync")) == 0
    assert limiter.take((1, "sync")) == pytest.approx(30)
    assert limiter.take((2, "sync")) == 0 and limiter.take((1, "report")) == 0  # per user, per command family
    clock.advance(15)
    assert limiter.take((1, "sync")) == pytest.approx(15)
    clock.advance(15)
    assert limiter.take((1, "sync")) == 0
    limiter.refund((1, "sync"))  # a usage error: not counted
    assert limiter.take((1, "sync")) == 0 and limiter.take((1, "sync")) > 0
    clock.advance(3600)
    assert limiter.take((1, "sync")) == 0 and limiter.take((1, "sync")) == 0  # refills up to the burst only
    assert limiter.take((1, "sync")) > 0


def test_tally_writes_one_row_per_key_and_hour_with_the_count() -> None:
    clock = ManualClock(HOUR0 + 60_000)
    rows: list[tuple[Hashable, Tally]] = []
    tally = HourlyTally(clock, lambda key, t: rows.append((key, t)))
    firsts = [tally.note(("unauthorized", 5), user_id=5, sample=f"/x{i % 2}") for i in range(1000)]
    assert firsts == [True] + [False] * 999  # the caller logs once
    assert tally.note(("unauthorized", 6), user_id=6)
    assert rows == []
    clock.advance(3600)
    assert tally.note(("unauthorized", 5), user_id=5)  # a new hour: the last one is written first
    assert [(k, t.count, t.users, t.samples) for k, t in rows] == [
        (("unauthorized", 5), 1000, [5], ["/x0", "/x1"]),
        (("unauthorized", 6), 1, [6], []),
    ]
    tally.flush()
    assert [t.count for _k, t in rows] == [1000, 1, 1]
    tally.flush()
    assert len(rows) == 3


def test_tally_keeps_its_lists_short() -> None:
    rows: list[tuple[Hashable, Tally]] = []
    tally = HourlyTally(ManualClock(HOUR0), lambda key, t: rows.append((key, t)))
    for i in range(100):
        tally.note("k", user_id=i, sample=str(i))
    tally.flush()
    ((_key, t),) = rows
    assert t.count == 100 and len(t.users) == HourlyTally.MAX_USERS and len(t.samples) == HourlyTally.MAX_SAMPLES


async def test_link_goes_down_once_reminds_and_comes_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [HOUR0]
    link = TelegramLink(lambda: now[0])
    caplog.set_level(logging.INFO, logger="bot.link")
    method = GetMe()

    async def fail(bot: object, m: object) -> object:
        raise TelegramNetworkError(method=method, message="connection refused")

    async def ok(bot: object, m: object) -> object:
        return "ok"

    for _ in range(5):
        now[0] += 1000
        with pytest.raises(TelegramNetworkError):
            await link(fail, None, method)  # type: ignore[arg-type]
    health = link.health()
    assert not health.up and health.failures == 5 and health.since_ms == HOUR0 + 1000 and not health.rejected
    now[0] += int(REMIND_S * 1000)
    with pytest.raises(TelegramNetworkError):
        await link(fail, None, method)  # type: ignore[arg-type]
    assert await link(ok, None, method) == "ok"  # type: ignore[arg-type]
    health = link.health()
    assert health.up and health.failures == 0 and health.last_outage_s == pytest.approx(REMIND_S + 4)
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(" (")[0].split(" after")[0] for m in messages] == [
        "Telegram unreachable",
        "Telegram still unreachable",
        "Telegram reachable again",
    ]

    async def rejected(bot: object, m: object) -> object:
        raise TelegramUnauthorizedError(method=method, message="Unauthorized")

    with pytest.raises(TelegramUnauthorizedError):
        await link(rejected, None, method)  # type: ignore[arg-type]
    assert link.health().rejected and caplog.records[-1].levelno == logging.ERROR
