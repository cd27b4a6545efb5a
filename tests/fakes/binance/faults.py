"""Injected failures: error replies, rate limits, lost replies, delays and silent streams."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.binance.errors import EXECUTION_UNKNOWN


@dataclass
class Fault:
    kind: str  # fail | rate_limit | lose_response | delay
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


@dataclass
class FaultPlan:
    """What the next matching requests will suffer; each rule fires ``times`` times, then retires."""

    rules: list[Fault] = field(default_factory=list)
    market_silent_until: float = 0.0  # time.monotonic() deadline
    private_silent_until: float = 0.0

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
        self.rules.clear()
        self.market_silent_until = 0.0
        self.private_silent_until = 0.0

    # ------------------------------------------------------------------ matching
    def take(self, method: str, path: str, kinds: tuple[str, ...]) -> Fault | None:
        """The first live rule of one of ``kinds`` for this request, consuming one use of it."""
        for rule in self.rules:
            if rule.kind in kinds and rule.method == method.upper() and rule.path == path and rule.times > 0:
                rule.times -= 1
                rule.hits += 1
                if rule.times == 0:
                    self.rules.remove(rule)
                return rule
        return None

    def _add(self, fault: Fault) -> Fault:
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        fault.method = fault.method.upper()
        if not fault.path.startswith("/"):
            raise ValueError(f"path must start with '/': {fault.path!r}")
        self.rules.append(fault)
        return fault
