"""Record API benchmarks on PostgreSQL, each against a baseline run in the same process.

1. Create throughput: ``POST /api/records/bench/item`` through the whole service (validation,
   unique claims, history, one transaction) against a bare FastAPI + SQLAlchemy endpoint that
   inserts the same JSON row into the same table. Both are driven the same way (in-process
   ASGI, the same number of concurrent clients), alternating rounds; the figure is the ratio.
2. Indexed list: a filter on an ``indexed`` field, first page of 50, over 10,000 and over
   1,000,000 records of one form; prints the EXPLAIN plan (it must use the expression index)
   and the ratio of the two page costs.

Run: ``python -m tests.bench.bench_records [--quick]`` (or ``make bench``). Needs PostgreSQL
(FORMLOOM_BENCH_POSTGRES_URL, default database formloom_bench on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import FastAPI, Request
from sqlalchemy import text

from formloom.platform.api import create_app
from formloom.platform.auth import service as auth
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models import Record
from formloom.platform.records.ids import new_id
from formloom.platform.settings import Settings
from tests.bench.databases import fresh_postgres

URL = os.environ.get(
    "FORMLOOM_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench"
)

APP = {
    "format": "formloom.app/v1",
    "key": "bench",
    "version": "1.0.0",
    "label": "Bench",
    "forms": [
        {
            "key": "item",
            "label": "Item",
            "fields": [
                {"key": "name", "type": "text", "required": True, "max_length": 100},
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
        },
        {
            "key": "big",
            "label": "Big",
            "fields": [
                {"key": "city", "type": "text", "indexed": True},
                {"key": "n", "type": "integer"},
            ],
        },
        {
            "key": "small",
            "label": "Small",
            "fields": [
                {"key": "city", "type": "text", "indexed": True},
                {"key": "n", "type": "integer"},
            ],
        },
    ],
}


async def _fresh_database() -> None:
    await fresh_postgres(URL)


def bare_app(db: Database) -> FastAPI:
    """The baseline: parse the JSON body, insert one row, commit, answer with the row.

    As lean as such an endpoint can be written: the INSERT is built once and only the
    values are sent per request."""
    app = FastAPI()
    statement = Record.__table__.insert()

    @app.post("/bare")
    async def bare(request: Request) -> dict[str, Any]:
        body = await request.json()
        now = datetime.now(UTC)
        row = {
            "id": new_id(),
            "app": "bench",
            "form": "item",
            "form_version": 1,
            "data": body["data"],
            "version": 1,
            "created_at": now,
            "created_by": "bench",
            "updated_at": now,
            "updated_by": "bench",
        }
        async with db.transaction() as session:
            await session.execute(statement, row)
        return {**row, "created_at": now.isoformat(), "updated_at": now.isoformat()}

    return app


async def _token(db: Database, settings: Settings, name: str, **kwargs: Any) -> str:
    system = auth.system_principal("bench")
    now = auth_now()
    async with db.transaction() as session:
        roles = kwargs.pop("roles", None)
        user, _ = await auth.create_user(
            session,
            settings,
            who=system,
            now=now,
            username=name,
            password="bench password 1",
            **kwargs,
        )
        if roles:
            await auth.set_roles(session, None, user, roles, who=system, now=now)
        issued = await auth.issue(
            session, user, "bearer", now=now, lifetime=auth.lifetime_of("bearer", settings)
        )
    return issued.wire


def auth_now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def admin_client(app: FastAPI, db: Database, settings: Settings) -> httpx.AsyncClient:
    """An in-process client signed in as a platform admin."""
    token = await _token(db, settings, f"bench_admin_{new_id()[-8:]}", is_admin=True)
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://bench",
        headers={"Authorization": f"Bearer {token}"},
    )


def payload(i: int) -> dict[str, Any]:
    return {
        "data": {
            "name": f"Item {i}",
            "city": f"city_{i % 100}",
            "qty": i % 50,
            "price": round(i * 0.37, 2),
            "when": "2026-11-23",
            "kind": "abc"[i % 3],
        }
    }


async def _drive(
    client: httpx.AsyncClient, url: str, start: int, count: int, concurrency: int
) -> float:
    queue = iter(range(start, start + count))

    async def worker() -> None:
        for i in queue:
            response = await client.post(url, json=payload(i))
            if response.status_code not in (200, 201):
                raise RuntimeError(f"{url}: {response.status_code} {response.text}")

    began = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    return count / (time.perf_counter() - began)


async def bench_create(rounds: int, per_round: int, concurrency: int) -> dict[str, Any]:
    settings = Settings(database_url=URL, password_hash="fast-test-only")
    app = create_app(settings)
    results: dict[str, list[float]] = {"formloom": [], "bare": []}
    async with app.router.lifespan_context(app):
        platform_state = app.state.platform
        bare = bare_app(platform_state.db)
        async with (
            await admin_client(app, platform_state.db, settings) as api,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=bare), base_url="http://bench"
            ) as baseline,
        ):
            assert (await api.post("/api/apps/import", json=APP)).status_code in (200, 201)
            # warm-up: connections, caches, prepared statements
            await _drive(api, "/api/records/bench/item", 0, 200, concurrency)
            await _drive(baseline, "/bare", 0, 200, concurrency)
            n = 1000
            for _ in range(rounds):
                results["formloom"].append(
                    await _drive(api, "/api/records/bench/item", n, per_round, concurrency)
                )
                n += per_round
                results["bare"].append(await _drive(baseline, "/bare", n, per_round, concurrency))
                n += per_round
    ours, base = statistics.median(results["formloom"]), statistics.median(results["bare"])
    return {
        "formloom_per_s": round(ours),
        "bare_per_s": round(base),
        "ratio": round(ours / base, 3),
        "rounds": rounds,
        "per_round": per_round,
        "concurrency": concurrency,
    }


async def _fill(db: Database, form: str, count: int, cities: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO records (id, app, form, form_version, data, version, created_at,
                                     created_by, updated_at, updated_by)
                SELECT lpad(to_hex(g), 12, '0') || md5(g::text || :form)::varchar(20),
                       'bench', :form, 1,
                       jsonb_build_object('city', 'city_' || (g % :cities), 'n', g),
                       1, now(), 'bench', now(), 'bench'
                FROM generate_series(1, :count) AS g
                """
            ),
            {"form": form, "count": count, "cities": cities},
        )
        await conn.execute(text("ANALYZE records"))


