"""Flows through the HTTP API on SQLite and PostgreSQL: a complaint work order from start
to end — claimable tasks, a step's fields validated at completion, an assignee from a
relation to staff, a rejection that returns the work, an action that closes the record,
the timeline — and the refusals (not a candidate, a wrong outcome, a missing field) that
change nothing. Time is the tests' fixed clock, moved by hand; timers fire through the
worker."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models.automation import Notification, Task
from formloom.platform.models.flow import FlowInstance
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import TestUser, Users

APP = "care"

COMPLAINT_FLOW: dict[str, Any] = {
    "key": "complaint",
    "label": {"en": "Complaint", "zh-CN": "投诉"},
    "form": "complaint",
    "start": {"roles": ["front_desk"]},
    "nodes": [
        {"type": "start", "key": "registered"},
        {
            "type": "user_task",
            "key": "classify",
            "title": "Classify: {{ record.summary }}",
            "assignee": {"role": "manager"},
            "edit": ["handler", "category"],
            "required": ["handler"],
        },
        {
            "type": "user_task",
            "key": "handle",
            "title": "Handle: {{ record.summary }}",
            "assignee": {"field": "handler"},
            "mode": "any",
            "edit": ["resolution"],
            "required": ["resolution"],
            "outcomes": [{"key": "resolved"}],
            "due": {"working_hours": 4},
            "escalations": [{"action": "remind"}],
        },
        {
            "type": "user_task",
            "key": "review",
            "title": "Review: {{ record.summary }}",
            "assignee": {"role": "manager"},
            "outcomes": [{"key": "approve"}, {"key": "reject", "comment": "required"}],
            "hide": ["phone"],
        },
        {
            "type": "action",
            "key": "close",
            "actions": [{"type": "set", "values": {"status": "closed"}}],
        },
        {"type": "end", "key": "done"},
    ],
    "edges": [
        {"from": "registered", "to": "classify"},
        {"from": "classify", "to": "handle"},
        {"from": "handle", "to": "review"},
        {"from": "review", "to": "close", "outcome": "approve"},
        {"from": "review", "to": "handle", "outcome": "reject"},
        {"from": "close", "to": "done"},
    ],
}


def care_app(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "staff",
            f.field("name", required=True),
            f.field("username"),
            title_field="name",
            user_field="username",
        ),
        f.form(
            "complaint",
            f.field("summary", required=True),
            f.field("phone", "phone"),
            f.field(
                "category",
                "select",
                options=[
                    {"value": "billing", "label": "Billing"},
                    {"value": "care", "label": "Care"},
                ],
            ),  # fmt: skip
            f.field("handler", "relation", target="staff"),
            f.field("resolution", "textarea"),
            f.field(
                "status",
                "select",
                options=[
                    {"value": "open", "label": "Open"},
                    {"value": "closed", "label": "Closed"},
                ],
            ),
            title_field="summary",
        ),
        roles=[{"key": "front_desk"}, {"key": "manager"}, {"key": "handler"}],
        permissions=[
            {
                "form": "*",
                "roles": ["front_desk", "manager"],
                "actions": ["read", "create", "update"],
            },
            {"form": "complaint", "roles": ["handler"], "actions": ["read"]},
        ],
        flows=[COMPLAINT_FLOW],
        rules=list(rules),
        calendar={"hours": [["09:00", "12:00"], ["13:00", "18:00"]]},
    )


class People:
    def __init__(self, desk: TestUser, boss: TestUser, nurse: TestUser, other: TestUser) -> None:
        self.desk, self.boss, self.nurse, self.other = desk, boss, nurse, other


@pytest.fixture
async def people(users: Users) -> People:
    return People(
        await users.create("desk", roles={APP: ["front_desk"]}),
        await users.create("boss", roles={APP: ["manager"]}),
        await users.create("nurse1", roles={APP: ["handler"]}),
        await users.create("other", roles={APP: ["handler"]}),
    )


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    answer = await client.post("/api/apps/import", json=care_app())
    assert answer.status_code in (200, 201), answer.text
    return client


async def _create(client: httpx.AsyncClient, who: TestUser, form: str, data: dict[str, Any]) -> str:
    answer = await client.post(
        f"/api/records/{APP}/{form}", json={"data": data}, headers=who.headers
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _inbox(client: httpx.AsyncClient, who: TestUser, **params: Any) -> dict[str, Any]:
    answer = await client.get("/api/tasks", params=params, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_a_complaint_from_registration_to_closing(
    installed: httpx.AsyncClient, people: People, clock: FixedClock, settings: Settings,
    worker: Worker,
) -> None:  # fmt: skip
    client = installed
    staff = await _create(client, people.boss, "staff", {"name": "Nurse One", "username": "nurse1"})
    complaint = await _create(
        client, people.desk, "complaint",
        {"summary": "Billed twice", "phone": "13800000000", "status": "open"},
    )  # fmt: skip

    # a handler may not start it; the front desk may
    refused = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": complaint},
        headers=people.nurse.headers,
    )  # fmt: skip
    assert refused.status_code == 403
    started = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": complaint},
        headers=people.desk.headers,
    )  # fmt: skip
    assert started.status_code == 201, started.text
    instance = started.json()
    assert instance["status"] == "running"
    assert instance["waiting_at"] == ["classify"]
    again = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": complaint},
        headers=people.desk.headers,
    )  # fmt: skip
    assert again.status_code == 409

    # the manager sees it as claimable; the front desk does not see it at all
    assert (await _inbox(client, people.desk))["items"] == []
    boss_inbox = await _inbox(client, people.boss)
    assert boss_inbox["counts"] == {"assigned": 0, "claimable": 1, "overdue": 0}
    (classify,) = boss_inbox["items"]
    assert classify["title"] == "Classify: Billed twice"
    assert classify["candidates"] == {"roles": ["manager"], "users": []}
    assert classify["claim_required"] is True
    task = classify["id"]

    # refusals change nothing
    not_theirs = await client.post(
        f"/api/tasks/{task}/complete", json={}, headers=people.desk.headers
    )
    assert not_theirs.status_code == 404  # not a candidate: the task is not theirs to see
    unclaimed = await client.post(
        f"/api/tasks/{task}/complete", json={}, headers=people.boss.headers
    )
    assert unclaimed.status_code == 409
    claimed = await client.post(f"/api/tasks/{task}/claim", headers=people.boss.headers)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["assignee"] == "boss"
    missing = await client.post(
        f"/api/tasks/{task}/complete", json={"values": {"category": "billing"}},
        headers=people.boss.headers,
    )  # fmt: skip
    assert missing.status_code == 422
    assert [e["path"] for e in missing.json()["errors"]] == ["/values/handler"]
    not_editable = await client.post(
        f"/api/tasks/{task}/complete", json={"values": {"handler": staff, "summary": "x"}},
        headers=people.boss.headers,
    )  # fmt: skip
    assert not_editable.status_code == 422
    assert [e["code"] for e in not_editable.json()["errors"]] == ["not_editable"]
    bad_value = await client.post(
        f"/api/tasks/{task}/complete",
        json={"values": {"handler": staff, "category": "nonsense"}},
        headers=people.boss.headers,
    )
    assert bad_value.status_code == 422
    assert bad_value.json()["errors"][0]["path"] == "/values/category"
    record = (await client.get(f"/api/records/{APP}/complaint/{complaint}")).json()
    assert record["data"].get("handler") is None
    assert record["data"].get("category") is None

    done = await client.post(
        f"/api/tasks/{task}/complete", json={"values": {"handler": staff, "category": "billing"}},
        headers=people.boss.headers,
    )  # fmt: skip
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"

    # the handler named by the relation gets the next task, due in 4 working hours
    (handle,) = (await _inbox(client, people.nurse))["items"]
    assert handle["node"] == "handle" and handle["assignee"] == "nurse1"
    assert handle["due"] is not None
    assert (await _inbox(client, people.other))["items"] == []
    detail = await client.get(f"/api/tasks/{handle['id']}", headers=people.nurse.headers)
    assert detail.status_code == 200, detail.text
    assert detail.json()["record"]["summary"] == "Billed twice"
    resolved = await client.post(
        f"/api/tasks/{handle['id']}/complete",
        json={"outcome": "resolved", "values": {"resolution": "Refunded"}},
        headers=people.nurse.headers,
    )
    assert resolved.status_code == 200, resolved.text

    # the review hides the phone number, rejects (a comment is required) and returns the work
    (review,) = (await _inbox(client, people.boss))["items"]
    shown = await client.get(f"/api/tasks/{review['id']}", headers=people.boss.headers)
    assert "phone" not in shown.json()["record"]
    await client.post(f"/api/tasks/{review['id']}/claim", headers=people.boss.headers)
    wrong = await client.post(
        f"/api/tasks/{review['id']}/complete", json={"outcome": "maybe"},
        headers=people.boss.headers,
    )  # fmt: skip
    assert wrong.status_code == 422
    no_comment = await client.post(
        f"/api/tasks/{review['id']}/complete", json={"outcome": "reject"},
        headers=people.boss.headers,
    )  # fmt: skip
    assert no_comment.status_code == 422
    rejected = await client.post(
        f"/api/tasks/{review['id']}/complete",
        json={"outcome": "reject", "comment": "Call the patient first"},
        headers=people.boss.headers,
    )
    assert rejected.status_code == 200, rejected.text
    (again_handle,) = (await _inbox(client, people.nurse))["items"]
    assert again_handle["node"] == "handle" and again_handle["id"] != handle["id"]

    # overdue: the worker reminds the handler in the app
    clock.at = clock.at + timedelta(hours=8)
    report = await worker.run_once(clock.now())
    assert report.timers_fired >= 1, report.to_dict()
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            reminders = await session.scalar(
                select(func.count()).select_from(Notification).where(Notification.app == APP)
            )
    finally:
        await db.dispose()
    assert reminders == 1
    assert (await _inbox(client, people.nurse))["counts"]["overdue"] == 1

    await client.post(
        f"/api/tasks/{again_handle['id']}/complete", json={"values": {"resolution": "Called"}},
        headers=people.nurse.headers,
    )  # fmt: skip
    (review2,) = (await _inbox(client, people.boss))["items"]
    await client.post(f"/api/tasks/{review2['id']}/claim", headers=people.boss.headers)
    approved = await client.post(
        f"/api/tasks/{review2['id']}/complete", json={"outcome": "approve"},
        headers=people.boss.headers,
    )  # fmt: skip
    assert approved.status_code == 200, approved.text

    final = await client.get(f"/api/flow-instances/{instance['id']}", headers=people.desk.headers)
    assert final.status_code == 200, final.text
    body = final.json()
    assert body["status"] == "completed"
    assert body["open_tasks"] == []
    kinds = [entry["kind"] for entry in body["timeline"]]
    assert kinds.count("task_opened") == 5
    assert kinds[-1] == "instance_ended"
    record = (await client.get(f"/api/records/{APP}/complaint/{complaint}")).json()
    assert record["data"]["status"] == "closed"
    assert record["data"]["resolution"] == "Called"


async def test_cancel_withdraws_tasks_and_timers(
    installed: httpx.AsyncClient, people: People, settings: Settings
) -> None:
    client = installed
    complaint = await _create(client, people.desk, "complaint", {"summary": "Rude"})
    started = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": complaint},
        headers=people.desk.headers,
    )  # fmt: skip
    instance = started.json()["id"]
    by_nurse = await client.post(
        f"/api/flow-instances/{instance}/cancel", json={}, headers=people.nurse.headers
    )
    assert by_nurse.status_code in (403, 404)
    cancelled = await client.post(
        f"/api/flow-instances/{instance}/cancel", json={"reason": "duplicate"},
        headers=people.desk.headers,
    )  # fmt: skip
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert (await _inbox(client, people.boss))["items"] == []
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            states = (await session.scalars(select(Task.status))).all()
            status = await session.scalar(select(FlowInstance.status))
    finally:
        await db.dispose()
    assert list(states) == ["cancelled"]
    assert status == "cancelled"


async def test_deleting_the_record_cancels_its_flows(
    installed: httpx.AsyncClient, people: People
) -> None:
    client = installed
    complaint = await _create(client, people.desk, "complaint", {"summary": "Lost file"})
    started = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": complaint},
        headers=people.desk.headers,
    )  # fmt: skip
    deleted = await client.delete(f"/api/records/{APP}/complaint/{complaint}")
    assert deleted.status_code == 204
    final = await client.get(f"/api/flow-instances/{started.json()['id']}")
    assert final.json()["status"] == "cancelled"


async def test_simulate_writes_nothing(installed: httpx.AsyncClient, people: People) -> None:
    client = installed
    answer = await client.post(
        f"/api/flows/{APP}/complaint/simulate",
        json={
            "record": {"summary": "Sample", "handler": "s1"},
            "choices": {"classify": ["done"], "handle": [{"outcome": "resolved", "after": "P3D"}],
                        "review": ["approve"]},
        },
        headers=people.desk.headers,
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["status"] == "completed"
    opened = [e["node"] for e in result["timeline"] if e["kind"] == "task_opened"]
    assert opened == ["classify", "handle", "review"]
    assert (await client.get("/api/flow-instances", params={"app": APP})).json()["items"] == []


async def test_a_designer_simulates_a_draft_before_saving_it(
    installed: httpx.AsyncClient, people: People
) -> None:
    """The flow designer's Simulate runs the draft on screen, checked as a save would check
    it; the saved flow is not changed, and only designers may simulate a draft."""
    client = installed
    saved = (await client.get(f"/api/apps/{APP}/flows/complaint")).json()["flow"]
    draft = json.loads(json.dumps(saved))
    draft["nodes"] = [n for n in draft["nodes"] if n["key"] != "review"]
    draft["edges"] = [e for e in draft["edges"] if e["from"] != "review"]
    for edge in draft["edges"]:
        if edge["to"] == "review":
            edge["to"] = next(e["to"] for e in saved["edges"] if e["from"] == "review")
    body = {
        "flow": draft,
        "record": {"summary": "Sample", "handler": "s1"},
        "choices": {"classify": ["done"], "handle": ["resolved"]},
    }
    answer = await client.post(f"/api/flows/{APP}/complaint/simulate", json=body)
    assert answer.status_code == 200, answer.text
    opened = [e["node"] for e in answer.json()["timeline"] if e["kind"] == "task_opened"]
    assert opened == ["classify", "handle"]
    assert (await client.get(f"/api/apps/{APP}/flows/complaint")).json()["flow"] == saved

    broken = {**draft, "edges": [*draft["edges"], {"from": "handle", "to": "nowhere"}]}
    refused = await client.post(
        f"/api/flows/{APP}/complaint/simulate", json={**body, "flow": broken}
    )
    assert refused.status_code == 422, refused.text
    assert any(e["path"].startswith("/edges/") for e in refused.json()["errors"])
    not_designer = await client.post(
        f"/api/flows/{APP}/complaint/simulate", json=body, headers=people.desk.headers
    )
    assert not_designer.status_code == 403


async def test_a_rule_starts_the_flow_once(client: httpx.AsyncClient, people: People) -> None:
    rule = {
        "key": "open_work_order",
        "on": {"form": "complaint", "event": "created"},
        "then": [{"type": "start_flow", "flow": "complaint", "vars": {"channel": "phone"}}],
    }
    again = {**rule, "key": "again", "on": {"form": "complaint", "event": "updated"}}
    answer = await client.post("/api/apps/import", json=care_app(rule, again))
    assert answer.status_code in (200, 201), answer.text
    complaint = await _create(client, people.desk, "complaint", {"summary": "Cold room"})
    changed = await client.patch(
        f"/api/records/{APP}/complaint/{complaint}", json={"data": {"phone": "13900000000"}}
    )
    assert changed.status_code == 200, changed.text
    listed = await client.get("/api/flow-instances", params={"app": APP, "record_id": complaint})
    (instance,) = listed.json()["items"]
    assert instance["waiting_at"] == ["classify"]
    detail = (await client.get(f"/api/flow-instances/{instance['id']}")).json()
    assert detail["vars"] == {"channel": "phone"}
    (task,) = (await _inbox(client, people.boss))["items"]
    assert task["title"] == "Classify: Cold room"


async def test_a_start_flow_of_another_form_is_refused_at_import(client: httpx.AsyncClient) -> None:
    rule = {
        "key": "wrong",
        "on": {"form": "staff", "event": "created"},
        "then": [{"type": "start_flow", "flow": "complaint"}],
    }
    answer = await client.post("/api/apps/import", json=care_app(rule))
    assert answer.status_code == 422
    assert [e["path"] for e in answer.json()["errors"]] == ["/rules/0/then/0/flow"]


async def test_a_flow_exports_as_bpmn(installed: httpx.AsyncClient, people: People) -> None:
    client = installed
    answer = await client.get(f"/api/apps/{APP}/flows/complaint/bpmn")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/xml")
    assert "care-complaint.bpmn" in answer.headers["content-disposition"]
    assert answer.text.count("<bpmn:userTask") == 3
    assert "bpmndi:BPMNDiagram" in answer.text
    refused = await client.get(f"/api/apps/{APP}/flows/complaint/bpmn", headers=people.boss.headers)
    assert refused.status_code == 403
    missing = await client.get(f"/api/apps/{APP}/flows/nope/bpmn")
    assert missing.status_code == 404


async def test_changing_a_flow_keeps_running_instances_on_their_version(
    installed: httpx.AsyncClient, people: People
) -> None:
    client = installed
    complaint = await _create(client, people.desk, "complaint", {"summary": "Noise"})
    started = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": complaint},
        headers=people.desk.headers,
    )  # fmt: skip
    assert started.json()["app_version"] == 1
    changed = care_app()
    changed["version"] = "1.1.0"
    review = next(n for n in changed["flows"][0]["nodes"] if n["key"] == "review")
    review["title"] = "Second look: {{ record.summary }}"
    plan = await client.post("/api/apps/import", params={"dry_run": "true"}, json=changed)
    assert plan.status_code == 200, plan.text
    assert plan.json()["flows"]["changed"] == ["complaint"]
    assert plan.json()["running_flows"] == {"complaint": 1}
    applied = await client.post("/api/apps/import", json=changed)
    assert applied.status_code == 200, applied.text
    # the running instance finishes on version 1; a new one starts on version 2
    (task,) = (await _inbox(client, people.boss))["items"]
    await client.post(f"/api/tasks/{task['id']}/claim", headers=people.boss.headers)
    staff = await _create(client, people.boss, "staff", {"name": "N", "username": "nurse1"})
    await client.post(
        f"/api/tasks/{task['id']}/complete", json={"values": {"handler": staff}},
        headers=people.boss.headers,
    )  # fmt: skip
    (handle,) = (await _inbox(client, people.nurse))["items"]
    await client.post(
        f"/api/tasks/{handle['id']}/complete", json={"values": {"resolution": "Moved room"}},
        headers=people.nurse.headers,
    )  # fmt: skip
    (old_review,) = (await _inbox(client, people.boss))["items"]
    assert old_review["title"] == "Review: Noise"
    other = await _create(client, people.desk, "complaint", {"summary": "Food"})
    newer = await client.post(
        f"/api/flows/{APP}/complaint/start", json={"record_id": other},
        headers=people.desk.headers,
    )  # fmt: skip
    assert newer.json()["app_version"] == 2


async def test_simulating_a_stored_record_shows_only_what_the_caller_may_see(
    client: httpx.AsyncClient, people: People
) -> None:
    document = care_app()
    document["permissions"] = [
        {"form": "complaint", "roles": ["front_desk"], "actions": ["read", "create"],
         "hidden_fields": ["phone"]},
        {"form": "staff", "roles": ["front_desk"], "actions": ["read"]},
    ]  # fmt: skip
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    created = await client.post(
        f"/api/records/{APP}/complaint", json={"data": {"summary": "Wait", "phone": "13812345678"}}
    )
    assert created.status_code == 201, created.text
    complaint = created.json()["id"]
    simulated = await client.post(
        f"/api/flows/{APP}/complaint/simulate",
        json={"record_id": complaint, "default_outcome": True},
        headers=people.desk.headers,
    )
    assert simulated.status_code == 200, simulated.text
    body = simulated.json()
    assert body["record"]["summary"] == "Wait" and "phone" not in body["record"]
    assert "13812345678" not in simulated.text


INTAKE_FLOW: dict[str, Any] = {
    "key": "intake",
    "form": "complaint",
    "start": {"roles": ["front_desk"]},
    "vars": {"callback": {"var": "record.phone"}, "topic": {"var": "record.summary"}},
    "nodes": [
        {"type": "start", "key": "s"},
        {
            "type": "action",
            "key": "stamp",
            "actions": [
                {"type": "set", "values": {"phone": "10086", "status": "open"}},
                {
                    "type": "notify",
                    "channel": "in_app",
                    "recipients": [{"role": "manager"}],
                    "subject": "Call back",
                    "template": "Call {{ record.phone }}",
                },
            ],
        },  # fmt: skip
        {
            "type": "user_task",
            "key": "classify",
            "title": "Classify",
            "assignee": {"role": "manager"},
        },  # fmt: skip
        {"type": "end", "key": "e"},
    ],
    "edges": [
        {"from": "s", "to": "stamp"},
        {"from": "stamp", "to": "classify"},
        {"from": "classify", "to": "e"},
    ],  # fmt: skip
}


async def test_an_instance_shows_its_readers_none_of_the_records_hidden_values(
    client: httpx.AsyncClient, people: People
) -> None:
    """Variables computed from a hidden field, the values an action set, the texts it
    planned: an instance reader with the field hidden sees none of them; an admin sees all;
    variables handed in at the start only their starter (flows/visibility.py)."""
    document = care_app()
    document["flows"] = [COMPLAINT_FLOW, INTAKE_FLOW]
    document["permissions"] = [
        {"form": "complaint", "roles": ["front_desk"], "actions": ["read", "create"],
         "hidden_fields": ["phone"]},
        {"form": "complaint", "roles": ["handler"], "actions": ["read"],
         "hidden_fields": ["phone"]},
        {"form": "staff", "roles": ["front_desk"], "actions": ["read"]},
    ]  # fmt: skip
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    created = await client.post(
        f"/api/records/{APP}/complaint", json={"data": {"summary": "Wait", "phone": "13812345678"}}
    )
    assert created.status_code == 201, created.text
    started = await client.post(
        f"/api/flows/{APP}/intake/start",
        json={"record_id": created.json()["id"], "vars": {"note": "asked twice"}},
        headers=people.desk.headers,
    )
    assert started.status_code == 201, started.text
    instance = started.json()["id"]
    assert "13812345678" not in started.text and "10086" not in started.text

    seen = {}
    for who, headers in (("desk", people.desk.headers), ("handler", people.other.headers),
                         ("admin", {})):  # fmt: skip
        answer = await client.get(f"/api/flow-instances/{instance}", headers=headers)
        assert answer.status_code == 200, (who, answer.text)
        seen[who] = answer
    for who in ("desk", "handler"):
        assert "13812345678" not in seen[who].text and "10086" not in seen[who].text, who
        [stamped] = [e for e in seen[who].json()["timeline"] if e["kind"] == "record_set"]
        assert stamped["data"]["values"] == {"status": "open"}
    assert seen["desk"].json()["vars"] == {"topic": "Wait", "note": "asked twice"}
    assert seen["handler"].json()["vars"] == {"topic": "Wait"}
    admin = seen["admin"].json()
    assert admin["vars"] == {"callback": "13812345678", "topic": "Wait", "note": "asked twice"}
    assert "10086" in seen["admin"].text
