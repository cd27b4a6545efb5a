"""Adoption by consent without Telegram, end to end: ``adopt_positions`` = "none", "all", and "ask" with nobody to
ask (as "none", said in the log). A long left alone gets no backstop, no DCA and no exit, and no entry is made
on its symbol; it is listed as not managed; its question ends when it leaves the exchange.
"""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"
BASE = "reconcile_interval_s = 5\nfallback_poll_interval_s = 1\n"


def _orders_sent(harness: Harness) -> list[object]:
    paths = ("/fapi/v1/order", "/fapi/v1/algoOrder")
    return [r for r in harness.fake.requests if r.method == "POST" and r.path in paths]


async def _left_alone(harness: Harness, mode: str) -> None:
    harness.strategy.write_text(BASE + f'adopt_positions = "{mode}"\n')
    await harness.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    api, fake = harness.service.api, harness.fake
    assert harness.db_position(SYM) is None and _orders_sent(harness) == []
    (row,) = harness.store.adoptions.live()
    assert (row.symbol, row.status.value, row.qty, row.entry_price) == (SYM, "left", D("1.00"), D("100.00"))
    (audit,) = harness.store.audit.recent(5, action="adoption_left")
    assert audit.after["adopt_positions"] == mode
    listed = await api.not_managed()
    assert [(n.symbol, n.qty, n.status.value) for n in listed] == [(SYM, D("1.00"), "left")]
    assert harness.engine.scanner.blocked(SYM) == "a position not managed by SurgeDCA is open on it"
    # A DCA level, then below every stop: nothing is sent for it, round after round.
    for price in ("96.90", "80.00"):
        await fake.set_price(SYM, price)
        await api.sync(actor="test")
    assert _orders_sent(harness) == [] and fake.position(SYM).qty == D("1.00")
    assert len(harness.store.adoptions.live()) == 1  # the question is recorded once, not at every round
    # It leaves the exchange: the question ends; a new long on the symbol later is a new one.
    await fake.close_position_by_hand(SYM)
    await api.sync(actor="test")
    assert harness.store.adoptions.live() == [] and await api.not_managed() == []
    assert harness.engine.scanner.blocked(SYM) != "a position not managed by SurgeDCA is open on it"
    await fake.open_position_by_hand(SYM, "2.00", price="80.00")
    await api.sync(actor="test")
    (again,) = harness.store.adoptions.live()
    assert again.id != row.id and again.qty == D("2.00")
    assert _orders_sent(harness) == []


async def test_none_leaves_an_unknown_long_alone(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="surgedca.adoption"):
        await _left_alone(harness, "none")
    assert any("left alone (adopt_positions = none)" in r.getMessage() for r in caplog.records)


async def test_ask_without_telegram_is_none_and_says_so(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="surgedca.adoption"):
        await _left_alone(harness, "ask")
    assert any("without Telegram there is nobody to ask" in r.getMessage() for r in caplog.records)
    assert [e for e in harness.recorder.events if e.kind == "AdoptionAsked"] == []


async def test_all_adopts_at_once(harness: Harness) -> None:
    harness.strategy.write_text(BASE + 'adopt_positions = "all"\n')
    await harness.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    await until(lambda: harness.db_position(SYM) and len(harness.resting_stops(SYM)) == 1, what="adoption")
    rec = harness.assert_agree(SYM)
    assert rec is not None and rec.origin == "adopted"
    (audit,) = harness.store.audit.recent(5, action="adopt")
    assert audit.actor == "reconciler"
    assert harness.store.adoptions.live() == [] and harness.engine.ctx.unmanaged == {}


async def test_switching_to_all_adopts_what_was_left_alone(harness: Harness) -> None:
    harness.strategy.write_text(BASE + 'adopt_positions = "none"\n')
    await harness.fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.start()
    assert harness.db_position(SYM) is None
    api = harness.service.api
    await api.config_set("adopt_positions", "all", actor="tg:1")
    await api.sync(actor="test")
    assert harness.assert_agree(SYM) is not None
    assert harness.store.adoptions.live() == [] and harness.engine.ctx.unmanaged == {}
