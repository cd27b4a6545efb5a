"""The account check end to end: position mode and Multi-Assets mode, at start and at every reconcile.

The real service (live mode, ccxt adapter, streams, SQLite) against the fake Binance, whose account can be put
in hedge mode or Multi-Assets mode as the app would. Without the check every order on a hedge-mode account is
refused (-4061), backstops included; these tests count what reaches the exchange.
"""

from __future__ import annotations

from decimal import Decimal

from bot import presenters
from tests.e2e.conftest import Harness, until

D = Decimal
SYM = "SOLUSDT"
DUAL = "/fapi/v1/positionSide/dual"


def _posts(harness: Harness) -> list[object]:
    """Every POST the service sent, but the user stream's listen key (orders, algo orders, settings)."""
    return [r for r in harness.fake.requests if r.method == "POST" and r.path != "/fapi/v1/listenKey"]


def _events(harness: Harness, kind: str) -> list:
    return [e for e in harness.recorder.events if e.kind == kind]


async def test_a_hedge_account_with_nothing_open_is_switched_to_one_way_and_trades(harness: Harness) -> None:
    fake = harness.fake
    fake.set_position_mode(dual_side=True)
    await harness.start()
    assert not fake.hedge_mode  # switched before anything else was sent
    assert [r.params["dualSidePosition"] for r in _posts(harness)] == ["false"]
    (switched,) = _events(harness, "AccountModeSwitched")
    assert (switched.before, switched.after) == ("hedge", "one-way")
    (row,) = harness.store.audit.recent(5, action="position_mode")
    assert row.actor == "reconciler" and row.after == {"mode": "one-way"}
    ctx = harness.engine.ctx
    assert not ctx.halted and _events(harness, "TradingHalted") == []
    health = await harness.service.api.health()
    assert health.account is not None and (health.account.position_mode, health.account.refusal) == ("one-way", None)
    # Trading proceeds: a position opened now is managed, its backstop accepted by the exchange.
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.service.api.sync(actor="test")
    rec = harness.assert_agree(SYM)
    assert rec is not None and rec.origin == "adopted"
    assert all(r.code != -4061 for r in fake.requests)
    assert len(_events(harness, "AccountModeSwitched")) == 1  # once: the next rounds find one-way mode


async def test_a_hedge_account_holding_a_position_is_refused_until_it_can_be_switched(harness: Harness) -> None:
    fake = harness.fake
    await fake.open_hedge_position_by_hand(SYM, "LONG", "1.00", price="100.00")
    await harness.start()
    ctx = harness.engine.ctx
    assert ctx.halted and "hedge mode" in (ctx.halt_reason or "") and "1 position is open" in (ctx.halt_reason or "")
    (halted,) = _events(harness, "TradingHalted")
    assert halted.halted and halted.cause == "account_mode" and "hedge mode" in halted.detail
    # Nothing at all was sent: no order, no backstop, no setting, no attempt to switch.
    assert _posts(harness) == []
    await fake.set_price(SYM, "80.00")  # far below any stop: still nothing
    await harness.service.api.sync(actor="test")
    assert _posts(harness) == [] and harness.db_position(SYM) is None
    assert len(_events(harness, "TradingHalted")) == 1  # said once, not at every round
    health = await harness.service.api.health()
    assert health.account is not None and health.account.position_mode == "hedge"
    assert "hedge mode" in (health.account.refusal or "")
    text = presenters.health_text(health, now_ms=ctx.clock.now_ms())
    assert "⛔ Account: hedge mode · single-asset mode · trading allowed — no order is sent in this state" in text
    assert harness.engine.scanner.blocked("DOGEUSDT") == "halted"  # no entry either

    # The user closes the hedge position: at the next round the account is switched and trading resumes.
    await fake.close_position_by_hand(SYM, "LONG")
    await harness.service.api.sync(actor="test")
    assert not fake.hedge_mode and not ctx.halted
    assert [r.params["dualSidePosition"] for r in _posts(harness)] == ["false"]
    resumed = _events(harness, "TradingHalted")[-1]
    assert not resumed.halted and len(_events(harness, "AccountModeSwitched")) == 1
    assert [r.action for r in harness.store.audit.recent(10) if r.action in ("halt", "resume_trading")] == [
        "resume_trading", "halt",
    ]  # fmt: skip


