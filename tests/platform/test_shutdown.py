"""A service stops cleanly: the worker's tick in flight finishes before the database closes
(or, past a grace period, is cancelled and unwound first), and background projection fills
are cancelled and unwound — nothing runs on a closed database, nothing keeps the process
from exiting.

(Found as a hung test run: APScheduler's shutdown cancels a running coroutine job and returns
at once, and the service then closed its database under a tick still rolling back.)"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from formloom.platform.api import create_app
from formloom.platform.clock import FixedClock, SystemClock
from formloom.platform.records import projections
from formloom.platform.rules import scheduler
from formloom.platform.rules.worker import Report, Worker
from formloom.platform.settings import Settings


def _ticking(settings: Settings) -> Settings:
    return settings.model_copy(update={"worker_in_serve": True, "worker_tick_seconds": 60})


#: The first tick is due at start-up on the service's clock: a real one, so that it runs
#: (a fixed clock's past instant is a missed run APScheduler skips)
NOW = SystemClock("UTC")


async def test_a_tick_in_flight_finishes_before_the_database_closes(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    started = asyncio.Event()

    async def slow(self: Worker, now: datetime) -> Report:
        seen.append("started")
        started.set()
        await asyncio.sleep(0.3)
        async with self.db.transaction(write=False) as session:  # the database still open
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
        seen.append("finished")
        return Report()

    monkeypatch.setattr(Worker, "run_once", slow)
    app = create_app(_ticking(settings), clock=NOW)
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(started.wait(), 5)  # the first tick runs at start-up
    assert seen == ["started", "finished"]


async def test_a_tick_past_the_grace_period_is_cancelled_and_unwound(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    unwound: list[str] = []
    started = asyncio.Event()

    async def stuck(self: Worker, now: datetime) -> Report:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.append("unwound")
        return Report()

    monkeypatch.setattr(Worker, "run_once", stuck)
    monkeypatch.setattr(scheduler, "STOP_GRACE_SECONDS", 0.2)
    app = create_app(_ticking(settings), clock=NOW)
    began = asyncio.get_running_loop().time()
    async with app.router.lifespan_context(app):
        await asyncio.wait_for(started.wait(), 5)
    assert unwound == ["unwound"]
    assert asyncio.get_running_loop().time() - began < 5


async def test_background_fills_are_cancelled_and_unwound_at_shutdown(
    settings: Settings, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    unwound: list[str] = []
    started = asyncio.Event()

    async def endless(database: Any, names: list[str], *, now: datetime) -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.append(",".join(names))

    monkeypatch.setattr(projections, "fill", endless)
    app = create_app(settings, clock=clock)
    async with app.router.lifespan_context(app):
        projections.start_filling(app.state.platform.db, ["fp_x"], now=clock.now())
        await asyncio.wait_for(started.wait(), 5)
    assert unwound == ["fp_x"]
    assert not [task for task in projections._RUNNING if not task.done()]
