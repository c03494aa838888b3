"""Reports through a form's typed projection answer exactly what they answer from the
documents alone (issue 20's endpoint shapes: multiselects exploded from the projection's
array without reading the records, buckets in a zone, subtotals, top-N and its "Other"),
on SQLite and PostgreSQL — including documents that do not conform (a multiselect holding
a JSON null, a string or a number, written by raw SQL)."""

from __future__ import annotations

import copy
from typing import Any

import httpx
from sqlalchemy import text

from formloom.platform.db import Database
from formloom.platform.models import Record
from tests.platform.reports.factories import APP, FORMS, generate

SPECS: list[dict[str, Any]] = [
    {  # the benchmark's A
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
    },
    {  # the benchmark's B
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
    },
    {
        "form": "visit",
        "rows": [{"field": "seen_at", "bucket": "day"}, {"field": "channel"}],
        "columns": [{"field": "symptoms"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "max", "field": "weight"}],
        "top": {"n": 40, "by": "n"},
        "totals": True,
        "time_zone": "America/New_York",
    },
]


def _document() -> dict[str, Any]:
    return {
        "format": "formloom.app/v1",
        "key": APP,
        "version": "1.0.0",
        "label": "Clinic",
        "forms": [form.model_dump(mode="json", exclude_none=True) for form in FORMS.values()],
    }


async def test_the_projection_answers_as_the_documents(
    client: httpx.AsyncClient, db: Database
) -> None:
    answer = await client.post("/api/apps/import", json=_document())
    assert answer.status_code in (200, 201), answer.text
    rows = generate(3, patients=30, visits=300)
    odd = [r for r in rows if r["form"] == "visit" and r["deleted_at"] is None][:3]
    for row, value in zip(odd, (None, "cough", 7), strict=True):
        row["data"] = {**copy.deepcopy(row["data"]), "symptoms": value}
    async with db.engine.begin() as conn:
        await conn.execute(Record.__table__.insert(), rows)

    async def answers() -> list[Any]:
        out = []
        for spec in SPECS:
            for fmt in ("json", "csv"):
                response = await client.post(
                    f"/api/reports/{APP}", params={"format": fmt}, json=spec
                )
                assert response.status_code == 200, response.text
                out.append(response.json() if fmt == "json" else response.text)
            if spec.get("top"):
                drill = await client.post(
                    f"/api/reports/{APP}/drill", json={"spec": spec, "row": [None], "other": True}
                )
                assert drill.status_code == 200, drill.text
                out.append(drill.json())
        return out

    through_projection = await answers()
    assert through_projection[0]["result"]["grand_total"]["values"]["n"] > 0
    async with db.transaction() as session:
        ready = (
            await session.execute(
                text("SELECT count(*) FROM record_projections WHERE state = 'ready'")
            )
        ).scalar_one()
        assert ready >= 1
        await session.execute(text("UPDATE record_projections SET state = 'retired'"))
    assert await answers() == through_projection
