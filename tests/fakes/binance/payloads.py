"""Wire shapes of the fake: REST bodies and user-data / market events.

Field names and types follow the real payloads kept in ``shared/data/binance-api``:
decimals as JSON strings, ids and times as JSON numbers.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fakes.binance.models import (
    ZERO,
    FakeAlgoOrder,
    FakeOrder,
    FakeTrade,
    FundingRecord,
    IncomeRow,
    MarketState,
    Position,
    SymbolSettings,
    SymbolSpec,
    fixed,
    plain,
)

MONEY = 8  # decimals Binance prints balances with


def avg_price_str(spec: SymbolSpec, value: Decimal) -> str:
    # real replies print avgPrice with more decimals than the tick ("47279.40000")
    return fixed(value, max(spec.price_decimals, 5))


def order_json(spec: SymbolSpec, order: FakeOrder, *, with_time: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": spec.price_str(order.price) if order.price else "0",
        "avgPrice": avg_price_str(spec, order.avg_price),
        "origQty": spec.qty_str(order.qty),
        "executedQty": spec.qty_str(order.executed_qty),
        "cumQty": spec.qty_str(order.executed_qty),
        "cumQuote": fixed(order.cum_quote, spec.price_decimals + spec.qty_decimals),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": order.position_side,
        "stopPrice": spec.price_str(order.stop_price) if order.stop_price else "0",
        "workingType": order.working_type,
        "priceProtect": False,
        "origType": order.orig_type or order.type,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "goodTillDate": 0,
        "updateTime": order.update_time,
    }
    if with_time:
        body["time"] = order.time
    return body


def ack_json(spec: SymbolSpec, order: FakeOrder) -> dict[str, Any]:
    """``newOrderRespType=ACK``: the order as accepted, before any execution is reported."""
    body = order_json(spec, order, with_time=False)
    body.update(
        status="NEW",
        avgPrice=avg_price_str(spec, ZERO),
        executedQty=spec.qty_str(ZERO),
        cumQty=spec.qty_str(ZERO),
        cumQuote=fixed(ZERO, spec.price_decimals + spec.qty_decimals),
        updateTime=order.time,
    )
    return body


def algo_json(spec: SymbolSpec, algo: FakeAlgoOrder) -> dict[str, Any]:
    return {
        "algoId": algo.algo_id,
        "clientAlgoId": algo.client_algo_id,
        "algoType": "CONDITIONAL",
        "orderType": algo.order_type,
        "symbol": algo.symbol,
        "side": algo.side,
        "positionSide": algo.position_side,
        "timeInForce": algo.time_in_force,
        "quantity": spec.qty_str(algo.qty),
        "algoStatus": algo.status,
        "actualOrderId": str(algo.actual_order_id) if algo.actual_order_id is not None else "",
        "actualPrice": avg_price_str(spec, algo.actual_price),
        "actualQty": spec.qty_str(algo.actual_qty),
        "actualType": "MARKET" if algo.actual_order_id is not None else "",
        "triggerPrice": spec.price_str(algo.trigger_price),
        "price": "0",
        "icebergQuantity": None,
        "selfTradePreventionMode": "EXPIRE_MAKER",
        "workingType": algo.working_type,
        "priceMatch": "NONE",
        "closePosition": algo.close_position,
        "priceProtect": algo.price_protect,
        "reduceOnly": algo.reduce_only,
        "createTime": algo.create_time,
        "updateTime": algo.update_time,
        "triggerTime": algo.trigger_time,
        "goodTillDate": 0,
    }


def trade_json(spec: SymbolSpec, trade: FakeTrade) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "side": trade.side,
        "price": spec.price_str(trade.price),
        "qty": spec.qty_str(trade.qty),
        "realizedPnl": fixed(trade.realized_pnl, MONEY),
        "marginAsset": spec.quote_asset,
        "quoteQty": fixed(trade.quote_qty, spec.price_decimals + spec.qty_decimals),
        "commission": fixed(trade.commission, MONEY),
        "commissionAsset": spec.quote_asset,
        "time": trade.time,
        "positionSide": trade.position_side,
        "maker": trade.maker,
        "buyer": trade.side == "BUY",
    }


def force_order_json(spec: SymbolSpec, order: FakeOrder) -> dict[str, Any]:
    """One row of GET /fapi/v1/forceOrders (the docs' field set: no priceProtect/priceMatch/STP fields)."""
    keys = (
        "orderId", "symbol", "status", "clientOrderId", "price", "avgPrice", "origQty", "executedQty", "cumQuote",
        "timeInForce", "type", "reduceOnly", "closePosition", "side", "positionSide", "stopPrice", "workingType",
        "origType", "time", "updateTime",
    )  # fmt: skip
    body = order_json(spec, order)
    return {key: body[key] for key in keys}


def income_json(row: IncomeRow) -> dict[str, Any]:
    return {
        "symbol": row.symbol,
        "incomeType": row.income_type,
        "income": fixed(row.income, MONEY),
        "asset": row.asset,
        "info": row.info,
        "time": row.time,
        "tranId": row.tran_id,
        "tradeId": row.trade_id,
    }


def funding_rate_json(record: FundingRecord) -> dict[str, Any]:
    return {
        "symbol": record.symbol,
        "fundingRate": fixed(record.rate, MONEY),
        "fundingTime": record.time,
        "markPrice": "" if record.mark is None else fixed(record.mark, MONEY),
    }


# ------------------------------------------------------------------ user-data events
def order_update_event(
    spec: SymbolSpec,
    order: FakeOrder,
    execution_type: str,
    now: int,
    trade: FakeTrade | None = None,
) -> dict[str, Any]:
    o: dict[str, Any] = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": spec.qty_str(order.qty),
        "p": spec.price_str(order.price) if order.price else "0",
        "ap": avg_price_str(spec, order.avg_price),
        "sp": spec.price_str(order.stop_price) if order.stop_price else "0",
        "x": execution_type,
        "X": order.status,
        "i": order.order_id,
        "l": spec.qty_str(trade.qty if trade else ZERO),
        "z": spec.qty_str(order.executed_qty),
        "L": spec.price_str(trade.price if trade else ZERO),
        "N": spec.quote_asset if trade else None,
        "n": fixed(trade.commission, MONEY) if trade else None,
        "T": now,
        "t": trade.trade_id if trade else 0,
        "b": "0",
        "a": "0",
        "m": trade.maker if trade else False,
        "R": order.reduce_only,
        "wt": order.working_type,
        "ot": order.orig_type or order.type,
        "ps": order.position_side,
        "cp": order.close_position,
        "AP": "0",
        "cr": "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "rp": fixed(trade.realized_pnl if trade else ZERO, MONEY),
        "V": "EXPIRE_MAKER",
        "pm": "NONE",
        "gtd": 0,
        "W": order.time,
    }
    return {"e": "ORDER_TRADE_UPDATE", "E": now, "T": now, "o": o}


