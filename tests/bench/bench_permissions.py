"""Cost of permissions on a list: a row filter and field rules against an admin's request.

The same list request (``GET /api/records/bench/visit?limit=50&count=true``, through the whole
service) is made by a platform admin — no row filter, nothing hidden — and by a nurse whose
grant adds a row filter (``department == $user.department``, substituted and compiled to SQL,
ANDed into the page query and the count) and two hidden fields stripped from every item.
Both page over 100,000 records of one form on PostgreSQL; rounds alternate, the figure is the
ratio of the medians (target: at most 1.15). Because the nurse's filter admits a seventh of
the rows, her count is cheaper; so the same pair is also timed without the count, and with the
admin asking for the same rows by an explicit filter — the cost of the permission machinery
alone.

Run: ``python -m tests.bench.bench_permissions [--quick]`` (part of ``make bench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

import httpx
from sqlalchemy import text

from formloom.platform.api import create_app
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.settings import Settings
from tests.bench.bench_records import URL, _fresh_database, _token

DEPARTMENTS = ["general", "internal", "surgery", "pediatrics", "dermatology", "dental", "rehab"]
APP = {
    "format": "formloom.app/v1",
    "key": "bench",
    "version": "1.0.0",
    "label": "Bench",
    "roles": [{"key": "nurse"}],
    "forms": [
        {
            "key": "visit",
            "label": "Visit",
            "fields": [
                {"key": "patient", "type": "text", "required": True},
                {
                    "key": "department",
                    "type": "select",
                    "indexed": True,
                    "options": [{"value": d} for d in DEPARTMENTS],
                },
                {"key": "diagnosis", "type": "textarea"},
                {"key": "fee", "type": "number"},
                {"key": "note", "type": "text"},
            ],
        }
    ],
    "permissions": [
        {
            "form": "visit",
            "roles": ["nurse"],
            "actions": ["read"],
            "row_filter": {"==": [{"var": "department"}, {"var": "$user.department"}]},
            "hidden_fields": ["diagnosis", "fee"],
        }
    ],
}


async def _fill(db: Database, count: int) -> None:
    async with db.engine.begin() as conn:
        await conn.execute(
            text(
                """
                INSERT INTO records (id, app, form, form_version, data, version, created_at,
                                     created_by, updated_at, updated_by)
                SELECT lpad(to_hex(g), 12, '0') || md5(g::text)::varchar(20),
                       'bench', 'visit', 1,
                       jsonb_build_object('patient', 'P' || g,
                                          'department', (CAST(:departments AS text[]))[1 + g % 7],
                                          'diagnosis', 'dx ' || g, 'fee', g % 500,
                                          'note', 'note ' || g),
                       1, now(), 'bench', now(), 'bench'
                FROM generate_series(1, :count) AS g
                """
            ),
            {"count": count, "departments": DEPARTMENTS},
        )
        await conn.execute(text("ANALYZE records"))


async def bench_list(records: int, rounds: int, per_round: int) -> dict[str, Any]:
    settings = Settings(database_url=URL, password_hash="fast-test-only")
    app = create_app(settings)
    samples: dict[str, list[float]] = {}
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        admin = await _token(db, settings, "bench_admin", is_admin=True)
        nurse = await _token(
            db,
            settings,
            "bench_nurse",
            roles={"bench": ["nurse"]},
            attributes={"department": "surgery"},
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as api:
            headers = {"Authorization": f"Bearer {admin}"}
            imported = await api.post("/api/apps/import", json=APP, headers=headers)
            assert imported.status_code in (200, 201), imported.text
            await _fill(db, records)
            tokens = {"admin": admin, "nurse": nurse}
            plain = "/api/records/bench/visit?limit=50"
            same_rows = (
                plain
                + "&filter="
                + json.dumps({"==": [{"var": "department"}, "surgery"]}, separators=(",", ":"))
            )
            # (label, who, url): the nurse's row filter admits the surgery rows only
            cases = [
                ("admin", "admin", plain + "&count=true"),
                ("nurse", "nurse", plain + "&count=true"),
                ("admin_no_count", "admin", plain),
                ("nurse_no_count", "nurse", plain),
                ("admin_same_rows", "admin", same_rows + "&count=true"),
                ("nurse_same_rows", "nurse", plain + "&count=true"),
            ]

            async def one(who: str, url: str) -> float:
                began = time.perf_counter()
                response = await api.get(url, headers={"Authorization": f"Bearer {tokens[who]}"})
                elapsed = time.perf_counter() - began
                body = response.json()
                assert response.status_code == 200 and len(body["items"]) == 50, response.text
                if who == "nurse":
                    assert all("fee" not in item["data"] for item in body["items"])
                if who == "nurse" and body["count"] is not None:
                    # surgery is DEPARTMENTS[2]: the rows with g % 7 == 2
                    assert body["count"] == (records - 2) // 7 + 1, body["count"]
                return elapsed

            for _label, who, url in cases:
                for _ in range(20):  # warm-up
                    await one(who, url)
            for _ in range(rounds):
                for label, who, url in cases:
                    samples.setdefault(label, []).append(
                        statistics.median([await one(who, url) for _ in range(per_round)])
                    )
    ms = {label: statistics.median(values) * 1000 for label, values in samples.items()}
    return {
        "records": records,
        "ms": {label: round(value, 3) for label, value in ms.items()},
        # the same request, as the issue states it
        "ratio": round(ms["nurse"] / ms["admin"], 3),
        "ratio_no_count": round(ms["nurse_no_count"] / ms["admin_no_count"], 3),
        # the cost of the permission machinery alone: the same rows, selected by the
        # admin's explicit filter or by the nurse's row filter
        "ratio_same_rows": round(ms["nurse_same_rows"] / ms["admin_same_rows"], 3),
    }


async def main(quick: bool) -> dict[str, Any]:
    await _fresh_database()
    db = Database(URL)
    await upgrade(db)
    await db.dispose()
    result = await bench_list(100_000, rounds=5 if quick else 9, per_round=20 if quick else 50)
    print(
        "list page of 50 + count, nurse (row filter + 2 hidden fields) vs admin:",
        json.dumps(result),
    )
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
