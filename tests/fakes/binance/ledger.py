"""The account's money history: income rows (GET /fapi/v1/income) and funding events (GET /fapi/v1/fundingRate).

Binance writes an income row for every realized PnL, commission, funding fee and transfer; the
fake does the same as it fills orders, charges funding and moves the wallet.
"""

from __future__ import annotations

from decimal import Decimal

from tests.fakes.binance.models import FundingRecord, IncomeRow

INCOME_TYPES = frozenset(
    {
        "TRANSFER", "WELCOME_BONUS", "REALIZED_PNL", "FUNDING_FEE", "COMMISSION", "INSURANCE_CLEAR",
        "REFERRAL_KICKBACK", "COMMISSION_REBATE", "API_REBATE", "CONTEST_REWARD", "CROSS_COLLATERAL_TRANSFER",
        "OPTIONS_PREMIUM_FEE", "OPTIONS_SETTLE_PROFIT", "INTERNAL_TRANSFER", "AUTO_EXCHANGE",
        "DELIVERED_SETTELMENT", "COIN_SWAP_DEPOSIT", "COIN_SWAP_WITHDRAW", "POSITION_LIMIT_INCREASE_FEE",
        "STRATEGY_UMFUTURES_TRANSFER", "FEE_RETURN", "BFUSD_REWARD",
    }
)  # fmt: skip  # the documented list, Binance's spelling (DELIVERED_SETTELMENT included)


class Ledger:
    def __init__(self) -> None:
        self.income: list[IncomeRow] = []
        self.funding: list[FundingRecord] = []
        self._next_tran_id = 9_689_322_000

    def add_income(
        self, symbol: str, income_type: str, amount: Decimal, time: int, *, trade_id: str = "", asset: str = "USDT"
    ) -> IncomeRow:
        self._next_tran_id += 1
        row = IncomeRow(
            symbol=symbol,
            income_type=income_type,
            income=amount,
            asset=asset,
            info=income_type,
            time=time,
            tran_id=self._next_tran_id,
            trade_id=trade_id,
        )
        self.income.append(row)
        return row

    def add_funding(self, symbol: str, rate: Decimal, time: int, mark: Decimal) -> FundingRecord:
        record = FundingRecord(symbol, rate, time, mark)
        self.funding.append(record)
        return record

    def last_funding(self, symbol: str) -> FundingRecord | None:
        for record in reversed(self.funding):
            if record.symbol == symbol:
                return record
        return None
