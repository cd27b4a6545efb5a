"""A progress bar on stderr for long backtests (no dependency): redrawn in place on a terminal, a line
every 10% otherwise (logs, CI)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from trading.backtest.runner import Progress

BAR_WIDTH = 30
REDRAW_EVERY_S = 0.25


class ProgressBar:
    def __init__(self, label: str = "", stream: TextIO | None = None, *, tty: bool | None = None) -> None:
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._last_draw = 0.0
        self._last_decile = -1
        self._drawn = False

    def __call__(self, p: Progress) -> None:
        frac = p.minutes_done / p.minutes_total if p.minutes_total else 1.0
        self.show(frac, self.line(p))

    def show(self, frac: float, line: str) -> None:
        """Draw ``line`` for a run ``frac`` done (in place on a terminal, every 10% otherwise)."""
        done = frac >= 1.0
        if self.tty:
            now = time.monotonic()
            if not done and now - self._last_draw < REDRAW_EVERY_S:
                return
            self._last_draw = now
            self.stream.write("\r" + line + "\033[K")
            self._drawn = True
        else:
            decile = int(frac * 10)
            if decile == self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(line + "\n")
        self.stream.flush()

    def bar(self, frac: float) -> str:
        frac = min(1.0, max(0.0, frac))
        filled = int(frac * BAR_WIDTH)
        label = f"{self.label} " if self.label else ""
        return f"{label}[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {frac * 100:5.1f}%"

    def line(self, p: Progress) -> str:
        frac = min(1.0, p.minutes_done / p.minutes_total) if p.minutes_total else 1.0
        speed = p.candles / p.wall_s * 60 if p.wall_s > 0 else 0.0
        return (
            f"{self.bar(frac)}  {p.minutes_done:,}/{p.minutes_total:,} min  {speed / 1e6:.2f}M candles/min  "
            f"ETA {eta(p.wall_s, frac)}"
        )

    def close(self) -> None:
        if self.tty and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def eta(elapsed_s: float, frac: float) -> str:
    """The time left at this pace, as H:MM:SS."""
    return _hms(elapsed_s / frac - elapsed_s if frac > 0 else 0.0)


def _hms(seconds: float) -> str:
    s = int(max(0.0, seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
