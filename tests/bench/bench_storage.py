"""Storage per record (issue 21): what a record costs on disk with its history and audit,
against a hand-written typed table of the same data with the same indexes.

On PostgreSQL, 100,000 records of a six-field form (two fields indexed) are written through
the bulk API — the real write path: validation, the record, its typed projection, its
history row, its audit row — and then a fifth of them is updated once (an amount and a
note, through the bulk API too). Then, compacted (``VACUUM FULL``: live data only, no dead
rows of the updates), the bytes per record of each table with its indexes
(``pg_total_relation_size``): records, typed projection, history, audit — and the typed
baseline: one table, a typed column per field plus the system columns, its primary key and
the same two indexes as the form's indexed fields. And, for the other reading of the issue's
"typed baseline including history and audit", that table with a typed history of its own (a
row per version, the changed fields' old values in typed columns) and an audit log of the
same facts and indexes as Formloom's.

*Before* is the same database taken back by migration 0014's downgrade, which rebuilds the
full snapshot of every version (the history as it was stored before issue 21) and the audit
log's B-tree index on ``at``: so both schemes hold exactly the same versions.

Run: ``python -m tests.bench.bench_storage [--quick]`` (``make bench``; --quick writes 20,000
records). Needs PostgreSQL (FORMLOOM_BENCH_STORAGE_POSTGRES_URL, default database
formloom_bench_storage on 127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from typing import Any

from sqlalchemy import text

from formloom.platform.api import create_app
from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from formloom.platform.settings import Settings
from tests.bench.bench_records import admin_client
from tests.bench.databases import fresh_postgres

URL = os.environ.get(
    "FORMLOOM_BENCH_STORAGE_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_storage",
)
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
BULK = "/api/records/bench/big/bulk"
CALL = 5_000  # items per bulk call

TYPED = """
CREATE TABLE typed AS
SELECT id, (data ->> 'name') AS name, (data ->> 'city') COLLATE "C" AS city,
       (data ->> 'amount')::numeric AS amount, (data ->> 'when')::date AS "when",
       (data ->> 'done')::boolean AS done, (data ->> 'note') AS note,
       version, created_at, created_by, updated_at, updated_by
FROM records WHERE app = 'bench' AND form = 'big'
"""

#: The typed design's own history and audit, for the second reading of issue 21's bound ("the
#: typed baseline including history and audit"): a history row per version with the old
#: values of the fields it changed in typed columns (NULL where unchanged; a create's row
#: holds none), keyed like record_history; and an audit log of the same facts and indexes as
#: Formloom's (which holds no record body already).
TYPED_HISTORY = """
CREATE TABLE typed_history AS
SELECT record_id, version, operation, actor, at,
       (before ->> 'name') AS name, (before ->> 'city') COLLATE "C" AS city,
       (before ->> 'amount')::numeric AS amount, (before ->> 'when')::date AS "when",
       (before ->> 'done')::boolean AS done, (before ->> 'note') AS note
