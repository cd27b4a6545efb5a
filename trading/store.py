"""All repositories of one database, handed to the engine as one object."""

from __future__ import annotations

from dataclasses import dataclass

from storage.audit import AuditLog
from storage.blocks import SymbolBlocks
from storage.config_store import ConfigStore
from storage.db import Database
from storage.fills import FillsRepo
from storage.journal import OrdersJournal
from storage.positions import PositionsRepo
from storage.state import Cooldowns, SystemState
from storage.stats import DailyStats, EquityLog


@dataclass
class Store:
    db: Database
    positions: PositionsRepo
    fills: FillsRepo
    journal: OrdersJournal
    audit: AuditLog
    config: ConfigStore
    cooldowns: Cooldowns
    blocks: SymbolBlocks
    daily: DailyStats
    equity: EquityLog
    state: SystemState

    @classmethod
    def of(cls, db: Database) -> Store:
        return cls(
            db=db,
            positions=PositionsRepo(db),
            fills=FillsRepo(db),
            journal=OrdersJournal(db),
            audit=AuditLog(db),
            config=ConfigStore(db),
            cooldowns=Cooldowns(db),
            blocks=SymbolBlocks(db),
            daily=DailyStats(db),
            equity=EquityLog(db),
            state=SystemState(db),
        )
