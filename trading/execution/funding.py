"""Funding payments into the ledger: the exchange's income history is the record, its FUNDING_FEE updates the cue.

Binance's ACCOUNT_UPDATE for a funding payment on a cross-margin position carries the balance only ("no
position P message"): it says that funding was paid, not for which symbol. So each payment is read from the
income history (``GET /fapi/v1/income?incomeType=FUNDING_FEE``: symbol, amount, time and ``tranId``, the
payment's identity) and recorded by the ledger on the position that held the symbol at that time, once per
``tranId``. The look-up happens

- after a FUNDING_FEE account update: about a second later live (coalesced: every held symbol pays at the
  same funding time), again after 5 s and 30 s while the payment is not listed yet; in place in a replay;
- in the reconciler (``catch_up``): at start-up, on ``/sync``, and when a funding time of a symbol held since
  its last look has passed (plus ``CHECK_GRACE_MS`` for Binance to write its rows): the payments whose event
  was lost while the user stream was down. A symbol's funding interval comes from its last two payments
  (8 h until two are known; a missed 4 h or 1 h payment then waits for the next 8 h look at worst, and is
  never lost, since every look reads from where the last one ended).

Each look-up reads from the previous one's end minus ``LOOKBACK_MS`` (a row Binance writes late is still
found; already recorded ones are skipped) to now: one request of weight 30 for every symbol at once. One code
path for live, paper, sim and the backtest: the simulated broker answers the same look-up.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from trading.context import EngineContext
from trading.exchange.base import FUNDING_FEE, INCOME_MAX_ROWS, AccountUpdate, ExchangeError
from trading.exchange.errors import unserved
from trading.execution.ledger import FundingRecorded, PositionLedger
from trading.runner import WorkRunner
from trading.views import SyncItem

log = logging.getLogger("surgedca.funding")

HOUR_MS = 3_600_000
DEFAULT_INTERVAL_MS = 8 * HOUR_MS  # Binance's usual interval: 00:00, 08:00 and 16:00 UTC
LOOKBACK_MS = HOUR_MS  # each look-up starts this long before the last one ended
RETENTION_MS = 90 * 24 * HOUR_MS - HOUR_MS  # "Income history only contains data for the last three months"
CHECK_GRACE_MS = 30_000  # the reconciler looks this long after a funding time (Binance writes the rows first)
STREAM_DELAYS_S = (1.0, 5.0, 30.0)  # look-ups after a FUNDING_FEE update until its payment is listed
COVERS_MS = 10 * 60_000  # a listed payment this close to an update's time is the one the update announced
WATERMARK_KEY = "funding_checked_ms"  # system_state: where the last complete look-up ended
MAX_IGNORED_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class FundingSync:
    """One look-up: what was recorded now, and the times of every payment listed (ours or not)."""

    recorded: tuple[FundingRecorded, ...]
    listed_ms: tuple[int, ...]

    def covers(self, event_ms: int) -> bool:
        return any(abs(t - event_ms) <= COVERS_MS for t in self.listed_ms)


class FundingTracker:
    def __init__(self, ctx: EngineContext, ledger: PositionLedger, runner: WorkRunner) -> None:
        self.ctx = ctx
        self.ledger = ledger
        self.runner = runner
        self.last_check_ms = 0  # the reconciler's last look (0: none yet)
        self._lock = asyncio.Lock()
        self._waiting: dict[int, int] = {}  # FUNDING_FEE update time -> look-ups done for it
        self._timer = False
        self._ignored: set[str] = set()  # payments that are not ours (logged once)

    @property
    def looking(self) -> bool:
        """A look-up is running now."""
        return self._lock.locked()

    # ------------------------------------------------------------------ the user stream's cue
    async def on_account_update(self, ev: AccountUpdate) -> None:
        if ev.reason != FUNDING_FEE:
            return
        log.info("funding update: balance change %s at %d", ev.balance_change, ev.event_time)
        if self.runner.inline:
            await self.sync(actor="stream")
            return
        self._waiting.setdefault(ev.event_time, 0)
        self._wake(STREAM_DELAYS_S[0])

    def _wake(self, delay_s: float) -> None:
        if self._timer or self.ctx.stopping:
            return
        self._timer = True
        self.runner.later(delay_s, self._after_update)

    async def _after_update(self) -> None:
        self._timer = False
        try:
            result = await self.sync(actor="stream")
        except ExchangeError as exc:
            log.warning("funding look-up after a FUNDING_FEE update failed: %r", exc)
            result = FundingSync((), ())
        still: dict[int, int] = {}
        for event_ms, tries in self._waiting.items():
            if result.covers(event_ms):
                continue
            if tries + 1 < len(STREAM_DELAYS_S):
                still[event_ms] = tries + 1
            else:
                log.warning(
                    "the funding payment announced at %d is not in the income history yet; the reconciler "
                    "looks again after the next funding time",
                    event_ms,
                )
        self._waiting = still
        if still:
            self._wake(STREAM_DELAYS_S[min(still.values())])

    # ------------------------------------------------------------------ the reconciler's look
    async def catch_up(self, *, force: bool = False) -> list[SyncItem]:
        """The reconciler's call: look up the income history when a funding time passed since the last look
        (always when ``force``: start-up, ``/sync``). Payments found now were missed on the stream."""
        now = self.ctx.clock.now_ms()
        if not force and now < self.next_check_ms():
            return []
        try:
            result = await self.sync(actor="reconciler")
        except ExchangeError as exc:  # the next round tries again: the check is still due
            if unserved(exc):  # not a passing failure: ask again after the next funding time, not every round
                log.warning("the income history is not served here (%r): funding payments are not recorded", exc)
                self.last_check_ms = now
            else:
                log.warning("funding look-up failed: %r", exc)
            return []
        self.last_check_ms = now
        return [
            SyncItem(
                "funding_recorded",
                r.symbol,
                f"funding {r.amount:+f} USDT at {_iso(r.ts_ms)} (position {r.position_id}) missing",
                "recorded" + (" (after its close: the trade's result corrected)" if r.after_close else ""),
            )
            for r in result.recorded
        ]

    def next_check_ms(self) -> int:
        """When the reconciler looks next: the first funding time of a symbol held since its last look, after
        that look, plus the grace. Nothing held: never."""
        ctx = self.ctx
        symbols = set(ctx.book.symbols())
        if not self.last_check_ms:  # never looked (the start-up look failed): at once while something is held
            return 0 if symbols else 2**62
        symbols |= {p.symbol for p in ctx.store.positions.list_closed(since_ms=self.last_check_ms)}
        base = self.last_check_ms - CHECK_GRACE_MS
        due = [(base // i + 1) * i + CHECK_GRACE_MS for i in (self.interval_ms(s) for s in symbols)]
        return min(due, default=2**62)

    def interval_ms(self, symbol: str) -> int:
        """The symbol's funding interval, from the gap between its last two payments (8 h until then)."""
        times = self.ctx.store.funding.latest_times(symbol, 2)
        if len(times) == 2:
            gap = times[0] - times[1]
            hours = round(gap / HOUR_MS)
            if 1 <= hours <= 8 and abs(gap - hours * HOUR_MS) < 5 * 60_000:
                return hours * HOUR_MS
        return DEFAULT_INTERVAL_MS

    # ------------------------------------------------------------------ the look-up
    async def sync(self, *, actor: str) -> FundingSync:
        """Read the income history from the last look-up's end (minus ``LOOKBACK_MS``) to now and record every
        payment of ours not recorded yet. Raises ``ExchangeError`` when the exchange does not answer."""
        ctx = self.ctx
        async with self._lock:
            now = ctx.clock.now_ms()
            start = self._window_start(now)
            rows = await ctx.port.fetch_funding_income(start, now)
            recorded: list[FundingRecorded] = []
            for row in sorted(rows, key=lambda r: (r.time_ms, r.tran_id)):
                if row.tran_id in self._ignored:
                    continue
                if row.asset != "USDT":  # the service trades USDT-margined symbols only
                    self._ignore(row.tran_id)
                    log.info("funding %s %s of %s ignored: not USDT", row.amount, row.asset, row.symbol)
                    continue
                done = self.ledger.record_funding(
                    row.symbol, row.amount, row.time_ms, row.tran_id, actor=actor, asset=row.asset
                )
                if done is not None:
                    recorded.append(done)
                elif not ctx.store.funding.exists(row.tran_id):
                    self._ignore(row.tran_id)  # not ours: the ledger said so once
            # A look-up cut at its last page ends at its last row: the next one reads on from there.
            end = rows[-1].time_ms if len(rows) >= INCOME_MAX_ROWS else now
            ctx.store.state.set(WATERMARK_KEY, end, now)
            return FundingSync(tuple(recorded), tuple(r.time_ms for r in rows))

    def _window_start(self, now: int) -> int:
        mark = self.ctx.store.state.get(WATERMARK_KEY)
        if mark is not None:
            start = int(mark) - LOOKBACK_MS
        else:  # the first look-up of this database: since the oldest open position was created
            created = [p.created_at_ms for p in self.ctx.store.positions.list_open()]
            start = min(created, default=now) - LOOKBACK_MS
        return max(min(start, now), now - RETENTION_MS)

    def _ignore(self, key: str) -> None:
        if len(self._ignored) >= MAX_IGNORED_KEYS:
            self._ignored.clear()
        self._ignored.add(key)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
