"""A minimal, synchronous trading loop over a replay: the real signals and ladder, the simulated broker.

Not the service's engine (no journal, no locks, no asyncio): just enough to
check that the synthetic market gives the default strategy something to do
(entries, DCA fills, every kind of exit) and that the broker behaves as an
exchange under a real strategy (backstops, reduce-only sells, fees).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from trading.core import ladder
from trading.core.config import StrategyConfig
from trading.core.models import CloseAll, Dca, Enter, ExitReason, Fill, PositionState, Sell, SetPeak, Stage
from trading.core.signals import evaluate, evaluate_prefilter, runner_ma
from trading.exchange.base import KlineEvent, PriceEvent, RejectedError, Side
from trading.exchange.replay import MarketReplay
from trading.exchange.simbroker import SimBroker

FRAME_BARS = {"1m": 640, "3m": 640, "15m": 490, "1h": 30, "1d": 8}  # a little above what SPEC 2-3 read
HOUR_MS = 3_600_000


def entry_signal(replay: MarketReplay, symbol: str, cfg: StrategyConfig, at_ms: int) -> bool:
    """``evaluate(..., full=False).entry`` for the minute just played, building the other frames only when the
    1h pre-filter passes (what the scanner's fast path does)."""
    h1 = replay.frame(symbol, "1h", FRAME_BARS["1h"])
    ok, _ = evaluate_prefilter(h1, cfg.signals)
    if not ok:
        return False
    frames = {tf: replay.frame(symbol, tf, n) for tf, n in FRAME_BARS.items()}
    return evaluate(symbol, frames, cfg.signals, at_ms=at_ms, full=False).entry


@dataclass
class Journal:
    entries: list[tuple[str, int]] = field(default_factory=list)
    dca: list[tuple[str, str, int]] = field(default_factory=list)
    exits: Counter[str] = field(default_factory=Counter)
    first_exit_ms: dict[str, int] = field(default_factory=dict)


class StrategyDriver:
    def __init__(self, replay: MarketReplay, broker: SimBroker, cfg: StrategyConfig) -> None:
        assert replay.broker is broker, "the broker must see prices inside step() (exchange stops first)"
        self.replay = replay
        self.broker = broker
        self.cfg = cfg
        self.states: dict[str, PositionState] = {}
        self.backstops: dict[str, str] = {}
        self.cooldown_until: dict[str, int] = {}
        self.journal = Journal()
        self._n = 0
        for symbol in replay.symbols:
            broker.set_leverage(symbol, cfg.leverage)

    def _cid(self, symbol: str, what: str) -> str:
        self._n += 1
        return f"sdca-{symbol[:8]}-{what}-{self._n}"

    def run(self, minutes: int) -> Journal:
        for _ in range(minutes):
            events = self.replay.step()
            assert events is not None
            for ev in events:
                if isinstance(ev, PriceEvent) and ev.symbol in self.states:
                    self._on_price(ev.symbol, Decimal(ev.price), ev.event_time)
            closes = [ev for ev in events if isinstance(ev, KlineEvent)]
            for ev in closes:
                self._scan(ev.symbol, ev.kline.open_time, ev.event_time)
        return self.journal

    # ------------------------------------------------------------------ entries
    def _scan(self, symbol: str, at_ms: int, now: int) -> None:
        if symbol in self.states or self.cooldown_until.get(symbol, 0) > now:
            return
        if len(self.states) >= self.cfg.max_positions:
            return
        if not entry_signal(self.replay, symbol, self.cfg, at_ms):
            return
        rules = self.broker.markets[symbol].rules
        price = self.broker.last_price(symbol)
        assert price is not None
        action = ladder.entry_action(symbol, price, self.broker.wallet, self.cfg, rules)
        if not isinstance(action, Enter):
            return
        order = self.broker.market_order(symbol, Side.BUY, action.qty, client_order_id=self._cid(symbol, "enter"))
        self.states[symbol] = ladder.new_position(symbol, Fill("BUY", order.avg_price, order.filled_qty, order.fee))
        self.journal.entries.append((symbol, now))
        self._sync_backstop(symbol)

    # ------------------------------------------------------------------ the ladder
    def _on_price(self, symbol: str, price: Decimal, now: int) -> None:
        if symbol not in self.broker.positions:  # the exchange-side backstop closed it
            self._closed(symbol, ExitReason.BACKSTOP, now)
            return
        state = self.states[symbol]
        rules = self.broker.markets[symbol].rules
        runner = None
        if state.half_taken:
            runner = runner_ma(self.replay.frame(symbol, "3m", 30), self.cfg.runner_ma_fast, self.cfg.runner_ma_slow)
        action = ladder.decide(state, price, cfg=self.cfg, rules=rules, balance=self.broker.wallet, runner=runner)
        if isinstance(action, SetPeak):
            self.states[symbol] = ladder.with_peak(state, action.peak)
        elif isinstance(action, Dca):
            order = self.broker.market_order(symbol, Side.BUY, action.qty, client_order_id=self._cid(symbol, "dca"))
            fill = Fill("BUY", order.avg_price, order.filled_qty, order.fee, stage=action.level)
            self.states[symbol] = ladder.apply_fill(state, fill)
            self.journal.dca.append((symbol, action.level.value, now))
            self._sync_backstop(symbol)
        elif isinstance(action, Sell | CloseAll):
            qty = min(action.qty, self.broker.positions[symbol].qty)
            order = self.broker.market_order(
                symbol, Side.SELL, qty, client_order_id=self._cid(symbol, "exit"), reduce_only=True
            )
            fill = Fill("SELL", order.avg_price, order.filled_qty, order.fee, reason=action.reason)
            new = ladder.apply_fill(state, fill)
            self.journal.exits[action.reason.value] += 1
            self.journal.first_exit_ms.setdefault(action.reason.value, now)
            if new.qty <= 0 or symbol not in self.broker.positions:
                self._closed(symbol, action.reason, now, counted=True)
            else:
                self.states[symbol] = new
                self._sync_backstop(symbol)

    def _closed(self, symbol: str, reason: ExitReason, now: int, *, counted: bool = False) -> None:
        if not counted:
            self.journal.exits[reason.value] += 1
            self.journal.first_exit_ms.setdefault(reason.value, now)
        self.states.pop(symbol, None)
        old = self.backstops.pop(symbol, None)
        if old is not None and any(a.client_algo_id == old for a in self.broker.open_algo_orders(symbol)):
            self.broker.cancel_algo(symbol, old)  # a closePosition stop outlives the position: cancel it
        hours = self.cfg.cooldown_after_stop_h if reason.is_stop else self.cfg.cooldown_after_exit_h
        self.cooldown_until[symbol] = now + int(hours * HOUR_MS)

    def _sync_backstop(self, symbol: str) -> None:
        state = self.states[symbol]
        rules = self.broker.markets[symbol].rules
        old = self.backstops.pop(symbol, None)
        if old is not None and any(a.client_algo_id == old for a in self.broker.open_algo_orders(symbol)):
            self.broker.cancel_algo(symbol, old)
        try:
            cid = self._cid(symbol, "stop")
            self.broker.place_stop_close(symbol, ladder.backstop_price(state, self.cfg, rules), client_algo_id=cid)
            self.backstops[symbol] = cid
        except RejectedError:
            pass  # would trigger at once: the service's own stop acts on the next price


__all__ = ["FRAME_BARS", "Journal", "Stage", "StrategyDriver", "entry_signal"]
