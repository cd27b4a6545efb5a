"""One router per command family; :func:`all_routers` gives them in inclusion order (fallback last)."""

from __future__ import annotations

from aiogram import Router


def all_routers() -> list[Router]:
    # Imported here so that importing ``bot.routers`` alone has no side effects.
    from bot.routers import (
        adoption,
        block,
        chart,
        config,
        control,
        errors,
        exit,
        fallback,
        health,
        lang,
        membership,
        migration,
        positions,
        report,
        risk,
        start,
        stats,
        sync,
        why,
    )

    return [
        errors.create_router(),
        migration.create_router(),  # before anything that would answer the old group's service message
        start.create_router(),
        positions.create_router(),
        health.create_router(),
        sync.create_router(),
        exit.create_router(),
        config.create_router(),
        control.create_router(),
        stats.create_router(),
        why.create_router(),
        risk.create_router(),
        lang.create_router(),
        report.create_router(),
        chart.create_router(),
        block.create_router(),
        adoption.create_router(),
        membership.create_router(),
        fallback.create_router(),  # must stay last: it takes whatever the others did not
    ]
