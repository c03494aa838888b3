"""The report builder's live preview against the report API's own time (issue 15).

The builder previews the report being edited with ``POST /designer/{app}/reports/preview``:
one run of the pivot with the caller's grants, plus its chart (SVG) and its table (HTML), as
a dashboard tile draws them. The report API runs the same spec with ``POST
/api/reports/{app}`` (JSON). Both are timed in the same process, in turns, over 100,000
generated visits (``tests/platform/reports/factories.py``), for "NPS by department per
month": rows = department x month of ``seen_at`` (Asia/Shanghai), count, promoters and
detractors (counts with a filter), their shares (ratios) and the NPS (a difference), with
totals, sorted by NPS, drawn as bars. Target: the preview <= 1.2x the API.

Run: ``python -m tests.bench.bench_report_builder [--quick]`` (or ``make bench``). Needs
PostgreSQL (FORMLOOM_BENCH_BUILDER_POSTGRES_URL, default database formloom_bench_builder on
127.0.0.1; it is dropped and created).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import text

from formloom.platform.api import create_app
from formloom.platform.db import Database
from formloom.platform.migrate import upgrade
from formloom.platform.models import Record
from formloom.platform.settings import Settings
from tests.bench.bench_records import admin_client
from tests.bench.bench_report_cells import app_document, timed
from tests.bench.databases import fresh_postgres
from tests.platform.reports.factories import APP, generate

URL = os.environ.get(
    "FORMLOOM_BENCH_BUILDER_POSTGRES_URL",
    "postgresql+asyncpg://postgres@127.0.0.1:5432/formloom_bench_builder",
)
ZONE = "Asia/Shanghai"

#: What the builder holds for "NPS by department per month".
REPORT: dict[str, Any] = {
    "key": "nps_by_department_month",
    "label": {"en": "NPS by department per month", "zh-CN": "各科室每月净推荐值"},
    "form": "visit",
    "rows": [{"field": "department"}, {"field": "seen_at", "bucket": "month"}],
    "measures": [
        {"key": "responses", "op": "count"},
        {"key": "promoters", "op": "count", "filter": {">=": [{"var": "nps"}, 9]}},
        {"key": "detractors", "op": "count", "filter": {"<=": [{"var": "nps"}, 6]}},
        {
            "key": "p",
            "op": "ratio",
            "numerator": "promoters",
            "denominator": "responses",
            "scale": 100,
        },
        {
            "key": "d",
            "op": "ratio",
            "numerator": "detractors",
            "denominator": "responses",
            "scale": 100,
        },
        {"key": "nps", "op": "difference", "minuend": "p", "subtrahend": "d"},
    ],  # fmt: skip
    "sort": {"by": "nps", "direction": "desc"},
    "chart": {"type": "bar", "measure": "nps", "y_label": {"en": "NPS", "zh-CN": "净推荐值"}},
}
#: The same pivot as the report API takes it.
SPEC = {k: v for k, v in REPORT.items() if k not in ("key", "label", "chart")}


async def bench(url: str, label: str, visits: int, repeat: int) -> dict[str, Any]:
    # no timers or outbox in this process: their ticks would land in the measured requests
    settings = Settings(
        database_url=url, password_hash="fast-test-only", timezone=ZONE, worker_in_serve=False
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        db: Database = app.state.platform.db
        async with await admin_client(app, db, settings) as client:
            answer = await client.post("/api/apps/import", json=app_document())
            assert answer.status_code in (200, 201), answer.text
            rows = generate(15, patients=max(visits // 20, 10), visits=visits)
            async with db.engine.begin() as conn:
                for start in range(0, len(rows), 10_000):
                    await conn.execute(Record.__table__.insert(), rows[start : start + 10_000])
                if url.startswith("postgresql"):
                    await conn.execute(text("ANALYZE records"))
            counted: dict[str, Any] = {}

            async def api() -> None:
                answer = await client.post(f"/api/reports/{APP}", json=SPEC)
                assert answer.status_code == 200, answer.text[:500]
                counted["api"] = answer.json()["result"]["grand_total"]

            async def preview() -> None:
                answer = await client.post(f"/designer/{APP}/reports/preview", json=REPORT)
                assert answer.status_code == 200, answer.text[:500]
                assert answer.json()["svg"].startswith("<svg")
                counted["preview"] = answer.json()["result"]["grand_total"]

            api_s, preview_s = await timed(api, preview, repeat=repeat)
            assert counted["api"] == counted["preview"]
    ratio = preview_s / api_s
    print(
        f"{label}, {visits:,} visits (median of {repeat}, in turns): report API "
        f"{api_s * 1000:.0f} ms, builder preview {preview_s * 1000:.0f} ms — "
        f"{ratio:.2f}x (target <= 1.2x)"
    )
    return {"api_ms": round(api_s * 1000), "preview_ms": round(preview_s * 1000), "ratio": ratio}


async def main(quick: bool = False) -> dict[str, Any]:
    visits = 20_000 if quick else 100_000
    repeat = 3 if quick else 7
    await fresh_postgres(URL)
    database = Database(URL)
    await upgrade(database)
    await database.dispose()
    out = {"postgresql": await bench(URL, "PostgreSQL", visits, repeat)}
    with tempfile.TemporaryDirectory() as folder:
        sqlite = f"sqlite+aiosqlite:///{Path(folder) / 'builder.db'}"
        database = Database(sqlite)
        await upgrade(database)
        await database.dispose()
        out["sqlite"] = await bench(sqlite, "SQLite", visits, repeat)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    asyncio.run(main(parser.parse_args().quick))
