"""The clinic dashboard's KPIs against counts worked out by hand from the records the test
writes, on SQLite and PostgreSQL: follow-up completion counts overdue follow-ups against
it, the no-show rate counts appointments that are over but not marked, NPS by department
and its department filter, the revisit rate, complaints by category, the time to close
complaints (the closing time set and cleared by a rule, the dashboard's filters), and NPS
counting the surveys after a discharge (by the patient's last visit) and every survey of the
month."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import httpx
import pytest

from formloom import builtin_apps
from formloom.platform.clock import FixedClock
from tests.conftest import Users

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


# ---------------------------------------------------------------------------------------
# Complaints: the time to close
# ---------------------------------------------------------------------------------------


class Desk:
    """Someone who works the complaint flow's tasks, with a token that outlives the moved
    clock."""

    def __init__(self, client: httpx.AsyncClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    async def do(self, node: str, record: str, **body: Any) -> None:
        inbox = await self.client.get(
            "/api/tasks", params={"app": APP}, headers=self.headers
        )  # fmt: skip
        assert inbox.status_code == 200, inbox.text
        (task,) = [t for t in inbox.json()["items"]
                   if t["node"] == node and t["record_id"] == record]  # fmt: skip
        if task["claim_required"] and task["assignee"] is None:
            claimed = await self.client.post(f"/api/tasks/{task['id']}/claim",
                                             headers=self.headers)  # fmt: skip
            assert claimed.status_code == 200, claimed.text
        done = await self.client.post(
            f"/api/tasks/{task['id']}/complete", json=body, headers=self.headers
        )
        assert done.status_code == 200, done.text


async def test_the_time_to_close_complaints(
    clinic: httpx.AsyncClient, clock: FixedClock, users: Users
) -> None:
    start = clock.now()
    admin = await users.token("admin", lifetime=timedelta(days=30))  # the clock moves days
    clinic.headers["Authorization"] = f"Bearer {admin}"
    xuhui = await create(clinic, "branch", {"name": "Xuhui", "code": "XH"})
    await users.create("boss", roles={APP: ["manager"]}, attributes={"branch": xuhui})
    boss = Desk(clinic, await users.token("boss", lifetime=timedelta(days=30)))
    await users.create("desk", roles={APP: ["front_desk"]}, attributes={"branch": xuhui})
    desk = Desk(clinic, await users.token("desk", lifetime=timedelta(days=30)))
    boss_staff = {"name": "Boss", "role": "manager", "department": "general", "username": "boss"}
    handler = await create(clinic, "staff", boss_staff)

    async def registered(after: timedelta, category: str, **data: Any) -> str:
        clock.at = start + after
        return await create(clinic, "complaint", {
            "summary": category, "phone": "+8613800138000", "channel": "phone",
            "description": "-", **data})  # fmt: skip

    async def classified(complaint: str, category: str, department: str) -> None:
        await boss.do("classify", complaint, outcome="assigned", values={
            "category": category, "department": department, "handler": handler})  # fmt: skip

    async def closed(complaint: str, after: timedelta) -> None:
        await boss.do("handle", complaint, outcome="resolved", values={"resolution": "Done"})
        clock.at = start + after
        await boss.do("review", complaint, outcome="approve")

    def hours(n: int) -> timedelta:
        return timedelta(hours=n)

    def minutes(n: int) -> timedelta:
        return timedelta(minutes=n)

    def days(n: int) -> timedelta:
        return timedelta(days=n)

    # (registered after the start, category, department, closed after the start) — the
    # hours to close are counted down to the tenth of an hour (6 minutes)
    a = await registered(hours(0), "billing", branch=xuhui)
    await classified(a, "billing", "general")
    await closed(a, hours(2) + minutes(30))  # 2.5 h
    b = await registered(hours(1), "billing")
    await classified(b, "billing", "surgery")
    await closed(b, hours(27))  # 26.0 h
    c = await registered(days(3), "waiting")
    await classified(c, "waiting", "general")
    await closed(c, days(3) + hours(1) + minutes(59) + timedelta(seconds=50))  # 1.9 h
    d = await registered(days(3) + hours(2), "waiting")  # being handled: not closed
    await classified(d, "waiting", "general")
    e = await registered(days(3) + hours(3), "attitude")  # closed, then reopened
    await classified(e, "attitude", "general")
    await closed(e, days(3) + hours(4))

    record = (await clinic.get(f"/api/records/{APP}/complaint/{a}")).json()["data"]
    assert record["status"] == "closed"
    assert record["registered_at"] == start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    closed_at = (start + hours(2) + minutes(30)).astimezone(UTC)
    assert record["closed_at"] == closed_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert record["hours_to_close"] == 2.5
    # staff cannot write the closing time
    refused = await clinic.patch(f"/api/records/{APP}/complaint/{d}",
                                 json={"data": {"closed_at": "2026-11-23T03:00:00Z"}})  # fmt: skip
    assert refused.status_code == 422, refused.text
    # a manager reopens the closed complaint (once its flow is over): its closing time is
    # cleared
    await desk.do("satisfaction_call", e, outcome="answered", values={"satisfaction": 2})
    clock.at = start + days(4)
    again = await clinic.post(f"/api/flows/{APP}/complaint/start", json={"record_id": e},
                              headers=boss.headers)  # fmt: skip
    assert again.status_code in (200, 201), again.text
    await classified(e, "attitude", "general")
    reopened = (await clinic.get(f"/api/records/{APP}/complaint/{e}")).json()["data"]
    assert reopened["status"] == "in_progress"
    assert reopened.get("closed_at") is None and reopened.get("hours_to_close") is None

    def expected(*spent: float) -> dict[str, Any]:
        return {"closed": len(spent), "avg_hours": pytest.approx(sum(spent) / len(spent)),
                "max_hours": max(spent)}  # fmt: skip

    tiles = await board(clinic)
    tile = tiles["complaint_time_to_close"]
    assert total(tile) == expected(2.5, 26.0, 1.9)
    assert by_row(tile) == {"Billing": expected(2.5, 26.0), "Waiting time": expected(1.9)}
    # every cell drills down to its complaints
    report = await clinic.get(f"/api/reports/{APP}/complaint_time_to_close",
                              params={"drill": "inline"})  # fmt: skip
    assert report.status_code == 200, report.text
    assert report.json()["result"]["rows"][0]["labels"] == ["Billing"]
    cell = report.json()["result"]["cells"][0][0]["drill_down"]
    listed = await clinic.post(f"/api/records/{APP}/complaint/query",
                               json={"filter": cell["filter"], "limit": 10})  # fmt: skip
    assert listed.status_code == 200, listed.text
    assert sorted(r["id"] for r in listed.json()["items"]) == sorted([a, b])
    # the dashboard's filters: department, period (registered from the fourth day), branch
    general = await board(clinic, department="general")
    assert total(general["complaint_time_to_close"]) == expected(2.5, 1.9)
    later = await board(clinic, period_from=(start + days(3)).date().isoformat())
    assert total(later["complaint_time_to_close"]) == expected(1.9)
    at_xuhui = await board(clinic, branch=xuhui)
    assert total(at_xuhui["complaint_time_to_close"]) == expected(2.5)


# ---------------------------------------------------------------------------------------
# NPS: surveys after a discharge count too
# ---------------------------------------------------------------------------------------


def nps(*answers: int) -> float:
    """The share of promoters (9-10) minus the share of detractors (0-6), in percent."""
    promoters = sum(1 for a in answers if a >= 9)
    detractors = sum(1 for a in answers if a <= 6)
    return 100 * promoters / len(answers) - 100 * detractors / len(answers)


async def test_nps_counts_the_surveys_answered_after_a_discharge(
    clinic: httpx.AsyncClient, clock: FixedClock
) -> None:
    today = clock.now().date()
    doctors = {
        dept: await create(clinic, "staff", {"name": f"Dr. {dept}", "role": "doctor",
                                             "department": dept})
        for dept in ("general", "surgery")
    }  # fmt: skip
    discharged = await create(clinic, "patient", {"name": "Chen Jing", "phone": "+8613800138000"})
    unseen = await create(clinic, "patient", {"name": "Li Wei", "phone": "+8613900139000"})

    async def visit(dept: str, days_ago: int) -> str:
        return await create(clinic, "visit", {
            "patient": discharged, "doctor": doctors[dept], "department": dept,
            "visit_date": (today - timedelta(days=days_ago)).isoformat(),
            "visit_type": "treatment"})  # fmt: skip

    surgery = await visit("surgery", 10)
    general = await visit("general", 3)  # the last visit
    await visit("surgery", 20)  # entered late: an older visit is not the last one
    kept = (await clinic.get(f"/api/records/{APP}/patient/{discharged}")).json()["data"]
    assert kept["last_visit_record"] == general

    # after visits (the link names the visit) and after a discharge (it names the patient)
    answers = [({"visit": surgery}, 3), ({"visit": general}, 9), ({"patient": discharged}, 10),
               ({"patient": discharged}, 6), ({"patient": unseen}, 10)]  # fmt: skip
    made = [await create(clinic, "survey", {**bound, "nps": score, "satisfaction": 4})
            for bound, score in answers]  # fmt: skip
    now = clock.now()
    clock.at = now - timedelta(days=31)  # last month: a detractor
    await create(clinic, "survey", {"patient": unseen, "nps": 0, "satisfaction": 1})
    clock.at = now
    after_discharge = (await clinic.get(f"/api/records/{APP}/survey/{made[2]}")).json()["data"]
    assert after_discharge["department"] == "general"
    assert after_discharge["doctor"] == doctors["general"]
    alone = (await clinic.get(f"/api/records/{APP}/survey/{made[4]}")).json()["data"]
    assert alone.get("department") is None and alone.get("doctor") is None

    tiles = await board(clinic)
    by_department = {label: row["nps"] for label, row in by_row(tiles["nps_by_department"]).items()}
    assert by_department == {"General practice": pytest.approx(nps(9, 10, 6)),
                             "Surgery": nps(3), "(empty)": nps(10, 0)}  # fmt: skip
    by_doctor = {label: row["nps"] for label, row in by_row(tiles["nps_by_doctor"]).items()}
    assert by_doctor == {"Dr. general": pytest.approx(nps(9, 10, 6)), "Dr. surgery": nps(3),
                         "(empty)": nps(10, 0)}  # fmt: skip
    # the overall NPS counts every survey of this month, with or without a department
    overall = total(tiles["nps_overall"])
    assert overall["responses"] == 5
    assert overall["nps"] == pytest.approx(nps(3, 9, 10, 6, 10))
    # last month's one answer, in the same days of last month (the clock: 23 November)
    assert "1 Oct – 23 Oct: -100" in tiles["nps_overall"]["svg"]
    # the department filter narrows it to the department's surveys, discharges included
    narrowed = await board(clinic, department="general")
    assert total(narrowed["nps_overall"])["nps"] == pytest.approx(nps(9, 10, 6))
    assert total(narrowed["nps_by_doctor"])["responses"] == 3
