"""Conversions between domain values and SQLite column values.

Decimals are stored as TEXT so that they come back exactly as they went in
(a REAL column would turn 0.1 + 0.2 into 0.30000000000000004); JSON columns
hold Decimals as strings for the same reason.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from decimal import Context, Decimal, InvalidOperation
from pathlib import PurePath
from typing import Any

from trading.core.models import Leg, Stage

_WIDE = Context(prec=80)

STAGE_RANK: dict[str, int] = {Stage.INITIAL.value: 0, Stage.FIRST_DCA.value: 1, Stage.SECOND_DCA.value: 2}


def dec_text(value: Decimal | int | str, what: str = "value") -> str:
    """A finite Decimal (or int, or numeric string) as exact text; floats are refused (they are not exact)."""
    if isinstance(value, (bool, float)):
        raise TypeError(f"{what} must be a Decimal, int or numeric string, not {type(value).__name__} ({value!r})")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        try:
            d = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{what} must be a number, got {value!r}") from None
    elif isinstance(value, Decimal):
        d = value
    else:
        raise TypeError(f"{what} must be a Decimal, int or numeric string, not {type(value).__name__} ({value!r})")
    if not d.is_finite():
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return str(d)


def opt_dec_text(value: Decimal | int | str | None, what: str = "value") -> str | None:
    return None if value is None else dec_text(value, what)


def to_dec(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


def dec_add(a: str | None, b: str | None) -> str | None:
    """SQLite function ``dec_add(a, b)``: exact sum of two Decimal texts (NULL counts as 0)."""
    if a is None and b is None:
        return None
    # Wider than the default 28 digits: a running sum must never round.
    return str(_WIDE.add(Decimal(a or "0"), Decimal(b or "0")))


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, (dt.datetime, dt.date)):
        return obj.isoformat()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    raise TypeError(f"cannot store a {type(obj).__name__} as JSON: {obj!r}")


def to_json(value: Any) -> str | None:
    """JSON text (Decimals as strings, enums as values, dataclasses as objects); ``None`` stays SQL NULL."""
    if value is None:
        return None
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def legs_to_json(legs: tuple[Leg, ...]) -> str:
    return json.dumps(
        [
            {
                "stage": Stage(leg.stage).value,
                "price": dec_text(leg.price, "leg price"),
                "qty": dec_text(leg.qty, "leg qty"),
            }
            for leg in legs
        ],
        separators=(",", ":"),
    )


def legs_from_json(text: str) -> tuple[Leg, ...]:
    return tuple(Leg(Stage(item["stage"]), Decimal(item["price"]), Decimal(item["qty"])) for item in json.loads(text))


def check_day(day: str) -> str:
    """A calendar day as ``YYYY-MM-DD`` (the key of the daily statistics)."""
    try:
        parsed = dt.date.fromisoformat(day)
    except (TypeError, ValueError):
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}") from None
    if parsed.isoformat() != day:
        raise ValueError(f"day must be YYYY-MM-DD, got {day!r}")
    return day
