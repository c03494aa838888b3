"""The clinic CRM's rules end to end, with a controlled clock, on both databases: no double
booking, the pain alert, the last visit kept on the patient, the discharge survey 24 hours
later, the hypertension revisit reminder at 09:00 and birthday greetings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from formloom import builtin_apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests.conftest import Users
from tests.servers import HttpSink, http_sink

APP = "clinic_crm"
ZONE = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> httpx.AsyncClient:
    answer = await client.post("/api/apps/import", json=builtin_apps.load(APP))
    assert answer.status_code == 201, answer.text
    return client


@pytest.fixture
def gateway() -> Any:
    with http_sink() as sink:
        yield sink


@pytest.fixture
async def worker(settings: Settings, gateway: HttpSink) -> AsyncIterator[Worker]:
    local = settings.model_copy(
        update={"timezone": "Asia/Shanghai", "sms_gateway_url": f"{gateway.url}/sms"}
    )
    db = Database(settings.database_url)
    try:
        yield Worker(db, AppCatalog(), local)
    finally:
        await db.dispose()


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


async def test_a_discharged_patient_gets_a_survey_a_day_later(
    clinic: httpx.AsyncClient, users: Users, worker: Worker, gateway: HttpSink,
    clock: FixedClock,
) -> None:  # fmt: skip
    desk = await users.create("desk_qin", roles={APP: ["front_desk"]})
    someone = await patient(clinic)
    discharged = await clinic.patch(
        f"/api/records/{APP}/patient/{someone['id']}",
        json={"data": {"discharged_at": "2026-11-23T10:00:00+08:00"}},
    )
    assert discharged.status_code == 200, discharged.text
    await worker.run_once(clock.now() + timedelta(hours=23))  # (the 09:00 schedule ran)
    assert gateway.requests == []
    assert (await clinic.get("/api/tasks", params={"app": APP}, headers=desk.headers)).json()[
        "items"
    ] == []
    report = await worker.run_once(clock.now() + timedelta(hours=24))
    assert report.timers_fired == 2 and report.delivered == 1, report
    [task] = (await clinic.get("/api/tasks", params={"app": APP}, headers=desk.headers)).json()[
        "items"
    ]
    assert task["title"] == "Satisfaction survey: Chen Jing"
    [text] = gateway.requests
    assert text.body["to"] == "+8613800138000"
    assert f"survey?p={someone['id']}" in text.body["text"]


async def test_hypertension_patients_get_a_revisit_reminder_at_nine(
    clinic: httpx.AsyncClient, worker: Worker, gateway: HttpSink
) -> None:
    nine = datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)
    due = (nine.date() - timedelta(days=85)).isoformat()
    for name, tags, phone in [("Due", ["hypertension"], "+861001"),
                              ("Diabetic", ["diabetes"], "+861002")]:  # fmt: skip
        made = await patient(clinic, name=name, tags=tags, phone=phone)
        await visit(clinic, made["id"], visit_date=due)
    await worker.run_once(nine - timedelta(minutes=1))
    assert gateway.requests == []
    await worker.run_once(nine)
    assert [r.body["to"] for r in gateway.requests] == ["+861001"]
    assert "85 days" in gateway.requests[0].body["text"]


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
                select(func.count()).select_from(Timer).where(Timer.kind == "date")
            )
            queued = await session.execute(select(func.count()).select_from(OutboxMessage))
        assert due.scalar_one() == 0
        assert armed.scalar_one() == 15  # one birthday timer per patient
        assert queued.scalar_one() == 0
