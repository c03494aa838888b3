"""App-change benchmarks: a dry-run plan and a migration over 100,000 records.

1. Dry-run plan of a change to a form with N records (a rename, a narrowed maximum, a new
   required field, a removed option): the plan's record counts come from one SQL scan per
   form. Baseline, same process: a bare ``SELECT count(*)`` over the same form.
2. Applying a migration of N records (rename ``mobile`` -> ``phone``, ``age`` clamped by a
   JsonLogic ``set``, a new required field computed from the old record by a ``set``), each
   changed record written with a history row, in one transaction — as Formloom chooses
   (PostgreSQL: one set-based statement; SQLite: batches through the form engine) and, on
   PostgreSQL, forced through the batches, on a second copy of the same app and records.
   Baselines, same process: a bare SQL UPDATE doing the same rename + set (no validation, no
   history), and one doing only the rename (both rolled back).

Run: ``python -m tests.bench.bench_changes [--quick] [--sqlite-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from formloom.platform.apps import changes
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


def original_app(key: str = "bench") -> dict[str, Any]:
    document = copy.deepcopy(APP)
    document["key"] = key
    return document


def changed_app(key: str = "bench") -> dict[str, Any]:
    document = original_app(key)
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


def rows(count: int, app: str = "bench") -> list[dict[str, Any]]:
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
                "id": f"{app[:8]}{i:024x}",
                "app": app,
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


async def _fill(db: Database, count: int, app: str = "bench") -> None:
    table = Record.__table__
    batch = rows(count, app)
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


#: The same rename + `set` as one bare UPDATE, in each dialect (no validation, no history).
BARE_SET_SQL = {
    "postgresql": """
        UPDATE records SET data = (data - 'mobile' - 'age')
            || CASE WHEN data ? 'mobile' THEN jsonb_build_object('phone', data -> 'mobile')
                    ELSE '{}' END
            || CASE WHEN data ? 'age' THEN jsonb_build_object('age',
                    CASE WHEN (data ->> 'age')::numeric > 120 THEN '120'::jsonb
                         ELSE data -> 'age' END) ELSE '{}' END
            || jsonb_build_object('segment', CASE WHEN (data ->> 'vip')::boolean THEN 'vip'
                    ELSE 'level-' || coalesce(data ->> 'level', '') END)
        WHERE app = 'bench' AND form = 'customer' AND deleted_at IS NULL
    """,
    "sqlite": """
        UPDATE records SET data = json_set(json_remove(data, '$.mobile'),
            '$.phone', json_extract(data, '$.mobile'),
            '$.age', CASE WHEN json_extract(data, '$.age') > 120 THEN 120
                          ELSE json_extract(data, '$.age') END,
            '$.segment', CASE WHEN json_extract(data, '$.vip') THEN 'vip'
                          ELSE 'level-' || coalesce(json_extract(data, '$.level'), '') END)
        WHERE app = 'bench' AND form = 'customer' AND deleted_at IS NULL
    """,
}
BARE_RENAME_SQL = {
    "postgresql": "UPDATE records SET data = (data - 'mobile') || jsonb_build_object('phone', "
    "data -> 'mobile') WHERE app = 'bench' AND form = 'customer' AND data ? 'mobile'",
    "sqlite": "UPDATE records SET data = json_set(json_remove(data, '$.mobile'), '$.phone', "
    "json_extract(data, '$.mobile')) WHERE app = 'bench' AND form = 'customer' AND "
    "json_type(data, '$.mobile') IS NOT NULL",
}


class _Strategies(logging.Handler):
    """Collects the strategy each migrated form reports."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        strategy = getattr(record, "strategy", None)
        if strategy is not None:
            self.seen.append(strategy)


@contextmanager
def _strategies() -> Iterator[list[str]]:
    handler = _Strategies()
    logger = logging.getLogger("formloom.apps.changes")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@contextmanager
def _batches_only() -> Iterator[None]:
    """Force the batches (the path a non-compiling expression takes)."""
    original = changes.migrate_in_sql

    async def refuse(*args: Any, **kwargs: Any) -> None:
        return None

    changes.migrate_in_sql = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        changes.migrate_in_sql = original  # type: ignore[assignment]


async def _timed_bare(db: Database, sql: str) -> float:
    began = time.perf_counter()
    async with db.engine.begin() as conn:
        await conn.execute(text(sql))
        await conn.rollback()
    return time.perf_counter() - began


