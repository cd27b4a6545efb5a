"""Drawing a chart plan as a PNG, in the rendering worker.

matplotlib's object API only (``Figure`` + ``FigureCanvasAgg``): pyplot keeps
global state that is not safe to share between threads, and nothing here
needs it. Sized for a phone: a portrait picture 1,080 px wide with large
type; the price axis on the right, the candles' times in the trader's time
zone.

Fonts: the labels come in the chat's language. When no installed font can
draw them (Korean needs a Hangul font, e.g. Debian's ``fonts-nanum``), the
next label set offered is used (English), so a picture never shows empty boxes.
"""

from __future__ import annotations

import functools
import io
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from trading.core.chart import (
    ChartLabels,
    ChartPlan,
    ChartRequest,
    LineKind,
    MarkKind,
    format_price,
    plan,
    spread_labels,
)

WIDTH_IN, HEIGHT_IN, DPI = 7.2, 8.4, 150  # 1,080 x 1,260 px
BASE_FONT = "DejaVu Sans"  # matplotlib's own: always there
# Fonts tried first for text the base font cannot draw (then every installed font).
PREFERRED_FALLBACKS = ("NanumGothic", "NanumBarunGothic", "Noto Sans CJK KR", "Noto Sans KR", "Source Han Sans KR")

UP, DOWN = "#0ecb81", "#f6465d"  # Binance's candle colours
MA_COLORS = ("#f0b90b", "#e377c2", "#1f77b4", "#7f3fbf")  # fast, short, mid, long
BAND_COLOR = "#7f8c8d"
LINE_STYLES: dict[LineKind, tuple[str, Any, float]] = {
    LineKind.AVG: ("#2b2b2b", "-", 1.4),
    LineKind.STOP: ("#d62728", "--", 1.4),
    LineKind.BACKSTOP: ("#8c1c13", ":", 1.6),
    LineKind.NEXT_DCA: ("#1f77b4", "--", 1.3),
    LineKind.RECOVERY: ("#9467bd", "-.", 1.2),
    LineKind.TAKE_HALF: ("#2ca02c", "--", 1.4),
    LineKind.TRAILING: ("#ff7f0e", "--", 1.3),
}
MARK_STYLES: dict[MarkKind, tuple[str, str]] = {
    MarkKind.ENTRY: ("^", "#2ca02c"),
    MarkKind.DCA: ("^", "#1f77b4"),
    MarkKind.SELL: ("v", "#ff7f0e"),
    MarkKind.CLOSE: ("v", "#d62728"),
}


@dataclass(frozen=True, slots=True)
class Rendered:
    png: bytes
    render_ms: float  # inside the worker: planning and drawing
    labels_used: int  # index of the label set drawn (0 = the chat's language)


def render_request(request: ChartRequest) -> Rendered:
    """The worker's entry point: plan, choose the labels the fonts can draw, draw."""
    t0 = time.perf_counter()
    index, families = choose_labels(request.labels, extra=(request.symbol,))
    chart = plan(request, request.labels[index])
    png = draw(chart, families, timezone=request.timezone)
    return Rendered(png, (time.perf_counter() - t0) * 1000, index)


def warm_up() -> None:
    """Import matplotlib and build its font list once, before the first real chart."""
    import matplotlib.backends.backend_agg  # noqa: F401
    from matplotlib import font_manager

    font_manager.findfont(BASE_FONT)


# ------------------------------------------------------------------ fonts
@functools.cache
def _charmap(path: str) -> frozenset[int]:
    from matplotlib.ft2font import FT2Font

    try:
        return frozenset(FT2Font(path).get_charmap())
    except (OSError, RuntimeError, ValueError):
        return frozenset()


# matplotlib ships "Last Resort", whose cmap claims every character and draws each as a box: never a fallback.
_NOT_A_FALLBACK = ("Last Resort",)


@functools.cache
def _font_for(missing: frozenset[int]) -> str | None:
    from matplotlib import font_manager

    def rank(name: str) -> tuple[int, str]:
        return (PREFERRED_FALLBACKS.index(name) if name in PREFERRED_FALLBACKS else len(PREFERRED_FALLBACKS), name)

    entries = sorted(
        (e for e in font_manager.fontManager.ttflist if not e.name.startswith(_NOT_A_FALLBACK)),
        key=lambda e: rank(e.name),
    )
    for entry in entries:
        if missing <= _charmap(entry.fname):
            return str(entry.name)
    return None


_rescanned = False


def _rescan_fonts() -> bool:
    """matplotlib lists the system's fonts once and caches the list on disk: a font installed since (e.g.
    ``apt-get install fonts-nanum``) is unknown to it until the list is rebuilt. Done at most once per worker,
    the first time a label set cannot be drawn."""
    global _rescanned
    if _rescanned:
        return False
    _rescanned = True
    from matplotlib import font_manager

    load = getattr(font_manager, "_load_fontmanager", None)
    if load is None:
        return False
    try:
        font_manager.fontManager = load(try_read_cache=False)
    except Exception:  # a font list that cannot be rebuilt leaves the old one
        return False
    _font_for.cache_clear()
    return True


