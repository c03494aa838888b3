"""Flow timers under several worker processes, and a worker killed mid-batch (PostgreSQL).

Instances of a flow ``start -> timer PT1H -> review (user task) -> end`` are started through
the flow service in a few transactions; then ``formloom worker --once --now <+2h>``
processes fire their timers. Two at once must fire every timer exactly once (they claim
with ``SKIP LOCKED``); one killed with SIGKILL part-way must lose nothing and leave no
instance half-advanced (each timer fires in the claiming transaction, with the advance it
causes). An instance is consistent when its one token waits at ``review`` holding exactly
the key of its one open task, its timer is fired and its timeline says so once — or, before
its timer fired, when it still waits at the timer with no task.

PostgreSQL only (SQLite has one writer: nothing to race); ``-k "not postgresql"`` and
``FORMLOOM_TEST_POSTGRES=skip`` leave these out.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text

from formloom.platform.apps import service as apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth.principal import Principal
from formloom.platform.db import Database
from formloom.platform.flows.service import FlowService
from formloom.platform.models import Record
from formloom.platform.models.automation import Task, Timer
from formloom.platform.models.flow import FlowEvent, FlowInstance
from formloom.platform.records.ids import new_id
from tests import factories as f
from tests.conftest import FIXED_NOW

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.parametrize("database_url", ["postgresql"], indirect=True),
]

APP = "waits"
FLOW = {
    "key": "wait_review",
    "form": "case",
    "start": {"roles": ["manager"]},
    "nodes": [
        {"type": "start", "key": "begin"},
        {"type": "timer", "key": "pause", "wait": {"after": "PT1H"}},
        {
            "type": "user_task",
            "key": "review",
            "title": "Review {{ record.name }}",
            "assignee": {"role": "manager"},
        },
        {"type": "end", "key": "done"},
    ],  # fmt: skip
    "edges": [
        {"from": "begin", "to": "pause"},
        {"from": "pause", "to": "review"},
        {"from": "review", "to": "done"},
    ],
}
SYSTEM = Principal(username="setup", is_admin=True, via="system")
#: The instant the workers act at: every timer (due an hour after FIXED_NOW) is due.
LATER = (FIXED_NOW + timedelta(hours=2)).isoformat()


async def start_instances(db: Database, count: int, *, per_transaction: int = 500) -> None:
    """``count`` records and an instance of the flow on each, through the flow service."""
    catalog = AppCatalog()
    document = f.app(APP, f.form("case", f.field("name")), roles=[{"key": "manager"}],
                     flows=[FLOW])  # fmt: skip
    ids = [new_id() for _ in range(count)]
    async with db.transaction() as session:
        await apps.import_app(session, catalog, document, actor="setup", now=FIXED_NOW)
        await session.execute(
            insert(Record),
            [{"id": record_id, "app": APP, "form": "case", "form_version": 1,
              "data": {"name": f"Case {number}"}, "version": 1, "created_at": FIXED_NOW,
              "created_by": "setup", "updated_at": FIXED_NOW, "updated_by": "setup"}
             for number, record_id in enumerate(ids)],
        )  # fmt: skip
    for first in range(0, count, per_transaction):
        async with db.transaction() as session:
            service = FlowService(session, catalog, now=FIXED_NOW, principal=SYSTEM)
            for record_id in ids[first : first + per_transaction]:
                await service.start(APP, "wait_review", record_id, by_rule=True)


def worker_command(url: str) -> tuple[list[str], dict[str, str]]:
    command = [sys.executable, "-m", "formloom.platform.cli", "worker", "--once", "--now", LATER]
    env = {**os.environ, "FORMLOOM_DATABASE_URL": url, "FORMLOOM_TIMEZONE": "Asia/Shanghai"}
    return command, env


async def run_workers(url: str, count: int) -> list[dict[str, Any]]:
    """``count`` worker processes at once; their reports."""
    command, env = worker_command(url)
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(count)
    ]
    outputs = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0] * count, outputs
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


async def scalar(db: Database, statement: Any) -> Any:
    async with db.transaction(write=False) as session:
        return (await session.execute(statement)).scalar_one()


async def check_instances(db: Database, count: int) -> Counter[str]:
    """Every instance is before its timer or after it, never in between; returns how many
    are in each case ("waiting", "advanced")."""
    async with db.transaction(write=False) as session:
        instances = (
            await session.execute(
                select(FlowInstance.id, FlowInstance.state, FlowInstance.lock_version,
                       FlowInstance.status)
            )
        ).all()  # fmt: skip
        tasks = {
            source_key: (instance_id, status, node)
            for source_key, instance_id, status, node in (
                await session.execute(
                    select(Task.source_key, Task.instance_id, Task.status, Task.node)
                )
            ).all()
        }
        timers = {
            payload["instance"]: (status, attempts)
            for payload, status, attempts in (
                await session.execute(select(Timer.payload, Timer.status, Timer.attempts))
            ).all()
        }
        fired_events = Counter(
            (
                await session.scalars(
                    select(FlowEvent.instance_id).where(FlowEvent.kind == "timer_fired")
                )
            ).all()
        )
    assert len(instances) == count
    assert len(timers) == count  # one timer per instance, however often it was claimed
    seen: Counter[str] = Counter()
    owned: set[str] = set()
    for instance_id, state, lock_version, status in instances:
        assert status == "running"
        [token] = state["tokens"]
        if token["node"] == "pause":  # its timer has not fired: no task, nothing recorded
            assert lock_version == 1 and token["tasks"] == {}
            assert timers[instance_id] == ("pending", 0)
            assert fired_events[instance_id] == 0
            seen["waiting"] += 1
            continue
        assert token["node"] == "review" and token["timers"] == {}
        [key] = token["tasks"]
        assert tasks[f"flow:{key}"] == (instance_id, "open", "review")
        owned.add(f"flow:{key}")
        assert lock_version == 2
        assert timers[instance_id] == ("fired", 0)
        assert fired_events[instance_id] == 1
        seen["advanced"] += 1
    assert set(tasks) == owned  # no task that no token holds (none created twice)
    return seen


async def test_two_worker_processes_advance_1000_instances_exactly_once_on_postgresql(
    db: Database, database_url: str
) -> None:
    await start_instances(db, 1000)
    assert await scalar(db, select(func.count()).select_from(Timer)) == 1000
    began = time.perf_counter()
    reports = await run_workers(database_url, 2)
    took = time.perf_counter() - began
    fired = [report["timers_fired"] for report in reports]
    assert sum(fired) == 1000, reports
    assert all(r["timers_failed"] == 0 and r["timers_dead"] == 0 for r in reports), reports
    assert await check_instances(db, 1000) == Counter(advanced=1000)
    tasks = select(func.count(), func.count(func.distinct(Task.source_key))).select_from(Task)
    async with db.transaction(write=False) as session:
        total, distinct = (await session.execute(tasks)).one()
    assert (total, distinct) == (1000, 1000)
    print(f"two workers fired {fired} timers in {took:.1f} s (process start-up included)")


#: Another session of the test database inside a transaction: the worker firing a batch.
IN_A_BATCH = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid() AND xact_start IS NOT NULL"
)


async def _wait_for_fired(db: Database, at_least: int, process: Any, timeout: float) -> int:
    """Until ``at_least`` timers are fired (committed) and the worker is inside its next
    batch's transaction."""
    deadline = time.monotonic() + timeout
    fired = 0
    while time.monotonic() < deadline and process.returncode is None:
        fired = await scalar(
            db, select(func.count()).select_from(Timer).where(Timer.status == "fired")
        )
        if fired >= at_least and await scalar(db, IN_A_BATCH):
            return int(fired)
        await asyncio.sleep(0.01)
    raise AssertionError(f"the worker fired {fired} timers, not {at_least}, in {timeout} s")


