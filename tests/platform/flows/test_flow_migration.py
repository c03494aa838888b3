"""Migration 0008: the flow tables and the flow columns of ``tasks`` come and go cleanly.

Upgrading from 0007 with rules' tasks in place gives each its candidates (its ``role`` and
its ``assignee`` become ``task_candidates`` rows) and keeps the tasks as they were;
downgrading drops the three tables, the eight columns and their indexes and keeps the
tasks (and the indexes 0006 made). Runs on a database of its own (the shared test database
stays at head), of each kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from tests.platform.migrations import scratch_database

FLOW_TABLES = {"flow_instances", "flow_events", "task_candidates"}
FLOW_COLUMNS = {
    "instance_id", "node", "due_at", "claim_required", "claimed_at", "outcome", "comment", "step",
}  # fmt: skip
FLOW_INDEXES = {"ix_tasks_instance_id", "ix_tasks_assignee_status"}
# the rules' tasks at 0007: (id, role, assignee, status)
RULE_TASKS = [
    ("t1", "doctor", None, "open"),
    ("t2", None, "desk", "open"),
    ("t3", "nurse", "nurse1", "done"),
    ("t4", None, None, "open"),
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "m0008") as db:
        yield db


async def schema(db: Database) -> dict[str, Any]:
    """The tables, the columns of ``tasks``, its indexes and its unique constraints."""

    def read(sync: Connection) -> dict[str, Any]:
        found = inspect(sync)
        return {
            "tables": set(found.get_table_names()),
            "columns": {c["name"] for c in found.get_columns("tasks")},
            "indexes": {i["name"] for i in found.get_indexes("tasks")},
            "unique": [u["column_names"] for u in found.get_unique_constraints("tasks")],
        }

    async with db.engine.connect() as connection:
        return await connection.run_sync(read)


async def tasks(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id, role, assignee, status, title FROM tasks ORDER BY id")
        )
        return [tuple(row) for row in rows]


async def triggers(db: Database) -> set[str]:
    """The triggers on ``tasks`` (and, on PostgreSQL, the flow functions)."""
    async with db.engine.connect() as connection:
        if db.dialect == "postgresql":
            found = await connection.execute(
                text(
                    "SELECT tgname FROM pg_trigger WHERE tgrelid = 'tasks'::regclass "
                    "AND NOT tgisinternal UNION SELECT proname FROM pg_proc "
                    "WHERE proname = 'task_candidates_follow_status'"
                )
            )
        else:
            found = await connection.execute(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks'")
            )
        return {name for (name,) in found}


async def candidates(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT task_id, kind, value, app, task_open FROM task_candidates "
                "ORDER BY task_id, kind"
            )
        )
        return [(*row[:4], bool(row[4])) for row in rows]


async def test_0008_gives_rule_tasks_candidates_and_is_reversible(scratch: Database) -> None:
    await upgrade(scratch, "0007")
    before = await schema(scratch)
    assert not FLOW_TABLES & before["tables"]
    assert not FLOW_COLUMNS & before["columns"]
    async with scratch.engine.begin() as connection:
        for task_id, role, assignee, status in RULE_TASKS:
            await connection.execute(
                text(
                    "INSERT INTO tasks (id, app, title, role, assignee, form, record_id, rule, "
                    "source_key, status, created_at) VALUES (:id, 'ward', :title, :role, "
                    ":assignee, 'patient', 'r1', 'call_back', :key, :status, "
                    "'2026-11-23 00:00:00')"
                ),
                {"id": task_id, "title": f"Task {task_id}", "role": role, "assignee": assignee,
                 "key": f"rule:{task_id}", "status": status},
            )  # fmt: skip
    kept = await tasks(scratch)

    await upgrade(scratch, "0008")
    after = await schema(scratch)
    assert after["tables"] >= FLOW_TABLES
    assert after["columns"] == before["columns"] | FLOW_COLUMNS
    assert after["indexes"] >= FLOW_INDEXES
    # the done task's candidates are not open ones
    assert await candidates(scratch) == [
        ("t1", "role", "doctor", "ward", True),
        ("t2", "user", "desk", "ward", True),
        ("t3", "role", "nurse", "ward", False),
        ("t3", "user", "nurse1", "ward", False),
    ]
    async with scratch.engine.connect() as connection:
        flow_columns = await connection.execute(
            text(
                "SELECT id, instance_id, node, due_at, claim_required, claimed_at, outcome, "
                "comment, step FROM tasks ORDER BY id"
            )
        )
        assert [tuple(row) for row in flow_columns] == [
            (task_id, None, None, None, False, None, None, None, None) for task_id, *_ in RULE_TASKS
        ]
    assert await tasks(scratch) == kept

    # the trigger keeps task_open with the task's status
    assert "task_candidates_follow_status" in await triggers(scratch)
    async with scratch.engine.begin() as connection:
        await connection.execute(text("UPDATE tasks SET status = 'cancelled' WHERE id = 't1'"))
        await connection.execute(text("UPDATE tasks SET status = 'open' WHERE id = 't3'"))
        await connection.execute(text("UPDATE tasks SET title = 'Renamed' WHERE id = 't2'"))
    assert [(row[0], row[4]) for row in await candidates(scratch)] == [
        ("t1", False), ("t2", True), ("t3", True), ("t3", True),
    ]  # fmt: skip
    async with scratch.engine.begin() as connection:
        await connection.execute(text("UPDATE tasks SET status = 'done' WHERE id = 't3'"))
        await connection.execute(text("UPDATE tasks SET status = 'open' WHERE id = 't1'"))
    kept = await tasks(scratch)

    await downgrade(scratch, "0007")
    back = await schema(scratch)
    assert back["tables"] == before["tables"]
    assert back["columns"] == before["columns"]
    assert back["indexes"] == before["indexes"]
    assert not FLOW_INDEXES & back["indexes"]
    assert back["unique"] == before["unique"] == [["source_key"]]
    assert await tasks(scratch) == kept
    assert await triggers(scratch) == set()

    # and up again: the same candidates, nothing left over from the first time
    await upgrade(scratch, "0008")
    assert [(row[0], row[4]) for row in await candidates(scratch)] == [
        ("t1", True), ("t2", True), ("t3", False), ("t3", False),
    ]  # fmt: skip
    # later revisions leave the trigger in place (0009 adds a column to tasks)
    await upgrade(scratch)
    assert "task_candidates_follow_status" in await triggers(scratch)
