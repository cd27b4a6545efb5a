"""Static proof that every adapter is what the engine is given: mypy checks the assignments below.

The engine sees an adapter only through the protocols of ``base`` (``ExchangeBundle``), so a method whose
name or signature drifts from the port fails ``make test`` (mypy) here, naming the adapter, instead of
failing at run time in one mode only. Nothing imports this module; it costs nothing at run time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trading.exchange.base import ExchangePort, ListenKeyAPI, MarketStream, UserStream
    from trading.exchange.ccxt_adapter import CcxtBinanceAdapter
    from trading.exchange.paper import PaperExchange, PaperMarketStream
    from trading.exchange.sim import SimExchange, SimMarketStream, SimUserStream
    from trading.exchange.streams import BinanceMarketStream, BinanceUserStream

    # REST ports: offline replay, live data with simulated fills, the real exchange.
    sim_port: type[ExchangePort] = SimExchange
    paper_port: type[ExchangePort] = PaperExchange
    live_port: type[ExchangePort] = CcxtBinanceAdapter
    live_listen_keys: type[ListenKeyAPI] = CcxtBinanceAdapter

    # Streams (paper trades on the live market stream, its fills come from the simulated user stream).
    sim_market: type[MarketStream] = SimMarketStream
    sim_user: type[UserStream] = SimUserStream
    paper_market: type[MarketStream] = PaperMarketStream
    live_market: type[MarketStream] = BinanceMarketStream
    live_user: type[UserStream] = BinanceUserStream
