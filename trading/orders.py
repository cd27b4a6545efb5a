"""Client order ids and the mapping between ladder actions and journal actions.

``sdca-<instance>-<position>-<action>-<n>`` (ARCHITECTURE, order-safety rule 1).
``<instance>`` is a short random tag fixed when the database is created, so
two installations trading one account never mistake each other's orders for
their own (neither cancels nor adopts the other's). The action code alone
tells what a fill means (side, ladder stage, exit reason), so a fill seen only
on the user-data stream, or found after a crash, is applied exactly as if its
REST reply had arrived.

Ids written before the tag existed (``sdca-<position>-<action>-<n>``) still
parse, as this database's own.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from trading.core.models import CloseAll, Dca, ExitReason, Sell, Stage
from trading.exchange.base import CLIENT_ID_PREFIX

# action code -> (side, stage for buys, reason for sells)
ACTIONS: dict[str, tuple[str, Stage | None, ExitReason | None]] = {
    "entry": ("BUY", Stage.INITIAL, None),
    "dca1": ("BUY", Stage.FIRST_DCA, None),
    "dca2": ("BUY", Stage.SECOND_DCA, None),
    "rec2": ("SELL", None, ExitReason.RECOVERY_SECOND_DCA),
    "rec1": ("SELL", None, ExitReason.RECOVERY_FIRST_DCA),
    "half": ("SELL", None, ExitReason.TAKE_HALF),
    "sl": ("SELL", None, ExitReason.STOP_LOSS),
    "trail": ("SELL", None, ExitReason.TRAILING_STOP),
    "dx": ("SELL", None, ExitReason.DEAD_CROSS),
    "manual": ("SELL", None, ExitReason.MANUAL),
    "dl": ("SELL", None, ExitReason.DELISTING),  # closed ahead of the symbol's settlement (delisting)
    "bs": ("SELL", None, ExitReason.BACKSTOP),  # the exchange-side STOP_MARKET closePosition (algo order)
    "bq": ("SELL", None, ExitReason.BACKSTOP),  # a reduce-only quantity stop bridging a backstop replacement
}
STOP_ACTIONS = frozenset({"bs", "bq"})
_BY_REASON = {
    reason: code for code, (_, _, reason) in ACTIONS.items() if reason is not None and code not in STOP_ACTIONS
}
_BY_STAGE = {stage: code for code, (side, stage, _) in ACTIONS.items() if side == "BUY" and stage is not None}

TAG_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
TAG_LENGTH = 6
_PREFIX = re.escape(CLIENT_ID_PREFIX)
_CID = re.compile(rf"^{_PREFIX}(?:(?P<tag>[a-z2-7]{{{TAG_LENGTH}}})-)?(?P<pid>\d+)-(?P<action>[a-z0-9_]+)-(?P<n>\d+)$")
MAX_ID_LENGTH = 36  # Binance's newClientOrderId / clientAlgoId limit


@dataclass(frozen=True, slots=True)
class ParsedId:
    position_id: int
    action: str
    n: int
    tag: str | None = None  # None: an id from before instance tags (this database's own)

    @property
    def side(self) -> str:
        return ACTIONS[self.action][0]

    @property
    def stage(self) -> Stage | None:
        return ACTIONS[self.action][1]

    @property
    def reason(self) -> ExitReason | None:
        return ACTIONS[self.action][2]

    @property
    def is_stop(self) -> bool:
        return self.action in STOP_ACTIONS


def new_instance_tag() -> str:
    return "".join(secrets.choice(TAG_ALPHABET) for _ in range(TAG_LENGTH))


def make_id(tag: str, position_id: int, action: str, n: int) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown order action {action!r}")
    cid = f"{CLIENT_ID_PREFIX}{tag}-{int(position_id)}-{action}-{int(n)}"
    if len(cid) > MAX_ID_LENGTH or _CID.match(cid) is None:
        raise ValueError(f"client order id {cid!r} does not fit Binance's format (at most {MAX_ID_LENGTH} characters)")
    return cid


def parse_id(client_order_id: str) -> ParsedId | None:
    """An id of this program (any instance), parsed; None for anything else (by hand, liquidations...)."""
    m = _CID.match(client_order_id or "")
    if m is None or m.group("action") not in ACTIONS:
        return None
    return ParsedId(int(m.group("pid")), m.group("action"), int(m.group("n")), m.group("tag"))


def action_code(action: Dca | Sell | CloseAll) -> str:
    if isinstance(action, Dca):
        return _BY_STAGE[action.level]
    return _BY_REASON[action.reason]


@dataclass(frozen=True, slots=True)
class ClientIds:
    """Ids of one database (instance)."""

    tag: str

    def make(self, position_id: int, action: str, n: int) -> str:
        return make_id(self.tag, position_id, action, n)

    def ours(self, client_order_id: str) -> ParsedId | None:
        """The parsed id if this instance wrote it (or it predates tags), else None."""
        parsed = parse_id(client_order_id)
        return parsed if parsed is not None and parsed.tag in (None, self.tag) else None

    def foreign(self, client_order_id: str) -> bool:
        """Written by another SurgeDCA installation: never cancel, adopt or apply it."""
        parsed = parse_id(client_order_id)
        return parsed is not None and parsed.tag is not None and parsed.tag != self.tag
