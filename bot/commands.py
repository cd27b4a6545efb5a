"""The bot's command list: one table for /help and for setMyCommands."""

from __future__ import annotations

from dataclasses import dataclass

from bot.i18n import N_


@dataclass(frozen=True, slots=True)
class CommandInfo:
    name: str
    usage: str  # arguments as shown in /help, e.g. "SYMBOL"
    description: str  # English msgid, translated where shown


COMMANDS: tuple[CommandInfo, ...] = (
    CommandInfo("positions", "", N_("open positions, with exit and details buttons")),
    CommandInfo("health", "", N_("service health: streams, scan, reconcile, balance")),
    CommandInfo("sync", "", N_("reconcile with the exchange now")),
    CommandInfo("exit", "SYMBOL", N_("close a position at market (asks to confirm)")),
    CommandInfo("config", "[set KEY VALUE | history]", N_("show or change the strategy config")),
    CommandInfo("pause", "", N_("stop opening new positions (exits and DCA continue)")),
    CommandInfo("resume", "", N_("allow new positions again")),
    CommandInfo("stats", "", N_("trades, win rate and PnL: today and last 7 days")),
    CommandInfo("why", "SYMBOL", N_("each entry condition of a symbol, true or false")),
    CommandInfo("chart", "SYMBOL [1m|3m|15m|1h]", N_("candles with the position's lines, as a picture")),
    CommandInfo("block", "SYMBOL [HOURS]", N_("no new entries on a symbol, for hours or for good")),
    CommandInfo("unblock", "SYMBOL", N_("allow entries on a blocked symbol again")),
    CommandInfo("blocked", "", N_("blocked symbols and cooldowns, with their end")),
    CommandInfo("risk", "", N_("what the config can lose, stage by stage")),
    CommandInfo("report", "[DAYS]", N_("equity curve and figures of the last days")),
    CommandInfo("lang", "ko|en", N_("choose the language of this chat")),
    CommandInfo("help", "", N_("this list")),
)
