"""The clinic CRM's rules end to end, with a controlled clock, on both databases: no double
booking, the pain alert, the last visit kept on the patient, the discharge survey 24 hours
after the discharge with its one-time link, revisit reminders for chronic patients in a
window until they book, appointment reminders, no-shows and completed appointments, and
birthday greetings."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from formloom import builtin_apps
from formloom.platform.clock import FixedClock
from formloom.platform.links import tokens
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests.conftest import Users, running_worker
from tests.servers import HttpSink

APP = "clinic_crm"
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> httpx.AsyncClient:
    answer = await client.post("/api/apps/import", json=builtin_apps.load(APP))
    assert answer.status_code == 201, answer.text
    return client


@pytest.fixture
async def worker(settings: Settings, gateway: HttpSink) -> AsyncIterator[Worker]:
    async with running_worker(settings, sms_gateway_url=f"{gateway.url}/sms") as running:
        yield running


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def visit(
    client: httpx.AsyncClient, patient_id: str, doctor_user: str | None = None, **data: Any
) -> dict[str, Any]:
    """A visit to a new staff doctor (the user ``doctor_user``, if given)."""
    staff = {"name": "Dr. Li", "role": "doctor", "department": "general"}
    doctor = await create(
        client, "staff", staff if doctor_user is None else {**staff, "username": doctor_user}
    )
    return await create(
        client,
        "visit",
        {"patient": patient_id, "doctor": doctor["id"], "department": "general",
         "visit_type": "first", **data},
    )  # fmt: skip


async def patient(client: httpx.AsyncClient, **data: Any) -> dict[str, Any]:
    return await create(client, "patient", {"name": "Chen Jing", "phone": "+8613800138000", **data})


async def test_appointments_of_one_doctor_may_not_overlap(clinic: httpx.AsyncClient) -> None:
    doctor = await create(
        clinic, "staff", {"name": "Dr. Li", "role": "doctor", "department": "general"}
    )
    someone = await patient(clinic)
    booking = {"patient": someone["id"], "doctor": doctor["id"],
               "starts_at": "2026-12-01T09:00:00+08:00", "duration_minutes": 30,
               "department": "general"}  # fmt: skip
    first = await create(clinic, "appointment", booking)
    assert first["data"]["ends_at"] == "2026-12-01T01:30:00Z"  # set by a rule
    clash = await clinic.post(
        f"/api/records/{APP}/appointment",
        json={"data": dict(booking, starts_at="2026-12-01T09:15:00+08:00")},
        headers={"Accept-Language": "zh-CN"},
    )
    assert clash.status_code == 422
    [error] = clash.json()["errors"]
    assert error["path"] == "/starts_at" and error["rule"] == "no_double_booking"
    assert error["messages"]["zh-CN"] == "该医生在此时间已有预约。"
    after = await create(
        clinic, "appointment", dict(booking, starts_at="2026-12-01T09:30:00+08:00")
    )
    # moving the second one onto the first is refused too; cancelling frees the slot
    moved = await clinic.patch(
        f"/api/records/{APP}/appointment/{after['id']}",
        json={"data": {"starts_at": "2026-12-01T09:10:00+08:00"}},
    )
    assert moved.status_code == 422
    assert moved.json()["errors"][0]["rule"] == "no_double_booking_on_change"
    cancel = await clinic.patch(
        f"/api/records/{APP}/appointment/{first['id']}",
        json={"data": {"status": "cancelled", "cancel_reason": "Ill"}},
    )
    assert cancel.status_code == 200, cancel.text
    moved = await clinic.patch(
        f"/api/records/{APP}/appointment/{after['id']}",
        json={"data": {"starts_at": "2026-12-01T09:10:00+08:00"}},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"]["ends_at"] == "2026-12-01T01:40:00Z"


async def test_a_painful_visit_alerts_its_doctor_and_updates_the_patient(
    clinic: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    doctor = await users.create("dr_zhang", roles={APP: ["doctor"]})
    other = await users.create("dr_wang", roles={APP: ["doctor"]})
    nurse = await users.create("nurse_wu", roles={APP: ["nurse"]})
    staff = await create(
        clinic,
        "staff",
        {"name": "Dr. Zhang", "role": "doctor", "department": "general", "username": "dr_zhang"},
    )
    someone = await patient(clinic)
    await create(
        clinic,
        "visit",
        {"patient": someone["id"], "doctor": staff["id"], "department": "general",
         "visit_type": "first", "visit_date": "2026-11-23", "pain_score": 8},
    )  # fmt: skip
    stored = (await clinic.get(f"/api/records/{APP}/patient/{someone['id']}")).json()
    assert stored["data"]["last_visit"] == "2026-11-23"
    # a visit recorded late, for an earlier day, does not move the last visit back
    await visit(clinic, someone["id"], visit_date="2026-10-01")
    stored = (await clinic.get(f"/api/records/{APP}/patient/{someone['id']}")).json()
    assert stored["data"]["last_visit"] == "2026-11-23"
    await worker.run_once(clock.now())
    [note] = (await clinic.get("/api/notifications", headers=doctor.headers)).json()["items"]
    assert note["subject"] == "Pain score 8/10: Chen Jing"
    for someone_else in (other, nurse):
        answer = await clinic.get("/api/notifications", headers=someone_else.headers)
        assert answer.json()["items"] == []


async def _tasks(client: httpx.AsyncClient, who: Any, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/tasks", params={"app": APP, **params}, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def test_a_discharged_patient_gets_a_survey_link_a_day_after_the_discharge(
    clinic: httpx.AsyncClient, anon_client: httpx.AsyncClient, users: Users, worker: Worker,
    gateway: HttpSink, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """24 hours after ``discharged_at`` (not after the edit), once even when the time is
    corrected, only with consent; the text carries a one-time link the patient answers
    without an account, and the front desk's call task closes itself when the answer comes."""
    monkeypatch.setattr(tokens, "_base_url", "https://clinic.example.com")
    desk = await users.create("desk_qin", roles={APP: ["front_desk"]})
    someone = await patient(clinic, consent_marketing=True)
    await patient(clinic, name="No Consent", phone="+8613900000000",
                  discharged_at="2026-11-23T09:00:00+08:00")  # fmt: skip
    # a discharge planned six days ahead: nothing the next day
    planned = await patient(clinic, name="Planned", phone="+8613700000000",
                            consent_marketing=True,
                            discharged_at=(clock.now() + timedelta(days=6)).isoformat(),
                            )  # fmt: skip
    path = f"/api/records/{APP}/patient/{someone['id']}"
    for when in ("2026-11-23T09:00:00+08:00", "2026-11-23T10:00:00+08:00"):  # corrected once
        answer = await clinic.patch(path, json={"data": {"discharged_at": when}})
        assert answer.status_code == 200, answer.text
    await worker.run_once(datetime(2026, 11, 24, 9, 30, tzinfo=ZONE))  # before 10:00
    assert gateway.requests == [] and await _tasks(clinic, desk) == []
    report = await worker.run_once(datetime(2026, 11, 24, 10, 0, tzinfo=ZONE))
    assert report.delivered == 1, report
    [text] = gateway.requests
    assert text.body["to"] == "+8613800138000"
    found = re.search(r"https://clinic\.example\.com/p/(\S+)$", text.body["text"])
    assert found is not None, text.body["text"]
    [task] = await _tasks(clinic, desk)
    assert task["title"] == "Satisfaction survey: Chen Jing"
    assert "2026-11-23 10:00" in task["description"]  # the clinic's time, not UTC
    # the patient answers from the link, with no account
    answered = await anon_client.post(
        f"/api/public/{found.group(1)}",
        json={"data": {"nps": 9, "satisfaction": 5, "comment": "谢谢"}},
    )
    assert answered.status_code == 201, answered.text
    [survey] = (await clinic.get(f"/api/records/{APP}/survey")).json()["items"]
    assert survey["data"]["patient"] == someone["id"] and survey["data"]["nps"] == 9
    assert await _tasks(clinic, desk) == []  # closed by the answer
    [closed] = await _tasks(clinic, desk, status="done", scope="claimable")
    assert closed["outcome"] == "done_when"
    # nothing more for anyone in the next days; the planned discharge gets its text a day
    # after it happens
    await worker.run_once(datetime(2026, 11, 28, 9, 0, tzinfo=ZONE))
    assert len(gateway.requests) == 1
    await worker.run_once(clock.now() + timedelta(days=7))
    assert [r.body["to"] for r in gateway.requests] == ["+8613800138000", planned["data"]["phone"]]


