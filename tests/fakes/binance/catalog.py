"""Static-ish reference data: exchangeInfo entries and leverage brackets derived from a symbol's spec."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from tests.fakes.binance.models import ZERO, SymbolSpec

# leverage tiers relative to the symbol's maximum: (leverage divisor, notional cap, maintenance ratio)
_BRACKET_TIERS = (
    (1, Decimal(50_000), Decimal("0.004")),
    (2, Decimal(250_000), Decimal("0.005")),
    (5, Decimal(1_000_000), Decimal("0.01")),
    (10, Decimal(5_000_000), Decimal("0.025")),
)
Tier = tuple[int, Decimal, Decimal, Decimal, Decimal]  # initial leverage, floor, cap, maintenance ratio, cum

# BTCUSDT's trading rules as Binance lists them (the symbol most adapter tests trade): ``add_symbol(**BTCUSDT)``.
BTCUSDT: dict[str, Any] = {
    "symbol": "BTCUSDT",
    "price": "50000",
    "tick_size": "0.10",
    "step_size": "0.001",
    "min_qty": "0.001",
    "min_notional": "100",
    "max_leverage": 125,
    "quote_volume": "1e9",
    "status": "TRADING",
}


def exchange_info(
    specs: Iterable[SymbolSpec], now_ms: int, weight_limit: int, order_limits: tuple[int, int] = (300, 1200)
) -> dict[str, Any]:
    """GET /fapi/v1/exchangeInfo, in the field set of the real reply; ``order_limits`` = (per 10 s, per minute)."""
    per_10s, per_1m = order_limits
    return {
        "timezone": "UTC",
        "serverTime": now_ms,
        "futuresType": "U_MARGINED",
        "rateLimits": [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": weight_limit,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": per_1m},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": per_10s},
        ],
        "exchangeFilters": [],
        "assets": [
            {"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"},
            {"asset": "USDC", "marginAvailable": True, "autoAssetExchange": "-10000"},
        ],
        "symbols": [symbol_info(spec) for spec in specs],
    }


def symbol_info(spec: SymbolSpec) -> dict[str, Any]:
    return {
        "symbol": spec.symbol,
        "pair": spec.symbol,
        "contractType": spec.contract_type,
        "deliveryDate": spec.delivery_date,
        "onboardDate": spec.onboard_date,
        "status": spec.status,
        "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000",
        "baseAsset": spec.base_asset,
        "quoteAsset": spec.quote_asset,
        "marginAsset": spec.quote_asset,
        "pricePrecision": spec.price_decimals,
        "quantityPrecision": spec.qty_decimals,
        "baseAssetPrecision": 8,
        "quotePrecision": 8,
        "underlyingType": "COIN",
        "underlyingSubType": [],
        "settlePlan": 0,
        "triggerProtect": "0.0500",
        "liquidationFee": "0.012500",
        "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {
                "filterType": "PRICE_FILTER",
                "minPrice": format(spec.tick_size, "f"),
                "maxPrice": "10000000",
                "tickSize": format(spec.tick_size, "f"),
            },
            {
                "filterType": "LOT_SIZE",
                "minQty": format(spec.min_qty, "f"),
                "maxQty": format(spec.max_qty, "f"),
                "stepSize": format(spec.step_size, "f"),
            },
            {
                "filterType": "MARKET_LOT_SIZE",
                "minQty": format(spec.min_qty, "f"),
                "maxQty": format(spec.market_max_qty, "f"),
                "stepSize": format(spec.step_size, "f"),
            },
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": spec.max_algo_orders},
            {"filterType": "MIN_NOTIONAL", "notional": format(spec.min_notional, "f")},
            {
                "filterType": "PERCENT_PRICE",
                "multiplierUp": "1.0500",
                "multiplierDown": "0.9500",
                "multiplierDecimal": "4",
            },
        ],
        "orderTypes": [
            "LIMIT",
            "MARKET",
            "STOP",
            "STOP_MARKET",
            "TAKE_PROFIT",
            "TAKE_PROFIT_MARKET",
            "TRAILING_STOP_MARKET",
        ],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
        "permissionSets": ["GRID", "COPY"],
    }


def brackets(max_lev: int) -> list[Tier]:
    """(initial leverage, floor, cap, maintenance ratio, cum) per tier, derived from max_leverage."""
    tiers: list[Tier] = []
    floor, cum, previous_ratio = ZERO, ZERO, ZERO
    for divisor, cap, ratio in _BRACKET_TIERS:
        leverage = max(1, max_lev // divisor)
        if tiers and leverage >= tiers[-1][0]:
            break
        cum += floor * (ratio - previous_ratio)
        tiers.append((leverage, floor, cap, ratio, cum))
        floor, previous_ratio = cap, ratio
    return tiers


def max_notional(max_lev: int, leverage: int) -> Decimal:
    """The notional cap of the highest tier that still allows ``leverage``."""
    allowed = [cap for lev, _floor, cap, _ratio, _cum in brackets(max_lev) if lev >= leverage]
    return max(allowed) if allowed else ZERO


def brackets_json(symbol: str, max_lev: int) -> dict[str, Any]:
    """One entry of GET /fapi/v1/leverageBracket (numbers, not strings, as Binance sends them)."""
    return {
        "symbol": symbol,
        "notionalCoef": 1.0,
        "brackets": [
            {
                "bracket": i + 1,
                "initialLeverage": lev,
                "notionalCap": int(cap),
                "notionalFloor": int(floor),
                "maintMarginRatio": float(ratio),
                "cum": float(cum),
            }
            for i, (lev, floor, cap, ratio, cum) in enumerate(brackets(max_lev))
        ],
    }
