"""A flow runs on its record's clock (docs/time-zones.md): the clinic's follow-up plan for a
visit at a branch in Asia/Urumqi (two hours behind the deployment's Asia/Shanghai) opens
its day-3 call at 00:00 Urumqi time and makes it due at the end of Urumqi's working day,
while a visit at a Shanghai branch keeps Shanghai's. SQLite and PostgreSQL, through the
API and the worker."""

from __future__ import annotations

from typing import Any

import pytest

from formloom import builtin_apps
from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests.conftest import TestUser, Users
from tests.scenario.clinic import APP, Clinic, at, clinic_deployment


@pytest.fixture
async def clinic(settings: Settings, clock: FixedClock, users: Users, admin: TestUser) -> Any:
    async with clinic_deployment(settings, clock, users) as deployment:
        yield deployment


async def a_branch_with_a_nurse(clinic: Clinic, name: str, zone: str) -> tuple[str, str]:
    """A branch, its general practice doctor (a staff record) and nurse (a user)."""
    branch = await clinic.create("admin", "branch", name=name, code=name[:2].upper(),
                                 timezone=zone)  # fmt: skip
    doctor = await clinic.create("admin", "staff", name=f"Dr. {name}", role="doctor",
                                 department="general", branch=branch)  # fmt: skip
    nurse = f"nurse_{name.lower()}"
    await clinic.users.create(
        nurse, roles={APP: ["nurse"]}, attributes={"branch": branch, "department": "general"}
    )
    return branch, doctor


async def test_a_follow_up_plan_runs_on_its_branchs_clock(clinic: Clinic) -> None:
    clinic.clock.at = at("2026-11-23 10:30")  # a Monday, in Shanghai
    installed = await clinic.call("admin", "POST", "/api/apps/import", builtin_apps.load(APP))
    assert installed.status_code == 201, installed.text
    visits = {}
    for number, (name, zone) in enumerate((("Kashgar", "Asia/Urumqi"), ("Xuhui", "Asia/Shanghai"))):
        branch, doctor = await a_branch_with_a_nurse(clinic, name, zone)
        patient = await clinic.create("admin", "patient", name=f"Patient of {name}",
                                      phone=f"+861390000000{number}", branch=branch)  # fmt: skip
        visits[name] = await clinic.create(
            "admin", "visit", patient=patient, doctor=doctor, department="general",
            visit_date="2026-11-23", visit_type="first", follow_up_needed=True,
            follow_up_plan="short",
        )  # fmt: skip

    # 00:00 on day 3 in Shanghai: Xuhui's call opens, Kashgar's (22:00 the day before
    # there) does not
    await clinic.tick("2026-11-26 00:00")
    assert [t["record_id"] for t in await clinic.inbox("nurse_xuhui")] == [visits["Xuhui"]]
    assert await clinic.inbox("nurse_kashgar") == []
    await clinic.tick("2026-11-26 01:59")
    assert await clinic.inbox("nurse_kashgar") == []
    # 02:00 in Shanghai is 00:00 in Urumqi
    await clinic.tick("2026-11-26 02:00")
    (call,) = await clinic.inbox("nurse_kashgar")
    assert call["record_id"] == visits["Kashgar"]
    # due at 17:30 Urumqi time, the end of its working day: 19:30 in Shanghai
    assert call["due"] == "2026-11-26T11:30:00Z"
    (shanghai,) = await clinic.inbox("nurse_xuhui")
    assert shanghai["due"] == "2026-11-26T09:30:00Z"  # 17:30 in Shanghai