async def test_a_survey_is_not_sent_days_late_after_downtime(
    clinic: httpx.AsyncClient, worker: Worker, gateway: HttpSink
) -> None:
    await patient(clinic, consent_marketing=True, discharged_at="2026-11-23T09:00:00+08:00")
    report = await worker.run_once(datetime(2026, 11, 27, 9, 0, tzinfo=ZONE))  # 3 days late
    assert report.timers_skipped >= 1, report
    assert gateway.requests == []


async def test_chronic_patients_get_a_revisit_reminder_in_a_window_until_they_book(
    clinic: httpx.AsyncClient, worker: Worker, gateway: HttpSink
) -> None:
    nine = datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)
    ago = (nine.date() - timedelta(days=90)).isoformat()  # inside the 85-365 day window
    cases = [("Due", ["hypertension"], True), ("Diabetic", ["diabetes"], True),
             ("No consent", ["hypertension"], False), ("Healthy", ["vip"], True),
             ("Booked", ["chronic"], True)]  # fmt: skip
    made = {}
    for number, (name, tags, consent) in enumerate(cases):
        made[name] = await patient(clinic, name=name, tags=tags, phone=f"+86100{number}",
                                   consent_marketing=consent)  # fmt: skip
        await visit(clinic, made[name]["id"], visit_date=ago)
    staff = await create(clinic, "staff", {"name": "Dr. Wu", "role": "doctor",
                                           "department": "general"})  # fmt: skip
    booking = await create(clinic, "appointment", {
        "patient": made["Booked"]["id"], "doctor": staff["id"], "department": "general",
        "starts_at": "2026-12-10T02:00:00Z", "duration_minutes": 30, "status": "booked",
    })  # fmt: skip
    booked = await clinic.get(f"/api/records/{APP}/patient/{made['Booked']['id']}")
    assert booked.json()["data"]["next_appointment_at"] == "2026-12-10T02:00:00Z"
    await worker.run_once(nine - timedelta(minutes=1))
    assert gateway.requests == []
    await worker.run_once(nine)
    assert sorted(r.body["to"] for r in gateway.requests) == ["+861000", "+861001"]
    assert "book" in gateway.requests[0].body["text"]
    # the next mornings: nothing (reminded less than 30 days ago)
    await worker.run_once(nine + timedelta(days=1))
    assert len(gateway.requests) == 2
    # the booked patient cancels: reminded the next morning
    cancelled = await clinic.patch(f"/api/records/{APP}/appointment/{booking['id']}",
                                   json={"data": {"status": "cancelled",
                                                  "cancel_reason": "travel"}})  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    await worker.run_once(nine + timedelta(days=2))
    assert sorted(r.body["to"] for r in gateway.requests)[-1] == "+861004"
    # every morning after that, still not booked: again 30 days after each one's last
    sent_on: dict[str, list[int]] = {}
    for day in range(3, 33):
        before = len(gateway.requests)
        await worker.run_once(nine + timedelta(days=day))
        for request in gateway.requests[before:]:
            sent_on.setdefault(request.body["to"], []).append(day)
    assert sent_on == {"+861000": [30], "+861001": [30], "+861004": [32]}


