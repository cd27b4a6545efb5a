"""Presenters: valid Telegram HTML in both languages, every dynamic value escaped."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from decimal import Decimal

import pytest
from aiogram.utils.i18n import I18n

from bot import presenters
from bot.i18n import make_i18n
from tests.fakes.telegram.html_check import parse_html
from trading.core.config import StrategyConfig
from trading.core.models import Stage
from trading.core.reports import Condition, SignalReport
from trading.core.risk import risk_table
from trading.events import (
    BackstopLost,
    DcaFilled,
    EngineEvent,
    EntryFilled,
    ErrorEvent,
    OrderRefused,
    OrderSkipped,
    PartialExit,
    PositionAdopted,
    PositionClosed,
    PositionVanished,
    QuantityDrift,
    ServiceStarted,
    ServiceStopping,
    StreamDown,
    StreamUp,
    TradingHalted,
)
from trading.views import (
    ConfigChange,
    ConfigPreview,
    ExchangeUnavailable,
    ExitPreview,
    ExitResult,
    HealthView,
    InvalidConfig,
    LegView,
    NoPosition,
    PeriodStats,
    PositionView,
    Report,
    ServiceError,
    StatsView,
    StreamHealth,
    SymbolBusy,
    SyncItem,
    SyncReport,
    UnknownSymbol,
)

EVIL = "<b>x</b>&\"'"
NOW = 1_761_700_000_000
D = Decimal


def view(symbol: str, *, stage: Stage = Stage.INITIAL, last: str | None = None, origin: str = "signal") -> PositionView:
    """A position as ``ServiceApi.positions`` shows it: 64,000 in, a DCA leg per stage reached, 10x."""
    legs = [LegView("initial", D(64000), D("0.002"))]
    if stage is not Stage.INITIAL:
        legs.append(LegView("first_dca", D(62080), D("0.003")))
    if stage is Stage.SECOND_DCA:
        legs.append(LegView("second_dca", D(60160), D("0.004")))
    qty = sum((leg.qty for leg in legs), D(0))
    avg = sum((leg.qty * leg.price for leg in legs), D(0)) / qty
    price = D(last) if last is not None else None
    return PositionView(
        position_id=7,
        symbol=symbol,
        stage=stage.value,
        qty=qty,
        avg_price=avg,
        last_price=price,
        unrealized_pnl=(price - avg) * qty if price is not None else None,
        unrealized_pct=(price - avg) / avg if price is not None else None,
        margin=avg * qty / 10,
        next_dca_stage=None if stage is Stage.SECOND_DCA else "second_dca",
        next_dca_price=None if stage is Stage.SECOND_DCA else D(60160),
        stop_price=avg * D("0.95"),
        backstop_price=avg * D("0.95"),
        half_taken=False,
        trailing_stop=None,
        opened_at_ms=NOW - 3_600_000,
        origin=origin,
        legs=tuple(legs),
    )


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return make_i18n("en")


@pytest.fixture(params=["en", "ko"])
def locale(request: pytest.FixtureRequest, i18n: I18n) -> Iterator[str]:
    with i18n.context(), i18n.use_locale(request.param):
        yield request.param


def every_event(symbol: str = "BTCUSDT", text: str = "boom") -> list[EngineEvent]:
    return [
        EntryFilled(ts_ms=NOW, symbol=symbol, price=D("64000"), qty=D("0.002"), notional=D("128"), position_id=1),
        DcaFilled(
            ts_ms=NOW,
            symbol=symbol,
            level="second_dca",
            price=D("60160"),
            qty=D("0.003"),
            avg_price=D("62000"),
            total_qty=D("0.007"),
            position_id=1,
        ),
        PartialExit(
            ts_ms=NOW,
            symbol=symbol,
            reason="take_half",
            price=D("70000"),
            qty=D("0.001"),
            remaining_qty=D("0.001"),
            pnl=D("6.1"),
            position_id=1,
        ),
        PartialExit(
            ts_ms=NOW,
            symbol=symbol,
            reason="recovery_second_dca",
            price=D("62000"),
            qty=D("0.003"),
            remaining_qty=D("0.004"),
            pnl=D("5.5"),
            position_id=1,
        ),
        PositionClosed(
            ts_ms=NOW,
            symbol=symbol,
            reason="stop_loss",
            price=D("57600"),
            qty=D("0.002"),
            pnl=D("-12.9"),
            pnl_pct=D("-1.007"),
            position_id=1,
        ),
        PositionClosed(
            ts_ms=NOW,
            symbol=symbol,
            reason="backstop",
            price=D("57600"),
            qty=D("0.002"),
            pnl=D("-12.9"),
            pnl_pct=D("-1.007"),
            position_id=1,
        ),
        PositionClosed(
            ts_ms=NOW,
            symbol=symbol,
            reason="trailing_stop",
            price=D("71000"),
            qty=D("0.001"),
            pnl=D("9.1"),
            pnl_pct=D("0.71"),
            position_id=1,
            funding=D("-0.42"),
        ),
        PositionClosed(
            ts_ms=NOW,
            symbol=symbol,
            reason=text,
            price=D("1"),
            qty=D("1"),
            pnl=D("-1"),
            pnl_pct=D("-0.1"),
            position_id=1,
        ),
        PositionAdopted(ts_ms=NOW, symbol=symbol, qty=D("1"), entry_price=D("2.5"), position_id=2),
        PositionVanished(ts_ms=NOW, symbol=symbol, qty=D("1"), pnl=None, position_id=2),
        QuantityDrift(ts_ms=NOW, symbol=symbol, db_qty=D("1"), exchange_qty=D("0.9")),
        OrderSkipped(ts_ms=NOW, symbol=symbol, what=text, why=text),
        OrderRefused(ts_ms=NOW, symbol=symbol, what=text, code=-2019, refusal="margin", message=text, retry_in_s=8),
        OrderRefused(ts_ms=NOW, symbol=symbol, what="first_dca", code=None, refusal=text, message=text, gave_up=True),
        OrderRefused(
            ts_ms=NOW, symbol=symbol, what="entry", code=-4164, refusal="notional", message=text, cooldown_min=15
        ),
        BackstopLost(ts_ms=NOW, symbol=symbol, status="CANCELED", client_id=text, restored_price=D("90")),
        BackstopLost(ts_ms=NOW, symbol=symbol, status=text, client_id=text, restored_price=None),
        TradingHalted(ts_ms=NOW, symbol=symbol, cause="foreign_instance", detail=text),
        TradingHalted(ts_ms=NOW, symbol=symbol, cause=text, detail=text, halted=False),
        StreamDown(ts_ms=NOW, name=text, detail=text),
        StreamUp(ts_ms=NOW, name=text, down_for_s=12.5),
        ErrorEvent(ts_ms=NOW, symbol=symbol, where=text, message=text * 500),
        ServiceStarted(ts_ms=NOW, mode="paper", details={text: text}),
        ServiceStopping(ts_ms=NOW, reason=text),
    ]


def test_every_event_renders_valid_html_and_escapes(locale: str) -> None:
    for event in every_event(EVIL, EVIL):
        html_text = presenters.alert_text(event)
        plain = parse_html(html_text)  # raises on bad markup
        assert len(html_text) <= 4096
        if event.symbol and not isinstance(event, ServiceStarted | ServiceStopping):
            assert EVIL in plain, event.kind
        summary = presenters.coalesced_text(event, 12)
        assert "12" in parse_html(summary)


def test_console_lines_are_single_lines() -> None:
    for event in every_event("BTCUSDT", "multi\nline\r\nmessage"):
        line = presenters.alert_line(event, more=3)
        assert "\n" not in line and "\r" not in line
        assert "<b>" not in line
        assert line.endswith("(and 3 more like this in the last minute)")


def test_views_render_valid_html_in_both_languages(locale: str) -> None:
    views = [view(EVIL, stage=Stage.SECOND_DCA, last="61000", origin="adopted"), view("ETHUSDT")]
    texts = [
        presenters.help_text(),
        presenters.start_text(EVIL, paused=True),
        presenters.positions_text(views, page=0, now_ms=NOW, paused=True),
        presenters.positions_text([], page=3, now_ms=NOW, paused=False),
        presenters.position_details(views[0], now_ms=NOW),
        presenters.health_text(
            HealthView(
                EVIL,
                NOW - 1000,
                1.0,
                (StreamHealth(EVIL, False, None),),
                1,
                None,
                EVIL,
                None,
                None,
                0,
                0,
                10,
                None,
                None,
                None,
                0,
                True,
                3,
            ),
            now_ms=NOW,
        ),
        presenters.sync_text(
            SyncReport(NOW, (SyncItem(EVIL, EVIL, EVIL, EVIL), SyncItem("adopted", None, "", "")), 1.0)
        ),
        presenters.sync_text(SyncReport(NOW, (), 1.0, error=EVIL)),
        presenters.exit_question(ExitPreview(1, EVIL, "initial", D("1"), D("2"), None, None), ttl_s=60),
        presenters.exit_result(ExitResult(EVIL, True, D("2"), D("1"), D("-0.5"), EVIL)),
        presenters.exit_result(ExitResult(EVIL, False, None, D("1"), None, EVIL)),
        presenters.config_text(StrategyConfig(symbol_blacklist=(EVIL,), report_timezone=EVIL)),
        presenters.config_question(
            ConfigPreview(
                EVIL,
                EVIL,
                [EVIL],
                risk_table(StrategyConfig(), D(1000)),
                risk_table(StrategyConfig(max_positions=40), D(1000)),
            ),
            ttl_s=60,
        )[0],
        presenters.config_done(ConfigChange(NOW, EVIL, EVIL, {EVIL: 1}, None)),
        presenters.config_history_text([ConfigChange(NOW, EVIL, EVIL, 1.5, True)]),
        presenters.config_history_text([]),
        presenters.invalid_config_text([EVIL]),
        presenters.stats_text(
            StatsView(
                PeriodStats("today", 0, 0, D(0), D(0)), PeriodStats("7d", 3, 2, D("1.5"), D("0.3"), D("-0.2")), EVIL
            )
        ),
        presenters.risk_text(risk_table(StrategyConfig(margin_mode="isolated", max_positions=40), D(1000))),
        presenters.why_text(SignalReport(EVIL, NOW, (Condition(EVIL, True, {EVIL: 1.0, "n": None}, EVIL),), price=1.0)),
        presenters.why_none_text(EVIL),
        presenters.report_caption(Report(7, None, {EVIL: D("1.25"), "trades": 3})),
    ]
    for exc in (
        UnknownSymbol(symbol=EVIL),
        NoPosition(symbol=EVIL),
        SymbolBusy(symbol=EVIL),
        InvalidConfig(problems=[EVIL]),
        ExchangeUnavailable(detail=EVIL),
        ServiceError(EVIL),
    ):
        texts.append(presenters.service_error_text(exc))
    for text in texts:
        plain = parse_html(text)
        assert plain.strip()
        assert "<b>x</b>" not in text  # the raw value never reaches the wire unescaped
    assert EVIL in parse_html(presenters.positions_text(views, page=0, now_ms=NOW, paused=False))


def test_risk_isolated_flags_stops_below_liquidation(locale: str) -> None:
    text = parse_html(presenters.risk_text(risk_table(StrategyConfig(margin_mode="isolated"), D(1000))))
    assert "❌" in text  # the -10% initial stop lies below the ~-9.6% liquidation at 10x


def test_positions_page_slice_clamps() -> None:
    views = [view(s) for s in ("BTCUSDT", "ETHUSDT", "SOLUSDT", "DOGEUSDT", "XRPUSDT", "WIFUSDT")]
    shown, page = presenters.page_slice(views, 9)
    assert page == 1 and [v.symbol for v in shown] == ["WIFUSDT"]
    assert presenters.positions_pages(0) == 1 and presenters.positions_pages(10) == 2


def test_funding_is_shown_in_positions_stats_and_the_close_alert(i18n: I18n) -> None:
    paid = replace(view("SOLUSDT"), funding=D("-0.1234"))
    none = view("ETHUSDT")
    closed = PositionClosed(
        ts_ms=NOW, symbol="SOLUSDT", reason="trailing_stop", price=D("110"), qty=D("1"), pnl=D("9.5"),
        pnl_pct=D("0.95"), position_id=1, funding=D("-0.25"),
    )  # fmt: skip
    week = PeriodStats("7d", 3, 2, D("1.5"), D("0.3"), D("-0.25"))
    with i18n.context(), i18n.use_locale("en"):
        assert "Funding so far: -0.12 USDT" in parse_html(presenters.position_block(paid))
        assert "Funding" not in parse_html(presenters.position_block(none))  # nothing paid yet: no line in the list
        assert "Funding so far: none paid or received" in parse_html(presenters.position_details(none, now_ms=NOW))
        assert parse_html(presenters.position_details(paid, now_ms=NOW)).count("Funding so far") == 1
        stats = parse_html(presenters.stats_text(StatsView(week, week, "UTC")))
        assert "realised +1.50 USDT after fees 0.30 USDT and funding -0.25 USDT" in stats
        assert parse_html(presenters.alert_text(closed)).endswith("Funding -0.25 USDT is included.")
        assert "Funding" not in presenters.alert_text(replace(closed, funding=D(0)))
    assert presenters.alert_line(closed).endswith("funding -0.25 USDT included")
    found = SyncReport(NOW, (SyncItem("funding_recorded", "SOLUSDT", "funding -0.05 USDT at 08:00", "recorded"),), 3.0)
    with i18n.context(), i18n.use_locale("ko"):
        assert "펀딩비 지급 기록" in presenters.sync_text(found)
    with i18n.context(), i18n.use_locale("ko"):
        assert "펀딩비 -0.25 USDT 포함." in presenters.alert_text(closed)
        assert "지금까지 펀딩비: -0.12 USDT" in presenters.position_block(paid)


def test_report_caption_labels_the_live_report_figures(i18n: I18n) -> None:
    summary = {
        "days": 7,
        "trades": 4,
        "wins": 3,
        "win_rate": 0.75,
        "realized_pnl": D("12.5"),
        "fees": D("1.2"),
        "funding": D("-0.35"),
        "open_funding": D("0.02"),
        "start_equity": D("1000"),
        "end_equity": D("1011.3"),
        "max_drawdown_pct": 2.35,
        "new_figure": "x<y",
    }
    with i18n.context(), i18n.use_locale("en"):
        text = parse_html(presenters.report_caption(Report(7, b"png", summary)))
    assert text.splitlines() == [
        "Report: last 7 days",
        "Trades: 4",
        "Wins: 3",
        "Win rate: 75.0%",
        "Realised PnL after fees and funding (USDT): +12.50",
        "Fees (USDT): 1.20",
        "Funding of these trades (USDT): -0.35",
        "Funding of open positions so far (USDT): +0.02",
        "Equity at start (USDT): 1,000.00",
        "Equity at end (USDT): 1,011.30",
        "Max drawdown: 2.35%",
        "new_figure: x<y",
    ]
    with i18n.context(), i18n.use_locale("ko"):
        assert "승률: 75.0%" in presenters.report_caption(Report(7, None, summary))


def test_an_unreachable_exchange_is_said_plainly(i18n: I18n) -> None:
    # What the bot answers when the service raises ExchangeUnavailable (an /exit whose order could not be sent
    # for a reason other than a refusal); the simulated exchange of the bot's tests never fails that way.
    with i18n.context(), i18n.use_locale("en"):
        text = presenters.service_error_text(ExchangeUnavailable("timeout", detail="fapi.binance.com timed out"))
    assert parse_html(text) == "The exchange cannot be reached right now: fapi.binance.com timed out"
