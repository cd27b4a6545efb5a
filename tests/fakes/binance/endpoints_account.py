"""Account endpoints: account/balance/positionRisk (v2, v3), income, leverage, margin, position and asset
modes, listen keys. In hedge mode every symbol has a LONG and a SHORT row where one-way mode has BOTH."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fakes.binance import errors, payloads
from tests.fakes.binance.endpoints_base import API_KEY, DAY_MS, SIGNED, WEEK_MS, Endpoints, Route
from tests.fakes.binance.ledger import INCOME_TYPES
from tests.fakes.binance.models import ZERO, Position, SymbolSpec, fixed, plain
from tests.fakes.binance.params import Params

MONEY = payloads.MONEY
INCOME_RETENTION_MS = 90 * DAY_MS  # "Income history only contains data for the last three months"


class AccountEndpoints(Endpoints):
    def routes(self) -> dict[tuple[str, str], Route]:
        return {
            ("GET", "/fapi/v2/account"): Route(self.account_v2, SIGNED),
            ("GET", "/fapi/v3/account"): Route(self.account_v3, SIGNED),
            ("GET", "/fapi/v2/balance"): Route(self.balance, SIGNED),
            ("GET", "/fapi/v3/balance"): Route(self.balance, SIGNED),
            ("GET", "/fapi/v2/positionRisk"): Route(self.position_risk_v2, SIGNED),
            ("GET", "/fapi/v3/positionRisk"): Route(self.position_risk_v3, SIGNED),
            ("POST", "/fapi/v1/leverage"): Route(self.set_leverage, SIGNED),
            ("POST", "/fapi/v1/marginType"): Route(self.set_margin_type, SIGNED),
            ("GET", "/fapi/v1/leverageBracket"): Route(self.leverage_bracket, SIGNED),
            ("GET", "/fapi/v1/symbolConfig"): Route(self.symbol_config, SIGNED),
            ("GET", "/fapi/v1/commissionRate"): Route(self.commission_rate, SIGNED),
            ("GET", "/fapi/v1/positionSide/dual"): Route(self.position_side_dual, SIGNED),
            ("POST", "/fapi/v1/positionSide/dual"): Route(self.change_position_side_dual, SIGNED),
            ("GET", "/fapi/v1/multiAssetsMargin"): Route(self.multi_assets_margin, SIGNED),
            ("POST", "/fapi/v1/multiAssetsMargin"): Route(self.change_multi_assets_margin, SIGNED),
            ("GET", "/fapi/v1/accountConfig"): Route(self.account_config, SIGNED),
            ("GET", "/fapi/v1/income"): Route(self.income, SIGNED),
            ("POST", "/fapi/v1/listenKey"): Route(self.listen_key_new, API_KEY),
            ("PUT", "/fapi/v1/listenKey"): Route(self.listen_key_keepalive, API_KEY),
            ("DELETE", "/fapi/v1/listenKey"): Route(self.listen_key_close, API_KEY),
        }

    def _totals(self) -> dict[str, str]:
        ex = self.ex
        upnl = ex.total_unrealized()
        initial = ex.total_initial_margin()
        legs = [leg for leg in ex.all_legs() if leg.qty]
        position_initial = sum((ex.position_initial_margin(leg) for leg in legs), ZERO)
        maint = sum((ex.maint_margin(leg) for leg in legs), ZERO)
        available = ex.available_balance()
        cross_wallet = ex.wallet - ex.isolated_total()
        return {
            "totalInitialMargin": fixed(initial, MONEY),
            "totalMaintMargin": fixed(maint, MONEY),
            "totalWalletBalance": fixed(ex.wallet, MONEY),
            "totalUnrealizedProfit": fixed(upnl, MONEY),
            "totalMarginBalance": fixed(ex.wallet + upnl, MONEY),
            "totalPositionInitialMargin": fixed(position_initial, MONEY),
            "totalOpenOrderInitialMargin": fixed(initial - position_initial, MONEY),
            "totalCrossWalletBalance": fixed(cross_wallet, MONEY),
            "totalCrossUnPnl": fixed(upnl, MONEY),
            "availableBalance": fixed(available, MONEY),
            "maxWithdrawAmount": fixed(min(available, ex.wallet), MONEY),
        }

    def _usdt_asset(self, totals: dict[str, str], *, v2: bool) -> dict[str, Any]:
        asset: dict[str, Any] = {
            "asset": "USDT",
            "walletBalance": totals["totalWalletBalance"],
            "unrealizedProfit": totals["totalUnrealizedProfit"],
            "marginBalance": totals["totalMarginBalance"],
            "maintMargin": totals["totalMaintMargin"],
            "initialMargin": totals["totalInitialMargin"],
            "positionInitialMargin": totals["totalPositionInitialMargin"],
            "openOrderInitialMargin": totals["totalOpenOrderInitialMargin"],
            "crossWalletBalance": totals["totalCrossWalletBalance"],
            "crossUnPnl": totals["totalCrossUnPnl"],
            "availableBalance": totals["availableBalance"],
            "maxWithdrawAmount": totals["maxWithdrawAmount"],
        }
        if v2:
            asset["marginAvailable"] = True
        asset["updateTime"] = self.ex.wallet_update_time
        return asset

    async def account_v2(self, p: Params) -> Any:
        totals = self._totals()
        positions = []
        for symbol, spec in self.ex.specs.items():
            settings = self.ex.settings[symbol]
            for pos in self.ex.legs(symbol):
                positions.append(
                    {
                        "symbol": symbol,
                        "initialMargin": fixed(self.ex.position_initial_margin(pos), MONEY),
                        "maintMargin": fixed(self.ex.maint_margin(pos), MONEY),
                        "unrealizedProfit": fixed(self.ex.unrealized(pos), MONEY),
                        "positionInitialMargin": fixed(self.ex.position_initial_margin(pos), MONEY),
                        "openOrderInitialMargin": fixed(self._order_margin(pos), MONEY),
                        "leverage": str(settings.leverage),
                        "isolated": settings.margin_type == "ISOLATED",
                        "entryPrice": plain(pos.entry_price),
                        "breakEvenPrice": plain(payloads.break_even(pos, self.ex.taker_fee)),
                        "maxNotional": plain(self.fake.max_notional(symbol, settings.leverage)),
                        "bidNotional": "0",
                        "askNotional": "0",
                        "positionSide": pos.side,
                        "positionAmt": spec.qty_str(pos.qty) if pos.qty else "0",
                        "notional": fixed(self._position_notional(pos), MONEY),
                        "isolatedWallet": fixed(payloads.isolated_wallet(pos, settings), MONEY),
                        "updateTime": pos.update_time,
                    }
                )
        return {
            "feeTier": 0,
            "feeBurn": True,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "updateTime": 0,
            "multiAssetsMargin": self.ex.multi_assets,
            "tradeGroupId": -1,
            **totals,
            "assets": [self._usdt_asset(totals, v2=True)],
            "positions": positions,
        }

    def _order_margin(self, pos: Position) -> Decimal:
        return self.ex.open_order_margin(pos.symbol, pos.side)

    async def account_v3(self, p: Params) -> Any:
        totals = self._totals()
        positions = []
        for pos in self.ex.all_legs():
            if not pos.qty:
                continue
            spec, settings = self.ex.specs[pos.symbol], self.ex.settings[pos.symbol]
            positions.append(
                {
                    "symbol": pos.symbol,
                    "positionSide": pos.side,
                    "positionAmt": spec.qty_str(pos.qty),
                    "unrealizedProfit": fixed(self.ex.unrealized(pos), MONEY),
                    "isolatedMargin": fixed(payloads.isolated_wallet(pos, settings) + self._iso_upnl(pos), MONEY),
                    "notional": fixed(self._position_notional(pos), MONEY),
                    "isolatedWallet": fixed(payloads.isolated_wallet(pos, settings), MONEY),
                    "initialMargin": fixed(self.ex.position_initial_margin(pos), MONEY),
                    "maintMargin": fixed(self.ex.maint_margin(pos), MONEY),
                    "updateTime": pos.update_time,
                }
            )
        return {**totals, "assets": [self._usdt_asset(totals, v2=False)], "positions": positions}

    def _iso_upnl(self, pos: Position) -> Decimal:
        return self.ex.unrealized(pos) if self.ex.settings[pos.symbol].margin_type == "ISOLATED" else ZERO

    async def balance(self, p: Params) -> Any:
        totals = self._totals()
        return [
            {
                "accountAlias": "SgsRmYFzAuTiFzTi",
                "asset": "USDT",
                "balance": totals["totalWalletBalance"],
                "crossWalletBalance": totals["totalCrossWalletBalance"],
                "crossUnPnl": totals["totalCrossUnPnl"],
                "availableBalance": totals["availableBalance"],
                "maxWithdrawAmount": totals["maxWithdrawAmount"],
                "marginAvailable": True,
                "updateTime": self.ex.wallet_update_time,
            }
        ]

    def _risk_common(self, pos: Position, spec: SymbolSpec) -> dict[str, Any]:
        settings = self.ex.settings[pos.symbol]
        return {
            "symbol": pos.symbol,
            "positionSide": pos.side,
            "positionAmt": spec.qty_str(pos.qty) if pos.qty else "0",
            "entryPrice": plain(pos.entry_price),
            "breakEvenPrice": plain(payloads.break_even(pos, self.ex.taker_fee)),
            "markPrice": fixed(self.ex.markets[pos.symbol].mark, MONEY),
            "unRealizedProfit": fixed(self.ex.unrealized(pos), MONEY),
            "liquidationPrice": fixed(self.ex.liquidation_price(pos), MONEY) if pos.qty else "0",
            "isolatedMargin": fixed(payloads.isolated_wallet(pos, settings) + self._iso_upnl(pos), MONEY),
            "notional": fixed(self._position_notional(pos), MONEY),
            "isolatedWallet": fixed(payloads.isolated_wallet(pos, settings), MONEY),
        }

    async def position_risk_v2(self, p: Params) -> Any:
        """Every symbol (or the one asked): a BOTH row, or LONG and SHORT rows in hedge mode, open or not."""
        only = self._symbol(p, required=False)
        rows = []
        for symbol, spec in self.ex.specs.items():
            if only is not None and symbol != only.symbol:
                continue
            settings = self.ex.settings[symbol]
            for pos in self.ex.legs(symbol):
                row = self._risk_common(pos, spec)
                row.update(
                    marginType="isolated" if settings.margin_type == "ISOLATED" else "cross",
                    isAutoAddMargin="false",
                    leverage=str(settings.leverage),
                    maxNotionalValue=plain(self.fake.max_notional(symbol, settings.leverage)),
                    updateTime=pos.update_time,
                )
                rows.append(row)
        return rows

    async def position_risk_v3(self, p: Params) -> Any:
        """Open positions only, one row per open leg (positionSide BOTH, or LONG / SHORT in hedge mode)."""
        only = self._symbol(p, required=False)
        rows = []
        for pos in self.ex.all_legs():
            if (only is not None and pos.symbol != only.symbol) or not pos.qty:
                continue
            row = self._risk_common(pos, self.ex.specs[pos.symbol])
            row.update(
                marginAsset="USDT",
                initialMargin=fixed(self.ex.position_initial_margin(pos), MONEY),
                maintMargin=fixed(self.ex.maint_margin(pos), MONEY),
                positionInitialMargin=fixed(self.ex.position_initial_margin(pos), MONEY),
                openOrderInitialMargin=fixed(self._order_margin(pos), MONEY),
                adl=0,
                bidNotional="0",
                askNotional="0",
                updateTime=pos.update_time,
            )
            rows.append(row)
        return rows

    async def set_leverage(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        leverage = p.int("leverage", required=True)
        assert leverage is not None
        self.ex.set_leverage(spec.symbol, leverage)
        return {
            "leverage": leverage,
            "maxNotionalValue": plain(self.fake.max_notional(spec.symbol, leverage)),
            "symbol": spec.symbol,
        }

    async def set_margin_type(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        margin_type = p.enum("marginType", ("ISOLATED", "CROSSED"), errors.invalid_value("marginType"))
        self.ex.set_margin_type(spec.symbol, margin_type)
        return {"code": 200, "msg": "success"}

    async def leverage_bracket(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        if spec is not None:
            return self.fake.brackets_json(spec.symbol)
        return [self.fake.brackets_json(s) for s in self.ex.specs]

    async def symbol_config(self, p: Params) -> Any:
        spec = self._symbol(p, required=False)
        symbols = [spec.symbol] if spec is not None else list(self.ex.specs)
        return [
            {
                "symbol": s,
                "marginType": self.ex.settings[s].margin_type,
                "isAutoAddMargin": False,
                "leverage": self.ex.settings[s].leverage,
                "maxNotionalValue": plain(self.fake.max_notional(s, self.ex.settings[s].leverage)),
            }
            for s in symbols
        ]

    async def commission_rate(self, p: Params) -> Any:
        spec = self._symbol(p)
        assert spec is not None
        return {
            "symbol": spec.symbol,
            "makerCommissionRate": plain(self.ex.maker_fee),
            "takerCommissionRate": plain(self.ex.taker_fee),
            "rpiCommissionRate": "0",
        }

    async def position_side_dual(self, p: Params) -> Any:
        return {"dualSidePosition": self.ex.dual_side}

    async def change_position_side_dual(self, p: Params) -> Any:
        wanted = p.bool("dualSidePosition")
        if wanted is None:
            raise errors.missing_param("dualSidePosition")
        self.ex.set_position_mode(wanted)
        return {"code": 200, "msg": "success"}

    async def multi_assets_margin(self, p: Params) -> Any:
        return {"multiAssetsMargin": self.ex.multi_assets}

    async def change_multi_assets_margin(self, p: Params) -> Any:
        wanted = p.bool("multiAssetsMargin")
        if wanted is None:
            raise errors.missing_param("multiAssetsMargin")
        self.ex.set_multi_assets(wanted)
        return {"code": 200, "msg": "success"}

    async def account_config(self, p: Params) -> Any:
        return {
            "feeTier": 0,
            "canTrade": True,
            "canDeposit": True,
            "canWithdraw": True,
            "dualSidePosition": self.ex.dual_side,
            "updateTime": 0,
            "multiAssetsMargin": self.ex.multi_assets,
            "tradeGroupId": -1,
        }

    async def income(self, p: Params) -> Any:
        """GET /fapi/v1/income. Neither time sent: the last 7 days; otherwise from ``startTime`` (default:
        the 3 months kept) to ``endTime`` (default now), both inclusive; oldest first, ``limit`` rows
        (default 100, max 1000) per ``page``. Where more rows than ``limit`` match, the oldest come first
        (the docs do not say; this is how Binance's time-window endpoints page)."""
        spec = self._symbol(p, required=False)
        income_type = p.raw("incomeType")
        if income_type is not None and income_type not in INCOME_TYPES:
            raise errors.invalid_value("incomeType")
        limit = self._limit(p, 100, 1000)
        page = p.int("page") or 1
        now = self.fake.now_ms()
        start, end = p.int("startTime"), p.int("endTime")
        if start is None and end is None:
            start, end = now - WEEK_MS, now
        first = max(start if start is not None else 0, now - INCOME_RETENTION_MS)
        last = now if end is None else end
        if start is not None and end is not None and start > end:
            raise errors.start_after_end()
        rows = [
            r
            for r in self.ex.ledger.income
            if first <= r.time <= last
            and (spec is None or r.symbol == spec.symbol)
            and (income_type is None or r.income_type == income_type)
        ]
        offset = (page - 1) * limit
        return [payloads.income_json(r) for r in rows[offset : offset + limit]]

    # ------------------------------------------------------------------ user-data stream keys
    async def listen_key_new(self, p: Params) -> Any:
        return {"listenKey": self.fake.open_listen_key()}

    async def listen_key_keepalive(self, p: Params) -> Any:
        return {"listenKey": self.fake.keepalive_listen_key(p.str("listenKey"))}

    async def listen_key_close(self, p: Params) -> Any:
        await self.fake.close_listen_key(p.str("listenKey"))
        return {}
