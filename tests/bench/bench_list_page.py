"""The list page against the API page it shows, over a form with 1,000,000 records
(PostgreSQL).

``GET /apps/bench/forms/big`` (the server-rendered list: the page of records, a count capped
at 1,000, the filter bar's metadata, 100 rows of HTML) against
``GET /api/records/bench/big`` with the same page (same sort, same size, same filter), in
the same process, alternating requests; the figure is the ratio of the medians. Run twice:
the first page, and a page filtered on an indexed field.

Run: ``python -m tests.bench.bench_list_page [--quick]`` (or ``make bench``). Needs
PostgreSQL (FORMLOOM_BENCH_LIST_POSTGRES_URL, default database formloom_bench_list on
127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
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
    "FORMLOOM_BENCH_LIST_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_list",
)
PAGE = 100

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
                {"key": "n", "type": "integer"},
                {
                    "key": "kind",
                    "type": "select",
                    "options": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
                },
                {"key": "when", "type": "date"},
                {"key": "done", "type": "boolean"},
            ],
        }
    ],
}


async def _fresh_database() -> None:
    await fresh_postgres(URL)


async def _fill(db: Database, count: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO records (id, app, form, form_version, data, version, created_at,
                                     created_by, updated_at, updated_by)
                SELECT lpad(to_hex(g), 12, '0') || md5(g::text)::varchar(20),
                       'bench', 'big', 1,
                       jsonb_build_object('name', 'Item ' || g, 'city', 'city_' || (g % 100),
                                          'n', g, 'kind', (ARRAY['a','b','c'])[g % 3 + 1],
                                          'when', '2026-11-23', 'done', g % 2 = 0),
                       1, now(), 'bench', now(), 'bench'
                FROM generate_series(1, :count) AS g
                """
            ),
            {"count": count},
        )
        await conn.execute(text("ANALYZE records"))


async def _time(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> float:
    began = time.perf_counter()
    answer = await client.get(url, params=params)
    elapsed = time.perf_counter() - began
    assert answer.status_code == 200, answer.text[:500]
    return elapsed


async def bench(records: int, repeats: int) -> dict[str, Any]:
    settings = Settings(database_url=URL, password_hash="fast-test-only")
    app = create_app(settings)
    out: dict[str, Any] = {"records": records, "page": PAGE, "repeats": repeats}
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        async with await admin_client(app, db, settings) as client:
            answer = await client.post("/api/apps/import", json=APP)
            assert answer.status_code in (200, 201), answer.text
            await _fill(db, records)
            cases = {
                "first page": {},
                "filtered (indexed city)": {
                    "filter": json.dumps({"==": [{"var": "city"}, "city_42"]})
                },
            }
            for name, extra in cases.items():
                page_params = {**extra}
                api_params = {"limit": str(PAGE), "sort": "-id", **extra}
                html = (await client.get("/apps/bench/forms/big", params=page_params)).text
                assert html.count('data-testid="record-row"') == PAGE
                for _ in range(20):  # warm-up: connections, caches, prepared statements
                    await _time(client, "/apps/bench/forms/big", page_params)
                    await _time(client, "/api/records/bench/big", api_params)
                pages, apis = [], []
                for _ in range(repeats):
                    pages.append(await _time(client, "/apps/bench/forms/big", page_params))
                    apis.append(await _time(client, "/api/records/bench/big", api_params))
                page_ms = statistics.median(pages) * 1000
                api_ms = statistics.median(apis) * 1000
                out[name] = {
                    "list_page_ms": round(page_ms, 2),
                    "api_ms": round(api_ms, 2),
                    "ratio": round(page_ms / api_ms, 2),
                }
    return out


async def main(quick: bool) -> dict[str, Any]:
    await _fresh_database()
    db = Database(URL)
    await upgrade(db)
    await db.dispose()
    results = await bench(records=100_000 if quick else 1_000_000, repeats=50 if quick else 200)
    print(f"list page vs the API page it shows ({results['records']:,} records, page of {PAGE}):")
    for name in ("first page", "filtered (indexed city)"):
        print(f"    {name}: {json.dumps(results[name])}")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.quick))
