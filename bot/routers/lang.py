"""/lang ko|en: the language of this chat (persisted by the service)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from aiogram.utils.i18n import I18n

from bot.formatting import esc
from bot.i18n import SUPPORTED_LOCALES, _
from bot.middlewares import actor_of
from bot.parsing import split_args
from trading.views import ServiceAPI

# Each language named in itself, so nobody needs to read the other one to find theirs.
LANGUAGE_NAMES = {"ko": "한국어", "en": "English"}


async def cmd_lang(message: Message, command: CommandObject, service: ServiceAPI, i18n: I18n) -> None:
    args = split_args(command.args)
    choices = " | ".join(f"{code} ({LANGUAGE_NAMES[code]})" for code in SUPPORTED_LOCALES)
    if len(args) != 1 or args[0].lower() not in SUPPORTED_LOCALES:
        text = _("Language: {current}. Usage: /lang ko|en").format(current=LANGUAGE_NAMES[i18n.current_locale])
        if args:
            text = _("Unknown language {given}.").format(given=f"<code>{esc(args[0][:20])}</code>") + " " + text
        await message.answer(text + "\n" + esc(choices))
        return
    locale = args[0].lower()
    await service.set_chat_locale(message.chat.id, locale, actor=actor_of(message.from_user))
    with i18n.use_locale(locale):
        await message.answer(_("Language of this chat: {language}.").format(language=LANGUAGE_NAMES[locale]))


def create_router() -> Router:
    router = Router(name="lang")
    router.message.register(cmd_lang, Command("lang"))
    return router
