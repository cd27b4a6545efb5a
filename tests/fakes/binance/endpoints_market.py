"""Public market data endpoints: time, exchangeInfo, klines, tickers, mark price, funding, book."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fakes.binance import errors, payloads
from tests.fakes.binance.endpoints_base import NONE, Endpoints, Route
from tests.fakes.binance.errors import BinanceError
from tests.fakes.binance.klines import INTERVAL_MS
from tests.fakes.binance.models import ZERO, SymbolSpec, fixed
from tests.fakes.binance.params import Params

MONEY = payloads.MONEY


class MarketEndpoints(Endpoints):
    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", "/fapi/v1/ping"): Route(self.ping, NONE),
            ("GET", "/fapi/v1/time"): Route(self.time, NONE),
            ("GET", "/fapi/v1/exchangeInfo"): Route(self.exchange_info, NONE),
            ("GET", "/fapi/v1/klines"): Route(self.klines, NONE),
            ("GET", "/fapi/v1/ticker/24hr"): Route(self.ticker_24hr, NONE),
            ("GET", "/fapi/v1/ticker/price"): Route(self.ticker_price, NONE),
            ("GET", "/fapi/v2/ticker/price"): Route(self.ticker_price, NONE),
            ("GET", "/fapi/v1/ticker/bookTicker"): Route(self.book_ticker, NONE),
            ("GET", "/fapi/v1/premiumIndex"): Route(self.premium_index, NONE),
            ("GET", "/fapi/v1/fundingRate"): Route(self.funding_rate, NONE),
            ("GET", "/fapi/v1/fundingInfo"): Route(self.funding_info, NONE),
            ("GET", "/fapi/v1/depth"): Route(self.depth, NONE),
        }

    async def ping(self, p: Params) -> Any:
        return {}

    async def time(self, p: Params) -> Any:
        return {"serverTime": self.fake.now_ms()}

    async def exchange_info(self, p: Params) -> Any:
        return self.fake.exchange_info()

    async def klines(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        interval = p.str("interval", required=True)
        assert interval is not None
        if interval not in INTERVAL_MS:
            raise errors.invalid_interval()
        limit = p.int("limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= 1500:
            raise errors.invalid_value("limit")
        start, end = p.int("startTime"), p.int("endTime")
        if start is not None and end is not None and start > end:
            raise BinanceError(-1023, "Start time is greater than end time.")
        now = self.fake.now_ms()
        book = self.fake.kline_book
        book.ensure_current(spec.symbol, self.ex.markets[spec.symbol].last, now)
        candles = book.query(spec.symbol, interval, start=start, end=end, limit=limit, now=now)
        return [c.rest_row(INTERVAL_MS[interval]) for c in candles]

    def _ticker(self, spec: SymbolSpec) -> dict[str, Any]:
        m = self.ex.markets[spec.symbol]
        now = self.fake.now_ms()
        change = m.last - m.open_24h
        pct = change / m.open_24h * 100 if m.open_24h else ZERO
        volume = m.quote_volume / m.last if m.last else ZERO
        return {
            "symbol": spec.symbol,
            "priceChange": spec.price_str(change),
            "priceChangePercent": fixed(pct, 3),
            "weightedAvgPrice": spec.price_str(m.last),
            "lastPrice": spec.price_str(m.last),
            "lastQty": spec.qty_str(m.last_qty),
            "openPrice": spec.price_str(m.open_24h),
            "highPrice": spec.price_str(m.high_24h),
            "lowPrice": spec.price_str(m.low_24h),
            "volume": spec.qty_str(volume),
            "quoteVolume": fixed(m.quote_volume, 2),
            "openTime": now - 86_400_000,
            "closeTime": now,
            "firstId": 1,
            "lastId": 1000,
            "count": 1000,
        }

    async def ticker_24hr(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        if spec is not None:
            return self._ticker(spec)
        return [self._ticker(s) for s in self.ex.specs.values()]

    def _price(self, spec: SymbolSpec) -> dict[str, Any]:
        return {
            "symbol": spec.symbol,
            "price": spec.price_str(self.ex.markets[spec.symbol].last),
            "time": self.fake.now_ms(),
        }

    async def ticker_price(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        if spec is not None:
            return self._price(spec)
        return [self._price(s) for s in self.ex.specs.values()]

    def _book(self, spec: SymbolSpec) -> dict[str, Any]:
        event = payloads.book_ticker_event(spec.symbol, spec, self.ex.markets[spec.symbol], 1, self.fake.now_ms())
        return {
            "symbol": spec.symbol,
            "bidPrice": event["b"],
            "bidQty": event["B"],
            "askPrice": event["a"],
            "askQty": event["A"],
            "time": event["T"],
            "lastUpdateId": 1,
        }

    async def book_ticker(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        if spec is not None:
            return self._book(spec)
        return [self._book(s) for s in self.ex.specs.values()]

    def _premium(self, spec: SymbolSpec) -> dict[str, Any]:
        m = self.ex.markets[spec.symbol]
        mark = fixed(m.mark, MONEY)
        return {
            "symbol": spec.symbol,
            "markPrice": mark,
            "indexPrice": mark,
            "estimatedSettlePrice": mark,
            "lastFundingRate": fixed(m.funding_rate, MONEY),
            "interestRate": "0.00010000",
            "nextFundingTime": self.fake.next_funding_time(spec.symbol),
            "time": self.fake.now_ms(),
        }

    async def premium_index(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        if spec is not None:
            return self._premium(spec)
        return [self._premium(s) for s in self.ex.specs.values()]

    async def funding_rate(self, p: Params) -> Any:
        """GET /fapi/v1/fundingRate: funding events, oldest first. With no times: the most recent records
        (200, as the docs say, or ``limit`` when sent); with times: from ``startTime`` (inclusive) at most
        ``limit`` (default 100, max 1000) records up to ``endTime`` (inclusive)."""
        spec = self._symbol(p, required=False)
        sent_limit = p.int("limit")
        limit = self._limit(p, 100, 1000)
        start, end = p.int("startTime"), p.int("endTime")
        records = [r for r in self.fake.exchange.ledger.funding if spec is None or r.symbol == spec.symbol]
        if start is None and end is None:
            chosen = records[-(sent_limit or 200) :]
        else:
            if start is not None and end is not None and start > end:
                raise errors.start_after_end()
            chosen = [r for r in records if (start is None or r.time >= start) and (end is None or r.time <= end)]
            chosen = chosen[:limit] if start is not None else chosen[-limit:]
        return [payloads.funding_rate_json(r) for r in chosen]

    async def funding_info(self, p: Params) -> Any:
        """GET /fapi/v1/fundingInfo: only the symbols whose cap, floor or interval was adjusted."""
        rows = []
        for spec in self.ex.specs.values():
            if spec.funding_cap is None and spec.funding_interval_hours == 8:
                continue
            cap = spec.funding_cap if spec.funding_cap is not None else Decimal("0.02")
            floor = spec.funding_floor if spec.funding_floor is not None else -cap
            rows.append(
                {
                    "symbol": spec.symbol,
                    "adjustedFundingRateCap": fixed(cap, MONEY),
                    "adjustedFundingRateFloor": fixed(floor, MONEY),
                    "fundingIntervalHours": spec.funding_interval_hours,
                    "disclaimer": False,
                }
            )
        return rows

    async def depth(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        book = self._book(spec)
        now = self.fake.now_ms()
        return {
            "lastUpdateId": 1,
            "E": now,
            "T": now,
            "bids": [[book["bidPrice"], book["bidQty"]]],
            "asks": [[book["askPrice"], book["askQty"]]],
        }
