"""Rules carried out on record writes, by the worker, and through the API — on SQLite and
PostgreSQL, with a controlled clock and real local servers for outbound delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import func, select

from formloom.platform.apps.service import AppCatalog
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models.automation import OutboxMessage, RuleRunLog, Task, Timer
from formloom.platform.rules.automation import outbox_action
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users, running_worker
from tests.servers import http_sink, smtp_sink

APP = "ward"
ZONE = ZoneInfo("Asia/Shanghai")


def ward(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("name", required=True),
            f.field("phone", "phone"),
            f.field(
                "tags",
                "multiselect",
                options=[
                    {"value": "hypertension", "label": "Hypertension"},
                    {"value": "diabetes", "label": "Diabetes"},
                ],
            ),  # fmt: skip
            f.field(
                "status",
                "select",
                options=[
                    {"value": "admitted", "label": "Admitted"},
                    {"value": "discharged", "label": "Discharged"},
                ],
            ),  # fmt: skip
            f.field("discharged_at", "datetime"),
            f.field("birth_date", "date"),
            f.field("last_visit", "date"),
            title_field="name",
        ),
        f.form(
            "visit",
            f.field("patient", "relation", target="patient"),
            f.field("pain", "integer", min=0, max=10),
            f.field("flag"),
        ),
        f.form(
            "appointment",
            f.field("doctor", required=True),
            f.field("starts_at", "datetime", required=True),
            f.field("ends_at", "datetime", required=True),
        ),
        f.form("echo", f.field("note")),
        locales=["en", "zh-CN"],
        roles=[{"key": "doctor", "label": "Doctor"}, {"key": "front_desk", "label": "Desk"}],
        rules=list(rules),
    )


PAIN_ALERT = {
    "key": "pain_alert",
    "on": {"form": "visit", "event": "created"},
    "if": {">=": [{"var": "record.pain"}, 7]},
    "then": [
        {"type": "set", "values": {"flag": "urgent"}},
        {
            "type": "notify",
            "channel": "in_app",
            "recipients": [{"role": "doctor"}],
            "subject": {"en": "Pain alert", "zh-CN": "疼痛提醒"},
            "template": {
                "en": "Pain {{ record.pain }}/10",
                "zh-CN": "疼痛评分 {{ record.pain }}/10",
            },
        },
    ],
}
LAST_VISIT = {
    "key": "last_visit",
    "on": {"form": "visit", "event": "created"},
    "then": [
        {
            "type": "update_records",
            "form": "patient",
            "filter": {"==": [{"var": "id"}, {"var": "record.patient"}]},
            "values": {"last_visit": {"today": []}},
        }
    ],
}
OVERLAP = {
    "key": "no_double_booking",
    "on": {"form": "appointment", "event": "created"},
    "then": [
        {
            "type": "reject",
            "field": "starts_at",
            "message": {"en": "Dr {{}} is booked then", "zh-CN": "该医生此时已有预约"},
            "exists": {
                "form": "appointment",
                "filter": {
                    "and": [
                        {"==": [{"var": "doctor"}, {"var": "record.doctor"}]},
                        {"<": [{"var": "starts_at"}, {"var": "record.ends_at"}]},
                        {">": [{"var": "ends_at"}, {"var": "record.starts_at"}]},
                    ]
                },
            },
        }
    ],
}
OVERLAP["then"][0]["message"] = {"en": "The doctor is booked then", "zh-CN": "该医生此时已有预约"}


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    changes = {"outbox_backoff_seconds": 60, "outbox_max_attempts": 3}
    async with running_worker(settings, **changes) as running:
        yield running


async def install(client: httpx.AsyncClient, *rules: dict[str, Any]) -> None:
    answer = await client.post("/api/apps/import", json=ward(*rules))
    assert answer.status_code in (200, 201), answer.text


async def count(settings: Settings, model: Any, *where: Any) -> int:
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return int(
                (
                    await session.execute(select(func.count()).select_from(model).where(*where))
                ).scalar_one()
            )
    finally:
        await db.dispose()


async def rows(settings: Settings, model: Any, *where: Any) -> list[Any]:
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return list((await session.execute(select(model).where(*where))).scalars())
    finally:
        await db.dispose()


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def dues(client: httpx.AsyncClient, record_id: str) -> dict[str, str]:
    answer = await client.get("/api/timers", params={"record_id": record_id})
    return {timer["rule"]: timer["due_at"] for timer in answer.json()["items"]}


# -- in the write's transaction ----------------------------------------------------------


async def test_set_and_notify_run_with_the_write_and_are_logged(
    client: httpx.AsyncClient, users: Users, settings: Settings, worker: Worker,
    clock: FixedClock,
) -> None:  # fmt: skip
    await install(client, PAIN_ALERT)
    doctor = await users.create("dr_li", roles={APP: ["doctor"]})
    desk = await users.create("desk", roles={APP: ["front_desk"]})
    assert (await client.patch("/api/auth/me", json={"locale": "zh-CN"},
                               headers=doctor.headers)).status_code == 200  # fmt: skip
    calm = await create(client, "visit", {"pain": 2})
    hurt = await create(client, "visit", {"pain": 8})
    assert calm["data"].get("flag") is None
    assert hurt["data"]["flag"] == "urgent"  # the set action, stored with the record
    history = (await client.get(f"/api/records/{APP}/visit/{hurt['id']}/history")).json()
    assert [(h["version"], h["data"]["flag"]) for h in history] == [(1, "urgent")]

    log = (await client.get(f"/api/rules/{APP}/log")).json()["items"]
    by_record = {item["record_id"]: item for item in log}
    assert by_record[hurt["id"]]["matched"] is True
    assert [a["type"] for a in by_record[hurt["id"]]["actions"]] == ["set", "notify"]
    assert by_record[calm["id"]]["matched"] is False
    assert by_record[calm["id"]]["reason"] == "condition is false"

    pending = (await client.get("/api/outbox", params={"app": APP})).json()["items"]
    assert [(m["status"], m["channel"]) for m in pending] == [("pending", "in_app")]
    report = await worker.run_once(clock.now())
    assert report.delivered == 1 and report.dead == 0
    inbox = (await client.get("/api/notifications", headers=doctor.headers)).json()["items"]
    assert [(n["subject"], n["body"]) for n in inbox] == [("疼痛提醒", "疼痛评分 8/10")]
    assert inbox[0]["record_id"] == hurt["id"]
    assert (await client.get("/api/notifications", headers=desk.headers)).json()["items"] == []
    read = await client.post(f"/api/notifications/{inbox[0]['id']}/read", headers=doctor.headers)
    assert read.status_code == 204
    assert (await client.get("/api/notifications", params={"unread": True},
                             headers=doctor.headers)).json()["items"] == []  # fmt: skip
    # delivered once: a second run has nothing to do
    assert (await worker.run_once(clock.now())).delivered == 0


async def test_update_records_reaches_the_related_record(
    client: httpx.AsyncClient, clock: FixedClock
) -> None:
    await install(client, LAST_VISIT)
    patient = await create(client, "patient", {"name": "Wang"})
    await create(client, "visit", {"patient": patient["id"], "pain": 1})
    stored = (await client.get(f"/api/records/{APP}/patient/{patient['id']}")).json()
    assert stored["data"]["last_visit"] == clock.now().date().isoformat()
    assert stored["updated_by"] == "rule:last_visit"
    assert stored["version"] == 2


async def test_a_reject_with_exists_refuses_overlaps_at_the_field_and_writes_nothing(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await install(client, OVERLAP)
    first = {"doctor": "li", "starts_at": "2026-12-01T01:00:00Z", "ends_at": "2026-12-01T01:30:00Z"}
    await create(client, "appointment", first)
    clash = dict(first, starts_at="2026-12-01T01:15:00Z", ends_at="2026-12-01T01:45:00Z")
    answer = await client.post(f"/api/records/{APP}/appointment", json={"data": clash})
    assert answer.status_code == 422
    body = answer.json()
    [error] = body["errors"]
    assert error["path"] == "/starts_at" and error["code"] == "rejected"
    assert error["rule"] == "no_double_booking"
    assert error["message"] == "The doctor is booked then"
    assert error["messages"]["zh-CN"] == "该医生此时已有预约"
    # next to it, and another doctor at the same time, are fine
    await create(client, "appointment", dict(first, starts_at="2026-12-01T01:30:00Z",
                                             ends_at="2026-12-01T02:00:00Z"))  # fmt: skip
    await create(client, "appointment", dict(clash, doctor="wu"))
    listed = (await client.get(f"/api/records/{APP}/appointment")).json()["items"]
    assert len(listed) == 3
    # the refused write's log went with it: three runs, all matched (the query decided)
    assert await count(settings, RuleRunLog, RuleRunLog.matched == ",no_double_booking,") == 3


async def test_an_unconditional_reject_rolls_back_everything(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    no_empty = {
        "key": "needs_phone",
        "on": {"form": "patient", "event": "created"},
        "if": {"missing": ["record.phone"]},
        "then": [{"type": "reject", "field": "phone", "message": "A phone number is needed"}],
    }
    audit_note = {
        "key": "note",
        "priority": 5,
        "on": {"form": "patient", "event": "created"},
        "then": [{"type": "create_record", "form": "echo", "values": {"note": "seen"}}],
    }
    await install(client, no_empty, audit_note)
    answer = await client.post(f"/api/records/{APP}/patient", json={"data": {"name": "Zhao"}})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["path"] == "/phone"
    assert (await client.get(f"/api/records/{APP}/echo")).json()["items"] == []
    assert (await client.get(f"/api/records/{APP}/patient")).json()["items"] == []
    assert await count(settings, RuleRunLog) == 0  # the log is part of the rolled-back write
    await create(client, "patient", {"name": "Zhao", "phone": "+8613800000000"})
    [echo] = (await client.get(f"/api/records/{APP}/echo")).json()["items"]
    assert echo["created_by"] == "rule:note"


async def test_a_rule_loop_is_stopped_with_its_chain_and_nothing_is_saved(
    client: httpx.AsyncClient,
) -> None:
    ping = {
        "key": "ping",
        "on": {"form": "echo", "event": "created"},
        "then": [{"type": "create_record", "form": "visit", "values": {"flag": "ping"}}],
    }
    pong = {
        "key": "pong",
        "on": {"form": "visit", "event": "created"},
        "then": [{"type": "create_record", "form": "echo", "values": {"note": "pong"}}],
    }
    await install(client, ping, pong)
    answer = await client.post(f"/api/records/{APP}/echo", json={"data": {"note": "start"}})
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert "rule cascade deeper than 8" in problem["detail"]
    assert "the loop is" in problem["detail"] and "ping" in problem["detail"]
    assert len(problem["errors"][0]["chain"]) == 9
    assert (await client.get(f"/api/records/{APP}/echo")).json()["items"] == []
    assert (await client.get(f"/api/records/{APP}/visit")).json()["items"] == []


async def test_create_task_is_stored_for_the_role(client: httpx.AsyncClient, users: Users) -> None:
    rule = {
        "key": "review",
        "on": {"form": "visit", "event": "created"},
        "then": [
            {
                "type": "create_task",
                "role": "doctor",
                "title": {"en": "Review pain {{ record.pain }}", "zh-CN": "复核 {{ record.pain }}"},
                "due": "P2D",
            }
        ],
    }
    await install(client, rule)
    doctor = await users.create("dr_wu", roles={APP: ["doctor"]})
    desk = await users.create("desk2", roles={APP: ["front_desk"]})
    visit = await create(client, "visit", {"pain": 5})
    [task] = (await client.get("/api/tasks", params={"app": APP}, headers=doctor.headers)).json()[
        "items"
    ]
    assert task["title"] == "Review pain 5" and task["role"] == "doctor"
    assert task["record_id"] == visit["id"] and task["status"] == "open"
    assert task["due"] == "2026-11-25T02:30:00Z"
    assert (await client.get("/api/tasks", params={"app": APP}, headers=desk.headers)).json()[
        "items"
    ] == []


# -- the outbox: retries, backoff, dead letters ------------------------------------------


async def test_a_webhook_is_retried_with_backoff_then_delivered(
    client: httpx.AsyncClient, settings: Settings, worker: Worker, clock: FixedClock
) -> None:
    with http_sink() as sink:
        hook = {
            "key": "tell_his",
            "on": {"form": "patient", "event": "created"},
            "then": [
                {
                    "type": "webhook",
                    "method": "POST",
                    "url": f"{sink.url}/patients",
                    "headers": {"X-Clinic": "{{ record.name }}"},
                    "body": {"name": "{{ record.name }}", "id": "{{ record.id }}", "n": 1},
                }
            ],
        }
        await install(client, hook)
        patient = await create(client, "patient", {"name": "Sun"})
        sink.fail_next(1, 503)
        first = await worker.run_once(clock.now())
        assert (first.delivered, first.retrying) == (0, 1)
        [message] = (await client.get("/api/outbox", params={"app": APP})).json()["items"]
        assert message["status"] == "pending" and message["attempts"] == 1
        assert "503" in message["last_error"]
        assert message["next_attempt_at"] == "2026-11-23T02:31:00Z"  # 60 s later
        # not due yet: nothing happens
        assert (await worker.run_once(clock.now() + timedelta(seconds=30))).delivered == 0
        later = await worker.run_once(clock.now() + timedelta(seconds=61))
        assert later.delivered == 1
        assert [r.body for r in sink.requests] == [{"name": "Sun", "id": patient["id"], "n": 1}] * 2
        assert sink.requests[1].headers["x-clinic"] == "Sun"
        keys = {r.headers["idempotency-key"] for r in sink.requests}
        assert len(keys) == 1  # the same key on every attempt
        [done] = (await client.get("/api/outbox", params={"status": "done"})).json()["items"]
        assert done["attempts"] == 2 and done["delivered_at"] is not None


async def test_dead_letters_are_listed_and_retried_by_hand(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    with http_sink() as sink:
        hook = {
            "key": "hook",
            "on": {"form": "echo", "event": "created"},
            "then": [{"type": "webhook", "method": "POST", "url": f"{sink.url}/x",
                      "body": {"note": "{{ record.note }}"}}],
        }  # fmt: skip
        await install(client, hook)
        await create(client, "echo", {"note": "hello"})
        sink.status = 500
        moment = clock.now()
        for _ in range(3):  # outbox_max_attempts = 3
            await worker.run_once(moment)
            moment += timedelta(hours=1)
        [dead] = (await client.get("/api/outbox", params={"status": "dead"})).json()["items"]
        assert dead["attempts"] == 3 and "500" in dead["last_error"]
        assert (await worker.run_once(moment + timedelta(days=1))).delivered == 0
        sink.status = 200
        again = await client.post(f"/api/outbox/{dead['id']}/retry")
        assert again.status_code == 200 and again.json()["status"] == "pending"
        assert (await client.post(f"/api/outbox/{dead['id']}/retry")).status_code == 409
        assert (await worker.run_once(clock.now())).delivered == 1
        assert len(sink.requests) == 4


async def test_a_template_error_is_dead_at_once_and_the_record_is_kept(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    rule = {
        "key": "bad_words",
        "on": {"form": "echo", "event": "created"},
        "then": [{"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
                  "template": "Hello {{ record.note.nobody }}"}],
    }  # fmt: skip
    await install(client, rule)  # a text has no attribute: only delivery finds out
    await users.create("dr_x", roles={APP: ["doctor"]})
    echo = await create(client, "echo", {"note": "x"})
    report = await worker.run_once(clock.now())
    assert report.dead == 1 and report.delivered == 0
    [dead] = (await client.get("/api/outbox", params={"status": "dead"})).json()["items"]
    assert "template failed" in dead["last_error"] and dead["attempts"] == 1
    assert (await client.get(f"/api/records/{APP}/echo/{echo['id']}")).status_code == 200


async def test_a_template_naming_a_field_the_form_lacks_is_refused_at_import(
    client: httpx.AsyncClient,
) -> None:
    """A text reading ``record.created_at`` (a system column, not in a rule's context) or a
    misspelt field would fail at every delivery: the import says so at the template."""
    for wrong in ("record.nobody.name", "record.created_at", "record.Note"):
        rule = {
            "key": "bad_words",
            "on": {"form": "echo", "event": "created"},
            "then": [{"type": "notify", "channel": "in_app", "recipients": [{"role": "doctor"}],
                      "template": {"en": f"Hello {{{{ {wrong} }}}}", "zh-CN": "你好"}}],
        }  # fmt: skip
        refused = await client.post("/api/apps/import", json=ward(rule))
        assert refused.status_code == 422, refused.text
        errors = refused.json()["errors"]
        assert {e["path"] for e in errors} == {"/rules/0/then/0/template/en"}, wrong
        assert errors[0]["code"] == "unknown_field"


async def test_email_and_the_text_gateway_reach_real_servers(
    client: httpx.AsyncClient, users: Users, settings: Settings, clock: FixedClock
) -> None:
    rule = {
        "key": "welcome",
        "on": {"form": "patient", "event": "created"},
        "then": [
            {"type": "notify", "channel": "email", "recipients": [{"role": "doctor"}],
             "subject": "New patient", "template": "{{ record.name }} registered"},
            {"type": "notify", "channel": "sms_gateway",
             "recipients": [{"address": {"var": "record.phone"}}],
             "template": {"en": "Welcome {{ record.name }}", "zh-CN": "欢迎 {{ record.name }}"}},
        ],
    }  # fmt: skip
    await install(client, rule)
    await users.create("dr_mail", roles={APP: ["doctor"]}, attributes={"email": "li@clinic.test"})
    with smtp_sink() as smtp, http_sink() as gateway:
        local = settings.model_copy(
            update={"smtp_host": smtp.host, "smtp_port": smtp.port,
                    "sms_gateway_url": f"{gateway.url}/send", "sms_gateway_token": "s3cret"}
        )  # fmt: skip
        db = Database(settings.database_url)
        try:
            await create(client, "patient", {"name": "Qian", "phone": "+8613900000000"})
            report = await Worker(db, AppCatalog(), local).run_once(clock.now())
        finally:
            await db.dispose()
        assert report.delivered == 2, report.errors
        [mail] = smtp.mails
        assert mail.recipients == ["li@clinic.test"]
        assert "Subject: New patient" in mail.data and "Qian registered" in mail.data
        [text] = gateway.requests
        assert text.body["to"] == "+8613900000000"
        assert text.body["text"] == "Welcome Qian"  # the app's first locale (en)
        assert text.headers["authorization"] == "Bearer s3cret"


async def test_unconfigured_channels_are_dead_letters_that_say_why(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    rule = {
        "key": "sms",
        "on": {"form": "patient", "event": "created"},
        "then": [{"type": "notify", "channel": "sms_gateway",
                  "recipients": [{"address": "+861"}], "template": "hi"}],
    }  # fmt: skip
    await install(client, rule)
    await create(client, "patient", {"name": "Li"})
    assert (await worker.run_once(clock.now())).dead == 1
    [dead] = (await client.get("/api/outbox", params={"status": "dead"})).json()["items"]
    assert "FORMLOOM_SMS_GATEWAY_URL" in dead["last_error"]


# -- timers: delayed actions, date-relative rules, schedules -----------------------------


DISCHARGE = {
    "key": "discharge_survey",
    "on": {"form": "patient", "event": "updated", "fields": ["status"], "to": "discharged"},
    "then": [
        {"type": "create_task", "role": "front_desk", "after": "PT24H",
         "title": "Satisfaction survey for {{ record.name }}"},
        {"type": "notify", "channel": "in_app", "after": "PT24H",
         "recipients": [{"role": "front_desk"}], "template": "Survey {{ record.name }}"},
    ],
}  # fmt: skip


async def test_delayed_actions_become_timers_that_fire_once(
    client: httpx.AsyncClient, users: Users, settings: Settings, worker: Worker,
    clock: FixedClock,
) -> None:  # fmt: skip
    await install(client, DISCHARGE)
    desk = await users.create("desk3", roles={APP: ["front_desk"]})
    patient = await create(client, "patient", {"name": "Zhou", "status": "admitted"})
    changed = await client.patch(
        f"/api/records/{APP}/patient/{patient['id']}", json={"data": {"status": "discharged"}}
    )
    assert changed.status_code == 200, changed.text
    timers = (await client.get("/api/timers", params={"app": APP})).json()["items"]
    assert sorted(t["due_at"] for t in timers) == ["2026-11-24T02:30:00Z"] * 2
    assert (await worker.run_once(clock.now() + timedelta(hours=23))).timers_fired == 0
    fired = await worker.run_once(clock.now() + timedelta(hours=24))
    assert fired.timers_fired == 2 and fired.delivered == 1
    [task] = (await client.get("/api/tasks", params={"app": APP}, headers=desk.headers)).json()[
        "items"
    ]
    assert task["title"] == "Satisfaction survey for Zhou"
    [note] = (await client.get("/api/notifications", headers=desk.headers)).json()["items"]
    assert note["body"] == "Survey Zhou"
    again = await worker.run_once(clock.now() + timedelta(days=3))
    assert again.timers_fired == 0
    assert await count(settings, Task) == 1


BIRTHDAY = {
    "key": "birthday",
    "on": {"form": "patient", "field": "birth_date", "every_year": True, "at": "09:00"},
    "then": [{"type": "create_task", "role": "front_desk",
              "title": "Birthday: {{ record.name }} turns "
                       "{{ (now[:4]|int) - (record.birth_date[:4]|int) }}"}],
}  # fmt: skip
FOLLOW_UP = {
    "key": "day3",
    "on": {"form": "patient", "field": "discharged_at", "offset": "P3D", "at": "09:00"},
    "then": [{"type": "create_task", "role": "doctor", "title": "Day-3 call {{ record.name }}"}],
}  # fmt: skip


async def test_date_rules_keep_one_timer_per_record_and_move_it(
    client: httpx.AsyncClient, settings: Settings, worker: Worker, clock: FixedClock
) -> None:
    await install(client, FOLLOW_UP, BIRTHDAY)
    patient = await create(
        client, "patient", {"name": "Ma", "discharged_at": "2026-11-23T01:00:00Z",
                            "birth_date": "1980-11-25"}
    )  # fmt: skip
    pid = patient["id"]
    due = await dues(client, pid)
    # 3 days after 23 Nov (Shanghai) at 09:00 Shanghai = 01:00 UTC; birthday 25 Nov 09:00
    assert due == {"day3": "2026-11-26T01:00:00Z", "birthday": "2026-11-25T01:00:00Z"}
    later = {"data": {"discharged_at": "2026-11-24T01:00:00Z"}}
    moved = await client.patch(f"/api/records/{APP}/patient/{pid}", json=later)
    assert moved.status_code == 200
    due = await dues(client, pid)
    assert due["day3"] == "2026-11-27T01:00:00Z"
    assert await count(settings, Timer, Timer.record_id == pid) == 2

    fired = await worker.run_once(datetime(2026, 11, 25, 9, 0, tzinfo=ZONE))
    assert fired.timers_fired == 1
    [task] = await rows(settings, Task)
    assert task.title == "Birthday: Ma turns 46"
    [birthday] = await rows(settings, Timer, Timer.rule == "birthday")
    assert birthday.status == "pending"  # re-armed for next year
    assert birthday.due_at.isoformat() == "2027-11-25T01:00:00+00:00"

    cleared = await client.patch(f"/api/records/{APP}/patient/{pid}",
                                 json={"data": {"discharged_at": None}})  # fmt: skip
    assert cleared.status_code == 200
    assert await count(settings, Timer, Timer.rule == "day3") == 0
    gone = await client.delete(f"/api/records/{APP}/patient/{pid}")
    assert gone.status_code == 204
    assert await count(settings, Timer, Timer.record_id == pid, Timer.status == "pending") == 0


async def test_adding_a_date_rule_arms_timers_for_existing_records(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await install(client)
    await create(client, "patient", {"name": "A", "birth_date": "1990-03-01"})
    await create(client, "patient", {"name": "B", "discharged_at": "2026-01-01T00:00:00Z"})
    await create(client, "patient", {"name": "C"})
    await install(client, BIRTHDAY, FOLLOW_UP)
    timers = await rows(settings, Timer)
    # A's next birthday; B's day-3 call is long past and is not armed; C has no dates
    assert [(t.rule, t.due_at.isoformat()) for t in timers] == [
        ("birthday", "2027-03-01T01:00:00+00:00")
    ]
    await install(client, FOLLOW_UP)  # the birthday rule removed: its timers go
    assert await count(settings, Timer) == 0


REVISIT = {
    "key": "revisit",
    "on": {
        "form": "patient",
        "at": "09:00",
        "filter": {
            "and": [
                {"in": ["hypertension", {"var": "tags"}]},
                {"==": [{"var": "last_visit"}, {"date_add": [{"today": []}, -85, "day"]}]},
            ]
        },
    },
    "then": [{"type": "notify", "channel": "sms_gateway",
              "recipients": [{"address": {"var": "record.phone"}}],
              "template": "{{ record.name }}, time for your blood-pressure check"}],
}  # fmt: skip


async def test_a_schedule_selects_its_records_in_sql_and_re_arms(
    client: httpx.AsyncClient, settings: Settings, worker: Worker, clock: FixedClock
) -> None:
    await install(client, REVISIT)
    [timer] = await rows(settings, Timer)
    assert timer.kind == "schedule"
    assert timer.due_at.isoformat() == "2026-11-24T01:00:00+00:00"  # next 09:00 Shanghai
    run_day = datetime(2026, 11, 24, 9, 0, tzinfo=ZONE)
    due_visit = (run_day.date() - timedelta(days=85)).isoformat()
    for name, tags, visit in [
        ("due", ["hypertension"], due_visit),
        ("other_day", ["hypertension"], "2026-01-01"),
        ("not_tagged", ["diabetes"], due_visit),
    ]:
        await create(client, "patient", {"name": name, "tags": tags, "last_visit": visit,
                                         "phone": "+86100"})  # fmt: skip
    assert (await worker.run_once(run_day - timedelta(minutes=1))).timers_fired == 0
    report = await worker.run_once(run_day)
    assert report.timers_fired == 1
    messages = await rows(settings, OutboxMessage)
    actions = [outbox_action(m.kind, m.rule, m.idempotency_key, m.payload) for m in messages]
    assert [a.context["record"]["name"] for a in actions] == ["due"]
    [timer] = await rows(settings, Timer)
    assert timer.status == "pending"
    assert timer.due_at.isoformat() == "2026-11-25T01:00:00+00:00"
    # a worker that was down for three days runs it once, then arms the next day
    late = await worker.run_once(run_day + timedelta(days=3, hours=2))
    assert late.timers_fired == 1
    [timer] = await rows(settings, Timer)
    assert timer.due_at.isoformat() == "2026-11-28T01:00:00+00:00"


# -- several workers ------------------------------------------------------------------------


async def test_two_worker_processes_fire_each_timer_exactly_once(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    """Two `formloom worker --once --now` processes at the same time on one database: on
    PostgreSQL they claim with SKIP LOCKED, on SQLite they queue on the write lock."""
    import asyncio
    import json
    import os
    import sys

    later = {
        "key": "later",
        "on": {"form": "echo", "event": "created"},
        "then": [
            {"type": "create_task", "role": "doctor", "after": "P1D", "title": "{{ record.note }}"},
            {"type": "notify", "channel": "in_app", "after": "P1D",
             "recipients": [{"role": "doctor"}], "template": "{{ record.note }}"},
        ],
    }  # fmt: skip
    await install(client, later)
    total = 150
    for number in range(total):
        await create(client, "echo", {"note": f"n{number}"})
    assert await count(settings, Timer, Timer.status == "pending") == 2 * total
    env = {
        **os.environ,
        "FORMLOOM_DATABASE_URL": settings.database_url,
        "FORMLOOM_TIMEZONE": "Asia/Shanghai",
    }
    command = [sys.executable, "-m", "formloom.platform.cli", "worker", "--once",
               "--now", "2026-11-24T11:00"]  # fmt: skip
    processes = [
        await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(2)
    ]
    outputs = [await process.communicate() for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    reports = [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["timers_fired"] for r in reports) == 2 * total, reports
    assert all(r["timers_failed"] == 0 and r["dead"] == 0 for r in reports), reports
    assert sum(r["delivered"] for r in reports) == total
    assert await count(settings, Task) == total
    assert await count(settings, Timer, Timer.status == "fired") == 2 * total
    assert await count(settings, OutboxMessage, OutboxMessage.status == "done") == total


async def test_the_worker_command_refuses_a_bad_instant() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "formloom.platform.cli", "worker", "--once", "--now", "soon"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "not an ISO 8601 date-time" in done.stderr


async def test_a_webhook_that_does_not_answer_in_time_is_retried(
    client: httpx.AsyncClient, settings: Settings, clock: FixedClock
) -> None:
    with http_sink() as sink:
        hook = {
            "key": "slow",
            "on": {"form": "echo", "event": "created"},
            "then": [{"type": "webhook", "method": "POST", "url": f"{sink.url}/slow",
                      "body": {"x": 1}}],
        }  # fmt: skip
        await install(client, hook)
        await create(client, "echo", {"note": "x"})
        local = settings.model_copy(update={"webhook_timeout_seconds": 0.3})
        db = Database(settings.database_url)
        try:
            sink.delay = 1.0
            first = await Worker(db, AppCatalog(), local).run_once(clock.now())
            assert first.retrying == 1 and "did not answer in time" in first.errors[0]
            sink.delay = 0
            second = await Worker(db, AppCatalog(), local).run_once(
                clock.now() + timedelta(minutes=5)
            )
            assert second.delivered == 1
        finally:
            await db.dispose()
    # an address nobody listens on: retried as well, with the reason
    unreachable = dict(hook, key="gone")
    unreachable["then"] = [{"type": "webhook", "method": "POST", "url": sink.url + "/gone"}]
    await install(client, unreachable)
    await create(client, "echo", {"note": "y"})
    db = Database(settings.database_url)
    try:
        report = await Worker(db, AppCatalog(), settings).run_once(clock.now())
    finally:
        await db.dispose()
    assert report.retrying == 1 and "could not be reached" in report.errors[0]


async def test_the_rule_log_lists_every_run_and_filters_by_rule_match_and_error(
    client: httpx.AsyncClient, users: Users
) -> None:
    broken = {
        "key": "broken",
        "on": {"form": "visit", "event": "created"},
        "if": {">": [{"var": "record.pain"}, 1]},
        "then": [{"type": "set", "values": {"flag": {"substr": [{"var": "record.flag"}, "x"]}}}],
    }
    await install(client, PAIN_ALERT, broken)
    await create(client, "visit", {"pain": 8})
    await create(client, "visit", {"pain": 0})
    everything = (await client.get(f"/api/rules/{APP}/log")).json()["items"]
    assert sorted((i["rule"], i["matched"]) for i in everything) == [
        ("broken", False), ("broken", False), ("pain_alert", False), ("pain_alert", True),
    ]  # fmt: skip
    [failed] = (await client.get(f"/api/rules/{APP}/log", params={"errors": True})).json()["items"]
    assert failed["rule"] == "broken" and failed["error_pointer"] == "/then/0/values/flag"
    only = {"rule": "pain_alert", "matched": True}
    hits = (await client.get(f"/api/rules/{APP}/log", params=only)).json()["items"]
    assert [(i["rule"], i["matched"]) for i in hits] == [("pain_alert", True)]
    nurse = await users.create("nurse_log", roles={APP: ["doctor"]})
    denied = await client.get(f"/api/rules/{APP}/log", headers=nurse.headers)
    assert denied.status_code == 403
    # the failing rule did not stop the write: both visits are stored
    assert len((await client.get(f"/api/records/{APP}/visit")).json()["items"]) == 2


async def test_the_cascade_bound_is_a_setting(
    settings: Settings, clock: FixedClock, users: Users
) -> None:
    from tests.conftest import running_service

    admin = await users.create("depth_admin", admin=True)
    shallow = settings.model_copy(update={"rule_cascade_depth": 2})
    rules = [
        {"key": "one", "on": {"form": "echo", "event": "created"},
         "then": [{"type": "create_record", "form": "visit", "values": {"flag": "1"}}]},
        {"key": "two", "on": {"form": "visit", "event": "created"},
         "then": [{"type": "create_record", "form": "patient", "values": {"name": "p"}}]},
        {"key": "three", "on": {"form": "patient", "event": "created"},
         "then": [{"type": "create_record", "form": "appointment",
                   "values": {"doctor": "d", "starts_at": "2026-12-01T01:00:00Z",
                              "ends_at": "2026-12-01T02:00:00Z"}}]},
    ]  # fmt: skip
    async with running_service(shallow, clock, token=admin.token) as client:
        await install(client, *rules)
        refused = await client.post(f"/api/records/{APP}/echo", json={"data": {"note": "go"}})
        assert refused.status_code == 422
        assert "rule cascade deeper than 2" in refused.json()["detail"]
        assert (await client.get(f"/api/records/{APP}/patient")).json()["items"] == []
        # two levels are fine
        await install(client, *rules[:2])
        await create(client, "echo", {"note": "go"})
        assert len((await client.get(f"/api/records/{APP}/patient")).json()["items"]) == 1


async def test_an_action_at_an_expression_and_a_task_for_one_user(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    """`at` (a JsonLogic moment: here the appointment's start) and a task assigned to the
    user a record names, visible to that user only."""
    rule = {
        "key": "remind_doctor",
        "on": {"form": "appointment", "event": "created"},
        "then": [
            {"type": "create_task", "user": {"var": "record.doctor"},
             "title": "See the {{ record.starts_at[11:16] }} patient",
             "at": {"date_add": [{"var": "record.starts_at"}, -1, "hour"]}},
        ],
    }  # fmt: skip
    await install(client, rule)
    li = await users.create("dr_at", roles={APP: ["doctor"]})
    wu = await users.create("dr_other", roles={APP: ["doctor"]})
    await create(client, "appointment", {"doctor": "dr_at", "starts_at": "2026-11-25T02:00:00Z",
                                         "ends_at": "2026-11-25T02:30:00Z"})  # fmt: skip
    [timer] = (await client.get("/api/timers", params={"app": APP})).json()["items"]
    assert timer["due_at"] == "2026-11-25T01:00:00Z"
    early = datetime(2026, 11, 25, 8, 59, tzinfo=ZONE)  # 00:59 UTC
    assert (await worker.run_once(early)).timers_fired == 0
    assert (await worker.run_once(early + timedelta(minutes=1))).timers_fired == 1
    [task] = (await client.get("/api/tasks", params={"app": APP}, headers=li.headers)).json()[
        "items"
    ]
    # the title reads the clinic's clock: 02:00 UTC is the 10:00 patient in Shanghai
    assert task["assignee"] == "dr_at" and task["title"] == "See the 10:00 patient"
    assert (await client.get("/api/tasks", params={"app": APP}, headers=wu.headers)).json()[
        "items"
    ] == []


async def test_a_task_closes_itself_when_what_it_waits_for_is_written(
    client: httpx.AsyncClient, users: Users
) -> None:
    """`done_when`: the "call if no answer" task is done when the answer arrives — a record
    of the named form whose filter (with the triggering record's values) holds."""
    rule = {
        "key": "ask_echo",
        "on": {"form": "visit", "event": "created"},
        "then": [
            {"type": "create_task", "role": "doctor", "title": "Call if no echo",
             "done_when": {"form": "echo",
                           "filter": {"==": [{"var": "note"}, {"var": "record.flag"}]}}},
        ],
    }  # fmt: skip
    await install(client, rule)
    doctor = await users.create("dr_echo", roles={APP: ["doctor"]})
    await create(client, "visit", {"pain": 2, "flag": "v-1"})
    await create(client, "visit", {"pain": 3, "flag": "v-2"})

    async def open_titles() -> list[str]:
        answer = await client.get("/api/tasks", params={"app": APP}, headers=doctor.headers)
        return sorted(task["title"] + ":" + task["status"] for task in answer.json()["items"])

    assert await open_titles() == ["Call if no echo:open"] * 2
    await create(client, "echo", {"note": "someone else"})
    assert len(await open_titles()) == 2
    echo = await create(client, "echo", {"note": "draft"})
    changed = await client.patch(
        f"/api/records/{APP}/echo/{echo['id']}", json={"data": {"note": "v-2"}}
    )
    assert changed.status_code == 200, changed.text
    assert len(await open_titles()) == 1
    done = await client.get(
        "/api/tasks", params={"app": APP, "status": "done"}, headers=doctor.headers
    )
    assert [t["outcome"] for t in done.json()["items"]] == ["done_when"]
    bad = {**rule, "then": [{**rule["then"][0], "done_when": {"form": "nope", "filter": True}}]}
    refused = await client.post("/api/apps/import", json=ward(bad))
    assert refused.status_code == 422
    assert [e["path"] for e in refused.json()["errors"]] == ["/rules/0/then/0/done_when/form"]
