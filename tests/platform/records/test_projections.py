"""Typed projections: always in step with the records, used by lists, counts and pivots,
rebuilt online when a form changes, resumed after a stopped build. SQLite and PostgreSQL;
the query plan and kill -9 cases on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models.projection import RecordProjection
from formloom.platform.records import projections
from formloom.platform.settings import Settings
from tests import factories as f

BASE = "/api/records/demo/contact"
ON_POSTGRESQL = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


async def generations(db: Database) -> list[tuple[str, str, dict[str, str]]]:
    async with db.transaction(write=False) as session:
        rows = await session.execute(
            text(
                "SELECT table_name, state, columns FROM record_projections "
                "ORDER BY created_at, table_name"
            )
        )
        # (SQLite hands the JSON column to a text query as text)
        return [
            (row[0], row[1], json.loads(row[2]) if isinstance(row[2], str) else dict(row[2]))
            for row in rows
        ]


async def projected_rows(db: Database, table: str) -> dict[str, dict[str, Any]]:
    async with db.transaction(write=False) as session:
        rows = (await session.execute(text(f"SELECT * FROM {table}"))).mappings().all()
        return {row["_id"]: dict(row) for row in rows}


async def create(client: httpx.AsyncClient, data: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(BASE, json={"data": data})
    assert response.status_code == 201, response.text
    return response.json()


async def test_the_projection_follows_every_write(
    client: httpx.AsyncClient, db: Database, clock: FixedClock
) -> None:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    ((table, state, columns),) = await generations(db)
    assert state == "ready"
    assert columns == {
        "name": "text", "phone": "text", "age": "numeric", "score": "numeric",
        "vip": "boolean", "since": "text", "kind": "text", "company": "text",
        "age_next_year": "numeric", "tags": "json",
    }  # fmt: skip
    ann = await create(client, {"name": "Ann", "age": 40, "score": 2.5, "vip": True,
                                "since": "2024-02-29", "tags": ["a"]})  # fmt: skip
    bob = await create(client, {"name": "Bob"})
    rows = await projected_rows(db, table)
    assert set(rows) == {ann["id"], bob["id"]}
    assert rows[ann["id"]]["age"] == 40 and rows[ann["id"]]["score"] == pytest.approx(2.5)
    # (SQLite keeps json_extract's 1 for true, as the JSON path reads it)
    assert bool(rows[ann["id"]]["vip"]) is True and rows[ann["id"]]["since"] == "2024-02-29"
    assert rows[ann["id"]]["age_next_year"] == 41
    # a multiselect's array as stored (PostgreSQL JSONB, SQLite JSON text)
    tags = rows[ann["id"]]["tags"]
    assert (json.loads(tags) if isinstance(tags, str) else tags) == ["a"]
    assert rows[bob["id"]]["tags"] is None
    assert rows[bob["id"]]["age"] is None and rows[bob["id"]]["_version"] == 1
    changed = await client.patch(
        f"{BASE}/{ann['id']}", json={"data": {"age": 41, "score": None}},
        headers={"If-Match": f'"{ann["version"]}"'},
    )  # fmt: skip
    assert changed.status_code == 200, changed.text
    rows = await projected_rows(db, table)
    assert rows[ann["id"]]["age"] == 41 and rows[ann["id"]]["score"] is None
    assert rows[ann["id"]]["_version"] == 2
    deleted = await client.delete(f"{BASE}/{bob['id']}", headers={"If-Match": '"1"'})
    assert deleted.status_code == 204, deleted.text
    assert set(await projected_rows(db, table)) == {ann["id"]}


async def test_a_generation_is_one_table_object_so_its_statements_are_cached(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    tables = []
    for _ in range(2):
        async with db.transaction(write=False) as session:
            ready = await projections.ready(session, "demo", "contact")
            assert ready is not None
            tables.append(ready.table())
    # the same object: SQLAlchemy's statement cache keys a table by its object
    assert tables[0] is tables[1]
    statement = sa.select(tables[0].c._id).where(tables[0].c.age > 1)
    again = sa.select(tables[1].c._id).where(tables[1].c.age > 1)
    assert statement._generate_cache_key() == again._generate_cache_key()


async def test_lists_and_counts_read_the_projection_and_agree_with_the_documents(
    client: httpx.AsyncClient, db: Database
) -> None:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    for i in range(30):
        data: dict[str, Any] = {
            "name": f"P{i:02d}",
            "age": i * 3 % 50,
            "tags": ["a", "b", "c"][: i % 4],
        }
        if i % 3:
            data["score"] = i / 4
        await create(client, data)
    filters = [
        {">=": [{"var": "age"}, 20]},
        {"and": [{">": [{"var": "score"}, 2]}, {"<": [{"var": "age"}, 40]}]},
        {"in": ["b", {"var": "tags"}]},  # a multiselect: its array in the projection
        {"or": [{"==": [{"var": "score"}, None]}, {"in": ["c", {"var": "tags"}]}]},
        {"!": [{"var": "score"}]},
    ]

    async def answers() -> list[tuple[list[str], int]]:
        out = []
        for rule in filters:
            response = await client.post(
                f"{BASE}/query",
                json={"filter": rule, "count": True, "sort": "-score,name", "limit": 100},
            )
            assert response.status_code == 200, response.text
            body = response.json()
            out.append(([item["id"] for item in body["items"]], body["count"]))
        return out

    through_projection = await answers()
    # the same lists with the projection retired: the documents alone answer
    async with db.transaction() as session:
        await session.execute(text("UPDATE record_projections SET state = 'retired'"))
    through_documents = await answers()
    assert through_projection == through_documents
    assert [count for _, count in through_projection] != [0] * len(filters)


async def test_a_release_that_projects_another_type_rebuilds_at_start_up(
    client: httpx.AsyncClient, db: Database, settings: Settings, clock: FixedClock
) -> None:
    """A form projected by an earlier release (here: without its multiselect, as before
    multiselects were projected) gets a new generation when the service starts."""
    from tests.conftest import running_service

    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    await create(client, {"name": "Ann", "tags": ["b"]})
    ((old, _, columns),) = await generations(db)
    async with db.transaction() as session:
        earlier = {key: kind for key, kind in columns.items() if kind != "json"}
        await session.execute(
            sa.update(RecordProjection)
            .where(RecordProjection.table_name == old)
            .values(columns=earlier)
        )
    async with running_service(settings, clock):
        pass
    states = {name: (state, columns) for name, state, columns in await generations(db)}
    assert states[old][0] == "retired"
    ((new, (_, now_projected)),) = [(n, v) for n, v in states.items() if v[0] == "ready"]
    assert now_projected["tags"] == "json"
    assert [row["name"] for row in (await projected_rows(db, new)).values()] == ["Ann"]
    counted = await client.post(
        f"{BASE}/query", json={"filter": {"in": ["b", {"var": "tags"}]}, "count": True}
    )
    assert counted.status_code == 200 and counted.json()["count"] == 1


@ON_POSTGRESQL
async def test_an_indexed_multiselect_gets_a_gin_index_that_membership_tests_use(
    client: httpx.AsyncClient, db: Database
) -> None:
    document = f.app()
    tags = next(x for x in document["forms"][0]["fields"] if x["key"] == "tags")
    tags["indexed"] = True
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO records (id, app, form, form_version, data, version, created_at, "
                "created_by, updated_at, updated_by) SELECT lpad(g::text, 12, '0'), 'demo', "
                "'contact', 1, jsonb_build_object('name', 'P' || g, 'tags', CASE g % 50 "
                'WHEN 0 THEN \'["a", "b"]\'::jsonb WHEN 1 THEN \'["c"]\'::jsonb '
                "ELSE '[]'::jsonb END), 1, now(), 't', now(), 't' "
                "FROM generate_series(1, 5000) AS g"
            )
        )
    ((table, _, columns),) = await generations(db)
    assert columns["tags"] == "json"
    async with db.transaction() as session:
        definitions = (
            (
                await session.execute(
                    text("SELECT indexdef FROM pg_indexes WHERE tablename = :t"), {"t": table}
                )
            )
            .scalars()
            .all()
        )
        assert any("USING gin (tags jsonb_path_ops)" in d for d in definitions), definitions
        await session.execute(text(f"ANALYZE {table}"))
    counted = await client.post(
        f"{BASE}/query", json={"filter": {"in": ["b", {"var": "tags"}]}, "count": True}
    )
    assert counted.status_code == 200 and counted.json()["count"] == 100
    async with db.transaction(write=False) as session:
        # 5,000 narrow rows are cheaper to scan: ask whether the index can serve the test
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in await session.execute(
                text(f"""EXPLAIN SELECT count(*) FROM {table} WHERE tags @> '["b"]'""")
            )
        )
    assert "Bitmap Index Scan" in plan and table in plan, plan


@ON_POSTGRESQL
async def test_a_count_over_projected_fields_does_not_read_the_records(
    client: httpx.AsyncClient, db: Database, clock: FixedClock
) -> None:
    """The records are LEFT JOINed by id; PostgreSQL removes the join when nothing reads them."""
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    async with db.transaction(write=False) as session:
        ready = await projections.ready(session, "demo", "contact")
        assert ready is not None
        from sqlalchemy import func, select

        from formloom.engines.logic.sql import compile_filter
        from formloom.platform.apps.definition import load
        from formloom.platform.records.access import filter_target, source

        spec = load(f.app()).forms[0]
        table = ready.table()
        target = filter_target(spec, "postgresql", projection=table)
        condition = compile_filter({">": [{"var": "age"}, 3]}, target, now=clock.now())
        statement = select(func.count()).select_from(source(table)).where(condition)
        compiled = statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(row[0] for row in await session.execute(text(f"EXPLAIN {compiled}")))
    assert ready.table_name in plan and " records" not in plan, plan


async def test_a_form_change_builds_a_new_generation_and_retires_the_old(
    client: httpx.AsyncClient, db: Database, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = f.app()
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    for i in range(12):
        await create(client, {"name": f"P{i}", "age": i})
    ((first, _, _),) = await generations(db)
    # a big form is filled after the change, in batches; here "big" is anything over 5
    monkeypatch.setattr(projections, "FILL_INLINE", 5)
    monkeypatch.setattr(projections, "BATCH", 4)
    # (the import fills it in the background; here the test fills it, step by step)
    monkeypatch.setattr(projections, "start_filling", lambda *args, **kwargs: None)
    document["forms"][0]["fields"].append(f.field("weight", "number"))
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code == 200, response.text
    states = {name: (state, columns) for name, state, columns in await generations(db)}
    assert states.pop(first)[0] == "ready"
    ((second, (state, columns)),) = states.items()
    assert state == "building" and "weight" in columns
    # meanwhile lists work (the old generation serves them) and writes reach both
    late = await create(client, {"name": "Late", "age": 99, "weight": 70})
    listed = await client.post(f"{BASE}/query", json={"filter": {">": [{"var": "age"}, 10]}})
    assert [item["id"] for item in listed.json()["items"]][-1] == late["id"]
    # a build stopped after one batch resumes where it stopped
    async with db.transaction() as session:
        generation = await session.get(RecordProjection, second)
        assert generation is not None
        assert await projections._copy(session, generation, 4)
        cursor = generation.cursor
    assert cursor is not None
    assert await projections.resume(db, now=clock.now()) == [second]
    assert {name: state for name, state, _ in await generations(db)} == {
        first: "retired",
        second: "ready",
    }
    rows = await projected_rows(db, second)
    assert len(rows) == 13 and rows[late["id"]]["weight"] == 70
    # the next change drops the retired table
    document["forms"][0]["fields"].pop()
    dropped = await client.post("/api/apps/import?allow_destructive=true", json=document)
    assert dropped.status_code == 200, dropped.text
    names = {name for name, _, _ in await generations(db)}
    assert first not in names
    async with db.transaction(write=False) as session:
        if db.dialect == "postgresql":
            gone = await session.execute(text(f"SELECT to_regclass('{first}')"))
        else:
            gone = await session.execute(
                text("SELECT max(name) FROM sqlite_master WHERE name = :name"), {"name": first}
            )
        assert gone.scalar_one() is None


_SLOW_FILL = """
import asyncio, sys, time
from formloom.platform.db import Database
from formloom.platform.records import projections

