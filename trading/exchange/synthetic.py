"""A synthetic USD-M market: deterministic per seed, generated one UTC day at a time, forever.

What ``make run`` shows a newcomer. About twenty made-up USDT perpetuals
(prices from 0.001 to 50,000, Binance-like tick and step, min notional 5
except the 50,000 one at 100) move with noise, slow trends and a schedule of
*events* that contain what the strategy trades:

``setup``
    The pattern of SPEC 2-3, designed against the real evaluator: a climb of
    7-12% over 16-30 hours (15m MA80 over MA480 and its upper band over
    BB(480)'s: F1-F3), 6-10 calm hours (the 1m BB(200) upper band sinks under
    BB(480)'s), a bullish run-up hour, a +4.5-7.5% surge inside one clock hour
    on 5-9x volume (1h pre-filter: +3% high, 1.5x volume, two bullish hours),
    a plateau, then a 2.5-3.5% dip that makes the 1m MA20 cross under MA80
    while MA80 stays above MA480, with bearish candles (M1-M5, M7). Then one
    outcome: ``continuation`` (+13-25%: take-half, then the runner's exit as
    it fades), ``dip_recover`` (-4.5-6.5% then back above the entry: both DCA
    levels and the staged-recovery sells), ``crash`` (-12-25%: stop loss /
    backstop) or ``fizzle`` (drifts sideways).
``pump``
    +15-30% inside one UTC day (the daily surge of M6), then a partial retrace.
``crash``
    -12-30% within hours, then a partial rebound.
``downtrend``
    A slow slide of 3-8% over 6-18 hours.

A slow pull towards each symbol's starting price keeps prices in range forever.

The first setup of each symbol has its dip staggered ~47 minutes apart after
the warm-up, with outcomes cycling through the four kinds, so the service
trades within the first simulated hour whatever the seed (checked against
``trading.core.signals`` by ``tests/integration/sim/test_synthetic_trading.py``);
later setups come about every two days per symbol. Each symbol draws
from its own random streams (``(seed, symbol index, ...)``), so changing the
number of symbols never changes the others' prices.

Generation is sequential (a day continues from the previous day's last close
and the events still running), vectorised with numpy inside a day: about a
millisecond per symbol-day.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from trading.core.models import SymbolRules
from trading.exchange.base import Market

MINUTE_MS = 60_000
DAY_MINUTES = 1440
DAY_MS = DAY_MINUTES * MINUTE_MS
SYNTH_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: a fixed origin keeps runs reproducible
WARMUP_DAYS = 7  # 15m MA480 + 150 bars of look-back is ~6.6 days; M6 wants 7 daily candles
_MAX_EVENT_MINUTES = 4 * DAY_MINUTES  # no event profile is longer (the carry buffer's length)
_FIRST_DIP_OFFSET_MIN = 35  # first setup's dip after the warm-up (minutes), then staggered per symbol
_FIRST_DIP_STAGGER_MIN = 47
_OUTCOMES = ("continuation", "dip_recover", "crash", "continuation", "dip_recover", "fizzle")

# Made-up bases (none is a Binance listing); prices spread from 0.001 to 50,000.
_BASES = (
    "ZORB", "KWIX", "PLONK", "VEXA", "MIRU", "QUADO", "TRELL", "BLINX", "ORVO", "SNAPU",
    "GLYDE", "FROXI", "NIMBA", "JUXTA", "WOBL", "CRAVO", "DYNQ", "HALOX", "PIXEO", "YONDR",
)  # fmt: skip
_PRICES = (
    0.00123, 0.00874, 0.0421, 0.1385, 0.3127, 0.8764, 1.452, 2.918, 5.373, 11.84,
    23.61, 47.9, 88.2, 156.7, 412.5, 951.0, 2480.0, 7350.0, 18900.0, 49800.0,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SynthSymbol:
    """One synthetic perpetual and the constants of its price process."""

    index: int
    symbol: str
    price0: float
    tick: Decimal
    step: Decimal
    min_notional: Decimal
    sigma: float  # per-minute log-return volatility
    base_volume: float  # base-asset volume per minute, before multipliers

    @property
    def decimals(self) -> int:
        return decimal_places(self.tick)

    def market(self) -> Market:
        base = self.symbol.removesuffix("USDT")
        rules = SymbolRules(
            symbol=self.symbol,
            tick_size=self.tick,
            step_size=self.step,
            min_qty=self.step,
            min_notional=self.min_notional,
            max_qty=None,
        )
        return Market(self.symbol, base, "USDT", "TRADING", rules, max_leverage=125 if self.price0 > 10_000 else 50)


def _pow10(exp: int) -> Decimal:
    return Decimal(f"{10.0**exp:.{max(0, -exp)}f}")  # "0.0001" / "1000", not "1E-4" / "1E+3"


def decimal_places(value: Decimal) -> int:
    """Digits after the point of a tick or step: 2 for 0.01, 0 for 1 or 1E+1."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # "n", "N", "F": NaN or infinity
        raise ValueError(f"{value} has no decimal places")
    return max(0, -exponent)


