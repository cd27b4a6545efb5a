"""Text of every bot message and alert: views and events in, Telegram HTML out.

Pure: no aiogram calls, no I/O, no clock (``now_ms`` is a parameter).
Strings go through gettext (English source as msgid); every dynamic value
is escaped with :func:`esc` or produced by a number formatter. Each tag is
opened and closed on one line, so ``bot.formatting.split_message`` can cut between
lines safely.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from bot.commands import COMMANDS
from bot.formatting import (
    esc,
    fmt_bytes,
    fmt_clock,
    fmt_duration,
    fmt_num,
    fmt_pct,
    fmt_price,
    fmt_qty,
    fmt_time,
    fmt_usdt,
    truncate,
)
from bot.i18n import N_, _, ngettext
from trading.core.chart import ChartLabels
from trading.core.config import StrategyConfig
from trading.core.reports import Condition, RiskTable, SignalReport
from trading.events import (
    AccountModeSwitched,
    AdoptionAsked,
    BackstopLost,
    BotPollingStopped,
    ChatMigrated,
    DcaFilled,
    DelistingAhead,
    EngineEvent,
    EntriesRefused,
    EntryFilled,
    ErrorEvent,
    OrderRefused,
    OrderSkipped,
    PartialExit,
    PositionAdopted,
    PositionClosed,
    PositionVanished,
    QuantityDrift,
    ServiceStarted,
    ServiceStopping,
    StreamDown,
    StreamUp,
    TradingHalted,
)
from trading.views import (
    AccountHealth,
    AdoptionOutcome,
    AdoptionResult,
    BlockList,
    BlockResult,
    ChartProblem,
    ChartView,
    ConfigChange,
    ConfigPreview,
    ExitPreview,
    ExitResult,
    HealthView,
    LinkHealth,
    NotManagedView,
    PeriodStats,
    PositionView,
    Report,
    ServiceError,
    StatsView,
    SyncReport,
    UnblockResult,
)

POSITIONS_PER_PAGE = 5
MAX_FREE_TEXT = 500  # error messages and details from the engine are cut to this before escaping

_STAGES = {
    "initial": N_("initial entry"),
    "first_dca": N_("first DCA"),
    "second_dca": N_("second DCA"),
}

_REASONS = {
    "stop_loss": N_("stop loss"),
    "recovery_second_dca": N_("second DCA lot sold on recovery"),
    "recovery_first_dca": N_("first DCA lot sold on recovery"),
    "take_half": N_("take half"),
    "trailing_stop": N_("trailing stop"),
    "dead_cross": N_("MA5/MA20 dead cross (3m)"),
    "manual": N_("manual exit"),
    "backstop": N_("exchange backstop"),
    "external": N_("closed outside the service"),
    "liquidation": N_("liquidated by the exchange"),
    "delisting": N_("closed ahead of the delisting"),
}

_REFUSALS = {
    "rate_limit": N_("the exchange's rate limit"),
    "margin": N_("insufficient margin"),
    "notional": N_("the order size limits"),
    "precision": N_("the symbol's quantity or price filters"),
    "reduce_only": N_("reduce-only (the exchange holds less than expected)"),
    "would_trigger": N_("the stop would trigger at once"),
    "stop_exists": N_("another closePosition stop already rests"),
    "position_mode": N_("the account's position mode"),
    "market_closed": N_("the market is not trading"),
    "auth": N_("the API key, its permissions or the clock"),
    "other": N_("an exchange rule"),
}

_HALT_CAUSES = {
    "foreign_instance": N_(
        "another SurgeDCA installation trades this account: this one places and cancels nothing until you stop "
        "one of them and restart this one"
    ),
    "account_mode": N_("the account is in a mode this service cannot trade in"),
}

_SYNC_KINDS = {
    "pending_resolved": N_("pending order resolved"),
    "adopted": N_("position adopted"),
    "vanished": N_("position vanished"),
    "qty_drift": N_("quantity drift"),
    "stray_cancelled": N_("stray order cancelled"),
    "backstop_recreated": N_("backstop re-created"),
    "funding_recorded": N_("funding payment recorded"),
    "liquidated": N_("position liquidated"),
    "adoption_asked": N_("position not opened by SurgeDCA (asked)"),
    "not_managed": N_("position not opened by SurgeDCA (left alone)"),
    "not_managed_gone": N_("position not managed: gone"),
    "delisting": N_("delisting of a held symbol"),
    "delisting_close": N_("closed ahead of the delisting"),
    "account_switched": N_("account switched to one-way mode"),
    "account_refused": N_("trading refused for the account's settings"),
    "account_ok": N_("the account's settings allow trading again"),
}

_NOT_MANAGED = {
    "asked": N_("waiting for an answer to the question sent"),
    "ignored": N_("ignored"),
    "left": N_("left alone (adopt_positions)"),
}


def stage_name(stage: str | None) -> str:
    if stage is None:
        return "—"
    return _(_STAGES[stage]) if stage in _STAGES else esc(stage)


def reason_name(reason: str) -> str:
    return _(_REASONS[reason]) if reason in _REASONS else esc(reason)


def rule_name(what: str) -> str:
    """A ladder rule or order purpose in words ("first DCA", "stop loss", "entry"...)."""
    if what in _STAGES:
        return stage_name(what)
    if what in _REASONS:
        return reason_name(what)
    return {"entry": _("entry"), "setup": _("leverage and margin mode setup")}.get(what, esc(what))


def _sym(symbol: str | None) -> str:
    return f"<b>{esc(symbol)}</b>" if symbol else "—"


def _free(text: str) -> str:
    """Engine-provided prose (error messages, details): cut, escaped."""
    return esc(truncate(str(text), MAX_FREE_TEXT))


def _ok(flag: bool | None) -> str:
    return "✅" if flag else "❌"


def _pnl_icon(value: Decimal | None) -> str:
    if value is None:
        return "•"
    return "🟢" if value > 0 else ("🔴" if value < 0 else "⚪")


# ------------------------------------------------------------------ help
def help_text() -> str:
    lines = [_("<b>SurgeDCA</b>: surge scanner with a 2-level DCA ladder on Binance USD-M futures."), ""]
    for cmd in COMMANDS:
        usage = f" {esc(cmd.usage)}" if cmd.usage else ""
        lines.append(f"/{cmd.name}{usage} — {_(cmd.description)}")
    lines += [
        "",
        _("Symbols can be written as btc, BTC or BTCUSDT."),
        _(
            "Actions that change something ask to confirm with buttons; a confirmation works once, "
            "for the person who asked, within 60 seconds."
        ),
    ]
    return "\n".join(lines)


def start_text(mode: str, paused: bool) -> str:
    state = _("paused (no new entries)") if paused else _("running")
    head = _("Hello! SurgeDCA is {state} in <b>{mode}</b> mode.").format(state=state, mode=esc(mode))
    return head + "\n\n" + help_text()


# ------------------------------------------------------------------ positions
def positions_pages(count: int) -> int:
    return max(1, -(-count // POSITIONS_PER_PAGE))


def page_slice(positions: Sequence[PositionView], page: int) -> tuple[list[PositionView], int]:
    """The positions of one page (clamped to the existing pages) and the page number used."""
    pages = positions_pages(len(positions))
    page = min(max(0, page), pages - 1)
    start = page * POSITIONS_PER_PAGE
    return list(positions[start : start + POSITIONS_PER_PAGE]), page


def position_block(p: PositionView) -> str:
    lines = [
        f"{_pnl_icon(p.unrealized_pnl)} {_sym(p.symbol)} · {stage_name(p.stage)}"
        + (" · " + _("adopted") if p.origin == "adopted" else ""),
        _("Qty {qty} · avg {avg} · last {last}").format(
            qty=fmt_qty(p.qty), avg=fmt_price(p.avg_price), last=fmt_price(p.last_price)
        ),
        _("Unrealised: {pnl} USDT ({pct})").format(
            pnl=fmt_usdt(p.unrealized_pnl, signed=True), pct=fmt_pct(p.unrealized_pct, signed=True)
        ),
    ]
    if p.next_dca_stage and p.next_dca_price is not None:
        lines.append(
            _("Next DCA: {stage} at {price}").format(
                stage=stage_name(p.next_dca_stage), price=fmt_price(p.next_dca_price)
            )
        )
    else:
        lines.append(_("Next DCA: none left"))
    lines.append(
        _("Stop: {stop} · backstop: {backstop}").format(
            stop=fmt_price(p.stop_price),
            backstop=fmt_price(p.backstop_price) if p.backstop_price is not None else _("none"),
        )
    )
    if p.half_taken:
        lines.append(_("Half taken · trailing stop: {price}").format(price=fmt_price(p.trailing_stop)))
    if p.funding:
        lines.append(_("Funding so far: {funding} USDT").format(funding=fmt_usdt(p.funding, signed=True)))
    return "\n".join(lines)


def not_managed_lines(items: Sequence[NotManagedView]) -> list[str]:
    """The longs on the account that SurgeDCA leaves alone (``/positions``); empty when there are none."""
    if not items:
        return []
    lines = [
        "",
        _("<b>Not managed</b> ({count}): positions SurgeDCA did not open; it places no backstop, no DCA and no exit "
          "for them").format(count=len(items)),
    ]  # fmt: skip
    for n in items:
        line = _("• {symbol} long {qty} at {price} · {status}").format(
            symbol=_sym(n.symbol),
            qty=fmt_qty(n.qty),
            price=fmt_price(n.entry_price),
            status=_(_NOT_MANAGED[n.status]) if n.status in _NOT_MANAGED else esc(n.status),
        )
        if n.unrealized_pnl is not None:
            line += " · " + _("{pnl} USDT").format(pnl=fmt_usdt(n.unrealized_pnl, signed=True))
        lines.append(line)
    return lines


def positions_text(
    positions: Sequence[PositionView],
    *,
    page: int,
    now_ms: int,
    paused: bool,
    not_managed: Sequence[NotManagedView] = (),
) -> str:
    shown, page = page_slice(positions, page)
    pages = positions_pages(len(positions))
    head = _("<b>Positions</b> ({count})").format(count=len(positions))
    if pages > 1:
        head += " · " + _("page {page}/{pages}").format(page=page + 1, pages=pages)
    lines = [head]
    if paused:
        lines.append(_("⏸ Paused: no new entries; exits and DCA continue."))
    if not positions:
        lines += ["", _("No open positions.")]
    else:
        known = [p.unrealized_pnl for p in positions if p.unrealized_pnl is not None]
        # Before a position's first price its PnL is unknown: the total says so instead of counting it as 0.
        total = sum(known, Decimal(0)) if known else None
        line = _("Unrealised total: {pnl} USDT").format(pnl=fmt_usdt(total, signed=True))
        if known and len(known) < len(positions):
            line += " · " + _("{n} without a price yet").format(n=len(positions) - len(known))
        lines.append(line)
        for p in shown:
            lines += ["", position_block(p)]
    lines += not_managed_lines(not_managed)
    lines += ["", _("As of {time}").format(time=fmt_clock(now_ms))]
    return "\n".join(lines)


def position_details(p: PositionView, *, now_ms: int) -> str:
    lines = [
        _("<b>{symbol}</b> details").format(symbol=esc(p.symbol)),
        position_block(p),
        _("Margin: {margin} USDT").format(margin=fmt_usdt(p.margin)),
        _("Opened: {time} ({age} ago)").format(
            time=fmt_time(p.opened_at_ms), age=fmt_duration((now_ms - p.opened_at_ms) / 1000)
        ),
        _("Origin: {origin}").format(origin=_("adopted") if p.origin == "adopted" else _("signal")),
    ]
    if not p.funding:  # the block shows it once there is some
        lines.append(_("Funding so far: none paid or received"))
    if p.legs:
        lines.append(_("<b>Lots held</b>"))
        for leg in p.legs:
            lines.append(f"• {stage_name(leg.stage)}: {fmt_qty(leg.qty)} @ {fmt_price(leg.price)}")
    return "\n".join(lines)


# ------------------------------------------------------------------ health
def _age(now_ms: int, ms: int | None) -> str:
    if ms is None:
        return _("never")
    return _("{age} ago").format(age=fmt_duration((now_ms - ms) / 1000))


def health_text(h: HealthView, *, now_ms: int) -> str:
    state = _("⏸ paused") if h.paused else _("▶ running")
    if h.halted:
        state = _("⛔ trading refused")
    lines = [
        _("<b>Health</b> · mode {mode} · {state}").format(mode=esc(h.mode), state=state),
        _("Uptime: {uptime} (since {time})").format(uptime=fmt_duration(h.uptime_s), time=fmt_time(h.started_at_ms)),
    ]
    if h.halted:
        lines.append(_("⛔ Trading refused: {why}").format(why=_free(h.halted)))
    if h.streams:
        lines.append(_("<b>Streams</b>"))
        for s in h.streams:
            age = (
                _("last message {age} ago").format(age=fmt_duration(s.last_message_age_s))
                if s.last_message_age_s is not None
                else _("no message yet")
            )
            lines.append(f"{_ok(s.up)} {esc(s.name)}: {_('up') if s.up else _('down')}, {age}")
    else:
        lines.append(_("Streams: none"))
    if h.account is not None:
        lines.append(account_line(h.account, now_ms=now_ms))
    if h.telegram is not None:
        lines.append(telegram_line(h.telegram, now_ms=now_ms))
    lines.append(_("REST weight (last minute): {weight} / 2400").format(weight=h.rest_weight_1m))
    lines.append(
        _("Last reconcile: {when} — {summary}").format(
            when=_age(now_ms, h.last_reconcile_ms), summary=_free(h.last_reconcile_summary or "—")
        )
    )
    if h.last_scan_ms is None:
        lines.append(_("Last scan: never"))
    else:
        lines.append(
            _("Last scan: {when}, took {duration} ms, {symbols} symbols, {signals} signals").format(
                when=_age(now_ms, h.last_scan_ms),
                duration=fmt_num(round(h.last_scan_duration_ms or 0.0, 1)),
                symbols=h.last_scan_symbols,
                signals=h.last_scan_signals,
            )
        )
    lines.append(
        _("Database: {size}, last backup {when}").format(
            size=fmt_bytes(h.db_size_bytes), when=_age(now_ms, h.last_backup_ms)
        )
    )
    usage = (
        fmt_pct(h.margin_in_use / h.balance, places=1)
        if h.balance and h.margin_in_use is not None and h.balance > 0
        else "—"
    )
    lines.append(
        _("Balance: {balance} USDT · margin in use: {margin} USDT ({usage})").format(
            balance=fmt_usdt(h.balance), margin=fmt_usdt(h.margin_in_use), usage=usage
        )
    )
    lines.append(_("Open positions: {n}").format(n=h.open_positions))
    icon = "⚠️" if h.errors_last_hour else "✅"
    lines.append(icon + " " + _("Errors in the last hour: {n}").format(n=h.errors_last_hour))
    return "\n".join(lines)


def account_line(a: AccountHealth, *, now_ms: int) -> str:
    """The account's settings as last read: what SurgeDCA needs (one-way, single-asset, allowed to trade)."""
    facts = []
    if a.position_mode is not None:
        facts.append(_("hedge mode") if a.position_mode == "hedge" else _("one-way mode"))
    if a.multi_assets is not None:
        facts.append(_("Multi-Assets mode") if a.multi_assets else _("single-asset mode"))
    if a.can_trade is not None:
        facts.append(_("trading allowed") if a.can_trade else _("trading not allowed"))
    shown = " · ".join(facts) or _("not read yet")
    if a.refusal:  # the reason itself is the /health halt line's
        text = "⛔ " + _("Account: {facts} — no order is sent in this state").format(facts=shown)
    elif a.no_entries:
        text = "⏸ " + _("Account: {facts} — no new entries (positions held stay managed)").format(facts=shown)
    else:
        text = "✅ " + _("Account: {facts}").format(facts=shown)
    if a.checked_ms is not None:
        text += " " + _("(checked {when})").format(when=_age(now_ms, a.checked_ms))
    if a.error:
        text += "\n" + _("⚠️ Last check failed: {error}").format(error=_free(a.error))
    return text


