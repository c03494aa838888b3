"""Stored plans written before planned actions had a format version still run after it, on
both databases: timers and outbox rows captured from the clinic CRM as the platform stored
them then (fixtures/clinic-v1.json) fire and deliver exactly as rows written now do. And the
rule log reads as it did, with the durations the platform now measures itself."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from formloom import builtin_apps
from formloom.engines.rules import PLAN_ACTION_FORMAT
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models.automation import (
    Notification,
    OutboxMessage,
    RuleRunLog,
    Task,
    Timer,
)
from formloom.platform.records.ids import new_id
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests.conftest import Users, running_worker
from tests.platform.rules.test_clinic_rules import APP, patient, visit
from tests.servers import HttpSink, http_sink

FIXTURES = Path(__file__).parent / "fixtures"
CLINIC_V1 = json.loads((FIXTURES / "clinic-v1.json").read_text("utf-8"))
ENGINE_V1 = json.loads(
    (Path(__file__).parents[2] / "engines" / "rules" / "fixtures" / "plan-actions-v1.json")
    .read_text("utf-8")
)  # fmt: skip
DUE = datetime.fromisoformat("2026-11-24T02:30:00+00:00")


#: The clinic's discharge survey as it was when the fixtures were captured: two actions
#: delayed 24 hours after the edit (it is a date rule on ``discharged_at`` now), so that rows
#: armed now and rows stored then come from the same rule.
PREVIOUS_DISCHARGE_SURVEY = {
    "key": "discharge_survey",
    "on": {"form": "patient", "event": "updated", "fields": ["discharged_at"]},
    "if": {"!!": [{"var": "record.discharged_at"}]},
    "then": [
        {"type": "create_task", "role": "front_desk", "after": "PT24H", "due": "P2D",
         "title": {"en": "Satisfaction survey: {{ record.name }}",
                   "zh-CN": "满意度回访：{{ record.name }}"},
         "description": {"en": "Discharged {{ record.discharged_at }}. Call if the survey is "
                               "not answered.",
                         "zh-CN": "出院时间 {{ record.discharged_at }}。"
                                  "如未填写问卷，请电话回访。"}},
        {"type": "notify", "channel": "sms_gateway", "after": "PT24H",
         "recipients": [{"address": {"var": "record.phone"}}],
         "template": {"en": "Dear {{ record.name }}, thank you for staying with us. Please rate "
                            "your care: https://clinic.example/survey?p={{ record.id }}",
                      "zh-CN": "{{ record.name }}您好，感谢您的信任。请为本次诊疗评分："
                               "https://clinic.example/survey?p={{ record.id }}"}},
    ],
}  # fmt: skip


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> httpx.AsyncClient:
    document = builtin_apps.load(APP)
    document["rules"] = [
        PREVIOUS_DISCHARGE_SURVEY if rule["key"] == "discharge_survey" else rule
        for rule in document["rules"]
    ]
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code == 201, answer.text
    return client


@pytest.fixture
async def worker(settings: Settings, gateway: HttpSink) -> AsyncIterator[Worker]:
    async with running_worker(settings, sms_gateway_url=f"{gateway.url}/sms") as running:
        yield running


def rewritten(value: Any, ids: dict[str, str]) -> Any:
    """A fixture with the record ids of the capture replaced by this run's."""
    text = json.dumps(value, ensure_ascii=False)
    for old, new in ids.items():
        text = text.replace(old, new)
    return json.loads(text)


async def store(settings: Settings, *rows: Any) -> None:
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            session.add_all(rows)
    finally:
        await db.dispose()


async def all_rows(settings: Settings, model: Any, *where: Any) -> list[Any]:
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            return list((await session.execute(select(model).where(*where))).scalars())
    finally:
        await db.dispose()


def old_timer(row: dict[str, Any], now: datetime) -> Timer:
    return Timer(
        id=new_id(), key=row["key"], kind=row["kind"], app=APP, rule=row["rule"],
        form=row["form"], record_id=row["record_id"], due_at=DUE, payload=row["payload"],
        status="pending", attempts=0, created_at=now,
    )  # fmt: skip


