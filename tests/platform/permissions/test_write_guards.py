"""What a write may not do with fields a role may not change, and with relations.

- A read-only field can be sent back with the value it holds (clients send whole records),
  but never changed — and clearing it (``null``, ``""``, ``[]``) is a change when it holds
  a value. On create, "the value it holds" is the value it would get anyway: its default,
  or nothing.
- A relation may only point at a record the writer could read: through the action and the
  row filter of their read grant on the target form. A record they cannot read gets the same
  answer as an id that does not exist. Pointers already stored are not re-checked on an
  update that leaves them alone.

Both on SQLite and PostgreSQL (the ``client`` fixture runs on each).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.platform.permissions.helpers import as_user, make_user

APP = "ward"
SAME_DEPARTMENT = {"==": [{"var": "department"}, {"var": "$user.department"}]}
TAGS = [{"value": "a"}, {"value": "b"}]
PRIORITIES = [{"value": "low"}, {"value": "high"}]


def definition() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "visit",
            f.field("department", required=True),
            f.field("diagnosis"),
            f.field("fee", "number"),
            f.field("seen_on", "date"),
            f.field("tags", "multiselect", options=TAGS),
            f.field("priority", "select", options=PRIORITIES, default="low"),
            f.field("note"),
        ),
        f.form(
            "follow_up",
            f.field("visit", "relation", target="visit"),
            f.field("department", required=True),
            f.field("note"),
        ),
        roles=[{"key": "nurse"}, {"key": "doctor"}, {"key": "clerk"}],
        permissions=[
            {
                "form": "visit",
                "roles": ["nurse"],
                "actions": ["create", "read", "update"],
                "row_filter": SAME_DEPARTMENT,
                "read_only_fields": ["diagnosis", "fee", "seen_on", "tags", "priority"],
            },
            {
                "form": "visit",
                "roles": ["doctor"],
                "actions": ["read", "update"],
                "row_filter": SAME_DEPARTMENT,
            },
            {
                "form": "follow_up",
                "roles": ["doctor", "clerk"],
                "actions": ["create", "read", "update"],
            },
        ],
    )


FULL = {
    "department": "surgery",
    "diagnosis": "angina",
    "fee": 120.5,
    "seen_on": "2026-11-20",
    "tags": ["a"],
    "priority": "high",
}


@pytest.fixture
async def ward(client: httpx.AsyncClient) -> dict[str, str]:
    """The app; a surgery and a dental visit (ids by department)."""
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    ids = {}
    for department in ("surgery", "dental"):
        response = await client.post(
            f"/api/records/{APP}/visit", json={"data": {**FULL, "department": department}}
        )
        assert response.status_code == 201, response.text
        ids[department] = response.json()["id"]
    return ids


async def caller(client: httpx.AsyncClient, name: str, role: str) -> httpx.AsyncClient:
    token = await make_user(client, name, roles={APP: [role]}, attributes={"department": "surgery"})
    return as_user(client, token)


def refused(response: httpx.Response) -> set[tuple[str, str]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {(e["path"], e["code"]) for e in response.json()["errors"]}


# -- read-only fields -------------------------------------------------------------------


@pytest.mark.parametrize("clearing", [None, "", []], ids=["null", "empty-text", "empty-list"])
async def test_a_read_only_field_cannot_be_erased(
    client: httpx.AsyncClient, ward: dict[str, str], clearing: Any
) -> None:
    url = f"/api/records/{APP}/visit/{ward['surgery']}"
    async with await caller(client, "nurse", "nurse") as nurse:
        for key in ("diagnosis", "fee", "seen_on", "tags", "priority"):
            response = await nurse.patch(url, json={"data": {key: clearing}})
            assert refused(response) == {(f"/data/{key}", "read_only")}, key
            assert "read-only" in response.json()["errors"][0]["message"]
        # several at once: every one is named, nothing is written
        response = await nurse.patch(url, json={"data": {"diagnosis": None, "fee": None}})
        assert refused(response) == {("/data/diagnosis", "read_only"), ("/data/fee", "read_only")}
    stored = (await client.get(url)).json()
    assert {key: stored["data"][key] for key in FULL} == {**FULL, "department": "surgery"}
    assert stored["version"] == 1


async def test_a_read_only_field_may_be_sent_back_as_it_is(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    url = f"/api/records/{APP}/visit/{ward['surgery']}"
    async with await caller(client, "nurse", "nurse") as nurse:
        whole = (await nurse.get(url)).json()["data"]
        response = await nurse.patch(url, json={"data": {**whole, "note": "checked"}})
        assert response.status_code == 200, response.text
        # the same value in another spelling is the same stored value
        same = await nurse.patch(url, json={"data": {"seen_on": "2026-11-20", "fee": 120.50}})
        assert same.status_code == 200, same.text
        changed = await nurse.patch(url, json={"data": {"diagnosis": "flu"}})
        assert refused(changed) == {("/data/diagnosis", "read_only")}
    # a read-only field that holds nothing may be "cleared" (nothing changes)
    empty = await client.post(f"/api/records/{APP}/visit", json={"data": {"department": "surgery"}})
    async with await caller(client, "nurse2", "nurse") as nurse:
        url = f"/api/records/{APP}/visit/{empty.json()['id']}"
        response = await nurse.patch(
            url, json={"data": {"diagnosis": None, "tags": [], "fee": "", "note": "x"}}
        )
        assert response.status_code == 200, response.text
        data = response.json()["data"]
        assert data.pop("tags", []) == []  # empty either way
        assert data == {"department": "surgery", "priority": "low", "note": "x"}


async def test_on_create_a_read_only_field_gets_its_default_and_nothing_else(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    base = f"/api/records/{APP}/visit"
    async with await caller(client, "nurse", "nurse") as nurse:
        made = await nurse.post(base, json={"data": {"department": "surgery", "note": "n"}})
        assert made.status_code == 201, made.text
        assert made.json()["data"]["priority"] == "low"  # the default
        # sending the default itself, or nothing for a field without default, is tolerated
        same = await nurse.post(
            base, json={"data": {"department": "surgery", "priority": "low", "diagnosis": None}}
        )
        assert same.status_code == 201, same.text
        # a value of one's own, or suppressing the default with null, is not
        for data, key in [
            ({"diagnosis": "flu"}, "diagnosis"),
            ({"priority": None}, "priority"),
            ({"priority": "high"}, "priority"),
            ({"tags": ["a"]}, "tags"),
        ]:
            response = await nurse.post(base, json={"data": {"department": "surgery", **data}})
            assert refused(response) == {(f"/data/{key}", "read_only")}, data
    listed = (await client.get(base, params={"count": "true"})).json()
    assert listed["count"] == 4  # two seeded, two made by the nurse


# -- relations --------------------------------------------------------------------------


async def test_a_relation_cannot_point_at_a_record_the_writer_cannot_read(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    base = f"/api/records/{APP}/follow_up"
    async with await caller(client, "doctor", "doctor") as doctor:
        # the doctor cannot read the dental visit: 404, as for an id that does not exist
        assert (await doctor.get(f"/api/records/{APP}/visit/{ward['dental']}")).status_code == 404
        hidden = await doctor.post(
            base, json={"data": {"visit": ward["dental"], "department": "surgery"}}
        )
        missing = await doctor.post(
            base, json={"data": {"visit": "0" * 32, "department": "surgery"}}
        )
        assert refused(hidden) == refused(missing) == {("/data/visit", "relation")}
        message = hidden.json()["errors"][0]["message"]
        assert message == f"There is no Visit record with id '{ward['dental']}'."
        assert missing.json()["errors"][0]["message"].replace("0" * 32, ward["dental"]) == message
        # a visit of the doctor's own department is fine
        own = await doctor.post(
            base, json={"data": {"visit": ward["surgery"], "department": "surgery"}}
        )
        assert own.status_code == 201, own.text
        # and an update cannot re-point it at the dental visit either
        moved = await doctor.patch(
            f"{base}/{own.json()['id']}", json={"data": {"visit": ward["dental"]}}
        )
        assert refused(moved) == {("/data/visit", "relation")}
    # nothing pointing at the dental visit was written
    items = (await client.get(base)).json()["items"]
    assert [item["data"]["visit"] for item in items] == [ward["surgery"]]


async def test_a_role_without_read_on_the_target_cannot_point_at_any_record(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    async with await caller(client, "clerk", "clerk") as clerk:
        response = await clerk.post(
            f"/api/records/{APP}/follow_up",
            json={"data": {"visit": ward["surgery"], "department": "surgery"}},
        )
        assert refused(response) == {("/data/visit", "relation")}
        # the form can still be used without the relation
        response = await clerk.post(
            f"/api/records/{APP}/follow_up", json={"data": {"department": "surgery"}}
        )
        assert response.status_code == 201, response.text


async def test_a_stored_pointer_the_writer_cannot_read_survives_other_changes(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    """An admin linked the follow-up to the dental visit; the doctor edits the note only.
    The pointer is not the doctor's change, so it is not re-validated."""
    made = await client.post(
        f"/api/records/{APP}/follow_up",
        json={"data": {"visit": ward["dental"], "department": "surgery"}},
    )
    assert made.status_code == 201, made.text
    url = f"/api/records/{APP}/follow_up/{made.json()['id']}"
    async with await caller(client, "doctor", "doctor") as doctor:
        response = await doctor.patch(url, json={"data": {"note": "called back"}})
        assert response.status_code == 200, response.text
        # sending the pointer back unchanged is not a change either
        whole = response.json()["data"]
        again = await doctor.patch(url, json={"data": {**whole, "note": "called twice"}})
        assert again.status_code == 200, again.text
    assert (await client.get(url)).json()["data"]["visit"] == ward["dental"]


async def test_a_platform_admin_is_not_bound_by_row_filters(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    response = await client.post(
        f"/api/records/{APP}/follow_up",
        json={"data": {"visit": ward["dental"], "department": "surgery"}},
    )
    assert response.status_code == 201, response.text