async def bench_list(big: int, repeats: int) -> dict[str, Any]:
    settings = Settings(database_url=URL, password_hash="fast-test-only")
    app = create_app(settings)
    out: dict[str, Any] = {}
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        async with await admin_client(app, db, settings) as api:
            await api.post("/api/apps/import", json=APP)
            await _fill(db, "small", 10_000, 100)
            await _fill(db, "big", big, 100)
            timings: dict[str, float] = {}
            for form in ("small", "big"):
                params = {"filter": json.dumps({"==": [{"var": "city"}, "city_42"]}), "limit": "50"}
                url = f"/api/records/bench/{form}"
                for _ in range(20):  # warm-up
                    assert (await api.get(url, params=params)).status_code == 200
                samples = []
                for _ in range(repeats):
                    began = time.perf_counter()
                    response = await api.get(url, params=params)
                    samples.append(time.perf_counter() - began)
                    assert len(response.json()["items"]) == 50
                timings[form] = statistics.median(samples)
            out["page_ms_10k"] = round(timings["small"] * 1000, 3)
            out[f"page_ms_{big}"] = round(timings["big"] * 1000, 3)
            out["ratio"] = round(timings["big"] / timings["small"], 3)
    return out


async def explain_service_query(big_form: str = "big") -> list[str]:
    """EXPLAIN of the exact statement the record service sends for the benchmark's list."""
    from sqlalchemy.dialects import postgresql

    from formloom.platform.apps.service import AppCatalog
    from formloom.platform.records.service import ListQuery, RecordService

    db = Database(URL)
    try:
        async with db.transaction(write=False) as session:
            service = RecordService(session, AppCatalog(), actor="bench", now=datetime.now(UTC))
            captured: list[Any] = []
            original = session.execute

            async def capture(statement: Any, *args: Any, **kwargs: Any) -> Any:
                captured.append(statement)
                return await original(statement, *args, **kwargs)

            session.execute = capture  # type: ignore[method-assign]
            await service.list(
                "bench", big_form, ListQuery(filter={"==": [{"var": "city"}, "city_42"]}, limit=50)
            )
            session.execute = original  # type: ignore[method-assign]
            statement = captured[-1]
            compiled = statement.compile(
                dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}
            )
            rows = await session.execute(text("EXPLAIN " + str(compiled)))
            return [row[0] for row in rows]
    finally:
        await db.dispose()


async def main(quick: bool) -> dict[str, Any]:
    await _fresh_database()
    db = Database(URL)
    await upgrade(db)
    await db.dispose()
    results: dict[str, Any] = {}
    results["create"] = await bench_create(
        rounds=3 if quick else 5, per_round=300 if quick else 1000, concurrency=8
    )
    print("create through the API vs bare insert (PostgreSQL):", json.dumps(results["create"]))
    big = 100_000 if quick else 1_000_000
    results["list"] = await bench_list(big=big, repeats=50 if quick else 200)
    results["list"]["explain"] = await explain_service_query()
    print(
        f"indexed list, first page of 50, 10k vs {big} records:",
        json.dumps({k: v for k, v in results["list"].items() if k != "explain"}),
    )
    print("EXPLAIN of the service's list statement over the big form:")
    for line in results["list"]["explain"]:
        print("   ", line)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.quick))
