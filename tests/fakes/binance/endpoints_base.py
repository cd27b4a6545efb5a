"""What every group of REST endpoints shares: the fake, parameter helpers, the route record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.binance import errors
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.models import FakeOrder, SymbolSpec
from tests.fakes.binance.params import Params

if TYPE_CHECKING:
    from tests.fakes.binance.server import FakeBinance

NONE, API_KEY, SIGNED = "none", "key", "signed"  # Binance's security types: public, USER_STREAM, signed

Handler = Callable[[Params], Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    handler: Handler
    security: str


class Endpoints:
    """A group of endpoint handlers; ``routes()`` maps (method, path) to them."""

    def __init__(self, fake: FakeBinance) -> None:
        self.fake = fake
        self.ex = fake.exchange

    def routes(self) -> dict[tuple[str, str], Route]:
        raise NotImplementedError

    def _symbol(self, p: Params, *, required: bool = True) -> SymbolSpec | None:
        name = p.str("symbol", required=required)
        if name is None:
            return None
        return self.ex.spec(name)

    def _order_lookup(self, p: Params) -> FakeOrder | None:
        spec = self._symbol(p)
        assert spec is not None
        order_id = p.int("orderId")
        client_id = p.str("origClientOrderId")
        if order_id is None and client_id is None:
            raise BinanceError(-1102, "Either orderId or origClientOrderId must be sent.")
        return self.ex.find_order(spec.symbol, order_id, client_id)

    def _position_notional(self, symbol: str) -> Decimal:
        return self.ex.positions[symbol].qty * self.ex.markets[symbol].mark

    def _history_window(self, p: Params, default_limit: int, max_limit: int) -> tuple[int | None, int | None, int]:
        limit = p.int("limit")
        limit = default_limit if limit is None else limit
        if not 1 <= limit <= max_limit:
            raise errors.invalid_value("limit")
        return p.int("startTime"), p.int("endTime"), limit
