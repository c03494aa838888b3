"""A rule's task for a role narrowed by ``where`` (docs/rules.md, "Actions"), on SQLite and
PostgreSQL: a call for a branch's patient goes to that branch's front desk only (each
candidate's attributes are ``user.x``, the record's values ``record.x``), a record without
a branch to every front desk, nobody matching leaves the task unassigned, and the import
refuses a ``where`` without a role at its pointer."""

from __future__ import annotations

from typing import Any

import httpx

from tests import factories as f
from tests.conftest import Users

APP = "desk"
SAME_BRANCH = {
    "or": [
        {"!": {"var": "record.branch"}},
        {"==": [{"var": "user.branch"}, {"var": "record.branch"}]},
    ]
}


def desk(**task: Any) -> dict[str, Any]:
    call = {"type": "create_task", "title": "Call {{ record.name }}", **task}
    return f.app(
        APP,
        f.form("patient", f.field("name", required=True), f.field("branch"), title_field="name"),
        roles=[{"key": "front_desk"}],
        permissions=[{"form": "patient", "roles": ["front_desk"], "actions": ["read"]}],
        rules=[{"key": "call", "on": {"form": "patient", "event": "created"}, "then": [call]}],
    )


async def inbox(client: httpx.AsyncClient, who: str, users: Users) -> list[str]:
    token = await users.token(who)
    found = await client.get(
        "/api/tasks", params={"app": APP}, headers={"Authorization": f"Bearer {token}"}
    )
    assert found.status_code == 200, found.text
    return sorted(task["title"] for task in found.json()["items"])


async def test_a_task_goes_to_the_role_members_its_where_admits(
    client: httpx.AsyncClient, users: Users
) -> None:
    installed = await client.post(
        "/api/apps/import", json=desk(role="front_desk", where=SAME_BRANCH)
    )
    assert installed.status_code == 201, installed.text
    for name, branch in (("desk_xh", "XH"), ("desk_pd", "PD"), ("desk_none", None)):
        attributes = {"branch": branch} if branch else {}
        await users.create(name, roles={APP: ["front_desk"]}, attributes=attributes)
    for name, branch in (("Chen", "XH"), ("Zhao", "PD"), ("Nobody's", None), ("Far", "HK")):
        data = {"name": name, **({"branch": branch} if branch else {})}
        made = await client.post(f"/api/records/{APP}/patient", json={"data": data})
        assert made.status_code == 201, made.text
    assert await inbox(client, "desk_xh", users) == ["Call Chen", "Call Nobody's"]
    assert await inbox(client, "desk_pd", users) == ["Call Nobody's", "Call Zhao"]
    assert await inbox(client, "desk_none", users) == ["Call Nobody's"]
    # a branch no one works at: the task waits for an admin, in nobody's inbox
    everything = await client.get("/api/tasks", params={"app": APP, "scope": "unassigned"})
    assert everything.status_code == 200, everything.text
    (far,) = [t for t in everything.json()["items"] if t["title"] == "Call Far"]
    assert far["candidates"] == {"roles": [], "users": []}


async def test_where_needs_a_role(client: httpx.AsyncClient) -> None:
    refused = await client.post("/api/apps/import", json=desk(user="someone", where=SAME_BRANCH))
    assert refused.status_code == 422, refused.text
    assert [e["path"] for e in refused.json()["errors"]] == ["/rules/0/then/0/where"]
    unknown = await client.post(
        "/api/apps/import",
        json=desk(role="front_desk", where={"==": [{"var": "record.wing"}, "x"]}),
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["path"] == "/rules/0/then/0/where"
