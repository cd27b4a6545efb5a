"""The synthetic market gives the default strategy (real signals, real ladder) something to trade, early."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from tests.integration.sim.strategy_driver import StrategyDriver, entry_signal
from trading.core.config import DEFAULT_CONFIG
from trading.exchange.replay import MarketReplay
from trading.exchange.simbroker import SimBroker
from trading.exchange.synthetic import SyntheticMarket


def count_entries(seed: int, hours: int) -> list[tuple[str, int]]:
    """(symbol, minute after the warm-up) at which the real evaluator says "enter"."""
    replay = MarketReplay.synthetic(seed)
    hits = []
    for minute in range(hours * 60):
        assert replay.step() is not None
        at = replay.cursor_ms - 60_000
        hits.extend((symbol, minute) for symbol in replay.symbols if entry_signal(replay, symbol, DEFAULT_CONFIG, at))
    return hits


def test_default_seed_has_entries_in_the_first_12_simulated_hours() -> None:
    hits = count_entries(7, 12)
    symbols = {s for s, _ in hits}
    assert len(hits) >= 3 and len(symbols) >= 3
    assert min(m for _, m in hits) < 60  # something to see in the first simulated hour


@pytest.mark.parametrize("seed", [1, 2])
def test_other_seeds_have_entries_too(seed: int) -> None:
    assert len({s for s, _ in count_entries(seed, 4)}) >= 2


def test_default_strategy_sees_entries_dca_and_every_kind_of_exit_within_14_hours() -> None:
    synth = SyntheticMarket(7)
    broker = SimBroker(None, markets=synth.markets(), balance=D(1000))
    replay = MarketReplay.synthetic(7, broker=broker, market=synth)
    journal = StrategyDriver(replay, broker, DEFAULT_CONFIG).run(14 * 60)
    assert len(journal.entries) >= 8
    levels = {level for _, level, _ in journal.dca}
    assert levels == {"first_dca", "second_dca"}
    exits = set(journal.exits)
    assert exits & {"stop_loss", "backstop"}
    assert {"recovery_first_dca", "recovery_second_dca", "take_half"} <= exits
    assert exits & {"trailing_stop", "dead_cross"}  # the runner's exit
    # the broker's books balance exactly: wallet = start + realised PnL - fees, over every trade
    trades = [t for symbol in replay.symbols for t in broker.trades(symbol)]
    assert broker.wallet == D(1000) + sum(t.realized_pnl for t in trades) - sum(t.fee for t in trades)