def telegram_line(t: LinkHealth, *, now_ms: int) -> str:
    if t.up:
        text = "✅ " + _("Telegram: reachable")
        if t.last_outage_s is not None:
            text += " · " + _("last outage {duration}").format(duration=fmt_duration(t.last_outage_s))
        return text
    since = fmt_duration(max(0.0, (now_ms - (t.since_ms or now_ms)) / 1000))
    if t.rejected:
        return "⛔ " + _("Telegram rejects the bot token since {since} ago").format(since=since)
    return "⚠️ " + _("Telegram unreachable for {since}, {n} failed requests: {error}").format(
        since=since, n=t.failures, error=_free(t.last_error or "—")
    )


# ------------------------------------------------------------------ sync
def sync_text(r: SyncReport) -> str:
    took = fmt_num(round(r.duration_ms, 1))
    if r.error:
        return _("⚠️ Sync failed after {ms} ms: {error}").format(ms=took, error=_free(r.error))
    if r.clean:
        return _("✅ In sync with the exchange: nothing to correct ({ms} ms).").format(ms=took)
    lines = [_("<b>Sync</b>: {n} findings ({ms} ms)").format(n=len(r.items), ms=took)]
    for item in r.items:
        kind = _(_SYNC_KINDS[item.kind]) if item.kind in _SYNC_KINDS else esc(item.kind)
        line = f"• {kind}"
        if item.symbol:
            line += f" {_sym(item.symbol)}"
        if item.detail:
            line += f": {_free(item.detail)}"
        if item.action:
            line += " → " + _free(item.action)
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------ exit
def exit_question(p: ExitPreview, *, ttl_s: int) -> str:
    return "\n".join(
        [
            _("<b>Exit {symbol}?</b>").format(symbol=esc(p.symbol)),
            _("Sell {qty} at market (reduce-only): the whole position, stage {stage}.").format(
                qty=fmt_qty(p.qty), stage=stage_name(p.stage)
            ),
            _("Average {avg} · last {last}").format(avg=fmt_price(p.avg_price), last=fmt_price(p.last_price)),
            _("Estimated result: {pnl} USDT").format(pnl=fmt_usdt(p.est_pnl, signed=True)),
            _("Confirm within {seconds} s.").format(seconds=ttl_s),
        ]
    )


