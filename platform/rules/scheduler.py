"""APScheduler drives the worker: one interval job ("tick") that fires due timers —
schedule rules' next runs included — and delivers the outbox.

Schedule rules are not APScheduler cron jobs: their next run is a row in ``timers``
(computed by the rule engine), so it survives restarts, is claimed by exactly one of
several processes, and can be caught up with ``formloom worker --once --now``.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from formloom.platform.deps import Platform
from formloom.platform.rules.worker import Worker

log = logging.getLogger("formloom.worker")


def start(state: Platform) -> AsyncIOScheduler:
    """Start ticking in the running event loop; ``shutdown(wait=False)`` stops it."""
    worker = Worker(state.db, state.catalog, state.settings)

    async def tick() -> None:
        try:
            report = await worker.run_once(state.clock.now())
        except Exception:  # noqa: BLE001 - a failing tick must not stop the next one
            log.exception("worker tick failed")
            return
        if report.timers_fired or report.delivered or report.dead or report.retrying:
            log.info("worker tick: %s", report.to_dict())

    scheduler = AsyncIOScheduler(timezone=state.settings.timezone)
    scheduler.add_job(
        tick,
        "interval",
        seconds=state.settings.worker_tick_seconds,
        id="formloom-worker-tick",
        max_instances=1,
        coalesce=True,
        next_run_time=state.clock.now(),
    )
    scheduler.start()
    return scheduler
