"""Every button's callback data fits Telegram's 64 bytes and round-trips."""

from __future__ import annotations

from bot.callbacks import MAX_CALLBACK_BYTES, ConfirmCb, ConfirmKind, PosAction, PositionsCb
from bot.confirmations import ConfirmationStore


def test_longest_realistic_data_fits() -> None:
    token = ConfirmationStore().create("exit", user_id=1, chat_id=1).token
    for data in (
        PositionsCb(action=PosAction.EXIT, symbol="1000000BABYDOGEUSDT" + "X" * 11, page=999),
        PositionsCb(action=PosAction.DETAILS, symbol="币安人生USDT", page=0),
        ConfirmCb(kind=ConfirmKind.CONFIG, token=token, yes=True),
    ):
        packed = data.pack()
        assert len(packed.encode()) <= MAX_CALLBACK_BYTES
        assert type(data).unpack(packed) == data


def test_confirm_tokens_are_unguessable_and_separator_free() -> None:
    store = ConfirmationStore()
    tokens = {store.create("exit", user_id=1, chat_id=1).token for _ in range(500)}
    assert len(tokens) == 500
    assert all(":" not in t and len(t) == 12 for t in tokens)
