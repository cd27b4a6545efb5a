"""The one back-off policy and retry helper, with each caller's numbers (plain values: no clock, no randomness)."""

from __future__ import annotations

import asyncio
import math

import pytest

from trading.core.backoff import Backoff
from trading.core.refusals import backoff_s
from trading.exchange.streams import reconnect_policy
from trading.retry import Attempts, retry


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class Flaky:
    """Raises the given errors in turn, then returns ``"ok"``."""

    def __init__(self, *errors: BaseException) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class Asked(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"retry after {seconds}")
        self.seconds = seconds


# ------------------------------------------------------------------ the policy
def test_exponential_doubles_to_its_cap() -> None:
    policy = Backoff(1.0, factor=2.0, cap_s=30.0)
    assert [policy.delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_jitter_spreads_between_its_bounds_and_never_passes_the_cap() -> None:
    streams = reconnect_policy(1.0, 60.0)  # README: 1 s doubling to 60 s, spread 0.5-1.5x
    assert streams.delay(0, 0.0) == 0.5 and streams.delay(0, 0.5) == 1.0 and streams.delay(0, 0.999) < 1.5
    assert streams.delay(5, 0.0) == 16.0 and streams.delay(5, 0.999) == pytest.approx(47.968)
    assert streams.delay(6, 0.999) == 60.0  # 64 -> the cap, and the jitter does not pass it
    assert streams.delay(20, 0.0) == 30.0


def test_steps_table_repeats_its_last_step() -> None:
    keeper = Backoff(steps=(5, 15, 60, 300), jitter=(0.8, 1.2))  # the candle keeper's failed backfills
    assert [keeper.base(n) for n in range(6)] == [5, 15, 60, 300, 300, 300]
    assert keeper.delay(0, 0.0) == 4.0 and keeper.delay(3, 0.999) == pytest.approx(359.88)


def test_thousands_of_failures_stay_at_the_cap() -> None:
    # A connection down for a day fails ~1,500 times at 60 s: 2 ** 1500 does not fit in a float.
    assert reconnect_policy(1.0, 60.0).delay(5_000, 0.5) == 60.0
    assert Backoff(0.0, cap_s=10.0).delay(5_000) == 0.0
    assert backoff_s(100_000) == 300.0


def test_refused_orders_rest_2_s_doubling_to_5_minutes() -> None:
    assert [backoff_s(n) for n in range(0, 10)] == [0, 2, 4, 8, 16, 32, 64, 128, 256, 300]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": -1.0},
        {"factor": 0.5},
        {"cap_s": -1.0},
        {"jitter": (1.2, 0.8)},
        {"jitter": (-0.1, 1.0)},
        {"steps": (1.0, -2.0)},
        {"initial_s": math.nan},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Backoff(**kwargs)


def test_a_negative_attempt_is_a_bug() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(-1)


# ------------------------------------------------------------------ one caller's count
def test_attempts_count_failures_and_reset() -> None:
    attempts = Attempts(Backoff(0.25, cap_s=8.0, jitter=(0.5, 1.0)), rng=lambda: 0.0)  # the adapter's queries
    assert [attempts.next_delay() for _ in range(7)] == [0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 4.0]
    assert attempts.failures == 7
    attempts.reset()
    assert attempts.next_delay() == 0.125


# ------------------------------------------------------------------ retry()
async def test_retry_sleeps_the_policy_between_retriable_errors() -> None:
    call, sleeps, told = Flaky(OSError("a"), OSError("b"), OSError("c")), Sleeps(), []
    policy = Backoff(1.0, cap_s=30.0)
    got = await retry(call, policy, retriable=(OSError,), sleep=sleeps, on_retry=lambda e, d: told.append((str(e), d)))
    assert got == "ok" and call.calls == 4
    assert sleeps.calls == [1.0, 2.0, 4.0] and told == [("a", 1.0), ("b", 2.0), ("c", 4.0)]


async def test_retry_gives_up_after_its_tries_with_the_last_error() -> None:
    call, sleeps = Flaky(OSError("1"), OSError("2"), OSError("3")), Sleeps()
    with pytest.raises(OSError, match="2"):
        await retry(call, Backoff(1.0), retriable=(OSError,), tries=2, sleep=sleeps)
    assert call.calls == 2 and sleeps.calls == [1.0]


async def test_other_errors_and_cancellation_are_not_retried() -> None:
    sleeps = Sleeps()
    with pytest.raises(ValueError):
        await retry(Flaky(ValueError("bad")), Backoff(), retriable=(OSError,), sleep=sleeps)
    with pytest.raises(asyncio.CancelledError):
        await retry(Flaky(asyncio.CancelledError()), Backoff(), retriable=(OSError,), sleep=sleeps)
    assert sleeps.calls == []


async def test_an_asked_wait_replaces_the_back_off_without_advancing_it() -> None:
    call, sleeps = Flaky(OSError(), Asked(7.0), OSError(), Asked(-1.0), OSError()), Sleeps()
    await retry(
        call,
        Backoff(1.0, cap_s=30.0),
        retriable=(OSError, Asked),
        asked_wait=lambda e: e.seconds if isinstance(e, Asked) else None,
        sleep=sleeps,
    )
    assert sleeps.calls == [1.0, 7.0, 2.0, 0.0, 4.0]


async def test_the_policy_may_depend_on_the_error() -> None:
    class Rejected(Exception):
        pass

    outage, rejected = Backoff(1.0, cap_s=30.0), Backoff(1.0, cap_s=300.0)  # the bot's start-up
    call, sleeps = Flaky(*[Rejected()] * 10), Sleeps()
    await retry(
        call, lambda e: rejected if isinstance(e, Rejected) else outage, retriable=(Rejected, OSError), sleep=sleeps
    )
    assert sleeps.calls == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]
    call, sleeps = Flaky(*[OSError()] * 7), Sleeps()
    await retry(
        call, lambda e: rejected if isinstance(e, Rejected) else outage, retriable=(Rejected, OSError), sleep=sleeps
    )
    assert sleeps.calls == [1, 2, 4, 8, 16, 30, 30]


