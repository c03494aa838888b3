"""Messages and task texts read times on the clinic's clock (Asia/Shanghai) in the reader's
language; webhooks, for machines, keep the stored UTC form. SQLite and PostgreSQL, with the
real worker delivering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import Users, running_worker
from tests.servers import http_sink

APP = "ward_times"
DISCHARGED = "2026-12-03T09:00:00Z"  # 17:00 in Shanghai


def ward(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "stay",
            f.field("name", required=True),
            f.field("discharged_at", "datetime"),
            f.field("admitted_on", "date"),
        ),
        locales=["en", "zh-CN"],
        roles=[{"key": "doctor", "label": "Doctor"}],
        rules=list(rules),
    )


SURVEY_TASK = {
    "key": "survey_call",
    "on": {"form": "stay", "event": "created"},
    "then": [
        {
            "type": "create_task",
            "role": "doctor",
            "title": {
                "en": "Discharged {{ record.discharged_at }}",
                "zh-CN": "出院时间 {{ record.discharged_at }}",
            },
            "description": {
                "en": "Admitted {{ record.admitted_on | date('long') }}, left at "
                "{{ record.discharged_at | time }} on {{ record.discharged_at | date('long') }}",
                "zh-CN": "{{ record.admitted_on | date('long') }} 入院",
            },
        },
        {
            "type": "notify",
            "channel": "in_app",
            "recipients": [{"role": "doctor"}],
            "subject": {
                "en": "Discharged {{ record.discharged_at | date }}",
                "zh-CN": "出院 {{ record.discharged_at | date('long') }}",
            },
            "template": {
                "en": "{{ record.name }} left at {{ record.discharged_at | datetime('%H:%M %Z') }}",
                "zh-CN": "{{ record.name }} 于 {{ record.discharged_at | datetime('long') }} 出院",
            },
        },
    ],
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"timezone": "Asia/Shanghai"})


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings, timezone=settings.timezone) as running:
        yield running


async def install(client: httpx.AsyncClient, *rules: dict[str, Any]) -> None:
    answer = await client.post("/api/apps/import", json=ward(*rules))
    assert answer.status_code in (200, 201), answer.text


async def test_task_texts_and_messages_read_the_clinics_clock(
    client: httpx.AsyncClient, users: Users, worker: Worker, clock: FixedClock
) -> None:
    await install(client, SURVEY_TASK)
    doctor = await users.create("dr_time", roles={APP: ["doctor"]})
    zh_doctor = await users.create("dr_time_zh", roles={APP: ["doctor"]})
    answer = await client.patch("/api/auth/me", json={"locale": "zh-CN"}, headers=zh_doctor.headers)
    assert answer.status_code == 200
    data = {"name": "Li Wei", "discharged_at": DISCHARGED, "admitted_on": "2026-11-28"}
    made = await client.post(f"/api/records/{APP}/stay", json={"data": data})
    assert made.status_code == 201, made.text
    # the record itself keeps the instant in UTC
    assert made.json()["data"]["discharged_at"] == DISCHARGED

    [task] = (await client.get("/api/tasks", params={"app": APP}, headers=doctor.headers)).json()[
        "items"
    ]
    assert task["title"] == "Discharged 2026-12-03 17:00"
    assert task["description"] == ("Admitted 28 November 2026, left at 17:00 on 3 December 2026")

    report = await worker.run_once(clock.now())
    assert report.delivered == 1 and report.dead == 0, report
    [note] = (await client.get("/api/notifications", headers=doctor.headers)).json()["items"]
    assert (note["subject"], note["body"]) == (
        "Discharged 2026-12-03",
        "Li Wei left at 17:00 Asia/Shanghai",
    )
    [zh] = (await client.get("/api/notifications", headers=zh_doctor.headers)).json()["items"]
    assert (zh["subject"], zh["body"]) == (
        "出院 2026年12月3日",
        "Li Wei 于 2026年12月3日 星期四 17:00 出院",
    )


async def test_a_webhook_keeps_utc(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    with http_sink() as sink:
        hook = {
            "key": "tell_his",
            "on": {"form": "stay", "event": "created"},
            "then": [
                {
                    "type": "webhook",
                    "method": "POST",
                    "url": f"{sink.url}/stays",
                    "headers": {"X-Discharged": "{{ record.discharged_at }}"},
                    "body": {
                        "at": "{{ record.discharged_at }}",
                        "text": "left {{ record.discharged_at }}",
                    },
                }
            ],
        }
        await install(client, hook)
        made = await client.post(
            f"/api/records/{APP}/stay", json={"data": {"name": "Sun", "discharged_at": DISCHARGED}}
        )
        assert made.status_code == 201, made.text
        assert (await worker.run_once(clock.now())).delivered == 1
        [request] = sink.requests
        assert request.body == {"at": DISCHARGED, "text": f"left {DISCHARGED}"}
        assert request.headers["x-discharged"] == DISCHARGED
