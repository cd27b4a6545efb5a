"""The account policy: which settings SurgeDCA trades in, and what it does about the others (pure)."""

from __future__ import annotations

from trading.core.account import (
    CANNOT_TRADE,
    MULTI_ASSETS,
    AccountAction,
    AccountConfig,
    OpenOnAccount,
    PositionMode,
    hedge_refusal,
    judge,
)

ONE_WAY, HEDGE = PositionMode.ONE_WAY, PositionMode.HEDGE
NOTHING = OpenOnAccount(0, 0)


def test_one_way_single_asset_trades() -> None:
    verdict = judge(AccountConfig(ONE_WAY, multi_assets=False), None)
    assert (verdict.action, verdict.refusal, verdict.no_entries) == (AccountAction.TRADE, None, None)


def test_hedge_with_nothing_open_is_switched_and_with_anything_open_refused() -> None:
    assert judge(AccountConfig(HEDGE, False), NOTHING).action is AccountAction.SWITCH_TO_ONE_WAY
    for open_now in (OpenOnAccount(1, None), OpenOnAccount(0, 1), OpenOnAccount(2, 3)):
        verdict = judge(AccountConfig(HEDGE, False), open_now)
        assert verdict.action is AccountAction.REFUSE and verdict.refusal == hedge_refusal(open_now)
    assert "1 position and 0 open orders exist" in hedge_refusal(OpenOnAccount(1, 0))
    assert "2 positions and 1 open order exist" in hedge_refusal(OpenOnAccount(2, 1))
    assert "and 1 position is open:" in hedge_refusal(OpenOnAccount(1, None))  # orders not read: no switch anyway
    assert "and 3 positions are open:" in hedge_refusal(OpenOnAccount(3, None))
    # What is open could not be read: never switch blindly.
    unknown = judge(AccountConfig(HEDGE, False), None)
    assert unknown.action is AccountAction.REFUSE and "could not be read" in (unknown.refusal or "")
    assert "Binance refused the switch: -4068" in hedge_refusal(NOTHING, "-4068")


def test_an_account_that_may_not_trade_is_refused_whatever_its_mode() -> None:
    for mode in (ONE_WAY, HEDGE):
        verdict = judge(AccountConfig(mode, False, can_trade=False), NOTHING)
        assert (verdict.action, verdict.refusal) == (AccountAction.REFUSE, CANNOT_TRADE)


def test_multi_assets_stops_entries_only() -> None:
    verdict = judge(AccountConfig(ONE_WAY, multi_assets=True), None)
    assert (verdict.action, verdict.refusal, verdict.no_entries) == (AccountAction.TRADE, None, MULTI_ASSETS)
    switched = judge(AccountConfig(HEDGE, multi_assets=True), NOTHING)
    assert (switched.action, switched.no_entries) == (AccountAction.SWITCH_TO_ONE_WAY, MULTI_ASSETS)
