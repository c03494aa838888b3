"""Pivot engine benchmark: the engine's one statement vs hand-written SQL vs pandas.

Pivot: rows = department x month (``seen_at`` bucketed in Asia/Shanghai), columns =
channel (a field of the visit), measures = count, avg(satisfaction), count distinct patient.

1. PostgreSQL, 1,000,000 visit records (``--quick``: 100,000): the engine's statement
   (cells only, and with totals = GROUPING SETS) against a hand-written ``GROUP BY`` (and a
   hand-written ``GROUPING SETS``) over the same table — target <= 1.5x — and against loading
   the rows into pandas and pivoting there (with totals: ``margins=True``) — target: the
   engine >= 5x faster.
2. SQLite, 100,000 visit records (``--quick``: 20,000): the same pivot — target about 1 s.

Run: ``python -m tests.bench.bench_reports [--quick]``. Needs PostgreSQL
(FORMLOOM_BENCH_POSTGRES_URL, default database formloom_bench_helper_c on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from formloom.engines.forms import FormSpec
from formloom.engines.reports import PivotSpec, ReportTarget, compile_pivot
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models import Record

URL = os.environ.get(
    "FORMLOOM_BENCH_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_helper_c",
)
ZONE = "Asia/Shanghai"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
DEPARTMENTS = ["cardiology", "dermatology", "pediatrics", "oncology", "general", "surgery"]
CHANNELS = ["walk_in", "wechat", "referral", "web"]
VISIT = FormSpec.model_validate(
    {
        "key": "visit",
        "label": "Visit",
        "fields": [
            {"key": "patient", "type": "relation", "target": "visit"},
            {"key": "department", "type": "select", "options": [{"value": d} for d in DEPARTMENTS]},
            {"key": "channel", "type": "select", "options": [{"value": c} for c in CHANNELS]},
            {"key": "satisfaction", "type": "integer"},
            {"key": "seen_at", "type": "datetime"},
        ],
    }
)
FORMS = {"visit": VISIT}


def pivot(totals: bool) -> PivotSpec:
    return PivotSpec.model_validate(
        {
            "form": "visit",
            "rows": [{"field": "department"}, {"field": "seen_at", "bucket": "month"}],
            "columns": [{"field": "channel"}],
            "measures": [
                {"key": "n", "op": "count"},
                {"key": "satisfaction", "op": "avg", "field": "satisfaction"},
                {"key": "patients", "op": "count_distinct", "field": "patient"},
            ],
            "totals": totals,
        }
    )


# Text compared in code point order (COLLATE "C"), as the engine does: with the server's
# locale collation the sorts behind GROUPING SETS / count(DISTINCT) cost ~1.6x more.
HAND_PG = """
SELECT (data->>'department') COLLATE "C", to_char(timezone('Asia/Shanghai',
       CAST(data->>'seen_at' AS timestamptz)), 'YYYY-MM'), (data->>'channel') COLLATE "C",
       count(*), avg(CAST(data->>'satisfaction' AS numeric)),
       count(DISTINCT (data->>'patient') COLLATE "C")
FROM records WHERE app = 'bench' AND form = 'visit' AND deleted_at IS NULL
GROUP BY {grouping}
"""
HAND_PG_CELLS = HAND_PG.format(grouping="1, 2, 3")
HAND_PG_TOTALS = HAND_PG.format(grouping="GROUPING SETS ((1, 2, 3), (1, 2), (3), ())")

# One INSERT ... SELECT generates the rows inside PostgreSQL (fast, no client round trips).
GENERATE_PG = """
INSERT INTO records (id, app, form, form_version, data, version, created_at, created_by,
                     updated_at, updated_by, deleted_at)
SELECT 'v' || lpad(g::text, 9, '0'), 'bench', 'visit', 1,
       jsonb_strip_nulls(jsonb_build_object(
         'patient', 'p' || ((g * 7919) % :patients),
         'department', (ARRAY['cardiology','dermatology','pediatrics','oncology','general',
                              'surgery'])[1 + (g * 31) % 6],
         'channel', CASE WHEN g % 50 = 0 THEN NULL
                         ELSE (ARRAY['walk_in','wechat','referral','web'])[1 + (g * 17) % 4] END,
         'satisfaction', CASE WHEN g % 20 = 0 THEN NULL ELSE 1 + (g * 13) % 10 END,
         'seen_at', to_char(timestamp '2024-01-01'
                              + ((g * 104729) % 63072000) * interval '1 second',
                            'YYYY-MM-DD"T"HH24:MI:SS"Z"'))),
       1, now(), 'bench', now(), 'bench', NULL
