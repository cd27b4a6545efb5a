"""The strategy configuration (SPEC section 7) and its validation.

Pure: parsing takes a mapping (already read from TOML by the caller) and
returns a frozen ``StrategyConfig`` or raises ``ConfigError`` listing every
problem with the key, the value given and the allowed range.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cached_property
from typing import Any

from trading.core.decimals import decimal_of
from trading.core.models import Stage


class ConfigError(ValueError):
    """One or more invalid config values; ``problems`` holds one message each."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True, slots=True)
class SignalParams:
    """Numbers of SPEC sections 2-3 (the notes' values as defaults)."""

    # 1h pre-filter (SPEC 2)
    prefilter_bars: int = 4
    prefilter_high_pct: float = 0.03
    prefilter_volume_ratio: float = 1.5
    prefilter_volume_lookback: int = 20
    prefilter_min_bullish: int = 2
    # moving averages and bands (SPEC 3)
    ma_fast: int = 5
    ma_short: int = 20
    ma_mid: int = 80
    ma_long: int = 480
    bb_fast_n: int = 200
    bb_fast_k: float = 2.0
    bb_slow_n: int = 480
    bb_slow_k: float = 1.5
    cross_lookback: int = 150
    dead_cross_lookback: int = 20
    fast_cross_lookback: int = 5
    # 1m strategy
    min_1m_conditions: int = 6
    m2_min_spread: float = 0.005
    m3_max_disp: float = 0.03
    m6_daily_surge: float = 0.15
    m6_days: int = 7
    # 3m strategy
    t2_max_disp: float = 0.02
    t4_max_disp: float = 0.02
    # 15m filter
    min_15m_conditions: int = 3
    f1_max_disp: float = 0.05
    f2_max_disp: float = 0.02
    f4_falling_bars: int = 2


ADOPT_CHOICES = ("ask", "all", "none")  # adopt_positions: ask on Telegram, adopt every unknown long, or none


@dataclass(frozen=True, slots=True)
class Fractions:
    """The config's fractions as exact decimals, made once per config (``StrategyConfig.fractions``).

    The ladder, the sizing and the risk table compute in ``Decimal``; the config keeps floats for its TOML and
    Telegram round trips. Each value is the shortest decimal of the float (``0.1`` -> ``Decimal("0.1")``).
    """

    max_margin_usage: Decimal
    max_account_loss: Decimal
    take_half_at: Decimal
    take_half_fraction: Decimal
    runner_trailing_stop: Decimal
    taker_fee: Decimal
    weights: Mapping[Stage, Decimal]  # margin of each buy, of the wallet balance
    triggers: Mapping[Stage, Decimal]  # first_dca, second_dca: from the initial fill
    stops: Mapping[Stage, Decimal]  # stop loss of each stage, from the average


