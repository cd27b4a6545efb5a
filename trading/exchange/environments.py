"""Which Binance USD-M environment the service talks to, and its base URLs.

* ``production``: real money (``https://fapi.binance.com``, ``wss://fstream.binance.com``).
* ``demo`` (``BINANCE_DEMO=true``): Binance's demo trading, play money on live market prices; keys are made at
  demo.binance.com. REST goes through ccxt's own demo table (``enable_demo_trading``: demo-fapi.binance.com);
  the streams use the demo stream host with the same 2026 routed paths as production.
* ``testnet`` (``BINANCE_TESTNET=true``): the older futures testnet. ccxt has declared it deprecated in favour of
  demo trading; it is kept, with a warning, while Binance still runs it.

``BINANCE_REST_URL`` / ``BINANCE_WS_URL`` override the hosts of any environment (a proxy, a local fake).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class BinanceEnv(StrEnum):
    PRODUCTION = "production"
    DEMO = "demo"
    TESTNET = "testnet"


REST_BASE: dict[BinanceEnv, str] = {
    BinanceEnv.PRODUCTION: "https://fapi.binance.com",
    BinanceEnv.DEMO: "https://demo-fapi.binance.com",
    BinanceEnv.TESTNET: "https://testnet.binancefuture.com",
}
WS_BASE: dict[BinanceEnv, str] = {
    BinanceEnv.PRODUCTION: "wss://fstream.binance.com",
    BinanceEnv.DEMO: "wss://demo-fstream.binance.com",
    BinanceEnv.TESTNET: "wss://fstream.binancefuture.com",
}
TESTNET_WARNING = (
    "BINANCE_TESTNET points at Binance's older futures testnet, which ccxt has deprecated in favour of demo "
    "trading; it may lack what production has (algo orders, the routed WebSocket paths). Prefer BINANCE_DEMO=true "
    "with a demo-trading API key from demo.binance.com."
)


class _EnvSettings(Protocol):
    binance_demo: bool
    binance_testnet: bool
    binance_rest_url: str | None
    binance_ws_url: str | None


def environment_of(settings: _EnvSettings) -> BinanceEnv:
    if settings.binance_demo:
        return BinanceEnv.DEMO
    if settings.binance_testnet:
        return BinanceEnv.TESTNET
    return BinanceEnv.PRODUCTION


def rest_base_url(settings: _EnvSettings) -> str:
    """Where REST requests go (for the log; the adapter builds its URL table from ccxt's)."""
    return settings.binance_rest_url or REST_BASE[environment_of(settings)]


def ws_base_url(settings: _EnvSettings) -> str:
    """The WebSocket root the streams append Binance's routed paths to."""
    return settings.binance_ws_url or WS_BASE[environment_of(settings)]
