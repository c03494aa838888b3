"""``GET /api/records/{app}/{form}/{id}/related``: a record with what points at it (one and
two hops), its tasks, flows and messages, and one timeline — each as far as the caller may
see, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users

APP = "care"
BASE = f"/api/records/{APP}"


def definition() -> dict[str, Any]:
    relation = {"type": "relation", "indexed": True}
    return f.app(
        APP,
        f.form("patient", f.field("name", required=True), f.field("phone"), title_field="name"),
        f.form(
            "visit",
            f.field("patient", target="patient", **relation),
            f.field("seen_at", "datetime"),
            f.field("department", "select", options=[{"value": "a"}, {"value": "b"}]),
            f.field("diagnosis"),
            title_field="seen_at",
        ),
        f.form(
            "survey",
            f.field("visit", target="visit", **relation),
            f.field("score", "integer"),
            f.field("comment"),
        ),
        f.form(
            "complaint",
            f.field("patient", target="patient", **relation),
            f.field("category"),
            f.field("filed_on", "date"),
            f.field("note"),
            sensitive=True,
        ),
        roles=[{"key": k, "label": k} for k in ("doctor", "desk", "nurse")],
        permissions=[
            {"form": "patient", "roles": ["doctor", "desk", "nurse"], "actions": ["read"]},
            {
                "form": "visit",
                "roles": ["doctor"],
                "actions": ["read"],
                "row_filter": {"==": [{"var": "department"}, {"var": "$user.department"}]},
            },
            {
                "form": "visit",
                "roles": ["desk"],
                "actions": ["read"],
                "hidden_fields": ["diagnosis"],
            },
            {"form": "survey", "roles": ["doctor", "nurse"], "actions": ["read"]},
            {
                "form": "survey",
                "roles": ["desk"],
                "actions": ["read"],
                "hidden_fields": ["comment"],
            },
            {"form": "complaint", "roles": ["doctor"], "actions": ["read"]},
        ],
        flows=[
            {
                "key": "intake",
                "label": {"en": "Intake", "zh-CN": "接诊"},
                "form": "patient",
                "start": {"roles": ["doctor"]},
                "nodes": [
                    {"type": "start", "key": "begin"},
                    {
                        "type": "user_task",
                        "key": "review",
                        "title": "Review {{ record.name }}",
                        "assignee": {"role": "doctor"},
                    },
                    {"type": "end", "key": "done"},
                ],
                "edges": [{"from": "begin", "to": "review"}, {"from": "review", "to": "done"}],
            }
        ],
        rules=[
            {
                "key": "welcome",
                "label": {"en": "Welcome text", "zh-CN": "欢迎短信"},
                "on": {"form": "patient", "event": "created"},
                "then": [
                    {"type": "create_task", "role": "doctor", "title": "Call {{ record.name }}"},
                    {
                        "type": "notify",
                        "channel": "in_app",
                        "recipients": [{"role": "doctor"}],
                        "template": "Welcome {{ record.name }}",
                    },
                ],
            }
        ],
    )


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


async def make(client: httpx.AsyncClient, form: str, **data: Any) -> str:
    response = await client.post(f"{BASE}/{form}", json={"data": data})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
async def clinic(client: httpx.AsyncClient, clock: FixedClock) -> dict[str, Any]:
    response = await client.post("/api/apps/import", json=definition())
    assert response.status_code == 201, response.text
    ann = await make(client, "patient", name="Ann", phone="555")
    bob = await make(client, "patient", name="Bob")
    visits = []
    for day, department in ((1, "a"), (3, "b"), (2, "a")):
        clock.advance(minutes=1)
        visits.append(
            await make(
                client, "visit", patient=ann, department=department,
                seen_at=f"2026-12-0{day}T02:00:00Z", diagnosis=f"flu {day}",
            )
        )  # fmt: skip
    other_visit = await make(client, "visit", patient=bob, department="a", diagnosis="cold")
    surveys = [
        await make(client, "survey", visit=visits[0], score=9, comment="kind staff"),
        await make(client, "survey", visit=visits[1], score=3, comment="long wait"),
    ]
    await make(client, "survey", visit=other_visit, score=1, comment="not Ann's")
    complaint = await make(
        client, "complaint", patient=ann, category="billing", filed_on="2026-12-05",
        note="overcharged",
    )  # fmt: skip
    return {"ann": ann, "bob": bob, "visits": visits, "surveys": surveys, "complaint": complaint}


def group(body: dict[str, Any], *forms: str) -> dict[str, Any]:
    [found] = [g for g in body["groups"] if tuple(s["form"] for s in g["path"]) == forms]
    return found


def ids(items: list[dict[str, Any]]) -> list[str]:
    return [item["record"]["id"] for item in items]


async def test_groups_two_hops_timeline_tasks_and_messages(
    client: httpx.AsyncClient, clinic: dict[str, Any]
) -> None:
    response = await client.get(f"{BASE}/patient/{clinic['ann']}/related", params={"lang": "zh-CN"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["record"]["data"] == {"name": "Ann", "phone": "555"}
    assert body["title"] == "Ann" and body["zone"] == "Asia/Shanghai" and body["left_out"] == 0
    visits = group(body, "visit")
    # newest first by the visit's own datetime, not by when it was entered
    v = clinic["visits"]
    assert ids(visits["items"]) == [v[1], v[2], v[0]] and visits["count"] == 3
    # a datetime title in the clinic's zone
    assert visits["items"][0]["title"] == "2026-12-03 10:00"
    assert visits["items"][0]["summary"] == "Department: b · Diagnosis: flu 3"
    assert visits["list_filter"] == {"==": [{"var": "patient"}, clinic["ann"]]}
    surveys = group(body, "visit", "survey")
    assert sorted(ids(surveys["items"])) == sorted(clinic["surveys"]) and surveys["count"] == 2
    assert surveys["list_filter"] == {"in": [{"var": "visit"}, sorted(v)]}
    listed = await client.get(surveys["list_href"])
    assert sorted(i["id"] for i in listed.json()["items"]) == sorted(clinic["surveys"])
    complaints = group(body, "complaint")
    assert ids(complaints["items"]) == [clinic["complaint"]]
    [task] = body["tasks"]
    assert task["title"] == "Call Ann" and task["status"] == "open"
    [message] = body["messages"]
    assert message["rule_label"] == "欢迎短信" and message["channel"] == "in_app"
    timeline = body["timeline"]
    kinds = [(e["kind"], e["form"]) for e in timeline]
    assert kinds.count(("record", "survey")) == 2 and ("task", None) in kinds
    assert ("message", None) in kinds and kinds[0] == ("record", "complaint")  # 2026-12-05
    times = [e["at"] for e in timeline if e["form"] == "visit"]
    assert times == ["2026-12-03T02:00:00Z", "2026-12-02T02:00:00Z", "2026-12-01T02:00:00Z"]
    # Bob's survey hangs off Bob's visit: not Ann's
    assert "not Ann's" not in response.text
    entry = next(e for e in timeline if e["form"] == "complaint")
    assert entry["href"] == f"/apps/{APP}/forms/complaint/{clinic['complaint']}"


async def test_groups_are_capped_with_the_full_count(
    client: httpx.AsyncClient, clinic: dict[str, Any]
) -> None:
    body = (await client.get(f"{BASE}/patient/{clinic['ann']}/related?limit=2")).json()
    visits = group(body, "visit")
    assert len(visits["items"]) == 2 and visits["count"] == 3
    assert ids(visits["items"]) == [clinic["visits"][1], clinic["visits"][2]]
    # two hops: counted through the subquery, not the capped middle group
    one = (await client.get(f"{BASE}/patient/{clinic['ann']}/related?limit=1")).json()
    surveys = group(one, "visit", "survey")
    assert len(surveys["items"]) == 1 and surveys["count"] == 2
    assert len(surveys["list_filter"]["in"][1]) == 3  # every visit, not the one shown
    for bad in ("0", "101", "x"):
        answer = await client.get(f"{BASE}/patient/{clinic['ann']}/related?limit={bad}")
        assert answer.status_code == 422 and "limit" in answer.text, answer.text


async def test_a_hidden_field_is_in_no_group_and_no_summary(
    client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    desk = await users.create("desk", roles={APP: ["desk"]})
    response = await client.get(f"{BASE}/patient/{clinic['ann']}/related", headers=desk.headers)
    assert response.status_code == 200, response.text
    for secret in ("flu", "kind staff", "long wait", "diagnosis", "comment", "Call Ann"):
        assert secret not in response.text, secret
    body = response.json()
    assert group(body, "visit")["count"] == 3
    assert all("diagnosis" not in i["record"]["data"] for i in group(body, "visit")["items"])
    assert group(body, "visit", "survey")["count"] == 2
    # complaints are not theirs to read: left out, counted, not named
    assert not [g for g in body["groups"] if g["form"] == "complaint"]
    assert body["left_out"] == 1 and "complaint" not in response.text
    # the desk is no candidate for the doctor's task, nor reads any message text
    assert body["tasks"] == [] and "Welcome Ann" not in response.text
    assert [m["rule_label"] for m in body["messages"]] == ["Welcome text"]


async def test_a_row_rule_on_visits_limits_visits_and_the_surveys_through_them(
    client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    doctor = await users.create("dr_a", roles={APP: ["doctor"]}, attributes={"department": "a"})
    response = await client.get(f"{BASE}/patient/{clinic['ann']}/related", headers=doctor.headers)
    body = response.json()
    v = clinic["visits"]
    assert ids(group(body, "visit")["items"]) == [v[2], v[0]] and group(body, "visit")["count"] == 2
    surveys = group(body, "visit", "survey")
    assert ids(surveys["items"]) == [clinic["surveys"][0]] and surveys["count"] == 1
    assert "long wait" not in response.text and "flu 3" not in response.text
    assert [t["title"] for t in body["tasks"]] == ["Call Ann"]


async def test_a_form_the_role_cannot_read_is_left_out(
    client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    response = await client.get(f"{BASE}/patient/{clinic['ann']}/related", headers=nurse.headers)
    body = response.json()
    # no visits, and so no surveys through them (the link would tell which visit)
    assert body["groups"] == [] and body["left_out"] == 3
    assert [e["kind"] for e in body["timeline"]] == ["message"]


async def test_refusals(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    assert (await anon_client.get(f"{BASE}/patient/{clinic['ann']}/related")).status_code == 401
    doctor = await users.create("dr_b", roles={APP: ["doctor"]}, attributes={"department": "b"})
    a_visit = clinic["visits"][0]  # department a
    hidden = await client.get(f"{BASE}/visit/{a_visit}/related", headers=doctor.headers)
    assert hidden.status_code == 404
    assert (await client.get(f"{BASE}/visit/{a_visit}/related")).status_code == 200
    for bad in ("nope", "0" * 40, "%00", clinic["ann"] + "x"):
        answer = await client.get(f"{BASE}/patient/{bad}/related")
        assert answer.status_code == 404, (bad, answer.text)
    assert (await client.get(f"{BASE}/nope/{clinic['ann']}/related")).status_code == 404
    assert (await client.get(f"/api/records/nope/patient/{clinic['ann']}/related")).status_code in (
        403,
        404,
    )
    # a visit is not a patient
    assert (await client.get(f"{BASE}/patient/{a_visit}/related")).status_code == 404
    nurse = await users.create("nurse2", roles={APP: ["nurse"]})
    refused = await client.get(f"{BASE}/visit/{a_visit}/related", headers=nurse.headers)
    assert refused.status_code == 403


async def test_in_openapi(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"]["/api/records/{app}/{form}/{record_id}/related"]["get"]
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/RelatedOut")


async def test_the_record_page_shows_the_timeline_on_the_clinic_clock(
    client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    page = await client.get(f"/apps/{APP}/forms/patient/{clinic['ann']}?lang=zh-CN")
    assert page.status_code == 200, page.text
    html = page.text
    assert 'data-testid="timeline"' in html and "时间线" in html
    assert "时间均为 Asia/Shanghai 时区" in html
    # the visit of 2026-12-03T02:00Z is 10:00 in Shanghai; the survey group via the visit
    assert '<time datetime="2026-12-03T02:00:00Z">2026-12-03 10:00</time>' in html
    assert 'data-testid="related-survey-via-visit"' in html
    assert html.count('data-testid="timeline-entry"') == 8  # 3 visits, 2 surveys, 1 complaint,
    # the task and the message
    desk = await users.create("desk_page", roles={APP: ["desk"]})
    seen = await client.get(f"/apps/{APP}/forms/patient/{clinic['ann']}", headers=desk.headers)
    assert seen.status_code == 200
    for secret in ("flu", "kind staff", "long wait", "overcharged", "Call Ann"):
        assert secret not in seen.text, secret
    assert 'data-testid="left-out"' in seen.text


async def test_flows_and_their_tasks_on_the_record(
    client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    started = await client.post(f"/api/flows/{APP}/intake/start", json={"record_id": clinic["ann"]})
    assert started.status_code in (200, 201), started.text
    doctor = await users.create("dr_flow", roles={APP: ["doctor"]}, attributes={"department": "a"})
    desk = await users.create("desk_flow", roles={APP: ["desk"]})
    url = f"{BASE}/patient/{clinic['ann']}/related"
    body = (await client.get(url, params={"lang": "zh-CN"}, headers=doctor.headers)).json()
    [flow] = body["flows"]
    assert (flow["flow"], flow["label"], flow["status"]) == ("intake", "接诊", "running")
    chinese = {**doctor.headers, "Accept-Language": "zh-CN,zh;q=0.9"}
    assert (await client.get(url, headers=chinese)).json()["flows"][0]["label"] == "接诊"
    assert (await client.get(url, headers=doctor.headers)).json()["flows"][0]["label"] == "Intake"
    assert sorted(t["title"] for t in body["tasks"]) == ["Call Ann", "Review Ann"]
    assert {"flow", "task"} <= {e["kind"] for e in body["timeline"]}
    # the desk reads the patient, so sees the flow run on it, but is no candidate of its task
    seen = (await client.get(url, headers=desk.headers)).json()
    assert [f["flow"] for f in seen["flows"]] == ["intake"] and seen["tasks"] == []
    # Bob has no flow
    bob = (await client.get(f"{BASE}/patient/{clinic['bob']}/related")).json()
    assert bob["flows"] == [] and bob["tasks"] != []


async def test_reading_a_sensitive_related_form_is_audited(
    client: httpx.AsyncClient, clinic: dict[str, Any], users: Users
) -> None:
    doctor = await users.create("dr_audit", roles={APP: ["doctor"]}, attributes={"department": "a"})
    answer = await client.get(f"{BASE}/patient/{clinic['ann']}/related", headers=doctor.headers)
    assert answer.status_code == 200
    log = await client.get("/api/audit", params={"action": "record.read", "actor": "dr_audit"})
    assert log.status_code == 200, log.text
    reads = [e for e in log.json()["items"] if e["form"] == "complaint"]
    assert [e["detail"]["ids"] for e in reads] == [[clinic["complaint"]]]
