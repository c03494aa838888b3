"""SQLite writers of one process take turns in the order they come (issue 19, item 12).

SQLite allows one writer; a writer that found the lock taken used to wait in SQLite's busy
handler, polling with sleeps of up to 100 ms in no particular order, which made the p99 of a
mixed load 25-30x its p50. Write units now queue on an in-process lock first. Here SQLite's
busy handler is switched off (``busy_timeout=0``), so any writer that still met another one
inside SQLite would fail at once with "database is locked".
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from formloom.platform.db import Database


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'writers.db'}")

    @event.listens_for(database.engine.sync_engine, "connect")
    def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout=0")
        cursor.close()

    async with database.transaction() as session:
        await session.execute(text("CREATE TABLE writes (n INTEGER NOT NULL)"))
    yield database
    await database.dispose()


async def test_writers_queue_first_come_first_served(db: Database) -> None:
    entered: list[int] = []

    async def writer(n: int) -> None:
        await asyncio.sleep(n * 0.002)  # arrive in the order of n
        async with db.transaction() as session:
            entered.append(n)
            await session.execute(text("INSERT INTO writes (n) VALUES (:n)"), {"n": n})
            await asyncio.sleep(0.01)  # hold the database while the others arrive

    await asyncio.gather(*(writer(n) for n in range(8)))
    assert entered == list(range(8))
    async with db.transaction(write=False) as session:
        assert (await session.execute(text("SELECT count(*) FROM writes"))).scalar_one() == 8


async def test_readers_do_not_wait_for_the_writer(db: Database) -> None:
    writing = asyncio.Event()
    done = asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as session:
            await session.execute(text("INSERT INTO writes (n) VALUES (1)"))
            writing.set()
            await done.wait()

    task = asyncio.create_task(writer())
    await writing.wait()
    async with db.transaction(write=False) as session:
        # the writer has not committed: the reader sees the table as it was, at once
        assert (await session.execute(text("SELECT count(*) FROM writes"))).scalar_one() == 0
    done.set()
    await task


async def test_a_write_unit_inside_another_does_not_wait_for_itself(db: Database) -> None:
    """The same task already holds the turn: the inner unit goes straight to SQLite, which
    refuses a second writer as it always did, instead of hanging on the lock."""

    async def nested() -> None:
        async with db.transaction() as outer:
            await outer.execute(text("INSERT INTO writes (n) VALUES (1)"))
            async with db.transaction() as inner:
                await inner.execute(text("INSERT INTO writes (n) VALUES (2)"))

    with pytest.raises(OperationalError, match="locked"):
        await asyncio.wait_for(nested(), timeout=10)