async def _wait_for_other_backends(db: Database, timeout: float = 10) -> None:
    """Until PostgreSQL has ended the killed worker's session (and released its locks)."""
    busy = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND pid <> pg_backend_pid() AND state NOT IN ('idle')"
    )
    deadline = time.monotonic() + timeout
    while await scalar(db, busy) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_batch_loses_nothing_on_postgresql(
    db: Database, database_url: str
) -> None:
    total = 1500
    began = time.perf_counter()
    await start_instances(db, total)
    started = time.perf_counter()
    command, env = worker_command(database_url)
    doomed = await asyncio.create_subprocess_exec(
        *command, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        # two batches of 100 committed, the next one under way when the worker dies
        await _wait_for_fired(db, 200, doomed, timeout=30)
    finally:
        if doomed.returncode is None:
            doomed.send_signal(signal.SIGKILL)
        await doomed.wait()
    assert doomed.returncode == -signal.SIGKILL
    await _wait_for_other_backends(db)

    # what the dead worker committed is whole; what it was doing is gone without a trace
    seen = await check_instances(db, total)
    assert 200 <= seen["advanced"] < total, seen
    assert seen["advanced"] % 100 == 0, seen  # whole batches only
    assert await scalar(db, select(func.count()).select_from(Task)) == seen["advanced"]

    killed = time.perf_counter()
    [report] = await run_workers(database_url, 1)
    assert report["timers_fired"] == total - seen["advanced"], report
    assert report["timers_failed"] == 0 and report["timers_dead"] == 0, report
    assert await check_instances(db, total) == Counter(advanced=total)
    print(
        f"killed after {seen['advanced']} fired; set-up {started - began:.1f} s, until the "
        f"kill {killed - started:.1f} s, the next worker {time.perf_counter() - killed:.1f} s"
    )
