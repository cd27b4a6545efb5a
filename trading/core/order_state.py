"""Typed statuses of the orders journal and of positions, with their transition tables.

Pure values. The journal (``storage/journal.py``) stores them and refuses any
change the table does not allow; every module compares these members, never
bare strings.

Order life (one row per client order id)::

    PENDING --send--> SENT (a stop resting) | FILLED | REJECTED | CANCELED | EXPIRED
       |                 \\
       +--> UNKNOWN <-----+  (timeout, 5xx, -1007, lost reply: ask before anything else)
             |
             +--> SENT | FILLED | REJECTED | CANCELED | EXPIRED

A final status is never left: a late "sent" after the fill changes nothing.
"""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    PENDING = "pending"  # journaled before the request left (order-safety rule 1)
    SENT = "sent"  # accepted and resting (the exchange-side stops)
    UNKNOWN = "unknown"  # the request may or may not have executed: ask before sending again
    FILLED = "filled"
    REJECTED = "rejected"  # refused by the exchange, or proved never executed
    CANCELED = "canceled"
    EXPIRED = "expired"

    @property
    def final(self) -> bool:
        return self in _FINAL

    @property
    def unresolved(self) -> bool:
        """Its fate is not known yet (a resting stop counts: each reconcile confirms it still rests)."""
        return self not in _FINAL

    @property
    def in_flight(self) -> bool:
        """A market order whose outcome is not known (PENDING while sending, UNKNOWN after a lost reply)."""
        return self in (OrderState.PENDING, OrderState.UNKNOWN)


_FINAL = frozenset({OrderState.FILLED, OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED})

ORDER_TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PENDING: frozenset(OrderState) - {OrderState.PENDING},
    OrderState.SENT: frozenset({OrderState.UNKNOWN, *_FINAL}),
    OrderState.UNKNOWN: frozenset({OrderState.SENT, *_FINAL}),
    OrderState.FILLED: frozenset(),
    OrderState.REJECTED: frozenset(),
    OrderState.CANCELED: frozenset(),
    OrderState.EXPIRED: frozenset(),
}


def order_transition_allowed(old: OrderState, new: OrderState) -> bool:
    """Whether the journal may move an order from ``old`` to ``new`` (staying put is always allowed)."""
    return old is new or new in ORDER_TRANSITIONS[old]


class OrderKind(StrEnum):
    MARKET = "market"  # entries, DCA and exits
    STOP = "stop"  # the exchange-side backstop (algo order)


class PositionStatus(StrEnum):
    PENDING = "pending"  # the entry order is journaled; its fill is not known yet
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"  # the entry never filled

    @property
    def active(self) -> bool:
        return self in (PositionStatus.PENDING, PositionStatus.OPEN)


POSITION_TRANSITIONS: dict[PositionStatus, frozenset[PositionStatus]] = {
    PositionStatus.PENDING: frozenset({PositionStatus.OPEN, PositionStatus.FAILED}),
    PositionStatus.OPEN: frozenset({PositionStatus.CLOSED}),
    PositionStatus.CLOSED: frozenset(),
    PositionStatus.FAILED: frozenset(),
}


class Origin(StrEnum):
    SIGNAL = "signal"  # opened by the scanner's entry signal
    ADOPTED = "adopted"  # found on the exchange and taken over


class ExchangeOrderStatus(StrEnum):
    """An order's status as Binance reports it (``X`` / ``status``)."""

    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    EXPIRED = "EXPIRED"
    REJECTED = "REJECTED"

    @property
    def final(self) -> bool:
        return self in (
            ExchangeOrderStatus.FILLED,
            ExchangeOrderStatus.CANCELED,
            ExchangeOrderStatus.EXPIRED,
            ExchangeOrderStatus.REJECTED,
        )


class AlgoStatus(StrEnum):
    """A conditional (algo) order's status on Binance's Algo Service (``ALGO_UPDATE`` ``X``, ``algoStatus``)."""

    NEW = "NEW"  # resting, not triggered
    TRIGGERING = "TRIGGERING"  # triggered, being sent to the matching engine
    TRIGGERED = "TRIGGERED"  # its order is in the matching engine
    FINISHED = "FINISHED"  # its order filled or ended there: check the executed quantity
    CANCELED = "CANCELED"  # cancelled by the user (API or app)
    EXPIRED = "EXPIRED"  # cancelled by the system (e.g. a GTE_GTC stop whose position closed)
    REJECTED = "REJECTED"  # refused by the matching engine (e.g. margin check)
    UNKNOWN = "UNKNOWN"  # a status this code does not know yet

    @classmethod
    def parse(cls, value: object) -> AlgoStatus:
        try:
            return cls(str(value))
        except ValueError:
            return cls.UNKNOWN

    @property
    def ended_unfilled(self) -> bool:
        """Ended without trading (FINISHED needs its executed quantity to say)."""
        return self in (AlgoStatus.CANCELED, AlgoStatus.EXPIRED, AlgoStatus.REJECTED)