FROM generate_series(1::bigint, :count) AS g
"""


async def timed(run: Callable[[], Awaitable[Any]], repeat: int) -> float:
    await run()  # warm-up (plans, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def prepare_postgres(count: int) -> Database:
    target = make_url(URL)
    admin = create_async_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        exists = await conn.scalar(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        )
        if not exists:
            await conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    await admin.dispose()
    db = Database(URL)
    await upgrade(db)
    async with db.engine.begin() as conn:
        have = await conn.scalar(
            # (other benchmarks leave bench/visit records of another shape behind)
            text(
                "SELECT CASE WHEN bool_and(data ? 'seen_at') THEN count(*) ELSE -1 END "
                "FROM records WHERE app = 'bench' AND form = 'visit'"
            )
        )
        if have != count:
            print(f"  generating {count:,} visit records ...", flush=True)
            await conn.execute(text("DELETE FROM records WHERE app = 'bench'"))
            await conn.execute(text(GENERATE_PG), {"count": count, "patients": max(count // 20, 1)})
    async with db.engine.connect() as conn:
        await conn.execute(text("COMMIT"))
        await conn.execute(text("VACUUM ANALYZE records"))
    return db


def pandas_pivot(rows: list[Any], totals: bool) -> pd.DataFrame:
    """The pandas way: load every record's data, bucket and pivot in Python (with totals:
    ``margins``, pandas' row and column totals)."""
    frame = pd.DataFrame([r if isinstance(r, dict) else json.loads(r) for r in rows])
    seen = pd.to_datetime(frame["seen_at"], utc=True).dt.tz_convert(ZONE)
    frame["month"] = seen.dt.strftime("%Y-%m")
    frame["one"] = 1
    frame["channel"] = frame["channel"].fillna("(empty)")  # the engine's "(empty)" group
    return frame.pivot_table(
        index=["department", "month"],
        columns="channel",
        values=["one", "satisfaction", "patient"],
        aggfunc={"one": "count", "satisfaction": "mean", "patient": "nunique"},
        margins=totals,
    )


async def bench_postgres(count: int, repeat: int) -> None:
    db = await prepare_postgres(count)
    target = ReportTarget(Record.__table__, "bench")
    figures: dict[str, float] = {}
    try:
        async with db.engine.connect() as conn:
            for totals in (False, True):
                query = compile_pivot(
                    pivot(totals), FORMS, target, dialect="postgresql", time_zone=ZONE, now=NOW
                )
                statement = query.statement

                async def engine(statement: Any = statement, query: Any = query) -> None:
                    query.reshape((await conn.execute(statement)).all())

                hand_sql = text(HAND_PG_TOTALS if totals else HAND_PG_CELLS)

                async def hand(hand_sql: Any = hand_sql) -> None:
                    (await conn.execute(hand_sql)).all()

                name = "with totals" if totals else "cells only"
                figures[f"engine {name}"] = await timed(engine, repeat)
                figures[f"hand {name}"] = await timed(hand, repeat)

            for totals in (False, True):

                async def with_pandas(totals: bool = totals) -> None:
                    rows = (
                        await conn.execute(
                            text(
                                "SELECT data FROM records WHERE app = 'bench' "
                                "AND form = 'visit' AND deleted_at IS NULL"
                            )
                        )
                    ).scalars()
                    pandas_pivot(list(rows), totals)

                name = "with totals" if totals else "cells only"
                figures[f"pandas {name}"] = await timed(with_pandas, 1)
    finally:
        await db.dispose()
    print(f"PostgreSQL, {count:,} visits (median of {repeat}):")
    for name, seconds in figures.items():
        print(f"  {name:<22} {seconds * 1000:9.0f} ms")
    for name in ("cells only", "with totals"):
        ratio = figures[f"engine {name}"] / figures[f"hand {name}"]
        print(f"  engine / hand-written SQL ({name}): {ratio:.2f}x (target <= 1.5x)")
    for name in ("cells only", "with totals"):
        speedup = figures[f"pandas {name}"] / figures[f"engine {name}"]
        print(f"  pandas / engine ({name}): {speedup:.1f}x faster (target >= 5x)")


async def bench_sqlite(count: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = Database(f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}")
        try:
            await upgrade(db)
            now = datetime.now(UTC)
            rows = []
            for g in range(1, count + 1):
                seen = 1704067200 + (g * 104729) % 63072000
                data: dict[str, Any] = {
                    "patient": f"p{(g * 7919) % max(count // 20, 1)}",
                    "department": DEPARTMENTS[(g * 31) % 6],
                    "seen_at": datetime.fromtimestamp(seen, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
                if g % 50:
                    data["channel"] = CHANNELS[(g * 17) % 4]
                if g % 20:
                    data["satisfaction"] = 1 + (g * 13) % 10
                rows.append(
                    {
                        "id": f"v{g:09d}",
                        "app": "bench",
                        "form": "visit",
                        "form_version": 1,
                        "data": data,
                        "version": 1,
                        "created_at": now,
                        "created_by": "bench",
                        "updated_at": now,
                        "updated_by": "bench",
                        "deleted_at": None,
                    }
                )
            async with db.engine.begin() as conn:
                await conn.execute(Record.__table__.insert(), rows)
            target = ReportTarget(Record.__table__, "bench")
            async with db.engine.connect() as conn:
                for totals in (False, True):
                    query = compile_pivot(
                        pivot(totals), FORMS, target, dialect="sqlite", time_zone=ZONE, now=NOW
                    )

                    async def engine(query: Any = query) -> None:
                        query.reshape((await conn.execute(query.statement)).all())

                    seconds = await timed(engine, repeat)
                    name = "with totals" if totals else "cells only"
                    print(
                        f"SQLite, {count:,} visits, engine {name}: {seconds * 1000:.0f} ms "
                        "(target about 1 s or less)"
                    )
        finally:
            await db.dispose()


async def main(quick: bool = False) -> None:
    await bench_postgres(100_000 if quick else 1_000_000, 3)
    await bench_sqlite(20_000 if quick else 100_000, 3)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