async def test_appointments_are_reminded_marked_no_show_or_completed(
    clinic: httpx.AsyncClient, worker: Worker, gateway: HttpSink
) -> None:
    staff = await create(clinic, "staff", {"name": "Dr. Wu", "role": "doctor",
                                           "department": "general"})  # fmt: skip
    names = [("Zhao", True), ("Qian", True), ("Sun", False)]
    people = [await patient(clinic, name=n, phone=f"+86200{i}", consent_marketing=c)
              for i, (n, c) in enumerate(names)]  # fmt: skip
    booked = []
    for number, someone in enumerate(people):
        booked.append(await create(clinic, "appointment", {
            "patient": someone["id"], "doctor": staff["id"], "department": "general",
            "starts_at": f"2026-11-25T0{2 + number}:00:00Z", "duration_minutes": 30,
            "status": "booked"}))  # fmt: skip
    # 18:00 the day before, in the clinic's zone: consenting patients only
    await worker.run_once(datetime(2026, 11, 24, 18, 0, tzinfo=ZONE))
    assert sorted(r.body["to"] for r in gateway.requests) == ["+862000", "+862001"]
    zhao = next(r for r in gateway.requests if r.body["to"] == "+862000")
    assert "10:00" in zhao.body["text"] and "Dr. Wu" in zhao.body["text"]
    # Zhao comes: a visit for the appointment completes it
    await visit(clinic, people[0]["id"], appointment=booked[0]["id"])

    # 30 minutes after an appointment's end, not arrived: a no-show (11:00-11:30 and
    # 12:00-12:30 in the clinic's zone)
    async def statuses() -> list[str]:
        return [(await clinic.get(f"/api/records/{APP}/appointment/{a['id']}")).json()[
            "data"]["status"] for a in booked]  # fmt: skip

    await worker.run_once(datetime(2026, 11, 25, 12, 15, tzinfo=ZONE))
    assert await statuses() == ["completed", "no_show", "booked"]
    await worker.run_once(datetime(2026, 11, 25, 13, 5, tzinfo=ZONE))
    assert await statuses() == ["completed", "no_show", "no_show"]