FROM record_history
"""
TYPED_AUDIT = [
    "CREATE TABLE typed_audit AS SELECT * FROM audit_log",
    "ALTER TABLE typed_audit ADD PRIMARY KEY (id)",
    "CREATE INDEX typed_audit_action ON typed_audit (action, id)",
    "CREATE INDEX typed_audit_actor ON typed_audit (actor, id)",
    "CREATE INDEX typed_audit_form ON typed_audit (app, form, id)",
    "CREATE INDEX typed_audit_at ON typed_audit USING brin (at)",
    "CREATE INDEX typed_audit_record ON typed_audit USING hash (record_id)",
]


def item(i: int) -> dict[str, Any]:
    return {
        "op": "create",
        "data": {
            "name": f"Item {i}",
            "city": f"city_{i % 100}",
            "amount": ((i * 7919) % 10_000_000) / 100,
            "when": "2026-11-23",
            "done": i % 2 == 0,
            "note": f"a note of some length for record {i}",
        },
    }


async def _write(client: Any, records: int) -> dict[str, float]:
    began = time.perf_counter()
    ids: list[str] = []
    for start in range(0, records, CALL):
        items = [item(i) for i in range(start, min(records, start + CALL))]
        answer = await client.post(BULK, json={"items": items})
        assert answer.status_code == 200, answer.text[:300]
        ids += [result["id"] for result in answer.json()["results"]]
    created = time.perf_counter() - began
    began = time.perf_counter()
    chosen = ids[::5]  # a fifth: one update each
    for start in range(0, len(chosen), CALL):
        items = [
            {"op": "update", "id": record_id,
             "data": {"amount": 1 + n / 100, "note": f"changed note {n}"}}
            for n, record_id in enumerate(chosen[start : start + CALL], start)
        ]  # fmt: skip
        answer = await client.post(BULK, json={"items": items})
        assert answer.status_code == 200, answer.text[:300]
    updated = time.perf_counter() - began
    return {
        "creates_per_s": round(records / created),
        "updates_per_s": round(len(chosen) / updated),
    }


async def _sizes(db: Database, records: int, projection: int | None = None) -> dict[str, float]:
    """Bytes per record of each table with its indexes, after compaction. ``projection``:
    the projection's bytes as measured before (migration 0015's downgrade, on the way to
    0013, drops the generations of its format, and the service builds them again at its next
    start; migration 0014, what *before* shows, does not touch them)."""
    autocommit = db.engine.execution_options(isolation_level="AUTOCOMMIT")
    async with autocommit.connect() as conn:
        projections = [
            name
            for (name,) in (
                await conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE tablename LIKE 'fp\\_%'")
                )
            ).all()
        ]
        typed_more = [
            name
            for (name,) in (
                await conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables "
                        "WHERE tablename IN ('typed_history', 'typed_audit')"
                    )
                )
            ).all()
        ]
        tables = ["records", "record_history", "audit_log", "typed", *typed_more, *projections]
        for table in tables:
            await conn.execute(text(f"VACUUM FULL ANALYZE {table}"))
        size: dict[str, int] = {}
        for table in tables:
            size[table] = int(
                await conn.scalar(text(f"SELECT pg_total_relation_size('{table}')")) or 0
            )
    out = {
        "records": size["records"],
        "projection": (
            sum(size[name] for name in projections) if projection is None else projection
        ),
        "history": size["record_history"],
        "audit": size["audit_log"],
    }
    out["total"] = sum(out.values())
    out["typed baseline"] = size["typed"]
    if len(typed_more) == 2:
        out["typed with history and audit"] = sum(size[name] for name in ("typed", *typed_more))
    per_record = {name: round(value / records, 1) for name, value in out.items()}
    per_record["total / typed"] = round(out["total"] / out["typed baseline"], 2)
    if "typed with history and audit" in out:
        per_record["total / typed with history and audit"] = round(
            out["total"] / out["typed with history and audit"], 2
        )
    per_record["history + audit / typed"] = round(
        (out["history"] + out["audit"]) / out["typed baseline"], 2
    )
    return per_record


async def bench(records: int, url: str = URL) -> dict[str, Any]:
    settings = Settings(database_url=url, password_hash="fast-test-only")
    app = create_app(settings)
    out: dict[str, Any] = {"records": records, "updated": len(range(0, records, 5))}
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        async with await admin_client(app, db, settings) as client:
            answer = await client.post("/api/apps/import", json=APP)
            assert answer.status_code in (200, 201), answer.text
            out["write"] = await _write(client, records)
        async with db.engine.begin() as conn:
            await conn.execute(text(TYPED))
            await conn.execute(text("ALTER TABLE typed ADD PRIMARY KEY (id)"))
            await conn.execute(text("CREATE INDEX typed_amount ON typed (amount, id)"))
            await conn.execute(text("CREATE INDEX typed_city ON typed (city, id)"))
            await conn.execute(text(TYPED_HISTORY))
            await conn.execute(
                text("ALTER TABLE typed_history ADD PRIMARY KEY (record_id, version)")
            )
            for statement in TYPED_AUDIT:
                await conn.execute(text(statement))
            out["history_rows"] = await conn.scalar(text("SELECT count(*) FROM record_history"))
            out["audit_rows"] = await conn.scalar(text("SELECT count(*) FROM audit_log"))
        out["after"] = await _sizes(db, records)
    # the same versions as full snapshots: the scheme before issue 21
    db = Database(url)
    try:
        began = time.perf_counter()
        await downgrade(db, "0013")
        out["downgrade_s"] = round(time.perf_counter() - began, 1)
        kept = round(out["after"]["projection"] * records)
        out["before"] = await _sizes(db, records, kept)
        began = time.perf_counter()
        await upgrade(db)
        out["upgrade_s"] = round(time.perf_counter() - began, 1)
        out["again"] = await _sizes(db, records, kept)
    finally:
        await db.dispose()
    return out


async def main(quick: bool) -> dict[str, Any]:
    await fresh_postgres(URL)
    db = Database(URL)
    await upgrade(db)
    await db.dispose()
    results = await bench(records=20_000 if quick else 100_000)
    before, after = results["before"], results["after"]
    print(
        f"bytes per record ({results['records']:,} records, {results['updated']:,} updated once; "
        f"{results['history_rows']:,} history rows, {results['audit_rows']:,} audit rows):"
    )
    print(f"  {'':38} {'before':>10} {'after':>10}")
    for name in after:
        print(f"  {name:38} {before.get(name, ''):>10} {after[name]:>10}")
    print(f"  after downgrade + upgrade again: {results['again']}")
    print(
        f"  migration 0014 over them: upgrade {results['upgrade_s']} s, "
        f"downgrade {results['downgrade_s']} s; writes: {results['write']}"
    )
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="20,000 records")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    arguments = parser.parse_args()
    figures = asyncio.run(main(arguments.quick))
    if arguments.json:
        print(json.dumps(figures, indent=2))
