"""The strategy file and its checks: the I/O shell around ``core.config`` and ``core.risk``.

* ``load_strategy``: TOML file -> validated ``StrategyConfig`` (ranges, cross
  checks, risk, time zone), or ``ConfigError`` listing every problem.
* ``parse_value``: typed values for ``/config set KEY VALUE`` (the service API applies them:
  ``StrategyConfig.with_value`` then ``validate_full``).
* ``cmd_check_config``: ``surgedca check-config``.

``/config set`` values are written as in the TOML file: fractions are plain
numbers (``0.03`` is 3%). A trailing ``%`` is accepted on fraction keys only and
divides by 100 (``3%`` = ``0.03``, ``-7%`` = ``-0.07``); on any other key a
``%`` is an error, never a guess.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import re
import sys
import tomllib
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from trading.core.config import (
    STAGE_KEYS,
    ConfigError,
    SignalParams,
    StrategyConfig,
    allowed_range,
    parse_config,
)
from trading.core.decimals import decimal_of
from trading.core.reports import RiskTable
from trading.core.risk import DEFAULT_BRACKETS, risk_table, validate_strategy
from trading.exchange.base import Bracket

# Keys whose value is a fraction (0.03 = 3%): the only ones that accept a "%" suffix.
FRACTION_KEYS: frozenset[str] = frozenset(
    {
        "max_margin_usage",
        "max_account_loss",
        "initial_weight",
        "first_dca_trigger",
        "first_dca_weight",
        "second_dca_trigger",
        "second_dca_weight",
        "take_half_at",
        "take_half_fraction",
        "runner_trailing_stop",
        "taker_fee",
        *(f"stop_loss_by_stage.{s}" for s in STAGE_KEYS),
        *(
            f"signals.{k}"
            for k in (
                "prefilter_high_pct",
                "m2_min_spread",
                "m3_max_disp",
                "m6_daily_surge",
                "t2_max_disp",
                "t4_max_disp",
                "f1_max_disp",
                "f2_max_disp",
            )
        ),
    }
)

_TOP_TYPES: dict[str, str] = {f.name: str(f.type) for f in dataclasses.fields(StrategyConfig)}
_SIGNAL_TYPES: dict[str, str] = {f.name: str(f.type) for f in dataclasses.fields(SignalParams)}
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,40}$")
_INT_RE = re.compile(r"^[+-]?\d+$")
MAX_INT_DIGITS = 18  # every integer key's range fits in a few digits; this keeps int() and messages small
MAX_EXPONENT = 300  # |value| in [1e-300, 1e300], or zero: representable as a float, and far beyond every range
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})


# ------------------------------------------------------------------ loading
def read_strategy_file(path: Path) -> dict[str, Any]:
    """The raw TOML mapping of a strategy file; ``ConfigError`` when unreadable or not TOML."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError([f"strategy file {str(path)!r} does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"strategy file {str(path)!r} is not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"strategy file {str(path)!r} cannot be read: {exc.strerror or exc}"]) from None


def load_strategy(path: Path | None, brackets: Iterable[Bracket] = DEFAULT_BRACKETS) -> StrategyConfig:
    """The validated strategy of a TOML file (``None``: SPEC defaults); ``ConfigError`` with every problem."""
    cfg = parse_strategy_file(path) if path is not None else StrategyConfig()
    problems = validate_full(cfg, brackets)
    if problems:
        raise ConfigError(problems)
    return cfg


def parse_strategy_file(path: Path) -> StrategyConfig:
    """A file's config checked for types, ranges and cross checks only (no risk): ``ConfigError`` otherwise."""
    data = read_strategy_file(path)
    try:
        return parse_config(data)
    except ConfigError as exc:
        tz = data.get("report_timezone")
        raise ConfigError([*exc.problems, *(timezone_problems(tz) if isinstance(tz, str) else [])]) from None


def timezone_problems(name: object) -> list[str]:
    """The zone must exist in this machine's tz database (tzdata); a missing or empty name is parse_config's job."""
    if not isinstance(name, str) or not name:
        return []
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return [f"report_timezone = {name!r} is not a known time zone: allowed an IANA name like 'Asia/Seoul' or 'UTC'"]
    return []


def validate_full(cfg: StrategyConfig, brackets: Iterable[Bracket] = DEFAULT_BRACKETS) -> list[str]:
    """Every problem of a config: ranges and types, cross checks, risk (SPEC 6) and the time zone."""
    try:
        parse_config(cfg.to_dict())  # ranges, types and cross checks, even for a hand-built config
    except ConfigError as exc:
        # Risk arithmetic on out-of-range values would only add noise (or divide by zero).
        return [*exc.problems, *timezone_problems(cfg.report_timezone)]
    return [*validate_strategy(cfg, tuple(brackets)), *timezone_problems(cfg.report_timezone)]


# ------------------------------------------------------------------ /config set
def normalize_key(key: str) -> str:
    """Keys are lower case; phones like to capitalise the first letter."""
    return key.strip().lower()


