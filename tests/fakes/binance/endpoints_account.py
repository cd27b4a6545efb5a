"""Account endpoints: account/balance/positionRisk (v2, v3), leverage and margin settings, listen keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.fakes.binance import errors, payloads
from tests.fakes.binance.endpoints_base import API_KEY, SIGNED, Endpoints, Route
from tests.fakes.binance.models import ZERO, SymbolSpec, fixed, plain
from tests.fakes.binance.params import Params

MONEY = payloads.MONEY


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
            ("GET", "/fapi/v1/multiAssetsMargin"): Route(self.multi_assets_margin, SIGNED),
            ("POST", "/fapi/v1/listenKey"): Route(self.listen_key_new, API_KEY),
            ("PUT", "/fapi/v1/listenKey"): Route(self.listen_key_keepalive, API_KEY),
            ("DELETE", "/fapi/v1/listenKey"): Route(self.listen_key_close, API_KEY),
        }

    def _totals(self) -> dict[str, str]:
        ex = self.ex
        upnl = ex.total_unrealized()
        initial = ex.total_initial_margin()
        position_initial = sum((ex.position_initial_margin(s) for s in ex.specs), ZERO)
        maint = sum((ex.maint_margin(s) for s in ex.specs), ZERO)
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
            pos, settings = self.ex.positions[symbol], self.ex.settings[symbol]
            notional = self._position_notional(symbol)
            positions.append(
                {
                    "symbol": symbol,
                    "initialMargin": fixed(self.ex.position_initial_margin(symbol), MONEY),
                    "maintMargin": fixed(self.ex.maint_margin(symbol), MONEY),
                    "unrealizedProfit": fixed(self.ex.unrealized(symbol), MONEY),
                    "positionInitialMargin": fixed(self.ex.position_initial_margin(symbol), MONEY),
                    "openOrderInitialMargin": fixed(self.ex.open_order_margin(symbol), MONEY),
                    "leverage": str(settings.leverage),
                    "isolated": settings.margin_type == "ISOLATED",
                    "entryPrice": plain(pos.entry_price),
                    "breakEvenPrice": plain(payloads.break_even(pos, self.ex.taker_fee)),
                    "maxNotional": plain(self.fake.max_notional(symbol, settings.leverage)),
                    "bidNotional": "0",
                    "askNotional": "0",
                    "positionSide": "BOTH",
                    "positionAmt": spec.qty_str(pos.qty) if pos.qty else "0",
                    "notional": fixed(notional, MONEY),
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
            "multiAssetsMargin": False,
            "tradeGroupId": -1,
            **totals,
            "assets": [self._usdt_asset(totals, v2=True)],
            "positions": positions,
        }

    async def account_v3(self, p: Params) -> Any:
        totals = self._totals()
        positions = []
        for symbol, spec in self.ex.specs.items():
            pos, settings = self.ex.positions[symbol], self.ex.settings[symbol]
            if not pos.qty:
                continue
            positions.append(
                {
                    "symbol": symbol,
                    "positionSide": "BOTH",
                    "positionAmt": spec.qty_str(pos.qty),
                    "unrealizedProfit": fixed(self.ex.unrealized(symbol), MONEY),
                    "isolatedMargin": fixed(payloads.isolated_wallet(pos, settings) + self._iso_upnl(symbol), MONEY),
                    "notional": fixed(self._position_notional(symbol), MONEY),
                    "isolatedWallet": fixed(payloads.isolated_wallet(pos, settings), MONEY),
                    "initialMargin": fixed(self.ex.position_initial_margin(symbol), MONEY),
                    "maintMargin": fixed(self.ex.maint_margin(symbol), MONEY),
                    "updateTime": pos.update_time,
                }
            )
        return {**totals, "assets": [self._usdt_asset(totals, v2=False)], "positions": positions}

    def _iso_upnl(self, symbol: str) -> Decimal:
        return self.ex.unrealized(symbol) if self.ex.settings[symbol].margin_type == "ISOLATED" else ZERO

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

    def _risk_common(self, symbol: str, spec: SymbolSpec) -> dict[str, Any]:
        pos, settings = self.ex.positions[symbol], self.ex.settings[symbol]
        return {
            "symbol": symbol,
            "positionSide": "BOTH",
            "positionAmt": spec.qty_str(pos.qty) if pos.qty else "0",
            "entryPrice": plain(pos.entry_price),
            "breakEvenPrice": plain(payloads.break_even(pos, self.ex.taker_fee)),
            "markPrice": fixed(self.ex.markets[symbol].mark, MONEY),
            "unRealizedProfit": fixed(self.ex.unrealized(symbol), MONEY),
            "liquidationPrice": fixed(self.ex.liquidation_price(symbol), MONEY) if pos.qty else "0",
            "isolatedMargin": fixed(payloads.isolated_wallet(pos, settings) + self._iso_upnl(symbol), MONEY),
            "notional": fixed(self._position_notional(symbol), MONEY),
            "isolatedWallet": fixed(payloads.isolated_wallet(pos, settings), MONEY),
        }

    async def position_risk_v2(self, p: Params) -> Any:
        only = self._symbol(p, required=False)
        rows = []
        for symbol, spec in self.ex.specs.items():
            if only is not None and symbol != only.symbol:
                continue
            settings = self.ex.settings[symbol]
            row = self._risk_common(symbol, spec)
            row.update(
                marginType="isolated" if settings.margin_type == "ISOLATED" else "cross",
                isAutoAddMargin="false",
                leverage=str(settings.leverage),
                maxNotionalValue=plain(self.fake.max_notional(symbol, settings.leverage)),
                updateTime=self.ex.positions[symbol].update_time,
            )
            rows.append(row)
        return rows

    async def position_risk_v3(self, p: Params) -> Any:
        only = self._symbol(p, required=False)
        rows = []
        for symbol, spec in self.ex.specs.items():
            if (only is not None and symbol != only.symbol) or not self.ex.positions[symbol].qty:
                continue
            row = self._risk_common(symbol, spec)
            row.update(
                marginAsset="USDT",
                initialMargin=fixed(self.ex.position_initial_margin(symbol), MONEY),
                maintMargin=fixed(self.ex.maint_margin(symbol), MONEY),
                positionInitialMargin=fixed(self.ex.position_initial_margin(symbol), MONEY),
                openOrderInitialMargin=fixed(self.ex.open_order_margin(symbol), MONEY),
                adl=0,
                bidNotional="0",
                askNotional="0",
                updateTime=self.ex.positions[symbol].update_time,
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
        return {"dualSidePosition": False}

    async def multi_assets_margin(self, p: Params) -> Any:
        return {"multiAssetsMargin": False}

    # ------------------------------------------------------------------ user-data stream keys
    async def listen_key_new(self, p: Params) -> Any:
        return {"listenKey": self.fake.open_listen_key()}

    async def listen_key_keepalive(self, p: Params) -> Any:
        return {"listenKey": self.fake.keepalive_listen_key(p.str("listenKey"))}

    async def listen_key_close(self, p: Params) -> Any:
        await self.fake.close_listen_key(p.str("listenKey"))
        return {}
