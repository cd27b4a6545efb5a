"""The chart worker: a PNG of phone size, labels the fonts can draw, one drawing per key, bounded waits, a real
worker process."""

from __future__ import annotations

import asyncio
import struct
import threading
from decimal import Decimal

import numpy as np
import pytest

from trading.charts import render as render_mod
from trading.charts.render import choose_labels, font_families, render_request
from trading.charts.renderer import ChartError, ChartRenderer, WorkerKind
from trading.core import ladder
from trading.core.chart import ChartLabels, ChartRequest, FillPoint, position_lines
from trading.core.config import StrategyConfig
from trading.core.models import Fill, Stage
from trading.core.series import OHLCV

CFG = StrategyConfig()
T0 = 1_768_300_020_000 - 1_768_300_020_000 % 180_000
KOREAN = ChartLabels(avg="평단", stop="손절", take_half="절반 익절", next_dca="다음 물타기")


def _request(n: int = 800, symbol: str = "SOLUSDT", labels: tuple[ChartLabels, ...] = (ChartLabels(),)) -> ChartRequest:
    rng = np.random.default_rng(3)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, n)))
    open_ = np.r_[close[0], close[:-1]]
    candles = OHLCV(
        np.arange(n, dtype=np.int64) * 180_000 + T0,
        open_,
        np.maximum(open_, close) * 1.001,
        np.minimum(open_, close) * 0.999,
        close,
        rng.uniform(10, 20, n),
    )
    state = ladder.new_position(symbol, Fill("BUY", Decimal("100"), Decimal("1"), stage=Stage.INITIAL))
    return ChartRequest(
        symbol,
        "3m",
        candles,
        CFG.signals,
        position_lines(state, CFG, backstop=Decimal("90")),
        (FillPoint("e", "BUY", 100.0, 1.0, int(candles.open_time[-60]), Stage.INITIAL),),
        held=True,
        last_price=float(close[-1]),
        labels=labels,
        timezone="Asia/Seoul",
    )


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_a_chart_is_a_phone_sized_png() -> None:
    out = render_request(_request())
    width, height = _png_size(out.png)
    assert (width, height) == (1080, 1260)  # portrait: a phone's width, readable without zooming
    assert 20_000 < len(out.png) < 1_000_000 and out.render_ms > 0 and out.labels_used == 0


def test_labels_fall_back_to_a_set_the_fonts_can_draw() -> None:
    undrawable = ChartLabels(avg="\U00013000")  # an Egyptian hieroglyph: no font installed here has it
    assert font_families(undrawable.texts()) is None
    index, families = choose_labels((undrawable, ChartLabels()))
    assert index == 1 and families == ("DejaVu Sans",)
    # Korean is drawn in Korean when a Hangul font is installed (e.g. fonts-nanum), in English otherwise.
    index, families = choose_labels((KOREAN, ChartLabels()))
    korean_font = font_families(KOREAN.texts())
    assert index == (0 if korean_font is not None else 1)
    if korean_font is not None:
        assert families == korean_font and families[0] == "DejaVu Sans" and len(families) == 2
    assert render_request(_request(labels=(KOREAN, ChartLabels()))).labels_used == index


async def test_one_drawing_per_key_shared_by_concurrent_requests() -> None:
    renderer = ChartRenderer(kind=WorkerKind.THREAD)
    built: list[str] = []

    def build() -> ChartRequest:
        built.append("x")
        return _request()

    try:
        a, b = await asyncio.gather(
            renderer.render("k1", build, timeout_s=30), renderer.render("k1", build, timeout_s=30)
        )
        c = await renderer.render("k1", build, timeout_s=30)
        assert a.png == b.png == c.png and not a.cached and not b.cached and c.cached
        assert built == ["x"] and renderer.renders == 1
        await renderer.render("k2", build, timeout_s=30)  # another key: drawn again
        assert renderer.renders == 2
    finally:
        renderer.close()


async def test_a_slow_chart_times_out_and_still_lands_in_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = render_mod.render_request

    def slow(request: ChartRequest) -> render_mod.Rendered:
        release.wait(10)
        return real(request)

    monkeypatch.setattr("trading.charts.renderer.render_request", slow)
    renderer = ChartRenderer(kind=WorkerKind.THREAD)
    try:
        with pytest.raises(ChartError, match=r"no chart within 0\.2 s"):
            await renderer.render("k", _request, timeout_s=0.2)
        release.set()
        for _ in range(500):  # the late drawing finishes in the background (bounded wait)
            if renderer.cached("k"):
                break
            await asyncio.sleep(0.02)
        assert renderer.cached("k")
        assert (await renderer.render("k", _request, timeout_s=0.2)).cached
    finally:
        release.set()
        renderer.close()


async def test_a_failing_drawing_is_a_chart_error_and_a_closed_renderer_refuses() -> None:
    renderer = ChartRenderer(kind=WorkerKind.THREAD)
    bad = ChartRequest("X", "3m", OHLCV.empty(), CFG.signals, timezone="Nowhere/Atlantis")
    with pytest.raises(ChartError):
        await renderer.render("bad", lambda: bad, timeout_s=10)
    assert not renderer.cached("bad")
    renderer.close()
    with pytest.raises(ChartError, match="closed"):
        await renderer.render("k", _request, timeout_s=10)


@pytest.mark.timeout(120)
async def test_the_worker_process_draws_and_a_dead_worker_is_replaced() -> None:
    renderer = ChartRenderer(kind=WorkerKind.PROCESS)
    try:
        first = await renderer.render("p1", _request, timeout_s=60)  # spawn + matplotlib import included
        _png_size(first.png)
        pool = renderer._pool
        assert pool is not None
        for proc in list(pool._processes.values()):  # type: ignore[attr-defined]
            proc.kill()
            proc.join(5)
        again = await renderer.render("p2", _request, timeout_s=60)
        assert _png_size(again.png) == _png_size(first.png) and renderer._pool is not pool
    finally:
        renderer.close()
