"""Rule engine benchmarks, each against a baseline run in the same process.

1. **Write cost with many rules** (SQLite and PostgreSQL): creating a record through the
   record service (validation, history, audit, rules, rule log — one transaction each) in an
   app with 10,000 rules over 100 forms, against the same write in an app with 100 rules over
   the same 100 forms. In both, the written form has one rule that matches (a ``set``); in
   the large app it also has 99 more (a third on create with conditions that are false, the
   rest on update — watching fields — and delete). Alternating rounds; the figure is the ratio
   of the medians.
2. **A daily rule over 1,000,000 patients** (PostgreSQL): the schedule timer of a
   "hypertension revisit" rule fires; one SQL query selects the 10,000 matching patients (the
   statement is printed), each is evaluated and one text message per patient goes to the
   outbox. Baselines: the same SELECT alone, and a bare bulk INSERT of 10,000 outbox rows.

Run: ``python -m tests.bench.bench_rules [--quick]`` (or ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from formloom.platform.apps import service as apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models import Record
from formloom.platform.models.automation import OutboxMessage, RuleRunLog, Timer
from formloom.platform.records.ids import new_id
from formloom.platform.records.service import RecordService
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings

PG_URL = os.environ.get(
    "FORMLOOM_BENCH_RULES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_rules",
)
ZONE = ZoneInfo("Asia/Shanghai")
FORMS = 100


def _form(number: int) -> dict[str, Any]:
    return {
        "key": f"f{number}",
        "label": f"Form {number}",
        "fields": [
            {"key": "name", "type": "text", "required": True},
            {"key": "n", "type": "integer"},
            *({"key": f"x{i}", "type": "text"} for i in range(5)),
            {"key": "flag", "type": "text"},
        ],
    }


def _rules(per_form: int) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for form in range(FORMS):
        key = f"f{form}"
        rules.append(
            {
                "key": f"{key}_mark",
                "on": {"form": key, "event": "created"},
                "then": [{"type": "set", "values": {"flag": "seen"}}],
            }
        )
        for i in range(1, per_form):
            kind = i % 3
            if kind == 0:
                rules.append(
                    {
                        "key": f"{key}_big_{i}",
                        "on": {"form": key, "event": "created"},
                        "if": {">": [{"var": "record.n"}, 1000 + i]},
                        "then": [
                            {
                                "type": "notify",
                                "channel": "in_app",
                                "recipients": [{"role": "staff"}],
                                "template": "n={{ record.n }}",
                            }
                        ],
                    }  # fmt: skip
                )
            elif kind == 1:
                rules.append(
                    {
                        "key": f"{key}_watch_{i}",
                        "on": {"form": key, "event": "updated", "fields": [f"x{i % 5}"]},
                        "then": [{"type": "set", "values": {"flag": f"x{i % 5}"}}],
                    }
                )
            else:
                rules.append(
                    {
                        "key": f"{key}_gone_{i}",
                        "on": {"form": key, "event": "deleted"},
                        "then": [{"type": "create_task", "role": "staff", "title": "gone"}],
                    }
                )
    return rules


def _app(key: str, per_form: int) -> dict[str, Any]:
    return {
        "format": "formloom.app/v1",
        "key": key,
        "version": "1.0.0",
        "label": key,
        "roles": [{"key": "staff", "label": "Staff"}],
        "forms": [_form(number) for number in range(FORMS)],
        "rules": _rules(per_form),
    }


async def _fresh(url: str) -> None:
    target = make_url(url)
    if target.get_backend_name() != "postgresql":
        return
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
            await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    finally:
        await admin.dispose()


async def bench_writes(url: str, rounds: int, per_round: int) -> dict[str, Any]:
    await _fresh(url)
    db = Database(url)
    catalog = AppCatalog()
    now = datetime.now(ZONE)
    try:
        await upgrade(db)
        for key, per_form in (("rules100", 1), ("rules10k", 100)):
            async with db.transaction() as session:
                await apps.import_app(session, catalog, _app(key, per_form), actor="bench", now=now)

        async def write(app: str, count: int) -> float:
            started = time.perf_counter()
            for i in range(count):
                async with db.transaction() as session:
                    service = RecordService(session, catalog, actor="bench", now=now)
                    await service.create(app, "f7", {"name": f"r{i}", "n": i % 100, "x1": "a"})
            return (time.perf_counter() - started) / count * 1000

        await write("rules100", 20)  # warm-up: caches, connections
        await write("rules10k", 20)
        small: list[float] = []
        large: list[float] = []
        for _ in range(rounds):
            small.append(await write("rules100", per_round))
            large.append(await write("rules10k", per_round))
        async with db.transaction(write=False) as session:
            logged = (
                await session.execute(select(RuleRunLog.app, func.count()).group_by(RuleRunLog.app))
            ).all()
        return {
            "rules100_ms": statistics.median(small),
            "rules10k_ms": statistics.median(large),
            "ratio": statistics.median(large) / statistics.median(small),
            "log_rows": dict(logged),  # type: ignore[arg-type]
        }
    finally:
        await db.dispose()


REVISIT = {
    "key": "revisit",
    "on": {
        "form": "patient",
        "at": "09:00",
        "filter": {
            "and": [
                {"in": ["hypertension", {"var": "tags"}]},
                {"==": [{"var": "last_visit"}, {"date_add": [{"today": []}, -85, "day"]}]},
            ]
        },
    },
    "then": [
        {
            "type": "notify",
            "channel": "sms_gateway",
            "recipients": [{"address": {"var": "record.phone"}}],
            "template": "{{ record.name }}, please book your blood-pressure revisit.",
        }
    ],
}
CLINIC = {
    "format": "formloom.app/v1",
    "key": "clinic",
    "version": "1.0.0",
    "label": "Clinic",
    "forms": [
        {
            "key": "patient",
            "label": "Patient",
            "fields": [
                {"key": "name", "type": "text", "required": True},
                {"key": "phone", "type": "phone"},
                {
                    "key": "tags",
                    "type": "multiselect",
                    "options": [
                        {"value": "hypertension", "label": "Hypertension"},
                        {"value": "vip", "label": "VIP"},
                    ],
                },  # fmt: skip
                {"key": "last_visit", "type": "date", "indexed": True},
            ],
        }
    ],
    "rules": [REVISIT],
}


async def bench_schedule(patients: int, matching: int) -> dict[str, Any]:
    """Fire the daily revisit rule over ``patients`` patients of which ``matching`` match."""
    run_at = datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)
    due_visit = (run_at.date() - timedelta(days=85)).isoformat()
    db = Database(PG_URL)
    catalog = AppCatalog()
    settings = Settings(database_url=PG_URL, timezone="Asia/Shanghai")
    try:
        await upgrade(db)
        async with db.transaction() as session:
            have = (
                await session.execute(
                    select(func.count()).select_from(Record).where(Record.app == "clinic")
                )
            ).scalar_one()
        if have != patients:
            async with db.transaction() as session:
                await session.execute(delete(Record).where(Record.app == "clinic"))
                await session.execute(delete(Timer))
                await apps.import_app(
                    session, catalog, CLINIC, actor="bench", now=run_at - timedelta(days=1)
                )
                every = patients // matching
                await session.execute(
                    text(
                        """
                        INSERT INTO records (id, app, form, form_version, data, version,
                            created_at, created_by, updated_at, updated_by)
                        SELECT lpad(to_hex(i), 32, '0'), 'clinic', 'patient', 1,
                            jsonb_build_object(
                                'name', 'Patient ' || i,
                                'phone', '+86138' || lpad(i::text, 8, '0'),
                                'tags', CASE WHEN i % :every = 0
                                    THEN '["hypertension"]'::jsonb ELSE '["vip"]'::jsonb END,
                                'last_visit', CASE WHEN i % (:every / 2) = 0
                                    THEN :due ELSE '2026-01-01' END),
                            1, now(), 'bench', now(), 'bench'
                        FROM generate_series(1, :patients) AS i
                        """
                    ),
                    {"every": every, "due": due_visit, "patients": patients},
                )
            async with db.engine.connect() as conn:
                await conn.execute(text("ANALYZE records"))
        async with db.transaction() as session:
            await session.execute(delete(OutboxMessage))
            await session.execute(delete(RuleRunLog))
            await session.execute(
                text(
                    "UPDATE timers SET status = 'pending', due_at = :due "
                    "WHERE kind = 'schedule' AND app = 'clinic'"
                ),
                {"due": run_at.astimezone(UTC)},
            )
            service = RecordService(session, catalog, actor="bench", now=run_at)
            statement = await service.matching_statement(
                "clinic", "patient", REVISIT["on"]["filter"]
            )
            sql = str(
                statement.compile(
                    dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
                )
            )
            started = time.perf_counter()
            selected = len((await session.execute(statement)).all())
            select_s = time.perf_counter() - started

        worker = Worker(db, catalog, settings)
        started = time.perf_counter()
        report = await worker.fire_timers(run_at)
        fire_s = time.perf_counter() - started
        async with db.transaction(write=False) as session:
            queued = (
                await session.execute(select(func.count()).select_from(OutboxMessage))
            ).scalar_one()

        # baseline: a bare bulk insert of as many outbox rows
        rows = [
            {
                "id": new_id(), "app": "bare", "rule": "bare", "kind": "notify",
                "channel": "sms_gateway", "idempotency_key": f"bare:{i}",
                "payload": {"recipients": [{"address": "+86"}], "template": "x",
                            "context": {"record": {"name": f"P{i}"}}},
                "status": "pending", "attempts": 0, "next_attempt_at": run_at,
                "created_at": run_at,
            }
            for i in range(queued)
        ]  # fmt: skip
        started = time.perf_counter()
        async with db.transaction() as session:
            for start in range(0, len(rows), 5_000):
                await session.execute(insert(OutboxMessage), rows[start : start + 5_000])
        insert_s = time.perf_counter() - started
        async with db.transaction() as session:
            await session.execute(delete(OutboxMessage).where(OutboxMessage.app == "bare"))
        return {
            "patients": patients,
            "selected": selected,
            "queued": queued,
            "fired": report.timers_fired,
            "fire_s": fire_s,
            "select_s": select_s,
            "bare_insert_s": insert_s,
            "sql": sql,
        }
    finally:
        await db.dispose()


async def main(quick: bool = False) -> None:
    rounds, per_round = (3, 30) if quick else (7, 60)
    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite+aiosqlite:///{folder}/rules.db"
        for name, url in (("SQLite", sqlite), ("PostgreSQL", PG_URL)):
            result = await bench_writes(url, rounds, per_round)
            print(
                f"record create, {name}: 100 rules {result['rules100_ms']:.2f} ms, "
                f"10,000 rules {result['rules10k_ms']:.2f} ms -> {result['ratio']:.2f}x "
                f"(target <= 1.2x; rule log rows {result['log_rows']})"
            )
    patients, matching = (100_000, 1_000) if quick else (1_000_000, 10_000)
    result = await bench_schedule(patients, matching)
    print(f"daily rule over {result['patients']:,} patients (PostgreSQL):")
    print(f"  selection SQL: {result['sql']}")
    print(
        f"  the SELECT alone: {result['selected']:,} rows in {result['select_s']:.2f} s; "
        f"a bare INSERT of {result['queued']:,} outbox rows: {result['bare_insert_s']:.2f} s"
    )
    print(
        f"  the timer firing (select, evaluate, enqueue, log): {result['queued']:,} "
        f"messages in {result['fire_s']:.2f} s (target < 10 s); "
        f"{result['fire_s'] / (result['select_s'] + result['bare_insert_s']):.2f}x the two "
        "baselines together"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
