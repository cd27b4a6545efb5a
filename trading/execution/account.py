"""The account check: position mode, Multi-Assets mode and ``canTrade``, at start and at every reconcile.

What the settings mean for trading is ``trading.core.account``'s policy; this applies it: reads the
account's configuration (``accountConfig``, weight 5), switches a hedge-mode account with nothing open to
one-way mode, and otherwise refuses to trade (``ctx.set_halt``) or to enter (``ctx.set_no_entries``),
saying why once per change in the log, the audit and an alert. The last reading is kept for ``/health``.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from trading.context import EngineContext
from trading.core.account import (
    UNREAD,
    AccountAction,
    AccountConfig,
    AccountVerdict,
    OpenOnAccount,
    PositionMode,
    hedge_refusal,
    judge,
)
from trading.events import AccountModeSwitched, EntriesRefused, TradingHalted
from trading.exchange.base import ExchangeError, RejectedError
from trading.views import AccountHealth, SyncItem

log = logging.getLogger("surgedca.account")

SOURCE = "account_mode"  # its key in ctx.halts and ctx.no_entries (and the halt's cause in words for the alerts)


class AccountGuard:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.config: AccountConfig | None = None  # the last reading (None: never read)
        self.checked_ms: int | None = None
        self.error: str | None = None  # why the last reading failed (None: it did not)

    @property
    def refusal(self) -> str | None:
        """Why the account's settings forbid sending anything now (None: they allow it)."""
        return self.ctx.halts.get(SOURCE)

    def health(self) -> AccountHealth | None:
        if self.config is None and self.error is None:
            return None
        c = self.config
        return AccountHealth(
            position_mode=c.position_mode.value if c else None,
            multi_assets=c.multi_assets if c else None,
            can_trade=c.can_trade if c else None,
            checked_ms=self.checked_ms,
            refusal=self.refusal,
            no_entries=self.ctx.no_entries.get(SOURCE),
            error=self.error,
        )

    async def check(self) -> list[SyncItem]:
        """Read the settings and act on them. A failed reading keeps the last verdict (a passing outage must not
        stop trading), except before the first one: then nothing is sent until the settings are known."""
        ctx = self.ctx
        try:
            config = await ctx.port.fetch_account_config()
        except ExchangeError as exc:
            self.error = str(exc)[:300]
            log.warning("account settings unavailable: %r", exc)
            if self.config is None and self._refuse(UNREAD.format(error=self.error)):
                return [SyncItem("account_refused", None, "account settings unreadable", "trading refused")]
            return []
        self.error = None
        items: list[SyncItem] = []
        open_now = None
        if config.position_mode is PositionMode.HEDGE and config.can_trade:
            open_now = await self._open_now()
        verdict = judge(config, open_now)
        if verdict.action is AccountAction.SWITCH_TO_ONE_WAY:
            try:
                await ctx.port.set_position_mode(PositionMode.ONE_WAY)
            except RejectedError as exc:  # something opened meanwhile (-4067/-4068)
                said = str(getattr(exc, "exchange_msg", "") or exc)
                verdict = AccountVerdict(AccountAction.REFUSE, hedge_refusal(open_now, said), verdict.no_entries)
            else:
                config = replace(config, position_mode=PositionMode.ONE_WAY)
                items.append(self._switched())
        self.config, self.checked_ms = config, ctx.clock.now_ms()
        if verdict.action is AccountAction.REFUSE:
            assert verdict.refusal is not None
            if self._refuse(verdict.refusal):
                items.append(SyncItem("account_refused", None, verdict.refusal, "trading refused"))
        elif self._resume():
            items.append(SyncItem("account_ok", None, "the account's settings allow trading", "trading resumed"))
        self._entries(verdict.no_entries)
        return items

    async def _open_now(self) -> OpenOnAccount | None:
        """What is open on the account (read in hedge mode only). The positions first (weight 5): while one is open
        the mode cannot change, so the open orders (weight 40 each list) are read only when none is."""
        port = self.ctx.port
        try:
            positions = sum(1 for p in await port.fetch_positions() if p.qty != 0)
            if positions:
                return OpenOnAccount(positions, None)
            orders = len(await port.fetch_open_orders()) + len(await port.fetch_open_algo_orders())
        except ExchangeError as exc:
            log.warning("what is open on the hedge-mode account could not be read: %r", exc)
            return None
        return OpenOnAccount(0, orders)

    def _switched(self) -> SyncItem:
        ctx = self.ctx
        now = ctx.clock.now_ms()
        log.warning(
            "the account was in hedge mode with nothing open: switched it to one-way mode (SurgeDCA trades in "
            "one-way mode only)"
        )
        ctx.store.audit.add(
            "reconciler", "position_mode", before={"mode": "hedge"}, after={"mode": "one-way"}, ts_ms=now
        )
        ctx.notify(AccountModeSwitched(ts_ms=now, before=PositionMode.HEDGE.value, after=PositionMode.ONE_WAY.value))
        return SyncItem("account_switched", None, "hedge mode with nothing open", "switched to one-way mode")

    def _refuse(self, reason: str) -> bool:
        ctx = self.ctx
        if not ctx.set_halt(SOURCE, reason):
            return False
        now = ctx.clock.now_ms()
        log.error("trading refused: %s", reason)
        ctx.store.audit.add("reconciler", "halt", after={"source": SOURCE, "reason": reason}, ts_ms=now)
        ctx.notify(_halt_event(now, reason))
        return True

    def _resume(self) -> bool:
        ctx = self.ctx
        before = ctx.halts.get(SOURCE)
        if not ctx.set_halt(SOURCE, None):
            return False
        now = ctx.clock.now_ms()
        log.warning("the account's settings allow trading again")
        ctx.store.audit.add("reconciler", "resume_trading", before={"source": SOURCE, "reason": before}, ts_ms=now)
        if not ctx.halted:
            ctx.notify(_halt_event(now, None))
        return True

    def _entries(self, reason: str | None) -> None:
        ctx = self.ctx
        if not ctx.set_no_entries(SOURCE, reason):
            return
        now = ctx.clock.now_ms()
        if reason is not None:
            log.warning("no new entries: %s", reason)
        else:
            log.warning("new entries allowed again: the account's settings allow them")
        ctx.store.audit.add("reconciler", "entries", after={"source": SOURCE, "refused": reason}, ts_ms=now)
        ctx.notify(EntriesRefused(ts_ms=now, reason=reason))


def _halt_event(now_ms: int, reason: str | None) -> TradingHalted:
    """Trading refused for the account's settings (``reason``), or allowed again (None)."""
    return TradingHalted(
        ts_ms=now_ms,
        cause=SOURCE,
        detail=reason or "the account's settings allow trading again",
        halted=reason is not None,
    )
