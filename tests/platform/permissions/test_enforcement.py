"""How the record service enforces an app's permissions, case by case, on both databases.

The clinic matrix (test_clinic_matrix.py) covers every role × endpoint of the shipped app;
these tests pin the finer rules: filters ORed across grants, a missing `$user` attribute,
read-only values sent back unchanged, an update that would move a record out of the
caller's rows, hidden fields in filters, sorts, `fields`, history and errors, app outlines,
tokens scoped to another app, and the audit rows of sensitive reads and refusals.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.conftest import Users

APP = "ward"
BASE = f"/api/records/{APP}/visit"
SAME_DEPARTMENT = {"==": [{"var": "department"}, {"var": "$user.department"}]}
OWN = {"==": [{"var": "created_by"}, {"var": "$user.username"}]}


def definition(**changes: Any) -> dict[str, Any]:
    document = f.app(
        APP,
        f.form(
            "visit",
            f.field("patient", required=True),
            f.field("department", required=True, indexed=True),
            f.field("diagnosis"),
            f.field("fee", "number"),
            f.field("status"),
            sensitive=True,
        ),
        f.form("note", f.field("text")),
        roles=[{"key": "nurse"}, {"key": "clerk"}, {"key": "doctor"}],
        permissions=[
            {
                "form": "visit",
                "roles": ["nurse"],
                "actions": ["read", "update", "create"],
                "row_filter": SAME_DEPARTMENT,
                "hidden_fields": ["fee"],
                "read_only_fields": ["diagnosis"],
            },
            {"form": "visit", "roles": ["clerk"], "actions": ["read"], "row_filter": OWN},
            {"form": "visit", "roles": ["doctor"], "actions": ["read", "update"]},
        ],
    )
    document.update(changes)
    return document


@pytest.fixture
async def ward(client: httpx.AsyncClient) -> dict[str, str]:
    """Three visits: two in surgery, one in dental; ids by name."""
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    ids = {}
    for name, department in [("s1", "surgery"), ("s2", "surgery"), ("d1", "dental")]:
        response = await client.post(
            BASE,
            json={
                "data": {
                    "patient": name,
                    "department": department,
                    "diagnosis": f"dx-{name}",
                    "fee": 4321.5,
                }
            },
        )
        assert response.status_code == 201
        ids[name] = response.json()["id"]
    return ids


async def test_anonymous_callers_get_401_and_learn_nothing(
    anon_client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    for method, url in [
        ("GET", BASE),
        ("GET", f"{BASE}/{ward['s1']}"),
        ("GET", "/api/records/no_such_app/visit"),
        ("POST", BASE),
        ("GET", f"/api/apps/{APP}"),
        ("GET", "/api/apps"),
    ]:
        response = await anon_client.request(method, url, json={"data": {}})
        assert response.status_code == 401, (method, url, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "s1" not in response.text and "surgery" not in response.text


async def test_row_filter_lists_counts_and_404s(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    page = (await client.get(f"{BASE}?count=true", headers=nurse.headers)).json()
    assert {item["id"] for item in page["items"]} == {ward["s1"], ward["s2"]}
    assert page["count"] == 2  # the total never counts rows she may not see
    assert all("fee" not in item["data"] for item in page["items"])
    # a row outside the filter is indistinguishable from a missing one
    outside = await client.get(f"{BASE}/{ward['d1']}", headers=nurse.headers)
    missing = await client.get(f"{BASE}/{'0' * 32}", headers=nurse.headers)
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["detail"].replace(ward["d1"], "X") == missing.json()["detail"].replace(
        "0" * 32, "X"
    )
    for method in ("PATCH", "DELETE"):
        response = await client.request(
            method, f"{BASE}/{ward['d1']}", json={"data": {"status": "x"}}, headers=nurse.headers
        )
        assert response.status_code in (404, 403)
    assert (
        await client.get(f"{BASE}/{ward['d1']}/history", headers=nurse.headers)
    ).status_code == 404


async def test_a_missing_user_attribute_admits_no_rows(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nobody", roles={APP: ["nurse"]})  # no department
    page = (await client.get(f"{BASE}?count=true", headers=nurse.headers)).json()
    assert page == {"items": [], "next_cursor": None, "count": 0}


async def test_grants_add_up_across_roles(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    both = await users.create(
        "both", roles={APP: ["nurse", "clerk"]}, attributes={"department": "dental"}
    )
    created = await client.post(
        BASE, json={"data": {"patient": "mine", "department": "dental"}}, headers=both.headers
    )
    assert created.status_code == 201
    page = (await client.get(BASE, headers=both.headers)).json()
    assert {item["id"] for item in page["items"]} == {ward["d1"], created.json()["id"]}
    doctor_and_nurse = await users.create(
        "dn", roles={APP: ["nurse", "doctor"]}, attributes={"department": "dental"}
    )
    page = (await client.get(BASE, headers=doctor_and_nurse.headers)).json()
    assert len(page["items"]) == 4
    # the doctor's grant hides nothing, so the union shows the fee
    assert any("fee" in item["data"] for item in page["items"])


async def test_hidden_fields_are_unknown_in_filters_sorts_and_fields(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    for params in (
        {"filter": '{">": [{"var": "fee"}, 1000]}'},
        {"sort": "-fee"},
        {"fields": "patient,fee"},
    ):
        response = await client.get(BASE, params=params, headers=nurse.headers)
        assert response.status_code == 400, params
        assert "4321" not in response.text
    # the admin can do all three
    assert (await client.get(BASE, params={"sort": "-fee"})).status_code == 200


async def test_hidden_fields_cannot_be_written_and_are_kept(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    url = f"{BASE}/{ward['s1']}"
    refused = await client.patch(url, json={"data": {"fee": 1}}, headers=nurse.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"] == [
        {
            "field": "fee",
            "path": "/data/fee",
            "code": "forbidden_field",
            "message": "Your role may not set this field.",
        }
    ]
    changed = await client.patch(url, json={"data": {"status": "seen"}}, headers=nurse.headers)
    assert changed.status_code == 200 and "fee" not in changed.json()["data"]
    assert (await client.get(url)).json()["data"]["fee"] == 4321.5  # kept


async def test_read_only_fields_accept_their_own_value_only(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    url = f"{BASE}/{ward['s1']}"
    record = (await client.get(url, headers=nurse.headers)).json()
    # the whole record sent back, one writable change: fine
    data = {**record["data"], "status": "seen"}
    assert (await client.patch(url, json={"data": data}, headers=nurse.headers)).status_code == 200
    refused = await client.patch(url, json={"data": {"diagnosis": "new"}}, headers=nurse.headers)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "read_only"
    assert refused.json()["errors"][0]["path"] == "/data/diagnosis"


async def test_writes_stay_inside_the_callers_rows(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    doctor_nurse = await users.create(
        "dn", roles={APP: ["nurse"]}, attributes={"department": "surgery"}
    )
    outside = await client.post(
        BASE,
        json={"data": {"patient": "x", "department": "dental"}},
        headers=doctor_nurse.headers,
    )
    assert outside.status_code == 403
    assert (await client.get(f"{BASE}?count=true")).json()["count"] == 3  # nothing written


async def test_an_update_may_not_move_a_record_out_of_reach(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    url = f"{BASE}/{ward['s1']}"
    moved = await client.patch(url, json={"data": {"department": "dental"}}, headers=nurse.headers)
    assert moved.status_code == 403
    assert (await client.get(url)).json()["data"]["department"] == "surgery"


async def test_history_hides_hidden_fields_in_snapshots_and_changes(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    url = f"{BASE}/{ward['s1']}"
    await client.patch(url, json={"data": {"fee": 99.25}})
    await client.patch(url, json={"data": {"status": "done"}})
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    history = await client.get(f"{url}/history", headers=nurse.headers)
    assert history.status_code == 200
    assert "4321" not in history.text and "99.25" not in history.text
    entries = history.json()
    assert [e["changed"] for e in entries] == [
        ["department", "diagnosis", "patient"],
        [],
        ["status"],
    ]
    admin_history = (await client.get(f"{url}/history")).json()
    assert admin_history[1]["changed"] == ["fee"]


async def test_actions_without_a_grant_are_403_and_audited(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    clerk = await users.create("carl", roles={APP: ["clerk"]})
    for method, url in [
        ("POST", BASE),
        ("PATCH", f"{BASE}/{ward['s1']}"),
        ("DELETE", f"{BASE}/{ward['s1']}"),
        ("GET", f"/api/records/{APP}/note"),
    ]:
        response = await client.request(
            method, url, json={"data": {"patient": "x"}}, headers=clerk.headers
        )
        assert response.status_code == 403, (method, url)
    outsider = await users.create("olga", roles={"other_app": ["nurse"]})
    assert (await client.get(BASE, headers=outsider.headers)).status_code == 403
    denied = (await client.get("/api/audit", params={"action": "auth.denied"})).json()["items"]
    assert [(row["actor"], row["outcome"]) for row in denied].count(("carl", "denied")) == 4
    assert {row["detail"]["reason"] for row in denied if row["actor"] == "carl"} == {"action"}


async def test_reads_of_sensitive_forms_are_audited_with_the_ids(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    await client.get(BASE, headers=nurse.headers)
    await client.get(f"{BASE}/{ward['s1']}", headers=nurse.headers)
    await client.get(f"{BASE}/{ward['s1']}/history", headers=nurse.headers)
    reads = (
        await client.get("/api/audit", params={"action": "record.read", "actor": "nina"})
    ).json()["items"]
    assert len(reads) == 3
    assert sorted(reads[-1]["detail"]["ids"]) == sorted([ward["s1"], ward["s2"]])
    assert reads[0]["record_id"] == ward["s1"]
    # the note form is not sensitive: reading it is not audited
    await client.get(f"/api/records/{APP}/note")
    notes = await client.get("/api/audit", params={"action": "record.read", "form": "note"})
    assert notes.json()["items"] == []


async def test_every_write_is_audited_with_its_version(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    url = f"{BASE}/{ward['s1']}"
    await client.patch(url, json={"data": {"status": "a"}})
    await client.delete(url)
    rows = (
        await client.get("/api/audit", params={"action": "record.", "record_id": ward["s1"]})
    ).json()["items"]
    assert sorted((row["action"], row["version"]) for row in rows) == [
        ("record.create", 1),
        ("record.delete", 3),
        ("record.update", 2),
    ]
    imports = (await client.get("/api/audit", params={"action": "app.import"})).json()["items"]
    assert len(imports) == 1 and imports[0]["app"] == APP


async def test_app_outline_shows_the_callers_access_and_counts(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    outline = (await client.get(f"/api/apps/{APP}", headers=nurse.headers)).json()
    visit = next(form for form in outline["forms"] if form["key"] == "visit")
    assert visit["access"] == {
        "actions": ["create", "export", "read", "update"],
        "hidden_fields": ["fee"],
        "read_only_fields": ["diagnosis"],
    }
    assert visit["records"] == 2
    note = next(form for form in outline["forms"] if form["key"] == "note")
    assert note["access"]["actions"] == [] and "records" not in note
    admin_outline = (await client.get(f"/api/apps/{APP}")).json()
    assert next(form for form in admin_outline["forms"] if form["key"] == "visit")["records"] == 3
    # apps listed are those she holds a role in
    assert [
        app["key"] for app in (await client.get("/api/apps", headers=nurse.headers)).json()
    ] == [APP]


async def test_changing_apps_is_for_platform_admins(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    for method, url, body in [
        ("POST", "/api/apps/import", definition()),
        ("POST", f"/api/apps/{APP}/rollback?to=1", None),
        ("PUT", f"/api/apps/{APP}/forms/note", {"key": "note", "label": "N", "fields": []}),
        ("GET", f"/api/apps/{APP}/export", None),
        ("GET", f"/api/apps/{APP}/versions", None),
        ("GET", f"/api/apps/{APP}/versions/1", None),
    ]:
        response = await client.request(method, url, json=body, headers=nurse.headers)
        assert response.status_code == 403, (method, url, response.text)
    # reading the app's forms needs a role in it
    assert (
        await client.get(f"/api/apps/{APP}/forms/visit", headers=nurse.headers)
    ).status_code == 200
    stranger = await users.create("sam", roles={"other": ["x"]})
    assert (
        await client.get(f"/api/apps/{APP}/forms/visit", headers=stranger.headers)
    ).status_code == 403


async def test_a_token_scoped_to_one_app_is_refused_elsewhere(
    client: httpx.AsyncClient, users: Users, ward: dict[str, str]
) -> None:
    other = f.app("other", f.form("thing", f.field("name")))
    assert (await client.post("/api/apps/import", json=other)).status_code == 201
    scoped = await users.create("integration", admin=True, app="other")
    assert (await client.get("/api/records/other/thing", headers=scoped.headers)).status_code == 200
    refused = await client.get(BASE, headers=scoped.headers)
    assert refused.status_code == 403
    assert "other" in refused.json()["detail"]


async def test_permission_changes_and_refused_imports_are_audited(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    document = definition()
    document["permissions"][1]["actions"] = ["read", "update"]
    assert (await client.post("/api/apps/import", json=document)).status_code == 200
    bad = definition()
    bad["permissions"][0]["row_filter"] = {"==": [{"var": "departmnet"}, 1]}
    refused = await client.post("/api/apps/import", json=bad)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["path"] == "/permissions/0/row_filter/==/0"
    rows = (await client.get("/api/audit", params={"action": "app."})).json()["items"]
    seen = [(row["action"], row["outcome"]) for row in reversed(rows)]
    assert seen == [
        ("app.import", "ok"),
        ("app.permissions_changed", "ok"),  # the first import declares the grants
        ("app.import", "ok"),
        ("app.permissions_changed", "ok"),
        ("app.import", "failed"),
    ]
    changed = [row for row in rows if row["action"] == "app.permissions_changed"][0]
    assert changed["detail"]["permissions"][1]["actions"] == ["read", "update"]


async def test_refused_account_changes_are_audited_without_values(
    client: httpx.AsyncClient, ward: dict[str, str]
) -> None:
    injected = await client.post(
        "/api/users", json={"username": "eve\r\nSet-Cookie: x=1", "password": "s3cret-value-1"}
    )
    assert injected.status_code == 422
    await client.post("/api/users", json={"username": "rolf", "password": "long enough pw"})
    unknown_role = await client.put("/api/users/rolf/roles", json={APP: ["surgeon"]})
    assert unknown_role.status_code == 422
    rows = (await client.get("/api/audit", params={"action": "user.refused"})).json()["items"]
    assert [row["detail"]["errors"][0]["path"] for row in reversed(rows)] == [
        "/username",
        f"/{APP}/0",
    ]
    assert all(row["outcome"] == "failed" for row in rows)
    assert "s3cret" not in str(rows) and "Set-Cookie" not in str(rows)
