"""Typed projections against a hand-written typed table (issue 21).

On PostgreSQL a form of 100,000 (``--quick``) or 1,000,000 records, on SQLite 100,000,
with a name, a city (indexed), an amount (indexed), a date and a flag. Three questions,
each asked through the API while the SQL it runs is captured, then that SQL timed directly
against the same question written by hand over a typed table of the same data with the
same indexes (the baseline, in the same database and process, timed in turns with them):

* a range of amounts sorted by amount, descending, first page of 50;
* the count of that range;
* count and sum of the amount grouped by city (the report API), which answers the groups and
  their total: its baseline is the same answer by hand (``GROUPING SETS ((city), ())``);
  the ratio to a plain ``GROUP BY city`` without the total is printed beside it.

Each is measured twice: through the form's typed projection (what reads use now) and with
the projection retired (the JSON documents alone, as before). Figures are medians; the ratio
is to the typed baseline. The sizes on disk (records with history and audit, the
projection, the typed baseline; PostgreSQL) are printed too, and single creates per second
through the API with the projection's triggers and without them, in alternating chunks.

Run: ``python -m tests.bench.bench_projections [--quick]`` (or ``make bench``). Needs
PostgreSQL (FORMLOOM_BENCH_PROJECTIONS_POSTGRES_URL, default database
formloom_bench_projections on 127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, text

from formloom.platform.api import create_app
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models.projection import RecordProjection
from formloom.platform.records import projections
from formloom.platform.settings import Settings
from tests.bench.bench_records import admin_client
from tests.bench.databases import fresh_postgres

URL = os.environ.get(
    "FORMLOOM_BENCH_PROJECTIONS_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_projections",
)
LOW, HIGH = 40_000, 60_000  # a fifth of the amounts (0 .. 99,999.99)

APP = {
    "format": "formloom.app/v1",
    "key": "bench",
    "version": "1.0.0",
    "label": "Bench",
    "forms": [
        {
            "key": "big",
            "label": "Big",
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "required": True},
                {"key": "city", "type": "text", "indexed": True},
                {"key": "amount", "type": "number", "indexed": True},
                {"key": "when", "type": "date"},
                {"key": "done", "type": "boolean"},
                {"key": "note", "type": "textarea"},
            ],
        }
    ],
}

HAND = {
    "range": (
        "SELECT * FROM typed WHERE amount >= :low AND amount <= :high "
        "ORDER BY amount DESC, id LIMIT 51"
    ),
    "count": "SELECT count(*) FROM typed WHERE amount >= :low AND amount <= :high",
    # the report's answer: a row per city and the total of all of them
    "group": ("SELECT city, count(*), sum(amount) FROM typed GROUP BY GROUPING SETS ((city), ())"),
    # the same without the total: what a group-by alone costs (both are timed against the
    # report's statement)
    "group_only": "SELECT city, count(*), sum(amount) FROM typed GROUP BY city",
}

HAND_SQLITE_GROUP = (
    "SELECT city, count(*), sum(amount) FROM typed GROUP BY city "
    "UNION ALL SELECT NULL, count(*), sum(amount) FROM typed"
)


async def _fill(db: Database, count: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO records (id, app, form, form_version, data, version, created_at,
                                     created_by, updated_at, updated_by)
                SELECT lpad(to_hex(g), 12, '0') || md5(g::text)::varchar(20), 'bench', 'big', 1,
                       jsonb_build_object('name', 'Item ' || g, 'city', 'city_' || (g % 100),
                                          'amount', ((g::bigint * 7919) % 10000000) / 100.0,
                                          'when', '2026-11-23', 'done', g % 2 = 0,
                                          'note', 'a note of some length for record ' || g),
                       1, now(), 'bench', now(), 'bench'
                FROM generate_series(1, :count) AS g
                """
            ),
            {"count": count},
        )
        await conn.execute(
            text(
                """
                CREATE TABLE typed AS
                SELECT id, (data ->> 'name') AS name, (data ->> 'city') COLLATE "C" AS city,
                       (data ->> 'amount')::numeric AS amount, (data ->> 'when')::date AS "when",
                       (data ->> 'done')::boolean AS done, (data ->> 'note') AS note,
                       version, created_at, created_by, updated_at, updated_by
                FROM records WHERE app = 'bench' AND form = 'big'
                """
            )
        )
        await conn.execute(text("ALTER TABLE typed ADD PRIMARY KEY (id)"))
        await conn.execute(text("CREATE INDEX typed_amount ON typed (amount, id)"))
        await conn.execute(text("CREATE INDEX typed_city ON typed (city, id)"))
        names = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'fp\\_%'")
        )
        tables = ["records", "typed", *(name for (name,) in names.all())]
    # the visibility map, as a table some time after its load (index-only scans use it)
    autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        for table in tables:
            await conn.execute(text(f"VACUUM ANALYZE {table}"))


