"""Migration 0014: full history snapshots become reverse deltas and come back, exactly, on a
database of its own (the shared test database stays at head), of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from formloom.platform.models.base import JsonDocument, UtcDateTime
from formloom.platform.records.history import same, versions
from tests.platform.migrations import scratch_database

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

RECORDS = sa.table(
    "records",
    *(sa.column(name, sa.String()) for name in ("id", "app", "form", "created_by", "updated_by")),
    *(sa.column(name, sa.Integer()) for name in ("form_version", "version")),
    sa.column("data", JsonDocument),
    *(sa.column(name, UtcDateTime()) for name in ("created_at", "updated_at", "deleted_at")),
)
SNAPSHOTS = sa.table(
    "record_history",
    *(sa.column(name, sa.String()) for name in ("record_id", "app", "form", "operation", "actor")),
    *(sa.column(name, sa.Integer()) for name in ("version", "form_version")),
    sa.column("data", JsonDocument),
    sa.column("changed", JsonDocument),
    sa.column("at", UtcDateTime()),
)
DELTAS = sa.table(
    "record_history",
    sa.column("record_id", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("before", JsonDocument),
    sa.column("added", JsonDocument),
    sa.column("changed", JsonDocument),
)

#: Each record's versions as the old scheme stored them: (operation, data, changed).
VERSIONS: dict[str, list[tuple[str, dict[str, Any], list[str]]]] = {
    "a" * 24: [
        ("create", {"name": "Ann", "n": 1, "tags": ["x"]}, ["n", "name", "tags"]),
        ("update", {"name": "Ann", "n": 1.0, "tags": ["x"], "flag": True}, ["flag", "n"]),
        ("update", {"name": "Ann", "n": True, "tags": []}, ["flag", "n", "tags"]),
        ("migrate", {"label": "Ann", "n": True, "tags": [], "deep": {"k": [1, {"z": None}]}},
         ["deep", "label", "name"]),
        ("delete", {"label": "Ann", "n": True, "tags": [], "deep": {"k": [1, {"z": None}]}}, []),
    ],
    "b" * 24: [("create", {"name": "Bob"}, ["name"])],
    "c" * 24: [("create", {}, []), ("update", {"name": "Ü"}, ["name"])],
}  # fmt: skip


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "m0014") as db:
        yield db


async def snapshots(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            sa.select(SNAPSHOTS).order_by(SNAPSHOTS.c.record_id, SNAPSHOTS.c.version)
        )
        return [tuple(row) for row in rows]


async def test_0014_turns_snapshots_into_deltas_and_back(scratch: Database) -> None:
    await upgrade(scratch, "0013")
    async with scratch.engine.begin() as connection:
        for record_id, stored in VERSIONS.items():
            last = stored[-1]
            await connection.execute(
                RECORDS.insert().values(
                    id=record_id, app="a", form="f", form_version=1, version=len(stored),
                    data=last[1], created_at=AT, created_by="u", updated_at=AT, updated_by="u",
                    deleted_at=AT if last[0] == "delete" else None,
                )
            )  # fmt: skip
            await connection.execute(
                SNAPSHOTS.insert(),
                [
                    {"record_id": record_id, "app": "a", "form": "f", "version": number,
                     "form_version": 1, "operation": operation, "data": data,
                     "changed": changed, "actor": "u", "at": AT}
                    for number, (operation, data, changed) in enumerate(stored, 1)
                ],
            )  # fmt: skip
    old = await snapshots(scratch)

    await upgrade(scratch, "0014")
    async with scratch.engine.connect() as connection:
        columns = {c["name"] for c in await connection.run_sync(
            lambda sync: sa.inspect(sync).get_columns("record_history"))}  # fmt: skip
        assert "data" not in columns and {"before", "added"} <= columns
        rows = (
            await connection.execute(
                sa.select(DELTAS).order_by(DELTAS.c.record_id, DELTAS.c.version)
            )
        ).all()
        currents = dict((await connection.execute(sa.select(RECORDS.c.id, RECORDS.c.data))).all())
    by_record: dict[str, list[Any]] = {}
    for row in rows:
        by_record.setdefault(row.record_id, []).append(row)
    for record_id, stored in VERSIONS.items():
        rebuilt = versions(currents[record_id], by_record[record_id])
        assert same(rebuilt, [s[1] for s in stored])  # strictly: 1, 1.0 and true differ
    ann = [(row.before, row.added, row.changed) for row in by_record["a" * 24]]
    assert ann == [
        (None, None, None),  # a create: no delta, its changed keys are its data's
        ({"n": 1}, ["flag"], ["flag", "n"]),  # 1 -> 1.0 is a change of what is stored
        ({"n": 1.0, "tags": ["x"], "flag": True}, None, ["flag", "n", "tags"]),
        ({"name": "Ann"}, ["deep", "label"], ["deep", "label", "name"]),
        (None, None, []),
    ]
    # an empty create keeps its (empty) list or drops it: either reads back as []
    assert by_record["c" * 24][0].before is None

    await downgrade(scratch, "0013")
    back = await snapshots(scratch)
    assert same([list(row) for row in back], [list(row) for row in old])
    await upgrade(scratch)