async def _apply(db: Database, catalog: AppCatalog, document: dict[str, Any]) -> tuple[float, str]:
    with _strategies() as seen:
        began = time.perf_counter()
        async with db.transaction() as session:
            applied = await import_app(session, catalog, document, actor="bench", now=NOW)
        elapsed = time.perf_counter() - began
    assert applied.status == "updated"
    return elapsed, "+".join(seen)


async def bench(url: str, count: int) -> dict[str, Any]:
    db = await _fresh(url)
    catalog = AppCatalog()
    postgres = db.dialect == "postgresql"
    apps = ("bench", "bench_b") if postgres else ("bench",)
    try:
        for key in apps:
            async with db.transaction() as session:
                await import_app(session, catalog, original_app(key), actor="bench", now=NOW)
            await _fill(db, count, key)

        began = time.perf_counter()
        async with db.transaction(write=False) as session:
            await session.execute(
                select(func.count())
                .select_from(Record)
                .where(Record.app == "bench", Record.form == "customer")
            )
        count_s = time.perf_counter() - began

        began = time.perf_counter()
        async with db.transaction(write=False) as session:
            result = await import_app(
                session, catalog, changed_app(), actor="bench", now=NOW, dry_run=True
            )
        plan_s = time.perf_counter() - began
        assert result.plan is not None and result.plan.can_apply, result.plan
        touched = {c.change.field: c.records for c in result.plan.forms[0].changes}

        bare_rename_s = await _timed_bare(db, BARE_RENAME_SQL[db.dialect])
        bare_set_s = await _timed_bare(db, BARE_SET_SQL[db.dialect])

        migrate_s, strategy = await _apply(db, catalog, changed_app())
        figures: dict[str, Any] = {
            "database": db.dialect,
            "records": count,
            "plan_s": round(plan_s, 3),
            "bare_count_s": round(count_s, 3),
            "plan_vs_count": round(plan_s / count_s, 1),
            "touched": touched,
            "bare_rename_set_update_s": round(bare_set_s, 2),
            "migrate_s": round(migrate_s, 2),
            "migrate_strategy": strategy,
            "migrated_per_s": round(count / migrate_s),
            "migrate_vs_bare_update": round(migrate_s / bare_set_s, 1),
        }
        if postgres:
            with _batches_only():
                batches_s, batches = await _apply(db, catalog, changed_app("bench_b"))
            assert batches == "batches", batches
            figures.update(
                batches_s=round(batches_s, 2),
                batches_per_s=round(count / batches_s),
                batches_vs_bare_update=round(batches_s / bare_set_s, 1),
                batches_vs_set_based=round(batches_s / migrate_s, 1),
            )
            digests = []
            async with db.engine.connect() as conn:
                for key in apps:
                    records = await conn.scalar(
                        text(
                            "SELECT md5(string_agg(right(id, 24) || data::text || version "
                            "|| form_version, ',' ORDER BY right(id, 24))) FROM records "
                            f"WHERE app = '{key}'"
                        )
                    )
                    history = await conn.scalar(
                        text(
                            "SELECT md5(string_agg(right(record_id, 24) || version || "
                            "form_version || operation || coalesce(before::text, '') || '|' "
                            "|| coalesce(added::text, '') || coalesce(changed::text, ''), ',' "
                            "ORDER BY right(record_id, 24), version)) FROM record_history "
                            f"WHERE app = '{key}'"
                        )
                    )
                    digests.append((records, history))
            one, two = digests
            assert one == two, "set-based and batches stored different records or history"
        async with db.engine.connect() as conn:
            figures["history_rows"] = await conn.scalar(
                text(
                    "SELECT count(*) FROM record_history "
                    "WHERE operation = 'migrate' AND app = 'bench'"
                )
            )

        # a rename alone (phone -> mobile again): set-based on PostgreSQL
        back = original_app()
        back["migrations"] = [{"form": "customer", "rename": {"phone": "mobile"}}]
        next(f for f in back["forms"][0]["fields"] if f["key"] == "age")["max"] = 120
        back["forms"][0]["fields"].append({"key": "segment", "type": "text", "required": True})
        rename_only_s, rename_strategy = await _apply(db, catalog, back)
        figures.update(
            bare_rename_update_s=round(bare_rename_s, 2),
            rename_only_s=round(rename_only_s, 2),
            rename_only_strategy=rename_strategy,
            rename_only_vs_bare_rename=round(rename_only_s / bare_rename_s, 1),
        )
        return figures
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
