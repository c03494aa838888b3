"""What an advance writes, on SQLite and PostgreSQL, where one advance does several things at
once: a task opened and withdrawn in the same advance, a subflow that starts and ends inside
its parent's advances, a task reassigned by an escalation the worker fires. The service
queues the rows an advance adds and writes them together at its end (on PostgreSQL in one
statement with the instance's update); these check that every row lands, in the state the
rest of the advance left it in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from formloom.platform.apps import service as apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth.principal import Principal
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.flows.service import FlowService
from formloom.platform.models import Record
from formloom.platform.models.automation import Task
from formloom.platform.models.flow import FlowEvent, FlowInstance, TaskCandidate
from formloom.platform.records.ids import new_id
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f

APP = "writes"
ADMIN = Principal(username="admin", is_admin=True, via="system")


def _task(key: str, **extra: Any) -> dict[str, Any]:
    return {"type": "user_task", "key": key, "title": f"{key} {{{{ record.name }}}}",
            "assignee": {"role": "manager"}, **extra}  # fmt: skip


def _flow(key: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "key": key,
        "form": "case",
        "start": {"roles": ["manager"]},
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in edges],
    }


FLOWS = [
    # the task opens and the terminate withdraws it in the same advance
    _flow(
        "race",
        [
            {"type": "start", "key": "s"},
            {"type": "parallel", "key": "fork"},
            _task("a"),
            {"type": "terminate", "key": "stop"},
            {"type": "end", "key": "e"},
        ],
        [("s", "fork"), ("fork", "a"), ("fork", "stop"), ("a", "e")],
    ),  # fmt: skip
    _flow(
        "parent",
        [
            {"type": "start", "key": "s"},
            {"type": "subflow", "key": "sub", "flow": "child"},
            _task("after"),
            {"type": "end", "key": "e"},
        ],
        [("s", "sub"), ("sub", "after"), ("after", "e")],
    ),  # fmt: skip
    _flow(
        "child",
        [{"type": "start", "key": "s"}, _task("inner"), {"type": "end", "key": "e"}],
        [("s", "inner"), ("inner", "e")],
    ),
    _flow(
        "escalate",
        [
            {"type": "start", "key": "s"},
            _task(
                "late",
                due={"after": "PT1H"},
                escalations=[{"action": "reassign", "to": {"user": "boss"}}],
            ),
            {"type": "end", "key": "e"},
        ],
        [("s", "late"), ("late", "e")],
    ),  # fmt: skip
]


@pytest.fixture
async def catalog(db: Database, clock: FixedClock) -> AsyncIterator[AppCatalog]:
    catalog = AppCatalog()
    document = f.app(APP, f.form("case", f.field("name")), roles=[{"key": "manager"}],
                     flows=FLOWS)  # fmt: skip
    async with db.transaction() as session:
        await apps.import_app(session, catalog, document, actor="admin", now=clock.now())
    yield catalog


async def _start(db: Database, catalog: AppCatalog, clock: FixedClock, flow: str) -> str:
    record_id = new_id()
    now = clock.now()
    async with db.transaction() as session:
        await session.execute(
            insert(Record),
            [{"id": record_id, "app": APP, "form": "case", "form_version": 1,
              "data": {"name": "Case 1"}, "version": 1, "created_at": now, "created_by": "t",
              "updated_at": now, "updated_by": "t"}],
        )  # fmt: skip
        row = await FlowService(session, catalog, now=now, principal=ADMIN).start(
            APP, flow, record_id
        )
        return row.id


async def _rows(db: Database, statement: Any) -> list[Any]:
    async with db.transaction(write=False) as session:
        return list((await session.execute(statement)).all())


async def test_a_task_opened_and_withdrawn_in_one_advance(
    db: Database, catalog: AppCatalog, clock: FixedClock
) -> None:
    instance = await _start(db, catalog, clock, "race")
    [(status, lock_version)] = await _rows(
        db, select(FlowInstance.status, FlowInstance.lock_version)
    )
    assert (status, lock_version) == ("terminated", 1)
    [(task_id, task_status, title)] = await _rows(db, select(Task.id, Task.status, Task.title))
    assert (task_status, title) == ("cancelled", "a Case 1")
    # the candidate row stays, marked as a closed task's (the inbox's index skips it)
    who = select(TaskCandidate.kind, TaskCandidate.value, TaskCandidate.task_open)
    assert await _rows(db, who) == [("role", "manager", False)]
    events = await _rows(
        db,
        select(FlowEvent.kind, FlowEvent.task_id)
        .where(FlowEvent.instance_id == instance)
        .order_by(FlowEvent.id),
    )
    assert ("task_opened", task_id) in events and ("task_closed", task_id) in events
    assert events[0] == ("started", None) and events[-1] == ("instance_ended", None)


async def test_a_subflow_starts_and_ends_inside_its_parents_advances(
    db: Database, catalog: AppCatalog, clock: FixedClock
) -> None:
    parent = await _start(db, catalog, clock, "parent")
    [(child, child_status)] = await _rows(
        db, select(FlowInstance.id, FlowInstance.status).where(FlowInstance.parent_id == parent)
    )
    assert child_status == "running"
    [(inner, node)] = await _rows(db, select(Task.id, Task.node).where(Task.status == "open"))
    assert node == "inner"
    async with db.transaction() as session:
        service = FlowService(session, catalog, now=clock.now(), principal=ADMIN)
        await service.complete(inner, None, "done it", None)
    states = dict(await _rows(db, select(FlowInstance.id, FlowInstance.status)))
    assert states == {parent: "running", child: "completed"}
    [(node, instance_id)] = await _rows(
        db, select(Task.node, Task.instance_id).where(Task.status == "open")
    )
    assert (node, instance_id) == ("after", parent)
    [(state, lock_version)] = await _rows(
        db, select(FlowInstance.state, FlowInstance.lock_version).where(FlowInstance.id == parent)
    )
    assert [token["node"] for token in state["tokens"]] == ["after"]
    assert lock_version == 2
    [(outcome, comment, by)] = await _rows(
        db, select(Task.outcome, Task.comment, Task.completed_by).where(Task.id == inner)
    )
    assert (outcome, comment, by) == ("done", "done it", "admin")
    [(after,)] = await _rows(db, select(Task.id).where(Task.status == "open"))
    flags = await _rows(db, select(TaskCandidate.task_id, TaskCandidate.task_open))
    assert dict(flags) == {inner: False, after: True}


async def test_an_escalation_reassigns_the_task(
    db: Database, catalog: AppCatalog, clock: FixedClock, settings: Settings
) -> None:
    instance = await _start(db, catalog, clock, "escalate")
    worker = Worker(db, catalog, settings.model_copy(update={"timezone": "Asia/Shanghai"}))
    report = await worker.run_once(clock.now() + timedelta(hours=2))
    assert report.timers_fired == 1, report.to_dict()
    [(task_id, assignee, role)] = await _rows(db, select(Task.id, Task.assignee, Task.role))
    assert (assignee, role) == ("boss", None)
    who = select(TaskCandidate.kind, TaskCandidate.value, TaskCandidate.task_open)
    assert await _rows(db, who) == [("user", "boss", True)]
    kinds = [
        kind
        for (kind,) in await _rows(
            db,
            select(FlowEvent.kind).where(FlowEvent.instance_id == instance).order_by(FlowEvent.id),
        )
    ]
    assert kinds[-2:] == ["timer_fired", "task_reassigned"]
