"""Whether the account's settings let SurgeDCA trade, and what to do when they do not (pure policy).

SurgeDCA sends one-way orders only (no ``positionSide``; ``reduceOnly`` on exits): on a hedge-mode account
Binance refuses every one of them (-4061), backstops included, and a hedge position could not be exited.
So, checked at start and at every reconcile:

- hedge mode with nothing open (no position, no open order or algo order): the account is switched to
  one-way mode (Binance allows it only then), and trading goes on;
- hedge mode with something open: trading is refused (nothing is sent, not even a backstop) until the
  user closes it or switches the account; the service stays up and says why;
- ``canTrade`` false: trading is refused;
- Multi-Assets mode: margin is shared with the account's other assets, so sizes taken from the USDT wallet
  balance and the liquidation distances of the risk table no longer describe the account (and isolated
  margin is not allowed at all): no new entries; positions held stay managed (stops, exits, DCA).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class PositionMode(StrEnum):
    ONE_WAY = "one-way"  # one signed position per symbol (positionSide BOTH): the only mode SurgeDCA trades in
    HEDGE = "hedge"  # a LONG and a SHORT position per symbol: every order must name its positionSide


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """What the account's settings are (Binance ``GET /fapi/v1/accountConfig``)."""

    position_mode: PositionMode
    multi_assets: bool  # Multi-Assets mode: margin shared across assets (USDT is then not the whole collateral)
    can_trade: bool = True


@dataclass(frozen=True, slots=True)
class OpenOnAccount:
    """What is open on the whole account (any symbol, any side): it decides whether the mode may change."""

    positions: int
    orders: int | None  # open orders and open algo (conditional) orders; None: not counted (a position is open)

    @property
    def nothing(self) -> bool:
        return self.positions == 0 and self.orders == 0


class AccountAction(StrEnum):
    TRADE = "trade"
    SWITCH_TO_ONE_WAY = "switch_to_one_way"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True)
class AccountVerdict:
    action: AccountAction
    refusal: str | None = None  # REFUSE: why nothing may be sent
    no_entries: str | None = None  # why no new entry may be made (positions held stay managed)


def judge(config: AccountConfig, open_now: OpenOnAccount | None) -> AccountVerdict:
    """What the service does with an account in this configuration. ``open_now`` is needed (and read by the
    caller) only in hedge mode; None there means it could not be read, so the mode is left alone."""
    no_entries = MULTI_ASSETS if config.multi_assets else None
    if not config.can_trade:
        return AccountVerdict(AccountAction.REFUSE, CANNOT_TRADE, no_entries)
    if config.position_mode is PositionMode.ONE_WAY:
        return AccountVerdict(AccountAction.TRADE, None, no_entries)
    if open_now is not None and open_now.nothing:
        return AccountVerdict(AccountAction.SWITCH_TO_ONE_WAY, None, no_entries)
    return AccountVerdict(AccountAction.REFUSE, hedge_refusal(open_now), no_entries)


def hedge_refusal(open_now: OpenOnAccount | None, exchange_said: str | None = None) -> str:
    if open_now is None:
        what = "what is open on it could not be read"
    elif open_now.orders is None:
        what = f"{_count(open_now.positions, 'position')} {'is' if open_now.positions == 1 else 'are'} open"
    else:
        what = f"{_count(open_now.positions, 'position')} and {_count(open_now.orders, 'open order')} exist"
    if exchange_said:
        what += f" (Binance refused the switch: {exchange_said})"
    return (
        f"the account is in hedge mode and {what}: SurgeDCA trades in one-way mode only, so it sends no order "
        "until everything is closed (then it switches the account to one-way mode itself) or you switch the "
        "account to one-way mode in the Binance app"
    )


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


CANNOT_TRADE = (
    "Binance says this account may not trade futures now (accountConfig canTrade = false): check the account and "
    "the API key's futures permission; nothing is sent meanwhile"
)
MULTI_ASSETS = (
    "Multi-Assets mode is on: margin is shared with the account's other assets, so sizes taken from the USDT "
    "balance and the liquidation estimates no longer hold; no new entries (positions held stay managed) until "
    "it is turned off in the Binance app"
)
UNREAD = "the account's settings (position mode) could not be read yet ({error}); nothing is sent until they are"
