"""Pivots with many cells: the report endpoint against the engine's SQL alone, and pandas.

Issue 20's two shapes over 20,000 generated visits (``tests/platform/reports/factories.py``:
nulls, absent keys, datetimes around local midnight, multiselects, dangling relations):

* **A**: rows = department x week of ``seen_at`` (in Asia/Shanghai), columns = symptoms (a
  multiselect), four measures (count, count distinct patient, sum of weight, average
  satisfaction), totals and subtotals.
* **B**: rows = department x quarter x completed, columns = channel x symptoms, count and
  average satisfaction, totals and subtotals.

For each database it times, in the same process: the engine's statement alone (compile,
execute, fetch the rows) as the endpoint runs it (B's measures add up: the records are
grouped once and the grouping sets group those groups; A's distinct count needs every set
grouped from the records), the statement with every set grouped from the records
(``roll_up=False``, as before), through the form's typed projection (its
generation checked ``ready`` and holding every live record, filled by the triggers on the
insert), and on the records alone as before projections; ``POST /api/reports/clinic`` with
the same spec (JSON; JSON with
every cell's drill-down, ``drill=inline``, as the endpoint answered before issue 20; and
``format=csv``), and pandas given the same records loaded from the database (load the
rows, compute the dimensions, ``pivot_table`` with margins). Target (issue 20): the endpoint
<= 1.5x the engine's SQL alone, and faster than pandas.

Run: ``python -m tests.bench.bench_report_cells [--quick]`` (or ``make bench``). Needs
PostgreSQL (FORMLOOM_BENCH_CELLS_POSTGRES_URL, default database formloom_bench_cells on
127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import text

from formloom.engines.reports import PivotSpec, ReportTarget, compile_pivot
from formloom.platform.api import create_app
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models import Record
from formloom.platform.records import projections
from formloom.platform.settings import Settings
from tests.bench.bench_records import admin_client
from tests.bench.databases import fresh_postgres
from tests.platform.reports.factories import APP, FORMS, generate

URL = os.environ.get(
    "FORMLOOM_BENCH_CELLS_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_cells",
)
ZONE = "Asia/Shanghai"
NOW = datetime(2026, 3, 1, tzinfo=UTC)

SPEC_A: dict[str, Any] = {
    "form": "visit",
    "rows": [{"field": "department"}, {"field": "seen_at", "bucket": "week"}],
    "columns": [{"field": "symptoms"}],
    "measures": [
        {"key": "n", "op": "count"},
        {"key": "patients", "op": "count_distinct", "field": "patient"},
        {"key": "weight", "op": "sum", "field": "weight"},
        {"key": "satisfaction", "op": "avg", "field": "satisfaction"},
    ],
    "totals": True,
    "subtotals": True,
}
SPEC_B: dict[str, Any] = {
    "form": "visit",
    "rows": [
        {"field": "department"},
        {"field": "seen_at", "bucket": "quarter"},
        {"field": "completed"},
    ],
    "columns": [{"field": "channel"}, {"field": "symptoms"}],
    "measures": [
        {"key": "n", "op": "count"},
        {"key": "satisfaction", "op": "avg", "field": "satisfaction"},
    ],
    "totals": True,
    "subtotals": True,
}
SPECS = {"A": SPEC_A, "B": SPEC_B}


def app_document() -> dict[str, Any]:
    return {
        "format": "formloom.app/v1",
        "key": APP,
        "version": "1.0.0",
        "label": "Bench clinic",
        "forms": [form.model_dump(mode="json", exclude_none=True) for form in FORMS.values()],
    }


async def timed(*runs: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    """The median time of each of ``runs``, taken in turns (one of each, ``repeat`` times),
    so that a busy machine slows them alike and their ratio holds."""
    for run in runs:
        await run()  # warm-up (plans, caches)
    times: list[list[float]] = [[] for _ in runs]
    for _ in range(repeat):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            await run()
            times[i].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def pandas_pivot(rows: list[Any], spec: dict[str, Any]) -> pd.DataFrame:
    """The pandas way: the records' data, the dimensions computed in Python, pivot_table."""
    zone = ZoneInfo(ZONE)
    frame = pd.DataFrame([r if isinstance(r, dict) else json.loads(r) for r in rows])
    seen = pd.to_datetime(frame["seen_at"], utc=True).dt.tz_convert(zone)
    index: list[str] = []
    for dim in spec["rows"]:
        name = dim["field"] + (f"_{dim['bucket']}" if "bucket" in dim else "")
        if dim.get("bucket") == "week":
            frame[name] = (seen.dt.tz_localize(None).dt.to_period("W-SUN").dt.start_time).astype(
                str
            )
        elif dim.get("bucket") == "quarter":
            frame[name] = seen.dt.tz_localize(None).dt.to_period("Q").astype(str)
        else:
            frame[name] = frame[dim["field"]].astype(str)
        frame[name] = frame[name].fillna("(empty)")
        index.append(name)
    columns = []
    for dim in spec["columns"]:
        if dim["field"] == "symptoms":
            frame = frame.explode("symptoms")
        frame[dim["field"]] = frame[dim["field"]].fillna("(empty)").astype(str)
        columns.append(dim["field"])
    frame["one"] = 1
    aggregates: dict[str, str] = {"one": "count"}
    for measure in spec["measures"]:
        if measure["op"] == "count_distinct":
            aggregates[measure["field"]] = "nunique"
        elif measure["op"] in ("sum", "avg"):
            frame[measure["field"]] = pd.to_numeric(frame[measure["field"]], errors="coerce")
            aggregates[measure["field"]] = "sum" if measure["op"] == "sum" else "mean"
    return frame.pivot_table(
        index=index, columns=columns, values=list(aggregates), aggfunc=aggregates, margins=True
    )


