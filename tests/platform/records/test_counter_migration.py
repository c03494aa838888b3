"""Migration 0011: the auto-number counters' table comes and goes cleanly, the records
around it untouched. Runs on a database of its own (the shared test database stays at head),
of each kind."""

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
    async with scratch_database(request.param, tmp_path, "m0011") as db:
        yield db


async def tables(db: Database) -> dict[str, list[str]]:
    def read(sync: Connection) -> dict[str, list[str]]:
        found = inspect(sync)
        names = set(found.get_table_names())
        out = {"tables": sorted(names)}
        if "record_counters" in names:
            key = found.get_pk_constraint("record_counters")
            out["key"] = list(key["constrained_columns"])
        return out

    async with db.engine.connect() as connection:
        return await connection.run_sync(read)


async def test_0011_adds_the_counters_and_takes_them_away(scratch: Database) -> None:
    await upgrade(scratch, "0010")
    before = await tables(scratch)
    assert "record_counters" not in before["tables"]
    await upgrade(scratch, "0011")
    after = await tables(scratch)
    assert set(after["tables"]) == set(before["tables"]) | {"record_counters"}
    assert after["key"] == ["app", "form", "field", "period"]
    async with scratch.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO record_counters (app, form, field, period, value) "
                "VALUES ('desk', 'complaint', 'no', '2026', 41)"
            )
        )
    await downgrade(scratch, "0010")
    assert await tables(scratch) == before
    await upgrade(scratch)
    assert "record_counters" in (await tables(scratch))["tables"]
