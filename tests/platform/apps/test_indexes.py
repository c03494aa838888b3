"""`indexed` fields get expression indexes that the list query can use, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite

from formloom.platform.apps.service import AppCatalog
from formloom.platform.db import Database
from formloom.platform.records import projections
from formloom.platform.records.service import ListQuery, RecordService
from tests import factories as f


async def _index_names(db: Database) -> set[str]:
    if db.dialect == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE tablename = 'records'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'records'"
    async with db.engine.connect() as conn:
        return {row[0] for row in await conn.execute(text(query))}


async def _indexed(db: Database) -> set[str]:
    """The fields of demo/contact with an index: on the form's typed projection when it has
    one (and then none on the documents), else an expression index on the documents."""
    names = await _index_names(db)
    on_documents = {
        key for key in ("name", "phone", "age") if f"ix_rec_demo__contact__{key}" in names
    }
    async with db.transaction(write=False) as session:
        ready = await projections.ready(session, "demo", "contact")
        if ready is None:
            return on_documents
        assert not on_documents  # the projection's index serves every read of the field
        pg = db.dialect == "postgresql"
        listed = (
            "SELECT indexname FROM pg_indexes WHERE tablename = :t"
            if pg
            else "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
        )
        on_projection = set(
            (await session.execute(text(listed), {"t": ready.table_name})).scalars()
        )
    return {
        key
        for key in ("name", "phone", "age")
        if projections.index_name(ready.table_name, key) in on_projection
    }


async def test_indexes_follow_the_definition(client: httpx.AsyncClient, db: Database) -> None:
    document = f.app()
    await client.post("/api/apps/import", json=document)
    # name is indexed, phone unique (so indexed too), age neither
    assert await _indexed(db) == {"name", "phone"}

    fields = document["forms"][0]["fields"]
    fields[0]["indexed"] = False
    fields[2]["indexed"] = True
    await client.post("/api/apps/import", json=document)
    assert await _indexed(db) == {"phone", "age"}


async def test_the_list_query_uses_the_index(client: httpx.AsyncClient, db: Database) -> None:
    await client.post("/api/apps/import", json=f.app())
    for i in range(30):
        await client.post("/api/records/demo/contact", json={"data": {"name": f"N{i % 3}"}})
    catalog = AppCatalog()
    async with db.transaction(write=False) as session:
        service = RecordService(session, catalog, actor="t", now=datetime.now(UTC))
        statements: list[object] = []
        execute = session.execute

        async def capture(statement: object, *args: object, **kwargs: object) -> object:
            statements.append(statement)
            return await execute(statement, *args, **kwargs)  # type: ignore[arg-type]

        session.execute = capture  # type: ignore[method-assign]
        page = await service.list(
            "demo", "contact", ListQuery(filter={"==": [{"var": "name"}, "N1"]}, limit=5)
        )
        session.execute = execute  # type: ignore[method-assign]
        assert len(page.items) == 5
        dialect = postgresql.dialect() if db.dialect == "postgresql" else sqlite.dialect()
        sql = str(
            statements[-1].compile(  # type: ignore[attr-defined]
                dialect=dialect, compile_kwargs={"literal_binds": True}
            )
        )
        if db.dialect == "postgresql":
            # with the table's statistics (a fresh database has none, and the planner then
            # walks the id index for ORDER BY id LIMIT 5 whatever the filter)
            await session.execute(text("ANALYZE records"))
            await session.execute(text("SET LOCAL enable_seqscan = off"))
            plan = "\n".join(r[0] for r in await session.execute(text("EXPLAIN " + sql)))
        else:
            rows = await session.execute(text("EXPLAIN QUERY PLAN " + sql))
            plan = "\n".join(str(r[-1]) for r in rows)
    if not projections.enabled():  # the documents alone: the expression index
        assert "ix_rec_demo__contact__name" in plan, plan
        return
    # lists read the form's typed projection, and its index
    async with db.transaction(write=False) as session:
        ready = await projections.ready(session, "demo", "contact")
    assert ready is not None
    assert projections.index_name(ready.table_name, "name") in plan, plan
