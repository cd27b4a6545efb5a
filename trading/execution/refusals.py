"""Refused orders back off; entries hold a reservation from the decision until they fill or fail.

``RefusalBook``: per position and ladder rule, how often the exchange refused
and until when the rule waits (``core.refusals`` says how long). The monitor
passes the waiting rules to ``ladder.decide`` as blocked, so the ladder goes
on to the later rules instead of sending the refused order on every tick.
Rebuilt at start from the journal's refused rows, so a restart does not
start a storm again.

``Admission``: ``max_positions`` and ``max_margin_usage`` count filled
positions plus reserved entries. The scanner reserves synchronously when it
decides, so five symbols signalling at one 1m close cannot all pass the check
before the first one fills.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from storage.journal import JournalRow
from trading.core.order_state import OrderState
from trading.core.refusals import RefusalClass, backoff_s, classify_refusal, gives_up
from trading.orders import ACTIONS, ClientIds

ZERO = Decimal(0)


@dataclass(slots=True)
class RuleRefusals:
    count: int = 0
    until_ms: float = 0.0  # math.inf once given up
    codes_alerted: set[int | str | None] = field(default_factory=set)

    @property
    def given_up(self) -> bool:
        return self.until_ms == math.inf


@dataclass(frozen=True, slots=True)
class RefusalVerdict:
    count: int
    wait_s: float
    gave_up: bool
    first_of_its_code: bool  # alert once per position, rule and refusal code


def rule_of_action(action: str) -> str:
    """The ladder rule (``ladder.rule_of``) behind a journal action code."""
    _, stage, reason = ACTIONS[action]
    if stage is not None and action != "entry":
        return stage.value
    return reason.value if reason is not None else action


class RefusalBook:
    def __init__(self) -> None:
        self._by_position: dict[int, dict[str, RuleRefusals]] = {}

    def record(
        self, position_id: int, rule: str, klass: RefusalClass, code: int | str | None, now_ms: int, *, is_dca: bool
    ) -> RefusalVerdict:
        r = self._by_position.setdefault(position_id, {}).setdefault(rule, RuleRefusals())
        r.count += 1
        gave_up = gives_up(is_dca, klass, r.count)
        wait = backoff_s(r.count)
        r.until_ms = math.inf if gave_up else now_ms + wait * 1000
        first = code not in r.codes_alerted
        r.codes_alerted.add(code)
        return RefusalVerdict(r.count, wait, gave_up, first or gave_up)

    def blocked(self, position_id: int, now_ms: int) -> frozenset[str]:
        """Rules of this position that must not send yet (backing off or given up)."""
        rules = self._by_position.get(position_id)
        if not rules:
            return frozenset()
        return frozenset(rule for rule, r in rules.items() if r.until_ms > now_ms)

    def wait_s(self, position_id: int, rule: str, now_ms: int) -> float:
        r = self._by_position.get(position_id, {}).get(rule)
        return 0.0 if r is None or r.until_ms <= now_ms else (r.until_ms - now_ms) / 1000

    def reset(self, position_id: int) -> None:
        """The position's state changed: every rule starts again from the floor."""
        self._by_position.pop(position_id, None)

    def seed(self, position_id: int, rows: Iterable[JournalRow], ids: ClientIds) -> None:
        """Refusals since the position's last fill, from its journal rows (oldest first)."""
        self.reset(position_id)
        for row in rows:
            parsed = ids.ours(row.client_order_id)
            if parsed is None or parsed.is_stop:
                continue
            if row.status is OrderState.FILLED:
                self.reset(position_id)
            elif row.status is OrderState.REJECTED and row.error_code is not None:
                code = _int_or_none(row.error_code)
                klass = classify_refusal(code, code if code is not None and code > 0 else None)
                rule = rule_of_action(parsed.action)
                self.record(position_id, rule, klass, code, row.updated_at_ms, is_dca=parsed.side == "BUY")


@dataclass(frozen=True, slots=True)
class Reservation:
    symbol: str
    margin: Decimal


class Admission:
    """Entry slots: filled positions plus entries decided but not yet filled or failed."""

    def __init__(self) -> None:
        self._reserved: dict[str, Reservation] = {}

    def reserved(self, symbol: str) -> bool:
        return symbol in self._reserved

    @property
    def count(self) -> int:
        return len(self._reserved)

    @property
    def margin(self) -> Decimal:
        return sum((r.margin for r in self._reserved.values()), ZERO)

    def why_not(
        self,
        *,
        held: int,
        margin_in_use: Decimal,
        wallet: Decimal,
        new_margin: Decimal,
        max_positions: int,
        max_margin_usage: Decimal,
    ) -> str | None:
        """Why one more entry does not fit (None: it fits)."""
        if held + self.count >= max_positions:
            return f"max_positions ({max_positions}) reached"
        if wallet > 0 and margin_in_use + self.margin + new_margin > max_margin_usage * wallet:
            return f"margin in use would exceed {max_margin_usage:%} of the wallet"
        return None

    def reserve(self, symbol: str, margin: Decimal) -> Reservation:
        r = Reservation(symbol, margin)
        self._reserved[symbol] = r
        return r

    def release(self, symbol: str) -> None:
        self._reserved.pop(symbol, None)

    def symbols(self) -> set[str]:
        return set(self._reserved)


def _int_or_none(value: int | str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
