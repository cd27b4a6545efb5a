"""Injected failures: error replies, refusals by code, rate limits, lost replies, delays, late arrivals, silence.

Every REST rule matches on method and path and, optionally, on request parameters (``side``,
``reduceOnly``, ``type``, ``symbol``, ``positionSide``, ``closePosition``). A rule fires ``times``
times, or (``seconds``) until that much server time has passed, whichever the test asked for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.binance import errors
from tests.fakes.binance.errors import EXECUTION_UNKNOWN, KNOWN_REFUSALS, BinanceError

# request parameters a rule may match on, and how a test names them
_MATCHABLE = {
    "side": "side",
    "reduce_only": "reduceOnly",
    "type": "type",
    "symbol": "symbol",
    "position_side": "positionSide",
    "close_position": "closePosition",
}
_BOOLEAN = frozenset({"reduceOnly", "closePosition"})
UNLIMITED = 1 << 62


@dataclass
class Fault:
    kind: str  # fail | refuse | rate_limit | lose_response | delay | hold | late
    method: str
    path: str
    times: int
    status: int = 0
    body: dict[str, Any] | None = None
    execute: bool = False  # fail: run the request first (e.g. a 503 -1007 whose order did go through)
    retry_after: int = 0
    seconds: float = 0.0
    after: bool = False  # delay: hold the reply after executing instead of before
    hits: int = 0
    when: dict[str, str] = field(default_factory=dict)  # request parameters that must match (wire spelling)
    until_ms: int | None = None  # server time after which the rule retires (``seconds=``)
    code: int = 0  # refuse: the Binance code
    late_ms: int = 0  # late: how much later than now the request counts as arriving
    released: asyncio.Event | None = field(default=None, repr=False)  # hold: set by release()
    hold_timeout_s: float = 30.0

    def matches(self, params: Mapping[str, str]) -> bool:
        for name, wanted in self.when.items():
            raw = params.get(name, "")
            if name in _BOOLEAN:
                if (raw.lower() == "true") != (wanted == "true"):
                    return False
            elif raw != wanted:
                return False
        return True

    def release(self) -> None:
        """Let held requests go on (a ``hold`` rule); later matching requests pass straight through."""
        if self.released is None:
            raise ValueError("only a hold rule can be released")
        self.released.set()

    def error(self, *, weight_limit: int, min_notional: str | None = None) -> BinanceError:
        """The refusal a ``refuse`` rule answers with."""
        if self.body is not None:
            return BinanceError(self.code, str(self.body.get("msg", "")), self.status or 400)
        if self.code == -1003:
            return errors.too_many_requests(weight_limit, self.retry_after or 1, self.status or 429)
        if self.code == -4164:
            return BinanceError(-4164, errors.min_notional(min_notional or "5").msg, self.status or 400)
        if self.code == -1007:
            return BinanceError(-1007, EXECUTION_UNKNOWN["msg"], self.status or 503)
        status, msg = KNOWN_REFUSALS[self.code]
        return BinanceError(self.code, msg, self.status or status)


@dataclass
class FaultPlan:
    """What the next matching requests will suffer; each rule fires ``times`` times (or for a while), then retires."""

    rules: list[Fault] = field(default_factory=list)
    holds: list[Fault] = field(default_factory=list)  # every hold rule, so clear() can free what it holds
    market_silent_until: float = 0.0  # time.monotonic() deadline
    private_silent_until: float = 0.0
    clock: Callable[[], int] = field(default=lambda: int(time.time() * 1000), repr=False)  # server ms

    # ------------------------------------------------------------------ REST
    def fail_next(
        self,
        method: str,
        path: str,
        status: int = 503,
        body: dict[str, Any] | None = None,
        times: int = 1,
        *,
        execute: bool = False,
    ) -> Fault:
        """Answer the next ``times`` matching requests with ``status``/``body`` (default 503 -1007).

        With ``execute=True`` the request is carried out before the error is returned, which is
        what a real "execution status unknown" can hide.
        """
        return self._add(
            Fault("fail", method, path, times, status=status, body=dict(body or EXECUTION_UNKNOWN), execute=execute)
        )

    def refuse(
        self,
        method: str,
        path: str,
        code: int,
        *,
        times: int | None = None,
        seconds: float | None = None,
        msg: str | None = None,
        status: int | None = None,
        retry_after: int = 1,
        side: str | None = None,
        reduce_only: bool | None = None,
        type: str | None = None,
        symbol: str | None = None,
        position_side: str | None = None,
        close_position: bool | None = None,
    ) -> Fault:
        """Refuse matching requests with Binance ``code`` (its real HTTP status and message); nothing executes.

        ``times`` (default 1) or ``seconds`` of server time bound the rule. Codes known without ``msg``:
        -1003 (429 + Retry-After, or ``status=418`` for an IP ban), -1007 (503, execution unknown, but
        here certainly not executed), -1008, -1015, -1021, -1111, -2011, -2013, -2019, -2021, -2022,
        -4045, -4061, -4116, -4118, -4130, -4131, -4140, -4164 (with the symbol's min notional).
        Other codes need ``msg``. Matching on ``side``/``reduce_only``/``type``/``symbol``/
        ``position_side``/``close_position`` compares with what the request carries (an absent
        ``reduceOnly`` is false).
        """
        if code not in KNOWN_REFUSALS and msg is None:
            raise ValueError(f"code {code} is not one the fake knows; pass msg= (and status=)")
        if code == -1003 and status not in (None, 418, 429):
            raise ValueError("rate limits are answered with HTTP 429 or 418")
        fault = Fault(
            "refuse",
            method,
            path,
            self._times(times, seconds),
            status=status or 0,
            body={"code": code, "msg": msg} if msg is not None else None,
            code=code,
            retry_after=retry_after,
        )
        fault.when = _conditions(
            side=side,
            reduce_only=reduce_only,
            type=type,
            symbol=symbol,
            position_side=position_side,
            close_position=close_position,
        )
        if seconds is not None:
            fault.until_ms = self.clock() + int(seconds * 1000)
        return self._add(fault)

    def rate_limit_next(self, method: str, path: str, retry_after: int = 1, status: int = 429, times: int = 1) -> Fault:
        """Refuse with 429 (or 418 = IP ban) ``-1003`` and a ``Retry-After`` header, without executing."""
        if status not in (418, 429):
            raise ValueError("rate limits are answered with HTTP 429 or 418")
        return self._add(Fault("rate_limit", method, path, times, status=status, retry_after=retry_after))

    def lose_response_next(self, method: str, path: str, times: int = 1) -> Fault:
        """Execute the request, then drop the connection without replying."""
        return self._add(Fault("lose_response", method, path, times))

    def delay(self, method: str, path: str, seconds: float, times: int = 1, *, after: bool = False) -> Fault:
        """Hold matching requests ``seconds`` before executing them (``after=True``: execute, then hold the reply)."""
        return self._add(Fault("delay", method, path, times, seconds=seconds, after=after))

    def hold_next(self, method: str, path: str, times: int = 1, *, timeout_s: float = 30.0) -> Fault:
        """Hold matching requests on their way in (before the timestamp check and the matching engine)
        until the test calls ``release()`` on the returned rule (or ``timeout_s`` passes).

        With the server clock moved on meanwhile (``advance_time_ms``), a held signed request then
        "arrives" later than its ``recvWindow`` and is refused -1021 without executing: the original
        of a retried order that shows up late.
        """
        fault = Fault("hold", method, path, times, released=asyncio.Event(), hold_timeout_s=timeout_s)
        self.holds.append(fault)
        return self._add(fault)

    def arrive_late_next(self, method: str, path: str, late_ms: int, times: int = 1) -> Fault:
        """Matching requests count as arriving ``late_ms`` after now (no real waiting): a signed one older
        than its ``recvWindow`` by then is refused -1021 and never executes."""
        if late_ms <= 0:
            raise ValueError("late_ms must be positive")
        return self._add(Fault("late", method, path, times, late_ms=late_ms))

    # ------------------------------------------------------------------ streams
    def silence_market(self, seconds: float) -> None:
        """Market sockets stay open but receive nothing (data dropped, not queued) for ``seconds``."""
        self.market_silent_until = time.monotonic() + seconds

    def silence_private(self, seconds: float) -> None:
        """User-data sockets stay open but receive nothing for ``seconds`` (events are lost, like a stall)."""
        self.private_silent_until = time.monotonic() + seconds

    def market_silent(self) -> bool:
        return time.monotonic() < self.market_silent_until

    def private_silent(self) -> bool:
        return time.monotonic() < self.private_silent_until

    def clear(self) -> None:
        for hold in self.holds:
            if hold.released is not None:
                hold.released.set()  # nobody stays stuck behind a cleared hold
        self.holds.clear()
        self.rules.clear()
        self.market_silent_until = 0.0
        self.private_silent_until = 0.0

    # ------------------------------------------------------------------ matching
    def take(
        self, method: str, path: str, kinds: tuple[str, ...], params: Mapping[str, str] | None = None
    ) -> Fault | None:
        """The first live rule of one of ``kinds`` for this request, consuming one use of it."""
        if not self.rules:
            return None
        now: int | None = None
        for rule in list(self.rules):
            if rule.kind not in kinds or rule.method != method.upper() or rule.path != path:
                continue
            if rule.until_ms is not None:
                now = self.clock() if now is None else now
                if now >= rule.until_ms:
                    self.rules.remove(rule)
                    continue
            if rule.when and not rule.matches(params or {}):
                continue
            rule.times -= 1
            rule.hits += 1
            if rule.times <= 0:
                self.rules.remove(rule)
            return rule
        return None

    @staticmethod
    def _times(times: int | None, seconds: float | None) -> int:
        if seconds is not None:
            if seconds <= 0:
                raise ValueError("seconds must be positive")
            return times if times is not None else UNLIMITED
        return 1 if times is None else times

    def _add(self, fault: Fault) -> Fault:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        fault.method = fault.method.upper()
        if not fault.path.startswith("/"):
            raise ValueError(f"path must start with '/': {fault.path!r}")
        self.rules.append(fault)
        return fault


def _conditions(**given: object) -> dict[str, str]:
    when: dict[str, str] = {}
    for name, value in given.items():
        if value is None:
            continue
        wire = _MATCHABLE[name]
        when[wire] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return when