def old_message(row: dict[str, Any], app: str, now: datetime) -> OutboxMessage:
    return OutboxMessage(
        id=new_id(), app=app, rule=row["rule"], kind=row["kind"], channel=row["channel"],
        idempotency_key=row["idempotency_key"], payload=row["payload"], status="pending",
        attempts=0, next_attempt_at=now, lease_until=None, last_error=None, created_at=now,
        delivered_at=None,
    )  # fmt: skip


def test_the_fixtures_are_of_the_previous_format() -> None:
    assert [t["payload"]["action"]["type"] for t in CLINIC_V1["timers"]] == [
        "create_task", "notify",
    ]  # fmt: skip
    assert all("format" not in t["payload"]["action"] for t in CLINIC_V1["timers"])
    assert all("action" not in m["payload"] for m in CLINIC_V1["outbox"])


async def test_a_timer_armed_before_plans_had_versions_fires_as_one_armed_now(
    clinic: httpx.AsyncClient, users: Users, worker: Worker, gateway: HttpSink,
    settings: Settings, clock: FixedClock,
) -> None:  # fmt: skip
    await users.create("desk_qin", roles={APP: ["front_desk"]})
    # Now: a discharge arms the discharge survey's two timers in the current format.
    now_armed = await patient(clinic)
    discharged = await clinic.patch(
        f"/api/records/{APP}/patient/{now_armed['id']}",
        json={"data": {"discharged_at": "2026-11-23T10:00:00+08:00"}},
    )
    assert discharged.status_code == 200, discharged.text
    current = await all_rows(settings, Timer, Timer.record_id == now_armed["id"])
    assert {t.payload["action"]["format"] for t in current} == {PLAN_ACTION_FORMAT}
    # Then: the same two timers as the previous version stored them, for another patient.
    then_armed = await patient(clinic, phone="+8613800138001")  # phones are unique
    [captured] = [i for i in CLINIC_V1["record_ids"] if i in json.dumps(CLINIC_V1["timers"])]
    timers = rewritten(CLINIC_V1["timers"], {captured: then_armed["id"]})
    await store(settings, *(old_timer(row, clock.now()) for row in timers))

    report = await worker.run_once(DUE)
    assert (report.delivered, report.errors) == (2, [])  # (the 09:00 schedule fired too)

    tasks = {t.record_id: t for t in await all_rows(settings, Task)}
    old, new = tasks[then_armed["id"]], tasks[now_armed["id"]]
    shown = ("app", "title", "description", "role", "assignee", "form", "rule", "due", "status")
    assert {k: getattr(old, k) for k in shown} == {k: getattr(new, k) for k in shown}
    assert old.title == "Satisfaction survey: Chen Jing"
    texts = {r.body["text"].rpartition("=")[2]: r.body for r in gateway.requests}
    assert set(texts) == {then_armed["id"], now_armed["id"]}
    old_text, new_text = texts[then_armed["id"]], texts[now_armed["id"]]
    assert old_text["to"] == new_text["to"] == "+8613800138000"
    assert old_text["text"].replace(then_armed["id"], "#") == new_text["text"].replace(
        now_armed["id"], "#"
    )
    fired = await all_rows(settings, Timer, Timer.kind == "action")
    assert len(fired) == 4 and {t.status for t in fired} == {"fired"}
    # The outbox rows the old timers queued are written in the current format.
    messages = await all_rows(settings, OutboxMessage)
    assert {m.payload["action"]["format"] for m in messages} == {PLAN_ACTION_FORMAT}