def font_families(texts: Iterable[str]) -> tuple[str, ...] | None:
    """Font families that draw every character of ``texts`` (the base font first), or None."""
    from matplotlib import font_manager

    need = frozenset(ord(ch) for text in texts for ch in text if not ch.isspace())
    missing = need - _charmap(font_manager.findfont(BASE_FONT))
    if not missing:
        return (BASE_FONT,)
    extra = _font_for(frozenset(missing))
    if extra is None and _rescan_fonts():
        extra = _font_for(frozenset(missing))
    return (BASE_FONT, extra) if extra is not None else None


def choose_labels(options: Sequence[ChartLabels], extra: Iterable[str] = ()) -> tuple[int, tuple[str, ...]]:
    """The first label set the installed fonts can draw, and its font families (the last set as a last resort)."""
    extra = tuple(extra)
    for i, labels in enumerate(options):
        families = font_families((*labels.texts(), *extra))
        if families is not None:
            return i, families
    return len(options) - 1, (BASE_FONT,)


# ------------------------------------------------------------------ drawing
def _time_formatter(open_time: np.ndarray, timezone: str) -> Any:
    tz = ZoneInfo(timezone)
    n = len(open_time)
    long_span = n > 1 and int(open_time[-1]) - int(open_time[0]) > 86_400_000
    fmt = "%m-%d %H:%M" if long_span else "%H:%M"

    def label(value: float, _pos: object) -> str:
        i = round(value)
        if not 0 <= i < n:
            return ""
        return datetime.fromtimestamp(int(open_time[i]) / 1000, tz=UTC).astimezone(tz).strftime(fmt)

    return label


def draw(p: ChartPlan, families: Sequence[str] = (BASE_FONT,), *, timezone: str = "UTC") -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import LineCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    fam = list(families)

    def font(size: float, weight: str = "normal") -> FontProperties:
        return FontProperties(family=fam, size=size, weight=weight)

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    # Price axis on the left, the lines' tags in the right margin (where the newest candles end).
    grid = fig.add_gridspec(2, 1, height_ratios=(4, 1), hspace=0.04, left=0.11, right=0.72, top=0.885, bottom=0.07)
    ax = fig.add_subplot(grid[0])
    axv = fig.add_subplot(grid[1], sharex=ax)
    c = p.candles
    n = len(c)
    x = np.arange(n, dtype=np.float64)
    lo_y, hi_y = p.y_range

    if n:
        up = c.close >= c.open
        colors = np.where(up, UP, DOWN)
        wicks = np.empty((n, 2, 2))
        wicks[:, 0, 0] = wicks[:, 1, 0] = x
        wicks[:, 0, 1], wicks[:, 1, 1] = c.low, c.high
        # matplotlib's stubs want a Sequence of segments or polygons; an (n, k, 2) array is its fast path.
        wick_lines = LineCollection(wicks, colors=colors, linewidths=0.9, zorder=3)  # type: ignore[arg-type]  # stubs: Sequence
        ax.add_collection(wick_lines)
        body_lo = np.minimum(c.open, c.close)
        body_hi = np.maximum(np.maximum(c.open, c.close), body_lo + (hi_y - lo_y) * 0.0015)  # a doji stays visible
        ax.add_collection(
            PolyCollection(
                _boxes(x, body_lo, body_hi, 0.36),  # type: ignore[arg-type]  # stubs: Sequence
                facecolors=colors,
                edgecolors=colors,
                linewidths=0.4,
                zorder=4,
            )
        )
        vol = np.nan_to_num(c.volume)
        axv.add_collection(
            PolyCollection(
                _boxes(x, np.zeros(n), vol, 0.36),  # type: ignore[arg-type]  # stubs: Sequence
                facecolors=colors,
                edgecolors="none",
                alpha=0.6,
            )
        )
        axv.set_ylim(0, float(vol.max()) * 1.1 if vol.max() > 0 else 1.0)

    if p.band is not None:
        lower, upper = p.band
        ax.fill_between(x, lower.values, upper.values, color=BAND_COLOR, alpha=0.10, linewidth=0, zorder=1)
        ax.plot(x, upper.values, color=BAND_COLOR, linewidth=0.9, alpha=0.8, label=upper.name, zorder=2)
        ax.plot(x, lower.values, color=BAND_COLOR, linewidth=0.9, alpha=0.8, zorder=2)
    if p.slow_upper is not None and np.isfinite(p.slow_upper.values).any():
        ax.plot(
            x,
            p.slow_upper.values,
            color="#34495e",
            linewidth=1.0,
            linestyle=(0, (4, 2)),
            label=p.slow_upper.name,
            zorder=2,
        )
    for overlay, color in zip(p.averages, MA_COLORS, strict=False):
        if np.isfinite(overlay.values).any():
            ax.plot(x, overlay.values, color=color, linewidth=1.3, label=overlay.name, zorder=2)

    for kind in MarkKind:
        pts = [m for m in p.marks if m.kind is kind]
        if pts:
            marker, color = MARK_STYLES[kind]
            ax.scatter(
                [m.bar for m in pts],
                [m.price for m in pts],
                marker=marker,
                s=120,
                color=color,
                edgecolors="black",
                linewidths=0.8,
                zorder=6,
                label=p.labels.mark(kind),
            )

    ax.set_xlim(-1, max(n, 1))
    ax.set_ylim(lo_y, hi_y)
    _price_lines(ax, p, font(10.5))
    if p.notes:
        _notes(ax, p, font(12.5))

    price_fmt = FuncFormatter(lambda v, _pos: format_price(v))
    for a in (ax, axv):
        a.grid(alpha=0.25, linewidth=0.6)
        a.tick_params(labelsize=10)
    ax.yaxis.set_major_formatter(price_fmt)
    ax.yaxis.set_major_locator(MaxNLocator(8))
    axv.yaxis.set_major_locator(MaxNLocator(3))
    axv.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: _compact(v)))
    axv.xaxis.set_major_locator(MaxNLocator(5, integer=True))
    axv.xaxis.set_major_formatter(FuncFormatter(_time_formatter(c.open_time, timezone)))
    ax.tick_params(labelbottom=False)
    axv.text(0.01, 0.95, p.labels.volume, transform=axv.transAxes, va="top", fontproperties=font(9.5), alpha=0.7)

    when = ""
    if n:
        tz = ZoneInfo(timezone)
        stamp = datetime.fromtimestamp(int(c.open_time[-1]) / 1000, tz=UTC).astimezone(tz)
        when = stamp.strftime("%Y-%m-%d %H:%M ") + (stamp.tzname() or timezone)
    title = FontProperties(family=BASE_FONT, size=17, weight="bold")  # a symbol and an interval: Latin
    fig.text(0.03, 0.965, f"{p.symbol} · {p.interval}", fontproperties=title, va="center")
    fig.text(0.97, 0.965, when, fontproperties=font(11), va="center", ha="right", color="#555555")
    handles, names = ax.get_legend_handles_labels()
    if handles:
        fig.legend(
            handles,
            names,
            loc="upper left",
            bbox_to_anchor=(0.02, 0.945),
            ncol=4,
            frameon=False,
            prop=font(9.5),
            handlelength=1.6,
            columnspacing=1.0,
            borderaxespad=0.0,
        )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _boxes(x: np.ndarray, lo: np.ndarray, hi: np.ndarray, half: float) -> np.ndarray:
    """Rectangles (n, 4, 2) around x from lo to hi."""
    verts = np.empty((len(x), 4, 2))
    verts[:, 0, 0] = verts[:, 1, 0] = x - half
    verts[:, 2, 0] = verts[:, 3, 0] = x + half
    verts[:, 0, 1] = verts[:, 3, 1] = lo
    verts[:, 1, 1] = verts[:, 2, 1] = hi
    return verts


