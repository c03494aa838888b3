"""Each branch's time zone (issue 14): an app declares ``"zone": {"field":
"branch.timezone"}``, and a record of a branch in Urumqi has its date-relative timers on
Urumqi's clock and its texts in Urumqi time, the zone named; a record moved to another
branch has its timers moved; a record without a branch keeps the deployment's zone
(Asia/Shanghai); a branch with a zone that is none is refused, and so is a bad declaration,
each at its pointer. SQLite and PostgreSQL, with the real worker."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from formloom import builtin_apps
from formloom.platform.apps.service import AppCatalog
from formloom.platform.db import Database
from formloom.platform.models.automation import Task, Timer
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users
from tests.servers import HttpSink

from .test_rules_run import rows

APP = "branch_times"
SHANGHAI = ZoneInfo("Asia/Shanghai")
UTC = ZoneInfo("UTC")
#: 10:00 in Urumqi (UTC+6), 12:00 in Shanghai (UTC+8)
STARTS = "2026-12-05T04:00:00Z"

TEMPLATE = (
    "{{ record.name }}: your appointment is at {{ record.starts_at | datetime }} ({{ "
    "record.starts_at | date }}, booked {{ record.starts_at | datetime('%H:%M %Z') }})"
)
REMINDER = {
    "key": "reminder",
    "on": {"form": "appointment", "field": "starts_at", "offset": "-P1D", "at": "18:00"},
    "then": [
        {
            "type": "notify",
            "channel": "in_app",
            "recipients": [{"role": "desk"}],
            "subject": "Tomorrow {{ record.starts_at | time }}",
            "template": TEMPLATE,
        },
        {
            "type": "create_task",
            "role": "desk",
            "title": "Call {{ record.name }}, {{ record.starts_at }}",
        },
    ],
}
BIRTHDAY = {
    "key": "birthday",
    "on": {"form": "appointment", "field": "birth_date", "every_year": True, "at": "09:00"},
    "then": [{"type": "create_task", "role": "desk", "title": "Greet {{ record.name }}"}],
}
MORNING = {
    "key": "morning",
    "on": {"form": "appointment", "at": "09:00"},
    "then": [
        {
            "type": "create_task",
            "role": "desk",
            "title": "{{ record.name }} at {{ record.starts_at }}",
        }
    ],
}


def clinic(
    *rules: dict[str, Any], zone: Any = None, zones: list[str] | None = None
) -> dict[str, Any]:
    timezone = (
        f.field("timezone", "select", options=[{"value": z} for z in zones])
        if zones is not None
        else f.field("timezone")
    )
    extra = {"zone": zone} if zone is not None else {}
    return f.app(
        APP,
        f.form("branch", f.field("name", required=True), timezone, title_field="name"),
        f.form(
            "appointment",
            f.field("name", required=True),
            f.field("branch", "relation", target="branch"),
            f.field("starts_at", "datetime", required=True),
            f.field("birth_date", "date"),
            title_field="name",
        ),
        roles=[{"key": "desk", "label": "Front desk"}],
        rules=list(rules),
        **extra,
    )  # fmt: skip


ZONED = {"field": "branch.timezone"}


async def create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> dict[str, Any]:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def branches(client: httpx.AsyncClient) -> tuple[str, str]:
    """Xuhui (Shanghai) and Kashgar (Urumqi): their ids."""
    xuhui = await create(client, "branch", {"name": "Xuhui", "timezone": "Asia/Shanghai"})
    kashgar = await create(client, "branch", {"name": "Kashgar", "timezone": "Asia/Urumqi"})
    return xuhui["id"], kashgar["id"]


async def install(client: httpx.AsyncClient, document: dict[str, Any]) -> None:
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text


async def due(settings: Settings, record_id: str, rule: str = "reminder") -> datetime:
    [timer] = await rows(settings, Timer, Timer.record_id == record_id, Timer.rule == rule)
    moment: datetime = timer.due_at
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


async def test_a_branch_in_urumqi_is_reminded_at_18_00_urumqi_time_in_urumqi_time(
    client: httpx.AsyncClient, settings: Settings, users: Users, worker: Worker
) -> None:
    await install(client, clinic(REMINDER, zone=ZONED))
    desk = await users.create("desk_kashgar", roles={APP: ["desk"]})
    _, kashgar = await branches(client)
    made = await create(
        client, "appointment", {"name": "Aygul", "branch": kashgar, "starts_at": STARTS}
    )
    # 18:00 in Urumqi the day before is 12:00 UTC (20:00 in Shanghai), not 18:00 Shanghai
    assert await due(settings, made["id"]) == datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    report = await worker.run_once(datetime(2026, 12, 4, 19, 59, tzinfo=SHANGHAI))
    assert report.timers_fired == 0
    report = await worker.run_once(datetime(2026, 12, 4, 20, 0, tzinfo=SHANGHAI))
    assert report.timers_fired == 1 and report.delivered == 1, report

    [note] = (await client.get("/api/notifications", headers=desk.headers)).json()["items"]
    assert note["subject"] == "Tomorrow 10:00 (Asia/Urumqi)"
    assert note["body"] == (
        "Aygul: your appointment is at 2026-12-05 10:00 (Asia/Urumqi) (2026-12-05, booked "
        "10:00 Asia/Urumqi)"
    )
    [task] = await rows(settings, Task)
    assert task.title == "Call Aygul, 2026-12-05 10:00 (Asia/Urumqi)"


async def test_moving_a_record_to_another_branch_moves_its_timer(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await install(client, clinic(REMINDER, zone=ZONED))
    xuhui, kashgar = await branches(client)
    made = await create(
        client, "appointment", {"name": "Wang", "branch": xuhui, "starts_at": STARTS}
    )
    shanghai_evening = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    assert await due(settings, made["id"]) == shanghai_evening
    path = f"/api/records/{APP}/appointment/{made['id']}"
    moved = await client.patch(path, json={"data": {"branch": kashgar}})
    assert moved.status_code == 200, moved.text
    assert await due(settings, made["id"]) == datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    # no branch: the deployment's zone again
    moved = await client.patch(path, json={"data": {"branch": None}})
    assert moved.status_code == 200, moved.text
    assert await due(settings, made["id"]) == shanghai_evening


async def test_a_record_without_a_branch_is_on_the_deployments_clock(
    client: httpx.AsyncClient, settings: Settings, users: Users, worker: Worker
) -> None:
    await install(client, clinic(REMINDER, zone=ZONED))
    desk = await users.create("desk_home", roles={APP: ["desk"]})
    await branches(client)
    made = await create(client, "appointment", {"name": "Li", "starts_at": STARTS})
    assert await due(settings, made["id"]) == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    report = await worker.run_once(datetime(2026, 12, 4, 18, 0, tzinfo=SHANGHAI))
    assert report.timers_fired == 1 and report.delivered == 1, report
    [note] = (await client.get("/api/notifications", headers=desk.headers)).json()["items"]
    # the deployment's zone is not named (docs/time-zones.md)
    assert note["subject"] == "Tomorrow 12:00"
    assert note["body"] == (
        "Li: your appointment is at 2026-12-05 12:00 (2026-12-05, booked 12:00 Asia/Shanghai)"
    )


async def test_a_schedule_runs_on_the_deployments_clock_with_texts_in_each_records_zone(
    client: httpx.AsyncClient, settings: Settings, worker: Worker
) -> None:
    await install(client, clinic(MORNING, zone=ZONED))
    xuhui, kashgar = await branches(client)
    await create(client, "appointment", {"name": "Wang", "branch": xuhui, "starts_at": STARTS})
    await create(client, "appointment", {"name": "Aygul", "branch": kashgar, "starts_at": STARTS})
    [timer] = await rows(settings, Timer, Timer.rule == "morning")
    moment = timer.due_at.replace(tzinfo=UTC) if timer.due_at.tzinfo is None else timer.due_at
    assert moment == datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)  # 09:00 in Shanghai
    report = await worker.run_once(datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI))
    assert report.timers_fired == 1, report
    assert sorted(task.title for task in await rows(settings, Task)) == [
        "Aygul at 2026-12-05 10:00 (Asia/Urumqi)",
        "Wang at 2026-12-05 12:00",
    ]


async def test_a_branch_must_hold_a_real_zone(client: httpx.AsyncClient) -> None:
    await install(client, clinic(REMINDER, zone=ZONED))
    answer = await client.post(
        f"/api/records/{APP}/branch", json={"data": {"name": "Mars", "timezone": "Mars/Olympus"}}
    )
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert (error["path"], error["code"]) == ("/data/timezone", "invalid_zone")
    assert "'Mars/Olympus' is not an IANA time zone name" in error["message"]
    xuhui, _ = await branches(client)
    changed = await client.patch(
        f"/api/records/{APP}/branch/{xuhui}", json={"data": {"timezone": "GMT+8"}}
    )
    assert changed.status_code == 422, changed.text
    assert changed.json()["errors"][0]["path"] == "/data/timezone"
    # without the declaration the same field is any text
    await install(client, {**clinic(REMINDER), "version": "1.0.1"})
    answer = await client.post(
        f"/api/records/{APP}/branch", json={"data": {"name": "Mars", "timezone": "Mars/Olympus"}}
    )
    assert answer.status_code == 201, answer.text


@pytest.mark.parametrize(
    ("zone", "zones", "path", "code"),
    [
        ({"field": "branch.tz"}, None, "/zone/field", "unknown_field"),
        ({"field": "site.timezone"}, None, "/zone/field", "unknown_relation"),
        ({"field": "name.timezone"}, None, "/zone/field", "invalid_zone_relation"),
        ({"field": "branch.name"}, None, None, None),  # a text field: allowed
        ({"field": "branch"}, None, "/zone/field", None),
        ({"field": "branch.timezone", "when": 1}, None, "/zone/when", None),
        (ZONED, ["Asia/Shanghai", "Asia/Urumqi", "Asia/Beijing"],
         "/forms/0/fields/1/options/2/value", "invalid_zone"),
    ],
)  # fmt: skip
async def test_import_refuses_a_bad_zone_declaration_at_its_pointer(
    client: httpx.AsyncClient,
    zone: dict[str, Any],
    zones: list[str] | None,
    path: str | None,
    code: str | None,
) -> None:
    answer = await client.post("/api/apps/import", json=clinic(zone=zone, zones=zones))
    if path is None:
        assert answer.status_code == 201, answer.text
        return
    assert answer.status_code == 422, answer.text
    found = {(e["path"], e["code"]) for e in answer.json()["errors"]}
    assert any(p == path and (code is None or c == code) for p, c in found), found


async def test_a_select_of_zones_is_a_zone_field(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await install(client, clinic(REMINDER, zone=ZONED, zones=["Asia/Shanghai", "Asia/Urumqi"]))
    _, kashgar = await branches(client)
    made = await create(
        client, "appointment", {"name": "Aygul", "branch": kashgar, "starts_at": STARTS}
    )
    assert await due(settings, made["id"]) == datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


# -- the clinic CRM: a Pudong-like branch in Urumqi ------------------------------------


async def test_the_clinics_reminder_at_a_branch_in_urumqi(
    client: httpx.AsyncClient, settings: Settings, gateway: HttpSink
) -> None:
    answer = await client.post("/api/apps/import", json=builtin_apps.load("clinic_crm"))
    assert answer.status_code == 201, answer.text
    local = settings.model_copy(
        update={"timezone": "Asia/Shanghai", "sms_gateway_url": f"{gateway.url}/sms"}
    )
    db = Database(settings.database_url)
    worker = Worker(db, AppCatalog(), local)

    async def made(form: str, data: dict[str, Any]) -> dict[str, Any]:
        answer = await client.post(f"/api/records/clinic_crm/{form}", json={"data": data})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    try:
        west = await made("branch", {"name": "Kashgar", "code": "KS", "timezone": "Asia/Urumqi"})
        doctor = await made(
            "staff", {"name": "Dr. Ma", "role": "doctor", "department": "general",
                      "branch": west["id"]},
        )  # fmt: skip
        patient = await made(
            "patient", {"name": "Aygul", "phone": "+8613900000001", "consent_marketing": True,
                        "branch": west["id"]},
        )  # fmt: skip
        booked = await made(
            "appointment", {"patient": patient["id"], "doctor": doctor["id"],
                            "department": "general", "starts_at": STARTS,
                            "duration_minutes": 30, "status": "booked"},
        )  # fmt: skip
        # the branch came from the patient (a rule), and with it Urumqi's clock
        assert booked["data"]["branch"] == west["id"]
        # 18:00 in Shanghai is 16:00 in Urumqi: too early
        await worker.run_once(datetime(2026, 12, 4, 18, 0, tzinfo=SHANGHAI))
        assert gateway.requests == []
        await worker.run_once(datetime(2026, 12, 4, 18, 0, tzinfo=ZoneInfo("Asia/Urumqi")))
        [text] = gateway.requests
        assert text.body["to"] == "+8613900000001"
        assert "tomorrow at 10:00 (Asia/Urumqi) with Dr. Ma" in text.body["text"], text.body
    finally:
        await db.dispose()


async def test_changing_a_branchs_zone_moves_its_records_timers(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    await install(client, clinic(REMINDER, zone=ZONED))
    xuhui, _ = await branches(client)
    made = await create(
        client, "appointment", {"name": "Wang", "branch": xuhui, "starts_at": STARTS}
    )
    other = await create(client, "appointment", {"name": "Li", "starts_at": STARTS})
    assert await due(settings, made["id"]) == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
    moved = await client.patch(
        f"/api/records/{APP}/branch/{xuhui}", json={"data": {"timezone": "Asia/Urumqi"}}
    )
    assert moved.status_code == 200, moved.text
    assert await due(settings, made["id"]) == datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    # a record of no branch stays on the deployment's clock
    assert await due(settings, other["id"]) == datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


async def test_a_birthday_is_greeted_at_09_00_in_the_branchs_zone_every_year(
    client: httpx.AsyncClient, settings: Settings, worker: Worker
) -> None:
    await install(client, clinic(BIRTHDAY, zone=ZONED))
    _, kashgar = await branches(client)
    data = {"name": "Aygul", "branch": kashgar, "starts_at": STARTS, "birth_date": "1990-11-25"}
    made = await create(client, "appointment", data)
    # 09:00 in Urumqi is 03:00 UTC (11:00 in Shanghai)
    assert await due(settings, made["id"], "birthday") == datetime(2026, 11, 25, 3, 0, tzinfo=UTC)
    report = await worker.run_once(datetime(2026, 11, 25, 11, 0, tzinfo=SHANGHAI))
    assert report.timers_fired == 1, report
    assert [task.title for task in await rows(settings, Task)] == ["Greet Aygul"]
    # re-armed for next year, on the same clock
    assert await due(settings, made["id"], "birthday") == datetime(2027, 11, 25, 3, 0, tzinfo=UTC)
