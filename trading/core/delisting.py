"""Delistings and settlement: which contracts leave the universe, and when a held one must be closed.

When Binance announces a delisting it sets the perpetual's ``deliveryDate`` in exchangeInfo to the settlement
time (otherwise it sits in the year 2100) and later moves its ``status`` away from ``TRADING``. Coins about to
be delisted often pump and rank high by volume, so the scanner must not enter them, and a position still held
at settlement would be force-settled by the exchange at its price. Pure: the caller passes the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from trading.core.config import StrategyConfig

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
TRADING = "TRADING"


class ListedContract(Protocol):
    """What exchangeInfo says about a contract (``trading.exchange.base.Market`` has these)."""

    @property
    def status(self) -> str: ...

    @property
    def delivery_ms(self) -> int | None: ...


def delivery_within_guard(contract: ListedContract, now_ms: int, cfg: StrategyConfig) -> bool:
    """The contract settles within ``delist_guard_days`` (or already did)."""
    delivery = contract.delivery_ms
    return delivery is not None and delivery - now_ms <= cfg.delist_guard_days * DAY_MS


def universe_exclusion(contract: ListedContract, now_ms: int, cfg: StrategyConfig) -> str | None:
    """Why the contract must stay out of the universe (None: it may be scanned)."""
    if contract.status != TRADING:
        return f"status {contract.status or 'unknown'}"
    if delivery_within_guard(contract, now_ms, cfg):
        return "delisting announced"
    return None


@dataclass(frozen=True, slots=True)
class DelistingPlan:
    """A held contract that is being delisted.

    ``close_at_ms`` is when the position must be closed (reason ``delisting``): ``exit_before_delist_h`` before
    ``delivery_ms``, or now when the contract no longer trades normally (``delivery_ms`` may then be unknown).
    ``due`` says whether that moment has come.
    """

    delivery_ms: int | None
    close_at_ms: int
    due: bool
    cause: str  # "delisting announced" | "status SETTLING" ...


def delisting_due(contract: ListedContract, now_ms: int, cfg: StrategyConfig) -> DelistingPlan | None:
    """For a held symbol: None when its contract is not being delisted; else when to close it and whether now.

    The alert is due as soon as a plan exists (the delivery falls within ``delist_guard_days``, or the status left
    ``TRADING``); the close when ``due`` is true.
    """
    delivery = contract.delivery_ms
    if contract.status != TRADING:
        # Settling, closed or paused: the exchange will settle the position; get out while reduce-only still works.
        return DelistingPlan(delivery, now_ms, True, f"status {contract.status or 'unknown'}")
    if delivery is None or not delivery_within_guard(contract, now_ms, cfg):
        return None
    close_at = delivery - round(cfg.exit_before_delist_h * HOUR_MS)
    return DelistingPlan(delivery, close_at, now_ms >= close_at, "delisting announced")