@dataclass(frozen=True)  # no slots: ``fractions`` is cached on the instance
class StrategyConfig:
    universe_size: int = 150
    symbol_blacklist: tuple[str, ...] = ()
    scan_interval_s: int = 60
    leverage: int = 10
    margin_mode: str = "cross"
    max_positions: int = 10
    max_margin_usage: float = 0.55
    max_account_loss: float = 0.30
    initial_weight: float = 0.015
    first_dca_trigger: float = -0.03
    first_dca_weight: float = 0.020
    second_dca_trigger: float = -0.06
    second_dca_weight: float = 0.020
    stop_loss_by_stage: Mapping[str, float] = field(
        default_factory=lambda: {"initial": -0.10, "first_dca": -0.07, "second_dca": -0.05}
    )
    take_half_at: float = 0.10
    take_half_fraction: float = 0.5
    runner_trailing_stop: float = 0.03
    runner_ma_fast: int = 5
    runner_ma_slow: int = 20
    cooldown_after_stop_h: float = 24
    cooldown_after_exit_h: float = 1
    delist_guard_days: int = 14  # a contract settling within this many days leaves the universe
    exit_before_delist_h: float = 24  # a held one is closed this many hours before its settlement
    backstop_on_exchange: bool = True
    reconcile_interval_s: int = 15
    fallback_poll_interval_s: float = 3
    report_timezone: str = "Asia/Seoul"
    taker_fee: float = 0.0005  # Binance USD-M VIP0 taker; used by the risk table and the simulator
    alert_charts: bool = False  # entry, DCA and close alerts carry the position's chart (Telegram)
    adopt_positions: str = "ask"  # a long on the exchange the service did not open: "ask" | "all" | "none"
    signals: SignalParams = field(default_factory=SignalParams)

    # ---- derived values (Decimal, for exact sizing), made once per config
    @cached_property
    def fractions(self) -> Fractions:
        return Fractions(
            max_margin_usage=decimal_of(self.max_margin_usage),
            max_account_loss=decimal_of(self.max_account_loss),
            take_half_at=decimal_of(self.take_half_at),
            take_half_fraction=decimal_of(self.take_half_fraction),
            runner_trailing_stop=decimal_of(self.runner_trailing_stop),
            taker_fee=decimal_of(self.taker_fee),
            weights={
                Stage.INITIAL: decimal_of(self.initial_weight),
                Stage.FIRST_DCA: decimal_of(self.first_dca_weight),
                Stage.SECOND_DCA: decimal_of(self.second_dca_weight),
            },
            triggers={
                Stage.FIRST_DCA: decimal_of(self.first_dca_trigger),
                Stage.SECOND_DCA: decimal_of(self.second_dca_trigger),
            },
            stops={Stage(k): decimal_of(v) for k, v in self.stop_loss_by_stage.items() if k in STAGE_KEYS},
        )

    def stop_for(self, stage: Stage) -> Decimal:
        return self.fractions.stops[stage]

    def weight_for(self, stage: Stage) -> Decimal:
        return self.fractions.weights[stage]

    def trigger_for(self, stage: Stage) -> Decimal:
        return self.fractions.triggers[stage]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, SignalParams):
                v = dataclasses.asdict(v)
            elif isinstance(v, Mapping):
                v = dict(v)
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def with_value(self, key: str, value: Any) -> StrategyConfig:
        """A new config with one (possibly dotted, e.g. ``signals.ma_fast``) key changed, validated."""
        data = self.to_dict()
        parts = key.split(".")
        target = data
        for p in parts[:-1]:
            if p not in target or not isinstance(target[p], dict):
                raise ConfigError([f"unknown key {key!r}"])
            target = target[p]
        if parts[-1] not in target:
            raise ConfigError([f"unknown key {key!r}"])
        if isinstance(target[parts[-1]], dict) and isinstance(value, Mapping):
            # A partial table changes only the keys it names; parse_config would
            # otherwise fill the others with SPEC defaults, not the current values.
            target[parts[-1]] = {**target[parts[-1]], **value}
        else:
            target[parts[-1]] = value
        return parse_config(data)


# ------------------------------------------------------------------ validation
Check = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: type | tuple[type, ...]
    check: Check
    allowed: str


def _num(lo: float, hi: float, lo_open: bool = False, hi_open: bool = False, kind: Any = (int, float)) -> _Rule:
    def check(v: Any) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        return bool((v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi))

    text = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    return _Rule(kind, check, text)


def _int(lo: int, hi: int) -> _Rule:
    return _num(lo, hi, kind=int)


_TOP_RULES: dict[str, _Rule] = {
    "universe_size": _int(1, 1000),
    "scan_interval_s": _int(1, 3600),
    "leverage": _int(1, 125),
    "max_positions": _int(1, 200),
    "max_margin_usage": _num(0, 1, lo_open=True),
    "max_account_loss": _num(0, 1, lo_open=True),
    "initial_weight": _num(0, 1, lo_open=True),
    "first_dca_weight": _num(0, 1, lo_open=True),
    "second_dca_weight": _num(0, 1, lo_open=True),
    "first_dca_trigger": _num(-1, 0, lo_open=True, hi_open=True),
    "second_dca_trigger": _num(-1, 0, lo_open=True, hi_open=True),
    "take_half_at": _num(0, 10, lo_open=True),
    "take_half_fraction": _num(0, 1, lo_open=True, hi_open=True),
    "runner_trailing_stop": _num(0, 1, lo_open=True, hi_open=True),
    "runner_ma_fast": _int(1, 1000),
    "runner_ma_slow": _int(2, 1000),
    "cooldown_after_stop_h": _num(0, 24 * 365),
    "cooldown_after_exit_h": _num(0, 24 * 365),
    "delist_guard_days": _int(1, 365),
    "exit_before_delist_h": _num(1, 24 * 365),
    "reconcile_interval_s": _int(5, 3600),
    "fallback_poll_interval_s": _num(0.5, 60),
    "taker_fee": _num(0, 0.01),
}

_SIGNAL_RULES: dict[str, _Rule] = {
    "prefilter_bars": _int(1, 48),
    "prefilter_high_pct": _num(0, 1, lo_open=True),
    "prefilter_volume_ratio": _num(0, 100),
    "prefilter_volume_lookback": _int(1, 200),
    "prefilter_min_bullish": _int(0, 48),
    "ma_fast": _int(1, 2000),
    "ma_short": _int(1, 2000),
    "ma_mid": _int(1, 2000),
    "ma_long": _int(1, 2000),
    "bb_fast_n": _int(2, 2000),
    "bb_fast_k": _num(0, 10, lo_open=True),
    "bb_slow_n": _int(2, 2000),
    "bb_slow_k": _num(0, 10, lo_open=True),
    "cross_lookback": _int(1, 2000),
    "dead_cross_lookback": _int(1, 2000),
    "fast_cross_lookback": _int(1, 2000),
    "min_1m_conditions": _int(1, 7),
    "m2_min_spread": _num(0, 1),
    "m3_max_disp": _num(0, 1),
    "m6_daily_surge": _num(0, 10, lo_open=True),
    "m6_days": _int(1, 60),
    "t2_max_disp": _num(0, 1),
    "t4_max_disp": _num(0, 1),
    "min_15m_conditions": _int(1, 4),
    "f1_max_disp": _num(0, 1),
    "f2_max_disp": _num(0, 1),
    "f4_falling_bars": _int(1, 50),
}