def trade_lite_event(spec: SymbolSpec, order: FakeOrder, trade: FakeTrade, now: int) -> dict[str, Any]:
    return {
        "e": "TRADE_LITE",
        "E": now,
        "T": now,
        "s": order.symbol,
        "q": spec.qty_str(order.qty),
        "p": spec.price_str(order.price) if order.price else "0",
        "m": trade.maker,
        "c": order.client_order_id,
        "S": order.side,
        "L": spec.price_str(trade.price),
        "l": spec.qty_str(trade.qty),
        "t": trade.trade_id,
        "i": order.order_id,
    }


def leverage_update_event(symbol: str, leverage: int, now: int) -> dict[str, Any]:
    return {"e": "ACCOUNT_CONFIG_UPDATE", "E": now, "T": now, "ac": {"s": symbol, "l": leverage}}


def algo_update_event(spec: SymbolSpec, algo: FakeAlgoOrder, now: int) -> dict[str, Any]:
    o: dict[str, Any] = {
        "caid": algo.client_algo_id,
        "aid": algo.algo_id,
        "at": "CONDITIONAL",
        "o": algo.order_type,
        "s": algo.symbol,
        "S": algo.side,
        "ps": algo.position_side,
        "f": algo.time_in_force,
        "q": spec.qty_str(algo.qty),
        "X": algo.status,
        "ai": str(algo.actual_order_id) if algo.actual_order_id is not None else "",
    }
    if algo.status in ("TRIGGERED", "FINISHED"):
        # the samples carry the execution fields only once the order reached the matching engine
        o.update(
            ap=avg_price_str(spec, algo.actual_price) if algo.actual_qty else "0",
            aq=spec.qty_str(algo.actual_qty) if algo.actual_qty else "0",
            act="MARKET",
        )
    o.update(
        tp=spec.price_str(algo.trigger_price),
        p="0",
        V="EXPIRE_MAKER",
        wt=algo.working_type,
        pm="NONE",
        cp=algo.close_position,
        pP=algo.price_protect,
        R=algo.reduce_only,
        tt=algo.trigger_time,
        gtd=0,
    )
    if algo.reject_reason:
        o["rm"] = algo.reject_reason
    return {"e": "ALGO_UPDATE", "T": now, "E": now, "o": o}


