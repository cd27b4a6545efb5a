"""Client order ids and the mapping between ladder actions and journal actions.

``sdca-<position>-<action>-<n>`` (ARCHITECTURE, order-safety rule 1). The
action code alone tells what a fill means (side, ladder stage, exit reason),
so a fill seen only on the user-data stream, or found after a crash, is
applied exactly as if its REST reply had arrived.
"""

from __future__ import annotations

import re
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
    "bs": ("SELL", None, ExitReason.BACKSTOP),  # the exchange-side STOP_MARKET (algo order)
}
_BY_REASON = {reason: code for code, (_, _, reason) in ACTIONS.items() if reason is not None}
_BY_STAGE = {stage: code for code, (side, stage, _) in ACTIONS.items() if side == "BUY" and stage is not None}
_CID = re.compile(rf"^{re.escape(CLIENT_ID_PREFIX)}(?P<pid>\d+)-(?P<action>[a-z0-9_]+)-(?P<n>\d+)$")


@dataclass(frozen=True, slots=True)
class ParsedId:
    position_id: int
    action: str
    n: int

    @property
    def side(self) -> str:
        return ACTIONS[self.action][0]

    @property
    def stage(self) -> Stage | None:
        return ACTIONS[self.action][1]

    @property
    def reason(self) -> ExitReason | None:
        return ACTIONS[self.action][2]


def make_id(position_id: int, action: str, n: int) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown order action {action!r}")
    return f"{CLIENT_ID_PREFIX}{position_id}-{action}-{n}"


def parse_id(client_order_id: str) -> ParsedId | None:
    """Our id, parsed; None for anything else (orders placed by hand, liquidations...)."""
    m = _CID.match(client_order_id or "")
    if m is None or m.group("action") not in ACTIONS:
        return None
    return ParsedId(int(m.group("pid")), m.group("action"), int(m.group("n")))


def action_code(action: Dca | Sell | CloseAll) -> str:
    if isinstance(action, Dca):
        return _BY_STAGE[action.level]
    return _BY_REASON[action.reason]
