"""Floats to exact decimals: the one conversion.

A float read from TOML, Telegram or a settings file (``0.1``) is turned into the shortest decimal that
reads back as the same float (``Decimal("0.1")``), which is what the user wrote, not the float's binary
expansion (``Decimal(0.1)`` = 0.1000000000000000055511151231257827...). Strategy fractions are converted
once per config (``StrategyConfig.fractions``); anything else that starts as a float (a price from a candle
file, a balance from the settings) comes through here.
"""

from __future__ import annotations

from decimal import Decimal


def decimal_of(value: float) -> Decimal:
    """The shortest ``Decimal`` that reads back as ``float(value)``."""
    return Decimal(repr(float(value)))