def tick_for(price: float) -> Decimal:
    """About five significant digits, as Binance lists most perpetuals."""
    return _pow10(math.floor(math.log10(price)) - 4)


def step_for(price: float) -> Decimal:
    """One step is worth at most ~1 USDT, and never finer than 0.001 (like BTCUSDT)."""
    return max(_pow10(math.floor(math.log10(1.0 / price))), Decimal("0.001"))


def make_symbol(seed: int, index: int) -> SynthSymbol:
    rng = np.random.default_rng([seed, index, 0])
    slot = index % len(_PRICES)
    name = _BASES[index] if index < len(_BASES) else f"SYN{index:03d}"
    low, high = (1.0 if slot == 0 else 0.8), (1.0 if slot == len(_PRICES) - 1 else 1.25)  # stay in [0.001, 50000]
    price0 = _PRICES[slot] * float(rng.uniform(low, high))
    tick = tick_for(price0)
    price0 = round(round(price0 / float(tick)) * float(tick), decimal_places(tick))
    sigma = float(rng.uniform(0.0006, 0.0012)) * (0.6 if price0 > 10_000 else 1.0)
    quote_per_day = float(10 ** rng.uniform(6.7, 8.7))
    return SynthSymbol(
        index=index,
        symbol=f"{name}USDT",
        price0=price0,
        tick=tick,
        step=step_for(price0),
        min_notional=Decimal(100) if slot == len(_PRICES) - 1 else Decimal(5),
        sigma=sigma,
        base_volume=quote_per_day / DAY_MINUTES / price0,
    )


# ------------------------------------------------------------------ event profiles
@dataclass(slots=True)
class Event:
    """One scheduled move: per-minute log-return increments and volume multipliers from ``start`` (minute index)."""

    kind: str
    start: int  # minutes since the market's origin
    returns: np.ndarray
    volume: np.ndarray
    sigma: np.ndarray  # noise multiplier (quiet before a surge, wild during one)
    detail: dict[str, float | str] = field(default_factory=dict)

    @property
    def end(self) -> int:
        return self.start + int(self.returns.shape[0])


def _smooth(total: float, n: int) -> np.ndarray:
    """``n`` log-return increments summing to ``total``, fastest in the middle (an S-shaped move)."""
    n = max(1, int(n))
    w = np.sin(np.pi * (np.arange(n) + 0.5) / n)
    return total * w / w.sum()


def _linear(total: float, n: int) -> np.ndarray:
    n = max(1, int(n))
    return np.full(n, total / n)


class _Builder:
    """Concatenates phases (returns, volume multiplier) into one event profile."""

    def __init__(self) -> None:
        self.r: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.s: list[np.ndarray] = []

    def add(self, r: np.ndarray, vol: float | np.ndarray, sigma: float | None = None) -> None:
        """A phase: returns, volume multiplier, noise multiplier (default: grows with the volume)."""
        v = np.broadcast_to(np.asarray(vol, dtype=np.float64), r.shape).copy()
        self.r.append(r)
        self.v.append(v)
        self.s.append(np.minimum(np.sqrt(v), 2.5) if sigma is None else np.full(r.shape, sigma))

    @property
    def length(self) -> int:
        return sum(int(a.shape[0]) for a in self.r)

    def build(self, kind: str, start: int, **detail: float | str) -> Event:
        return Event(kind, start, np.concatenate(self.r), np.concatenate(self.v), np.concatenate(self.s), dict(detail))


def _pct(x: float) -> float:
    return math.log1p(x)


