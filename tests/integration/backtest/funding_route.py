"""``GET /fapi/v1/fundingRate`` on a loopback ``FakeBinance``, as Binance documents it.

The fake itself does not serve funding history yet (it is being added there); until then the download
tests install this route on their fake. Binance's rules, modelled here: public; ``symbol`` optional;
``startTime``/``endTime`` inclusive; ``limit`` default 100, at most 1000; more records in the range than
``limit``: the first ``limit`` from ``startTime``; neither time given: the newest ``limit``; ascending;
fields ``symbol``, ``fundingTime``, ``fundingRate`` (8 decimals) and ``markPrice`` (empty on old records);
its own budget of 500 requests per 5 minutes, shared with ``fundingInfo``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fakes.binance import FakeBinance, errors
from tests.fakes.binance.endpoints_base import NONE, Route
from tests.fakes.binance.params import Params

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
    async def funding_rate(p: Params) -> Any:
        symbol = p.str("symbol")
        if symbol is not None and symbol not in history:
            raise errors.invalid_symbol()
        limit = p.int("limit")
        limit = 100 if limit is None else limit
        if not 1 <= limit <= 1000:
            raise errors.invalid_value("limit")
        start, end = p.int("startTime"), p.int("endTime")
        rows = [(s, *r) for s, recs in history.items() if symbol in (None, s) for r in recs]
        rows.sort(key=lambda r: (r[1], r[0]))
        rows = [r for r in rows if (start is None or r[1] >= start) and (end is None or r[1] <= end)]
        rows = rows[:limit] if start is not None else rows[-limit:]
        return [
            {
                "symbol": s,
                "fundingTime": t,
                "fundingRate": f"{rate:.8f}",
                "markPrice": "" if mark is None else f"{mark:.8f}",
            }
            for s, t, rate, mark in rows
        ]

    fake._rest.routes[("GET", "/fapi/v1/fundingRate")] = Route(funding_rate, NONE)


def funding_requests(fake: FakeBinance) -> list:
    return [r for r in fake.requests if r.method == "GET" and r.path == "/fapi/v1/fundingRate"]
