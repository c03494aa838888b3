"""The clinic CRM's three flows end to end through the HTTP API, on SQLite and PostgreSQL,
with the tests' clock moved by hand and the worker firing the flows' timers at their due
moments (builtin_apps/clinic_crm/README.md, "Flows").

* The follow-up plan: a visit with a plan starts it (a rule); follow-up records are planned
  with their due dates; the day-3 call goes to the nurses of the visit's department, due by
  the end of that working day; a pain score of 8 opens a task for the treating doctor (a
  relation to staff, whose user it is) while the plan goes on in parallel; an overdue day-7
  check reminds, then moves to the department's head nurse; each step closes its follow-up
  record as done or missed; day 30 and day 90 follow on the clinic's calendar.
* The complaint work order: front desk registers, a manager classifies and names the
  handler, the handler is late (remind, then the managers get it), the review sends it back
  with a required comment, the handler resolves it again, the patient is told by text and
  front desk records the satisfaction. The managers' and front desk's steps go to the
  complaint's branch (every branch's for a complaint without one).
* The MDT consultation: one task per department in parallel (the doctors of each), the
  requesting doctor concludes when every department has answered (the join); and a patient
  discharged first cancels the consultation (a rule marks it, ``cancel_when`` ends it).

Times are Asia/Shanghai (the clinic's calendar: Monday to Friday 08:30-12:00, 13:30-17:30);
the clock starts on Monday 2026-11-23 10:30. Bearer tokens last 12 hours of clock time, so
every call takes a token issued at the current clock time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from formloom import builtin_apps
from formloom.engines.flows import BusinessCalendar
from formloom.platform.apps.definition import load
from formloom.platform.clock import FixedClock
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests.conftest import Users, running_worker
from tests.servers import HttpSink

APP = "clinic_crm"
ZONE = ZoneInfo("Asia/Shanghai")


def local(text: str | None) -> str | None:
    """An API time as the clinic reads it: ``YYYY-MM-DD HH:MM`` in Shanghai."""
    if text is None:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(ZONE).strftime("%Y-%m-%d %H:%M")


def at(text: str) -> datetime:
    """``YYYY-MM-DD HH:MM`` in Shanghai."""
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


@pytest.fixture
async def worker(settings: Settings, gateway: HttpSink) -> AsyncIterator[Worker]:
    async with running_worker(settings, sms_gateway_url=f"{gateway.url}/sms") as running:
        yield running


class Clinic:
    """The installed clinic, its people and the clock: calls as someone, at the clock's
    time (with a token issued then), and the worker run at a given moment."""

    def __init__(
        self, client: httpx.AsyncClient, users: Users, clock: FixedClock, worker: Worker
    ) -> None:
        self.client, self.users, self.clock, self.worker = client, users, clock, worker
        self._tokens: dict[str, tuple[datetime, str]] = {}

    async def person(self, name: str, role: str, **attributes: Any) -> None:
        await self.users.create(name, roles={APP: [role]}, attributes=attributes)

    async def headers(self, who: str) -> dict[str, str]:
        issued = self._tokens.get(who)
        if issued is None or issued[0] != self.clock.now():
            issued = (self.clock.now(), await self.users.token(who))
            self._tokens[who] = issued
        return {"Authorization": f"Bearer {issued[1]}"}

    async def call(
        self, who: str, method: str, url: str, json: Any = None, **params: Any
    ) -> httpx.Response:
        return await self.client.request(
            method, url, json=json, params=params or None, headers=await self.headers(who)
        )

    async def ok(self, who: str, method: str, url: str, json: Any = None, **params: Any) -> Any:
        answer = await self.call(who, method, url, json, **params)
        assert answer.status_code in (200, 201), f"{method} {url}: {answer.text}"
        return answer.json()

    async def create(self, who: str, form: str, data: dict[str, Any]) -> str:
        made = await self.ok(who, "POST", f"/api/records/{APP}/{form}", {"data": data})
        return str(made["id"])

    async def record(self, form: str, record_id: str) -> dict[str, Any]:
        found = await self.ok("admin", "GET", f"/api/records/{APP}/{form}/{record_id}")
        return dict(found["data"])

    async def update(self, who: str, form: str, record_id: str, data: dict[str, Any]) -> None:
        await self.ok(who, "PATCH", f"/api/records/{APP}/{form}/{record_id}", {"data": data})

    async def inbox(self, who: str) -> list[dict[str, Any]]:
        return list((await self.ok(who, "GET", "/api/tasks", app=APP))["items"])

    async def task(self, who: str, node: str, record: str | None = None) -> dict[str, Any]:
        (found,) = [
            t
            for t in await self.inbox(who)
            if t["node"] == node and record in (None, t["record_id"])
        ]
        return found

    async def complete(self, who: str, task: str, **body: Any) -> httpx.Response:
        return await self.call(who, "POST", f"/api/tasks/{task}/complete", body)

    async def do(
        self, who: str, node: str, record: str | None = None, **body: Any
    ) -> dict[str, Any]:
        """``who`` takes the open ``node`` task of their inbox (on ``record``), claiming it
        if it must be claimed, and completes it."""
        task = await self.task(who, node, record)
        if task["claim_required"] and task["assignee"] is None:
            await self.ok(who, "POST", f"/api/tasks/{task['id']}/claim")
        done = await self.complete(who, task["id"], **body)
        assert done.status_code == 200, done.text
        return dict(done.json())

    async def instance(self, record_id: str) -> dict[str, Any]:
        (found,) = await self.instances(record_id)
        return dict(await self.ok("admin", "GET", f"/api/flow-instances/{found['id']}"))

    async def instances(self, record_id: str) -> list[dict[str, Any]]:
        found = await self.ok("admin", "GET", "/api/flow-instances", app=APP, record_id=record_id)
        return list(found["items"])

    async def follow_ups(self, visit: str) -> dict[str, dict[str, Any]]:
        """The visit's follow-up records, by checkpoint."""
        page = await self.ok(
            "admin", "POST", f"/api/records/{APP}/follow_up/query",
            {"filter": {"==": [{"var": "visit"}, visit]}, "limit": 20},
        )  # fmt: skip
        return {item["data"]["checkpoint"]: item["data"] for item in page["items"]}

    async def tick(self, when: str) -> int:
        """Move the clock to ``when`` and let the worker fire what is due; how many of the
        flows' timers fired (the rules' schedules fire too, uncounted)."""
        self.clock.at = at(when)
        before = await self._fired_flow_timers()
        report = await self.worker.run_once(self.clock.now())
        assert not report.errors, report.to_dict()
        return len(await self._fired_flow_timers() - before)

    async def _fired_flow_timers(self) -> set[str]:
        found = await self.ok("admin", "GET", "/api/timers", app=APP, status="fired", limit=200)
        return {timer["id"] for timer in found["items"] if timer["kind"] == "flow"}

    async def notes(self, who: str) -> list[str]:
        found = await self.ok(who, "GET", "/api/notifications")
        return [note["subject"] for note in found["items"]]


