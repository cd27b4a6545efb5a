"""Confirmations: single use, 60 s expiry on an injectable clock, only for the user who asked."""

from __future__ import annotations

from bot.confirmations import ConfirmationStore, Outcome
from trading.clock import ManualClock


def _store() -> tuple[ConfirmationStore, ManualClock]:
    clock = ManualClock(1_000_000)
    return ConfirmationStore(clock, ttl_s=60), clock


def test_single_use() -> None:
    store, _ = _store()
    item = store.create("exit", user_id=7, chat_id=7, payload={"symbol": "BTCUSDT"})
    outcome, got = store.claim(item.token, 7)
    assert outcome is Outcome.OK and got is item and got.payload == {"symbol": "BTCUSDT"}
    assert store.claim(item.token, 7)[0] is Outcome.ALREADY_DONE
    assert store.cancel(item.token, 7)[0] is Outcome.ALREADY_DONE


def test_expiry_boundary() -> None:
    store, clock = _store()
    ok = store.create("exit", user_id=7, chat_id=7)
    late = store.create("exit", user_id=7, chat_id=7)
    clock.advance(60)
    assert store.claim(ok.token, 7)[0] is Outcome.OK  # exactly 60 s: still valid
    clock.advance(0.001)
    assert store.claim(late.token, 7)[0] is Outcome.EXPIRED
    assert store.claim(late.token, 7)[0] is Outcome.EXPIRED  # and stays so


def test_only_the_asker() -> None:
    store, _ = _store()
    item = store.create("config", user_id=7, chat_id=-100)
    assert store.claim(item.token, 8)[0] is Outcome.WRONG_USER
    assert store.cancel(item.token, 8)[0] is Outcome.WRONG_USER
    assert store.claim(item.token, 7)[0] is Outcome.OK


def test_cancel_then_yes() -> None:
    store, _ = _store()
    item = store.create("exit", user_id=7, chat_id=7)
    assert store.cancel(item.token, 7)[0] is Outcome.OK
    assert store.claim(item.token, 7)[0] is Outcome.CANCELLED


def test_unknown_token_and_pruning() -> None:
    store, clock = _store()
    assert store.claim("forged", 7)[0] is Outcome.NOT_FOUND
    old = store.create("exit", user_id=7, chat_id=7)
    clock.advance(25 * 3600)
    store.create("exit", user_id=7, chat_id=7)  # creating prunes entries older than a day
    assert store.get(old.token) is None
    small = ConfirmationStore(clock, max_entries=3)
    tokens = [small.create("exit", user_id=1, chat_id=1).token for _ in range(5)]
    assert [small.get(t) is not None for t in tokens] == [False, False, True, True, True]
