"""The one request-weight budget (``trading.exchange.ratelimit``) with plain numbers: shares, minutes, 429s."""

from __future__ import annotations

import pytest

from trading.clock import ManualClock
from trading.exchange.base import RateLimitedError
from trading.exchange.ratelimit import (
    BACKFILL,
    DOWNLOAD,
    EXITS,
    QUERIES,
    Share,
    WeightBudget,
    budget_of,
)

MINUTE = 1_700_000_040_000  # a minute boundary


def on(clock: ManualClock, limit: int = 2400) -> WeightBudget:
    return WeightBudget(limit, now_ms=clock.now_ms, monotonic=clock.monotonic, sleep=clock.sleep)


def test_each_caller_has_its_share_of_the_minute() -> None:
    budget = WeightBudget()
    assert [budget.cap(s) for s in (EXITS, QUERIES, BACKFILL, DOWNLOAD)] == [None, 1920, 1440, 1200]
    budget.record_weight(1439, MINUTE + 1_000)
    at = MINUTE + 30_000
    assert budget.wait_time(BACKFILL, weight=1, now=0.0, exchange_ms=at) == 0.0  # 1,440 fits in 60%
    assert budget.wait_time(BACKFILL, weight=2, now=0.0, exchange_ms=at) == pytest.approx(30.05)  # 1,441 does not
    assert budget.wait_time(DOWNLOAD, weight=5, now=0.0, exchange_ms=at) == pytest.approx(30.05)
    assert budget.wait_time(QUERIES, now=0.0, exchange_ms=at) == 0.0
    assert budget.wait_time(EXITS, weight=100, now=0.0, exchange_ms=at) == 0.0
    assert budget.wait_time(BACKFILL, weight=2, now=0.0, exchange_ms=MINUTE + 60_000) == 0.0  # a new minute


async def test_the_minute_counts_what_was_drawn_when_no_header_comes_back() -> None:
    clock = ManualClock(MINUTE + 10_000)
    budget = on(clock, limit=100)  # a port that reports no weight: only the draws count
    share = Share("test", 0.6)

    minutes = []
    for _ in range(7):
        await budget.draw(share, 10)
        minutes.append(clock.now_ms() // 60_000)
    assert minutes == [MINUTE // 60_000] * 6 + [MINUTE // 60_000 + 1]  # 60 per minute, the 7th waits
    assert budget.waits == 1 and budget.used(clock.now_ms()) == 10


def test_a_request_bigger_than_a_share_still_goes_in_an_empty_minute() -> None:
    budget = WeightBudget(10)
    assert budget.wait_time(BACKFILL, weight=50, now=0.0, exchange_ms=MINUTE) == 0.0


def test_a_429_pauses_everyone_but_the_exits_and_is_never_shortened() -> None:
    budget = WeightBudget()
    budget.block_for(2.0, now=100.0)
    for share in (QUERIES, BACKFILL, DOWNLOAD):
        assert budget.wait_time(share, now=100.5, exchange_ms=MINUTE) == pytest.approx(1.5)
    assert budget.wait_time(EXITS, now=100.5, exchange_ms=MINUTE) == 0.0
    budget.block_for(0.5, now=100.0)
    assert budget.blocked_for(101.0) == pytest.approx(1.0)


def test_readings_pace_on_the_minutes_highest() -> None:
    budget = WeightBudget()
    budget.record_weight(1950, MINUTE + 30_000)
    budget.record_weight(1000, MINUTE + 31_000)  # a late, lower reading: reported, not paced on
    assert budget.used_weight() == 1000 and budget.used(MINUTE + 31_000) == 1950
    budget.record_weight(12, MINUTE + 61_000)
    assert budget.used(MINUTE + 61_000) == 12


async def test_call_waits_out_429s_and_notes_the_ports_reading() -> None:
    clock = ManualClock(MINUTE + 5_000)
    budget = on(clock)
    errors = [RateLimitedError("429", retry_after=0.2), RateLimitedError("418", retry_after=3.0)]
    calls: list[int] = []

    async def request() -> str:
        calls.append(clock.now_ms())
        if errors:
            raise errors.pop(0)
        return "rows"

    got = await budget.call(request, share=DOWNLOAD, weight=5, tries=3, min_wait_s=1.0, reading=lambda: 321)
    assert got == "rows"
    assert [t - calls[0] for t in calls] == [0, 1_000, 4_000]  # at least a second, then the Retry-After
    assert budget.used(clock.now_ms()) == 321  # the port's figure, above the 15 drawn
    errors[:] = [RateLimitedError("429", retry_after=1.0)] * 2
    with pytest.raises(RateLimitedError):
        await budget.call(request, share=BACKFILL, weight=2, tries=2)
    with pytest.raises(ValueError):
        await budget.call(request, share=BACKFILL, weight=2, tries=0)


def test_shares_are_fractions_and_only_real_budgets_are_found_on_ports() -> None:
    with pytest.raises(ValueError):
        Share("x", 1.5)
    with pytest.raises(ValueError):
        WeightBudget(0)

    class Port:
        weight_budget = WeightBudget()

    class Sim:
        def used_weight(self) -> int:
            return 0

    assert budget_of(Port()) is Port.weight_budget and budget_of(Sim()) is None
