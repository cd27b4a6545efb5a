"""Daily trade statistics (``/stats``) and the equity log (``/report`` curves)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from storage._sql import check_ms
from storage.codec import check_day, dec_text
from storage.db import Database
from trading.core.models import ZERO


@dataclass(frozen=True, slots=True)
class DayStats:
    day: str  # YYYY-MM-DD in the report timezone, or "FIRST..LAST" for a summary
    trades: int
    wins: int
    realized_pnl: Decimal  # after fees and funding
    fees: Decimal
    funding: Decimal = ZERO  # the trades' funding (Binance's sign: < 0 paid), part of realized_pnl

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.trades if self.trades else None


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts_ms: int
    balance: Decimal
    equity: Decimal


class DailyStats:
    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def add_trade(self, day: str, pnl: Decimal, fees: Decimal, funding: Decimal = ZERO) -> None:
        """One closed trade: trades + 1, wins + 1 when ``pnl`` > 0, exact sums (one statement). ``pnl`` is the
        trade's whole result, ``funding`` the part of it that was funding."""
        check_day(day)
        pnl_text = dec_text(pnl, "pnl")
        self._conn.execute(
            "INSERT INTO daily_stats (day, trades, wins, realized_pnl, fees, funding) VALUES (?, 1, ?, ?, ?, ?) "
            "ON CONFLICT(day) DO UPDATE SET trades = trades + 1, wins = wins + excluded.wins, "
            "realized_pnl = dec_add(realized_pnl, excluded.realized_pnl), fees = dec_add(fees, excluded.fees), "
            "funding = dec_add(funding, excluded.funding)",
            (day, 1 if Decimal(pnl_text) > 0 else 0, pnl_text, dec_text(fees, "fees"), dec_text(funding, "funding")),
        )

    def add_late_funding(self, day: str, amount: Decimal, wins_change: int) -> None:
        """A funding payment found after its trade closed on ``day``: into that day's result and funding;
        ``wins_change`` (-1, 0, 1) when it turned the trade from a win into a loss or back."""
        check_day(day)
        text = dec_text(amount, "amount")
        self._conn.execute(
            "INSERT INTO daily_stats (day, trades, wins, realized_pnl, fees, funding) "
            "VALUES (?, 0, max(?, 0), ?, '0', ?) "
            "ON CONFLICT(day) DO UPDATE SET wins = max(wins + ?, 0), realized_pnl = dec_add(realized_pnl, ?), "
            "funding = dec_add(funding, ?)",
            (day, wins_change, text, text, wins_change, text, text),
        )

    def get(self, day: str) -> DayStats | None:
        row = self._conn.execute(f"SELECT {_COLUMNS} FROM daily_stats WHERE day = ?", (check_day(day),)).fetchone()
        return _stats(row) if row is not None else None

    def between(self, first_day: str, last_day: str) -> list[DayStats]:
        """Days with trades from ``first_day`` to ``last_day`` inclusive, oldest first."""
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM daily_stats WHERE day >= ? AND day <= ? ORDER BY day",
            (check_day(first_day), check_day(last_day)),
        ).fetchall()
        return [_stats(r) for r in rows]

    def summary(self, first_day: str, last_day: str) -> DayStats:
        """The days from ``first_day`` to ``last_day`` inclusive, summed (zeros when there were no trades)."""
        days = self.between(first_day, last_day)
        return DayStats(
            day=f"{first_day}..{last_day}",
            trades=sum(d.trades for d in days),
            wins=sum(d.wins for d in days),
            realized_pnl=sum((d.realized_pnl for d in days), ZERO),
            fees=sum((d.fees for d in days), ZERO),
            funding=sum((d.funding for d in days), ZERO),
        )


_COLUMNS = "day, trades, wins, realized_pnl, fees, funding"


def _stats(row: tuple[str, int, int, str, str, str]) -> DayStats:
    return DayStats(row[0], int(row[1]), int(row[2]), Decimal(row[3]), Decimal(row[4]), Decimal(row[5]))


class EquityLog:
    """Balance and equity samples; the caller appends at most about once a minute."""

    def __init__(self, db: Database) -> None:
        self._conn = db.conn

    def add(self, ts_ms: int, balance: Decimal, equity: Decimal) -> None:
        """One sample (a second sample at the same ms replaces the first)."""
        self._conn.execute(
            "INSERT INTO equity_log (ts_ms, balance, equity) VALUES (?,?,?) "
            "ON CONFLICT(ts_ms) DO UPDATE SET balance = excluded.balance, equity = excluded.equity",
            (check_ms(ts_ms, "ts_ms"), dec_text(balance, "balance"), dec_text(equity, "equity")),
        )

    def between(self, since_ms: int, until_ms: int) -> list[EquityPoint]:
        """Samples with ``since_ms <= ts_ms < until_ms``, oldest first."""
        rows = self._conn.execute(
            "SELECT ts_ms, balance, equity FROM equity_log WHERE ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
            (since_ms, until_ms),
        ).fetchall()
        return [EquityPoint(int(t), Decimal(b), Decimal(e)) for t, b, e in rows]

    def last(self) -> EquityPoint | None:
        row = self._conn.execute("SELECT ts_ms, balance, equity FROM equity_log ORDER BY ts_ms DESC LIMIT 1").fetchone()
        return EquityPoint(int(row[0]), Decimal(row[1]), Decimal(row[2])) if row is not None else None