def parse_value(key: str, raw: str) -> Any:
    """The typed value of ``/config set KEY VALUE`` for ``key``; ``ConfigError`` naming key and expected type.

    Only the type is checked here; ranges and relations are checked when the
    value is applied (``StrategyConfig.with_value``, ``validate_full``).
    """
    key = normalize_key(key)
    raw = raw.strip()
    if key.startswith("stop_loss_by_stage."):
        stage = key.split(".", 1)[1]
        if stage not in STAGE_KEYS:
            raise ConfigError([_unknown_key(key, [f"stop_loss_by_stage.{s}" for s in STAGE_KEYS])])
        return _parse_float(key, raw)
    if key.startswith("signals."):
        name = key.split(".", 1)[1]
        if name not in _SIGNAL_TYPES:
            raise ConfigError([_unknown_key(key, [f"signals.{k}" for k in _SIGNAL_TYPES])])
        return _parse_scalar(key, _SIGNAL_TYPES[name], raw)
    if key == "signals":
        raise ConfigError(["signals: set one signal parameter at a time, e.g. 'signals.ma_fast 5'"])
    if key not in _TOP_TYPES:
        raise ConfigError([_unknown_key(key, [*_TOP_TYPES, *(f"signals.{k}" for k in _SIGNAL_TYPES)])])
    kind = _TOP_TYPES[key]
    if key == "symbol_blacklist":
        return _parse_symbols(key, raw)
    if key == "stop_loss_by_stage":
        return _parse_stop_table(key, raw)
    return _parse_scalar(key, kind, raw)


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")


def _parse_scalar(key: str, kind: str, raw: str) -> Any:
    if kind == "bool":
        low = raw.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError([f"{key}: expected true or false, got {raw!r}"])
    if kind == "int":
        if "%" in raw:
            raise ConfigError([f"{key}: expected an integer (no %), got {_shown(raw)}"])
        digits = raw.replace("_", "")
        if not _INT_RE.match(digits):
            raise ConfigError([f"{key}: expected an integer, e.g. 10, got {_shown(raw)}"])
        if len(digits.lstrip("+-").lstrip("0")) > MAX_INT_DIGITS:
            raise ConfigError([_unrepresentable(key, raw)])
        return int(digits)
    if kind == "float":
        return _parse_float(key, raw)
    if kind == "str":
        if not raw:
            raise ConfigError([f"{key}: expected a text value, got nothing"])
        return raw.lower() if key in ("margin_mode", "adopt_positions") else raw
    raise ConfigError([f"{key}: cannot be set from text"])  # pragma: no cover - every type is handled above


def _parse_float(key: str, raw: str) -> float:
    text = raw.replace(" ", "")
    percent = text.endswith("%")
    if percent:
        if key not in FRACTION_KEYS:
            raise ConfigError([f"{key}: expected a plain number (this key takes no %), got {raw!r}"])
        text = text[:-1]
    try:
        value = Decimal(text)
    except InvalidOperation:
        example = "0.03 or 3%" if key in FRACTION_KEYS else "1.5"
        raise ConfigError([f"{key}: expected a number, e.g. {example}, got {_shown(raw)}"]) from None
    if not value.is_finite():
        raise ConfigError([f"{key}: expected a finite number, got {_shown(raw)}"])
    # Far beyond any allowed range, and beyond what a float (or the percent division) can hold: 9e999999999%
    # would overflow, 1e-400 would become 0 without a word.
    if value and not -MAX_EXPONENT <= value.adjusted() <= MAX_EXPONENT:
        raise ConfigError([_unrepresentable(key, raw)])
    if percent:
        value = value.scaleb(-2)
    return float(value)


def _shown(raw: str) -> str:
    """The value as quoted back in a refusal: a 5,000-digit number is not repeated in full."""
    return repr(raw if len(raw) <= 40 else raw[:37] + "...")


def _unrepresentable(key: str, raw: str) -> str:
    allowed = allowed_range(key)
    return f"{key} = {_shown(raw)} is out of range" + (f": allowed {allowed}" if allowed else "")


def _parse_symbols(key: str, raw: str) -> list[str]:
    if raw.lower() in ("", "-", "none", "[]"):
        return []
    out: list[str] = []
    for token in re.split(r"[,\s]+", raw.strip("[] ")):
        sym = token.strip("'\"").upper()
        if not sym:
            continue
        if not _SYMBOL_RE.match(sym):
            raise ConfigError([f"{key}: expected symbols like BTCUSDT,ETHUSDT (or 'none'), got {token!r}"])
        if sym not in out:
            out.append(sym)
    return out


def _parse_stop_table(key: str, raw: str) -> dict[str, float]:
    example = "initial=-0.10,first_dca=-0.07,second_dca=-0.05"
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in raw.strip("{} ").split(","))):
        name, sep, value = part.replace(":", "=").partition("=")
        name = name.strip().strip("'\"").lower()
        if not sep or name not in STAGE_KEYS:
            raise ConfigError([f"{key}: expected stage=value pairs like {example}, got {part!r}"])
        if name in out:
            raise ConfigError([f"{key}: stage {name!r} given twice"])
        out[name] = _parse_float(f"{key}.{name}", value)
    if not out:
        raise ConfigError([f"{key}: expected stage=value pairs like {example}, got {raw!r}"])
    return out


