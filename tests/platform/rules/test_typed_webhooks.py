"""A rule webhook's JSON body is typed: a string that is exactly one expression gives the
value with its JSON type; a row queued in plan-action format 2 (before) is delivered as it
was then, every string text. SQLite and PostgreSQL, real local HTTP server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models.automation import OutboxMessage
from formloom.platform.records.ids import new_id
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import running_worker
from tests.servers import http_sink

APP = "clinic"
V2 = json.loads((Path(__file__).parent / "fixtures" / "webhook-v2.json").read_text("utf-8"))


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings, timezone=settings.timezone) as running:
        yield running


def clinic(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "visit",
            f.field("patient", required=True),
            f.field("pain", "integer", min=0, max=10),
            f.field("temperature", "number"),
            f.field("urgent", "boolean"),
            f.field("note"),
        ),
        rules=list(rules),
    )


async def test_a_body_value_that_is_one_expression_keeps_its_type(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    with http_sink() as sink:
        hook = {
            "key": "tell_his",
            "on": {"form": "visit", "event": "created"},
            "then": [
                {
                    "type": "webhook",
                    "method": "POST",
                    "url": f"{sink.url}/his",
                    "headers": {"X-Pain": "{{ record.pain }}"},
                    "body": {
                        "pain": "{{ record.pain }}",
                        "temperature": "{{record.temperature}}",
                        "urgent": "{{ record.urgent }}",
                        "note": "{{ record.note }}",
                        "missing": "{{ record.get('nothing') }}",
                        "double": "{{ record.pain * 2 }}",
                        "record": "{{ {'pain': record.pain, 'who': record.patient} }}",
                        "list": ["{{ record.pain }}", "{{ record.patient }}"],
                        "text": "Pain {{ record.pain }}/10",
                        "two": "{{ record.pain }}{{ record.pain }}",
                        "spaced": " {{ record.pain }}",
                        "literal": 7,
                    },
                }
            ],
        }
        answer = await client.post("/api/apps/import", json=clinic(hook))
        assert answer.status_code == 201, answer.text
        data = {"patient": "Wang", "pain": 2, "temperature": 37.5, "urgent": False, "note": "7"}
        created = await client.post(f"/api/records/{APP}/visit", json={"data": data})
        assert created.status_code == 201, created.text
        report = await worker.run_once(clock.now())
        assert (report.delivered, report.errors) == (1, [])
        [call] = sink.requests
    assert call.body == {
        "pain": 2,
        "temperature": 37.5,
        "urgent": False,
        "note": "7",  # a text field's value stays text, even when it looks like a number
        "missing": None,
        "double": 4,
        "record": {"pain": 2, "who": "Wang"},
        "list": [2, "Wang"],
        "text": "Pain 2/10",
        "two": "22",
        "spaced": " 2",
        "literal": 7,
    }
    assert call.headers["x-pain"] == "2"  # headers are text


async def test_an_undefined_expression_is_a_dead_letter_at_once(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    hook = {
        "key": "bad",
        "on": {"form": "visit", "event": "created"},
        "then": [{"type": "webhook", "url": "https://h.example/x",
                  "body": {"x": "{{ record.patient.nobody }}"}}],
    }  # fmt: skip
    assert (await client.post("/api/apps/import", json=clinic(hook))).status_code == 201
    await client.post(f"/api/records/{APP}/visit", json={"data": {"patient": "Li"}})
    report = await worker.run_once(clock.now())
    assert report.dead == 1 and "undefined" in report.errors[0]


async def test_a_webhook_queued_in_format_2_is_delivered_as_then(
    worker: Worker, settings: Settings, clock: FixedClock
) -> None:
    [row] = V2["outbox"]
    assert row["payload"]["action"]["format"] == "formloom.plan-action/2"
    with http_sink() as sink:
        payload = json.loads(json.dumps(row["payload"]).replace("https://h.example", sink.url))
        now = clock.now()
        db = Database(settings.database_url)
        try:
            async with db.transaction() as session:
                session.add(
                    OutboxMessage(
                        id=new_id(), app=APP, rule=row["rule"], kind=row["kind"],
                        channel=None, idempotency_key=row["idempotency_key"], payload=payload,
                        status="pending", attempts=0, next_attempt_at=now, lease_until=None,
                        last_error=None, created_at=now, delivered_at=None,
                    )
                )  # fmt: skip
        finally:
            await db.dispose()
        report = await worker.run_once(now)
        assert (report.delivered, report.errors) == (1, [])
        [call] = sink.requests
    assert (call.method, call.path) == ("POST", "/his")
    assert call.body == {"pain": "2", "urgent": "False", "n": 1}
    assert call.headers["idempotency-key"] == row["idempotency_key"]
