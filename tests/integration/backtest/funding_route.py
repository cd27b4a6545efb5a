"""Funding-rate history for the download tests: past funding events loaded into the fake Binance, which
serves them on ``GET /fapi/v1/fundingRate`` as Binance does (see tests/fakes/binance/endpoints_market.py)."""

from __future__ import annotations

from decimal import Decimal

from tests.fakes.binance import FakeBinance
from tests.fakes.binance.models import FundingRecord

HOUR_MS = 3_600_000


def funding_history(first_ms: int, last_ms: int, interval_h: int = 8) -> list[tuple[int, Decimal, Decimal | None]]:
    """Funding events on Binance's grid in [first_ms, last_ms]: varied rates (some negative), a mark price on
    the newer half only (older Binance records have none)."""
    step = interval_h * HOUR_MS
    t = -(-first_ms // step) * step
    out = []
    n = 0
    while t <= last_ms:
        rate = Decimal((n * 37) % 23 - 7) / Decimal(100_000)  # -0.00007 .. 0.00015
        mark = Decimal(95_000 + n) if n % 2 else None
        out.append((t, rate, mark))
        t += step
        n += 1
    return out


def serve_funding(fake: FakeBinance, history: dict[str, list[tuple[int, Decimal, Decimal | None]]]) -> None:
    """The fake's funding-rate history (what ``GET /fapi/v1/fundingRate`` serves), from past events."""
    records = [FundingRecord(symbol, rate, t, mark) for symbol, rows in history.items() for t, rate, mark in rows]
    fake.exchange.ledger.funding.extend(records)
    fake.exchange.ledger.funding.sort(key=lambda r: (r.time, r.symbol))


def funding_requests(fake: FakeBinance) -> list:
    return [r for r in fake.requests if r.method == "GET" and r.path == "/fapi/v1/fundingRate"]
