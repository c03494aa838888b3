"""The clinic's pain alert as the README tells it, on SQLite and PostgreSQL: the doctor
records a visit, the nurse enters the pain score later by an update; a score of 7 or more,
entered either way, alerts the visit's doctor only, naming the patient in the doctor's
language; the dry run of the update rule agrees with the real run."""

from __future__ import annotations

import httpx

from formloom.platform.clock import FixedClock
from formloom.platform.rules.worker import Worker
from tests.conftest import Users
from tests.platform.rules.test_clinic_rules import APP, clinic, create, patient, worker

__all__ = ["clinic", "worker"]  # fixtures, used by name


async def notes(client: httpx.AsyncClient, who: object) -> list[tuple[str, str]]:
    answer = await client.get("/api/notifications", headers=who.headers)  # type: ignore[attr-defined]
    return [(n["subject"], n["body"]) for n in reversed(answer.json()["items"])]


async def test_a_nurse_entering_pain_nine_alerts_the_treating_doctor_by_name(
    clinic: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    staff_of = {}
    for username, name in (("dr_zhang", "Dr. Zhang"), ("dr_wang", "Dr. Wang")):
        staff_of[username] = await create(
            clinic, "staff", {"name": name, "role": "doctor", "department": "general",
                              "username": username},
        )  # fmt: skip
    zhang = await users.create(
        "dr_zhang", roles={APP: ["doctor"]},
        attributes={"department": "general", "staff_id": staff_of["dr_zhang"]["id"]},
    )  # fmt: skip
    wang = await users.create(
        "dr_wang", roles={APP: ["doctor"]},
        attributes={"department": "general", "staff_id": staff_of["dr_wang"]["id"]},
    )  # fmt: skip
    nurse = await users.create("nurse_wu", roles={APP: ["nurse"]},
                               attributes={"department": "general"})  # fmt: skip
    assert (
        await clinic.patch("/api/auth/me", json={"locale": "zh-CN"}, headers=zhang.headers)
    ).status_code == 200
    someone = await patient(clinic, name="Chen Jing")

    # the doctor records the visit; the vitals come later
    recorded = await clinic.post(
        f"/api/records/{APP}/visit",
        json={"data": {"patient": someone["id"], "doctor": staff_of["dr_zhang"]["id"],
                       "department": "general", "visit_type": "first",
                       "visit_date": "2026-11-23"}},
        headers=zhang.headers,
    )  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    visit = recorded.json()

    # the dry run of the update rule, as the real run will go
    dry = await clinic.post(
        f"/api/rules/{APP}/pain_alert_on_change/test",
        json={"record": {**visit["data"], "pain_score": 9}, "old": visit["data"]},
    )
    [run] = dry.json()["runs"]
    assert run["matched"] is True
    assert run["actions"][0]["data"]["recipients"] == [{"field": "doctor", "user": "dr_zhang"}]
    # ... and the create rule would not run on an update
    dry = await clinic.post(
        f"/api/rules/{APP}/pain_alert/test",
        json={"record": {**visit["data"], "pain_score": 9}, "old": visit["data"],
              "event": "updated"},
    )  # fmt: skip
    assert dry.json()["runs"][0]["matched"] is False

    entered = await clinic.patch(
        f"/api/records/{APP}/visit/{visit['id']}",
        json={"data": {"pain_score": 9}},
        headers=nurse.headers,
    )
    assert entered.status_code == 200, entered.text
    await worker.run_once(clock.now())
    assert await notes(clinic, zhang) == [
        ("疼痛评分 9/10：Chen Jing",
         "患者 Chen Jing 在 2026-11-23 的就诊中疼痛评分为 9/10，请及时查看。"),
    ]  # fmt: skip
    assert await notes(clinic, wang) == [] and await notes(clinic, nurse) == []

    # a visit recorded with the score at once alerts its doctor too, in English for him
    await create(
        clinic, "visit",
        {"patient": someone["id"], "doctor": staff_of["dr_wang"]["id"], "department": "general",
         "visit_type": "first", "visit_date": "2026-11-24", "pain_score": 7},
    )  # fmt: skip
    await worker.run_once(clock.now())
    assert await notes(clinic, wang) == [
        ("Pain score 7/10: Chen Jing",
         "Chen Jing recorded a pain score of 7/10 at the visit on 2026-11-24. "
         "Please review the patient."),
    ]  # fmt: skip
    assert len(await notes(clinic, zhang)) == 1