def exit_result(r: ExitResult) -> str:
    if not r.filled:
        text = _("⚠️ Exit of {symbol} was not filled.").format(symbol=_sym(r.symbol))
        if r.message:
            text += "\n" + _free(r.message)
        return text
    lines = [
        _("✅ {symbol} closed.").format(symbol=_sym(r.symbol)),
        _("Sold {qty} at {price}").format(qty=fmt_qty(r.qty), price=fmt_price(r.price)),
        _("Result: {pnl} USDT").format(pnl=fmt_usdt(r.pnl, signed=True)),
    ]
    if r.message:
        lines.append(_free(r.message))
    return "\n".join(lines)


# ------------------------------------------------------------------ adoption
def adopt_question(n: NotManagedView, *, ttl_s: int) -> str:
    return "\n".join(
        [
            _("<b>Adopt {symbol}?</b>").format(symbol=esc(n.symbol)),
            _(
                "SurgeDCA then manages the long of {qty} at {price} as its own, from the initial stage: a backstop "
                "on the exchange, DCA buys, stops and exits (its stop may sell it at once if the price is already "
                "below it)."
            ).format(qty=fmt_qty(n.qty), price=fmt_price(n.entry_price)),
            _("Confirm within {seconds} s.").format(seconds=ttl_s),
        ]
    )


def adoption_result(r: AdoptionResult, *, who: str) -> str:
    """What an answer did (it replaces the question); ``who`` names who answered."""
    symbol = _sym(r.symbol)
    o = r.outcome
    if o is AdoptionOutcome.ADOPTED:
        text = _(
            "📥 {symbol} adopted by {who}: the long of {qty} at {price} is managed by SurgeDCA from now on."
        ).format(symbol=symbol, who=esc(who), qty=fmt_qty(r.qty), price=fmt_price(r.entry_price))
        if r.backstop_price is not None:
            text += "\n" + _("Backstop on the exchange at {price}.").format(price=fmt_price(r.backstop_price))
        return text
    if o is AdoptionOutcome.IGNORED:
        return _(
            "🙈 {symbol} ignored by {who}: SurgeDCA leaves it alone (no backstop, no DCA, no exit). /positions lists "
            "it and can still adopt it."
        ).format(symbol=symbol, who=esc(who))
    return adoption_refusal(r)


def adoption_refusal(r: AdoptionResult) -> str:
    """Why an answer did nothing (short: it is also a button's pop-up, capped at 200 characters)."""
    o = r.outcome
    if o is AdoptionOutcome.ALREADY_ADOPTED:
        return _("Already answered: adopted.")
    if o is AdoptionOutcome.ALREADY_IGNORED:
        return _("Already answered: ignored.")
    if o is AdoptionOutcome.GONE:
        return _("{symbol} is no longer on the exchange: nothing to adopt.").format(symbol=esc(r.symbol or "?"))
    if o is AdoptionOutcome.REFUSED:
        return _("Trading is refused now: nothing was adopted. /health says why.")
    if o is AdoptionOutcome.UNAVAILABLE:
        return _("The exchange could not be asked: nothing changed. Try again in a moment.")
    return _("This question is no longer valid.")


