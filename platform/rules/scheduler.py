"""APScheduler drives the worker: one interval job ("tick") that fires due timers —
schedule rules' next runs included — and delivers the outbox.

Schedule rules are not APScheduler cron jobs: their next run is a row in ``timers``
(computed by the rule engine), so it survives restarts, is claimed by exactly one of
several processes, and can be caught up with ``formloom worker --once --now``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from dataclasses import dataclass, field

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from formloom.platform.deps import Platform
from formloom.platform.rules.worker import Worker

log = logging.getLogger("formloom.worker")

#: How long :meth:`Ticking.stop` lets a tick in flight finish before cancelling it.
STOP_GRACE_SECONDS = 10.0


@dataclass
class Ticking:
    """The running scheduler and the tick in flight, if any."""

    scheduler: AsyncIOScheduler
    running: set[asyncio.Task[None]] = field(default_factory=set)

    async def stop(self, grace: float | None = None) -> None:
        """No new tick; the one in flight finishes (or, after ``grace`` seconds —
        :data:`STOP_GRACE_SECONDS` unless given — is
        cancelled and unwound) before this returns — so the database can be closed after
        it. (APScheduler's own shutdown cancels a running coroutine job and returns at once:
        the database was then closed under a tick still rolling back, and a process could
        hang on exit.) A cancelled tick's work is at-least-once: its timers and messages
        are picked up by the next tick of any process."""
        self.scheduler.pause()
        running = [task for task in self.running if not task.done()]
        if running:
            wait = STOP_GRACE_SECONDS if grace is None else grace
            _, late = await asyncio.wait(running, timeout=wait)
            for task in late:
                task.cancel()
            for task in late:
                with suppress(asyncio.CancelledError):
                    await task
        self.scheduler.shutdown(wait=False)


def start(state: Platform) -> Ticking:
    """Start ticking in the running event loop; :meth:`Ticking.stop` stops it."""
    worker = Worker(state.db, state.catalog, state.settings)
    ticking: Ticking

    async def tick() -> None:
        task = asyncio.current_task()
        if task is not None:
            ticking.running.add(task)
        try:
            report = await worker.run_once(state.clock.now())
        except Exception:  # noqa: BLE001 - a failing tick must not stop the next one
            log.exception("worker tick failed")
            return
        finally:
            if task is not None:
                ticking.running.discard(task)
        if report.timers_fired or report.delivered or report.dead or report.retrying:
            log.info("worker tick: %s", report.to_dict())

    scheduler = AsyncIOScheduler(timezone=state.settings.timezone)
    ticking = Ticking(scheduler)
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
    return ticking
