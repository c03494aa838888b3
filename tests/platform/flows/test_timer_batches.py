"""The worker fires a batch of flow timers in one transaction without a savepoint each, and
on PostgreSQL writes what the batch's advances did in as few statements as it can
(``Worker._fire_batch``, ``FlowService.begin_batch``). These check the ways that can go
wrong, on SQLite and PostgreSQL:

* a timer that fails rolls its whole batch back; the batch is fired again one savepoint a
  timer, so the others fire exactly once and the failing one is retried later;
* two timers of one instance in one batch: the second advance starts from the first's state;
* a rule's timer later in the same batch writes a record an instance waits on: the watcher
  sees the instance as the batch's flow timer left it, and the batch does not write the
  instance's older state over the newer one afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from formloom.platform.apps import service as apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth.principal import Principal
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.flows.service import FlowService
from formloom.platform.models.automation import Task, Timer
from formloom.platform.models.flow import FlowEvent, FlowInstance
from formloom.platform.records.ids import new_id
from formloom.platform.records.service import RecordService
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f

APP = "batches"
ADMIN = Principal(username="admin", is_admin=True, via="system")
REVIEW = {"type": "user_task", "key": "review", "title": "Review {{ record.name }}",
          "assignee": {"role": "manager"}}  # fmt: skip


def _flow(key: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {"key": key, "form": "case", "start": {"roles": ["manager"]}, "nodes": nodes,
            "edges": [{"from": a, "to": b} for a, b in edges]}  # fmt: skip


FLOWS = [
    _flow(
        "pause",
        [
            {"type": "start", "key": "s"},
            {"type": "timer", "key": "t", "wait": {"after": "PT1H"}},
            REVIEW,
            {"type": "end", "key": "e"},
        ],
        [("s", "t"), ("t", "review"), ("review", "e")],
    ),  # fmt: skip
    # two timers due at once, joined: both fire in one batch
    _flow(
        "both",
        [
            {"type": "start", "key": "s"},
            {"type": "parallel", "key": "fork"},
            {"type": "timer", "key": "t1", "wait": {"after": "PT1H"}},
            {"type": "timer", "key": "t2", "wait": {"after": "PT1H"}},
            {"type": "parallel", "key": "join"},
            REVIEW,
            {"type": "end", "key": "e"},
        ],
        [
            ("s", "fork"),
            ("fork", "t1"),
            ("fork", "t2"),
            ("t1", "join"),
            ("t2", "join"),
            ("join", "review"),
            ("review", "e"),
        ],
    ),  # fmt: skip
    # a pause, then a wait for the record's status
    _flow(
        "until_done",
        [
            {"type": "start", "key": "s"},
            {"type": "timer", "key": "t", "wait": {"after": "PT1H"}},
            {"type": "wait", "key": "w", "until": {"==": [{"var": "record.status"}, "done"]}},
            REVIEW,
            {"type": "end", "key": "e"},
        ],
        [("s", "t"), ("t", "w"), ("w", "review"), ("review", "e")],
    ),  # fmt: skip
]
FLOWS[2]["edges"][2]["on"] = "met"
#: Sets the case's status at its ``finish_at`` (a rule's date timer).
FINISH = {
    "key": "finish",
    "on": {"form": "case", "field": "finish_at"},
    "then": [{"type": "set", "values": {"status": "done"}}],
}


@pytest.fixture
async def catalog(db: Database, clock: FixedClock) -> AsyncIterator[AppCatalog]:
    catalog = AppCatalog()
    case = f.form("case", f.field("name"), f.field("status"), f.field("finish_at", "datetime"))
    document = f.app(APP, case, roles=[{"key": "manager"}], flows=FLOWS, rules=[FINISH])
    async with db.transaction() as session:
        await apps.import_app(session, catalog, document, actor="admin", now=clock.now())
    yield catalog


@pytest.fixture
def worker(db: Database, catalog: AppCatalog, settings: Settings) -> Worker:
    return Worker(db, catalog, settings.model_copy(update={"timezone": "Asia/Shanghai"}))


async def _start(
    db: Database, catalog: AppCatalog, clock: FixedClock, flow: str, **data: Any
) -> str:
    async with db.transaction() as session:
        records = RecordService(session, catalog, now=clock.now(), principal=ADMIN)
        record = await records.create(APP, "case", {"name": "Case", **data})
        row = await FlowService(session, catalog, now=clock.now(), principal=ADMIN).start(
            APP, flow, record.id
        )
        return row.id


async def _rows(db: Database, statement: Any) -> list[Any]:
    async with db.transaction(write=False) as session:
        return list((await session.execute(statement)).all())


async def _open_tasks(db: Database) -> list[tuple[str, str]]:
    statement = select(Task.instance_id, Task.node).where(Task.status == "open")
    return sorted(await _rows(db, statement))


async def test_a_failing_timer_rolls_its_batch_back_and_the_others_fire_once(
    db: Database, catalog: AppCatalog, clock: FixedClock, worker: Worker
) -> None:
    instances = [await _start(db, catalog, clock, "pause") for _ in range(5)]
    # a timer the worker cannot fire (a kind a newer version wrote), due last in the batch:
    # every flow timer before it has been advanced in memory when it fails
    async with db.transaction() as session:
        await session.execute(
            insert(Timer),
            [{"id": new_id(), "key": "unknown:1", "kind": "from_the_future", "app": APP,
              "rule": "finish", "due_at": clock.now() + timedelta(hours=1, minutes=1),
              "payload": {}, "status": "pending", "attempts": 0, "created_at": clock.now()}],
        )  # fmt: skip
    at = clock.now() + timedelta(hours=2)
    report = await worker.fire_timers(at)
    assert (report.timers_fired, report.timers_failed) == (5, 1), report.to_dict()
    assert await _open_tasks(db) == sorted((i, "review") for i in instances)
    fired = await _rows(db, select(FlowEvent.instance_id).where(FlowEvent.kind == "timer_fired"))
    assert sorted(i for (i,) in fired) == sorted(instances)
    versions = await _rows(db, select(FlowInstance.lock_version))
    assert {v for (v,) in versions} == {2}
    [(status, attempts, error, due)] = await _rows(
        db,
        select(Timer.status, Timer.attempts, Timer.last_error, Timer.due_at).where(
            Timer.kind == "from_the_future"
        ),
    )
    assert (status, attempts) == ("pending", 1)
    assert "unknown timer kind" in (error or "")
    assert due.replace(tzinfo=due.tzinfo or UTC) > at  # retried after a backoff
    flow_timers = await _rows(db, select(Timer.status).where(Timer.kind == "flow"))
    assert [s for (s,) in flow_timers] == ["fired"] * 5
    # run again at the same instant: nothing is due, nothing fires twice
    again = await worker.fire_timers(at)
    assert (again.timers_fired, again.timers_failed) == (0, 0)
    assert len(await _open_tasks(db)) == 5


async def test_two_timers_of_one_instance_in_one_batch(
    db: Database, catalog: AppCatalog, clock: FixedClock, worker: Worker
) -> None:
    instance = await _start(db, catalog, clock, "both")
    report = await worker.fire_timers(clock.now() + timedelta(hours=2))
    assert report.timers_fired == 2, report.to_dict()
    assert await _open_tasks(db) == [(instance, "review")]
    [(state, lock_version)] = await _rows(db, select(FlowInstance.state, FlowInstance.lock_version))
    assert [token["node"] for token in state["tokens"]] == ["review"]
    assert lock_version == 3  # started, then one advance per timer


async def test_a_rule_timer_later_in_the_batch_sees_the_flow_timers_work(
    db: Database, catalog: AppCatalog, clock: FixedClock, worker: Worker
) -> None:
    finish = (clock.now() + timedelta(hours=1, minutes=1)).isoformat()
    instance = await _start(db, catalog, clock, "until_done", finish_at=finish)
    kinds = await _rows(db, select(Timer.kind, Timer.due_at).order_by(Timer.due_at))
    assert [kind for kind, _ in kinds] == ["flow", "date"]  # one batch, the flow's first
    report = await worker.fire_timers(clock.now() + timedelta(hours=2))
    assert report.timers_fired == 2, report.to_dict()
    # the rule set the status; the instance, at the wait by then, went on to the review
    assert await _open_tasks(db) == [(instance, "review")]
    [(state, lock_version)] = await _rows(db, select(FlowInstance.state, FlowInstance.lock_version))
    assert [token["node"] for token in state["tokens"]] == ["review"]
    assert lock_version == 3
