"""Request weights of the USD-M endpoints the fake serves, the per-minute IP weight counter, and the
account's order-count limiters (X-MBX-ORDER-COUNT-10S / -1M)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from tests.fakes.binance.errors import BinanceError, too_many_orders
from tests.fakes.binance.klines import kline_weight

# (method, path) -> (weight with symbol, weight without symbol); Binance's published figures
_WEIGHTS: dict[tuple[str, str], tuple[int, int]] = {
    ("GET", "/fapi/v1/ping"): (1, 1),
    ("GET", "/fapi/v1/time"): (1, 1),
    ("GET", "/fapi/v1/exchangeInfo"): (1, 1),
    ("GET", "/fapi/v1/ticker/24hr"): (1, 40),
    ("GET", "/fapi/v1/ticker/price"): (1, 2),
    ("GET", "/fapi/v2/ticker/price"): (1, 2),
    ("GET", "/fapi/v1/ticker/bookTicker"): (2, 5),
    ("GET", "/fapi/v1/premiumIndex"): (1, 10),
    ("GET", "/fapi/v1/depth"): (2, 2),
    ("GET", "/fapi/v2/account"): (5, 5),
    ("GET", "/fapi/v3/account"): (5, 5),
    ("GET", "/fapi/v2/balance"): (5, 5),
    ("GET", "/fapi/v3/balance"): (5, 5),
    ("GET", "/fapi/v2/positionRisk"): (5, 5),
    ("GET", "/fapi/v3/positionRisk"): (5, 5),
    ("GET", "/fapi/v1/openOrders"): (1, 40),
    ("GET", "/fapi/v1/openOrder"): (1, 1),
    ("GET", "/fapi/v1/order"): (1, 1),
    ("GET", "/fapi/v1/allOrders"): (5, 5),
    ("GET", "/fapi/v1/userTrades"): (5, 5),
    ("POST", "/fapi/v1/order"): (0, 0),  # orders count on the order-rate limit, not the IP weight
    ("DELETE", "/fapi/v1/order"): (1, 1),
    ("DELETE", "/fapi/v1/allOpenOrders"): (1, 1),
    ("POST", "/fapi/v1/algoOrder"): (0, 0),
    ("GET", "/fapi/v1/algoOrder"): (1, 1),
    ("DELETE", "/fapi/v1/algoOrder"): (1, 1),
    ("DELETE", "/fapi/v1/algoOpenOrders"): (1, 1),
    ("GET", "/fapi/v1/openAlgoOrders"): (1, 40),
    ("GET", "/fapi/v1/allAlgoOrders"): (5, 5),
    ("POST", "/fapi/v1/leverage"): (1, 1),
    ("POST", "/fapi/v1/marginType"): (1, 1),
    ("GET", "/fapi/v1/leverageBracket"): (1, 1),
    ("GET", "/fapi/v1/symbolConfig"): (5, 5),
    ("GET", "/fapi/v1/commissionRate"): (20, 20),
    ("GET", "/fapi/v1/positionSide/dual"): (30, 30),
    ("POST", "/fapi/v1/positionSide/dual"): (1, 1),
    ("GET", "/fapi/v1/multiAssetsMargin"): (30, 30),
    ("POST", "/fapi/v1/multiAssetsMargin"): (1, 1),
    ("GET", "/fapi/v1/accountConfig"): (5, 5),
    ("GET", "/fapi/v1/income"): (30, 30),
    ("GET", "/fapi/v1/forceOrders"): (20, 50),
    ("GET", "/fapi/v1/fundingRate"): (0, 0),  # its own 500 / 5 min / IP budget, shared with fundingInfo
    ("GET", "/fapi/v1/fundingInfo"): (0, 0),
    ("POST", "/fapi/v1/listenKey"): (1, 1),
    ("PUT", "/fapi/v1/listenKey"): (1, 1),
    ("DELETE", "/fapi/v1/listenKey"): (1, 1),
}

# Endpoints that count on the account's order-rate limiters. New Algo Order joined them in 2026
# (nautilus_trader#4395, the Binance derivatives change log); its IP weight stays 0.
ORDER_ENDPOINTS = frozenset({("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")})
ORDER_LIMIT_10S, ORDER_LIMIT_1M = 300, 1200  # exchangeInfo rateLimits ORDERS (real samples)


def request_weight(method: str, path: str, params: dict[str, str]) -> int:
    if method == "GET" and path == "/fapi/v1/klines":
        raw = params.get("limit", "500")
        return kline_weight(int(raw)) if raw.isdigit() else 1
    with_symbol, without_symbol = _WEIGHTS.get((method, path), (1, 1))
    return with_symbol if params.get("symbol") else without_symbol


class WeightCounter:
    """Used weight in the current clock minute (Binance resets it on the minute)."""

    def __init__(self, clock: Callable[[], int], limit: int) -> None:
        self.clock = clock
        self.limit = limit
        self._minute = -1
        self._used = 0

    def _roll(self) -> None:
        minute = self.clock() // 60_000
        if minute != self._minute:
            self._minute, self._used = minute, 0

    def add(self, weight: int) -> int:
        self._roll()
        self._used += weight
        return self._used

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    def over_limit(self) -> bool:
        return self.used > self.limit

    def seconds_to_reset(self) -> int:
        return max(1, -(-(60_000 - self.clock() % 60_000) // 1000))

    def reset(self) -> None:
        self._used = 0


class OrderCounts(NamedTuple):
    ten_seconds: int
    minute: int


class OrderCounter:
    """Orders placed in the current 10-second and 1-minute windows of the server clock.

    Binance does not say whether its order windows are fixed or rolling; like the weight counter
    (which resets on the minute) these are fixed windows aligned to the clock, so a test that sets
    the time knows exactly when a window ends. An order counts once it passed authentication, even
    if the matching engine then refuses it; a -1015 refusal itself does not count.
    """

    def __init__(self, clock: Callable[[], int], per_10s: int = ORDER_LIMIT_10S, per_1m: int = ORDER_LIMIT_1M):
        self.clock = clock
        self.per_10s = per_10s
        self.per_1m = per_1m
        self.total = 0
        self._window_10s = self._window_1m = -1
        self._count_10s = self._count_1m = 0

    def _roll(self) -> None:
        now = self.clock()
        if now // 10_000 != self._window_10s:
            self._window_10s, self._count_10s = now // 10_000, 0
        if now // 60_000 != self._window_1m:
            self._window_1m, self._count_1m = now // 60_000, 0

    def refusal(self) -> BinanceError | None:
        """The -1015 an order arriving now gets, or None when it fits both windows."""
        self._roll()
        if self._count_10s >= self.per_10s:
            return too_many_orders(self.per_10s, "10 SECOND")
        if self._count_1m >= self.per_1m:
            return too_many_orders(self.per_1m, "1 MINUTE")
        return None

    def add(self) -> None:
        self._roll()
        self._count_10s += 1
        self._count_1m += 1
        self.total += 1

    def counts(self) -> OrderCounts:
        self._roll()
        return OrderCounts(self._count_10s, self._count_1m)

    def headers(self) -> dict[str, str]:
        counts = self.counts()
        # lower-case, as Binance's HTTP/2 front sends them (names are case-insensitive anyway)
        return {"x-mbx-order-count-10s": str(counts.ten_seconds), "x-mbx-order-count-1m": str(counts.minute)}

    def reset(self) -> None:
        self._count_10s = self._count_1m = 0