@pytest.fixture
async def clinic(
    client: httpx.AsyncClient, users: Users, clock: FixedClock, worker: Worker
) -> Clinic:
    answer = await client.post("/api/apps/import", json=builtin_apps.load(APP))
    assert answer.status_code == 201, answer.text
    return Clinic(client, users, clock, worker)


async def staff(clinic: Clinic, name: str, role: str, department: str, username: str) -> str:
    return await clinic.create(
        "admin", "staff",
        {"name": name, "role": role, "department": department, "username": username},
    )  # fmt: skip


async def patient(clinic: Clinic, name: str, phone: str) -> str:
    return await clinic.create("admin", "patient", {"name": name, "phone": phone})


def timeline(instance: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [entry for entry in instance["timeline"] if entry["kind"] == kind]


def opened(instance: dict[str, Any]) -> list[str]:
    return [entry["node"] for entry in timeline(instance, "task_opened")]


# ---------------------------------------------------------------------------------------
# The follow-up plan
# ---------------------------------------------------------------------------------------


async def test_a_follow_up_plan_from_the_visit_to_day_90(clinic: Clinic) -> None:
    await clinic.person("dr_wang", "doctor", department="surgery")
    await clinic.person("nurse_wu", "nurse", department="surgery", head_nurse=False)
    await clinic.person("head_chen", "nurse", department="surgery", head_nurse=True)
    await clinic.person("nurse_ma", "nurse", department="internal", head_nurse=True)
    doctor = await staff(clinic, "Dr. Wang", "doctor", "surgery", "dr_wang")
    someone = await patient(clinic, "Chen Jing", "+8613800138000")

    # Monday 10:30: the surgeon records a treatment with the standard plan; a rule starts it
    visit = await clinic.create(
        "dr_wang", "visit",
        {"patient": someone, "doctor": doctor, "department": "surgery",
         "visit_date": "2026-11-23", "visit_type": "treatment", "follow_up_needed": True,
         "follow_up_plan": "standard"},
    )  # fmt: skip
    started = await clinic.instance(visit)
    assert started["flow"] == "follow_up_plan" and started["waiting_at"] == ["wait_day3"]
    assert (await clinic.follow_ups(visit)) == {
        day: {"visit": visit, "patient": someone, "department": "surgery", "due_date": due,
              "checkpoint": day, "status": "pending"}
        for day, due in [("day3", "2026-11-26"), ("day7", "2026-11-30"),
                         ("day30", "2026-12-23"), ("day90", "2027-02-21")]
    }  # fmt: skip
    assert await clinic.inbox("nurse_wu") == []

    # day 3 (Thursday) at 00:00: a call for the department's nurses, due at the day's end
    assert await clinic.tick("2026-11-26 00:00") == 1
    (call,) = await clinic.inbox("nurse_wu")
    assert call["node"] == "call_day3"
    assert call["title"] == "Day-3 call: visit of 2026-11-23"
    assert call["candidates"] == {"roles": [], "users": ["head_chen", "nurse_wu"]}
    assert call["claim_required"] is True and call["assignee"] is None
    assert local(call["due"]) == "2026-11-26 17:30"
    assert call["edit"] == ["followup_pain", "wound_problem", "followup_note"]
    assert await clinic.inbox("nurse_ma") == []  # another department's nurse

    # 10:00: the patient is in pain: the treating doctor gets an alert, the plan goes on
    clinic.clock.at = at("2026-11-26 10:00")
    await clinic.do(
        "nurse_wu", "call_day3", outcome="reached",
        values={"followup_pain": 8, "wound_problem": False,
                "followup_note": "Throbbing pain since the night"},
    )  # fmt: skip
    running = await clinic.instance(visit)
    assert sorted(running["waiting_at"]) == ["doctor_review", "wait_day7"]
    assert (await clinic.follow_ups(visit))["day3"] | {"due_date": None} == {
        "visit": visit, "patient": someone, "department": "surgery", "due_date": None,
        "checkpoint": "day3", "status": "done", "pain": 8, "wound_problem": False,
        "notes": "Throbbing pain since the night", "handled_by": "nurse_wu",
    }  # fmt: skip
    (alert,) = await clinic.inbox("dr_wang")
    assert alert["node"] == "doctor_review" and alert["assignee"] == "dr_wang"
    assert alert["title"] == "Follow-up alert: visit of 2026-11-23, pain 8/10"
    assert local(alert["due"]) == "2026-11-26 15:30"  # 4 working hours, lunch left out
    assert await clinic.inbox("nurse_wu") == []

    clinic.clock.at = at("2026-11-26 11:00")
    refused = await clinic.complete("dr_wang", alert["id"], outcome="advised")
    assert refused.status_code == 422
    assert [e["path"] for e in refused.json()["errors"]] == ["/values/followup_advice"]
    advice = "Ibuprofen; revisit if worse"
    await clinic.do("dr_wang", "doctor_review", values={"followup_advice": advice})
    assert (await clinic.instance(visit))["waiting_at"] == ["wait_day7"]

    # day 7 (Monday): the last answers are cleared and a check opens
    assert await clinic.tick("2026-11-30 00:00") == 1
    data = await clinic.record("visit", visit)
    assert "followup_pain" not in data or data["followup_pain"] is None
    assert data["followup_advice"] == advice
    check = await clinic.task("nurse_wu", "check_day7")
    assert local(check["due"]) == "2026-11-30 17:30"

    # nobody does it: a reminder the next working morning; four working hours after the due
    # time (Tuesday 14:00) the department's head nurse has it
    assert await clinic.tick("2026-12-01 08:29") == 0
    assert await clinic.tick("2026-12-01 08:30") == 1
    assert await clinic.notes("nurse_wu") == ["Overdue task"]
    assert await clinic.notes("head_chen") == ["Overdue task"]
    assert (await clinic.ok("nurse_wu", "GET", "/api/tasks", app=APP))["counts"]["overdue"] == 1
    assert await clinic.tick("2026-12-01 13:59") == 0
    assert await clinic.tick("2026-12-01 14:00") == 1
    assert await clinic.inbox("nurse_wu") == []
    (moved,) = await clinic.inbox("head_chen")
    assert moved["id"] == check["id"] and moved["assignee"] == "head_chen"
    assert moved["candidates"] == {"roles": [], "users": ["head_chen"]}
    assert moved["overdue"] is True

    clinic.clock.at = at("2026-12-01 14:30")
    no_comment = await clinic.complete("head_chen", moved["id"], outcome="unreachable")
    assert no_comment.status_code == 422
    await clinic.do("head_chen", "check_day7", outcome="unreachable", comment="No answer twice")
    day7 = (await clinic.follow_ups(visit))["day7"]
    assert day7["status"] == "missed" and day7["notes"] == "No answer twice"
    assert day7["handled_by"] == "head_chen"  # the head nurse it moved to
    assert day7.get("pain") is None
    assert (await clinic.instance(visit))["waiting_at"] == ["wait_day30"]

    # day 30: the revisit is booked; day 90 falls on a Sunday: due Monday evening
    assert await clinic.tick("2026-12-23 00:00") == 1
    clinic.clock.at = at("2026-12-23 09:00")
    revisit = await clinic.task("nurse_wu", "revisit_day30")
    assert local(revisit["due"]) == "2026-12-23 17:30"
    await clinic.do("nurse_wu", "revisit_day30", outcome="booked",
                    values={"followup_note": "Revisit on 28 December"})  # fmt: skip
    assert await clinic.tick("2027-02-21 00:00") == 1
    questionnaire = await clinic.task("head_chen", "questionnaire_day90")
    assert local(questionnaire["due"]) == "2027-02-22 17:30"
    clinic.clock.at = at("2027-02-22 09:00")
    await clinic.do("head_chen", "questionnaire_day90", outcome="answered",
                    values={"followup_note": "Fully recovered"})  # fmt: skip

    done = await clinic.instance(visit)
    assert done["status"] == "completed" and done["open_tasks"] == []
    assert opened(done) == [
        "call_day3", "doctor_review", "check_day7", "revisit_day30", "questionnaire_day90"
    ]  # fmt: skip
    assert [e["node"] for e in timeline(done, "task_reminded")] == ["check_day7"]
    (reassigned,) = timeline(done, "task_reassigned")
    assert reassigned["node"] == "check_day7" and local(reassigned["at"]) == "2026-12-01 14:00"
    assert done["timeline"][-1]["kind"] == "instance_ended"
    assert {day: f["status"] for day, f in (await clinic.follow_ups(visit)).items()} == {
        "day3": "done", "day7": "missed", "day30": "done", "day90": "done"
    }  # fmt: skip


async def test_plans_the_start_rule_and_starting_by_hand(clinic: Clinic) -> None:
    await clinic.person("nurse_wu", "nurse", department="surgery", head_nurse=False)
    await clinic.person("desk", "front_desk")
    doctor = await staff(clinic, "Dr. Wang", "doctor", "surgery", "dr_wang")
    someone = await patient(clinic, "Chen Jing", "+8613800138000")

    async def visit(day: str, **data: Any) -> str:
        return await clinic.create(
            "admin", "visit",
            {"patient": someone, "doctor": doctor, "department": "surgery", "visit_date": day,
             "visit_type": "first", **data},
        )  # fmt: skip

    # a day-3-only plan: one follow-up; the call unanswered ends the plan as missed
    short = await visit("2026-11-23", follow_up_needed=True, follow_up_plan="short")
    assert list(await clinic.follow_ups(short)) == ["day3"]
    # a chronic-care plan starts at day 30
    chronic = await visit("2026-11-23", follow_up_needed=True, follow_up_plan="chronic")
    assert sorted(await clinic.follow_ups(chronic)) == ["day30", "day90"]
    assert (await clinic.instance(chronic))["waiting_at"] == ["wait_day30"]
    # no plan, or a visit recorded more than a week late: no flow
    plain = await visit("2026-11-23")
    late = await visit("2026-11-10", follow_up_needed=True, follow_up_plan="short")
    assert await clinic.instances(plain) == [] and await clinic.instances(late) == []

    # the late visit's plan is started by hand: its day-3 call is due at once
    refused = await clinic.call(
        "desk", "POST", f"/api/flows/{APP}/follow_up_plan/start", {"record_id": late}
    )
    assert refused.status_code == 403
    no_plan = await clinic.call(
        "nurse_wu", "POST", f"/api/flows/{APP}/follow_up_plan/start", {"record_id": plain}
    )
    assert no_plan.status_code == 409  # start.when: the visit needs a plan
    await clinic.ok("nurse_wu", "POST", f"/api/flows/{APP}/follow_up_plan/start",
                    {"record_id": late})  # fmt: skip
    assert await clinic.tick("2026-11-23 10:30") == 1
    calls = [t for t in await clinic.inbox("nurse_wu") if t["record_id"] == late]
    assert [local(t["due"]) for t in calls] == ["2026-11-24 10:30"]  # 7.5 working hours

    await clinic.tick("2026-11-26 00:00")  # the short plan's day 3 (and the late call's reminders)
    clinic.clock.at = at("2026-11-26 16:00")
    await clinic.do(
        "nurse_wu", "call_day3", short, outcome="unreachable", comment="Number disconnected"
    )
    ended = await clinic.instance(short)
    assert ended["status"] == "completed"
    assert (await clinic.follow_ups(short))["day3"]["status"] == "missed"


# ---------------------------------------------------------------------------------------
# The complaint work order
# ---------------------------------------------------------------------------------------


async def test_a_complaint_from_the_front_desk_to_the_satisfaction_call(
    clinic: Clinic, gateway: HttpSink
) -> None:
    await clinic.person("desk", "front_desk")
    await clinic.person("boss", "manager")
    await clinic.person("nurse_wu", "nurse", department="surgery", head_nurse=False)
    handler = await staff(clinic, "Wu Fang", "nurse", "surgery", "nurse_wu")
    someone = await patient(clinic, "Chen Jing", "+8613800138000")

    # Monday 10:30: front desk registers it; a rule opens the work order
    complaint = await clinic.create(
        "desk", "complaint",
        {"summary": "Charged twice", "patient": someone, "phone": "+8613800138000",
         "channel": "phone", "description": "The bill lists the scan twice."},
    )  # fmt: skip
    assert (await clinic.record("complaint", complaint))["status"] == "new"
    assert await clinic.inbox("desk") == []
    (classify,) = await clinic.inbox("boss")
    # a complaint without a branch: the managers of every branch
    assert classify["node"] == "classify"
    assert classify["candidates"] == {"roles": [], "users": ["boss"]}
    assert local(classify["due"]) == "2026-11-23 16:00"

    # 11:00: the manager names the department and the handler
    clinic.clock.at = at("2026-11-23 11:00")
    await clinic.ok("boss", "POST", f"/api/tasks/{classify['id']}/claim")
    missing = await clinic.complete("boss", classify["id"], values={"severity": "high"})
    assert missing.status_code == 422
    assert sorted(e["path"] for e in missing.json()["errors"]) == [
        "/values/category", "/values/department", "/values/handler"
    ]  # fmt: skip
    assigned = {"category": "billing", "severity": "high", "department": "surgery",
                "handler": handler}  # fmt: skip
    await clinic.do("boss", "classify", values=assigned)
    assert (await clinic.record("complaint", complaint))["status"] == "in_progress"
    (handle,) = await clinic.inbox("nurse_wu")
    assert handle["node"] == "handle" and handle["assignee"] == "nurse_wu"
    assert local(handle["due"]) == "2026-12-01 15:30"  # 48 working hours

    # late: a reminder at the due time, and four working hours later the managers have it
    assert await clinic.tick("2026-12-01 15:30") == 1
    assert await clinic.notes("nurse_wu") == ["Overdue task"]
    assert await clinic.tick("2026-12-02 10:30") == 1
    assert await clinic.inbox("nurse_wu") == []
    (taken,) = await clinic.inbox("boss")
    assert taken["id"] == handle["id"] and taken["assignee"] == "boss"  # the only manager
    assert taken["candidates"] == {"roles": [], "users": ["boss"]}

    clinic.clock.at = at("2026-12-02 11:00")
    await clinic.do("boss", "handle", values={"resolution": "Refunded the second charge"})
    assert (await clinic.record("complaint", complaint))["status"] == "in_review"

    # the review sends it back (a comment is required) to the handler named on the record
    review = await clinic.task("boss", "review")
    await clinic.ok("boss", "POST", f"/api/tasks/{review['id']}/claim")
    bare = await clinic.complete("boss", review["id"], outcome="reject")
    assert bare.status_code == 422
    await clinic.do("boss", "review", outcome="reject", comment="Call the patient first")
    assert (await clinic.record("complaint", complaint))["status"] == "in_progress"
    again = await clinic.task("nurse_wu", "handle")
    assert again["id"] != handle["id"] and again["assignee"] == "nurse_wu"
    assert again["description"].endswith("Sent back by the review: Call the patient first")
    assert local(again["due"]) == "2026-12-10 15:30"

    clinic.clock.at = at("2026-12-02 14:00")
    await clinic.do("nurse_wu", "handle", values={"resolution": "Refunded and called back"})
    await clinic.do("boss", "review", outcome="approve")

    # closed; the patient gets a text; front desk asks how satisfied they are
    assert (await clinic.record("complaint", complaint))["status"] == "closed"
    assert await clinic.tick("2026-12-02 14:00") == 0
    (text,) = gateway.requests
    assert text.body["to"] == "+8613800138000"
    assert "Charged twice" in text.body["text"]
    call = await clinic.task("desk", "satisfaction_call")
    assert local(call["due"]) == "2026-12-04 14:00"
    await clinic.do("desk", "satisfaction_call", outcome="answered", values={"satisfaction": 4})

    done = await clinic.instance(complaint)
    assert done["status"] == "completed"
    assert opened(done) == ["classify", "handle", "review", "handle", "review",
                            "satisfaction_call"]  # fmt: skip
    assert [e["node"] for e in timeline(done, "task_reminded")] == ["handle"]
    assert [e["node"] for e in timeline(done, "task_reassigned")] == ["handle"]
    rejected = [e for e in timeline(done, "task_completed") if e["data"]["outcome"] == "reject"]
    assert [(e["actor"], e["data"]["comment"]) for e in rejected] == [
        ("boss", "Call the patient first")
    ]
    final = await clinic.record("complaint", complaint)
    assert (final["resolution"], final["satisfaction"]) == ("Refunded and called back", 4)


async def test_a_complaints_work_order_stays_in_its_branch(clinic: Clinic) -> None:
    branches = {code: await clinic.create("admin", "branch", {"name": name, "code": code})
                for code, name in (("XH", "Xuhui"), ("PD", "Pudong"))}  # fmt: skip
    for code, branch in branches.items():
        await clinic.person(f"mgr_{code.lower()}", "manager", branch=branch)
        await clinic.person(f"desk_{code.lower()}", "front_desk", branch=branch)
    await clinic.person("dr_sun", "doctor", department="general", branch=branches["PD"])
    handler = await staff(clinic, "Dr. Sun", "doctor", "general", "dr_sun")
    zhao = await clinic.create("desk_pd", "patient",
                               {"name": "Zhao Lei", "phone": "+8613900139000"})  # fmt: skip

    # Pudong's front desk registers it: a Pudong complaint (from the patient's branch)
    complaint = await clinic.create(
        "desk_pd", "complaint",
        {"summary": "Charged twice", "patient": zhao, "phone": "+8613900139000",
         "channel": "phone", "description": "The bill lists the visit twice."},
    )  # fmt: skip
    assert (await clinic.record("complaint", complaint))["branch"] == branches["PD"]
    # Xuhui's manager is not asked, and cannot take it
    assert await clinic.inbox("mgr_xh") == []
    classify = await clinic.task("mgr_pd", "classify", complaint)
    assert classify["candidates"] == {"roles": [], "users": ["mgr_pd"]}
    taken = await clinic.call("mgr_xh", "POST", f"/api/tasks/{classify['id']}/claim")
    assert taken.status_code == 404, taken.text
    await clinic.do("mgr_pd", "classify", complaint, outcome="assigned",
                    values={"category": "billing", "department": "general",
                            "handler": handler})  # fmt: skip

    # the handler is late: the task moves to Pudong's managers only
    assert await clinic.tick("2026-12-01 15:30") == 1
    assert await clinic.tick("2026-12-02 10:30") == 1
    moved = await clinic.task("mgr_pd", "handle", complaint)
    assert moved["candidates"] == {"roles": [], "users": ["mgr_pd"]}
    assert await clinic.inbox("mgr_xh") == []
    clinic.clock.at = at("2026-12-02 11:00")
    await clinic.do("mgr_pd", "handle", complaint, values={"resolution": "Refunded"})
    assert await clinic.inbox("mgr_xh") == []
    await clinic.do("mgr_pd", "review", complaint, outcome="approve")

    # the satisfaction call is for Pudong's front desk
    assert await clinic.inbox("desk_xh") == []
    call = await clinic.task("desk_pd", "satisfaction_call", complaint)
    refused = await clinic.complete("desk_xh", call["id"], outcome="unreachable")
    assert refused.status_code == 404, refused.text
    await clinic.do("desk_pd", "satisfaction_call", complaint, outcome="answered",
                    values={"satisfaction": 5})  # fmt: skip
    assert (await clinic.instance(complaint))["status"] == "completed"

    # a complaint without a branch (registered by someone without one) is every branch's
    await clinic.person("desk", "front_desk")
    anywhere = await clinic.create(
        "desk", "complaint",
        {"summary": "Parking", "phone": "+8613800138000", "channel": "letter",
         "description": "No parking spaces."},
    )  # fmt: skip
    open_to = await clinic.task("mgr_xh", "classify", anywhere)
    assert open_to["candidates"] == {"roles": [], "users": ["mgr_pd", "mgr_xh"]}


# ---------------------------------------------------------------------------------------
# The MDT consultation
# ---------------------------------------------------------------------------------------


async def mdt_team(clinic: Clinic) -> tuple[str, str]:
    """Doctors of surgery (dr_wang) and internal medicine (dr_li, dr_zhao); dr_wang's staff
    record and a patient."""
    await clinic.person("dr_wang", "doctor", department="surgery")
    await clinic.person("dr_li", "doctor", department="internal")
    await clinic.person("dr_zhao", "doctor", department="internal")
    await clinic.person("nurse_wu", "nurse", department="surgery", head_nurse=False)
    return (
        await staff(clinic, "Dr. Wang", "doctor", "surgery", "dr_wang"),
        await patient(clinic, "Chen Jing", "+8613800138000"),
    )


async def request(clinic: Clinic, requested_by: str, someone: str) -> str:
    return await clinic.create(
        "dr_wang", "consultation",
        {"topic": "Recurrent abdominal pain", "patient": someone, "requested_by": requested_by,
         "departments": ["surgery", "internal"], "question": "Operate or watch?"},
    )  # fmt: skip


async def test_an_mdt_consultation_waits_for_every_department(clinic: Clinic) -> None:
    doctor, someone = await mdt_team(clinic)
    consultation = await request(clinic, doctor, someone)

    # one task per department, at once, each for that department's doctors
    (surgery,) = await clinic.inbox("dr_wang")
    (internal,) = await clinic.inbox("dr_li")
    assert (await clinic.inbox("dr_zhao")) == [internal]
    assert surgery["title"] == "MDT opinion (surgery): Recurrent abdominal pain"
    assert surgery["assignee"] == "dr_wang" and surgery["claim_required"] is False
    assert internal["candidates"] == {"roles": [], "users": ["dr_li", "dr_zhao"]}
    assert internal["claim_required"] is True
    assert local(surgery["due"]) == local(internal["due"]) == "2026-11-25 10:30"
    assert await clinic.inbox("nurse_wu") == []

    clinic.clock.at = at("2026-11-23 11:00")
    await clinic.do("dr_wang", "department_opinion", outcome="answered",
                    comment="Surgery: not yet; image again in 4 weeks")  # fmt: skip
    waiting = await clinic.instance(consultation)
    assert waiting["waiting_at"] == ["department_opinion"]
    assert [t["node"] for t in waiting["open_tasks"]] == ["department_opinion"]
    assert await clinic.inbox("dr_wang") == []  # no conclusion before every answer

    # internal medicine is late: both its doctors are reminded
    assert await clinic.tick("2026-11-25 10:30") == 1
    assert await clinic.notes("dr_li") == await clinic.notes("dr_zhao") == ["Overdue task"]
    assert await clinic.notes("dr_wang") == []
    clinic.clock.at = at("2026-11-25 11:00")
    await clinic.do("dr_li", "department_opinion", outcome="answered",
                    comment="Internal: treat as IBS first")  # fmt: skip

    # every department has answered: the requesting doctor concludes
    (conclude,) = await clinic.inbox("dr_wang")
    assert conclude["node"] == "conclude" and local(conclude["due"]) == "2026-11-26 11:00"
    assert await clinic.inbox("dr_li") == await clinic.inbox("dr_zhao") == []
    await clinic.do("dr_wang", "conclude", values={"conclusion": "Treat, image in 4 weeks"})

    done = await clinic.instance(consultation)
    assert done["status"] == "completed"
    assert done["steps"]["department_opinion"]["outcomes"] == ["answered", "answered"]
    opinions = {
        e["actor"]: e["data"]["comment"]
        for e in timeline(done, "task_completed")
        if e["node"] == "department_opinion"
    }
    assert opinions == {"dr_wang": "Surgery: not yet; image again in 4 weeks",
                        "dr_li": "Internal: treat as IBS first"}  # fmt: skip
    final = await clinic.record("consultation", consultation)
    assert (final["status"], final["conclusion"]) == ("concluded", "Treat, image in 4 weeks")


async def test_a_discharge_cancels_a_running_consultation(clinic: Clinic) -> None:
    doctor, someone = await mdt_team(clinic)
    refused = await clinic.call(
        "nurse_wu", "POST", f"/api/records/{APP}/consultation",
        {"data": {"topic": "x", "patient": someone, "requested_by": doctor,
                  "departments": ["surgery"], "question": "?"}},
    )  # fmt: skip
    assert refused.status_code == 403
    consultation = await request(clinic, doctor, someone)
    clinic.clock.at = at("2026-11-23 11:00")
    await clinic.do("dr_wang", "department_opinion", outcome="answered", comment="Wait")

    # the patient goes home before internal medicine answers
    clinic.clock.at = at("2026-11-24 09:00")
    await clinic.update("admin", "patient", someone, {"discharged_at": "2026-11-24T09:00:00+08:00"})
    marked = await clinic.record("consultation", consultation)
    assert (marked["patient_discharged"], marked["status"]) == (True, "cancelled")
    ended = await clinic.instance(consultation)
    assert ended["status"] == "cancelled" and ended["open_tasks"] == []
    assert ended["timeline"][-1]["kind"] == "instance_ended"
    assert ended["timeline"][-1]["data"]["reason"] == "cancel_when"
    assert await clinic.inbox("dr_li") == await clinic.inbox("dr_wang") == []
    closed = await clinic.ok("admin", "GET", "/api/tasks", scope="everyone", status="cancelled",
                             record_id=consultation)  # fmt: skip
    assert [t["node"] for t in closed["items"]] == ["department_opinion"]
    # nothing it armed is left to fire
    timers = await clinic.ok("admin", "GET", "/api/timers", record_id=consultation)
    assert timers["items"] and {t["status"] for t in timers["items"]} == {"cancelled"}


# ---------------------------------------------------------------------------------------
# The calendar
# ---------------------------------------------------------------------------------------


def test_the_clinic_calendar_knows_holidays_and_make_up_days() -> None:
    spec = load(builtin_apps.load(APP))
    assert spec.calendar is not None
    calendar = BusinessCalendar(spec.calendar, ZONE)
    day = datetime.fromisoformat
    assert not calendar.is_working_day(day("2026-10-05").date())  # National Day
    assert calendar.is_working_day(day("2026-10-10").date())  # a make-up Saturday
    assert not calendar.is_working_day(day("2026-02-23").date())  # Spring Festival, Monday
    assert calendar.is_working_day(day("2026-01-04").date())  # a make-up Sunday
    # 4 working hours from Wednesday 30 September 2026 16:00: 1.5 h that day, then the
    # National Day week is skipped until Thursday 8 October, 11:00
    start = at("2026-09-30 16:00")
    assert calendar.add_working_hours(start, 4).astimezone(ZONE) == at("2026-10-08 11:00")
