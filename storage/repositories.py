"""All repositories in one import (each lives in its own module)."""

from __future__ import annotations

from storage.audit import AuditLog, AuditRow
from storage.config_store import ConfigHistoryRow, ConfigStore
from storage.fills import FillRecord, FillsRepo, FillTotals
from storage.funding import FundingRecord, FundingRepo
from storage.journal import JournalRow, OrdersJournal
from storage.positions import PositionRecord, PositionsRepo
from storage.state import Cooldown, Cooldowns, SystemState
from storage.stats import DailyStats, DayStats, EquityLog, EquityPoint

__all__ = [
    "AuditLog",
    "AuditRow",
    "ConfigHistoryRow",
    "ConfigStore",
    "Cooldown",
    "Cooldowns",
    "DailyStats",
    "DayStats",
    "EquityLog",
    "EquityPoint",
    "FillRecord",
    "FillTotals",
    "FillsRepo",
    "FundingRecord",
    "FundingRepo",
    "JournalRow",
    "OrdersJournal",
    "PositionRecord",
    "PositionsRepo",
    "SystemState",
]
