"""The bulk record API (POST /api/records/{app}/{form}/bulk) on SQLite and PostgreSQL:
all-or-nothing by default with every failing item named, per-item results otherwise, the
size bound, upserts, and the caller's grants applied to each item."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.bench import bench_bulk
from tests.conftest import Users

BASE = "/api/records/demo/contact"
BULK = f"{BASE}/bulk"


@pytest.fixture
async def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    response = await client.post("/api/apps/import", json=f.app())
    assert response.status_code == 201, response.text
    return client


async def count(api: httpx.AsyncClient) -> int:
    body = (await api.get(BASE, params={"count": "true", "limit": 1})).json()
    return int(body["count"])


def creates(n: int, bad: int | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {"op": "create", "data": {"name": f"P{i}", "age": 30, "phone": f"+86 138 0000 {i:04d}"}}
        for i in range(n)
    ]
    if bad is not None:
        items[bad]["data"]["age"] = 400
    return items


async def test_one_bad_item_among_1000_writes_nothing_and_is_named(
    api: httpx.AsyncClient,
) -> None:
    response = await api.post(BULK, json={"items": creates(1000, bad=617)})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["failed_items"] == [617]
    assert [(e["index"], e["path"], e["field"]) for e in body["errors"]] == [
        (617, "/items/617/data/age", "age")
    ]
    assert "nothing was written" in body["detail"]
    assert await count(api) == 0


async def test_non_atomic_writes_the_other_999(api: httpx.AsyncClient) -> None:
    response = await api.post(BULK, params={"atomic": "false"}, json={"items": creates(1000, 5)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["created"], body["failed"]) == (999, 1)
    failed = [r for r in body["results"] if r["status"] >= 400]
    assert [(r["index"], r["errors"][0]["path"]) for r in failed] == [(5, "/items/5/data/age")]
    assert await count(api) == 999
    # one history and one audit row per record, as single writes have
    first = body["results"][0]["id"]
    history = (await api.get(f"{BASE}/{first}/history")).json()
    assert [h["operation"] for h in history] == ["create"]
    audit = await api.get(
        "/api/audit", params={"action": "record.create", "app": "demo", "limit": 1000}
    )
    rows = audit.json()["items"]
    assert len(rows) == 999 and len({row["record_id"] for row in rows}) == 999
    assert {(row["actor"], row["outcome"], row["version"]) for row in rows} == {("admin", "ok", 1)}
    # stored as a single create stores it (on PostgreSQL these rows were COPYed)
    record = (await api.get(f"{BASE}/{first}")).json()
    single = (await api.post(BASE, json={"data": {"name": "P0", "age": 30}})).json()
    assert record["data"] == {**single["data"], "phone": record["data"]["phone"]}
    assert (record["created_at"], record["version"]) == (single["created_at"], 1)
    assert history[0]["data"] == record["data"] and history[0]["at"] == record["created_at"]
    taken = await api.post(BASE, json={"data": {"name": "X", "phone": record["data"]["phone"]}})
    assert taken.status_code == 422  # its unique claim was written too


async def test_every_failing_item_is_listed_with_its_field_errors(api: httpx.AsyncClient) -> None:
    first = await api.post(BASE, json={"data": {"name": "Ann", "phone": "+86 138 1111 2222"}})
    items = [
        {"op": "create", "data": {"age": 20}},  # no name
        {"op": "create", "data": {"name": "Bo", "phone": "+86 138 1111 2222"}},  # taken
        {"op": "create", "data": {"name": "Cy", "phone": "+86 139 0000 0001"}},
        {"op": "create", "data": {"name": "Di", "phone": "+86 139 0000 0001"}},  # twice
        {"op": "update", "id": "0" * 32, "data": {"age": 3}},  # no such record
        {"op": "update", "id": first.json()["id"], "data": {"nope": 1}},
    ]
    response = await api.post(BULK, json={"items": items})
    assert response.status_code == 422
    body = response.json()
    assert body["failed_items"] == [0, 1, 3, 4, 5]
    paths = {(e["index"], e["path"]) for e in body["errors"]}
    assert {(0, "/items/0/data/name"), (1, "/items/1/data/phone"), (3, "/items/3/data/phone"),
            (4, "/items/4"), (5, "/items/5/data/nope")} <= paths  # fmt: skip
    assert await count(api) == 1


async def test_10001_items_are_refused(api: httpx.AsyncClient) -> None:
    items = [{"op": "create", "data": {"name": "x"}}] * 10_001
    response = await api.post(BULK, json={"items": items})
    assert response.status_code in (413, 422)
    assert "10,000" in response.json()["detail"]
    assert await count(api) == 0


async def test_updates_upserts_and_deletes_in_one_call(api: httpx.AsyncClient) -> None:
    made = (await api.post(BULK, json={"items": creates(3)})).json()
    ids = [r["id"] for r in made["results"]]
    items = [
        {"op": "update", "id": ids[0], "data": {"age": 41}, "if_match": '"1"'},
        {"op": "delete", "id": ids[1]},
        {"op": "upsert", "match": "phone", "data": {"phone": "+86 138 0000 0002", "age": 9}},
        {"op": "upsert", "match": "phone", "data": {"name": "New", "phone": "+86 150 0000 0000"}},
        {"op": "upsert", "match": "name", "data": {"name": "x"}},  # not a unique field
    ]
    response = await api.post(BULK, params={"atomic": "false"}, json={"items": items})
    body = response.json()
    assert [r["status"] for r in body["results"]] == [200, 204, 200, 201, 422]
    assert body["results"][2]["id"] == ids[2]
    assert body["results"][4]["errors"][0]["path"] == "/items/4/match"
    assert (await api.get(f"{BASE}/{ids[0]}")).json()["data"]["age"] == 41
    assert (await api.get(f"{BASE}/{ids[1]}")).status_code == 404
    assert (await api.get(f"{BASE}/{ids[2]}")).json()["data"]["age"] == 9
    assert await count(api) == 3
    stale = await api.post(
        BULK,
        json={"items": [{"op": "update", "id": ids[0], "data": {"age": 1}, "if_match": '"1"'}]},
    )
    assert stale.status_code == 422 and stale.json()["errors"][0]["code"] == "precondition-failed"


APP = "clinic"
PATIENTS = f"/api/records/{APP}/patient"
SAME_BRANCH = {"==": [{"var": "branch"}, {"var": "$user.branch"}]}


@pytest.fixture
async def clinic(client: httpx.AsyncClient) -> dict[str, str]:
    document = f.app(
        APP,
        f.form(
            "patient",
            f.field("name", required=True),
            f.field("branch", required=True),
            f.field("id_number"),
            f.field("note"),
        ),
        roles=[{"key": "front_desk"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["front_desk"],
                "actions": ["read", "create", "update"],
                "row_filter": SAME_BRANCH,
                "hidden_fields": ["id_number"],
                "read_only_fields": ["note"],
            }
        ],
    )
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    ids = {}
    for name, branch in [("mine", "pudong"), ("theirs", "xuhui")]:
        response = await client.post(
            PATIENTS, json={"data": {"name": name, "branch": branch, "id_number": "X1"}}
        )
        ids[name] = response.json()["id"]
    return ids


async def test_grants_apply_to_each_item(
    client: httpx.AsyncClient, clinic: dict[str, str], users: Users
) -> None:
    desk = await users.create("desk", roles={APP: ["front_desk"]}, attributes={"branch": "pudong"})
    items = [
        {"op": "update", "id": clinic["theirs"], "data": {"name": "stolen"}},
        {"op": "create", "data": {"name": "n", "branch": "pudong", "id_number": "Y"}},
        {"op": "create", "data": {"name": "n", "branch": "xuhui"}},
        {"op": "update", "id": clinic["mine"], "data": {"note": "x"}},
        {"op": "update", "id": clinic["mine"], "data": {"name": "renamed"}},
        {"op": "update", "id": clinic["mine"], "data": {"branch": "xuhui"}},
    ]
    response = await client.post(f"{PATIENTS}/bulk", json={"items": items}, headers=desk.headers)
    assert response.status_code == 422
    body = response.json()
    assert body["failed_items"] == [0, 1, 2, 3, 5]
    codes = {e["index"]: e["code"] for e in body["errors"]}
    assert codes[0] == "not-found" and codes[1] == "forbidden_field"
    assert codes[2] == "forbidden" and codes[3] == "read_only" and codes[5] == "forbidden"
    loose = await client.post(
        f"{PATIENTS}/bulk", params={"atomic": "false"}, json={"items": items}, headers=desk.headers
    )
    assert [r["status"] for r in loose.json()["results"]] == [404, 422, 403, 422, 200, 403]
    theirs = (await client.get(f"{PATIENTS}/{clinic['theirs']}")).json()
    assert theirs["data"]["name"] == "theirs"
    mine = (await client.get(f"{PATIENTS}/{clinic['mine']}")).json()
    assert mine["data"] == {"name": "renamed", "branch": "pudong", "id_number": "X1"}
    denied = await client.get("/api/audit", params={"action": "auth.denied", "app": APP})
    reasons = [(row["actor"], (row.get("detail") or {}).get("reason")) for row in
               denied.json()["items"]]  # fmt: skip
    assert reasons.count(("desk", "row_filter")) >= 2  # the create and the move, each call


async def test_the_bulk_benchmark_runs_at_a_small_size(database_url: str) -> None:
    """tests/bench/bench_bulk.py end to end on 200 records (its figures come from
    `make bench`): both paths write every record, history, audit and claim row."""
    result = await bench_bulk.run(database_url, 200)
    assert result["n"] == 200 and result["bulk_s"] > 0
