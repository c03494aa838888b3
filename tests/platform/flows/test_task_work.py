"""Working on flow tasks through the API, beyond the happy path: adding a signer, a task
reassigned to a role by its escalation (it must be claimed again), a task nobody may take
(found by admins), a flow a rule started (nobody's to cancel), and refusals that point at
the request and change nothing. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import TestUser, Users, running_worker

APP = "desk"

APPROVAL: dict[str, Any] = {
    "key": "approval",
    "form": "request",
    "start": {"roles": ["clerk"]},
    "nodes": [
        {"type": "start", "key": "begin"},
        {
            "type": "user_task",
            "key": "approve",
            "title": "Approve {{ record.subject }}",
            "assignee": {"field": "owner"},
            "outcomes": [{"key": "yes"}, {"key": "no", "veto": True}],
            "due": {"after": "PT2H"},
            "escalations": [{"action": "reassign", "to": {"role": "boss"}}],
        },
        {"type": "end", "key": "done"},
    ],
    "edges": [
        {"from": "begin", "to": "approve"},
        {"from": "approve", "to": "done", "outcome": "yes"},
        {"from": "approve", "to": "done", "outcome": "no"},
    ],
}


def desk_app(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form("staff", f.field("name", required=True), f.field("username"),
               title_field="name", user_field="username"),
        f.form("request", f.field("subject", required=True),
               f.field("owner", "relation", target="staff"), title_field="subject"),
        roles=[{"key": "clerk"}, {"key": "boss"}],
        permissions=[{"form": "*", "roles": ["clerk", "boss"],
                      "actions": ["read", "create", "update"]}],
        flows=[APPROVAL],
        rules=list(rules),
    )  # fmt: skip


@pytest.fixture
async def people(users: Users) -> dict[str, TestUser]:
    return {
        "clerk": await users.create("clerk", roles={APP: ["clerk"]}),
        "ann": await users.create("ann", roles={APP: ["clerk"]}),
        "bob": await users.create("bob", roles={APP: ["clerk"]}),
        "boss1": await users.create("boss1", roles={APP: ["boss"]}),
        "boss2": await users.create("boss2", roles={APP: ["boss"]}),
    }


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    async with running_worker(settings, timezone=settings.timezone) as running:
        yield running


async def _install(client: httpx.AsyncClient, *rules: dict[str, Any]) -> None:
    answer = await client.post("/api/apps/import", json=desk_app(*rules))
    assert answer.status_code in (200, 201), answer.text


async def _create(client: httpx.AsyncClient, form: str, data: dict[str, Any]) -> str:
    answer = await client.post(f"/api/records/{APP}/{form}", json={"data": data})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _start(client: httpx.AsyncClient, who: TestUser, owner: str | None) -> str:
    request = await _create(client, "request", {"subject": "Laptop", "owner": owner})
    answer = await client.post(
        f"/api/flows/{APP}/approval/start", json={"record_id": request}, headers=who.headers
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def _tasks(client: httpx.AsyncClient, who: TestUser, **params: Any) -> list[dict[str, Any]]:
    answer = await client.get("/api/tasks", params={"app": APP, **params}, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def test_a_signer_must_also_approve_and_a_veto_ends_the_step(
    client: httpx.AsyncClient, people: dict[str, TestUser]
) -> None:
    await _install(client)
    ann = await _create(client, "staff", {"name": "Ann", "username": "ann"})
    instance = await _start(client, people["clerk"], ann)
    (task,) = await _tasks(client, people["ann"])
    refused = await client.post(
        f"/api/tasks/{task['id']}/signers", json={"user": "nobody"}, headers=people["ann"].headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["path"] == "/user"
    twice = await client.post(
        f"/api/tasks/{task['id']}/signers", json={"user": "ann"}, headers=people["ann"].headers
    )
    assert twice.status_code == 422 and twice.json()["errors"][0]["path"] == "/user"
    not_theirs = await client.post(
        f"/api/tasks/{task['id']}/signers", json={"user": "bob"}, headers=people["bob"].headers
    )
    assert not_theirs.status_code == 404
    added = await client.post(
        f"/api/tasks/{task['id']}/signers", json={"user": "bob"}, headers=people["ann"].headers
    )
    assert added.status_code == 200, added.text
    (bobs,) = await _tasks(client, people["bob"])
    assert bobs["node"] == "approve" and bobs["assignee"] == "bob"
    done = await client.post(
        f"/api/tasks/{task['id']}/complete", json={"outcome": "yes"}, headers=people["ann"].headers
    )
    assert done.status_code == 200, done.text
    running = (await client.get(f"/api/flow-instances/{instance}")).json()
    assert running["status"] == "running" and running["waiting_at"] == ["approve"]
    vetoed = await client.post(
        f"/api/tasks/{bobs['id']}/complete", json={"outcome": "no"}, headers=people["bob"].headers
    )
    assert vetoed.status_code == 200, vetoed.text
    ended = (await client.get(f"/api/flow-instances/{instance}")).json()
    assert ended["status"] == "completed"
    assert ended["steps"]["approve"]["outcomes"] == ["yes", "no"]
    kinds = [entry["kind"] for entry in ended["timeline"]]
    assert "signer_added" in kinds
    late = await client.post(
        f"/api/tasks/{bobs['id']}/complete", json={"outcome": "no"}, headers=people["bob"].headers
    )
    assert late.status_code == 409


async def test_a_task_reassigned_to_a_role_must_be_claimed(
    client: httpx.AsyncClient,
    people: dict[str, TestUser],
    clock: FixedClock,
    worker: Worker,
) -> None:
    await _install(client)
    ann = await _create(client, "staff", {"name": "Ann", "username": "ann"})
    await _start(client, people["clerk"], ann)
    (task,) = await _tasks(client, people["ann"])
    assert task["claim_required"] is False
    report = await worker.run_once(clock.now() + timedelta(hours=3))
    assert report.timers_fired == 1, report.to_dict()
    assert await _tasks(client, people["ann"]) == []
    (moved,) = await _tasks(client, people["boss1"])
    assert moved["candidates"] == {"roles": ["boss"], "users": []}
    assert moved["assignee"] is None and moved["claim_required"] is True
    unclaimed = await client.post(
        f"/api/tasks/{moved['id']}/complete", json={"outcome": "yes"},
        headers=people["boss1"].headers,
    )  # fmt: skip
    assert unclaimed.status_code == 409
    claimed = await client.post(f"/api/tasks/{moved['id']}/claim", headers=people["boss1"].headers)
    assert claimed.status_code == 200
    assert await _tasks(client, people["boss2"]) == []


async def test_a_task_nobody_may_take_is_found_by_admins(
    client: httpx.AsyncClient, people: dict[str, TestUser]
) -> None:
    await _install(client)
    instance = await _start(client, people["clerk"], None)  # no owner: nobody to ask
    assert await _tasks(client, people["ann"]) == []
    refused = await client.get(
        "/api/tasks", params={"scope": "unassigned"}, headers=people["clerk"].headers
    )
    assert refused.status_code == 400
    assert await _tasks(client, people["clerk"]) == []
    found = (await client.get("/api/tasks", params={"scope": "unassigned"})).json()["items"]
    assert [t["node"] for t in found] == ["approve"]
    timeline = (await client.get(f"/api/flow-instances/{instance}")).json()["timeline"]
    assert "task_unassigned" in [entry["kind"] for entry in timeline]
    handed = await client.post(f"/api/tasks/{found[0]['id']}/delegate", json={"user": "bob"})
    assert handed.status_code == 200, handed.text
    (bobs,) = await _tasks(client, people["bob"])
    assert bobs["id"] == found[0]["id"]


async def test_a_flow_a_rule_started_is_not_the_writers_to_cancel(
    client: httpx.AsyncClient, people: dict[str, TestUser]
) -> None:
    rule = {"key": "auto", "on": {"form": "request", "event": "created"},
            "then": [{"type": "start_flow", "flow": "approval"}]}  # fmt: skip
    await _install(client, rule)
    answer = await client.post(
        f"/api/records/{APP}/request", json={"data": {"subject": "Desk"}},
        headers=people["clerk"].headers,
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    (instance,) = (await client.get("/api/flow-instances", params={"app": APP})).json()["items"]
    assert instance["started_by"] is None
    refused = await client.post(
        f"/api/flow-instances/{instance['id']}/cancel", json={}, headers=people["clerk"].headers
    )
    assert refused.status_code in (403, 404)
    assert (await client.get(f"/api/flow-instances/{instance['id']}")).json()["status"] == "running"
