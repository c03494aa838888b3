"""Bulk creates against single creates, on SQLite and PostgreSQL.

The same 7-field form (one unique field, so the unique claims are exercised) is filled two
ways in one process: ``n`` single ``POST /api/records/bulkbench/item`` calls (8 concurrent
in-process clients, as in bench_records) and one ``POST .../bulk`` of ``n`` creates. Both
run every check, write a history row and an audit row per record and claim the unique
value; the figure is the ratio of the two times (target: bulk ≥ 10× faster at n = 10,000).

Run: ``python -m tests.bench.bench_bulk [--quick] [--sqlite-only]`` (or ``make bench``).
PostgreSQL: FORMLOOM_BENCH_POSTGRES_URL, default database formloom_bench on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from formloom.platform.api import create_app
from formloom.platform.models import AuditEntry, Record, RecordHistory, RecordUnique
from formloom.platform.settings import Settings
from tests.bench.bench_records import URL, admin_client
from tests.bench.databases import fresh_postgres

FORM = "/api/records/bulkbench/item"

APP = {
    "format": "formloom.app/v1",
    "key": "bulkbench",
    "version": "1.0.0",
    "label": "Bulk bench",
    "forms": [
        {
            "key": "item",
            "label": "Item",
            "fields": [
                {"key": "name", "type": "text", "required": True, "max_length": 100},
                {"key": "code", "type": "text", "unique": True},
                {"key": "city", "type": "text", "indexed": True},
                {"key": "qty", "type": "integer", "min": 0},
                {"key": "price", "type": "number", "min": 0},
                {"key": "when", "type": "date"},
                {
                    "key": "kind",
                    "type": "select",
                    "options": [{"value": "a"}, {"value": "b"}, {"value": "c"}],
                },
            ],
        }
    ],
}


def data(i: int) -> dict[str, Any]:
    return {
        "name": f"Item {i}",
        "code": f"C-{i:07d}",
        "city": f"city_{i % 100}",
        "qty": i % 50,
        "price": round(i * 0.37, 2),
        "when": "2026-11-23",
        "kind": "abc"[i % 3],
    }


async def run(url: str, n: int) -> dict[str, Any]:
    """Seconds for ``n`` single creates and for one bulk call of ``n`` creates, and the rows
    written per record (checked, so a fast but incomplete bulk path cannot pass)."""
    settings = Settings(database_url=url, password_hash="fast-test-only", worker_in_serve=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db = app.state.platform.db
        async with await admin_client(app, db, settings) as api:
            assert (await api.post("/api/apps/import", json=APP)).status_code in (200, 201)
            # warm-up of both paths
            await api.post(f"{FORM}/bulk", json={"items": [
                {"op": "create", "data": data(i)} for i in range(10_000_000, 10_000_050)
            ]})  # fmt: skip
            began = time.perf_counter()
            await _drive_singles(api, n)
            singles = time.perf_counter() - began
            items = [{"op": "create", "data": data(i)} for i in range(n, 2 * n)]
            began = time.perf_counter()
            response = await api.post(f"{FORM}/bulk", json={"items": items})
            bulk = time.perf_counter() - began
            assert response.status_code == 200, response.text[:500]
            assert response.json()["created"] == n
        async with db.transaction(write=False) as session:
            rows = {}
            for model in (Record, RecordHistory, RecordUnique):
                table = model.__table__
                rows[model.__name__] = (
                    await session.execute(select(func.count()).select_from(table))
                ).scalar_one()
            audits = await session.execute(
                select(func.count()).where(AuditEntry.action == "record.create")
            )
            rows["AuditEntry"] = audits.scalar_one()
    expected = 2 * n + 50
    assert all(count == expected for count in rows.values()), rows
    return {"n": n, "singles_s": singles, "bulk_s": bulk, "ratio": singles / bulk}


async def _drive_singles(api: Any, n: int) -> None:
    queue = iter(range(n))

    async def worker() -> None:
        for i in queue:
            response = await api.post(FORM, json={"data": data(i)})
            if response.status_code != 201:
                raise RuntimeError(f"{response.status_code} {response.text}")

    await asyncio.gather(*[worker() for _ in range(8)])


async def main(quick: bool = False, sqlite_only: bool = False) -> None:
    n = 2_000 if quick else 10_000
    with tempfile.TemporaryDirectory() as folder:
        targets = [("SQLite", f"sqlite+aiosqlite:///{Path(folder) / 'bulk.db'}")]
        if not sqlite_only:
            targets.append(("PostgreSQL", URL))
        for name, url in targets:
            if url.startswith("postgresql"):
                await fresh_postgres(url)
            result = await run(url, n)
            print(
                f"{name}: {n:,} single creates {result['singles_s']:.2f} s, one bulk call "
                f"{result['bulk_s']:.2f} s: bulk {result['ratio']:.1f}x faster (target >= 10x)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.quick, arguments.sqlite_only))