# ------------------------------------------------------------------ config
_CONFIG_GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (N_("Universe and scan"), ("universe_size", "symbol_blacklist", "scan_interval_s")),
    (N_("Leverage and limits"), ("leverage", "margin_mode", "max_positions", "max_margin_usage", "max_account_loss")),
    (
        N_("Ladder (DCA)"),
        ("initial_weight", "first_dca_trigger", "first_dca_weight", "second_dca_trigger", "second_dca_weight"),
    ),
    (
        N_("Exits"),
        (
            "stop_loss_by_stage",
            "take_half_at",
            "take_half_fraction",
            "runner_trailing_stop",
            "runner_ma_fast",
            "runner_ma_slow",
        ),
    ),
    (N_("Cooldowns"), ("cooldown_after_stop_h", "cooldown_after_exit_h")),
    (N_("Delistings"), ("delist_guard_days", "exit_before_delist_h")),
    (
        N_("Operations"),
        (
            "backstop_on_exchange",
            "reconcile_interval_s",
            "fallback_poll_interval_s",
            "report_timezone",
            "taker_fee",
            "alert_charts",
            "adopt_positions",
        ),
    ),
)


def config_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "[" + ", ".join(config_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{esc(k)} = {config_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str):
        return esc(repr(value))
    return fmt_num(value)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_text(cfg: StrategyConfig) -> str:
    data = cfg.to_dict()
    signals = data.pop("signals", {})
    lines = [_("<b>Strategy config</b>")]
    seen: set[str] = set()
    for title, keys in _CONFIG_GROUPS:
        present = [k for k in keys if k in data]
        if not present:
            continue
        lines += ["", f"<b>{_(title)}</b>"]
        for key, value in _flatten({k: data[k] for k in present}).items():
            lines.append(f"<code>{esc(key)}</code> = {config_value(value)}")
        seen.update(present)
    other = {k: v for k, v in data.items() if k not in seen}
    if other:
        lines += ["", f"<b>{_('Other')}</b>"]
        for key, value in _flatten(other).items():
            lines.append(f"<code>{esc(key)}</code> = {config_value(value)}")
    if signals:
        lines += ["", f"<b>{_('Signals')}</b>"]
        for key, value in _flatten(signals, "signals.").items():
            lines.append(f"<code>{esc(key)}</code> = {config_value(value)}")
    lines += ["", _("Change a value: /config set KEY VALUE (e.g. /config set leverage 5)")]
    return "\n".join(lines)


def _worst(r: RiskTable) -> str:
    return fmt_pct(r.worst_case_pct, places=1)


def config_question(p: ConfigPreview, *, ttl_s: int) -> tuple[str, bool]:
    """The confirmation text and whether the change may be confirmed (the new config passes the risk check)."""
    lines = [
        _("<b>Change the config?</b>"),
        f"<code>{esc(p.key)}</code>: {config_value(p.old)} → {config_value(p.new)}",
        _("Worst case: {before} → {after} of the balance (limit {limit})").format(
            before=_worst(p.risk_before),
            after=_worst(p.risk_after),
            limit=fmt_pct(p.risk_after.max_account_loss, places=1),
        ),
    ]
    if not p.risk_after.ok:
        lines.append(_("⚠️ This change would be refused:"))
        lines += [f"• {_free(problem)}" for problem in p.risk_after.problems]
        return "\n".join(lines), False
    lines.append(_("Confirm within {seconds} s.").format(seconds=ttl_s))
    return "\n".join(lines), True


def config_done(c: ConfigChange) -> str:
    return _("✅ <code>{key}</code> = {new} (was {old}).").format(
        key=esc(c.key), new=config_value(c.new), old=config_value(c.old)
    )


def config_history_text(changes: Sequence[ConfigChange]) -> str:
    if not changes:
        return _("No config changes yet.")
    lines = [_("<b>Config history</b>")]
    for c in changes:
        lines.append(
            f"{fmt_time(c.ts_ms)} · {esc(c.actor)} · <code>{esc(c.key)}</code>: "
            f"{config_value(c.old)} → {config_value(c.new)}"
        )
    return "\n".join(lines)


def invalid_config_text(problems: Iterable[str]) -> str:
    items = [f"• {_free(p)}" for p in problems] or ["• —"]
    return "\n".join([_("❌ Invalid value; nothing was changed:"), *items])


# ------------------------------------------------------------------ stats, risk, why, report
def _period(label: str, s: PeriodStats) -> str:
    if not s.trades:
        return _("<b>{label}</b>: no trades").format(label=label)
    return _(
        "<b>{label}</b>: {trades} trades, win rate {rate}, realised {pnl} USDT after fees {fees} USDT "
        "and funding {funding} USDT"
    ).format(
        label=label,
        trades=s.trades,
        rate=fmt_pct(s.win_rate or 0, places=1),
        pnl=fmt_usdt(s.realized_pnl, signed=True),
        fees=fmt_usdt(s.fees),
        funding=fmt_usdt(s.funding, signed=True),
    )


def stats_text(s: StatsView) -> str:
    return "\n".join(
        [
            _("<b>Statistics</b> ({tz})").format(tz=esc(s.timezone)),
            _period(_("Today"), s.today),
            _period(_("Last 7 days"), s.week),
        ]
    )


def risk_text(r: RiskTable) -> str:
    lines = [
        _("<b>Risk</b>: balance {balance} USDT, {lev}x, {mode}, up to {n} positions").format(
            balance=fmt_usdt(r.balance), lev=r.leverage, mode=esc(r.margin_mode), n=r.max_positions
        ),
    ]
    for row in r.rows:
        line = _(
            "• <b>{stage}</b>: margin {margin}, notional {notional}, stop {stop} → loss {loss} + fees {fees} USDT "
            "({pct} of balance)"
        ).format(
            stage=stage_name(row.stage),
            margin=fmt_usdt(row.margin),
            notional=fmt_usdt(row.notional),
            stop=fmt_pct(row.stop_pct),
            loss=fmt_usdt(row.loss_at_stop),
            fees=fmt_usdt(row.fees),
            pct=fmt_pct(row.loss_pct_of_balance),
        )
        if row.liquidation_pct is not None:
            line += "; " + _("liquidation at {pct}, stop above it: {ok}").format(
                pct=fmt_pct(row.liquidation_pct), ok=_ok(row.stop_above_liquidation)
            )
        lines.append(line)
    lines += [
        _("Per position (worst stage): {loss} USDT").format(loss=fmt_usdt(r.per_position_worst)),
        _("Worst case, all {n} positions stopped: {loss} + fees {fees} USDT = {pct} of balance (limit {limit})").format(
            n=r.max_positions,
            loss=fmt_usdt(r.worst_case_loss),
            fees=fmt_usdt(r.worst_case_fees),
            pct=fmt_pct(r.worst_case_pct, places=1),
            limit=fmt_pct(r.max_account_loss, places=1),
        ),
        _("Margin in use when fully laddered: {pct} of balance").format(pct=fmt_pct(r.margin_in_use_full, places=1)),
    ]
    if r.ok:
        lines.append(_("✅ Within the limits."))
    else:
        lines.append(_("⚠️ Outside the limits:"))
        lines += [f"• {_free(p)}" for p in r.problems]
    return "\n".join(lines)


def _condition(c: Condition) -> str:
    line = f"{_ok(c.ok)} <b>{esc(c.name)}</b>"
    if c.note:
        line += f" {esc(c.note)}"
    if c.values:
        line += " · " + ", ".join(f"{esc(k)}={fmt_num(v)}" for k, v in c.values.items())
    return line


def why_text(r: SignalReport) -> str:
    head = _("<b>Why {symbol}</b> · {time}").format(symbol=esc(r.symbol), time=fmt_time(r.at_ms))
    if r.price is not None:
        head += " · " + _("price {price}").format(price=fmt_price(r.price))
    verdict = _("✅ entry signal") if r.entry else _("❌ no entry")
    lines = [head, _("Verdict: {verdict}").format(verdict=verdict)]
    sections = (
        (_("1h pre-filter"), r.prefilter, r.prefilter_ok),
        (_("1m strategy"), r.m1, r.strategy_1m_ok),
        (_("3m strategy"), r.m3, r.strategy_3m_ok),
        (_("15m filter"), r.f15, r.filter_15m_ok),
    )
    for title, conds, ok in sections:
        if not conds:
            continue
        held = sum(1 for c in conds if c.ok)
        lines += ["", f"{_ok(ok)} <b>{title}</b> ({held}/{len(conds)})"]
        lines += [_condition(c) for c in conds]
    return "\n".join(lines)


def why_none_text(symbol: str) -> str:
    return _("No evaluation of {symbol} yet: it is outside the scanned universe or has too few candles.").format(
        symbol=_sym(symbol)
    )


# Figures of ``trading.reporting.live_report``; any other key is shown as it comes.
_SUMMARY_LABELS: dict[str, tuple[str, str]] = {
    "trades": (N_("Trades"), "int"),
    "wins": (N_("Wins"), "int"),
    "win_rate": (N_("Win rate"), "ratio"),
    "realized_pnl": (N_("Realised PnL after fees and funding (USDT)"), "signed_usdt"),
    "fees": (N_("Fees (USDT)"), "usdt"),
    "funding": (N_("Funding of these trades (USDT)"), "signed_usdt"),
    "open_funding": (N_("Funding of open positions so far (USDT)"), "signed_usdt"),
    "start_equity": (N_("Equity at start (USDT)"), "usdt"),
    "end_equity": (N_("Equity at end (USDT)"), "usdt"),
    "max_drawdown_pct": (N_("Max drawdown"), "percent"),
}


def _summary_value(kind: str, v: Any) -> str:
    if v is None:
        return "—"
    if not isinstance(v, int | float | Decimal) or isinstance(v, bool):
        return fmt_num(v)
    if kind == "ratio":
        return fmt_pct(v, places=1)
    if kind == "signed_usdt":
        return fmt_usdt(v, signed=True)
    if kind == "usdt":
        return fmt_usdt(v)
    if kind == "percent":  # already in percent
        return fmt_num(v) + "%"
    return fmt_num(v)


def report_caption(r: Report) -> str:
    lines = [_("<b>Report</b>: last {days} days").format(days=r.days)]
    for k, v in r.summary.items():
        if k == "days":
            continue
        label, kind = _SUMMARY_LABELS.get(k, ("", ""))
        lines.append(f"{_(label) if label else esc(k)}: {_summary_value(kind, v)}")
    if r.png is None:
        lines.append(_("Nothing to plot yet: the equity curve needs two minutes of balance records."))
    return "\n".join(lines)


# ------------------------------------------------------------------ charts
def chart_labels() -> ChartLabels:
    """The words drawn in a chart, in the current locale (the renderer falls back to English when no installed
    font can draw them)."""
    return ChartLabels(
        avg=_("Avg"),
        stop=_("Stop"),
        backstop=_("Backstop"),
        next_dca=_("Next DCA"),
        recovery=_("Recovery sell"),
        take_half=_("Take half"),
        trailing=_("Trailing stop"),
        entry=_("Entry"),
        dca=_("DCA"),
        sell=_("Sell"),
        close=_("Close"),
        volume=_("Volume"),
        last=_("Last"),
        prefilter=_("1h pre-filter"),
        strategy_1m=_("1m strategy"),
        strategy_3m=_("3m strategy"),
        filter_15m=_("15m filter"),
        signal_yes=_("entry signal"),
        signal_no=_("no entry"),
        not_evaluated=_("not evaluated yet"),
    )


def chart_caption(v: ChartView) -> str:
    """Under the picture: what it shows in figures (a caption holds at most 1,024 characters)."""
    head = f"{_sym(v.symbol)} · {esc(v.interval)} · {fmt_time(v.candle_ms)}"
    p = v.position
    if p is not None:
        lines = [
            head + " · " + stage_name(p.stage),
            _("Last {last} · avg {avg} ({pct})").format(
                last=fmt_price(p.last_price), avg=fmt_price(p.avg_price), pct=fmt_pct(p.unrealized_pct, signed=True)
            ),
            _("Stop: {stop} · backstop: {backstop}").format(
                stop=fmt_price(p.stop_price),
                backstop=fmt_price(p.backstop_price) if p.backstop_price is not None else _("none"),
            ),
        ]
        if p.next_dca_stage and p.next_dca_price is not None:
            lines.append(
                _("Next DCA: {stage} at {price}").format(
                    stage=stage_name(p.next_dca_stage), price=fmt_price(p.next_dca_price)
                )
            )
        if p.half_taken:
            lines.append(_("Half taken · trailing stop: {price}").format(price=fmt_price(p.trailing_stop)))
        return "\n".join(lines)
    r = v.signal
    if r is None:
        return head + "\n" + _("Not held. No evaluation yet: too few candles.")
    verdict = _("✅ entry signal") if r.entry else _("❌ no entry")
    groups = (
        (_("1h pre-filter"), r.prefilter, r.prefilter_ok),
        (_("1m strategy"), r.m1, r.strategy_1m_ok),
        (_("3m strategy"), r.m3, r.strategy_3m_ok),
        (_("15m filter"), r.f15, r.filter_15m_ok),
    )
    parts = [f"{_ok(ok)} {title} {sum(1 for c in conds if c.ok)}/{len(conds)}" for title, conds, ok in groups if conds]
    return "\n".join(
        [
            head,
            _("Not held. Entry conditions: {verdict}").format(verdict=verdict),
            " · ".join(parts),
            _("Every value: /why {symbol}").format(symbol=esc(v.symbol)),
        ]
    )


_CHART_PROBLEMS: dict[str | None, str] = {
    ChartProblem.INTERVAL: N_("Charts come in 1m, 3m, 15m or 1h."),
    ChartProblem.NO_CANDLES: N_("No candles of {symbol}: it is neither held nor among the scanned symbols."),
    ChartProblem.FAILED: N_("The chart of {symbol} could not be drawn just now; please try again."),
}


# ------------------------------------------------------------------ blocks
def _until(until_ms: int, now_ms: int) -> str:
    left_s = max(0, until_ms - now_ms) / 1000
    if left_s >= 60:  # whole minutes, rounded up: a fresh 24 h block reads "24h 0m", not "23h 59m"
        left_s = -(-left_s // 60) * 60
    return _("until {time} ({left} left)").format(time=fmt_time(until_ms), left=fmt_duration(left_s))


def block_question(symbol: str, *, held: bool) -> str:
    lines = [_("<b>Block {symbol}?</b> No new entries on it for the time you choose.").format(symbol=esc(symbol))]
    if held:
        lines.append(
            _(
                "You hold {symbol}: blocking does not sell it (DCA and exits go on). Exit sells it, after confirmation."
            ).format(symbol=_sym(symbol))
        )
    return "\n".join(lines)


def block_done(r: BlockResult, *, now_ms: int) -> str:
    if r.already_permanent:
        text = _("{symbol} is already blocked permanently (symbol_blacklist). /unblock {symbol} lifts it.").format(
            symbol=_sym(r.symbol)
        )
    elif r.until_ms is None:
        text = _("🚫 {symbol} blocked permanently: no new entries (added to symbol_blacklist).").format(
            symbol=_sym(r.symbol)
        )
    else:
        text = _("🚫 {symbol} blocked {until}: no new entries until then.").format(
            symbol=_sym(r.symbol), until=_until(r.until_ms, now_ms)
        )
        if r.previous_until_ms is not None:
            text += "\n" + _("It replaces the block that ran until {time}.").format(time=fmt_time(r.previous_until_ms))
    if r.held:
        text += "\n" + _("You hold {symbol}: the position goes on (DCA and exits). Exit it?").format(
            symbol=_sym(r.symbol)
        )
    return text


def unblock_done(r: UnblockResult, *, now_ms: int) -> str:
    if not r.changed:
        text = _("{symbol} is not blocked.").format(symbol=_sym(r.symbol))
    else:
        text = _("✅ {symbol} unblocked: new entries are allowed again.").format(symbol=_sym(r.symbol))
    if r.cooldown_until_ms is not None:
        text += "\n" + _("Its cooldown after the last close still runs {until}.").format(
            until=_until(r.cooldown_until_ms, now_ms)
        )
    return text


_COOLDOWN_REASONS = {"stop_loss": N_("after a stop loss"), "backstop": N_("after the backstop")}


def blocked_text(b: BlockList, *, now_ms: int) -> str:
    held = set(b.held)

    def mark(symbol: str) -> str:
        return _sym(symbol) + (" · " + _("held") if symbol in held else "")

    lines = [_("<b>Blocked symbols</b> (no new entries)")]
    lines += ["", _("<b>Permanently</b> (symbol_blacklist)")]
    lines += [f"• {mark(s)}" for s in b.permanent] or [_("none")]
    lines += ["", _("<b>For a time</b> (/block SYMBOL HOURS)")]
    lines += [f"• {mark(t.symbol)} {_until(t.until_ms, now_ms)} · {esc(t.actor)}" for t in b.timed] or [_("none")]
    if b.cooldowns:
        lines += ["", _("<b>Cooldowns</b> of the strategy (after a close)")]
        for c in b.cooldowns:
            why = _(_COOLDOWN_REASONS[c.reason]) if c.reason in _COOLDOWN_REASONS else _("after a close")
            lines.append(f"• {mark(c.symbol)} {_until(c.until_ms, now_ms)} · {why}")
    lines += ["", _("/block SYMBOL [HOURS] adds one, /unblock SYMBOL lifts it.")]
    return "\n".join(lines)


# ------------------------------------------------------------------ errors
def service_error_text(exc: ServiceError) -> str:
    p = exc.params
    code = exc.code
    if code == "unknown_symbol":
        return _("Unknown symbol {symbol}. Write it like btc or BTCUSDT.").format(symbol=_sym(p.get("symbol", "?")))
    if code == "no_position":
        return _("No open position in {symbol}.").format(symbol=_sym(p.get("symbol", "?")))
    if code == "symbol_busy":
        return _("{symbol} is busy with another action; try again in a moment.").format(
            symbol=_sym(p.get("symbol", "?"))
        )
    if code == "exchange_unavailable":
        return _("The exchange cannot be reached right now: {detail}").format(detail=_free(p.get("detail", "")))
    if code == "invalid_config":
        return invalid_config_text(p.get("problems") or [str(exc)])
    if code == "chart_unavailable":
        reason = p.get("reason")
        template = _CHART_PROBLEMS.get(reason, _CHART_PROBLEMS[ChartProblem.FAILED])
        return _(template).format(symbol=_sym(p.get("symbol", "?")))
    if code == "invalid_block":
        return _("Hours must be more than 0 and at most {max}.").format(max=p.get("max_hours", "?"))
    if code == "trading_refused":
        return _("Trading is refused now: {reason}").format(reason=_free(p.get("reason", "")))
    if code == "not_managed":
        return _("There is no position of yours on {symbol} that SurgeDCA could adopt.").format(
            symbol=_sym(p.get("symbol", "?"))
        )
    if code == "service_stopping":
        return _("The service is stopping: nothing was done. Try again once it is back.")
    return _("The service refused: {reason}").format(reason=_free(str(exc)))


def not_allowed_text() -> str:
    # Short: it is also a button's pop-up, which Telegram caps at 200 characters.
    return _(
        "🚫 Only the users in TELEGRAM_ALLOWED_USER_IDS can do this. Everyone here may read (/positions, /health)."
    )


def rate_limited_text(seconds: int) -> str:
    return _("⏳ Too many of these requests: try again in {seconds} s.").format(seconds=seconds)


def unexpected_error_text() -> str:
    return _("⚠️ Something went wrong; it is in the log. Please try again.")


# ------------------------------------------------------------------ alerts
def alert_text(event: EngineEvent) -> str:
    """One push alert (HTML, current locale)."""
    e = event
    s = _sym(e.symbol)
    if isinstance(e, EntryFilled):
        return _("🟢 <b>Entry</b> {symbol}: bought {qty} at {price} (notional {notional} USDT)").format(
            symbol=s, qty=fmt_qty(e.qty), price=fmt_price(e.price), notional=fmt_usdt(e.notional)
        )
    if isinstance(e, DcaFilled):
        return _("🔵 <b>DCA</b> {symbol} ({level}): bought {qty} at {price}; average {avg}, total {total}").format(
            symbol=s,
            level=stage_name(e.level),
            qty=fmt_qty(e.qty),
            price=fmt_price(e.price),
            avg=fmt_price(e.avg_price),
            total=fmt_qty(e.total_qty),
        )
    if isinstance(e, PartialExit):
        return _(
            "🟡 <b>Partial sell</b> {symbol} ({reason}): sold {qty} at {price}, {remaining} left; {pnl} USDT"
        ).format(
            symbol=s,
            reason=reason_name(e.reason),
            qty=fmt_qty(e.qty),
            price=fmt_price(e.price),
            remaining=fmt_qty(e.remaining_qty),
            pnl=fmt_usdt(e.pnl, signed=True),
        )
    if isinstance(e, PositionClosed):
        figures = {
            "qty": fmt_qty(e.qty),
            "price": fmt_price(e.price),
            "pnl": fmt_usdt(e.pnl, signed=True),
            "pct": fmt_pct(e.pnl_pct, signed=True),
        }
        if e.reason == "liquidation":
            head = _("💥 <b>Liquidated</b>")
            body = _(
                "{symbol}: the exchange closed {qty} at {price}; result {pnl} USDT ({pct} of margin). No new entry on "
                "it during the cooldown after a stop."
            ).format(symbol=s, **figures)
        elif e.reason in ("stop_loss", "backstop"):  # the headline says why
            head = _("🛑 <b>Stop loss</b>") if e.reason == "stop_loss" else _("🛑 <b>Backstop filled</b>")
            body = _("{symbol}: sold {qty} at {price}; result {pnl} USDT ({pct} of margin)").format(symbol=s, **figures)
        else:
            head = _("✅ <b>Closed</b>") if e.pnl >= 0 else _("🔻 <b>Closed</b>")
            body = _("{symbol} ({reason}): sold {qty} at {price}; result {pnl} USDT ({pct} of margin)").format(
                symbol=s, reason=reason_name(e.reason), **figures
            )
        if e.funding:  # the result is after funding: say how much of it that was
            body += " " + _("Funding {funding} USDT is included.").format(funding=fmt_usdt(e.funding, signed=True))
        return f"{head} {body}"
    if isinstance(e, PositionAdopted):
        return _("📥 <b>Adopted</b> {symbol}: a position of {qty} at {price} found on the exchange").format(
            symbol=s, qty=fmt_qty(e.qty), price=fmt_price(e.entry_price)
        )
    if isinstance(e, AdoptionAsked):
        return _(
            "📥 <b>Position not opened by SurgeDCA</b> {symbol}: a long of {qty} at {price} is on the account. Adopt "
            "it (SurgeDCA then manages it: backstop, DCA, exits) or ignore it? Until adopted it gets no backstop, "
            "no DCA and no exit."
        ).format(symbol=s, qty=fmt_qty(e.qty), price=fmt_price(e.entry_price))
    if isinstance(e, DelistingAhead):
        if e.delivery_ms is None:
            return _(
                "📅 <b>Delisting</b> {symbol}: the contract no longer trades normally ({cause}); the position is "
                "closed now."
            ).format(symbol=s, cause=_free(e.cause))
        if e.close_at_ms <= e.ts_ms:
            return _(
                "📅 <b>Delisting</b> {symbol}: Binance settles it at {delivery}; the position is closed now."
            ).format(symbol=s, delivery=fmt_time(e.delivery_ms))
        return _(
            "📅 <b>Delisting</b> {symbol}: Binance settles it at {delivery}; the position is closed at {close}, "
            "{hours} h before."
        ).format(
            symbol=s,
            delivery=fmt_time(e.delivery_ms),
            close=fmt_time(e.close_at_ms),
            hours=fmt_num(round((e.delivery_ms - e.close_at_ms) / 3_600_000, 1)),
        )
    if isinstance(e, AccountModeSwitched):
        return _(
            "🔧 <b>Account switched to one-way mode</b>: it was in hedge mode with nothing open. SurgeDCA trades in "
            "one-way mode only."
        )
    if isinstance(e, EntriesRefused):
        if e.reason is None:
            return _("▶️ <b>New entries allowed again</b>: the account's settings allow them.")
        cause = _(_ENTRY_CAUSES[e.cause]) if e.cause in _ENTRY_CAUSES else _free(e.reason)
        return _("⏸ <b>No new entries</b>: {cause}").format(cause=cause)
    if isinstance(e, PositionVanished):
        pnl = fmt_usdt(e.pnl, signed=True) if e.pnl is not None else _("unknown")
        return _(
            "❓ <b>Vanished</b> {symbol}: {qty} no longer on the exchange (closed by hand or liquidated); "
            "result {pnl} USDT"
        ).format(symbol=s, qty=fmt_qty(e.qty), pnl=pnl)
    if isinstance(e, QuantityDrift):
        return _(
            "⚖️ <b>Quantity drift</b> {symbol}: database {db}, exchange {ex}; the exchange's figure is used"
        ).format(symbol=s, db=fmt_qty(e.db_qty), ex=fmt_qty(e.exchange_qty))
    if isinstance(e, OrderSkipped):
        return _("⏭ <b>Order skipped</b> {symbol}: {what} — {why}").format(
            symbol=s, what=_free(e.what), why=_free(e.why)
        )
    if isinstance(e, OrderRefused):
        code = f" [{e.code}]" if e.code is not None else ""
        why = _(_REFUSALS[e.refusal]) if e.refusal in _REFUSALS else esc(e.refusal)
        if e.gave_up:
            step = _("Given up for this position; its stops and exits go on.")
        elif e.cooldown_min is not None:
            step = _("No new entry on this symbol for {n} minutes.").format(n=e.cooldown_min)
        elif e.retry_in_s is not None:
            step = _("Not sent again for {duration}.").format(duration=fmt_duration(e.retry_in_s))
        else:
            step = _("Tried again at the next signal.")
        return _("⛔ <b>Order refused</b> {symbol}: {what} — {why}{code}: {message}\n{step}").format(
            symbol=s, what=rule_name(e.what), why=why, code=esc(code), message=_free(e.message), step=step
        )
    if isinstance(e, BackstopLost):
        status = {"CANCELED": _("cancelled"), "EXPIRED": _("expired")}.get(e.status, esc(e.status.lower()))
        if e.restored_price is not None:
            after = _("a new one rests at {price}.").format(price=fmt_price(e.restored_price))
        else:
            after = _(
                "it could not be placed again yet: the service's own stop still watches the price, and the "
                "reconciler keeps trying."
            )
        return _(
            "🛡 <b>Backstop lost</b> {symbol}: the exchange-side stop was {status} without filling; {after}"
        ).format(symbol=s, status=status, after=after)
    if isinstance(e, TradingHalted):
        if not e.halted:
            return _("▶️ <b>Trading again</b>: {detail}").format(detail=_free(e.detail))
        cause = _(_HALT_CAUSES[e.cause]) if e.cause in _HALT_CAUSES else esc(e.cause)
        return _("⛔ <b>Trading refused</b>: {cause}.\n{detail}").format(cause=cause, detail=_free(e.detail))
    if isinstance(e, StreamDown):
        return _("📡 <b>Stream down</b>: {name} — {detail}").format(name=esc(e.name), detail=_free(e.detail))
    if isinstance(e, StreamUp):
        return _("📡 <b>Stream up</b>: {name} (was down {duration})").format(
            name=esc(e.name), duration=fmt_duration(e.down_for_s)
        )
    if isinstance(e, ErrorEvent):
        where = esc(e.where) + (f" {_sym(e.symbol)}" if e.symbol else "")
        return _("⚠️ <b>Error</b> in {where}: {message}").format(where=where, message=_free(e.message))
    if isinstance(e, BotPollingStopped):
        return _(
            "⛔ <b>Another bot instance</b> reads this bot's commands (Telegram: 409 Conflict, {count} times). "
            "This service stopped reading commands so that they are not split between the two; trading and alerts "
            "go on. Stop the other instance, then restart this one."
        ).format(count=e.conflicts)
    if isinstance(e, ChatMigrated):
        return _(
            "⚠️ <b>Group upgraded</b>: chat {old} became a supergroup with the id <code>{new}</code>. Put {new} in "
            "TELEGRAM_ALLOWED_CHAT_IDS in place of {old} and restart; until then commands from it are ignored."
        ).format(old=e.old_chat_id, new=e.new_chat_id)
    if isinstance(e, ServiceStarted):
        text = _("▶️ <b>SurgeDCA started</b> in {mode} mode").format(mode=esc(e.mode))
        if e.details:
            text += "\n" + "\n".join(f"{esc(k)}: {_free(v)}" for k, v in e.details.items())
        return text
    if isinstance(e, ServiceStopping):
        return _("⏹ <b>SurgeDCA stopping</b>: {reason}").format(reason=_free(e.reason))
    return _("ℹ️ {kind} {symbol}").format(kind=esc(e.kind), symbol=s)


_ENTRY_CAUSES = {
    "multi_assets": N_(
        "Multi-Assets mode is on: margin is shared with the account's other assets, so sizes taken from the USDT "
        "balance and the liquidation estimates no longer hold. Positions held stay managed; turn the mode off in "
        "the Binance app to trade again."
    ),
}


def coalesced_text(event: EngineEvent, more: int) -> str:
    """The last of a storm, with how many like it were held back."""
    return (
        alert_text(event)
        + "\n"
        + ngettext(
            "…and {n} more like this in the last minute", "…and {n} more like these in the last minute", more
        ).format(n=more)
    )


def dropped_text(dropped: int, dropped_trades: int) -> str:
    text = ngettext(
        "⚠️ {n} alert was dropped while Telegram could not be reached.",
        "⚠️ {n} alerts were dropped while Telegram could not be reached.",
        dropped,
    ).format(n=dropped)
    if dropped_trades:
        text += " " + _("Of them, {n} about trades: check /positions and /stats.").format(n=dropped_trades)
    return text


# ------------------------------------------------------------------ console (headless) alerts
def alert_line(event: EngineEvent, more: int = 0) -> str:
    """A readable one-line English rendering for the log (headless mode). No HTML, no gettext."""
    e = event
    sym = e.symbol or "-"
    if isinstance(e, EntryFilled):
        text = f"ENTRY {sym}: bought {fmt_qty(e.qty)} at {fmt_price(e.price)} (notional {fmt_usdt(e.notional)} USDT)"
    elif isinstance(e, DcaFilled):
        text = (
            f"DCA {sym} {e.level}: bought {fmt_qty(e.qty)} at {fmt_price(e.price)}; "
            f"avg {fmt_price(e.avg_price)}, total {fmt_qty(e.total_qty)}"
        )
    elif isinstance(e, PartialExit):
        text = (
            f"PARTIAL {sym} {e.reason}: sold {fmt_qty(e.qty)} at {fmt_price(e.price)}, "
            f"{fmt_qty(e.remaining_qty)} left; pnl {fmt_usdt(e.pnl, signed=True)} USDT"
        )
    elif isinstance(e, PositionClosed):
        label = {"stop_loss": "STOP LOSS", "backstop": "BACKSTOP", "liquidation": "LIQUIDATED"}.get(e.reason, "CLOSED")
        text = (
            f"{label} {sym} ({e.reason}): sold {fmt_qty(e.qty)} at {fmt_price(e.price)}; "
            f"pnl {fmt_usdt(e.pnl, signed=True)} USDT ({fmt_pct(e.pnl_pct, signed=True)} of margin)"
            + (f", funding {fmt_usdt(e.funding, signed=True)} USDT included" if e.funding else "")
        )
    elif isinstance(e, PositionAdopted):
        text = f"ADOPTED {sym}: {fmt_qty(e.qty)} at {fmt_price(e.entry_price)}"
    elif isinstance(e, AdoptionAsked):
        text = f"NOT OPENED BY SURGEDCA {sym}: long {fmt_qty(e.qty)} at {fmt_price(e.entry_price)}; adopt it?"
    elif isinstance(e, DelistingAhead):
        text = f"DELISTING {sym} ({e.cause}): settlement at {e.delivery_ms}, position closed at {e.close_at_ms}"
    elif isinstance(e, AccountModeSwitched):
        text = f"ACCOUNT switched from {e.before} to {e.after} mode (nothing was open)"
    elif isinstance(e, EntriesRefused):
        text = f"NO NEW ENTRIES: {e.reason}" if e.reason else "NEW ENTRIES allowed again"
    elif isinstance(e, PositionVanished):
        pnl = fmt_usdt(e.pnl, signed=True) if e.pnl is not None else "unknown"
        text = f"VANISHED {sym}: {fmt_qty(e.qty)} no longer on the exchange; pnl {pnl} USDT"
    elif isinstance(e, QuantityDrift):
        text = f"QTY DRIFT {sym}: db {fmt_qty(e.db_qty)}, exchange {fmt_qty(e.exchange_qty)}"
    elif isinstance(e, OrderSkipped):
        text = f"ORDER SKIPPED {sym}: {e.what} - {e.why}"
    elif isinstance(e, OrderRefused):
        if e.gave_up:
            step = "given up for this position"
        elif e.cooldown_min is not None:
            step = f"no entry on it for {e.cooldown_min} min"
        elif e.retry_in_s is not None:
            step = f"not sent again for {fmt_duration(e.retry_in_s)}"
        else:
            step = "tried again at the next signal"
        text = f"ORDER REFUSED {sym}: {e.what} ({e.refusal}) [{e.code}] - {e.message}; {step}"
    elif isinstance(e, BackstopLost):
        again = f"new one at {fmt_price(e.restored_price)}" if e.restored_price is not None else "not placed again yet"
        text = f"BACKSTOP LOST {sym}: {e.client_id} {e.status} without filling; {again}"
    elif isinstance(e, TradingHalted):
        text = f"TRADING {'REFUSED' if e.halted else 'AGAIN'} ({e.cause}): {e.detail}"
    elif isinstance(e, StreamDown):
        text = f"STREAM DOWN {e.name}: {e.detail}"
    elif isinstance(e, StreamUp):
        text = f"STREAM UP {e.name} (down {fmt_duration(e.down_for_s)})"
    elif isinstance(e, ErrorEvent):
        text = f"ERROR in {e.where}{' ' + sym if e.symbol else ''}: {e.message}"
    elif isinstance(e, BotPollingStopped):
        text = (
            f"TELEGRAM CONFLICT: another process polls this bot token ({e.conflicts} x 409); "
            f"command polling stopped, alerts go on ({e.detail})"
        )
    elif isinstance(e, ChatMigrated):
        text = (
            f"TELEGRAM CHAT MIGRATED: group {e.old_chat_id} is now supergroup {e.new_chat_id}; "
            f"put {e.new_chat_id} in TELEGRAM_ALLOWED_CHAT_IDS"
        )
    elif isinstance(e, ServiceStarted):
        details = ", ".join(f"{k}={v}" for k, v in e.details.items())
        text = f"STARTED mode={e.mode}" + (f" ({details})" if details else "")
    elif isinstance(e, ServiceStopping):
        text = f"STOPPING: {e.reason}"
    else:
        text = f"{e.kind} {sym}"
    text = " ".join(truncate(text, 2000).split())  # one line, whatever the engine put in messages
    if more:
        text += f" (and {more} more like this in the last minute)"
    return text


def dropped_line(dropped: int, dropped_trades: int) -> str:
    return f"DROPPED {dropped} alerts while the destination was unreachable; {dropped_trades} of them about trades"