def _setup(rng: np.random.Generator, outcome: str, *, dip_at: int | None = None, after: int | None = None) -> Event:
    """The surge-then-dip pattern; placed so its dip ends at ``dip_at``, or as soon as possible ``after`` a minute."""
    climb_n = int(rng.integers(16 * 60, 30 * 60))
    calm_n = int(rng.integers(6 * 60, 10 * 60))
    surge_n = int(rng.integers(15, 31))
    plateau_n = int(rng.integers(25, 46))
    dip_n = int(rng.integers(20, 36))
    base_n = int(rng.integers(5, 16))
    # The surge starts 5-15 minutes into a clock hour so its whole rise lands in one 1h candle (H1).
    if dip_at is not None:
        surge_start = dip_at - dip_n - plateau_n - surge_n
        surge_start = (surge_start // 60) * 60 + int(rng.integers(5, 16))
    else:
        assert after is not None
        surge_start = after + climb_n + calm_n + 60
        surge_start = (surge_start // 60 + 1) * 60 + int(rng.integers(5, 16))
        calm_n = surge_start - 60 - climb_n - after  # the calm absorbs the alignment: the event starts at ``after``
    start = surge_start - 60 - calm_n - climb_n
    b = _Builder()
    # Days of climbing lift the 15m MA80 and upper band above their 480-bar twins (F1-F3); the calm hours
    # before the surge let the 1m BB(200) upper band sink under BB(480)'s so the surge crosses it (M3).
    b.add(_linear(_pct(rng.uniform(0.07, 0.12)), climb_n), 1.1)
    b.add(_linear(_pct(rng.uniform(-0.004, 0.004)), calm_n), 0.8, sigma=0.6)
    b.add(_linear(_pct(rng.uniform(0.012, 0.02)), 60), 1.6, sigma=0.7)
    b.add(_smooth(_pct(rng.uniform(0.045, 0.075)), surge_n), rng.uniform(5.0, 9.0))
    b.add(_linear(-_pct(rng.uniform(0.0, 0.005)), plateau_n), 2.2)
    b.add(_smooth(-_pct(rng.uniform(0.025, 0.035)), dip_n), 2.5)
    b.add(_linear(0.0, base_n), 1.8)
    entry_at = start + b.length
    if outcome == "continuation":
        up_n = int(rng.integers(90, 241))
        b.add(_smooth(_pct(rng.uniform(0.13, 0.25)), up_n), np.linspace(3.5, 1.8, up_n))
        b.add(_smooth(-_pct(rng.uniform(0.04, 0.08)), int(rng.integers(60, 121))), 1.6)
    elif outcome == "dip_recover":
        drop = rng.uniform(0.045, 0.065)
        b.add(_smooth(-_pct(drop), int(rng.integers(45, 121))), 2.0)
        b.add(_linear(0.0, int(rng.integers(20, 61))), 1.3)
        b.add(_smooth(-math.log1p(-drop) + _pct(rng.uniform(0.005, 0.03)), int(rng.integers(90, 241))), 1.8)
    elif outcome == "crash":
        drop = rng.uniform(0.12, 0.25)
        b.add(_smooth(math.log1p(-drop), int(rng.integers(60, 181))), 4.0)
        b.add(_smooth(-math.log1p(-drop) * rng.uniform(0.2, 0.4), int(rng.integers(180, 361))), 1.5)
    else:  # fizzle
        b.add(_linear(_pct(rng.uniform(-0.01, 0.01)), 180), 1.0)
    return b.build("setup", start, outcome=outcome, entry_at=float(entry_at), surge_at=float(surge_start))


def _pump(rng: np.random.Generator, start: int) -> Event:
    """+15-30% inside one UTC day (M6's daily surge), then a partial retrace."""
    gain = rng.uniform(0.15, 0.30)
    b = _Builder()
    up_n = int(rng.integers(120, 481))
    b.add(_smooth(_pct(gain), up_n), np.linspace(6.0, 3.0, up_n))
    b.add(_smooth(-_pct(gain) * rng.uniform(0.3, 0.6), int(rng.integers(240, 721))), 2.0)
    return b.build("pump", start, gain=gain)


def _crash(rng: np.random.Generator, start: int) -> Event:
    drop = rng.uniform(0.12, 0.30)
    b = _Builder()
    b.add(_smooth(math.log1p(-drop), int(rng.integers(60, 361))), 5.0)
    b.add(_smooth(-math.log1p(-drop) * rng.uniform(0.2, 0.4), int(rng.integers(240, 721))), 1.8)
    return b.build("crash", start, drop=drop)


def _downtrend(rng: np.random.Generator, start: int) -> Event:
    b = _Builder()
    b.add(_linear(math.log1p(-rng.uniform(0.03, 0.08)), int(rng.integers(360, 1081))), 0.9)
    return b.build("downtrend", start)


def event_stream(seed: int, index: int, replay_start_min: int) -> Iterator[Event]:
    """The events of one symbol, in time order, without end."""
    rng = np.random.default_rng([seed, index, 1])
    slot = index % 20
    first_dip = replay_start_min + _FIRST_DIP_OFFSET_MIN + slot * _FIRST_DIP_STAGGER_MIN + (index // 20) * 23
    first = _setup(rng, _OUTCOMES[slot % len(_OUTCOMES)], dip_at=first_dip)
    # A pump in the warm-up (so M6 holds for the first setups), placed early in a UTC day, if it fits.
    day = 1  # its daily candle is among M6's last seven, its retrace mostly before the 15m 5-day window
    pump = _pump(rng, day * DAY_MINUTES + int(rng.integers(60, 600)))
    if pump.end + 120 <= first.start:
        yield pump
    yield first
    prev = first
    while True:
        gap = int(rng.integers(60, 6 * 60))
        kind = rng.choice(4, p=(0.65, 0.15, 0.12, 0.08))
        # A setup's first day is a gentle climb: it may start while the previous setup's outcome plays out.
        t = (int(prev.detail["entry_at"]) if prev.kind == "setup" and kind == 0 else prev.end) + gap
        if kind == 0:
            ev = _setup(rng, _OUTCOMES[int(rng.integers(0, len(_OUTCOMES)))], after=t)
        elif kind == 1:
            day_start = (t // DAY_MINUTES) * DAY_MINUTES
            start = max(t, day_start + 30)
            if start - day_start > 10 * 60:  # a pump must fit in one UTC day: wait for the next one
                start = day_start + DAY_MINUTES + int(rng.integers(30, 300))
            ev = _pump(rng, start)
        elif kind == 2:
            ev = _crash(rng, t)
        else:
            ev = _downtrend(rng, t)
        yield ev
        prev = ev


# ------------------------------------------------------------------ the generator
_EVENT_LOG_SIZE = 5_000


@dataclass(frozen=True, slots=True)
class EventRecord:
    """An event placed in the market (minutes since the origin), for tests and the curious."""

    symbol: str
    kind: str
    start: int
    end: int
    detail: dict[str, float | str]


@dataclass(frozen=True, slots=True)
class DayCandles:
    """One UTC day of 1m candles for every symbol: arrays shaped (symbols, 1440), open times (1440,)."""

    day: int
    open_time: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class _SymbolState:
    __slots__ = ("carry_r", "carry_s", "carry_v", "events", "log_close", "pending", "sym", "ticks_close")

    def __init__(self, sym: SynthSymbol, seed: int, replay_start_min: int) -> None:
        self.sym = sym
        self.events = event_stream(seed, sym.index, replay_start_min)
        self.pending: Event | None = None
        self.carry_r = np.zeros(0)
        self.carry_v = np.zeros(0)
        self.carry_s = np.zeros(0)
        self.log_close = math.log(sym.price0)
        self.ticks_close = round(sym.price0 / float(sym.tick))


class SyntheticMarket:
    """The synthetic market of one seed. ``days()`` yields day after day; ``day(k)`` regenerates on demand."""

    def __init__(
        self, seed: int, n_symbols: int = 20, *, start_ms: int = SYNTH_START_MS, warmup_days: int = WARMUP_DAYS
    ) -> None:
        if n_symbols < 1:
            raise ValueError(f"n_symbols must be at least 1, got {n_symbols}")
        if start_ms % DAY_MS:
            raise ValueError("start_ms must be a UTC midnight")
        self.seed = seed
        self.start_ms = start_ms
        self.warmup_days = warmup_days
        self.symbols: tuple[SynthSymbol, ...] = tuple(make_symbol(seed, i) for i in range(n_symbols))
        # What the last ``days()`` run placed (the newest few thousand; the arrays are not kept).
        self.log_events: deque[EventRecord] = deque(maxlen=_EVENT_LOG_SIZE)

    @property
    def replay_start_ms(self) -> int:
        """The first minute after the warm-up: where a fresh replay begins."""
        return self.start_ms + self.warmup_days * DAY_MS

    def markets(self) -> dict[str, Market]:
        return {s.symbol: s.market() for s in self.symbols}

    def days(self, first: int = 0) -> Iterator[DayCandles]:
        """Day ``first``, ``first + 1``, ... (the days before ``first`` are generated but not returned)."""
        replay_start_min = self.warmup_days * DAY_MINUTES
        states = [_SymbolState(s, self.seed, replay_start_min) for s in self.symbols]
        self.log_events.clear()
        k = 0
        while True:
            day = self._generate(k, states)
            if k >= first:
                yield day
            k += 1

    def day(self, k: int) -> DayCandles:
        return next(self.days(k))

    def candles(self, n_days: int) -> DayCandles:
        """The first ``n_days`` days joined (tests and tools)."""
        parts = []
        for d in self.days():
            parts.append(d)
            if len(parts) == n_days:
                break
        return DayCandles(
            0,
            np.concatenate([p.open_time for p in parts]),
            *(
                np.concatenate([getattr(p, f) for p in parts], axis=1)
                for f in ("open", "high", "low", "close", "volume")
            ),
        )

    # --------------------------------------------------------------- one day
    def _generate(self, k: int, states: list[_SymbolState]) -> DayCandles:
        n = len(states)
        first_min = k * DAY_MINUTES
        times = self.start_ms + (first_min + np.arange(DAY_MINUTES, dtype=np.int64)) * MINUTE_MS
        o = np.empty((n, DAY_MINUTES))
        h = np.empty((n, DAY_MINUTES))
        lo = np.empty((n, DAY_MINUTES))
        c = np.empty((n, DAY_MINUTES))
        v = np.empty((n, DAY_MINUTES))
        for i, st in enumerate(states):
            o[i], h[i], lo[i], c[i], v[i] = self._symbol_day(k, first_min, st)
        return DayCandles(k, times, o, h, lo, c, v)

    def _symbol_day(self, k: int, first_min: int, st: _SymbolState) -> tuple[np.ndarray, ...]:
        sym = st.sym
        span = DAY_MINUTES + _MAX_EVENT_MINUTES
        ev_r = np.zeros(span)
        ev_v = np.ones(span)
        ev_s = np.ones(span)
        ev_r[: st.carry_r.shape[0]] = st.carry_r
        ev_v[: st.carry_v.shape[0]] = st.carry_v
        ev_s[: st.carry_s.shape[0]] = st.carry_s
        end_min = first_min + DAY_MINUTES
        while True:
            ev = st.pending if st.pending is not None else next(st.events)
            if ev.start >= end_min:
                st.pending = ev
                break
            st.pending = None
            self.log_events.append(EventRecord(sym.symbol, ev.kind, ev.start, ev.end, dict(ev.detail)))
            a = ev.start - first_min
            length = min(ev.returns.shape[0], span - a)
            ev_r[a : a + length] += ev.returns[:length]
            ev_v[a : a + length] *= ev.volume[:length]
            ev_s[a : a + length] *= ev.sigma[:length]
        st.carry_r = ev_r[DAY_MINUTES:].copy()
        st.carry_v = ev_v[DAY_MINUTES:].copy()
        st.carry_s = ev_s[DAY_MINUTES:].copy()
        ev_r = ev_r[:DAY_MINUTES]
        ev_v = ev_v[:DAY_MINUTES]
        ev_s = ev_s[:DAY_MINUTES]

        rng = np.random.default_rng([self.seed, sym.index, 2, k])
        # Slow pull back towards the starting price (a few days' half-life) keeps prices in range forever;
        # a small random daily drift varies the trends.
        anchor = math.log(sym.price0)
        drift = -(st.log_close - anchor) / (8.0 * DAY_MINUTES) + rng.normal(0.0, 0.012) / DAY_MINUTES
        sig = sym.sigma * ev_s
        r = rng.standard_normal(DAY_MINUTES) * sig + drift + ev_r
        log_close = st.log_close + np.cumsum(r)
        st.log_close = float(log_close[-1])

        tick = float(sym.tick)
        c_ticks = np.maximum(1, np.rint(np.exp(log_close) / tick)).astype(np.int64)
        o_ticks = np.empty_like(c_ticks)
        o_ticks[0] = st.ticks_close
        o_ticks[1:] = c_ticks[:-1]
        st.ticks_close = int(c_ticks[-1])
        top = np.maximum(o_ticks, c_ticks)
        bottom = np.minimum(o_ticks, c_ticks)
        wick = 0.5 * sig
        h_ticks = np.maximum(top, np.ceil(top * np.exp(np.abs(rng.standard_normal(DAY_MINUTES)) * wick)))
        l_ticks = np.minimum(bottom, np.floor(bottom * np.exp(-np.abs(rng.standard_normal(DAY_MINUTES)) * wick)))
        l_ticks = np.maximum(l_ticks, 1)
        d = sym.decimals
        activity = 1.0 + 25.0 * np.abs(r - drift)
        vol = sym.base_volume * ev_v * activity * np.exp(rng.normal(0.0, 0.35, DAY_MINUTES) - 0.06)
        step = float(sym.step)
        vol = np.round(np.round(vol / step) * step, decimal_places(sym.step))
        return (
            np.round(o_ticks * tick, d),
            np.round(h_ticks * tick, d),
            np.round(l_ticks * tick, d),
            np.round(c_ticks * tick, d),
            vol,
        )
