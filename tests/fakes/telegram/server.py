"""A loopback fake of the Telegram Bot API, enough for aiogram's polling bot.

Real HTTP on 127.0.0.1 (aiohttp), the real request encoding aiogram uses
(form fields, multipart for photos), the real response and error bodies
(``{"ok":true,"result":...}``, ``{"ok":false,"error_code":...}``; shapes from
``tests/data/telegram-api``), and Telegram's own refusals where the bot
could trip on them: HTML that does not parse, text over 4,096 characters,
an edit that changes nothing ("message is not modified"), a callback query
answered twice ("query is too old"), two overlapping ``getUpdates`` (the older
one ends with 409 Conflict, as when a second process polls the same token),
and a group upgraded to a supergroup (its last message carries
``migrate_to_chat_id``; sending to the old id is refused with that parameter).

Control API (for tests)::

    fake = FakeTelegram(); await fake.start()
    bot = create_bot(fake.token, fake.base_url)
    fake.push_message(chat_id, user_id, "/positions")
    await fake.wait_for(lambda: fake.messages(chat_id), timeout=5)
    fake.push_callback(chat_id, user_id, message_id, data)
    fake.push_message(chat_id, user_id, "/pause", date=int(time.time()) - 3600)  # sent an hour ago
    fake.migrate_group(old_group_id, new_supergroup_id, user_id)
    fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    fake.add_bot_to_group(-1001999, by_user=42)  # my_chat_member + new_chat_members, as Telegram sends them
    fake.revoke_token()  # every call now gets 401 Unauthorized (the token was revoked in @BotFather)
    fake.outage(502); fake.outage(None)  # Telegram down (every call: 502 Bad Gateway), then back
    await fake.stop()

Groups: any negative chat id is a group (``-100...`` a supergroup) with whoever writes in it as a member; the
bot is a member of every group until it leaves (``leaveChat``) or a test says otherwise. ``getUpdates``
honours ``allowed_updates`` as Telegram does (the last list given stays in force; the default leaves out
``chat_member`` and reactions).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.telegram.html_check import HtmlParseError, parse_html

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
_JSON_FIELDS = frozenset(
    {
        "reply_markup",
        "commands",
        "scope",
        "allowed_updates",
        "link_preview_options",
        "entities",
        "caption_entities",
        "reply_parameters",
    }
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are exactly the same "
    "as a current content and reply markup of the message"
)
QUERY_TOO_OLD = "Bad Request: query is too old and response timeout expired or query ID is invalid"
CONFLICT = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
UPGRADED = "Bad Request: group chat was upgraded to a supergroup chat"
# getUpdates' default when allowed_updates was never given (or given empty): everything but these.
_NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


def _group_type(chat_id: int) -> str:
    return "supergroup" if chat_id < -(10**12) else "group"


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return body


@dataclass(slots=True)
class SentCall:
    """One request the bot made: method, decoded params, and the HTTP status it got."""

    method: str
    params: dict[str, Any]
    status: int = 200
    at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass(slots=True)
class FakeMessage:
    chat_id: int
    message_id: int
    from_bot: bool
    text: str  # what the user sees (markup parsed); the caption for photos
    html: str | None = None  # as sent, when parse_mode was HTML
    reply_markup: dict[str, Any] | None = None
    photo: bytes | None = None
    date: int = 0
    edit_count: int = 0
    deleted: bool = False
    user_id: int | None = None

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback_data) of every inline button, row by row."""
        rows = (self.reply_markup or {}).get("inline_keyboard", [])
        return [(b.get("text", ""), b.get("callback_data", "")) for row in rows for b in row]

    def button(self, label_part: str) -> str:
        """callback_data of the first button whose label contains ``label_part``."""
        for label, data in self.buttons:
            if label_part in label:
                return data
        raise KeyError(f"no button with {label_part!r} in {self.buttons}")


@dataclass(slots=True)
class _Failure:
    code: int
    description: str
    retry_after: int | None
    times: int


@dataclass
class _Chat:
    id: int
    messages: dict[int, FakeMessage] = field(default_factory=dict)
    next_id: int = 1


