"""Rules reading related records and alerting staff by their user, on SQLite and PostgreSQL:
a visit created, and one updated, to pain 9 alerts exactly its treating doctor with the
patient's name; two hops; a dangling relation; what is loaded (one query per form and
hop); the import's refusals; the dry run showing related values, never hidden ones."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import event

from formloom.engines.rules.related import reads
from formloom.platform.apps.service import AppCatalog
from formloom.platform.auth.principal import Principal
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.records.access import sight_for
from formloom.platform.rules.related import load_related
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users

APP = "ward"
OTHER = "annex"

ALERT = {
    "type": "notify",
    "channel": "in_app",
    "recipients": [{"field": "doctor"}],
    "subject": {"en": "Pain {{ record.pain }}: {{ record.patient.name }}",
                "zh-CN": "疼痛 {{ record.pain }}：{{ record.patient.name }}"},
    "template": {"en": "{{ record.patient.name }}, GP {{ record.patient.gp.name }}",
                 "zh-CN": "患者 {{ record.patient.name }}，家庭医生 {{ record.patient.gp.name }}"},
}  # fmt: skip
PAIN = {"if": {">=": [{"var": "record.pain"}, 7]}, "then": [ALERT]}
RULES = [
    {"key": "pain_new", "on": {"form": "visit", "event": "created"}, **PAIN},
    {"key": "pain_changed", "on": {"form": "visit", "event": "updated", "fields": ["pain"]},
     **PAIN},
    {"key": "note_gp", "on": {"form": "visit", "event": "updated", "fields": ["note"]},
     "then": [{"type": "set", "values": {
         "summary": {"cat": [{"var": ["record.patient.name", "gone"]}, " / ",
                             {"var": ["record.patient.gp.name", "none"]}]}}}]},
]  # fmt: skip


def ward(*rules: dict[str, Any], key: str = APP) -> dict[str, Any]:
    return f.app(
        key,
        f.form(
            "staff",
            f.field("name", required=True),
            f.field("username"),
            f.field("phone", "phone"),
            user_field="username",
            title_field="name",
        ),
        f.form(
            "patient",
            f.field("name", required=True),
            f.field("allergies"),
            f.field("gp", "relation", target="staff"),
            title_field="name",
        ),
        f.form(
            "visit",
            f.field("patient", "relation", target="patient"),
            f.field("doctor", "relation", target="staff"),
            f.field("pain", "integer", min=0, max=10),
            f.field("note"),
            f.field("summary"),
        ),
        locales=["en", "zh-CN"],
        roles=[{"key": "doctor", "label": "Doctor"}, {"key": "nurse", "label": "Nurse"}],
        permissions=[
            {"form": "*", "roles": ["doctor"], "actions": ["create", "read", "update"]},
            {"form": "staff", "roles": ["nurse"], "actions": ["read"], "hidden_fields": ["phone"]},
            {
                "form": "patient",
                "roles": ["nurse"],
                "actions": ["read"],
                "hidden_fields": ["allergies"],
                "row_filter": {"!=": [{"var": "name"}, "VIP"]},
            },
        ],  # fmt: skip
        rules=list(rules),
    )


async def install(client: httpx.AsyncClient, *rules: dict[str, Any], key: str = APP) -> None:
    answer = await client.post("/api/apps/import", json=ward(*rules, key=key))
    assert answer.status_code in (200, 201), answer.text


async def create(
    client: httpx.AsyncClient, form: str, data: dict[str, Any], app: str = APP
) -> dict[str, Any]:
    answer = await client.post(f"/api/records/{app}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def patch(client: httpx.AsyncClient, form: str, record_id: str, data: dict[str, Any]) -> Any:
    answer = await client.patch(f"/api/records/{APP}/{form}/{record_id}", json={"data": data})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def inbox(client: httpx.AsyncClient, who: Any) -> list[tuple[str, str]]:
    answer = await client.get("/api/notifications", headers=who.headers)
    return [(n["subject"], n["body"]) for n in reversed(answer.json()["items"])]


async def people(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    li = await create(
        client, "staff", {"name": "Dr Li", "username": "dr_li", "phone": "+8613800138000"}
    )
    wu = await create(client, "staff", {"name": "Dr Wu", "username": "dr_wu"})
    ann = await create(client, "patient", {"name": "Ann", "allergies": "penicillin",
                                           "gp": wu["id"]})  # fmt: skip
    return {"li": li, "wu": wu, "ann": ann}


async def test_pain_nine_created_or_updated_alerts_exactly_the_treating_doctor(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    await install(client, *RULES)
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    wu = await users.create("dr_wu", roles={APP: ["doctor"]})
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    assert (
        await client.patch("/api/auth/me", json={"locale": "zh-CN"}, headers=li.headers)
    ).status_code == 200
    staff = await people(client)
    ann, doctor = staff["ann"]["id"], staff["li"]["id"]

    await create(client, "visit", {"patient": ann, "doctor": doctor, "pain": 9})
    calm = await create(client, "visit", {"patient": ann, "doctor": doctor, "pain": 2})
    await worker.run_once(clock.now())
    assert await inbox(client, li) == [("疼痛 9：Ann", "患者 Ann，家庭医生 Dr Wu")]

    # the nurse enters pain 9 by an update (the update rule; an update elsewhere: nothing)
    await patch(client, "visit", calm["id"], {"note": "resting"})
    await patch(client, "visit", calm["id"], {"pain": 9})
    await worker.run_once(clock.now())
    assert await inbox(client, li) == [("疼痛 9：Ann", "患者 Ann，家庭医生 Dr Wu")] * 2
    for other in (wu, nurse):  # not every doctor: the visit's
        assert await inbox(client, other) == []


async def test_in_english_for_a_user_who_reads_english(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    await install(client, *RULES)
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    staff = await people(client)
    await create(client, "visit", {"patient": staff["ann"]["id"], "doctor": staff["li"]["id"],
                                   "pain": 8})  # fmt: skip
    await worker.run_once(clock.now())
    assert await inbox(client, li) == [("Pain 8: Ann", "Ann, GP Dr Wu")]


async def test_two_hops_and_a_dangling_relation_in_values(client: httpx.AsyncClient) -> None:
    await install(client, *RULES)
    staff = await people(client)
    visit = await create(client, "visit", {"patient": staff["ann"]["id"], "pain": 1})
    done = await patch(client, "visit", visit["id"], {"note": "seen"})
    assert done["data"]["summary"] == "Ann / Dr Wu"
    # the patient's GP leaves, then the patient: each read is null, never an error
    gone = await client.delete(f"/api/records/{APP}/staff/{staff['wu']['id']}")
    assert gone.status_code == 204, gone.text
    assert (await patch(client, "visit", visit["id"], {"note": "again"}))["data"][
        "summary"
    ] == "Ann / none"
    gone = await client.delete(f"/api/records/{APP}/patient/{staff['ann']['id']}")
    assert gone.status_code == 204, gone.text
    assert (await patch(client, "visit", visit["id"], {"note": "later"}))["data"][
        "summary"
    ] == "gone / none"


async def test_a_doctor_without_a_user_or_a_dangling_doctor_alerts_no_one(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    await install(client, *RULES)
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    staff = await people(client)
    locum = await create(client, "staff", {"name": "Locum"})  # no user
    gone = await create(client, "staff", {"name": "Dr Gone", "username": "dr_li"})
    await create(client, "visit", {"patient": staff["ann"]["id"], "doctor": locum["id"],
                                   "pain": 9})  # fmt: skip
    later = await create(client, "visit", {"patient": staff["ann"]["id"], "doctor": gone["id"],
                                           "pain": 1})  # fmt: skip
    deleted = await client.delete(f"/api/records/{APP}/staff/{gone['id']}")
    assert deleted.status_code == 204, deleted.text
    await patch(client, "visit", later["id"], {"pain": 9})  # its doctor is dangling now
    report = await worker.run_once(clock.now())
    assert report.errors == [] and report.dead == 0
    assert await inbox(client, li) == []
    sent = (await client.get("/api/outbox", params={"app": APP})).json()["items"]
    assert [m["status"] for m in sent] == ["done", "done"]


async def test_only_what_the_rules_read_is_loaded_in_one_query_per_form_and_hop(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await install(client, *RULES)
    staff = await people(client)
    other = await create(client, "patient", {"name": "Bo"})
    catalog = AppCatalog()
    db = Database(settings.database_url)
    statements: list[str] = []

    def seen(*args: Any) -> None:
        statements.append(str(args[2]))

    try:
        async with db.transaction(write=False) as session:
            installed = await catalog.get(session, APP)
            [rule] = [r for r in installed.spec.rules if r.key == "pain_new"]
            hops = reads(rule, dict(installed.forms))
            event.listen(db.engine.sync_engine, "before_cursor_execute", seen)
            try:
                loaded = await load_related(
                    session, APP, installed.spec, hops,
                    {"patient": staff["ann"]["id"], "doctor": staff["li"]["id"]},
                )  # fmt: skip
                nothing = await load_related(
                    session, APP, installed.spec, hops, {"patient": other["id"]}
                )
            finally:
                event.remove(db.engine.sync_engine, "before_cursor_execute", seen)
    finally:
        await db.dispose()
    # hop 1: patient and staff (two forms), hop 2: staff; Bo has no GP and no doctor
    assert len(statements) == 3 + 1
    assert loaded == {
        "record/doctor": {"id": staff["li"]["id"], "form": "staff",
                          "data": {"id": staff["li"]["id"], "username": "dr_li"},
                          "user": "dr_li"},
        "record/patient": {"id": staff["ann"]["id"], "form": "patient",
                           "data": {"id": staff["ann"]["id"], "name": "Ann",
                                    "gp": staff["wu"]["id"]}},
        "record/patient/gp": {"id": staff["wu"]["id"], "form": "staff",
                              "data": {"id": staff["wu"]["id"], "name": "Dr Wu"},
                              "user": "dr_wu"},
    }  # fmt: skip
    assert nothing["record/doctor"] is None and nothing["record/patient/gp"] is None


async def test_the_import_refuses_bad_paths_and_recipients_with_pointers(
    client: httpx.AsyncClient,
) -> None:
    bad = [
        {"key": "typo", "on": {"form": "visit", "event": "created"},
         "if": {"==": [{"var": "record.patient.nmae"}, "x"]}, "then": [ALERT]},
        {"key": "deep", "on": {"form": "visit", "event": "created"},
         "then": [{**ALERT, "template": "{{ record.patient.gp.patient.x }}"}]},
        {"key": "not_staff", "on": {"form": "visit", "event": "created"},
         "then": [{**ALERT, "recipients": [{"field": "patient"}]}]},
        {"key": "not_relation", "on": {"form": "visit", "event": "created"},
         "then": [{"type": "create_task", "field": "note", "title": "t"}]},
    ]  # fmt: skip
    answer = await client.post("/api/apps/import", json=ward(*bad))
    assert answer.status_code == 422, answer.text
    errors = {(e["path"], e["code"]) for e in answer.json()["errors"]}
    assert {
        ("/rules/0/if", "unknown_field"),
        ("/rules/1/then/0/template", "unknown_field"),
        ("/rules/2/then/0/recipients/0/field", "not_staff"),
        ("/rules/3/then/0/field", "not_a_relation"),
    } <= errors, errors
    assert (await client.get(f"/api/apps/{APP}")).status_code == 404


async def test_the_dry_run_shows_related_values_and_tells_the_truth_about_triggers(
    client: httpx.AsyncClient,
) -> None:
    await install(client, *RULES)
    staff = await people(client)
    visit = {"patient": staff["ann"]["id"], "doctor": staff["li"]["id"], "pain": 9}
    answer = await client.post(f"/api/rules/{APP}/pain_new/test", json={"record": visit})
    assert answer.status_code == 200, answer.text
    plan = answer.json()
    [run] = plan["runs"]
    assert run["matched"] is True
    [alert] = run["actions"]
    assert alert["data"]["recipients"] == [{"field": "doctor", "user": "dr_li"}]
    related = alert["data"]["context"]["related"]
    assert related["record/patient"]["data"]["name"] == "Ann"
    assert related["record/patient/gp"]["data"]["name"] == "Dr Wu"
    assert plan["related"] == related and plan["related_hidden"] == []
    # an update to a rule that runs on create: it would not run, and it says so
    answer = await client.post(
        f"/api/rules/{APP}/pain_new/test", json={"record": visit, "event": "updated"}
    )
    [run] = answer.json()["runs"]
    assert run["matched"] is False and run["actions"] == []
    assert run["reason"] == "the rule runs when a visit record is created, not updated"
    answer = await client.post(
        f"/api/rules/{APP}/pain_changed/test",
        json={"record": visit, "old": {**visit, "pain": 2}, "event": "updated"},
    )
    assert answer.json()["runs"][0]["matched"] is True


async def test_the_dry_run_reads_no_other_app_s_or_form_s_records(
    client: httpx.AsyncClient, users: Users
) -> None:
    await install(client, *RULES)
    await install(client, *RULES, key=OTHER)
    secret = await create(client, "patient", {"name": "Other app's patient"}, app=OTHER)
    staff = await people(client)
    scoped = await users.create("ward_admin", admin=True, app=APP)
    for patient in (secret["id"], staff["li"]["id"]):  # another app's; a staff record
        answer = await client.post(
            f"/api/rules/{APP}/pain_new/test",
            json={"record": {"patient": patient, "pain": 9}},
            headers=scoped.headers,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["related"]["record/patient"] is None
        assert "Other app" not in answer.text and "Dr Li" not in answer.text
    doctor = await users.create("doc", roles={APP: ["doctor"]})
    refused = await client.post(
        f"/api/rules/{APP}/pain_new/test", json={"record": {}}, headers=doctor.headers
    )
    assert refused.status_code == 403


async def test_related_records_as_a_caller_sees_them_leave_out_hidden_fields_and_rows(
    client: httpx.AsyncClient, settings: Settings, clock: FixedClock
) -> None:
    """The dry run reads related records with its caller's grants: a reader whose role
    hides a field or a row gets neither (the endpoint is for admins, who see all; this
    is the same reading for a nurse)."""
    spy = {"key": "spy", "on": {"form": "visit", "event": "created"},
           "then": [{**ALERT, "template": "{{ record.patient.allergies }} "
                                          "{{ record.doctor.phone }}"}]}  # fmt: skip
    await install(client, spy)
    staff = await people(client)
    vip = await create(client, "patient", {"name": "VIP", "gp": staff["wu"]["id"]})
    nurse = Principal(username="nurse", roles={APP: frozenset({"nurse"})}, via="bearer")
    catalog = AppCatalog()
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            installed = await catalog.get(session, APP)
            hops = reads(installed.spec.rules[0], dict(installed.forms))
            sight = sight_for(nurse, installed, clock.now(), db.dialect)
            record = {"patient": staff["ann"]["id"], "doctor": staff["li"]["id"]}
            as_nurse = await load_related(session, APP, installed.spec, hops, record, sight)
            as_rule = await load_related(session, APP, installed.spec, hops, record)
            vip_seen = await load_related(
                session, APP, installed.spec, hops, {"patient": vip["id"]}, sight
            )
    finally:
        await db.dispose()
    assert as_rule["record/patient"]["data"]["allergies"] == "penicillin"
    assert as_rule["record/doctor"]["data"]["phone"] == "+8613800138000"
    assert "allergies" not in as_nurse["record/patient"]["data"]
    assert "phone" not in as_nurse["record/doctor"]["data"]
    assert "penicillin" not in str(as_nurse) and "+8613800138000" not in str(as_nurse)
    assert vip_seen["record/patient"] is None  # outside the nurse's rows


async def test_a_filter_through_a_relation_runs_in_sql(client: httpx.AsyncClient) -> None:
    """``record.patient.gp`` in an ``update_records`` filter is made a literal before the
    filter compiles to SQL: the patients of the visited patient's GP are updated."""
    same_gp = {
        "key": "same_gp",
        "on": {"form": "visit", "event": "created"},
        "then": [{"type": "update_records", "form": "patient",
                  "filter": {"==": [{"var": "gp"}, {"var": "record.patient.gp"}]},
                  "values": {"allergies": {"cat": ["GP of ", {"var": "record.patient.name"}]}}}],
    }  # fmt: skip
    await install(client, same_gp)
    staff = await people(client)
    bo = await create(client, "patient", {"name": "Bo", "gp": staff["wu"]["id"]})
    cy = await create(client, "patient", {"name": "Cy", "gp": staff["li"]["id"]})
    await create(client, "visit", {"patient": staff["ann"]["id"]})
    for patient, expected in ((staff["ann"], "GP of Ann"), (bo, "GP of Ann"), (cy, None)):
        stored = (await client.get(f"/api/records/{APP}/patient/{patient['id']}")).json()
        assert stored["data"].get("allergies") == expected


async def test_a_task_for_the_visit_s_doctor_lands_in_that_user_s_inbox(
    client: httpx.AsyncClient, users: Users
) -> None:
    see = {
        "key": "see",
        "on": {"form": "visit", "event": "created"},
        "then": [{"type": "create_task", "field": "doctor",
                  "title": {"en": "See {{ record.patient.name }}",
                            "zh-CN": "查看 {{ record.patient.name }}"}}],
    }  # fmt: skip
    await install(client, see)
    li = await users.create("dr_li", roles={APP: ["doctor"]})
    wu = await users.create("dr_wu", roles={APP: ["doctor"]})
    staff = await people(client)
    visit = await create(client, "visit", {"patient": staff["ann"]["id"],
                                           "doctor": staff["li"]["id"]})  # fmt: skip
    answer = await client.get("/api/tasks", params={"app": APP}, headers=li.headers)
    [task] = answer.json()["items"]
    assert (task["title"], task["assignee"], task["record_id"]) == ("See Ann", "dr_li", visit["id"])
    answer = await client.get("/api/tasks", params={"app": APP}, headers=wu.headers)
    assert answer.json()["items"] == []