async def test_an_outbox_message_queued_before_plans_had_versions_is_delivered_as_now(
    clinic: httpx.AsyncClient, users: Users, worker: Worker, settings: Settings,
    clock: FixedClock,
) -> None:  # fmt: skip
    doctor = await users.create("dr_zhang", roles={APP: ["doctor"]})
    someone = await patient(clinic)
    painful = await visit(
        clinic, someone["id"], visit_date="2026-11-23", pain_score=8, doctor_user="dr_zhang"
    )
    [captured] = CLINIC_V1["outbox"]
    await store(settings, old_message(captured, APP, clock.now()))

    report = await worker.run_once(clock.now())
    assert (report.delivered, report.errors) == (2, [])
    notes = await all_rows(settings, Notification, Notification.user_id == doctor.id)
    by_record = {n.record_id: n for n in notes}
    old, new = by_record[captured["payload"]["record_id"]], by_record[painful["id"]]
    assert (old.form, old.rule) == (new.form, new.rule)
    # the old message keeps the wording it was queued with; the rule now names the patient
    assert old.subject == "Pain score 8/10"
    assert new.subject == "Pain score 8/10: Chen Jing"
    assert old.source_key == f"{captured['idempotency_key']}:{doctor.id}"


async def test_a_webhook_queued_before_plans_had_versions_calls_as_before(
    worker: Worker, settings: Settings, clock: FixedClock
) -> None:
    [queued] = [m for m in ENGINE_V1["outbox"] if m["kind"] == "webhook"]
    with http_sink() as sink:
        queued = rewritten(queued, {"https://h.example": sink.url})
        await store(settings, old_message(queued, "clinic", clock.now()))
        report = await worker.run_once(clock.now())
        assert (report.delivered, report.errors) == (1, [])
        [call] = sink.requests
    assert (call.method, call.path, call.body) == ("POST", "/y", {"n": "8"})
    assert call.headers["idempotency-key"] == queued["idempotency_key"]


async def test_an_outbox_message_that_cannot_be_read_is_a_dead_letter_that_says_why(
    worker: Worker, settings: Settings, clock: FixedClock
) -> None:
    [queued] = [m for m in ENGINE_V1["outbox"] if m["kind"] == "webhook"]
    newer = {**queued, "payload": {"action": {"format": "formloom.plan-action/4"}}}
    await store(settings, old_message(newer, "clinic", clock.now()))
    report = await worker.run_once(clock.now())
    assert (report.delivered, report.dead) == (0, 1)
    [dead] = await all_rows(settings, OutboxMessage)
    assert dead.status == "dead" and "newer than this version" in (dead.last_error or "")


async def test_the_rule_log_keeps_its_shape_with_durations_measured_by_the_platform(
    clinic: httpx.AsyncClient, settings: Settings
) -> None:
    someone = await patient(clinic)
    await visit(clinic, someone["id"], visit_date="2026-11-23", pain_score=2)
    [logged] = await all_rows(settings, RuleRunLog, RuleRunLog.form == "visit")
    ran = {run[0] if isinstance(run, list) else run["rule"]: run for run in logged.runs}
    assert ran["pain_alert"][0] == "pain_alert"  # condition false: [key, duration]
    assert isinstance(ran["pain_alert"][1], float) and ran["pain_alert"][1] >= 0
    last_visit = ran["last_visit"]
    assert set(last_visit) == {  # (PostgreSQL's JSONB orders keys its own way)
        "rule", "matched", "reason", "error", "error_pointer", "duration_ms", "actions",
    }  # fmt: skip
    assert last_visit["duration_ms"] > 0
    [action] = last_visit["actions"]
    assert set(action) == {"rule", "index", "type", "mode", "due", "idempotency_key", "data"}
    durations = [run[1] if isinstance(run, list) else run["duration_ms"] for run in logged.runs]
    assert logged.duration_ms == pytest.approx(sum(durations), abs=0.01)
    # The API shows the same entries.
    answer = await clinic.get(f"/api/rules/{APP}/log", params={"record_id": logged.record_id})
    items = {item["rule"]: item for item in answer.json()["items"]}
    assert items["last_visit"]["duration_ms"] == last_visit["duration_ms"]


async def test_the_dry_run_shows_each_rule_s_duration(clinic: httpx.AsyncClient) -> None:
    answer = await clinic.post(
        f"/api/rules/{APP}/pain_alert/test", json={"record": {"pain_score": 9}}
    )
    assert answer.status_code == 200, answer.text
    [run] = answer.json()["runs"]
    assert run["matched"] is True and run["duration_ms"] >= 0
    assert list(run)[-2:] == ["duration_ms", "actions"]
    assert "format" not in run["actions"][0]