STAGE_KEYS = tuple(s.value for s in Stage)


def allowed_range(key: str) -> str | None:
    """The allowed values of a numeric key (``leverage``, ``signals.ma_fast``, ``stop_loss_by_stage.initial``) as
    refusals show them, e.g. ``[1, 125]``; None for a key that is not a number."""
    if key.startswith("stop_loss_by_stage."):
        return "(-1, 0)"
    rule = _SIGNAL_RULES.get(key.removeprefix("signals.")) if key.startswith("signals.") else _TOP_RULES.get(key)
    return rule.allowed if rule is not None else None


def _type_ok(value: Any, kind: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool):  # bool is an int subclass; never accept it for numbers
        return kind is bool
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds)


def _check_rules(prefix: str, data: Mapping[str, Any], rules: Mapping[str, _Rule], problems: list[str]) -> None:
    for key, rule in rules.items():
        if key not in data:
            continue
        v = data[key]
        if not _type_ok(v, rule.kind):
            problems.append(
                f"{prefix}{key} = {v!r} has the wrong type: allowed {_kind_name(rule.kind)} in {rule.allowed}"
            )
        elif not rule.check(v):
            problems.append(f"{prefix}{key} = {v!r} is out of range: allowed {rule.allowed}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return "an integer" if kind is int else "a number"


def _unknown(key: str, value: Any, known: Iterable[str], prefix: str = "") -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    hint = f" (did you mean {prefix + close[0]!r}?)" if close else ""
    return f"unknown key {prefix + key!r} = {value!r}{hint}"


def parse_config(data: Mapping[str, Any]) -> StrategyConfig:
    """Build a validated config from a mapping; missing keys take SPEC defaults."""
    problems: list[str] = []
    top_fields = {f.name for f in dataclasses.fields(StrategyConfig)}
    sig_fields = {f.name for f in dataclasses.fields(SignalParams)}
    for key in data:
        if key not in top_fields:
            problems.append(_unknown(key, data[key], top_fields))
    raw_signals = data.get("signals", {})
    if not isinstance(raw_signals, Mapping):
        problems.append(f"signals = {raw_signals!r} must be a table")
        raw_signals = {}
    for key in raw_signals:
        if key not in sig_fields:
            problems.append(_unknown(key, raw_signals[key], sig_fields, "signals."))

    _check_rules("", data, _TOP_RULES, problems)
    _check_rules("signals.", raw_signals, _SIGNAL_RULES, problems)

    if "margin_mode" in data and data["margin_mode"] not in ("cross", "isolated"):
        problems.append(f"margin_mode = {data['margin_mode']!r} is invalid: allowed 'cross' or 'isolated'")
    if "adopt_positions" in data and data["adopt_positions"] not in ADOPT_CHOICES:
        problems.append(f"adopt_positions = {data['adopt_positions']!r} is invalid: allowed 'ask', 'all' or 'none'")
    for key in ("backstop_on_exchange", "alert_charts"):
        if key in data and not isinstance(data[key], bool):
            problems.append(f"{key} = {data[key]!r} is invalid: allowed true or false")
    if "report_timezone" in data and (not isinstance(data["report_timezone"], str) or not data["report_timezone"]):
        problems.append(f"report_timezone = {data['report_timezone']!r} is invalid: allowed an IANA zone name")
    blacklist: tuple[str, ...] = ()
    if "symbol_blacklist" in data:
        bl = data["symbol_blacklist"]
        if not isinstance(bl, list | tuple) or not all(isinstance(s, str) and s.strip() for s in bl):
            problems.append(f"symbol_blacklist = {bl!r} is invalid: allowed a list of symbols like ['BTCUSDT']")
        else:
            blacklist = tuple(s.strip().upper() for s in bl)

    stops = dict(StrategyConfig().stop_loss_by_stage)
    if "stop_loss_by_stage" in data:
        raw = data["stop_loss_by_stage"]
        if not isinstance(raw, Mapping):
            problems.append(f"stop_loss_by_stage = {raw!r} must be a table with keys {', '.join(STAGE_KEYS)}")
        else:
            for k, v in raw.items():
                if k not in STAGE_KEYS:
                    problems.append(_unknown(k, v, STAGE_KEYS, "stop_loss_by_stage."))
                elif not _type_ok(v, (int, float)):
                    problems.append(f"stop_loss_by_stage.{k} = {v!r} has the wrong type: allowed a number in (-1, 0)")
                elif not (math.isfinite(v) and -1 < v < 0):
                    problems.append(f"stop_loss_by_stage.{k} = {v!r} is out of range: allowed (-1, 0)")
                else:
                    stops[k] = float(v)

    if problems:
        raise ConfigError(problems)

    sig_kwargs = {k: _coerce(SignalParams, k, v) for k, v in raw_signals.items()}
    kwargs = {
        k: _coerce(StrategyConfig, k, v)
        for k, v in data.items()
        if k not in ("signals", "stop_loss_by_stage", "symbol_blacklist")
    }
    cfg = StrategyConfig(
        **kwargs,
        symbol_blacklist=blacklist,
        stop_loss_by_stage=stops,
        signals=SignalParams(**sig_kwargs),
    )
    cross = cross_field_problems(cfg)
    if cross:
        raise ConfigError(cross)
    return cfg


def _coerce(cls: type, key: str, value: Any) -> Any:
    default = getattr(cls(), key)
    if isinstance(default, float) and isinstance(value, int):
        return float(value)
    return value


def cross_field_problems(cfg: StrategyConfig) -> list[str]:
    """Relations between keys (orderings that make the ladder meaningful)."""
    p: list[str] = []
    if not cfg.second_dca_trigger < cfg.first_dca_trigger < 0:
        p.append(
            f"second_dca_trigger = {cfg.second_dca_trigger!r} and first_dca_trigger = {cfg.first_dca_trigger!r}"
            " must be ordered: second < first < 0"
        )
    init_stop = cfg.stop_loss_by_stage["initial"]
    if init_stop >= cfg.first_dca_trigger:
        p.append(
            f"stop_loss_by_stage.initial = {init_stop!r} must lie below first_dca_trigger = "
            f"{cfg.first_dca_trigger!r}, or the first DCA could never fire"
        )
    if not p:
        # The first-DCA stop is measured from the average after the first DCA (taken at its trigger
        # price): at or above the second trigger, the second DCA could never fire either.
        first_stop = _first_dca_stop_from_initial(cfg)
        if first_stop >= cfg.trigger_for(Stage.SECOND_DCA):
            p.append(
                f"stop_loss_by_stage.first_dca = {cfg.stop_loss_by_stage['first_dca']!r} puts the first-DCA stop at "
                f"{float(first_stop):+.2%} from the initial entry, not below second_dca_trigger = "
                f"{cfg.second_dca_trigger!r}: the second DCA could never fire"
            )
    per_position = cfg.initial_weight + cfg.first_dca_weight + cfg.second_dca_weight
    if per_position > 1:
        p.append(f"initial + first + second DCA weights = {per_position:g} exceed the whole balance (max 1)")
    if cfg.exit_before_delist_h >= cfg.delist_guard_days * 24:
        p.append(
            f"exit_before_delist_h = {cfg.exit_before_delist_h:g} must be below delist_guard_days = "
            f"{cfg.delist_guard_days} x 24 h: a held position is closed before its settlement, which is only "
            f"watched from delist_guard_days ahead"
        )
    if cfg.runner_ma_fast >= cfg.runner_ma_slow:
        p.append(f"runner_ma_fast = {cfg.runner_ma_fast} must be below runner_ma_slow = {cfg.runner_ma_slow}")
    s = cfg.signals
    if not s.ma_fast < s.ma_short < s.ma_mid < s.ma_long:
        p.append(
            f"signals.ma_fast/ma_short/ma_mid/ma_long = {s.ma_fast}/{s.ma_short}/{s.ma_mid}/{s.ma_long}"
            " must be increasing"
        )
    if s.prefilter_min_bullish > s.prefilter_bars:
        p.append(
            f"signals.prefilter_min_bullish = {s.prefilter_min_bullish} exceeds signals.prefilter_bars = "
            f"{s.prefilter_bars}"
        )
    return p


def _first_dca_stop_from_initial(cfg: StrategyConfig) -> Decimal:
    """The first-DCA stop price relative to the initial entry, with the first DCA filled at its trigger."""
    one = Decimal(1)
    dca_price = one + cfg.trigger_for(Stage.FIRST_DCA)
    w0, w1 = cfg.weight_for(Stage.INITIAL), cfg.weight_for(Stage.FIRST_DCA)
    avg = (w0 + w1) / (w0 + w1 / dca_price)  # notional-weighted: qty = notional / price
    return avg * (one + cfg.stop_for(Stage.FIRST_DCA)) - one


DEFAULT_CONFIG = StrategyConfig()