def _price_lines(ax: Any, p: ChartPlan, fp: Any) -> None:
    """Each line across the window with a tag in the right margin (name and price), the last price's tag among
    them; tags are moved apart so that none hides another, a thin leader joins a moved tag to its line."""
    tags: list[tuple[float, str, str, bool]] = [
        (ln.price, f"{p.labels.line(ln.kind)} {format_price(ln.price)}", LINE_STYLES[ln.kind][0], False)
        for ln in p.lines
    ]
    if p.last_price is not None:
        tags.append((p.last_price, f"{p.labels.last} {format_price(p.last_price)}", "#2b2b2b", True))
    for ln in p.lines:
        color, style, width = LINE_STYLES[ln.kind]
        ax.axhline(ln.price, color=color, linestyle=style, linewidth=width, zorder=5)
    if not tags:
        return
    lo, hi = p.y_range
    span = hi - lo or 1.0
    wanted = [(price - lo) / span for price, *_ in tags]
    at = spread_labels(wanted, min_gap=0.045)
    for (_price, text, color, filled), y, y0 in zip(tags, at, wanted, strict=True):
        ax.annotate(
            text,
            xy=(1.0, y0),
            xycoords="axes fraction",
            xytext=(1.02, y),
            textcoords="axes fraction",
            va="center",
            ha="left",
            color="white" if filled else color,
            fontproperties=fp,
            annotation_clip=False,
            zorder=8,
            bbox={"boxstyle": "round,pad=0.22", "facecolor": color if filled else "white", "edgecolor": color},
            arrowprops={"arrowstyle": "-", "color": color, "linewidth": 0.8, "shrinkA": 0, "shrinkB": 0},
        )


def _notes(ax: Any, p: ChartPlan, fp: Any) -> None:
    """The entry conditions of a symbol not held, bottom left, one line per group."""
    step = 0.055
    for i, note in enumerate(reversed(p.notes)):
        mark = "" if note.ok is None else ("✓ " if note.ok else "✗ ")
        color = "#555555" if note.ok is None else ("#1e8449" if note.ok else "#c0392b")
        ax.text(
            0.015,
            0.03 + i * step,
            mark + note.text,
            transform=ax.transAxes,
            va="bottom",
            ha="left",
            color=color,
            fontproperties=fp,
            zorder=7,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none", "alpha": 0.8},
        )


def _compact(v: float) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"