async def test_birthday_greetings_go_to_consenting_patients_every_year(
    clinic: httpx.AsyncClient, worker: Worker, gateway: HttpSink
) -> None:
    await patient(clinic, name="Yes", phone="+862001", birth_date="1990-11-25",
                  consent_marketing=True)  # fmt: skip
    await patient(clinic, name="No", phone="+862002", birth_date="1990-11-25")
    await worker.run_once(datetime(2026, 11, 25, 9, 0, tzinfo=ZONE))
    assert [r.body["to"] for r in gateway.requests] == ["+862001"]
    assert gateway.requests[0].body["text"].startswith("Happy birthday, Yes")
    await worker.run_once(datetime(2026, 11, 26, 9, 0, tzinfo=ZONE))
    assert len(gateway.requests) == 1
    await worker.run_once(datetime(2027, 11, 25, 9, 0, tzinfo=ZONE))
    assert [r.body["to"] for r in gateway.requests] == ["+862001", "+862001"]


async def test_the_demo_leaves_no_timer_already_due(settings: Settings) -> None:
    """The demo writes its sample records on back-dated clocks; their birthday timers are
    armed from today, so a fresh demo sends nothing for birthdays long past."""
    from sqlalchemy import func, select

    from formloom.platform.api import create_app
    from formloom.platform.clock import SystemClock
    from formloom.platform.demo import install_demo
    from formloom.platform.models.automation import OutboxMessage, Timer

    app = create_app(settings, clock=SystemClock("Asia/Shanghai"))
    async with app.router.lifespan_context(app):
        state = app.state.platform
        await install_demo(state, patients=15)
        now = state.clock.now()
        async with state.db.transaction(write=False) as session:
            due = await session.execute(
                select(func.count())
                .select_from(Timer)
                .where(Timer.status == "pending", Timer.due_at <= now)
            )
            armed = await session.execute(
                select(func.count())
                .select_from(Timer)
                .where(Timer.kind == "date", Timer.rule == "birthday_greeting")
            )
            queued = await session.execute(select(func.count()).select_from(OutboxMessage))
        assert due.scalar_one() == 0
        assert armed.scalar_one() == 15  # one birthday timer per patient
        assert queued.scalar_one() == 0
