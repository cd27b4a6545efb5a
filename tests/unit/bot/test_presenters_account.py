"""Texts of the account check, delistings, liquidations and adoption: valid Telegram HTML in both languages, the
engine's values escaped, and the English wording the user reads."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest
from aiogram.utils.i18n import I18n

from bot import presenters
from bot.i18n import make_i18n
from tests.fakes.telegram.html_check import parse_html
from trading.events import (
    AccountModeSwitched,
    AdoptionAsked,
    DelistingAhead,
    EngineEvent,
    EntriesRefused,
    PositionClosed,
)
from trading.views import (
    AccountHealth,
    AdoptionOutcome,
    AdoptionResult,
    NotManaged,
    NotManagedStatus,
    NotManagedView,
    TradingRefused,
)

EVIL = "<b>x</b>&\"'"
NOW = 1_761_700_000_000
HOUR = 3_600_000
D = Decimal


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return make_i18n("en")


@pytest.fixture(params=["en", "ko"])
def locale(request: pytest.FixtureRequest, i18n: I18n) -> Iterator[str]:
    with i18n.context(), i18n.use_locale(request.param):
        yield request.param


@pytest.fixture
def en(i18n: I18n) -> Iterator[None]:
    with i18n.context(), i18n.use_locale("en"):
        yield


def events(text: str = EVIL) -> list[EngineEvent]:
    return [
        AdoptionAsked(ts_ms=NOW, symbol="SOLUSDT", qty=D("1.00"), entry_price=D("100.5"), token="abc"),
        DelistingAhead(
            ts_ms=NOW,
            symbol="SOLUSDT",
            position_id=1,
            delivery_ms=NOW + 30 * HOUR,
            close_at_ms=NOW + 6 * HOUR,
            cause="delisting announced",
        ),
        DelistingAhead(
            ts_ms=NOW,
            symbol="SOLUSDT",
            position_id=1,
            delivery_ms=NOW + HOUR,
            close_at_ms=NOW,
            cause="delisting announced",
        ),
        DelistingAhead(ts_ms=NOW, symbol="SOLUSDT", position_id=1, delivery_ms=None, close_at_ms=NOW, cause=text),
        AccountModeSwitched(ts_ms=NOW, before="hedge", after="one-way"),
        EntriesRefused(ts_ms=NOW, reason=text),
        EntriesRefused(ts_ms=NOW, reason=text, cause=text),
        EntriesRefused(ts_ms=NOW, reason=None),
        PositionClosed(
            ts_ms=NOW,
            symbol="SOLUSDT",
            reason="liquidation",
            price=D("91"),
            qty=D("1"),
            pnl=D("-9.05"),
            pnl_pct=D("-0.905"),
            position_id=1,
        ),
        PositionClosed(
            ts_ms=NOW,
            symbol="SOLUSDT",
            reason="delisting",
            price=D("101"),
            qty=D("1"),
            pnl=D("0.9"),
            pnl_pct=D("0.09"),
            position_id=1,
        ),
    ]


def test_alerts_render_valid_html_and_escape(locale: str) -> None:
    for event in events():
        text = presenters.alert_text(event)
        parse_html(text)
        assert "<b>x</b>" not in text
        line = presenters.alert_line(event)
        assert "\n" not in line and line


def test_alerts_in_words(en: None) -> None:
    asked, later, now, unknown, switched, multi, _other, again, liquidated, delisted = (
        presenters.alert_text(e) for e in events("status SETTLING")
    )
    assert "a long of 1 at 100.5 is on the account" in asked and "no backstop, no DCA and no exit" in asked
    assert "the position is closed at" in later and "24 h before" in later
    assert later.startswith("📅 <b>Delisting</b> <b>SOLUSDT</b>: Binance settles it at")
    assert now.endswith("the position is closed now.") and "status SETTLING" in unknown
    assert switched.startswith("🔧 <b>Account switched to one-way mode</b>")
    assert "Multi-Assets mode is on" in multi and again.startswith("▶️ <b>New entries allowed again</b>")
    assert liquidated.startswith("💥 <b>Liquidated</b> <b>SOLUSDT</b>: the exchange closed 1 at 91")
    assert "(closed ahead of the delisting)" in delisted
    assert presenters.alert_line(events()[-2]).startswith("LIQUIDATED SOLUSDT (liquidation)")


def test_account_line(en: None) -> None:
    ok = AccountHealth("one-way", False, True, NOW - 5_000)
    assert presenters.account_line(ok, now_ms=NOW) == (
        "✅ Account: one-way mode · single-asset mode · trading allowed (checked 5.0s ago)"
    )
    hedge = AccountHealth("hedge", False, True, NOW, refusal="the account is in hedge mode and ...")
    assert presenters.account_line(hedge, now_ms=NOW).startswith(
        "⛔ Account: hedge mode · single-asset mode · trading allowed — no order is sent in this state"
    )
    multi = AccountHealth("one-way", True, True, NOW, no_entries="Multi-Assets ...")
    assert "⏸ Account: one-way mode · Multi-Assets mode" in presenters.account_line(multi, now_ms=NOW)
    unread = AccountHealth(None, None, None, None, refusal="unread", error=EVIL)
    text = presenters.account_line(unread, now_ms=NOW)
    assert text.startswith("⛔ Account: not read yet") and "⚠️ Last check failed: &lt;b&gt;" in text
    parse_html(text)


def test_not_managed_in_positions_and_the_adoption_texts(locale: str) -> None:
    items = [
        NotManagedView("SOLUSDT", D("1.00"), D("100"), D("-2.5"), NotManagedStatus.IGNORED, NOW),
        NotManagedView("DOGEUSDT", D("10"), D("0.1"), None, NotManagedStatus.ASKED, NOW),
    ]
    text = presenters.positions_text([], page=0, now_ms=NOW, paused=False, not_managed=items)
    parse_html(text)
    assert text.count("SOLUSDT") == 1 and "DOGEUSDT" in text
    parse_html(presenters.adopt_question(items[0], ttl_s=60))
    for outcome in AdoptionOutcome:
        result = AdoptionResult(outcome, "SOLUSDT", position_id=3, qty=D("1"), entry_price=D("100"),
                                backstop_price=D("90"))  # fmt: skip
        parse_html(presenters.adoption_result(result, who=EVIL))
        assert len(presenters.adoption_refusal(result)) <= 200  # a button's pop-up
    parse_html(presenters.service_error_text(TradingRefused(reason=EVIL)))
    parse_html(presenters.service_error_text(NotManaged(symbol="SOLUSDT")))


def test_positions_list_not_managed_in_words(en: None) -> None:
    items = [NotManagedView("SOLUSDT", D("1.00"), D("100"), D("-2.5"), NotManagedStatus.IGNORED, NOW)]
    text = presenters.positions_text([], page=0, now_ms=NOW, paused=False, not_managed=items)
    assert (
        "Not managed (1): positions SurgeDCA did not open; it places no backstop, no DCA and no exit for them"
        in text.replace("<b>", "").replace("</b>", "")
    )
    assert "• <b>SOLUSDT</b> long 1 at 100 · ignored · -2.50 USDT" in text
    result = AdoptionResult(AdoptionOutcome.IGNORED, "SOLUSDT")
    assert presenters.adoption_result(result, who="@ann").startswith("🙈 <b>SOLUSDT</b> ignored by @ann")