async def test_multi_assets_mode_stops_new_entries_only(harness: Harness) -> None:
    fake = harness.fake
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    fake.set_multi_assets_mode(True)
    await harness.start()
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="the held position's backstop")
    ctx, scanner = harness.engine.ctx, harness.engine.scanner
    assert not ctx.halted
    assert "Multi-Assets mode" in (scanner.blocked("DOGEUSDT") or "")
    assert harness.engine.executor.entry_blocker("DOGEUSDT") is not None
    (refused,) = _events(harness, "EntriesRefused")
    assert refused.cause == "multi_assets" and refused.reason
    health = await harness.service.api.health()
    assert health.account is not None and health.account.multi_assets and health.account.no_entries
    # The held position stays managed: its stop loss still sells.
    await fake.set_price(SYM, "89.50", mark="91.00")
    await until(lambda: harness.db_position(SYM) is None, what="the stop loss")
    assert harness.store.positions.list_closed()[-1].close_reason == "stop_loss"
    # Turned off in the app: entries are allowed again at the next round.
    fake.set_multi_assets_mode(False)
    await harness.service.api.sync(actor="test")
    assert ctx.block_reason("DOGEUSDT") is None and harness.engine.executor.entry_blocker("DOGEUSDT") is None
    assert _events(harness, "EntriesRefused")[-1].reason is None and ctx.no_entries == {}


async def test_an_exchange_without_account_config_is_checked_through_the_older_endpoints(harness: Harness) -> None:
    """A gateway or stand-in exchange that does not serve ``/fapi/v1/accountConfig`` (404): the position mode is
    read from ``positionSide/dual`` and the Multi-Assets mode from ``multiAssetsMargin``; trading is not refused for
    want of the newer endpoint."""
    fake = harness.fake
    fake.unserve("GET", "/fapi/v1/accountConfig")
    fake.set_position_mode(dual_side=True)
    await harness.start()
    assert not fake.hedge_mode and not harness.engine.ctx.halted
    assert [r.params["dualSidePosition"] for r in _posts(harness)] == ["false"]
    assert len([r for r in fake.requests if r.path == "/fapi/v1/accountConfig"]) == 1  # asked once, not again
    await fake.open_position_by_hand(SYM, "1.00", price="100.00")
    await harness.service.api.sync(actor="test")
    assert harness.assert_agree(SYM) is not None
    await until(lambda: len(harness.resting_stops(SYM)) == 1, what="the adopted position's backstop")
    assert all(r.code != -4061 for r in fake.requests)
    health = await harness.service.api.health()
    assert health.account is not None and (health.account.position_mode, health.account.error) == ("one-way", None)


async def test_multi_assets_mode_turned_on_in_the_app_stops_entries_within_seconds(harness: Harness) -> None:
    """The user stream's ACCOUNT_CONFIG_UPDATE prompts the account check at once, not at the next periodic
    reconcile (here an hour away)."""
    harness.strategy.write_text(
        harness.strategy.read_text().replace("reconcile_interval_s = 5", "reconcile_interval_s = 3600")
    )
    await harness.start()
    await until(lambda: harness.fake.ws_clients("private"), what="the user-data stream connected")
    executor = harness.engine.executor
    assert executor.entry_blocker("DOGEUSDT") is None
    harness.fake.set_multi_assets_mode(True)
    await until(lambda: executor.entry_blocker("DOGEUSDT") is not None, timeout=5, what="entries refused")
    (refused,) = _events(harness, "EntriesRefused")
    assert refused.cause == "multi_assets" and refused.reason
    harness.fake.set_multi_assets_mode(False)
    await until(lambda: executor.entry_blocker("DOGEUSDT") is None, timeout=5, what="entries allowed again")