# ------------------------------------------------------------------ text output
def to_toml(cfg: StrategyConfig, *, mark_changes: bool = True) -> str:
    """The config as a TOML document (loads back to the same config); non-defaults marked by a comment."""
    default = StrategyConfig().to_dict()
    data = cfg.to_dict()
    lines: list[str] = []
    nested: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    for key, value in data.items():
        if key == "signals":
            nested.append((key, value, default[key]))
            continue
        lines.append(_toml_line(key, value, default[key], mark_changes))
    for table, values, defaults in nested:
        lines.extend(("", f"[{table}]"))
        lines.extend(_toml_line(k, v, defaults[k], mark_changes) for k, v in values.items())
    return "\n".join(lines) + "\n"


def _toml_line(key: str, value: Any, default: Any, mark: bool) -> str:
    line = f"{key} = {_toml_value(value)}"
    if mark and value != default:
        line += f"  # default: {_toml_value(default)}"
    return line


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):  # never produced by a validated config
            raise ValueError(f"cannot write {v!r} to TOML")
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a JSON string is a valid TOML basic string
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{ " + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def format_risk_table(table: RiskTable) -> str:
    """Plain-text risk table (English, aligned columns) for ``check-config`` and logs."""
    isolated = table.margin_mode == "isolated"
    head = ["stage", "margin", "notional", "stop", "loss at stop", "fees", "loss+fees", "% of balance"]
    if isolated:
        head += ["liquidation", "stop above liq."]
    body: list[list[str]] = []
    for r in table.rows:
        row = [
            r.stage,
            _money(r.margin),
            _money(r.notional),
            _pct(r.stop_pct),
            _money(r.loss_at_stop),
            _money(r.fees),
            _money(r.loss_at_stop + r.fees),
            _pct(r.loss_pct_of_balance),
        ]
        if isolated:
            row += [
                "-" if r.liquidation_pct is None else _pct(r.liquidation_pct),
                {True: "yes", False: "NO", None: "-"}[r.stop_above_liquidation],
            ]
        body.append(row)
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]

    def fmt(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest]).rstrip()

    n = table.max_positions
    total = table.worst_case_loss + table.worst_case_fees
    lines = [
        f"Risk at a wallet balance of {_money(table.balance)} USDT: leverage {table.leverage}x, "
        f"{table.margin_mode} margin, up to {n} positions",
        "One position, cumulative per ladder stage, in USDT. Loss at stop = notional x stop (not margin x stop).",
        "DCAs are assumed filled at their trigger prices; stop and liquidation are relative to the average entry.",
        "",
        fmt(head),
        fmt(["-" * w for w in widths]),
        *(fmt(row) for row in body),
        "",
        f"Worst case, {n} positions all stopped at their worst stage: loss {_money(table.worst_case_loss)} USDT"
        f" = {_pct(table.worst_case_loss / table.balance)} of the balance,"
        f" plus fees {_money(table.worst_case_fees)} USDT = {_money(total)} USDT = {_pct(table.worst_case_pct)}"
        f" (limit max_account_loss {_pct(table.max_account_loss)})",
        f"Margin in use with {n} positions fully laddered: {_pct(table.margin_in_use_full)} of the balance",
        "Slippage and funding come on top of these figures.",
    ]
    return "\n".join(lines)


def _money(x: Decimal) -> str:
    return f"{x:,.2f}"


def _pct(x: Decimal) -> str:
    return f"{x * 100:.2f}%"


# ------------------------------------------------------------------ check-config
def cmd_check_config(file: Path | None, balance: float = 1000.0) -> int:
    """``surgedca check-config``: 0 when the strategy is valid, 1 (reasons on stderr) when not."""
    if file is None:
        env = os.environ.get("STRATEGY_FILE", "").strip()
        file = Path(env) if env else None
    source = str(file) if file is not None else "SPEC defaults (no --file, STRATEGY_FILE unset)"
    if not (math.isfinite(balance) and balance > 0):
        print(f"surgedca check-config: --balance must be a positive number, got {balance!r}", file=sys.stderr)
        return 2
    try:
        cfg = parse_strategy_file(file) if file is not None else StrategyConfig()
    except ConfigError as exc:
        _print_problems(source, exc.problems)
        return 1

    print(f"Strategy: {source}")
    print("Effective configuration (TOML; '# default:' marks a changed value):")
    print()
    print(to_toml(cfg), end="")
    print()
    table = risk_table(cfg, decimal_of(balance))
    print(format_risk_table(table))
    print()

    # Ranges and cross checks passed in parse_config; the risk is judged at the balance asked for (the
    # service validates at 1,000 USDT; larger balances reach higher bracket tiers, never lower ones).
    problems = [*table.problems, *timezone_problems(cfg.report_timezone)]
    if problems:
        print("Result: INVALID (see the reasons on stderr)")
        _print_problems(source, problems)
        return 1
    print("Result: OK")
    return 0


def _print_problems(source: str, problems: Iterable[str]) -> None:
    print(f"surgedca check-config: the strategy ({source}) is invalid:", file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