class FakeTelegram:
    def __init__(
        self,
        token: str = "7000000001:AAFakeLoopbackTokenForSurgeDcaTests_x",
        *,
        username: str = "surgedca_test_bot",
        max_poll_s: float = 0.3,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.max_poll_s = max_poll_s  # real long polls are capped so tests stay fast
        self.requests: list[SentCall] = []  # every call, getUpdates included
        self.commands: dict[str, list[dict[str, Any]]] = {}  # language_code ("" = default) -> commands
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(700_000_001)
        self._callback_ids = itertools.count(4_278_655_576_057_498_001)
        self._answered: dict[str, dict[str, Any]] = {}
        self._open_callbacks: set[str] = set()
        self._chats: dict[int, _Chat] = {}
        self._failures: dict[str, list[_Failure]] = {}
        self._new_update = asyncio.Event()
        self._bot_status: dict[int, str] = {}  # chat id -> the bot's status there, once it changed
        self._titles: dict[int, str] = {}
        self._allowed_updates: list[str] | None = None  # as last given to getUpdates (None: Telegram's default)
        self._revoked = False
        self._outage: int | None = None  # HTTP status every call gets during an outage
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._closing = False
        self.polls = 0
        self.conflicts = 0  # getUpdates requests ended with 409 by a newer one
        self._pending_poll: asyncio.Future[None] | None = None  # resolved when a newer getUpdates terminates it
        self._migrated: dict[int, int] = {}  # old group id -> its supergroup id

    # ------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        app = web.Application(client_max_size=20 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._handle)
        app.router.add_get("/bot{token}/{method}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._closing = True
        self._new_update.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("FakeTelegram.start() first")
        return f"http://127.0.0.1:{self._port}"

    # ------------------------------------------------------------ control API
    def _chat(self, chat_id: int) -> _Chat:
        return self._chats.setdefault(chat_id, _Chat(chat_id))

    @staticmethod
    def _user(user_id: int, language_code: str = "en") -> dict[str, Any]:
        return {
            "id": user_id,
            "is_bot": False,
            "first_name": f"User{user_id}",
            "username": f"user{user_id}",
            "language_code": language_code,
        }

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "SurgeDCA test", "username": self.username}

    def _chat_json(self, chat_id: int, user_id: int | None = None) -> dict[str, Any]:
        if chat_id > 0:
            return {"id": chat_id, "first_name": f"User{chat_id}", "username": f"user{chat_id}", "type": "private"}
        return {"id": chat_id, "title": self._titles.get(chat_id, "SurgeDCA desk"), "type": _group_type(chat_id)}

    def push_message(
        self, chat_id: int, user_id: int, text: str, *, language_code: str = "en", date: int | None = None
    ) -> int:
        """A user's text message, as an update for the next getUpdates; returns its message_id. ``date`` (Unix
        seconds, default now) is when the user sent it: an older one stands for a message that waited at Telegram
        while the bot was not polling."""
        chat = self._chat(chat_id)
        message_id = chat.next_id
        chat.next_id += 1
        now = int(time.time()) if date is None else int(date)
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": self._user(user_id, language_code),
            "chat": self._chat_json(chat_id),
            "date": now,
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
        chat.messages[message_id] = FakeMessage(chat_id, message_id, False, text, date=now, user_id=user_id)
        self._push_update({"message": message})
        return message_id

    def push_callback(self, chat_id: int, user_id: int, message_id: int, data: str) -> str:
        """A press on an inline button of one of the bot's messages; returns the callback query id.

        A message this fake never saw (e.g. one from before a restart) is described as a bare bot message.
        """
        stored = self._chat(chat_id).messages.get(message_id)
        if stored is None:
            stored = FakeMessage(chat_id, message_id, True, "…", date=int(time.time()) - 3600)
        elif not stored.from_bot:
            raise KeyError(f"message {message_id} in chat {chat_id} is the user's, not the bot's")
        query_id = str(next(self._callback_ids))
        self._open_callbacks.add(query_id)
        self._push_update(
            {
                "callback_query": {
                    "id": query_id,
                    "from": self._user(user_id),
                    "message": self._message_json(stored),
                    "chat_instance": str(-2291384178539442901 - chat_id),
                    "data": data,
                }
            }
        )
        return query_id

    def migrate_group(self, old_chat_id: int, new_chat_id: int, user_id: int) -> None:
        """A group upgraded to a supergroup (by ``user_id``): Telegram posts ``migrate_from_chat_id`` in the new
        supergroup and ``migrate_to_chat_id`` in the old group, then refuses messages to the old id."""
        if not (-(10**12) < old_chat_id < 0) or new_chat_id >= -(10**12):
            raise ValueError("a group id (> -10^12) migrates to a supergroup id (-100...)")
        now = int(time.time())
        for chat_id, key, value in (
            (new_chat_id, "migrate_from_chat_id", old_chat_id),
            (old_chat_id, "migrate_to_chat_id", new_chat_id),
        ):
            chat = self._chat(chat_id)
            message_id = chat.next_id
            chat.next_id += 1
            self._push_update(
                {
                    "message": {
                        "message_id": message_id,
                        "from": self._user(user_id),
                        "chat": self._chat_json(chat_id),
                        "date": now,
                        key: value,
                    }
                }
            )
        self._migrated[old_chat_id] = new_chat_id

    # ------------------------------------------------------------ groups: the bot's membership
    def bot_status(self, chat_id: int) -> str:
        """The bot's status in a chat: "member" (the default everywhere), "left" or "kicked"."""
        return self._bot_status.get(chat_id, "member")

    def add_bot_to_group(self, chat_id: int, *, by_user: int, title: str = "Pump signals") -> None:
        """Someone adds the bot to a group: Telegram sends ``my_chat_member`` (left -> member) and the group's
        service message with ``new_chat_members`` (shapes of a real getUpdates capture)."""
        if chat_id >= 0:
            raise ValueError("groups have negative ids")
        self._titles[chat_id] = title
        self._push_my_chat_member(chat_id, self._user(by_user), "left", "member")
        self._bot_status[chat_id] = "member"
        chat = self._chat(chat_id)
        message_id = chat.next_id
        chat.next_id += 1
        bot = self._bot_user()
        self._push_update(
            {
                "message": {
                    "message_id": message_id,
                    "from": self._user(by_user),
                    "chat": self._chat_json(chat_id),
                    "date": int(time.time()),
                    "new_chat_participant": bot,
                    "new_chat_member": bot,
                    "new_chat_members": [bot],
                }
            }
        )

    def outage(self, status: int | None = 502) -> None:
        """Until ``outage(None)``, every call gets ``status`` (a gateway error, as when Telegram is down);
        a long poll already waiting still ends normally."""
        self._outage = status

    def revoke_token(self) -> None:
        """The token is revoked (or was never valid): every call now gets 401 Unauthorized."""
        self._revoked = True

    def _push_my_chat_member(self, chat_id: int, by: dict[str, Any], old: str, new: str) -> None:
        self._push_update(
            {
                "my_chat_member": {
                    "chat": self._chat_json(chat_id),
                    "from": by,
                    "date": int(time.time()),
                    "old_chat_member": {"user": self._bot_user(), "status": old},
                    "new_chat_member": {"user": self._bot_user(), "status": new},
                }
            }
        )

    def _require_member(self, chat_id: int) -> None:
        """What Telegram answers a bot writing to a group it is no longer in."""
        if chat_id < 0 and self.bot_status(chat_id) != "member":
            kind = _group_type(chat_id)
            if kind == "group":
                raise ApiError(400, "Bad Request: chat not found")
            raise ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")

    def _push_update(self, body: dict[str, Any]) -> None:
        self._updates.append({"update_id": next(self._update_ids), **body})
        self._new_update.set()

    def fail_next(
        self, method: str, error_code: int, description: str, retry_after: int | None = None, times: int = 1
    ) -> None:
        """The next ``times`` calls of ``method`` get this error (with ``parameters.retry_after`` for a 429)."""
        self._failures.setdefault(method, []).append(_Failure(error_code, description, retry_after, times))

    @property
    def sent(self) -> list[SentCall]:
        """Every call the bot made except the getUpdates polling, in order."""
        return [c for c in self.requests if c.method != "getUpdates"]

    def calls(self, method: str, *, ok_only: bool = False) -> list[SentCall]:
        return [c for c in self.requests if c.method == method and (c.ok or not ok_only)]

    def bot_messages(self, chat_id: int) -> list[FakeMessage]:
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [m for _, m in sorted(chat.messages.items()) if m.from_bot and not m.deleted]

    def messages(self, chat_id: int) -> list[str]:
        """The current text (edits applied) of every message the bot has in that chat, oldest first."""
        return [m.text for m in self.bot_messages(chat_id)]

    def last_message(self, chat_id: int) -> FakeMessage:
        msgs = self.bot_messages(chat_id)
        if not msgs:
            raise LookupError(f"the bot sent nothing to chat {chat_id}")
        return msgs[-1]

    def message(self, chat_id: int, message_id: int) -> FakeMessage:
        return self._chats[chat_id].messages[message_id]

    def callback_answer(self, query_id: str) -> dict[str, Any] | None:
        return self._answered.get(query_id)

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:  # noqa: ASYNC109
        """Poll ``predicate`` until it returns something truthy (returned); ``TimeoutError`` after ``timeout``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            result = predicate()
            if result:
                return result
            if asyncio.get_running_loop().time() >= deadline:
                recent = [(c.method, c.status, c.params.get("text", "")[:80]) for c in self.sent[-8:]]
                raise TimeoutError(f"condition not met within {timeout} s; last calls: {recent}")
            await asyncio.sleep(0.01)

    # ------------------------------------------------------------ HTTP
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        call = SentCall(method, params, at=time.monotonic())
        self.requests.append(call)
        try:
            if self._outage is not None:
                raise ApiError(self._outage, "Bad Gateway" if self._outage == 502 else "Internal Server Error")
            if request.match_info["token"] != self.token or self._revoked:
                raise ApiError(401, "Unauthorized")
            failure = self._take_failure(method)
            if failure is not None:
                raise failure
            handler = getattr(self, f"_m_{method.lower()}", None)
            if handler is None:
                raise ApiError(404, "Not Found")
            result = await handler(params)
        except ApiError as exc:
            call.status = exc.code
            return web.json_response(exc.body(), status=exc.code)
        return web.json_response({"ok": True, "result": result})

    async def _params(self, request: web.Request) -> dict[str, Any]:
        form = await request.post()
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                files[key] = value.file.read()
            elif key in _JSON_FIELDS:
                params[key] = json.loads(value)
            else:
                params[key] = value
        if request.query:
            params.update(request.query)
        for key, value in list(params.items()):
            if isinstance(value, str) and value.startswith("attach://"):
                params[key] = files.get(value.removeprefix("attach://"), b"")
        for key, data in files.items():
            params.setdefault(key, data)
        return params

    def _take_failure(self, method: str) -> ApiError | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        failure = queue[0]
        failure.times -= 1
        if failure.times <= 0:
            queue.pop(0)
        parameters = {"retry_after": failure.retry_after} if failure.retry_after is not None else None
        return ApiError(failure.code, failure.description, parameters)

    # ------------------------------------------------------------ helpers
    def _message_json(self, m: FakeMessage) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": m.message_id,
            "from": self._bot_user() if m.from_bot else self._user(m.user_id or m.chat_id),
            "chat": self._chat_json(m.chat_id),
            "date": m.date,
        }
        if m.photo is not None:
            body["photo"] = [
                {
                    "file_id": f"AgACAgIAAxkDAAI{m.chat_id}_{m.message_id}",
                    "file_unique_id": f"AQAD{m.message_id}",
                    "width": 1280,
                    "height": 720,
                    "file_size": len(m.photo),
                }
            ]
            if m.text:
                body["caption"] = m.text
        else:
            body["text"] = m.text
        if m.edit_count:
            body["edit_date"] = m.date + m.edit_count
        if m.reply_markup:
            body["reply_markup"] = m.reply_markup
        return body

    def _chat_id(self, params: dict[str, Any]) -> int:
        try:
            chat_id = int(params["chat_id"])
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: chat not found") from None
        moved = self._migrated.get(chat_id)
        if moved is not None:
            raise ApiError(400, UPGRADED, {"migrate_to_chat_id": moved})
        return chat_id

    @staticmethod
    def _render(text: str, parse_mode: str | None, limit: int, what: str) -> tuple[str, str | None]:
        if parse_mode and parse_mode.upper() == "HTML":
            try:
                plain = parse_html(text)
            except HtmlParseError as exc:
                raise ApiError(400, f"Bad Request: can't parse entities: {exc}") from None
            html_text: str | None = text
        else:
            plain, html_text = text, None
        if not plain.strip():
            raise ApiError(
                400, f"Bad Request: {what} is empty" if what == "text" else "Bad Request: message text is empty"
            )
        if len(plain) > limit:
            raise ApiError(
                400,
                "Bad Request: message is too long" if what == "text" else "Bad Request: message caption is too long",
            )
        return plain, html_text

    def _find(self, params: dict[str, Any], *, verb: str) -> FakeMessage:
        chat_id = self._chat_id(params)
        try:
            message_id = int(params["message_id"])
        except (KeyError, ValueError):
            raise ApiError(400, "Bad Request: message identifier is not specified") from None
        m = self._chat(chat_id).messages.get(message_id)
        if m is None or m.deleted:
            raise ApiError(400, f"Bad Request: message to {verb} not found")
        if not m.from_bot and verb == "edit":
            raise ApiError(400, "Bad Request: message can't be edited")
        return m

    def _store(self, chat_id: int, **kwargs: Any) -> FakeMessage:
        chat = self._chat(chat_id)
        m = FakeMessage(chat_id, chat.next_id, True, date=int(time.time()), **kwargs)
        chat.messages[m.message_id] = m
        chat.next_id += 1
        return m

    # ------------------------------------------------------------ methods
    async def _m_getme(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            **self._bot_user(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _m_getupdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        self.polls += 1
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        limit = int(params.get("limit", 100) or 100)
        if "allowed_updates" in params:  # stays in force for later calls that do not give it
            given = params["allowed_updates"]
            self._allowed_updates = list(given) if given else None
        older = self._pending_poll
        if older is not None and not older.done():
            older.set_result(None)  # Telegram ends the waiting request: 409 Conflict for its poller
        terminated: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending_poll = terminated
        try:
            if offset:  # confirms (forgets) every update below the offset, as Telegram does
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            # Telegram does not keep the update types the bot did not ask for.
            self._updates = [u for u in self._updates if self._wanted(u)]
            if not self._updates and timeout > 0 and not self._closing:
                self._new_update.clear()
                arrived = asyncio.ensure_future(self._new_update.wait())
                try:
                    await asyncio.wait(
                        {arrived, terminated},
                        timeout=min(timeout, self.max_poll_s),
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    arrived.cancel()
            if terminated.done():
                self.conflicts += 1
                raise ApiError(409, CONFLICT)
            return self._updates[:limit]
        finally:
            if self._pending_poll is terminated:
                self._pending_poll = None

    def _wanted(self, update: dict[str, Any]) -> bool:
        kind = next(k for k in update if k != "update_id")
        if self._allowed_updates is None:
            return kind not in _NOT_BY_DEFAULT
        return kind in self._allowed_updates

    async def _m_leavechat(self, params: dict[str, Any]) -> bool:
        chat_id = self._chat_id(params)
        if chat_id > 0:
            raise ApiError(400, "Bad Request: chat member status can't be changed in private chats")
        self._require_member(chat_id)
        self._bot_status[chat_id] = "left"
        self._push_my_chat_member(chat_id, self._bot_user(), "member", "left")
        return True

    async def _m_sendmessage(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        self._require_member(chat_id)
        plain, html_text = self._render(str(params.get("text", "")), params.get("parse_mode"), TEXT_LIMIT, "text")
        m = self._store(chat_id, text=plain, html=html_text, reply_markup=params.get("reply_markup"))
        return self._message_json(m)

    async def _m_sendphoto(self, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        self._require_member(chat_id)
        photo = params.get("photo")
        if not isinstance(photo, bytes) or not photo:
            raise ApiError(400, "Bad Request: there is no photo in the request")
        caption = str(params.get("caption", ""))
        plain, html_text = ("", None)
        if caption:
            plain, html_text = self._render(caption, params.get("parse_mode"), CAPTION_LIMIT, "caption")
        m = self._store(chat_id, text=plain, html=html_text, photo=photo, reply_markup=params.get("reply_markup"))
        return self._message_json(m)

    async def _m_editmessagetext(self, params: dict[str, Any]) -> dict[str, Any]:
        m = self._find(params, verb="edit")
        plain, html_text = self._render(str(params.get("text", "")), params.get("parse_mode"), TEXT_LIMIT, "text")
        markup = params.get("reply_markup")
        if plain == m.text and (html_text or plain) == (m.html or m.text) and markup == m.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        m.text, m.html, m.reply_markup = plain, html_text, markup
        m.edit_count += 1
        return self._message_json(m)

    async def _m_editmessagereplymarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        m = self._find(params, verb="edit")
        markup = params.get("reply_markup")
        if markup == m.reply_markup:
            raise ApiError(400, NOT_MODIFIED)
        m.reply_markup = markup
        m.edit_count += 1
        return self._message_json(m)

    async def _m_deletemessage(self, params: dict[str, Any]) -> bool:
        m = self._find(params, verb="delete")
        m.deleted = True
        return True

    async def _m_answercallbackquery(self, params: dict[str, Any]) -> bool:
        query_id = str(params.get("callback_query_id", ""))
        if query_id not in self._open_callbacks:
            raise ApiError(400, QUERY_TOO_OLD)
        self._open_callbacks.discard(query_id)  # a query can be answered once
        self._answered[query_id] = params
        return True

    async def _m_setmycommands(self, params: dict[str, Any]) -> bool:
        commands = params.get("commands")
        if not isinstance(commands, list) or not commands:
            raise ApiError(400, "Bad Request: commands must be non-empty")
        for c in commands:
            if not (1 <= len(c.get("command", "")) <= 32) or not (1 <= len(c.get("description", "")) <= 256):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
        self.commands[str(params.get("language_code", ""))] = commands
        return True

    async def _m_getmycommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands.get(str(params.get("language_code", "")), [])

    async def _m_deletewebhook(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_sendchataction(self, params: dict[str, Any]) -> bool:
        self._chat_id(params)
        return True

    async def _m_close(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_logout(self, params: dict[str, Any]) -> bool:
        return True
