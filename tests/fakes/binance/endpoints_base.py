"""What every group of REST endpoints shares: the fake, parameter helpers, the route record."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from tests.fakes.binance import errors
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.models import BOTH, LONG, SHORT, FakeOrder, Position, SymbolSpec
from tests.fakes.binance.params import Params

if TYPE_CHECKING:
    from tests.fakes.binance.server import FakeBinance

NONE, API_KEY, SIGNED = "none", "key", "signed"  # Binance's security types: public, USER_STREAM, signed
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS

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

    def _position_notional(self, pos: Position) -> Decimal:
        return pos.qty * self.ex.markets[pos.symbol].mark

    def _position_side(self, p: Params) -> str:
        """``positionSide`` checked against the account's mode: BOTH (or nothing) in one-way mode, LONG or
        SHORT in hedge mode (-4061 otherwise), where ``reduceOnly`` may not be sent at all (-1106)."""
        raw = p.str("positionSide")
        if raw is not None and raw not in (BOTH, LONG, SHORT):
            raise errors.invalid_position_side()
        if not self.ex.dual_side:
            if raw not in (None, BOTH):
                raise errors.position_side_mismatch()
            return BOTH
        if raw in (None, BOTH):
            raise errors.position_side_mismatch()
        if p.raw("reduceOnly") is not None:
            raise errors.not_required("reduceOnly")
        assert raw is not None
        return raw

    def _history_window(self, p: Params, default_limit: int, max_limit: int) -> tuple[int | None, int | None, int]:
        limit = p.int("limit")
        limit = default_limit if limit is None else limit
        if not 1 <= limit <= max_limit:
            raise errors.invalid_value("limit")
        return p.int("startTime"), p.int("endTime"), limit

    def _limit(self, p: Params, default: int, maximum: int) -> int:
        limit = p.int("limit")
        limit = default if limit is None else limit
        if not 1 <= limit <= maximum:
            raise errors.invalid_value("limit")
        return limit