async def test_retry_draws_the_jitter_from_the_given_source() -> None:
    draws = iter([0.0, 0.999, 0.5])
    sleeps = Sleeps()
    await retry(
        Flaky(OSError(), OSError(), OSError()),
        Backoff(2.0, cap_s=100.0, jitter=(0.5, 1.5)),
        retriable=(OSError,),
        sleep=sleeps,
        rng=lambda: next(draws),
    )
    assert sleeps.calls == [1.0, pytest.approx(5.996), 8.0]


async def test_tries_must_be_positive() -> None:
    with pytest.raises(ValueError):
        await retry(Flaky(), Backoff(), retriable=(OSError,), tries=0)


async def test_a_predicate_picks_the_retriable_errors_and_none_means_asked_waits_only() -> None:
    # The Telegram session's 429s: waited when short, raised when long; no back-off of its own.
    sleeps = Sleeps()
    short = Flaky(Asked(2.0), Asked(5.0))
    got = await retry(
        short,
        None,
        retriable=lambda e: isinstance(e, Asked) and e.seconds <= 30,
        tries=3,
        asked_wait=lambda e: e.seconds if isinstance(e, Asked) else None,
        sleep=sleeps,
    )
    assert got == "ok" and sleeps.calls == [2.0, 5.0]
    with pytest.raises(Asked):
        await retry(
            Flaky(Asked(60.0)),
            None,
            retriable=lambda e: isinstance(e, Asked) and e.seconds <= 30,
            asked_wait=lambda e: e.seconds,  # type: ignore[attr-defined]
            sleep=sleeps,
        )
    with pytest.raises(OSError):  # retriable, but nothing says how long to wait
        await retry(Flaky(OSError()), None, retriable=(OSError,), sleep=sleeps)
    with pytest.raises(asyncio.CancelledError):  # never retried, whatever the predicate says
        await retry(Flaky(asyncio.CancelledError()), Backoff(), retriable=lambda e: True, sleep=sleeps)
    assert sleeps.calls == [2.0, 5.0]
