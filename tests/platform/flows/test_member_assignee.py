"""A flow's user task assigned through a member field: the record's `user` field names the
people themselves (their ids), so the task goes to them — one person, or is offered to each
of several — without a staff form in between. SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx

from tests import factories as f
from tests.conftest import TestUser, Users

APP = "desk"


def app(multiple: bool) -> dict[str, Any]:
    flow = {
        "key": "approval",
        "form": "request",
        "start": {"roles": ["clerk"]},
        "nodes": [
            {"type": "start", "key": "begin"},
            {"type": "user_task", "key": "approve", "title": "Approve {{ record.subject }}",
             "assignee": {"field": "owner"}, "outcomes": [{"key": "yes"}]},
            {"type": "end", "key": "done"},
        ],
        "edges": [
            {"from": "begin", "to": "approve"},
            {"from": "approve", "to": "done", "outcome": "yes"},
        ],
    }  # fmt: skip
    return f.app(
        APP,
        f.form("request", f.field("subject", required=True),
               f.field("owner", "user", multiple=multiple), title_field="subject"),
        roles=[{"key": "clerk"}],
        permissions=[{"form": "*", "roles": ["clerk"], "actions": ["read", "create", "update"]}],
        flows=[flow],
    )  # fmt: skip


async def tasks(client: httpx.AsyncClient, who: TestUser) -> list[dict[str, Any]]:
    answer = await client.get("/api/tasks", params={"app": APP}, headers=who.headers)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["items"])


async def start(client: httpx.AsyncClient, who: TestUser, owner: Any) -> None:
    made = await client.post(
        f"/api/records/{APP}/request",
        json={"data": {"subject": "Laptop", "owner": owner}},
        headers=who.headers,
    )
    assert made.status_code == 201, made.text
    started = await client.post(
        f"/api/flows/{APP}/approval/start",
        json={"record_id": made.json()["id"]},
        headers=who.headers,
    )
    assert started.status_code == 201, started.text


async def test_the_task_goes_to_the_person_in_the_member_field(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=app(False))).status_code == 201
    clerk = await users.create("clerk", roles={APP: ["clerk"]})
    ann = await users.create("ann", roles={APP: ["clerk"]}, display_name="Ann An")
    bob = await users.create("bob", roles={APP: ["clerk"]})
    await start(client, clerk, ann.id)
    [task] = await tasks(client, ann)
    assert task["title"] == "Approve Laptop"
    assert await tasks(client, bob) == []


async def test_several_people_are_each_offered_the_task(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=app(True))).status_code == 201
    clerk = await users.create("clerk", roles={APP: ["clerk"]})
    ann = await users.create("ann", roles={APP: ["clerk"]})
    bob = await users.create("bob", roles={APP: ["clerk"]})
    await start(client, clerk, [ann.id, bob.id])
    assert len(await tasks(client, ann)) == 1
    assert len(await tasks(client, bob)) == 1
    assert await tasks(client, clerk) == []