projections.BATCH = 40
copy = projections._copy


async def slow_copy(session, generation, limit):
    more = await copy(session, generation, limit)
    await asyncio.sleep(0.05)
    return more

projections._copy = slow_copy


async def main() -> None:
    database = Database(sys.argv[1])
    from datetime import UTC, datetime
    await projections.fill(database, [sys.argv[2]], now=datetime.now(UTC))

asyncio.run(main())
"""


@ON_POSTGRESQL
async def test_a_build_killed_mid_way_resumes_and_reads_go_on_meanwhile(
    client: httpx.AsyncClient,
    db: Database,
    clock: FixedClock,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """kill -9 of the process filling a new generation: the old one serves lists all along,
    the new one resumes from its saved cursor and ends up with every record."""
    import asyncio
    import os
    import signal
    import sys

    document = f.app()
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    async with db.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO records (id, app, form, form_version, data, version, created_at, "
                "created_by, updated_at, updated_by) SELECT lpad(g::text, 12, '0'), 'demo', "
                "'contact', 1, jsonb_build_object('name', 'P' || g, 'age', g % 90), 1, now(), "
                "'t', now(), 't' FROM generate_series(1, 2000) AS g"
            )
        )
    monkeypatch.setattr(projections, "FILL_INLINE", 10)
    monkeypatch.setattr(projections, "start_filling", lambda *args, **kwargs: None)
    document["forms"][0]["fields"].append(f.field("weight", "number"))
    assert (await client.post("/api/apps/import", json=document)).status_code == 200
    ((building,),) = [(name,) for name, state, _ in await generations(db) if state == "building"]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _SLOW_FILL, database_url, building, env=dict(os.environ)
    )
    cursor = None
    for _ in range(400):
        await asyncio.sleep(0.05)
        async with db.transaction(write=False) as session:
            generation = await session.get(RecordProjection, building)
            assert generation is not None
            cursor = generation.cursor
        if cursor is not None and cursor > "000000000400":
            break
    os.kill(process.pid, signal.SIGKILL)
    await process.wait()
    assert cursor is not None and generation.state == "building"
    # reads went on through the ready generation, and still do
    listed = await client.post(
        f"{BASE}/query", json={"filter": {"==": [{"var": "age"}, 7]}, "count": True}
    )
    assert listed.status_code == 200 and listed.json()["count"] == 2000 // 90 + 1
    assert await projections.resume(db, now=clock.now()) == [building]
    rows = await projected_rows(db, building)
    assert len(rows) == 2000
    assert {row["age"] for row in rows.values()} == set(range(90))
    states = {name: state for name, state, _ in await generations(db)}
    assert states[building] == "ready" and sorted(states.values()) == ["ready", "retired"]


async def test_the_import_fills_a_big_form_in_the_background(
    client: httpx.AsyncClient, db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    document = f.app()
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    for i in range(9):
        await create(client, {"name": f"P{i}", "age": i})
    monkeypatch.setattr(projections, "FILL_INLINE", 5)
    monkeypatch.setattr(projections, "BATCH", 2)
    document["forms"][0]["fields"].append(f.field("weight", "number"))
    assert (await client.post("/api/apps/import", json=document)).status_code == 200
    for _ in range(100):
        states = [state for _, state, columns in await generations(db) if "weight" in columns]
        if states == ["ready"]:
            break
        await asyncio.sleep(0.05)
    assert states == ["ready"]


async def test_reports_read_the_projection_and_agree_with_the_documents(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Pivots (group-bys, sums, buckets, bins, a filter, distinct counts, the drill-down)
    give the same answer through the projection as from the documents alone."""
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    for i in range(40):
        data: dict[str, Any] = {"name": f"P{i % 7}", "age": i * 7 % 60, "vip": i % 3 == 0}
        if i % 4:
            data["score"] = i / 8
            data["since"] = f"2024-{i % 12 + 1:02d}-{i % 27 + 1:02d}"
        data["tags"] = ["a", "b", "c"][: i % 4]
        await create(client, data)
    specs = [
        {"form": "contact", "rows": [{"field": "name"}],
         "measures": [{"key": "n", "op": "count"}, {"key": "s", "op": "sum", "field": "score"}]},
        {"form": "contact", "rows": [{"field": "since", "bucket": "month"}],
         "columns": [{"field": "vip"}], "measures": [{"key": "a", "op": "avg", "field": "age"}],
         "filter": {">": [{"var": "age"}, 10]}},
        {"form": "contact", "rows": [{"field": "age", "bin_width": 15}],
         "measures": [{"key": "d", "op": "count_distinct", "field": "name"},
                      {"key": "m", "op": "max", "field": "since"}]},
        {"form": "contact", "rows": [{"field": "created_at", "bucket": "day"}],
         "measures": [{"key": "n", "op": "count"}]},
        {"form": "contact", "rows": [{"field": "tags"}],
         "measures": [{"key": "n", "op": "count"}]},
    ]  # fmt: skip

    async def answers() -> list[Any]:
        out = []
        for spec in specs:
            response = await client.post("/api/reports/demo", json=spec)
            assert response.status_code == 200, response.text
            out.append(response.json())
        return out

    through_projection = await answers()
    async with db.transaction() as session:
        await session.execute(text("UPDATE record_projections SET state = 'retired'"))
    assert await answers() == through_projection