class Captured:
    """The SQL statements the service runs, as the driver gets them."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, Any]] = []
        event.listen(db.engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))

    def last(self, needle: str) -> tuple[str, Any]:
        return next(s for s in reversed(self.statements) if needle in s[0])


async def _median_ms(db: Database, sql: str, parameters: Any, repeats: int, raw: bool) -> float:
    times = []
    async with db.engine.connect() as conn:
        for _ in range(repeats):
            began = time.perf_counter()
            if raw:
                await conn.exec_driver_sql(sql, parameters)
            else:
                await conn.execute(text(sql), parameters)
            times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000


async def _questions(client: Any, captured: Captured) -> dict[str, tuple[str, Any]]:
    between = {"<=": [LOW, {"var": "amount"}, HIGH]}  # JsonLogic's "between": no nulls
    answer = await client.post(
        "/api/records/bench/big/query", json={"filter": between, "sort": "-amount", "limit": 50}
    )
    assert answer.status_code == 200, answer.text[:300]
    out = {"range": captured.last("LIMIT")}
    answer = await client.post(
        "/api/records/bench/big/query", json={"filter": between, "count": True, "limit": 1}
    )
    assert answer.status_code == 200, answer.text[:300]
    out["count"] = captured.last("count(*)")
    spec = {
        "form": "big",
        "rows": [{"field": "city"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "s", "op": "sum", "field": "amount"}],
    }
    answer = await client.post("/api/reports/bench", json=spec)
    assert answer.status_code == 200, answer.text[:300]
    out["group"] = captured.last("GROUP BY")
    return out


async def _creates(client: Any, db: Database, chunk: int) -> dict[str, float]:
    """Single creates through the API per second, with the projection's triggers and
    without them (its generation retired, as before projections), in alternating chunks."""
    spent = {"with projection": 0.0, "without": 0.0}
    number = 0
    async with db.transaction(write=False) as session:
        table, columns = (
            await session.execute(sa.select(RecordProjection.table_name, RecordProjection.columns))
        ).one()
    dialect = db.dialect
    # the triggers (PostgreSQL: not its function, which stays)
    triggers = [
        statement
        for statement in projections._ddl(table, "bench", "big", columns, dialect)
        if statement.startswith("CREATE TRIGGER")
    ]
    for _ in range(5):
        for way in spent:
            async with db.transaction() as session:
                for statement in projections._drop_triggers(table, dialect):
                    await session.execute(text(statement))
                if way == "with projection":
                    for statement in triggers:
                        await session.execute(text(statement))
            began = time.perf_counter()
            for _ in range(chunk):
                number += 1
                answer = await client.post(
                    "/api/records/bench/big",
                    json={"data": {"name": f"New {number}", "city": "city_1", "amount": number}},
                )
                assert answer.status_code == 201, answer.text[:300]
            spent[way] += time.perf_counter() - began
    figures = {way: round(5 * chunk / seconds, 1) for way, seconds in spent.items()}
    figures["ratio"] = round(figures["with projection"] / figures["without"], 2)
    return figures


async def _sizes(db: Database) -> dict[str, float]:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    """
                    SELECT pg_total_relation_size('records'),
                           pg_total_relation_size('record_history'),
                           pg_total_relation_size('audit_log'),
                           (SELECT coalesce(sum(pg_total_relation_size(tablename::regclass)), 0)
                            FROM pg_tables WHERE tablename LIKE 'fp\\_%'),
                           pg_total_relation_size('typed')
                    """
                )
            )
        ).one()
    names = ("records", "history", "audit", "projection", "typed baseline")
    return {name: round(int(size) / 2**20, 1) for name, size in zip(names, row, strict=True)}


async def bench(records: int, repeats: int, url: str = URL) -> dict[str, Any]:
    settings = Settings(database_url=url, password_hash="fast-test-only")
    app = create_app(settings)
    out: dict[str, Any] = {"records": records, "repeats": repeats}
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        async with await admin_client(app, db, settings) as client:
            answer = await client.post("/api/apps/import", json=APP)
            assert answer.status_code in (200, 201), answer.text
            if db.dialect == "postgresql":
                await _fill(db, records)
            else:
                await _fill_sqlite(db, records)
            captured = Captured(db)
            hand = {name: (sql, {"low": LOW, "high": HIGH}) for name, sql in HAND.items()}
            if db.dialect == "sqlite":  # no GROUPING SETS: the total as a second query
                hand["group"] = (HAND_SQLITE_GROUP, {})
            paths = {"projection": await _questions(client, captured)}
            async with db.transaction() as session:
                await session.execute(text("UPDATE record_projections SET state = 'retired'"))
            paths["documents"] = await _questions(client, captured)
            for name in HAND:
                asked = "group" if name == "group_only" else name
                runs: dict[str, list[float]] = {"typed": [], **{path: [] for path in paths}}
                for round_number in range(3 + repeats):  # three warm-up rounds, then in turns
                    took = {"typed": await _median_ms(db, *hand[name], 1, raw=False)}
                    for path_name, path in paths.items():
                        took[path_name] = await _median_ms(db, *path[asked], 1, raw=True)
                    if round_number >= 3:
                        for key, ms in took.items():
                            runs[key].append(ms)
                figures = {f"{key}_ms": statistics.median(ms) for key, ms in runs.items()}
                for key in ("projection", "documents"):
                    figures[f"{key}_ratio"] = figures[f"{key}_ms"] / figures["typed_ms"]
                out[name] = {k: round(v, 2) for k, v in figures.items()}
            async with db.transaction() as session:
                await session.execute(text("UPDATE record_projections SET state = 'ready'"))
            if db.dialect == "postgresql":
                out["MiB"] = await _sizes(db)
            # last: the creates without triggers leave the projection behind
            out["creates_per_s"] = await _creates(client, db, 40 if repeats < 30 else 100)
    return out


SQLITE_FILL = """
INSERT INTO records (id, app, form, form_version, data, version, created_at, created_by,
                     updated_at, updated_by)
WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < :count)
SELECT printf('%012x', n) || substr(lower(hex(randomblob(10))), 1, 20), 'bench', 'big', 1,
       json_object('name', 'Item ' || n, 'city', 'city_' || (n % 100),
                   'amount', ((n * 7919) % 10000000) / 100.0, 'when', '2026-11-23',
                   'done', json(CASE WHEN n % 2 = 0 THEN 'true' ELSE 'false' END),
                   'note', 'a note of some length for record ' || n),
       1, '2026-11-23 10:00:00.000000', 'bench', '2026-11-23 10:00:00.000000', 'bench'
FROM g
"""
SQLITE_TYPED = """
CREATE TABLE typed AS
SELECT id, json_extract(data, '$.name') AS name, json_extract(data, '$.city') AS city,
       json_extract(data, '$.amount') AS amount, json_extract(data, '$.when') AS "when",
       json_extract(data, '$.done') AS done, json_extract(data, '$.note') AS note,
       version, created_at, created_by, updated_at, updated_by
FROM records WHERE app = 'bench' AND form = 'big'
"""


async def _fill_sqlite(db: Database, count: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(text(SQLITE_FILL), {"count": count})
        await conn.execute(text(SQLITE_TYPED))
        await conn.execute(text("CREATE INDEX typed_amount ON typed (amount, id)"))
        await conn.execute(text("CREATE INDEX typed_city ON typed (city, id)"))
        await conn.execute(text("ANALYZE"))


async def main(quick: bool) -> dict[str, Any]:
    await fresh_postgres(URL)
    db = Database(URL)
    await upgrade(db)
    await db.dispose()
    results = await bench(records=100_000 if quick else 1_000_000, repeats=15 if quick else 30)
    print(f"typed projection vs a hand-written typed table ({results['records']:,} records):")
    for name, what in (
        ("range", "amount range, sorted, first 50"),
        ("count", "count of that range"),
        ("group", "count + sum(amount) by city, and the total"),
        ("group_only", "the same against a group-by without the total"),
    ):
        print(f"    {what}: {json.dumps(results[name])}")
    print(f"    single creates per second: {json.dumps(results['creates_per_s'])}")
    print(f"    sizes (MiB): {json.dumps(results['MiB'])}")
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/projections.db"
        lite = await bench(100_000, 5 if quick else 10, url)
    print(f"SQLite, the same against a typed table ({lite['records']:,} records):")
    for name, what in (
        ("range", "amount range, sorted, first 50"),
        ("count", "count of that range"),
        ("group", "count + sum(amount) by city, and the total"),
        ("group_only", "the same against a group-by without the total"),
    ):
        print(f"    {what}: {json.dumps(lite[name])}")
    print(f"    single creates per second: {json.dumps(lite['creates_per_s'])}")
    results["sqlite"] = lite
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.quick))
