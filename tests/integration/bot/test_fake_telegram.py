"""The fake Bot API answers with Telegram's real shapes (compared with the recorded samples)."""

from __future__ import annotations

import json

import aiohttp

from tests.conftest import TELEGRAM_SAMPLES
from tests.fakes.telegram import FakeTelegram


def sample(path: str) -> dict:
    return json.loads((TELEGRAM_SAMPLES / path).read_text())


async def call(fake: FakeTelegram, method: str, token: str | None = None, **params: object) -> tuple[int, dict]:
    data = {k: json.dumps(v) if isinstance(v, dict | list) else str(v) for k, v in params.items()}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{fake.base_url}/bot{token or fake.token}/{method}", data=data) as resp,
    ):
        return resp.status, await resp.json()


async def test_success_shapes_match_the_samples(telegram: FakeTelegram) -> None:
    status, me = await call(telegram, "getMe")
    assert status == 200 and me["ok"] is True
    assert set(me["result"]) == set(sample("responses/real_getMe__cyphernode.json")["result"])
    status, sent = await call(telegram, "sendMessage", chat_id=42, text="Hello World")
    real = sample("responses/real_sendMessage__cyphernode.json")
    assert set(real["result"]) <= set(sent["result"])
    assert sent["result"]["from"]["is_bot"] is True and sent["result"]["text"] == "Hello World"
    status, ok = await call(telegram, "deleteWebhook")
    assert ok == sample("responses/answerCallbackQuery_success__bool_result.json")


async def test_update_shapes_match_the_samples(telegram: FakeTelegram) -> None:
    telegram.push_message(408258968, 408258968, "4")
    _, body = await call(telegram, "getUpdates", timeout=0)
    (update,) = body["result"]
    real = sample("updates/real_message_private_text__teloxide_update_rs_L749.json")
    assert set(update) == set(real)
    assert set(update["message"]) == set(real["message"])
    assert update["message"]["chat"] == real["message"]["chat"] | {
        "first_name": "User408258968",
        "username": "user408258968",
    }
    _, sent = await call(
        telegram,
        "sendMessage",
        chat_id=996202131,
        text="Hello!",
        reply_markup={"inline_keyboard": [[{"text": "Button 1", "callback_data": "b1"}]]},
    )
    telegram.push_callback(996202131, 996202131, sent["result"]["message_id"], "b1")
    _, body = await call(telegram, "getUpdates", offset=update["update_id"] + 1, timeout=0)
    (update,) = body["result"]
    real = sample("updates/real_callback_query_inline_keyboard__bijoyvbabu123_1.json")
    assert set(update["callback_query"]) == set(real["callback_query"])
    assert set(update["callback_query"]["message"]) == set(real["callback_query"]["message"])
    assert update["callback_query"]["message"]["reply_markup"] == sent["result"]["reply_markup"]


async def test_error_bodies_are_telegrams(telegram: FakeTelegram) -> None:
    _, sent = await call(telegram, "sendMessage", chat_id=1, text="<b>same</b>", parse_mode="HTML")
    status, body = await call(
        telegram,
        "editMessageText",
        chat_id=1,
        message_id=sent["result"]["message_id"],
        text="<b>same</b>",
        parse_mode="HTML",
    )
    assert (status, body) == (400, sample("errors/error_400_message_not_modified.json"))
    status, body = await call(telegram, "answerCallbackQuery", callback_query_id="123")
    assert (status, body) == (400, sample("errors/error_400_query_too_old.json"))
    telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 7", retry_after=7)
    status, body = await call(telegram, "sendMessage", chat_id=1, text="x")
    assert (status, body) == (
        429,
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 7",
            "parameters": {"retry_after": 7},
        },
    )
    assert (await call(telegram, "sendMessage", chat_id=1, text="x"))[0] == 200  # only the next one failed
    assert await call(telegram, "noSuchMethod") == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert (await call(telegram, "getMe", token="1:wrong"))[1]["description"] == "Unauthorized"


async def test_refuses_what_telegram_refuses(telegram: FakeTelegram) -> None:
    for bad in ("<script>x</script>", "<b>open", "a < b", "fish & chips", "</b>"):
        status, body = await call(telegram, "sendMessage", chat_id=1, text=bad, parse_mode="HTML")
        assert status == 400 and body["description"].startswith("Bad Request: can't parse entities"), bad
    status, body = await call(telegram, "sendMessage", chat_id=1, text="x" * 4097)
    assert body["description"] == "Bad Request: message is too long"
    status, _ = await call(telegram, "sendMessage", chat_id=1, text="&lt;ok&gt; " + "x" * 4086, parse_mode="HTML")
    assert status == 200  # the limit counts the text after entity parsing
    assert telegram.messages(1) == ["<ok> " + "x" * 4086]


async def test_two_overlapping_pollers_end_the_older_with_409_conflict(telegram: FakeTelegram) -> None:
    import asyncio

    telegram.max_poll_s = 2.0
    first = asyncio.ensure_future(call(telegram, "getUpdates", timeout=5))
    await telegram.wait_for(lambda: telegram.polls == 1)  # counted as it starts waiting at the server
    second = asyncio.ensure_future(call(telegram, "getUpdates", timeout=5))
    status, body = await first
    # Telegram's own body (409, as recorded from the live API)
    assert status == 409 and body == {
        "ok": False,
        "error_code": 409,
        "description": "Conflict: terminated by other getUpdates request; make sure that only one bot instance is "
        "running",
    }
    telegram.push_message(408258968, 408258968, "/health")
    status, body = await second  # the newer poller gets the update
    assert status == 200 and body["result"][0]["message"]["text"] == "/health"
    assert telegram.conflicts == 1
    # Polls that do not overlap never conflict.
    status, _ = await call(telegram, "getUpdates", timeout=0)
    assert status == 200 and telegram.conflicts == 1


async def test_message_dates_and_a_group_upgraded_to_a_supergroup(telegram: FakeTelegram) -> None:
    hour_ago = 1_767_225_600
    telegram.push_message(408258968, 408258968, "/pause", date=hour_ago)
    telegram.migrate_group(-4_012_345_678, -1_002_345_678_901, 996202131)
    _, body = await call(telegram, "getUpdates", timeout=0)
    old, moved_from, moved_to = body["result"]
    assert old["message"]["date"] == hour_ago
    assert moved_from["message"]["chat"] == {"id": -1_002_345_678_901, "title": "SurgeDCA desk", "type": "supergroup"}
    assert moved_from["message"]["migrate_from_chat_id"] == -4_012_345_678
    assert moved_to["message"]["chat"]["type"] == "group"
    assert moved_to["message"]["migrate_to_chat_id"] == -1_002_345_678_901
    status, refused = await call(telegram, "sendMessage", chat_id=-4_012_345_678, text="hello")
    assert status == 400 and refused == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: group chat was upgraded to a supergroup chat",
        "parameters": {"migrate_to_chat_id": -1_002_345_678_901},
    }
    status, _ = await call(telegram, "sendMessage", chat_id=-1_002_345_678_901, text="hello")
    assert status == 200
