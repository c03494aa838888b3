"""A public link submits with its creator's grant as it is when the link is used.

The link holder can do no more than the user who made the link still may: the create row
filter, the creator's hidden and read-only fields, read access to what relations point at;
and only the fields the link offers. A creator who was disabled or lost the grant makes the
link answer 410. The record is still created by ``public-link:<id>``. On both databases.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.platform.permissions.helpers import as_user, make_user

APP = "clinic"
SAME_DEPARTMENT = {"==": [{"var": "department"}, {"var": "$user.department"}]}
DEPARTMENTS = [{"value": "general"}, {"value": "surgery"}]


def definition() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("details", "section"),
            f.field("name", required=True),
            f.field("phone", "phone"),
            f.field("tier", "select", options=[{"value": "basic"}, {"value": "vip"}]),
            f.field("clinical", "section"),
            f.field("notes", "textarea"),
            f.field("id_number"),
            f.field("photo", "image"),
            f.field("tag_count", "computed", result_type="integer", formula={"+": [1, 1]}),
        ),
        f.form("visit", f.field("department", "select", options=DEPARTMENTS, required=True)),
        f.form(
            "follow_up",
            f.field("visit", "relation", target="visit"),
            f.field("department", "select", options=DEPARTMENTS, required=True),
            f.field("note"),
        ),
        roles=[{"key": "front_desk"}, {"key": "nurse"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["front_desk"],
                "actions": ["create", "read", "update"],
                "hidden_fields": ["notes", "id_number"],
                "read_only_fields": ["tier"],
            },
            {
                "form": "follow_up",
                "roles": ["nurse"],
                "actions": ["create", "read"],
                "row_filter": SAME_DEPARTMENT,
            },
            {
                "form": "visit",
                "roles": ["nurse"],
                "actions": ["read"],
                "row_filter": SAME_DEPARTMENT,
            },
        ],
    )


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> dict[str, str]:
    """The app, a visit per department, and tokens of a front-desk user and a nurse."""
    installed = await client.post("/api/apps/import", json=definition())
    assert installed.status_code == 201, installed.text
    made = {}
    for department in ("general", "surgery"):
        response = await client.post(
            f"/api/records/{APP}/visit", json={"data": {"department": department}}
        )
        made[department] = response.json()["id"]
    made["desk"] = await make_user(client, "desk", roles={APP: ["front_desk"]})
    made["nurse"] = await make_user(
        client, "nurse", roles={APP: ["nurse"]}, attributes={"department": "general"}
    )
    return made


async def link(
    client: httpx.AsyncClient, token: str, form: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    async with as_user(client, token) as user:
        return await user.post(f"/api/apps/{APP}/forms/{form}/links", json=body or {})


async def records(client: httpx.AsyncClient, form: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get(f"/api/records/{APP}/{form}")).json()["items"]
    return items


def errors(response: httpx.Response) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in response.json()["errors"]]


async def test_a_submission_stays_inside_the_creators_rows(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    made = await link(client, clinic["nurse"], "follow_up")
    assert made.status_code == 201, made.text
    url = f"/api/public/{made.json()['token']}"
    outside = await anon_client.post(url, json={"data": {"department": "surgery"}})
    assert outside.status_code == 403, outside.text
    assert outside.headers["content-type"].startswith("application/problem+json")
    assert "nurse" not in outside.text  # the holder is not told whose grant refused it
    # a relation to a visit the nurse cannot read is refused like a missing one
    hidden = await anon_client.post(
        url, json={"data": {"department": "general", "visit": clinic["surgery"]}}
    )
    assert hidden.status_code == 422 and errors(hidden) == [("/data/visit", "relation")]
    assert await records(client, "follow_up") == []
    # the refusals did not use the link up
    inside = await anon_client.post(
        url, json={"data": {"department": "general", "visit": clinic["general"]}}
    )
    assert inside.status_code == 201, inside.text
    [record] = await records(client, "follow_up")
    assert record["created_by"] == f"public-link:{made.json()['id']}"
    assert record["data"] == {"department": "general", "visit": clinic["general"]}


async def test_hidden_read_only_and_unfillable_fields_are_not_offered_nor_accepted(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    made = await link(client, clinic["desk"], "patient")
    assert made.status_code == 201, made.text
    assert made.json()["fields"] is None  # default: what the creator may write
    url = f"/api/public/{made.json()['token']}"
    form = (await anon_client.get(url)).json()["form"]
    # the "clinical" section is left out with its fields; computed and file fields too
    assert [field["key"] for field in form["fields"]] == ["details", "name", "phone"]
    for key in ("notes", "id_number", "tier", "photo"):
        response = await anon_client.post(url, json={"data": {"name": "Li", key: "x"}})
        assert response.status_code == 422, key
        assert errors(response) == [(f"/data/{key}", "forbidden_field")]
    # an unknown key gets the very same answer as a hidden one
    unknown = await anon_client.post(url, json={"data": {"name": "Li", "nonsense": "x"}})
    hidden = await anon_client.post(url, json={"data": {"name": "Li", "notes": "x"}})
    assert unknown.json()["errors"][0]["message"] == hidden.json()["errors"][0]["message"]
    assert await records(client, "patient") == []
    sent = await anon_client.post(url, json={"data": {"name": "Li", "phone": "13900000001"}})
    assert sent.status_code == 201, sent.text


async def test_a_link_offers_only_its_declared_fields(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    made = await link(client, clinic["desk"], "patient", {"fields": ["name"]})
    assert made.status_code == 201, made.text
    assert made.json()["fields"] == ["name"]
    url = f"/api/public/{made.json()['token']}"
    form = (await anon_client.get(url)).json()["form"]
    assert [field["key"] for field in form["fields"]] == ["details", "name"]
    phone = await anon_client.post(url, json={"data": {"name": "Li", "phone": "13900000001"}})
    assert errors(phone) == [("/data/phone", "forbidden_field")]
    assert (await anon_client.post(url, json={"data": {"name": "Li"}})).status_code == 201


@pytest.mark.parametrize(
    ("fields", "pointer", "says"),
    [
        (["name", "notes"], "/fields/1", "not a field your role may write"),
        (["name", "tier"], "/fields/1", "not a field your role may write"),
        (["name", "nope"], "/fields/1", "not a field of patient"),
        (["name", "photo"], "/fields/1", "image field"),
        (["name", "name"], "/fields/1", "listed twice"),
        (["details"], "/fields/0", "not a field of patient"),
        (["phone"], "/fields", "name is required"),
        ([], "/fields", "non-empty list"),
        ("name", "/fields", "non-empty list"),
    ],
)
async def test_declared_fields_are_checked_when_the_link_is_made(
    client: httpx.AsyncClient, clinic: dict[str, str], fields: Any, pointer: str, says: str
) -> None:
    response = await link(client, clinic["desk"], "patient", {"fields": fields})
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["path"] == pointer and says in error["message"]


async def test_the_creators_current_grant_decides(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    urls = []
    for _ in range(3):
        made = await link(client, clinic["nurse"], "follow_up")
        urls.append(f"/api/public/{made.json()['token']}")
    # the nurse moves to surgery: her links now take surgery follow-ups, not general ones
    moved = await client.patch("/api/users/nurse", json={"attributes": {"department": "surgery"}})
    assert moved.status_code == 200, moved.text
    general = await anon_client.post(urls[0], json={"data": {"department": "general"}})
    assert general.status_code == 403
    surgery = await anon_client.post(urls[0], json={"data": {"department": "surgery"}})
    assert surgery.status_code == 201, surgery.text
    # losing the role (the create grant) makes every link of hers stop working: 410
    assert (await client.put("/api/users/nurse/roles", json={})).status_code == 200
    for method in ("GET", "POST"):
        response = await anon_client.request(
            method, urls[1], json={"data": {"department": "surgery"}}
        )
        assert response.status_code == 410, (method, response.text)
        assert response.json()["detail"] == "This link no longer accepts submissions."
    # given back, the grant works again; disabled, the account's links stop again
    assert (await client.put("/api/users/nurse/roles", json={APP: ["nurse"]})).status_code == 200
    assert (await anon_client.get(urls[1])).status_code == 200
    assert (await client.patch("/api/users/nurse", json={"disabled": True})).status_code == 200
    assert (await anon_client.get(urls[1])).status_code == 410
    refused = await anon_client.post(urls[2], json={"data": {"department": "surgery"}})
    assert refused.status_code == 410
    assert len(await records(client, "follow_up")) == 1


async def test_a_bound_record_the_creator_can_no_longer_read_ends_the_link(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    made = await link(
        client,
        clinic["nurse"],
        "follow_up",
        {"bind": {"field": "visit", "record": clinic["general"]}},
    )
    assert made.status_code == 201, made.text
    url = f"/api/public/{made.json()['token']}"
    assert [f["key"] for f in (await anon_client.get(url)).json()["form"]["fields"]] == [
        "department",
        "note",
    ]
    await client.patch("/api/users/nurse", json={"attributes": {"department": "surgery"}})
    response = await anon_client.post(url, json={"data": {"department": "surgery"}})
    assert response.status_code == 410
    assert clinic["general"] not in response.text


async def test_a_link_made_by_a_platform_admin_still_offers_only_its_fields(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clinic: dict[str, str]
) -> None:
    made = await client.post(
        f"/api/apps/{APP}/forms/patient/links", json={"fields": ["name", "notes"]}
    )
    assert made.status_code == 201, made.text
    url = f"/api/public/{made.json()['token']}"
    id_number = await anon_client.post(url, json={"data": {"name": "Li", "id_number": "1"}})
    assert errors(id_number) == [("/data/id_number", "forbidden_field")]
    sent = await anon_client.post(url, json={"data": {"name": "Li", "notes": "n"}})
    assert sent.status_code == 201, sent.text
    audit = (await client.get("/api/audit", params={"action": "public_link.submitted"})).json()
    [row] = audit["items"]
    assert row["actor"] == f"public-link:{made.json()['id']}"
    assert row["detail"]["creator"] == "admin"
