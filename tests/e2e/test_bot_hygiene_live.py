"""Telegram hygiene end to end, through the real service and its bot on the loopback fake Bot API:
commands that waited while the service was down, a second process polling the same token (409 Conflict),
and a group upgraded to a supergroup."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.e2e.bot_harness import CHAT, GROUP, TRADER_A, BotE2E
from tests.e2e.conftest import until
from tests.fakes.telegram import FakeTelegram
from trading.clock import ManualClock

OLD_GROUP = -4_012_345_678  # a basic group (allowed) ...
SUPERGROUP = -1_002_345_678_901  # ... that Telegram upgrades to this supergroup


async def test_commands_that_waited_while_the_service_was_down_are_ignored_and_the_chat_told(tgbot: BotE2E) -> None:
    tg = tgbot.tg
    await tgbot.start()
    engine = tgbot.h.engine
    question = await tgbot.say("/config set leverage 5")  # a confirmation that will never be answered in time
    yes = question.button("Yes")
    await tgbot.h.stop()

    # While the service is down: an old /pause and an old /config set (sent an hour and ten minutes ago), a press
    # on the confirmation of before (its message is ten minutes old), and a /health sent five seconds ago.
    now = int(time.time())
    tg.push_message(CHAT, CHAT, "/pause", date=now - 3600)
    tg.push_message(CHAT, CHAT, "/config set max_positions 3", date=now - 600)
    tg.message(CHAT, question.message_id).date = now - 600
    press = tg.push_callback(CHAT, CHAT, question.message_id, yes)
    tg.push_message(CHAT, CHAT, "/health", date=now - 5)

    await tgbot.start()
    engine = tgbot.h.engine
    notice = await tg.wait_for(lambda: [m for m in tg.messages(CHAT) if m.startswith("⏳")], 10)
    assert notice == [
        "⏳ Ignored 3 command(s) older than 2 minutes: they were sent while the service could not receive them. "
        "Send again what you still want done."
    ]
    health = await tg.wait_for(lambda: [m for m in tg.messages(CHAT) if m.startswith("Health · mode live")], 10)
    assert len(health) == 1  # the fresh one ran
    answer = await tg.wait_for(lambda: tg.callback_answer(press), 10)
    assert answer["text"] == "Pressed while the service was not running: ignored. Press again."
    assert not engine.ctx.paused and not tgbot.h.store.state.get("paused")
    assert engine.ctx.cfg.max_positions == 10 and engine.ctx.cfg.leverage == 10
    assert tgbot.h.store.audit.recent(10, action="config.set") == []
    rows = list(reversed(tgbot.h.store.audit.recent(10, action="stale_update_ignored")))
    assert [(r.actor, r.after["update"]) for r in rows] == [
        (f"tg:{CHAT}", "'/pause'"),
        (f"tg:{CHAT}", "'/config set max_positions 3'"),
        (f"tg:{CHAT}", f"button {yes!r}"),
    ]
    # Commands sent now run as usual.
    assert (await tgbot.say("/pause")).text.startswith("⏸ Paused")


class RivalPoller:
    """A second process polling the same bot token (plain HTTP, as any other Bot API client would)."""

    def __init__(self, fake: FakeTelegram) -> None:
        self.fake = fake
        self.updates: list[dict] = []
        self.conflicts = 0
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        offset = 0
        async with aiohttp.ClientSession() as session:
            while True:
                data = {"timeout": "1", "offset": str(offset), "rival": "1"}  # "rival": ignored by the Bot API
                async with session.post(f"{self.fake.base_url}/bot{self.fake.token}/getUpdates", data=data) as r:
                    body = await r.json()
                if r.status == 409:
                    self.conflicts += 1
                    await asyncio.sleep(0.2)
                    continue
                for u in body["result"]:
                    self.updates.append(u)
                    offset = u["update_id"] + 1

    def __enter__(self) -> RivalPoller:
        self._task = asyncio.ensure_future(self.run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


@pytest.fixture
async def slow_polls(telegram: FakeTelegram) -> AsyncIterator[None]:
    telegram.max_poll_s = 1.0  # long polls that last, so that two pollers overlap as they do on Telegram
    yield


@pytest.mark.usefixtures("slow_polls")
async def test_a_second_poller_makes_the_service_stop_polling_and_say_so(tgbot: BotE2E) -> None:
    tg = tgbot.tg
    await tgbot.start()
    service = tgbot.service
    with RivalPoller(tg) as rival:
        alert = await tg.wait_for(lambda: tgbot.alerts(CHAT, "Another bot instance"), 30)
        assert "409 Conflict, 3 times" in alert[0] and "trading and alerts go on" in alert[0]
        await tg.wait_for(lambda: tgbot.alerts(GROUP, "Another bot instance"), 10)  # every allowed chat is told
        await until(
            lambda: service.bot_task is not None and service.bot_task.done(),
            timeout=15,
            what="the service's polling to stop",
        )
        assert service.bot_task.exception() is None
        ours = len([c for c in tg.calls("getUpdates") if "rival" not in c.params])
        # From now on only the rival polls: it receives the commands, the service no longer takes any.
        tg.push_message(CHAT, CHAT, "/pause")
        await until(
            lambda: any(u.get("message", {}).get("text") == "/pause" for u in rival.updates),
            what="the rival receiving the command",
        )
        assert len([c for c in tg.calls("getUpdates") if "rival" not in c.params]) == ours
        assert not tgbot.h.engine.ctx.paused
        assert rival.conflicts >= 1  # both sides saw conflicts, as on Telegram
    assert "PositionClosed" not in tgbot.h.recorder.kinds()  # trading untouched
    assert "BotPollingStopped" in tgbot.h.recorder.kinds()


async def test_a_group_upgraded_to_a_supergroup_is_reported_with_its_new_id(tgbot: BotE2E) -> None:
    tg = tgbot.tg
    await tgbot.start(telegram_allowed_chat_ids=[CHAT, OLD_GROUP])
    assert (await tgbot.say("/pause", chat=OLD_GROUP)).text.startswith("⏸ Paused")

    tg.migrate_group(OLD_GROUP, SUPERGROUP, TRADER_A)
    told = await tg.wait_for(lambda: tg.messages(SUPERGROUP), 10)
    assert told[0].startswith("This group became a supergroup and Telegram gave it a new id: -1002345678901.")
    assert f"in place of {OLD_GROUP}" in told[0]
    alert = await tg.wait_for(lambda: tgbot.alerts(CHAT, "Group upgraded"), 10)
    assert f"chat {OLD_GROUP} became a supergroup with the id {SUPERGROUP}" in alert[0]
    # Alerts meant for the old id follow the group (Telegram refuses the old id with migrate_to_chat_id).
    await tg.wait_for(lambda: [m for m in tg.messages(SUPERGROUP) if "Group upgraded" in m], 10)
    (row,) = tgbot.h.store.audit.recent(5, action="chat_migrated")
    assert row.before == {"chat_id": OLD_GROUP} and row.after == {"chat_id": SUPERGROUP}

    # The new id is not allowed until the operator says so: its commands are ignored (counted, audited once an
    # hour), and the bot does not leave it (it is the same group).
    clock = ManualClock(int(time.time() * 1000))  # now, then moved on by the test
    tgbot.dp["audit_tally"].clock = clock
    tg.push_message(SUPERGROUP, TRADER_A, "/resume")
    await tgbot.settle()
    clock.advance(3600)
    tg.push_message(SUPERGROUP, TRADER_A, "/resume")  # the next hour's first update writes the last hour's row
    await until(
        lambda: any(
            r.after.get("chat_id") == SUPERGROUP and "/resume" in r.after.get("samples", [])
            for r in tgbot.h.store.audit.recent(10, action="unauthorized")
        ),
        what="the audit row",
    )
    assert tg.bot_status(SUPERGROUP) == "member"
    assert tgbot.h.engine.ctx.paused
