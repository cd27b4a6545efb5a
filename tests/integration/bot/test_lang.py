"""Korean by default; /lang en switches one chat (persisted by the service); command menus in both languages."""

from __future__ import annotations

import pytest

from storage.db import Database
from tests.integration.bot.conftest import CHAT, GROUP, USER, BotHarness
from trading.store import Store


@pytest.fixture
def bot_locale() -> str:
    return "ko"


async def test_default_locale_is_korean_and_lang_switches(harness: BotHarness) -> None:
    reply = await harness.say("/help")
    assert "/help — 이 목록" in reply.text
    assert "물타기" in reply.text
    # Refusals come from the error router, in the chat's language too.
    reply = await harness.say("/exit zzz")
    assert reply.text == "알 수 없는 심볼 ZZZUSDT. btc 또는 BTCUSDT 처럼 입력하세요."

    reply = await harness.say("/lang en")
    assert reply.text == "Language of this chat: English."
    assert harness.service.chat_locale(CHAT) == "en"
    assert ("set_chat_locale", CHAT, "en", f"tg:{USER}") in harness.service.calls
    (row,) = harness.sim.audit(actor=f"tg:{USER}")
    assert (row.action, row.before, row.after) == (
        "set_locale",
        {"chat_id": CHAT, "locale": None},
        {"chat_id": CHAT, "locale": "en"},
    )
    db = Database.open(harness.sim.db_path, migrate=False)  # persisted: what a restart reads
    try:
        assert Store.of(db).state.get(f"chat_locale:{CHAT}") == "en"
    finally:
        db.close()

    reply = await harness.say("/help")
    assert "/help — this list" in reply.text
    # Buttons follow the chat's language too.
    await harness.sim.enter("BTCUSDT", "64000")
    listing = await harness.say("/positions")
    labels = [label for label, _ in listing.buttons]
    assert labels == ["❌ Exit BTCUSDT", "🔎 Details", "📈 Chart", "🚫 Block", "🔄 Refresh"]

    # Another chat keeps the default.
    reply = await harness.say("/help", chat=GROUP)
    assert "/help — 이 목록" in reply.text

    reply = await harness.say("/lang ko")
    assert reply.text == "이 채팅의 언어: 한국어."
    listing = await harness.say("/positions")
    labels = [label for label, _ in listing.buttons]
    assert labels == ["❌ BTCUSDT 청산", "🔎 상세", "📈 차트", "🚫 차단", "🔄 새로고침"]


async def test_unknown_language_changes_nothing(harness: BotHarness) -> None:
    reply = await harness.say("/lang fr")
    assert reply.text.startswith("지원하지 않는 언어 fr.")
    assert "ko (한국어) | en (English)" in reply.text
    reply = await harness.say("/lang")
    assert reply.text.startswith("언어: 한국어. 사용법: /lang ko|en")
    assert harness.service.chat_locale(CHAT) is None
    assert harness.service.count("set_chat_locale") == 0 and harness.sim.audit(actor=f"tg:{USER}") == []


async def test_command_menus_in_both_languages(harness: BotHarness) -> None:
    default = {c["command"]: c["description"] for c in harness.fake.commands[""]}
    english = {c["command"]: c["description"] for c in harness.fake.commands["en"]}
    assert (
        set(default)
        == set(english)
        == {
            "positions",
            "health",
            "sync",
            "exit",
            "config",
            "pause",
            "resume",
            "stats",
            "why",
            "chart",
            "block",
            "unblock",
            "blocked",
            "risk",
            "report",
            "lang",
            "help",
        }
    )
    assert default["pause"] == "신규 진입 중지 (청산과 물타기는 계속)"
    assert english["pause"] == "stop opening new positions (exits and DCA continue)"
