"""App-change benchmarks: a dry-run plan and a migration over 100,000 records.

1. Dry-run plan of a change to a form with N records (a rename, a narrowed maximum, a new
   required field, a removed option): the plan's record counts come from one SQL scan per
   form. Baseline, same process: a bare ``SELECT count(*)`` over the same form.
2. Applying a migration of N records (rename ``mobile`` -> ``phone`` plus a new field whose
   value is computed from the old record by a JsonLogic ``set``): every record re-prepared
   and validated by the form engine, written with a history row, in one transaction.
   Baseline, same process: a bare set-based SQL UPDATE doing only the rename.

Run: ``python -m tests.bench.bench_changes [--quick] [--sqlite-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import os
import tempfile
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from formloom.platform.apps.service import AppCatalog, import_app
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models import Record

PG_URL = os.environ.get(
    "FORMLOOM_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench"
)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

APP: dict[str, Any] = {
    "format": "formloom.app/v1",
    "key": "bench",
    "version": "1.0.0",
    "label": "Bench",
    "forms": [
        {
            "key": "customer",
            "label": "Customer",
            "fields": [
                {"key": "name", "type": "text", "required": True},
                {"key": "mobile", "type": "phone"},
                {"key": "age", "type": "integer", "min": 0, "max": 150},
                {
                    "key": "level",
                    "type": "select",
                    "options": [{"value": "gold"}, {"value": "silver"}, {"value": "bronze"}],
                },
                {"key": "since", "type": "date"},
                {"key": "vip", "type": "boolean"},
                {"key": "note", "type": "textarea"},
            ],
        }
    ],
}


def changed_app() -> dict[str, Any]:
    document = copy.deepcopy(APP)
    fields = document["forms"][0]["fields"]
    next(f for f in fields if f["key"] == "mobile")["key"] = "phone"
    next(f for f in fields if f["key"] == "age")["max"] = 120
    fields.append({"key": "segment", "type": "text", "required": True})
    document["migrations"] = [
        {
            "form": "customer",
            "rename": {"mobile": "phone"},
            "set": {
                "segment": {"if": [{"var": "vip"}, "vip", {"cat": ["level-", {"var": "level"}]}]},
                "age": {"if": [{">": [{"var": "age"}, 120]}, 120, {"var": "age"}]},
            },
        }
    ]
    return document


def rows(count: int) -> list[dict[str, Any]]:
    levels = ("gold", "silver", "bronze")
    out = []
    for i in range(count):
        data = {
            "name": f"Customer {i}",
            "age": i % 130,
            "level": levels[i % 3],
            "since": "2024-05-01",
            "vip": i % 7 == 0,
        }
        if i % 2:
            data["mobile"] = f"+86 139 {i:08d}"
        if i % 5 == 0:
            data["note"] = "regular"
        out.append(
            {
                "id": f"{i:032x}",
                "app": "bench",
                "form": "customer",
                "form_version": 1,
                "data": data,
                "version": 1,
                "created_at": NOW,
                "created_by": "bench",
                "updated_at": NOW,
                "updated_by": "bench",
            }
        )
    return out


async def _fill(db: Database, count: int) -> None:
    table = Record.__table__
    batch = rows(count)
    async with db.engine.begin() as conn:
        for start in range(0, count, 10_000):
            await conn.execute(table.insert(), batch[start : start + 10_000])
        if db.dialect == "postgresql":
            await conn.execute(text("ANALYZE records"))


async def _fresh(url: str) -> Database:
    if url.startswith("postgresql"):
        target = make_url(url)
        admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
        await admin.dispose()
    db = Database(url)
    await upgrade(db)
    return db


async def bench(url: str, count: int) -> dict[str, Any]:
    db = await _fresh(url)
    catalog = AppCatalog()
    try:
        async with db.transaction() as session:
            await import_app(session, catalog, APP, actor="bench", now=NOW)
        await _fill(db, count)
        document = changed_app()

        began = time.perf_counter()
        async with db.transaction(write=False) as session:
            await session.execute(
                select(func.count()).select_from(Record).where(Record.form == "customer")
            )
        count_s = time.perf_counter() - began

        began = time.perf_counter()
        async with db.transaction(write=False) as session:
            result = await import_app(
                session, catalog, document, actor="bench", now=NOW, dry_run=True
            )
        plan_s = time.perf_counter() - began
        assert result.plan is not None and result.plan.can_apply, result.plan
        touched = {c.change.field: c.records for c in result.plan.forms[0].changes}

        rename_sql = (
            "UPDATE records SET data = (data - 'mobile') || jsonb_build_object('phone', "
            "data -> 'mobile') WHERE form = 'customer' AND data ? 'mobile'"
            if db.dialect == "postgresql"
            else "UPDATE records SET data = json_set(json_remove(data, '$.mobile'), '$.phone', "
            "json_extract(data, '$.mobile')) WHERE form = 'customer' AND "
            "json_type(data, '$.mobile') IS NOT NULL"
        )
        began = time.perf_counter()
        async with db.engine.begin() as conn:
            await conn.execute(text(rename_sql))
            await conn.rollback()
        bare_s = time.perf_counter() - began

        began = time.perf_counter()
        async with db.transaction() as session:
            applied = await import_app(session, catalog, document, actor="bench", now=NOW)
        migrate_s = time.perf_counter() - began
        assert applied.status == "updated"
        async with db.engine.connect() as conn:
            history = await conn.scalar(
                text("SELECT count(*) FROM record_history WHERE operation = 'migrate'")
            )

        # a rename alone (phone -> mobile again): set-based on PostgreSQL
        back = copy.deepcopy(APP)
        back["migrations"] = [{"form": "customer", "rename": {"phone": "mobile"}}]
        next(f for f in back["forms"][0]["fields"] if f["key"] == "age")["max"] = 120
        back["forms"][0]["fields"].append({"key": "segment", "type": "text", "required": True})
        began = time.perf_counter()
        async with db.transaction() as session:
            await import_app(session, catalog, back, actor="bench", now=NOW)
        rename_only_s = time.perf_counter() - began
        return {
            "database": db.dialect,
            "records": count,
            "plan_s": round(plan_s, 3),
            "bare_count_s": round(count_s, 3),
            "plan_vs_count": round(plan_s / count_s, 1),
            "touched": touched,
            "migrate_s": round(migrate_s, 2),
            "migrated_per_s": round(count / migrate_s),
            "bare_rename_update_s": round(bare_s, 2),
            "migrate_vs_bare_rename": round(migrate_s / bare_s, 1),
            "history_rows": history,
            "rename_only_s": round(rename_only_s, 2),
            "rename_only_vs_bare_rename": round(rename_only_s / bare_s, 1),
        }
    finally:
        await db.dispose()


async def main(quick: bool, sqlite_only: bool) -> list[dict[str, Any]]:
    count = 20_000 if quick else 100_000
    results = []
    with tempfile.TemporaryDirectory() as folder:
        urls = [f"sqlite+aiosqlite:///{folder}/bench.db"] + ([] if sqlite_only else [PG_URL])
        for url in urls:
            result = await bench(url, count)
            print("app change:", json.dumps(result))
            results.append(result)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.sqlite_only))
