"""Loopback fake of the Telegram Bot API (see ``server.py``)."""

from tests.fakes.telegram.server import FakeMessage, FakeTelegram, SentCall

__all__ = ["FakeMessage", "FakeTelegram", "SentCall"]
