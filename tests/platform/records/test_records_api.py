"""The generic record API end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests import factories as f

BASE = "/api/records/demo/contact"


@pytest.fixture
async def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.post("/api/apps/import", json=f.app())
    assert response.status_code == 201, response.text
    return client


async def create(api: httpx.AsyncClient, **data: Any) -> dict[str, Any]:
    response = await api.post(BASE, json={"data": data})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_create_read_shape_etag_and_location(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json={"data": {"name": "Ann", "age": 40}})
    assert response.status_code == 201
    record = response.json()
    assert set(record) == {
        "id",
        "app",
        "form",
        "version",
        "form_version",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "data",
    }
    assert record["data"] == {"name": "Ann", "age": 40, "age_next_year": 41}
    assert record["version"] == 1 and record["created_at"] == "2026-11-23T02:30:00Z"
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"{BASE}/{record['id']}"
    read = await api.get(response.headers["location"])
    assert read.json() == record
    assert (
        await api.get(response.headers["location"], headers={"If-None-Match": '"1"'})
    ).status_code == 304


async def test_validation_lists_every_failing_field(api: httpx.AsyncClient) -> None:
    response = await api.post(
        BASE, json={"data": {"age": 200, "phone": "call me", "tags": ["z"], "nope": 1}}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "/problems/validation-failed"
    by_field = {e["field"]: e for e in body["errors"]}
    assert set(by_field) >= {"name", "age", "phone", "tags", "nope"}
    assert by_field["name"]["code"] == "required" and by_field["name"]["path"] == "/data/name"
    assert by_field["nope"]["code"] == "unknown_field"
    assert (await api.get(BASE, params={"count": "true"})).json()["count"] == 0


async def test_hidden_fields_are_not_required_and_keep_their_values(
    api: httpx.AsyncClient,
) -> None:
    person = await create(api, name="Ann", kind="person")
    assert "company" not in person["data"]
    missing = await api.post(BASE, json={"data": {"name": "Co", "kind": "company"}})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["company"]
    company = await create(api, name="Co", kind="company", company="ACME")
    # hiding keeps the value (no silent loss, docs/forms.md "Visibility"); null clears it
    url = f"{BASE}/{company['id']}"
    changed = await api.patch(url, json={"data": {"kind": "person"}})
    assert changed.status_code == 200
    assert changed.json()["data"]["company"] == "ACME"
    cleared = await api.patch(
        url, json={"data": {"company": None}}, headers={"If-Match": changed.headers["etag"]}
    )
    assert cleared.status_code == 200, cleared.text
    assert "company" not in cleared.json()["data"]


async def test_computed_fields_cannot_be_written(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json={"data": {"name": "Ann", "age_next_year": 3}})
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "read_only"


async def test_unique_values_are_enforced_and_freed_on_delete(api: httpx.AsyncClient) -> None:
    first = await create(api, name="Ann", phone="+86 139 0000 0001")
    clash = await api.post(BASE, json={"data": {"name": "Bob", "phone": "+86 139 0000 0001"}})
    assert clash.status_code == 422
    assert clash.json()["errors"][0]["code"] == "unique"
    assert (await api.delete(f"{BASE}/{first['id']}")).status_code == 204
    await create(api, name="Bob", phone="+86 139 0000 0001")


async def test_concurrent_creates_of_one_unique_value_cannot_both_succeed(
    api: httpx.AsyncClient,
) -> None:
    responses = await asyncio.gather(
        *[
            api.post(BASE, json={"data": {"name": f"N{i}", "phone": "+1 555 0100"}})
            for i in range(6)
        ]
    )
    codes = sorted(r.status_code for r in responses)
    assert codes.count(201) == 1
    # one status for a duplicate whatever the timing: the service's own check or the index
    assert codes == [201, 422, 422, 422, 422, 422]
    for response in responses:
        if response.status_code == 422:
            assert [e["code"] for e in response.json()["errors"]] == ["unique"]
    listing = await api.get(BASE, params={"count": "true"})
    assert listing.json()["count"] == 1


async def test_relation_must_point_at_an_existing_record(client: httpx.AsyncClient) -> None:
    await client.post("/api/apps/import", json=f.crm_app())
    contact = (await client.post("/api/records/crm/contact", json={"data": {"name": "Ann"}})).json()
    bad = await client.post(
        "/api/records/crm/deal", json={"data": {"title": "X", "contact": "0" * 32}}
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0] == {
        "field": "contact",
        "path": "/data/contact",
        "code": "relation",
        "message": bad.json()["errors"][0]["message"],
    }
    ok = await client.post(
        "/api/records/crm/deal", json={"data": {"title": "X", "contact": contact["id"]}}
    )
    assert ok.status_code == 201
    # a record of another form with that id does not count
    deal_id = ok.json()["id"]
    wrong_form = await client.post(
        "/api/records/crm/deal", json={"data": {"title": "Y", "contact": deal_id}}
    )
    assert wrong_form.status_code == 422


async def test_relations_inside_table_rows_are_checked_on_create_and_update(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/apps/import", json=f.crm_app())
    contact = (await client.post("/api/records/crm/contact", json={"data": {"name": "Ann"}})).json()
    missing = "0" * 32
    bad = await client.post(
        "/api/records/crm/deal",
        json={
            "data": {
                "title": "X",
                "contact": contact["id"],
                "referrals": [{"who": contact["id"]}, {"who": missing}],
            }
        },
    )
    assert bad.status_code == 422
    [error] = bad.json()["errors"]
    assert (error["field"], error["path"], error["code"]) == (
        "referrals",
        "/data/referrals/1/who",
        "relation",
    )
    deal = (
        await client.post(
            "/api/records/crm/deal",
            json={
                "data": {
                    "title": "X",
                    "contact": contact["id"],
                    "referrals": [{"who": contact["id"]}],
                }
            },
        )
    ).json()
    patched = await client.patch(
        f"/api/records/crm/deal/{deal['id']}",
        json={"data": {"referrals": [{"who": contact["id"]}, {"who": missing, "note": "typo"}]}},
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["path"] == "/data/referrals/1/who"


async def test_patch_is_partial_versioned_and_guarded_by_if_match(api: httpx.AsyncClient) -> None:
    record = await create(api, name="Ann", age=30, score=1.5)
    url = f"{BASE}/{record['id']}"
    response = await api.patch(url, json={"data": {"age": 31}}, headers={"If-Match": '"1"'})
    assert response.status_code == 200
    updated = response.json()
    assert updated["version"] == 2 and response.headers["etag"] == '"2"'
    assert updated["data"] == {"name": "Ann", "age": 31, "score": 1.5, "age_next_year": 32}

    stale = await api.patch(url, json={"data": {"age": 99}}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await api.get(url)).json()["data"]["age"] == 31

    cleared = await api.patch(url, json={"data": {"score": None}})
    assert "score" not in cleared.json()["data"]

    invalid = await api.patch(url, json={"data": {"age": -1}})
    assert invalid.status_code == 422
    assert (await api.get(url)).json()["version"] == 3


async def test_history_records_every_version_with_actor_and_changes(
    api: httpx.AsyncClient,
) -> None:
    record = await create(api, name="Ann", age=30)
    url = f"{BASE}/{record['id']}"
    await api.patch(url, json={"data": {"age": 31, "vip": True}})
    await api.delete(url, headers={"If-Match": '"2"'})
    history = await api.get(f"{url}/history")
    assert history.status_code == 404  # a deleted record is gone from the API

    other = await create(api, name="Bob")
    other_url = f"{BASE}/{other['id']}"
    await api.patch(other_url, json={"data": {"age": 5}})
    entries = (await api.get(f"{other_url}/history")).json()
    assert [(e["version"], e["operation"]) for e in entries] == [(1, "create"), (2, "update")]
    assert entries[1]["changed"] == ["age", "age_next_year"]
    assert entries[1]["actor"] == "admin"  # the signed-in caller (the client fixture)
    assert entries[0]["data"] == {"name": "Bob"}


async def test_delete_is_soft_and_guarded(api: httpx.AsyncClient) -> None:
    record = await create(api, name="Ann")
    url = f"{BASE}/{record['id']}"
    assert (await api.delete(url, headers={"If-Match": '"7"'})).status_code == 412
    assert (await api.delete(url)).status_code == 204
    assert (await api.get(url)).status_code == 404
    assert (await api.delete(url)).status_code == 404
    assert (await api.get(BASE, params={"count": "true"})).json()["count"] == 0


async def test_list_filter_sort_fields_count(api: httpx.AsyncClient) -> None:
    for name, age, tags in [
        ("Ann", 30, ["a"]),
        ("Bob", 20, ["b"]),
        ("Cy", None, ["a", "c"]),
        ("Di", 45, []),
    ]:
        data: dict[str, Any] = {"name": name, "tags": tags}
        if age is not None:
            data["age"] = age
        await create(api, **data)
    params = {
        "filter": json.dumps({">=": [{"var": "age"}, 25]}),
        "sort": "-age",
        "fields": "name",
        "count": "true",
    }
    page = (await api.get(BASE, params=params)).json()
    assert [r["data"] for r in page["items"]] == [{"name": "Di"}, {"name": "Ann"}]
    assert page["count"] == 2 and page["next_cursor"] is None

    tagged = (
        await api.get(
            BASE, params={"filter": json.dumps({"in": ["a", {"var": "tags"}]}), "sort": "name"}
        )
    ).json()
    assert [r["data"]["name"] for r in tagged["items"]] == ["Ann", "Cy"]

    nulls_last = (await api.get(BASE, params={"sort": "age"})).json()
    assert [r["data"]["name"] for r in nulls_last["items"]] == ["Bob", "Ann", "Di", "Cy"]

    body = {"filter": {"missing": ["age"]}, "count": True}
    queried = (await api.post(f"{BASE}/query", json=body)).json()
    assert queried["count"] == 1 and queried["items"][0]["data"]["name"] == "Cy"


@pytest.mark.parametrize("sort", ["id", "-age", "name,-score", "-created_at", "vip,age"])
async def test_cursor_pagination_walks_every_record_once_in_order(
    api: httpx.AsyncClient, sort: str
) -> None:
    expected = []
    for i in range(23):
        data: dict[str, Any] = {"name": f"P{i % 5}"}
        if i % 3:
            data["age"] = i % 7
        if i % 4:
            data["score"] = i / 2
        if i % 2:
            data["vip"] = bool(i % 3)
        expected.append((await create(api, **data))["id"])
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"sort": sort, "limit": 4}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get(BASE, params=params)).json()
        seen += [r["id"] for r in page["items"]]
        pages += 1
        cursor = page.get("next_cursor")
        if not cursor:
            break
    assert pages == 6
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen))
    everything = (await api.get(BASE, params={"sort": sort, "limit": 100})).json()
    assert [r["id"] for r in everything["items"]] == seen


@pytest.mark.parametrize(
    ("params", "status", "parameter"),
    [
        ({"filter": "{not json"}, 400, "filter"),
        ({"filter": json.dumps({"==": [{"var": "nope"}, 1]})}, 400, "filter"),
        ({"filter": json.dumps({"map": [{"var": "tags"}, 1]})}, 400, "filter"),
        ({"sort": "nope"}, 400, "sort"),
        ({"sort": "tags"}, 400, "sort"),
        ({"fields": "name,nope"}, 400, "fields"),
        ({"limit": "0"}, 400, "limit"),
        ({"limit": "100000"}, 400, "limit"),
        ({"cursor": "garbage!!"}, 400, "cursor"),
        ({"limit": "ten"}, 422, None),
    ],
)
async def test_bad_list_parameters_are_client_errors(
    api: httpx.AsyncClient, params: dict[str, str], status: int, parameter: str | None
) -> None:
    response = await api.get(BASE, params=params)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and body["detail"]
    if parameter:
        assert body["errors"][0]["parameter"] == parameter


async def test_cursor_from_another_sort_is_refused(api: httpx.AsyncClient) -> None:
    for i in range(3):
        await create(api, name=f"N{i}")
    cursor = (await api.get(BASE, params={"limit": 1})).json()["next_cursor"]
    response = await api.get(BASE, params={"limit": 1, "sort": "-name", "cursor": cursor})
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "status"),
    [
        ("post", BASE, {"content": b"{oops", "headers": {"content-type": "application/json"}}, 400),
        ("post", BASE, {"json": {"data": [1, 2]}}, 422),
        ("post", BASE, {"json": {"name": "no data wrapper"}}, 422),
        ("post", BASE, {"json": {"data": {"name": "x" * 300_000}}}, 413),
        ("post", "/api/records/demo/nope", {"json": {"data": {}}}, 404),
        ("post", "/api/records/nope/contact", {"json": {"data": {}}}, 404),
        ("get", f"{BASE}/not-an-id", {}, 404),
        ("get", f"{BASE}/{'f' * 32}", {}, 404),
        ("patch", f"{BASE}/{'f' * 32}", {"json": {"data": {}}}, 404),
        ("get", "/api/records/demo/nope", {}, 404),
        ("put", BASE, {"json": {}}, 405),
    ],
)
async def test_bad_requests_never_cause_a_server_error(
    api: httpx.AsyncClient, method: str, url: str, kwargs: dict[str, Any], status: int
) -> None:
    response = await api.request(method.upper(), url, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["status"] == status


async def test_chunked_oversized_body_is_refused(api: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(30):
            yield b" " * 10_000

    response = await api.post(BASE, content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