def position_event_entry(
    spec: SymbolSpec, pos: Position, settings: SymbolSettings, market: MarketState, fee_rate: Decimal
) -> dict[str, Any]:
    return {
        "s": pos.symbol,
        "pa": spec.qty_str(pos.qty) if pos.qty else "0",
        "ep": plain(pos.entry_price) if pos.qty else "0",
        "bep": plain(break_even(pos, fee_rate)) if pos.qty else "0",
        "cr": fixed(pos.accumulated_realized, MONEY),
        "up": fixed(pos.qty * (market.mark - pos.entry_price), MONEY),
        "mt": "isolated" if settings.margin_type == "ISOLATED" else "cross",
        "iw": fixed(isolated_wallet(pos, settings), MONEY),
        "ps": pos.side,
    }


def account_update_event(
    reason: str, *, now: int, wallet: Decimal, cross_wallet: Decimal, balance_change: Decimal, positions: list[dict]
) -> dict[str, Any]:
    # a change prints with 8 decimals like the wallet (docs: "bc":"50.12345678"); none prints as "0"
    change = fixed(balance_change, MONEY) if balance_change else "0"
    balances = [{"a": "USDT", "wb": fixed(wallet, MONEY), "cw": fixed(cross_wallet, MONEY), "bc": change}]
    return {"e": "ACCOUNT_UPDATE", "T": now, "E": now, "a": {"m": reason, "B": balances, "P": positions}}


def break_even(pos: Position, fee_rate: Decimal) -> Decimal:
    """Entry price moved by the taker fee of the round trip (what Binance shows as breakEvenPrice)."""
    if not pos.qty:
        return ZERO
    return pos.entry_price * (1 + fee_rate) if pos.qty > 0 else pos.entry_price * (1 - fee_rate)


def isolated_wallet(pos: Position, settings: SymbolSettings) -> Decimal:
    if settings.margin_type != "ISOLATED" or not pos.qty:
        return ZERO
    return abs(pos.qty) * pos.entry_price / settings.leverage


# ------------------------------------------------------------------ market events
def agg_trade_event(spec: SymbolSpec, *, agg_id: int, trade_id: int, price: Decimal, qty: Decimal, now: int):
    return {
        "e": "aggTrade",
        "E": now,
        "a": agg_id,
        "s": spec.symbol,
        "p": spec.price_str(price),
        "q": spec.qty_str(qty),
        "f": trade_id,
        "l": trade_id,
        "T": now,
        "m": False,
    }


def mark_price_event(symbol: str, market: MarketState, now: int, next_funding: int) -> dict[str, Any]:
    mark = fixed(market.mark, MONEY)
    return {
        "e": "markPriceUpdate",
        "E": now,
        "s": symbol,
        "p": mark,
        "i": mark,
        "P": mark,
        "r": fixed(market.funding_rate, MONEY),
        "T": next_funding,
    }


def contract_info_event(spec: SymbolSpec, brackets: list[tuple[int, Decimal, Decimal, Decimal, Decimal]], now: int):
    """The ``!contractInfo`` stream: pushed when a contract is listed, settles, or its brackets change."""
    rows = []
    for i, (leverage, floor, cap, ratio, cum) in enumerate(brackets):
        lowest = brackets[i + 1][0] + 1 if i + 1 < len(brackets) else 1
        rows.append(
            {"bs": i + 1, "bnf": int(floor), "bnc": int(cap), "mmr": float(ratio), "cf": float(cum), "mi": lowest,
             "ma": leverage}
        )  # fmt: skip
    return {
        "e": "contractInfo",
        "E": now,
        "s": spec.symbol,
        "ps": spec.symbol,
        "ct": spec.contract_type,
        "dt": spec.delivery_date,
        "ot": spec.onboard_date,
        "cs": spec.status,
        "bks": rows,
    }


def book_ticker_event(symbol: str, spec: SymbolSpec, market: MarketState, update_id: int, now: int):
    bid = max(market.last - spec.tick_size, spec.tick_size)
    return {
        "e": "bookTicker",
        "u": update_id,
        "E": now,
        "T": now,
        "s": symbol,
        "b": spec.price_str(bid),
        "B": spec.qty_str(spec.min_qty * 1000),
        "a": spec.price_str(market.last),
        "A": spec.qty_str(spec.min_qty * 1000),
    }
