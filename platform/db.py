"""The database: one async engine per process and the unit of work.

A unit of work (a request, a CLI command) opens one session and commits once at the end;
services and repositories only ``flush()``. On SQLite, write units begin with
``BEGIN IMMEDIATE`` so that two writers queue on the lock instead of failing when a read
transaction tries to upgrade; WAL lets readers go on while one writer writes.

SQLite takes one writer at a time, and a writer that finds the lock taken waits in SQLite's
busy handler, which polls with growing sleeps (up to 100 ms between tries) in no order. Under
load that, not the work, made the tail: 8 clients at 30 % writes, p99 25-30x the p50. So
within a process, write units also take their turn on an ``asyncio.Lock`` before they
begin: they queue first come, first served, and each finds the database free when its turn
comes. The busy handler (``busy_timeout``) is left for writers in other processes. A write
unit opened inside another one (the same task already holds the turn) does not wait for
itself: it goes straight to SQLite, as before.

A unit of work also writes what must follow its success (:func:`after_success`): the audit
rows of sensitive reads, which the record service hands to the unit, not to its caller, so
that no entry point can forget them. A write unit commits them with its own rows; a read
unit, which writes nothing, commits them in a short write unit of their own once the read
has succeeded, before the answer leaves. A unit that fails writes none of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

WRITE_OPTION = "formloom_write"
#: Where a session keeps the rows its unit writes once it has succeeded (``Session.info``).
_AFTER_SUCCESS = "formloom_after_success"

#: Whether the running task holds its database's write turn (SQLite; see the module doc).
_holding_turn: ContextVar[bool] = ContextVar("formloom_holding_write_turn", default=False)


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})
        _configure_sqlite(engine)
        return engine
    return create_async_engine(url, echo=echo, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so "begin" below decides the mode.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def after_success(session: AsyncSession) -> list[Any]:
    """The rows (ORM objects, not yet added) that ``session``'s unit of work writes once it
    has succeeded — in the unit itself when it writes, else in a write unit of their own."""
    pending: list[Any] = session.info.setdefault(_AFTER_SUCCESS, [])
    return pending


class Database:
    """The engine plus the way to open units of work on it."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_engine(url, echo=echo)
        self.dialect = self.engine.dialect.name
        self._writer = self.engine.execution_options(**{WRITE_OPTION: True})
        # One lock per event loop: an asyncio.Lock belongs to the loop it is first used on.
        self._turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def _write_turn(self) -> asyncio.Lock | None:
        """The lock SQLite writers of this process queue on (``None``: no need to queue)."""
        if self.dialect != "sqlite" or _holding_turn.get():
            return None
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            self._turns = {
                known: lock for known, lock in self._turns.items() if not known.is_closed()
            }
            turn = self._turns[loop] = asyncio.Lock()
        return turn

    @asynccontextmanager
    async def transaction(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends normally, rolls back otherwise."""
        turn = self._write_turn() if write else None
        if turn is None:
            async with self._unit(write) as session:
                yield session
            return
        async with turn:
            holding = _holding_turn.set(True)
            try:
                async with self._unit(write) as session:
                    yield session
            finally:
                _holding_turn.reset(holding)

    @asynccontextmanager
    async def _unit(self, write: bool) -> AsyncIterator[AsyncSession]:
        bind = self._writer if write else self.engine
        async with (
            AsyncSession(bind, expire_on_commit=False, autoflush=False) as session,
            session.begin(),
        ):
            yield session
            # reached only when the block ended normally, before the commit
            pending = session.info.pop(_AFTER_SUCCESS, [])
            if write:
                session.add_all(pending)
        if pending and not write:
            async with self.transaction() as writer:
                writer.add_all(pending)

    async def dispose(self) -> None:
        await self.engine.dispose()
