"""Quick search (`q`) over 1,000,000 patients on PostgreSQL and 100,000 on SQLite.

Each search goes through the record API (``GET /api/records/bench/patient?q=…``, a page of
50, ranked) in the same process as its baseline, the same API's page filtered on an indexed
field (``city == …``), alternating requests; the PostgreSQL figure is the ratio of the
medians (issue 17 asks for at most 2x), the SQLite one the median itself (at most 1 s).
Searched: a whole name (exact), the start of a name (prefix), three letters from the middle
of names (contains), the last eight digits of a phone number typed with spaces, and two
letters (too short for trigrams: the worst case, reading the form's rows).

Run: ``python -m tests.bench.bench_search [--quick] [--records N]`` (or ``make bench``).
Needs PostgreSQL (FORMLOOM_BENCH_SEARCH_POSTGRES_URL, default database formloom_bench_search
on 127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from formloom.platform.api import create_app
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.settings import Settings
from tests.bench.bench_records import admin_client
from tests.bench.databases import fresh_postgres

URL = os.environ.get(
    "FORMLOOM_BENCH_SEARCH_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_search",
)
PAGE = 50
SURNAMES = ["Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou"]

APP = {
    "format": "formloom.app/v1",
    "key": "bench",
    "version": "1.0.0",
    "label": "Bench",
    "forms": [
        {
            "key": "patient",
            "label": "Patient",
            "title_field": "name",
            "fields": [
                {"key": "name", "type": "text", "required": True},
                {"key": "phone", "type": "phone", "indexed": True},
                {"key": "city", "type": "text", "indexed": True},
            ],
        }
    ],
}


def name_of(g: int) -> str:
    """The name the fill gives record ``g`` (the SQL below, in Python)."""
    letters = (
        hashlib.md5(str(g).encode())
        .hexdigest()[:6]
        .translate(str.maketrans("0123456789", "ghijklmnop"))
    )
    return f"{letters.capitalize()} {SURNAMES[g % len(SURNAMES)]}"


# name: six letters from md5 (about 16^6 different: nearly unique) and a surname;
# phone: +86 139 xxxx xxxx, unique; city: one of 100 (the baseline's indexed filter).
FILL_POSTGRES = """
INSERT INTO records (id, app, form, form_version, data, version, created_at, created_by,
                     updated_at, updated_by)
SELECT lpad(to_hex(g), 12, '0') || md5(g::text)::varchar(20), 'bench', 'patient', 1,
       jsonb_build_object(
         'name', initcap(translate(substr(md5(g::text), 1, 6), '0123456789', 'ghijklmnop'))
                 || ' ' || (ARRAY[{surnames}])[g % 10 + 1],
         'phone', '+86 139 ' || lpad((g % 10000)::text, 4, '0') || ' '
                  || lpad((g / 10000)::text, 4, '0'),
         'city', 'city_' || (g % 100)),
       1, now(), 'bench', now(), 'bench'
FROM generate_series(1, :count) AS g
"""


def _sqlite_rows(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{g:012x}{g:020x}",
            "data": json.dumps(
                {
                    "name": name_of(g),
                    "phone": f"+86 139 {g % 10000:04d} {g // 10000:04d}",
                    "city": f"city_{g % 100}",
                }
            ),
        }
        for g in range(1, count + 1)
    ]


FILL_SQLITE = """
INSERT INTO records (id, app, form, form_version, data, version, created_at, created_by,
                     updated_at, updated_by)
VALUES (:id, 'bench', 'patient', 1, :data, 1, '2026-12-01 00:00:00', 'bench',
        '2026-12-01 00:00:00', 'bench')
"""


def searches(records: int) -> dict[str, str]:
    g = records * 7 // 9
    name = name_of(g)
    return {
        "exact name": name,
        "prefix (4 letters)": name[:4],
        "contains (3 letters)": name[2:5],
        "phone, last 8 digits": f"{g % 10000:04d} {g // 10000:04d}",
        "two letters": name[1:3],
    }


async def _time(client: httpx.AsyncClient, params: dict[str, str]) -> tuple[float, int]:
    began = time.perf_counter()
    answer = await client.get("/api/records/bench/patient", params=params)
    elapsed = time.perf_counter() - began
    assert answer.status_code == 200, answer.text[:500]
    return elapsed, len(answer.json()["items"])


async def run(url: str, records: int, repeats: int) -> dict[str, Any]:
    dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
    db = Database(url)
    await upgrade(db)
    async with db.engine.begin() as conn:
        if dialect == "postgresql":
            surnames = ", ".join(f"'{s}'" for s in SURNAMES)
            await conn.execute(text(FILL_POSTGRES.format(surnames=surnames)), {"count": records})
        else:
            await conn.execute(text(FILL_SQLITE), _sqlite_rows(records))
    await db.dispose()
    settings = Settings(database_url=url, password_hash="fast-test-only")
    app = create_app(settings)
    out: dict[str, Any] = {"dialect": dialect, "records": records, "page": PAGE}
    async with app.router.lifespan_context(app):
        platform_db: Database = app.state.platform.db
        async with await admin_client(app, platform_db, settings) as client:
            began = time.perf_counter()
            # the import creates the search indexes over the rows already there
            answer = await client.post("/api/apps/import", json=APP)
            assert answer.status_code in (200, 201), answer.text
            out["import_with_indexes_s"] = round(time.perf_counter() - began, 1)
            if dialect == "postgresql":
                async with platform_db.engine.begin() as conn:
                    await conn.execute(text("ANALYZE records"))
            baseline = {
                "limit": str(PAGE),
                "filter": json.dumps({"==": [{"var": "city"}, "city_42"]}),
            }
            for name, term in searches(records).items():
                params = {"limit": str(PAGE), "q": term}
                for _ in range(5):  # warm-up
                    await _time(client, baseline)
                    await _time(client, params)
                base_times, search_times, found = [], [], 0
                for _ in range(repeats):
                    base_times.append((await _time(client, baseline))[0])
                    elapsed, found = await _time(client, params)
                    search_times.append(elapsed)
                search_ms = statistics.median(search_times) * 1000
                base_ms = statistics.median(base_times) * 1000
                out[name] = {
                    "q": term,
                    "found": found,
                    "search_ms": round(search_ms, 1),
                    "indexed_list_ms": round(base_ms, 1),
                    "ratio": round(search_ms / base_ms, 2),
                }
    return out


def _print(results: dict[str, Any]) -> None:
    print(
        f"search on {results['dialect']} ({results['records']:,} patients, page of {PAGE}; "
        f"the import built the indexes in {results['import_with_indexes_s']} s):"
    )
    for name in searches(results["records"]):
        print(f"    {name}: {json.dumps(results[name], ensure_ascii=False)}")


async def main(quick: bool, records: int | None = None) -> None:
    await fresh_postgres(URL)
    big = records or (100_000 if quick else 1_000_000)
    _print(await run(URL, big, 10 if quick else 30))
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{Path(folder) / 'search.db'}"
        _print(await run(url, 20_000 if quick else 100_000, 5 if quick else 15))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--records", type=int, default=None, help="PostgreSQL records")
    args = parser.parse_args()
    asyncio.run(main(args.quick, args.records))
