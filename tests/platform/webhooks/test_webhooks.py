"""Webhook subscriptions (docs/webhooks.md) on SQLite and PostgreSQL: the API and its
refusals, and record writes delivered by the worker to a real local HTTP server, signed,
with typed values, retried and dead-lettered."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from formloom.platform.webhooks.outbound import signature
from tests import factories as f
from tests.conftest import Users, running_worker
from tests.servers import HttpSink, Received, http_sink

APP = "clinic"


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "visit",
            f.field("patient", required=True),
            f.field("pain", "integer", min=0, max=10),
            f.field("urgent", "boolean"),
            f.field("note"),
        ),
        f.form("echo", f.field("note")),
        roles=[{"key": "doctor", "label": "Doctor"}],
    )


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    changes = {
        "timezone": settings.timezone,
        "outbox_backoff_seconds": 60,
        "outbox_max_attempts": 3,
    }
    async with running_worker(settings, **changes) as running:
        yield running


async def install(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/apps/import", json=clinic())
    assert answer.status_code in (200, 201), answer.text


async def subscribe(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    answer = await client.post(f"/api/apps/{APP}/webhooks", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def verify(request: Received, secret: str, now: datetime, tolerance: int = 300) -> Any:
    """What a receiver does: recompute the HMAC over ``<timestamp>.<raw body>``, compare in
    constant time, refuse an old timestamp; then parse the body."""
    timestamp = request.headers["x-formloom-timestamp"]
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + request.raw, hashlib.sha256
    ).hexdigest()
    sent = request.headers["x-formloom-signature"]
    assert sent.startswith("sha256=")
    assert hmac.compare_digest(sent.removeprefix("sha256="), expected)
    assert abs(now.timestamp() - int(timestamp)) <= tolerance
    return json.loads(request.raw)


async def test_subscriptions_are_made_listed_and_deleted_by_admins_only(
    client: httpx.AsyncClient, users: Users
) -> None:
    await install(client)
    made = await subscribe(
        client, url="https://his.example/hook", events=["record.created"], form="visit"
    )
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["active"] is True and made["events"] == ["record.created"]
    listed = await client.get(f"/api/apps/{APP}/webhooks")
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    one = await client.get(f"/api/apps/{APP}/webhooks/{made['id']}")
    assert one.status_code == 200
    for shown in (listed.text, one.text):
        assert made["secret"] not in shown and "secret" not in shown
    assert item == one.json() == {k: v for k, v in made.items() if k != "secret"}

    doctor = await users.create("dr_li", roles={APP: ["doctor"]})
    as_doctor = {"headers": doctor.headers}
    assert (await client.get(f"/api/apps/{APP}/webhooks", **as_doctor)).status_code == 403
    refused = await client.post(
        f"/api/apps/{APP}/webhooks",
        json={"url": "https://x.example", "events": ["record.created"]},
        **as_doctor,
    )
    assert refused.status_code == 403
    gone = await client.delete(f"/api/apps/{APP}/webhooks/{made['id']}", **as_doctor)
    assert gone.status_code == 403

    assert (await client.delete(f"/api/apps/{APP}/webhooks/{made['id']}")).status_code == 204
    assert (await client.get(f"/api/apps/{APP}/webhooks/{made['id']}")).status_code == 404
    assert (await client.delete(f"/api/apps/{APP}/webhooks/{made['id']}")).status_code == 404
    assert (await client.get("/api/apps/nope/webhooks")).status_code == 404


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"url": "ftp://his.example/x", "events": ["record.created"]}, "/url"),
        ({"url": "not a url", "events": ["record.created"]}, "/url"),
        ({"url": "https://u:p@his.example/x", "events": ["record.created"]}, "/url"),
        ({"url": "https://his.example/x", "events": []}, "/events"),
        ({"url": "https://his.example/x", "events": ["record.eaten"]}, "/events/0"),
        ({"url": "https://his.example/x", "events": ["record.created"], "form": "x"}, "/form"),
        (
            {
                "url": "https://his.example/x",
                "events": ["record.created"],
                "form": "visit",
                "fields": ["pain", "nope"],
            },
            "/fields/1",
        ),  # fmt: skip
    ],
)
async def test_a_bad_subscription_is_refused_at_its_field(
    client: httpx.AsyncClient, body: dict[str, Any], path: str
) -> None:
    await install(client)
    answer = await client.post(f"/api/apps/{APP}/webhooks", json=body)
    assert answer.status_code == 422, answer.text
    assert path in [error["path"] for error in answer.json()["errors"]]


async def deliveries(
    worker: Worker, sink: HttpSink, moment: datetime, secret: str
) -> list[dict[str, Any]]:
    await worker.run_once(moment)
    return [verify(request, secret, moment) for request in sink.requests]


async def test_writes_are_delivered_signed_with_typed_values(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    await install(client)
    with http_sink() as sink:
        made = await subscribe(
            client,
            url=f"{sink.url}/his",
            events=["record.created", "record.updated", "record.deleted"],
            form="visit",
        )
        secret = made["secret"]
        created = await client.post(
            f"/api/records/{APP}/visit",
            json={"data": {"patient": "Wang", "pain": 2, "urgent": False}},
        )
        assert created.status_code == 201, created.text
        record = created.json()
        await client.post(f"/api/records/{APP}/echo", json={"data": {"note": "other form"}})
        now = clock.now()
        [first] = await deliveries(worker, sink, now, secret)
        occurred = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert first == {
            "event": "record.created",
            "app": APP,
            "form": "visit",
            "record_id": record["id"],
            "version": 1,
            "occurred_at": occurred,
            "data": {"patient": "Wang", "pain": 2, "urgent": False},
            "delivery_id": sink.requests[0].headers["x-formloom-delivery"],
        }
        assert isinstance(first["data"]["pain"], int)
        headers = sink.requests[0].headers
        assert headers["x-formloom-event"] == "record.created"
        assert headers["x-formloom-timestamp"] == str(int(now.timestamp()))
        assert headers["content-type"] == "application/json"
        assert headers["idempotency-key"] == f"sub:{made['id']}:{record['id']}:1"
        # a signature made with another secret, or over another body, does not verify
        assert headers["x-formloom-signature"] != signature(
            "whsec_other", "0", sink.requests[0].raw
        )

        updated = await client.patch(
            f"/api/records/{APP}/visit/{record['id']}", json={"data": {"pain": 8, "urgent": True}}
        )
        assert updated.status_code == 200, updated.text
        removed = await client.delete(f"/api/records/{APP}/visit/{record['id']}")
        assert removed.status_code == 204, removed.text
        sent = await deliveries(worker, sink, now, secret)
        assert [(s["event"], s["version"]) for s in sent] == [
            ("record.created", 1), ("record.updated", 2), ("record.deleted", 3),
        ]  # fmt: skip
        assert sent[1]["data"] == {"patient": "Wang", "pain": 8, "urgent": True}
        assert sent[2]["data"] == sent[1]["data"]
        assert len({s["delivery_id"] for s in sent}) == 3


async def test_a_failed_delivery_is_retried_then_dead(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    await install(client)
    with http_sink() as sink:
        made = await subscribe(client, url=f"{sink.url}/his", events=["record.created"])
        await client.post(f"/api/records/{APP}/visit", json={"data": {"patient": "Li", "pain": 3}})
        sink.fail_next(1, 500)
        now = clock.now()
        report = await worker.run_once(now)
        assert (report.delivered, report.retrying) == (0, 1)
        later = now + timedelta(seconds=61)
        assert (await worker.run_once(later)).delivered == 1
        first, second = sink.requests
        assert first.headers["x-formloom-delivery"] == second.headers["x-formloom-delivery"]
        assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
        # each attempt is signed with its own timestamp
        assert verify(second, made["secret"], later)["data"]["pain"] == 3
        assert second.headers["x-formloom-timestamp"] == str(int(later.timestamp()))

        sink.status = 500
        await client.post(f"/api/records/{APP}/echo", json={"data": {"note": "x"}})
        moment = later
        for _ in range(3):  # outbox_max_attempts = 3
            await worker.run_once(moment)
            moment += timedelta(hours=1)
        [dead] = (await client.get("/api/outbox", params={"status": "dead"})).json()["items"]
        assert dead["kind"] == "subscription" and dead["attempts"] == 3
        assert "500" in dead["last_error"]
        # the secret is in no answer: not the outbox's, not the audit log's
        for path in ("/api/outbox", "/api/audit", f"/api/apps/{APP}/webhooks"):
            shown = await client.get(path)
            assert shown.status_code == 200 and made["secret"] not in shown.text


async def test_inactive_deleted_and_other_form_subscriptions_send_nothing(
    client: httpx.AsyncClient, worker: Worker, clock: FixedClock
) -> None:
    await install(client)
    with http_sink() as sink:
        await subscribe(client, url=f"{sink.url}/off", events=["record.created"], active=False)
        await subscribe(client, url=f"{sink.url}/echo", events=["record.created"], form="echo")
        await subscribe(client, url=f"{sink.url}/upd", events=["record.updated"], form="visit")
        doomed = await subscribe(client, url=f"{sink.url}/gone", events=["record.created"])
        narrow = await subscribe(
            client, url=f"{sink.url}/narrow", events=["record.created"], form="visit",
            fields=["pain"],
        )  # fmt: skip
        await client.post(
            f"/api/records/{APP}/visit", json={"data": {"patient": "Zhao", "pain": 1}}
        )
        assert (await client.delete(f"/api/apps/{APP}/webhooks/{doomed['id']}")).status_code == 204
        report = await worker.run_once(clock.now())
        assert report.delivered == 2  # the narrow one, and the deleted one's dropped message
        [request] = sink.requests
        assert request.path == "/narrow"
        assert verify(request, narrow["secret"], clock.now())["data"] == {"pain": 1}