async def test_a_counted_quick_search_reads_the_records_it_searches(
    client: httpx.AsyncClient,
) -> None:
    """The quick search's conditions are written as its indexes' text: a count of them must
    still join the records (it read a column the projection alone does not have)."""
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    for name in ("Anna Li", "Anna Wu", "Bo Li"):
        await create(client, {"name": name, "age": 30})
    for query, found in (
        ({"q": "anna"}, 2),
        ({"q": "li", "filter": '{">": [{"var": "age"}, 5]}'}, 2),
    ):
        answer = await client.get(BASE, params={**query, "count": "true"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["count"] == found


async def test_the_change_plan_says_what_it_does_to_the_projection(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    document = f.app()
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    for i in range(7):
        await create(client, {"name": f"P{i}", "age": i})
    monkeypatch.setattr(projections, "FILL_INLINE", 5)
    monkeypatch.setattr(projections, "BATCH", 3)
    document["forms"][0]["fields"].append(f.field("weight", "number"))
    plan = await client.post("/api/apps/import?dry_run=true", json=document)
    assert plan.status_code == 200, plan.text
    assert plan.json()["projections"] == [
        {"form": "contact", "action": "rebuild", "added": ["weight"], "removed": [],
         "retyped": [], "records": 7, "online": True, "batches": 3},
    ]  # fmt: skip
    # an unchanged projection is not mentioned
    document["forms"][0]["fields"].pop()
    document["forms"][0]["label"] = "Contacts"
    plan = await client.post("/api/apps/import?dry_run=true", json=document)
    assert "projections" not in plan.json()


async def _whole(db: Database, table: str) -> dict[str, bool]:
    return {key: row["_whole"] for key, row in (await projected_rows(db, table)).items()}


@ON_POSTGRESQL
async def test_a_page_of_whole_rows_is_answered_from_the_projection_to_the_byte(
    client: httpx.AsyncClient, db: Database
) -> None:
    """A list whose conditions and sort read only projected columns reads the projection
    alone: a row whose columns are its whole document answers it from them, any other row
    from its document. The answers are the documents' own, to the byte, for numbers of every
    scale and size, text, dates, booleans and multiselects, with or without each field — and
    a document the columns cannot give (an explicit null, a key the form no longer has, a
    value of another type) is read from the records."""
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    plain = [
        {"name": "Ann", "age": 40, "score": 2.5, "vip": True, "since": "2024-02-29",
         "tags": ["b", "a"], "kind": "person"},
        {"name": "Bob"},
        {"name": "Łukasz 李", "score": -0.001, "vip": False, "tags": []},
        {"name": "Cy", "score": 1e-7, "age": 0},
        {"name": "Dee", "score": 12345678901234567890, "phone": "+8613800000000"},
        {"name": "Eve", "score": 3.0, "kind": "company", "company": "ACME"},
    ]  # fmt: skip
    made = [await create(client, data) for data in plain]
    # documents as other paths may leave them (raw SQL: an import, an older release)
    odd = {
        "scale": '{"name": "Fay", "score": 2.50, "age": 7}',
        "null": '{"name": "Gus", "score": null}',
        "legacy": '{"name": "Hal", "weight": 80}',
        "mistyped": '{"name": "Ivy", "age": "forty"}',
        "number_as_text": '{"name": 5}',
        "big": '{"name": "Jo", "score": 100000000000000000000000000000.000000000000000001}',
        "empty": '{"name": ""}',
    }
    async with db.transaction() as session:
        for n, (label, document) in enumerate(odd.items()):
            await session.execute(
                text(
                    "INSERT INTO records (id, app, form, form_version, data, version, "
                    "created_at, created_by, updated_at, updated_by) VALUES (:id, 'demo', "
                    "'contact', 1, CAST(:data AS JSONB), 1, now(), 't', now(), 't')"
                ),
                {"id": f"odd{n:03d}{label}"[:32], "data": document},
            )
    ((table, _, _),) = await generations(db)
    whole = await _whole(db, table)
    assert [whole[m["id"]] for m in made] == [True] * len(plain)
    assert {key: value for key, value in whole.items() if key.startswith("odd")} == {
        "odd000scale": True,
        "odd001null": False,
        "odd002legacy": False,
        "odd003mistyped": False,
        "odd004number_as_text": False,
        "odd005big": True,
        "odd006empty": True,
    }
    queries = [
        {"sort": "-score,name", "limit": 100},
        {"sort": "name", "limit": 5},
        {"filter": {">=": [{"var": "score"}, 0]}, "sort": "-since,vip", "limit": 100},
        {"fields": ["name", "score"], "limit": 100},
        {"filter": {"in": ["a", {"var": "tags"}]}, "limit": 100},
    ]

    async def answers() -> list[bytes]:
        out = []
        for body in queries:
            cursor = None
            while True:
                response = await client.post(f"{BASE}/query", json={**body, "cursor": cursor})
                assert response.status_code == 200, response.text
                out.append(response.content)
                cursor = response.json()["next_cursor"]
                if cursor is None:
                    break
        return out

    through_projection = await answers()
    assert len(through_projection) > len(queries)  # the second query went on by cursor
    async with db.transaction() as session:
        await session.execute(text("UPDATE record_projections SET state = 'retired'"))
    assert await answers() == through_projection
    listed = json.loads(through_projection[0])["items"]
    assert len(listed) == len(plain) + len(odd)
    # the documents' own values, types and key order
    by_id = {item["id"]: item["data"] for item in listed}
    assert json.dumps(by_id["odd000scale"]) == '{"age": 7, "name": "Fay", "score": 2.5}'
    assert by_id["odd001null"] == {"name": "Gus", "score": None}
    assert by_id["odd002legacy"] == {"name": "Hal", "weight": 80}
    assert by_id["odd003mistyped"] == {"age": "forty", "name": "Ivy"}
    assert by_id["odd004number_as_text"] == {"name": 5}
    assert by_id[made[4]["id"]]["score"] == 12345678901234567890
    assert isinstance(by_id[made[5]["id"]]["score"], float)


@ON_POSTGRESQL
async def test_a_whole_row_is_not_read_from_the_records_and_another_is(
    client: httpx.AsyncClient, db: Database
) -> None:
    """Which path answered: a document changed behind the triggers' back (they are off for
    the one statement) shows in a list only for a row that is not whole."""
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    whole = await create(client, {"name": "Ann", "age": 40})
    other = await create(client, {"name": "Bob", "age": 41})
    async with db.transaction() as session:
        await session.execute(
            text("UPDATE records SET data = data || '{\"legacy\": 1}' WHERE id = :id"),
            {"id": other["id"]},
        )
        await session.execute(text("ALTER TABLE records DISABLE TRIGGER USER"))
        await session.execute(
            text('UPDATE records SET data = \'{"name": "changed"}\' WHERE id IN (:a, :b)'),
            {"a": whole["id"], "b": other["id"]},
        )
        await session.execute(text("ALTER TABLE records ENABLE TRIGGER USER"))
    response = await client.post(f"{BASE}/query", json={"sort": "age", "limit": 10})
    assert response.status_code == 200, response.text
    names = [item["data"]["name"] for item in response.json()["items"]]
    assert names == ["Ann", "changed"]  # the first from its columns, the second its document


@ON_POSTGRESQL
async def test_generations_of_an_earlier_format_are_rebuilt_at_start_up(
    client: httpx.AsyncClient, db: Database, settings: Settings, clock: FixedClock
) -> None:
    """A generation built by a release before ``_whole`` (format 1) is replaced by one of
    this release's format when the service starts; lists read the old one meanwhile."""
    from tests.conftest import running_service

    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    ann = await create(client, {"name": "Ann", "age": 40})
    ((old, _, _),) = await generations(db)
    async with db.transaction() as session:
        await session.execute(
            sa.update(RecordProjection).where(RecordProjection.table_name == old).values(format=1)
        )
    listed = await client.post(f"{BASE}/query", json={"sort": "age"})
    assert [item["id"] for item in listed.json()["items"]] == [ann["id"]]
    async with running_service(settings, clock):
        pass
    states = {name: state for name, state, _ in await generations(db)}
    assert states[old] == "retired"
    ((new,),) = [(name,) for name, state in states.items() if state == "ready"]
    async with db.transaction(write=False) as session:
        assert (await session.get(RecordProjection, new)).format == projections.format_of(  # type: ignore[union-attr]
            "postgresql"
        )
    assert await _whole(db, new) == {ann["id"]: True}
