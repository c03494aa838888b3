"""The clinic dashboard's KPIs against counts worked out by hand from the records the test
writes, on SQLite and PostgreSQL: follow-up completion counts overdue follow-ups against
it, the no-show rate counts appointments that are over but not marked, NPS by department
and its department filter, the revisit rate and complaints by category."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from formloom import builtin_apps
from formloom.platform.clock import FixedClock

APP = "clinic_crm"


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> httpx.AsyncClient:
    answer = await client.post("/api/apps/import", json=builtin_apps.load(APP))
    assert answer.status_code == 201, answer.text
    return client


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> str:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def board(client: httpx.AsyncClient, **filters: str) -> dict[str, dict[str, Any]]:
    answer = await client.get(f"/api/dashboards/{APP}/manager", params=filters)
    assert answer.status_code == 200, answer.text
    items = {item["report"]: item for item in answer.json()["items"]}
    for key, item in items.items():
        assert "error" not in item, (key, item)
    return items


def total(item: dict[str, Any]) -> dict[str, Any]:
    return dict(item["result"]["grand_total"]["values"])


def by_row(item: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = item["result"]
    return {
        row["labels"][0]: dict(totals["values"])
        for row, totals in zip(result["rows"], result["row_totals"], strict=True)
    }


async def test_the_manager_dashboard_counts_what_the_clinic_did(
    clinic: httpx.AsyncClient, clock: FixedClock
) -> None:
    today = clock.now().date()
    patient = await create(clinic, "patient", {"name": "Chen Jing", "phone": "+8613800138000"})
    doctors = {
        dept: await create(clinic, "staff", {"name": f"Dr. {dept}", "role": "doctor",
                                             "department": dept})
        for dept in ("general", "surgery")
    }  # fmt: skip

    async def visit(dept: str, kind: str) -> str:
        return await create(clinic, "visit", {
            "patient": patient, "doctor": doctors[dept], "department": dept,
            "visit_date": today.isoformat(), "visit_type": kind})  # fmt: skip

    visits = [await visit("general", "first"), await visit("general", "follow_up"),
              await visit("surgery", "treatment")]  # fmt: skip
    # follow-ups: 2 done, 1 missed, 1 overdue, 1 not yet due
    for status, days in [("done", -5), ("done", -4), ("missed", -3), ("pending", -2),
                         ("pending", 3)]:  # fmt: skip
        await create(clinic, "follow_up", {
            "visit": visits[0], "patient": patient, "department": "general",
            "due_date": (today + timedelta(days=days)).isoformat(), "checkpoint": "day3",
            "status": status})  # fmt: skip
    # appointments: 2 completed, 1 no-show, 1 over and unmarked, 1 ahead, 1 cancelled
    start = clock.now() - timedelta(days=10)
    plan = [("completed", -10), ("completed", -9), ("no_show", -8), ("booked", -7),
            ("booked", 5), ("cancelled", -6)]  # fmt: skip
    for status, days in plan:
        data = {"patient": patient, "doctor": doctors["general"], "department": "general",
                "starts_at": (clock.now() + timedelta(days=days)).isoformat(),
                "duration_minutes": 30, "status": status}  # fmt: skip
        if status == "cancelled":
            data["cancel_reason"] = "travel"
        await create(clinic, "appointment", data)
    assert start  # the appointments span the ten days before now
    # surveys: two promoters after general visits, a detractor after the surgery visit
    for visit_id, nps in [(visits[0], 10), (visits[1], 9), (visits[2], 3)]:
        await create(clinic, "survey", {"visit": visit_id, "nps": nps, "satisfaction": 4})
    # complaints: two about billing, one about waiting (their flows keep the status: new)
    for category in ("billing", "billing", "waiting"):
        data = {
            "summary": category,
            "category": category,
            "phone": "+8613800138000",
            "channel": "phone",
            "description": "-",
            "department": "general",
        }
        await create(clinic, "complaint", data)

    tiles = await board(clinic)
    assert total(tiles["follow_up_completion"]) == {"due": 4, "done": 2, "overdue": 1,
                                                    "rate": 50.0}  # fmt: skip
    assert total(tiles["no_show_rate"]) == {"appointments": 4, "no_shows": 1, "unmarked": 1,
                                            "rate": 25.0}  # fmt: skip
    nps = by_row(tiles["nps_by_department"])
    assert {label: row["nps"] for label, row in nps.items()} == {"General practice": 100.0,
                                                                 "Surgery": -100.0}  # fmt: skip
    assert total(tiles["revisit_rate"])["visits"] == 3
    assert total(tiles["revisit_rate"])["revisits"] == 1
    complaints = by_row(tiles["complaints_by_category"])
    assert list(complaints) == ["Billing", "Waiting time"]
    assert complaints["Billing"] == {"complaints": 2, "open": 2, "closed": 0}
    # the department filter reaches NPS (the survey carries its visit's department)
    general = await board(clinic, department="general")
    assert total(general["nps_by_doctor"])["responses"] == 2
    assert total(general["nps_by_department"])["nps"] == 100.0
    assert total(general["follow_up_completion"])["due"] == 4
