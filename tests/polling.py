"""The one bounded poll of the test suite: for a condition that has no event to wait on (server-side state of
a loopback fake, a row in a database another process writes)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def until(pred: Callable[[], Any], timeout: float = 10.0, what: str = "condition", *, every: float = 0.02) -> Any:  # noqa: ASYNC109
    """Ask ``pred`` every ``every`` s until it returns something truthy, and return that. Past ``timeout`` s an
    ``AssertionError`` names ``what``. A predicate that fails an assertion (``harness.assert_agree``) counts as
    "not yet": it is asked again until the deadline, then its own failure is raised."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = pred()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(every)