async def bench(url: str, label: str, visits: int, repeat: int) -> dict[str, Any]:
    # no timers or outbox in this process: its ticks would land in the measured requests
    settings = Settings(
        database_url=url, password_hash="fast-test-only", timezone=ZONE, worker_in_serve=False
    )
    app = create_app(settings, freeze_startup_objects=True)  # as `formloom serve`
    figures: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        async with await admin_client(app, db, settings) as client:
            answer = await client.post("/api/apps/import", json=app_document())
            assert answer.status_code in (200, 201), answer.text
            rows = generate(20, patients=max(visits // 20, 10), visits=visits)
            async with db.engine.begin() as conn:
                await conn.execute(Record.__table__.insert(), rows)
                if dialect == "postgresql":
                    await conn.execute(text("ANALYZE records"))
            records_only = ReportTarget(Record.__table__, APP)
            async with db.transaction(write=False) as session:
                ready = await projections.ready(session, APP, "visit")
                assert ready is not None, "the visit form's projection is not ready"
                projection = ready.table()
                held = (
                    await session.execute(text(f'SELECT count(*) FROM "{ready.table_name}"'))
                ).scalar_one()
                live = sum(1 for row in rows if row["form"] == "visit" and not row["deleted_at"])
                assert held == live, (held, live)  # filled by the triggers on insert
            if dialect == "postgresql":  # as autovacuum would have by now
                async with db.engine.begin() as conn:
                    await conn.execute(text(f'ANALYZE "{ready.table_name}"'))
            # a server holds no generated documents: their objects would make every full
            # garbage collection in the timed requests (and in pandas) walk 20,000 dicts
            del rows
            gc.collect()
            target = ReportTarget(Record.__table__, APP, projection=projection)
            for name, raw in SPECS.items():
                spec = PivotSpec.model_validate(raw)
                sizes: dict[str, int] = {}

                async def sql_alone(
                    spec: PivotSpec = spec, target: ReportTarget = target, roll_up: bool = True
                ) -> None:
                    query = compile_pivot(
                        spec,
                        FORMS,
                        target,
                        dialect=dialect,
                        time_zone=ZONE,
                        now=NOW,
                        roll_up=roll_up,
                    )
                    async with db.engine.connect() as conn:
                        (await conn.execute(query.statement)).all()

                async def endpoint(
                    raw: dict[str, Any] = raw,
                    fmt: str = "json",
                    sizes: dict[str, int] = sizes,
                    drill: str = "",
                ) -> None:
                    params = {"format": fmt, **({"drill": drill} if drill else {})}
                    answer = await client.post(f"/api/reports/{APP}", params=params, json=raw)
                    assert answer.status_code == 200, answer.text[:500]
                    sizes[fmt + drill] = len(answer.content)
                    if fmt == "json" and not drill:
                        result = answer.json()["result"]
                        sizes["cells"] = len(result["rows"]) * len(result["columns"])

                async def with_pandas(raw: dict[str, Any] = raw) -> None:
                    async with db.engine.connect() as conn:
                        data = (
                            await conn.execute(
                                text(
                                    "SELECT data FROM records WHERE app = :app AND "
                                    "form = 'visit' AND deleted_at IS NULL"
                                ),
                                {"app": APP},
                            )
                        ).scalars()
                        pandas_pivot(list(data), raw)

                sql, sets_sql, records_sql, json_ms, inline_ms, csv_ms, pandas_ms = await timed(
                    sql_alone,
                    lambda: sql_alone(roll_up=False),  # every grouping set by the database
                    lambda: sql_alone(target=records_only),
                    endpoint,
                    lambda: endpoint(drill="inline"),  # every cell's drill-down, as before
                    lambda: endpoint(fmt="csv"),
                    with_pandas,
                    repeat=repeat,
                )
                figures[name] = {
                    "cells": sizes["cells"],
                    "sql_ms": round(sql * 1000),
                    "rolled_up": compile_pivot(
                        spec, FORMS, target, dialect=dialect, time_zone=ZONE, now=NOW
                    ).rolled_up,
                    "sets_sql_ms": round(sets_sql * 1000),
                    "endpoint_over_sets_sql": round(json_ms / sets_sql, 2),
                    "records_sql_ms": round(records_sql * 1000),
                    "endpoint_ms": round(json_ms * 1000),
                    "csv_ms": round(csv_ms * 1000),
                    "inline_ms": round(inline_ms * 1000),
                    "inline_kb": round(sizes["jsoninline"] / 1024),
                    "pandas_ms": round(pandas_ms * 1000),
                    "json_kb": round(sizes["json"] / 1024),
                    "endpoint_over_sql": round(json_ms / sql, 2),
                    "csv_over_sql": round(csv_ms / sql, 2),
                }
    print(f"{label}, {visits:,} visits (median of {repeat}):")
    for name, row in figures.items():
        print(
            f"  {name}: {row['cells']:,} cells; SQL alone {row['sql_ms']} ms "
            f"({'sets grouped from the finest groups' if row['rolled_up'] else 'every set'}; "
            f"every set grouped from the records {row['sets_sql_ms']} ms; on the records "
            f"alone {row['records_sql_ms']} ms), endpoint "
            f"{row['endpoint_ms']} ms ({row['endpoint_over_sql']}x its SQL, target <= 1.5x; "
            f"{row['endpoint_over_sets_sql']}x the SQL of every set from the records; "
            f"{row['json_kb']} kB), CSV {row['csv_ms']} ms ({row['csv_over_sql']}x), "
            f"JSON with every drill-down {row['inline_ms']} ms ({row['inline_kb']} kB), "
            f"pandas from the database {row['pandas_ms']} ms"
        )
    return figures


async def main(quick: bool = False) -> dict[str, Any]:
    visits = 5_000 if quick else 20_000
    repeat = 3 if quick else 7
    await fresh_postgres(URL)
    database = Database(URL)
    await upgrade(database)
    await database.dispose()
    out = {"postgresql": await bench(URL, "PostgreSQL", visits, repeat)}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite+aiosqlite:///{Path(folder) / 'cells.db'}"
        database = Database(sqlite)
        await upgrade(database)
        await database.dispose()
        out["sqlite"] = await bench(sqlite, "SQLite", visits, repeat)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
