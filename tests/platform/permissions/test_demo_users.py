"""The demo's users, one per clinic role (and a surgeon and a head nurse), show the grants
at work, and find work in their inbox: the clinic's flows at every stage."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from formloom.platform.api import create_app
from formloom.platform.clock import FixedClock
from formloom.platform.demo import install_demo
from formloom.platform.settings import Settings


async def test_demo_role_users_see_what_their_role_allows(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # a working afternoon: the demo plays the clinic's last days up to its clock, and the
    # day-3 calls it shows waiting open at 09:00 (before that, on the real clock, they
    # would still be timers)
    clock = FixedClock(datetime(2026, 12, 3, 15, 0, tzinfo=ZoneInfo("Asia/Shanghai")))
    app = create_app(settings.model_copy(update={"timezone": "Asia/Shanghai"}), clock=clock)
    async with app.router.lifespan_context(app):
        await install_demo(app.state.platform, patients=12)
        printed = capsys.readouterr().out
        passwords = dict(re.findall(r"sign in as '(demo_\w+)' .* with password (\S+)", printed))
        assert set(passwords) == {
            "demo_head_office",
            "demo_manager",
            "demo_doctor",
            "demo_surgeon",
            "demo_nurse",
            "demo_head_nurse",
            "demo_front_desk",
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:

            async def token(name: str) -> dict[str, str]:
                answer = await c.post(
                    "/api/auth/token", json={"username": name, "password": passwords[name]}
                )
                assert answer.status_code == 200, answer.text
                return {"Authorization": f"Bearer {answer.json()['access_token']}"}

            nurse = await token("demo_nurse")
            me = (await c.get("/api/auth/me", headers=nurse)).json()
            department = me["attributes"]["department"]
            visits = (await c.get("/api/records/clinic_crm/visit?limit=100", headers=nurse)).json()
            assert visits["items"], "the nurse's department has visits in the demo"
            assert {v["data"]["department"] for v in visits["items"]} == {department}
            patients = (await c.get("/api/records/clinic_crm/patient", headers=nurse)).json()
            assert all("id_number" not in p["data"] for p in patients["items"])
            desk = await token("demo_front_desk")
            denied = await c.post("/api/records/clinic_crm/visit", json={"data": {}}, headers=desk)
            assert denied.status_code == 403

            # two branches: the demo users work at Xuhui, the head office sees both
            async def patients_of(name: str) -> set[str]:
                answer = await c.get(
                    "/api/records/clinic_crm/patient",
                    params={"limit": 100, "fields": "branch"},
                    headers=await token(name),
                )
                assert answer.status_code == 200, answer.text
                return {p["data"]["branch"] for p in answer.json()["items"]}

            branches = (await c.get("/api/records/clinic_crm/branch", headers=desk)).json()["items"]
            by_code = {b["data"]["code"]: b["id"] for b in branches}
            assert set(by_code) == {"XH", "PD"}
            assert me["attributes"]["branch"] == by_code["XH"]
            assert await patients_of("demo_front_desk") == {by_code["XH"]}
            assert await patients_of("demo_manager") == {by_code["XH"]}
            assert await patients_of("demo_head_office") == {by_code["XH"], by_code["PD"]}
            # the follow-ups the flows planned took their visit's patient's branch
            planned = await c.get(
                "/api/records/clinic_crm/follow_up",
                params={"limit": 100, "filter": '{"!!": {"var": "checkpoint"}}'},
                headers=nurse,
            )
            assert planned.json()["items"], planned.text
            assert {f["data"].get("branch") for f in planned.json()["items"]} == {by_code["XH"]}

            # the flows' work reaches the demo users (staff records name their users)
            async def inbox(name: str) -> list[dict[str, Any]]:
                answer = await c.get(
                    "/api/tasks", params={"app": "clinic_crm"}, headers=await token(name)
                )
                assert answer.status_code == 200, answer.text
                return list(answer.json()["items"])

            def nodes(items: list[dict[str, Any]]) -> list[str]:
                return sorted(item["node"] for item in items)

            # two day-3 calls any nurse of the department claims; a complaint to handle
            nurse_work = await inbox("demo_nurse")
            assert nodes(nurse_work) == ["call_day3", "call_day3", "handle"]
            calls = [t for t in nurse_work if t["node"] == "call_day3"]
            assert all(t["claim_required"] and t["assignee"] is None for t in calls)
            assert all(t["candidates"]["users"] == ["demo_head_nurse", "demo_nurse"] for t in calls)
            # the head nurse has those calls too, and the overdue one moved to her
            head = await inbox("demo_head_nurse")
            assert nodes(head) == ["call_day3", "call_day3", "call_day3"]
            (escalated,) = [t for t in head if t["assignee"] == "demo_head_nurse"]
            assert escalated["overdue"] is True
            # the doctor: a follow-up alert (pain 8) and the general department's MDT opinion
            doctor = await inbox("demo_doctor")
            assert nodes(doctor) == ["department_opinion", "doctor_review"]
            assert all(t["assignee"] == "demo_doctor" for t in doctor)
            assert nodes(await inbox("demo_surgeon")) == ["department_opinion"]
            # the manager: a complaint to classify and one to review
            assert nodes(await inbox("demo_manager")) == ["classify", "review"]
        # a second start on the same database prints no password
        await install_demo(app.state.platform, patients=12)
        assert "password" not in capsys.readouterr().out
