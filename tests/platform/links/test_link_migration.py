"""Migration 0007: links get their creator (from ``created_by``) and ``fields``; reversible.

Runs on a database of its own (the shared test database stays at head), of each kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from tests.platform.migrations import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "m0007") as db:
        yield db


async def columns(db: Database) -> set[str]:
    async with db.engine.connect() as connection:
        found = await connection.run_sync(
            lambda sync: {c["name"] for c in inspect(sync).get_columns("public_links")}
        )
    return found


async def test_0007_backfills_the_creator_and_is_reversible(scratch: Database) -> None:
    await upgrade(scratch, "0006")
    async with scratch.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, username, display_name, is_admin, attributes, "
                "created_at, updated_at) VALUES ('u1', 'desk', 'Desk', false, '{}', "
                "'2026-11-23 00:00:00', '2026-11-23 00:00:00')"
            )
        )
        for link, creator in (("l1", "desk"), ("l2", "someone-gone")):
            await connection.execute(
                text(
                    "INSERT INTO public_links (id, secret_hash, app, form, max_submissions, "
                    "submissions, created_at, created_by, expires_at) VALUES (:id, 'h', 'a', "
                    "'f', 1, 0, '2026-11-23 00:00:00', :by, '2026-11-30 00:00:00')"
                ),
                {"id": link, "by": creator},
            )
    await upgrade(scratch)
    async with scratch.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id, creator_id, fields FROM public_links ORDER BY id")
        )
        assert [tuple(row) for row in rows] == [("l1", "u1", None), ("l2", None, None)]
    assert {"creator_id", "fields"} <= await columns(scratch)
    await downgrade(scratch, "0006")
    assert not {"creator_id", "fields"} & await columns(scratch)
    await upgrade(scratch)
    assert {"creator_id", "fields"} <= await columns(scratch)
