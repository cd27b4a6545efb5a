"""Request parameters read the way Binance reads them (empty counts as not sent)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from urllib.parse import parse_qsl

from tests.fakes.binance import errors

_DECIMAL = re.compile(r"^-?([0-9]{1,20})(\.[0-9]{1,20})?$")
_DECIMAL_RANGE = r"^([0-9]{1,20})(\.[0-9]{1,20})?$"
_INTEGER_RANGE = "^[0-9]{1,20}$"
CLIENT_ID = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def parse_params(raw_query: str, raw_body: str) -> dict[str, str]:
    """Query and form body merged; the same name twice is refused like Binance does (-1101)."""
    merged: dict[str, str] = {}
    for raw in (raw_query, raw_body):
        for name, value in parse_qsl(raw, keep_blank_values=True):
            if name in merged:
                raise errors.duplicate_param(name)
            merged[name] = value
    return merged


class Params:
    def __init__(self, items: dict[str, str]) -> None:
        self.items = items

    def raw(self, name: str) -> str | None:
        value = self.items.get(name)
        return None if value is None or value == "" else value

    def raw_ci(self, name: str) -> str | None:
        """Case-insensitive name (the algo endpoints document ``algoid`` but clients send ``algoId``)."""
        lowered = name.lower()
        for key, value in self.items.items():
            if key.lower() == lowered and value != "":
                return value
        return None

    def str(self, name: str, *, required: bool = False) -> str | None:
        value = self.raw(name)
        if value is None and required:
            raise errors.missing_param(name)
        return value

    def int(self, name: str, *, required: bool = False, case_insensitive: bool = False) -> int | None:
        value = self.raw_ci(name) if case_insensitive else self.raw(name)
        if value is None:
            if required:
                raise errors.missing_param(name)
            return None
        if not value.isdigit() or len(value) > 20:
            raise errors.illegal_chars(name, _INTEGER_RANGE)
        return int(value)

    def decimal(self, name: str, *, required: bool = False) -> Decimal | None:
        value = self.raw(name)
        if value is None:
            if required:
                raise errors.missing_param(name)
            return None
        if not _DECIMAL.match(value):
            raise errors.illegal_chars(name, _DECIMAL_RANGE)
        try:
            return Decimal(value)
        except InvalidOperation:
            raise errors.illegal_chars(name, _DECIMAL_RANGE) from None

    def bool(self, name: str) -> bool | None:
        value = self.raw(name)
        if value is None:
            return None
        if value.lower() not in ("true", "false"):
            raise errors.invalid_value(name)
        return value.lower() == "true"

    def enum(
        self, name: str, allowed: tuple[str, ...], error: errors.BinanceError, *, default: str | None = None
    ) -> str:
        value = self.raw(name)
        if value is None:
            if default is not None:
                return default
            raise errors.missing_param(name)
        if value not in allowed:
            raise error
        return value
