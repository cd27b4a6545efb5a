"""All repositories of one database, handed to the engine as one object."""

from __future__ import annotations

from dataclasses import dataclass

from storage.adoptions import AdoptionRequests
from storage.audit import AuditLog
from storage.blocks import SymbolBlocks
from storage.config_store import ConfigStore
from storage.db import Database
from storage.fills import FillsRepo
from storage.funding import FundingRepo
from storage.journal import OrdersJournal
from storage.positions import PositionsRepo
from storage.state import INSTANCE_TAG_KEY, Cooldowns, SystemState
from storage.stats import DailyStats, EquityLog
from trading.orders import ClientIds, new_instance_tag


@dataclass
class Store:
    db: Database
    positions: PositionsRepo
    fills: FillsRepo
    funding: FundingRepo
    journal: OrdersJournal
    audit: AuditLog
    config: ConfigStore
    cooldowns: Cooldowns
    blocks: SymbolBlocks
    daily: DailyStats
    equity: EquityLog
    state: SystemState
    adoptions: AdoptionRequests

    @classmethod
    def of(cls, db: Database) -> Store:
        return cls(
            db=db,
            positions=PositionsRepo(db),
            fills=FillsRepo(db),
            funding=FundingRepo(db),
            journal=OrdersJournal(db),
            audit=AuditLog(db),
            config=ConfigStore(db),
            cooldowns=Cooldowns(db),
            blocks=SymbolBlocks(db),
            daily=DailyStats(db),
            equity=EquityLog(db),
            state=SystemState(db),
            adoptions=AdoptionRequests(db),
        )

    def client_ids(self) -> ClientIds:
        """This database's client-order-id maker: its instance tag is drawn once, when first asked, and kept
        for the database's life (``surgedca reset`` keeps it), so its orders are told apart from any other
        installation's on the same account."""
        tag = self.state.get(INSTANCE_TAG_KEY)
        if not tag:
            tag = new_instance_tag()
            self.state.set(INSTANCE_TAG_KEY, tag)
        return ClientIds(str(tag))
