"""A database of its own for a migration's test, of each kind (the shared test database
stays at head): a file in the test's folder on SQLite, a fresh database on PostgreSQL,
dropped afterwards."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from formloom.platform.db import Database
from tests.conftest import POSTGRES_URL, _drop_postgres_database, _fresh_postgres_database


@asynccontextmanager
async def scratch_database(kind: str, tmp_path: Path, name: str) -> AsyncIterator[Database]:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'migration.db'}"
    else:
        if os.environ.get("FORMLOOM_TEST_POSTGRES") == "skip":
            pytest.skip("PostgreSQL disabled with FORMLOOM_TEST_POSTGRES=skip")
        url = f"{POSTGRES_URL}_{name}"
        await _fresh_postgres_database(url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()
        if kind == "postgresql":
            await _drop_postgres_database(url)
