"""Flows reading related records, on SQLite and PostgreSQL: an action node alerts the
visit's doctor (a staff record's user) with the patient's name, started by hand and after a
timer; an exclusive gateway routes on the patient's tags; task titles name the patient;
``simulate`` of a stored record shows related values as its caller may see them, never a
hidden one; the import refuses a bad related path with its pointer."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import event

from formloom.platform.clock import FixedClock
from formloom.platform.rules.worker import Worker
from tests import factories as f
from tests.conftest import Users

APP = "ward"

TELL = {
    "type": "notify",
    "channel": "in_app",
    "recipients": [{"field": "doctor"}],
    "subject": {"en": "Follow up {{ record.patient.name }}",
                "zh-CN": "随访 {{ record.patient.name }}"},
    "template": "{{ record.patient.name }}: {{ record.patient.allergies }}",
}  # fmt: skip
FOLLOW_UP = {
    "key": "follow_up", "form": "visit", "start": {"roles": ["doctor", "nurse"]},
    "nodes": [{"type": "start", "key": "s"},
              {"type": "exclusive", "key": "route"},
              {"type": "user_task", "key": "vip_call", "assignee": {"role": "nurse"},
               "title": {"en": "Call {{ record.patient.name }} (VIP)",
                         "zh-CN": "致电 {{ record.patient.name }}（贵宾）"}},
              {"type": "action", "key": "tell", "actions": [TELL]},
              {"type": "user_task", "key": "call", "assignee": {"role": "nurse"},
               "title": "Call {{ record.patient.name }}"},
              {"type": "end", "key": "e"}],
    "edges": [{"from": "s", "to": "route"},
              {"from": "route", "to": "vip_call",
               "if": {"in": ["vip", {"var": "record.patient.tags"}]}},
              {"from": "route", "to": "tell", "default": True},
              {"from": "tell", "to": "call"},
              {"from": "vip_call", "to": "e"}, {"from": "call", "to": "e"}],
}  # fmt: skip
LATER = {
    "key": "later", "form": "visit", "start": {"roles": ["doctor"]},
    "nodes": [{"type": "start", "key": "s"},
              {"type": "timer", "key": "pause", "wait": {"after": "P1D"}},
              {"type": "action", "key": "tell", "actions": [TELL]},
              {"type": "end", "key": "e"}],
    "edges": [{"from": "s", "to": "pause"}, {"from": "pause", "to": "tell"},
              {"from": "tell", "to": "e"}],
}  # fmt: skip

ALLERGY = {
    "key": "allergy", "form": "visit", "start": {"roles": ["doctor", "nurse"]},
    "nodes": [{"type": "start", "key": "s"},
              {"type": "exclusive", "key": "check"},
              {"type": "user_task", "key": "warn", "assignee": {"role": "doctor"},
               "title": "Mind the allergy"},
              {"type": "user_task", "key": "call", "assignee": {"role": "nurse"},
               "title": "Call"},
              {"type": "end", "key": "e"}],
    "edges": [{"from": "s", "to": "check"},
              {"from": "check", "to": "warn",
               "if": {"==": [{"var": "record.patient.allergies"}, "penicillin"]}},
              {"from": "check", "to": "call", "default": True},
              {"from": "warn", "to": "e"}, {"from": "call", "to": "e"}],
}  # fmt: skip


def ward(*flows: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form("staff", f.field("name", required=True), f.field("username"),
               user_field="username", title_field="name"),
        f.form("patient", f.field("name", required=True), f.field("allergies"),
               f.field("tags", "multiselect",
                       options=[{"value": "vip"}, {"value": "chronic"}]),
               title_field="name"),
        f.form("visit", f.field("patient", "relation", target="patient"),
               f.field("doctor", "relation", target="staff"), f.field("note")),
        locales=["en", "zh-CN"],
        roles=[{"key": "doctor", "label": "Doctor"}, {"key": "nurse", "label": "Nurse"}],
        permissions=[
            {"form": "*", "roles": ["doctor"], "actions": ["create", "read", "update"]},
            {"form": "visit", "roles": ["nurse"], "actions": ["read"]},
            {"form": "staff", "roles": ["nurse"], "actions": ["read"]},
            {"form": "patient", "roles": ["nurse"], "actions": ["read"],
             "hidden_fields": ["allergies"]},
        ],
        flows=list(flows),
    )  # fmt: skip


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> str:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def setting(client: httpx.AsyncClient, *flows: dict[str, Any]) -> dict[str, str]:
    """The app installed, a doctor (dr_li), a patient Ann (allergic), a VIP patient Bo."""
    answer = await client.post("/api/apps/import", json=ward(*flows))
    assert answer.status_code in (200, 201), answer.text
    return {
        "li": await create(client, "staff", {"name": "Dr Li", "username": "dr_li"}),
        "ann": await create(client, "patient", {"name": "Ann", "allergies": "penicillin"}),
        "bo": await create(client, "patient", {"name": "Bo", "tags": ["vip"]}),
    }


async def start(client: httpx.AsyncClient, flow: str, record: str) -> str:
    answer = await client.post(f"/api/flows/{APP}/{flow}/start", json={"record_id": record})
    assert answer.status_code in (200, 201), answer.text
    return str(answer.json()["id"])


async def inbox(client: httpx.AsyncClient, who: Any) -> list[tuple[str, str]]:
    answer = await client.get("/api/notifications", headers=who.headers)
    assert answer.status_code == 200, answer.text
    return [(n["subject"], n["body"]) for n in reversed(answer.json()["items"])]


async def titles(client: httpx.AsyncClient, who: Any) -> list[str]:
    answer = await client.get("/api/tasks", headers=who.headers)
    assert answer.status_code == 200, answer.text
    return sorted(task["title"] for task in answer.json()["items"])


async def test_an_action_node_alerts_the_visits_doctor_with_the_patients_name(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    wu = await users.create("dr_wu", roles={APP: ["doctor"]})
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    ids = await setting(client, FOLLOW_UP)
    visit = await create(client, "visit", {"patient": ids["ann"], "doctor": ids["li"]})
    instance = await start(client, "follow_up", visit)
    await worker.run_once(clock.now())
    assert await inbox(client, li) == [("Follow up Ann", "Ann: penicillin")]
    assert await inbox(client, wu) == []  # the visit's doctor, not every doctor
    assert await titles(client, nurse) == ["Call Ann"]
    # the nurse reads the instance (its record is hers to read), but not Ann's allergies:
    # the timeline's planned actions leave the related records out
    answer = await client.get(f"/api/flow-instances/{instance}", headers=nurse.headers)
    assert answer.status_code == 200, answer.text
    [tell] = [e for e in answer.json()["timeline"] if e["kind"] == "actions_planned"]
    assert tell["data"]["actions"][0]["data"]["recipients"] == [
        {"field": "doctor", "user": "dr_li"}
    ]
    assert "penicillin" not in answer.text


async def test_an_exclusive_gateway_routes_on_the_patients_tags(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    ids = await setting(client, FOLLOW_UP)
    visit = await create(client, "visit", {"patient": ids["bo"], "doctor": ids["li"]})
    await start(client, "follow_up", visit)
    await worker.run_once(clock.now())
    assert await inbox(client, li) == []  # the VIP branch tells no one
    assert await titles(client, nurse) == ["Call Bo (VIP)"]


async def test_a_start_condition_reads_the_related_record(client: httpx.AsyncClient) -> None:
    vip = {"in": ["vip", {"var": "record.patient.tags"}]}
    only_vip = {**ALLERGY, "key": "vip_only", "start": {"roles": ["doctor"], "when": vip}}
    ids = await setting(client, ALLERGY, only_vip)
    ann = await create(client, "visit", {"patient": ids["ann"]})
    bo = await create(client, "visit", {"patient": ids["bo"]})
    answer = await client.post(f"/api/flows/{APP}/vip_only/start", json={"record_id": ann})
    assert answer.status_code == 409, answer.text
    await start(client, "vip_only", bo)


async def test_a_timer_fired_action_node_reads_the_related_records(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    ids = await setting(client, LATER)
    visit = await create(client, "visit", {"patient": ids["ann"], "doctor": ids["li"]})
    await start(client, "later", visit)
    await worker.run_once(clock.now())
    assert await inbox(client, li) == []
    report = await worker.run_once(clock.now() + timedelta(days=2))
    assert report.errors == []
    await worker.run_once(clock.now() + timedelta(days=2))
    assert await inbox(client, li) == [("Follow up Ann", "Ann: penicillin")]


async def test_a_batch_of_timers_loads_related_records_only_for_flows_that_read_them(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    quiet = {**LATER, "key": "quiet",
             "nodes": [*LATER["nodes"][:2],
                       {"type": "action", "key": "tell",
                        "actions": [{**TELL, "recipients": [{"role": "doctor"}],
                                     "subject": "Follow up", "template": "{{ record.note }}"}]},
                       LATER["nodes"][3]]}  # fmt: skip
    ids = await setting(client, LATER, quiet)
    for flow in ("later", "later", "quiet", "quiet", "quiet"):
        visit = await create(client, "visit", {"patient": ids["ann"], "doctor": ids["li"]})
        await start(client, flow, visit)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(" ".join(str(args[2]).split()))

    event.listen(worker.db.engine.sync_engine, "before_cursor_execute", seen)
    try:
        report = await worker.fire_timers(clock.now() + timedelta(days=2))
    finally:
        event.remove(worker.db.engine.sync_engine, "before_cursor_execute", seen)
    assert report.errors == []
    # the related records' loads: per 'later' instance one query per form (patient, staff);
    # none for the 'quiet' ones
    loads = [s for s in statements if s.startswith("SELECT records.id, records.data FROM")]
    assert len(loads) == 2 * 2, loads


async def test_simulate_of_a_stored_record_is_the_real_run(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    ids = await setting(client, FOLLOW_UP)
    for patient in ("ann", "bo"):  # the gateway's two ways
        visit = await create(client, "visit", {"patient": ids[patient], "doctor": ids["li"]})
        answer = await client.post(
            f"/api/flows/{APP}/follow_up/simulate", json={"record_id": visit}
        )
        assert answer.status_code == 200, answer.text
        simulated = [(e["kind"], e.get("node")) for e in answer.json()["timeline"]]
        instance = await start(client, "follow_up", visit)
        detail = (await client.get(f"/api/flow-instances/{instance}")).json()
        real = [(e["kind"], e.get("node")) for e in detail["timeline"] if e["kind"] != "started"]
        assert real == simulated
        assert ("task_opened", "vip_call" if patient == "bo" else "call") in real


async def test_simulate_shows_related_values_but_never_a_hidden_one(
    client: httpx.AsyncClient, users: Users
) -> None:
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    ids = await setting(client, FOLLOW_UP, ALLERGY)
    visit = await create(client, "visit", {"patient": ids["ann"], "doctor": ids["li"]})

    async def simulated(flow: str, who: Any = None) -> dict[str, Any]:
        answer = await client.post(
            f"/api/flows/{APP}/{flow}/simulate", json={"record_id": visit},
            headers=who.headers if who is not None else {},
        )  # fmt: skip
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    for who in (None, nurse):  # the doctor's user is no secret to either
        [tell] = [e for e in (await simulated("follow_up", who))["timeline"]
                  if e["kind"] == "actions_planned"]  # fmt: skip
        assert tell["actions"][0]["data"]["recipients"] == [{"field": "doctor", "user": "dr_li"}]
    # the allergy routes the admin's simulation; the nurse's reads it as not known
    admin = await simulated("allergy")
    assert [task["node"] for task in admin["open_tasks"]] == ["warn"]
    seen = await simulated("allergy", nurse)
    assert [task["node"] for task in seen["open_tasks"]] == ["call"]
    assert "penicillin" not in json.dumps(seen)


async def test_the_import_refuses_a_bad_related_path_with_its_pointer(
    client: httpx.AsyncClient,
) -> None:
    bad = json.loads(json.dumps(FOLLOW_UP))
    bad["edges"][1]["if"] = {"in": ["vip", {"var": "record.patient.labels"}]}
    bad["nodes"][4]["title"] = "Call {{ record.patient.nmae }}"
    answer = await client.post("/api/apps/import", json=ward(bad))
    assert answer.status_code == 422, answer.text
    errors = {(e["path"], e["code"]) for e in answer.json()["errors"]}
    assert {
        ("/flows/0/edges/1/if", "unknown_field"),
        ("/flows/0/nodes/4/title", "unknown_field"),
    } <= errors, errors
    assert (await client.get(f"/api/apps/{APP}")).status_code == 404
