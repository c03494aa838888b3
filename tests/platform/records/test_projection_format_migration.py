"""Migration 0015: typed projections' ``format`` comes with 1 for the generations already
built, and goes taking the generations of a later format with it (their tables), leaving
the others and the records alone. Runs on a database of its own, of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from tests.platform.migrations import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "m0015") as db:
        yield db


async def catalog(db: Database) -> tuple[list[str], list[str], list[tuple[object, ...]]]:
    def read(sync: Connection) -> tuple[list[str], list[str]]:
        found = inspect(sync)
        columns = [column["name"] for column in found.get_columns("record_projections")]
        tables = sorted(name for name in found.get_table_names() if name.startswith("fp_"))
        return columns, tables

    async with db.engine.connect() as connection:
        columns, tables = await connection.run_sync(read)
        chosen = ", format" if "format" in columns else ""
        rows = (
            await connection.execute(
                text(f"SELECT table_name, state{chosen} FROM record_projections ORDER BY 1")
            )
        ).all()
    return columns, tables, [tuple(row) for row in rows]


async def test_0015_adds_the_format_and_takes_later_generations_away(scratch: Database) -> None:
    await upgrade(scratch, "0014")
    async with scratch.engine.begin() as connection:
        for name, state in (("fp_0a", "retired"), ("fp_0b", "ready")):
            await connection.execute(text(f"CREATE TABLE {name} (_id VARCHAR(32))"))
            await connection.execute(
                text(
                    "INSERT INTO record_projections (table_name, app, form, columns, state, "
                    "created_at, updated_at) VALUES (:name, 'desk', 'visit', '{}', :state, "
                    "'2026-12-06 00:00:00', '2026-12-06 00:00:00')"
                ),
                {"name": name, "state": state},
            )
    columns_before, tables_before, _ = await catalog(scratch)
    await upgrade(scratch, "0015")
    columns, tables, rows = await catalog(scratch)
    assert columns == [*columns_before, "format"]
    assert rows == [("fp_0a", "retired", 1), ("fp_0b", "ready", 1)]
    async with scratch.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE fp_0c (_id VARCHAR(32))"))
        await connection.execute(
            text(
                "INSERT INTO record_projections (table_name, app, form, columns, state, "
                "created_at, updated_at, format) VALUES ('fp_0c', 'desk', 'visit', '{}', "
                "'building', '2026-12-06 00:00:00', '2026-12-06 00:00:00', 2)"
            )
        )
    await downgrade(scratch, "0014")
    columns, tables, rows = await catalog(scratch)
    assert columns == columns_before and tables == tables_before == ["fp_0a", "fp_0b"]
    assert rows == [("fp_0a", "retired"), ("fp_0b", "ready")]
    await upgrade(scratch)
    assert (await catalog(scratch))[2] == [("fp_0a", "retired", 1), ("fp_0b", "ready", 1)]
