"""Processes starting at once on a new PostgreSQL database (``formloom serve`` and two
workers) upgrade it once between them: the advisory lock in ``migrate.upgrade`` makes the
others wait, then find nothing to do, instead of failing on tables another just made."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import text

from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from tests.conftest import POSTGRES_URL, _drop_postgres_database, _fresh_postgres_database


@pytest.mark.postgres
async def test_three_processes_upgrade_a_new_database_at_once() -> None:
    if os.environ.get("FORMLOOM_TEST_POSTGRES") == "skip":
        pytest.skip("PostgreSQL disabled with FORMLOOM_TEST_POSTGRES=skip")
    url = f"{POSTGRES_URL}_upgrade_race"
    await _fresh_postgres_database(url)
    databases = [Database(url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade(db) for db in databases))
        async with databases[0].engine.connect() as connection:
            versions = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).all()
        assert len(versions) == 1
    finally:
        for db in databases:
            await db.dispose()
        await _drop_postgres_database(url)
