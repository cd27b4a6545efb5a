"""Request weights of the USD-M endpoints the fake serves, and the per-minute IP weight counter."""

from __future__ import annotations

from collections.abc import Callable

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
    ("GET", "/fapi/v1/multiAssetsMargin"): (30, 30),
    ("POST", "/fapi/v1/listenKey"): (1, 1),
    ("PUT", "/fapi/v1/listenKey"): (1, 1),
    ("DELETE", "/fapi/v1/listenKey"): (1, 1),
}

ORDER_ENDPOINTS = frozenset({("POST", "/fapi/v1/order"), ("POST", "/fapi/v1/algoOrder")})


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
        self._orders = 0

    def _roll(self) -> None:
        minute = self.clock() // 60_000
        if minute != self._minute:
            self._minute, self._used, self._orders = minute, 0, 0

    def add(self, weight: int, *, order: bool = False) -> int:
        self._roll()
        self._used += weight
        if order:
            self._orders += 1
        return self._used

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    @property
    def orders(self) -> int:
        self._roll()
        return self._orders

    def over_limit(self) -> bool:
        return self.used > self.limit

    def seconds_to_reset(self) -> int:
        return max(1, -(-(60_000 - self.clock() % 60_000) // 1000))

    def reset(self) -> None:
        self._used = 0
        self._orders = 0
