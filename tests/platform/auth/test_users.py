"""User accounts (platform admins only): usernames safe to echo anywhere, attributes, roles
checked against the app definitions, passwords, disabling — all audited."""

from __future__ import annotations

import httpx
import pytest

from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import TestUser, Users
from tests.platform.auth.helpers import audit_rows

PASSWORD = "correct horse battery"


async def install(client: httpx.AsyncClient, key: str = "clinic") -> None:
    document = f.app(key, roles=[{"key": "doctor"}, {"key": "nurse"}])
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code in (200, 201), response.text


async def test_create_read_list_a_user(client: httpx.AsyncClient, settings: Settings) -> None:
    response = await client.post(
        "/api/users",
        json={
            "username": "Dr.Wang@Clinic",
            "display_name": "Dr. Wang",
            "password": PASSWORD,
            "attributes": {"department": "cardiology", "staff_id": "s1", "levels": [1, 2]},
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["username"] == "dr.wang@clinic" and "password" not in body
    assert response.headers["location"] == "/api/users/dr.wang@clinic"
    assert "password_hash" not in response.text
    read = await client.get("/api/users/DR.WANG@clinic")
    assert read.status_code == 200 and read.json()["display_name"] == "Dr. Wang"
    listed = await client.get("/api/users")
    assert [u["username"] for u in listed.json()] == ["admin", "dr.wang@clinic"]
    # (the first is the fixture's admin, made by the test fixture)
    fixture, created = await audit_rows(settings.database_url, "user.created")
    assert fixture["actor"] == "test-fixture"
    assert created["actor"] == "admin" and created["detail"]["username"] == "dr.wang@clinic"
    assert "password" not in str(created["detail"]).lower()
    signed_in = await client.post(
        "/api/auth/token", json={"username": "dr.wang@clinic", "password": PASSWORD}
    )
    assert signed_in.status_code == 200


async def test_without_a_password_one_is_generated_and_shown_once(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/users", json={"username": "bob"})
    assert response.status_code == 201
    password = response.json()["password"]
    assert len(password) >= 20
    assert "password" not in (await client.get("/api/users/bob")).json()
    signed_in = await client.post("/api/auth/token", json={"username": "bob", "password": password})
    assert signed_in.status_code == 200


@pytest.mark.parametrize(
    "username",
    [
        "bob\r\nSet-Cookie: x=1",
        "bob\nx",
        "bob smith",
        "bob\x00",
        "bob\t",
        "",
        ".bob",
        "-bob",
        "b" * 65,
        "bøb",
        "\u212aate",  # Kelvin sign: lower-cases to an ASCII k
        "bob/../admin",
        "bob:1",
    ],
)
async def test_usernames_that_could_inject_or_confuse_are_refused(
    client: httpx.AsyncClient, username: str
) -> None:
    response = await client.post("/api/users", json={"username": username, "password": PASSWORD})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["path"] == "/username"


async def test_duplicate_usernames_conflict_case_insensitively(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/users", json={"username": "bob", "password": PASSWORD})
    response = await client.post("/api/users", json={"username": "BOB", "password": PASSWORD})
    assert response.status_code == 409


async def test_short_passwords_and_bad_attributes_are_refused(client: httpx.AsyncClient) -> None:
    short = await client.post("/api/users", json={"username": "bob", "password": "short"})
    assert short.status_code == 422 and short.json()["errors"][0]["path"] == "/password"
    for attributes, path in [
        ({"Bad Key": 1}, "/attributes/Bad Key"),
        ({"username": "root"}, "/attributes/username"),
        ({"nested": {"a": 1}}, "/attributes/nested"),
        ({"long": "x" * 501}, "/attributes/long"),
    ]:
        response = await client.post(
            "/api/users", json={"username": "bob", "password": PASSWORD, "attributes": attributes}
        )
        assert response.status_code == 422, attributes
        assert response.json()["errors"][0]["path"] == path


async def test_only_platform_admins_manage_users(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    alice = await users.create("alice")
    for method, url, body in [
        ("GET", "/api/users", None),
        ("POST", "/api/users", {"username": "eve", "password": PASSWORD}),
        ("GET", "/api/users/alice", None),
        ("PATCH", "/api/users/alice", {"is_admin": True}),
        ("PUT", "/api/users/alice/roles", {}),
        ("POST", "/api/users/alice/password", {"password": PASSWORD}),
    ]:
        as_alice = await client.request(method, url, json=body, headers=alice.headers)
        assert as_alice.status_code == 403, (method, url)
        anonymous = await anon_client.request(method, url, json=body)
        assert anonymous.status_code == 401, (method, url)
    denied = await audit_rows(settings.database_url, "auth.denied")
    assert len(denied) == 6 and {d["actor"] for d in denied} == {"alice"}
    assert {d["detail"]["reason"] for d in denied} == {"admin_only"}


async def test_patch_changes_and_audits_each_field(
    client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    await users.create("alice", attributes={"department": "a"})
    response = await client.patch(
        "/api/users/alice",
        json={"display_name": "Alice L.", "attributes": {"department": "b"}, "is_admin": True},
    )
    assert response.status_code == 200, response.text
    assert response.json()["is_admin"] is True
    assert response.json()["attributes"] == {"department": "b"}
    [updated] = await audit_rows(settings.database_url, "user.updated")
    assert updated["detail"]["changed"] == ["attributes", "display_name", "is_admin"]
    assert updated["detail"]["before"]["attributes"] == {"department": "a"}
    assert (await client.patch("/api/users/alice", json={"is_admin": None})).status_code == 422
    assert (await client.patch("/api/users/nobody", json={})).status_code == 404
    # The new attributes show in the principal of alice's next request.
    me = await client.get("/api/auth/me", headers=(await _signed_in(client, "alice")))
    assert me.json()["attributes"] == {"department": "b"} and me.json()["is_admin"] is True


async def _signed_in(client: httpx.AsyncClient, username: str) -> dict[str, str]:
    response = await client.post(
        "/api/auth/token", json={"username": username, "password": PASSWORD}
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_the_last_active_admin_cannot_be_demoted_or_disabled(
    client: httpx.AsyncClient, users: Users
) -> None:
    for change in ({"is_admin": False}, {"disabled": True}):
        assert (await client.patch("/api/users/admin", json=change)).status_code == 409
    await users.create("second", admin=True)
    assert (await client.patch("/api/users/admin", json={"is_admin": False})).status_code == 200


async def test_roles_are_checked_against_the_app_definition(
    client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    await install(client)
    await users.create("alice")
    response = await client.put(
        "/api/users/alice/roles", json={"clinic": ["doctor", "surgeon"], "nosuch": ["x"]}
    )
    assert response.status_code == 422
    errors = {e["path"]: e for e in response.json()["errors"]}
    assert set(errors) == {"/clinic/1", "/nosuch"}
    assert errors["/clinic/1"]["code"] == "unknown_role"
    assert "surgeon" in errors["/clinic/1"]["message"]
    assert errors["/nosuch"]["code"] == "unknown_app"
    ok = await client.put("/api/users/alice/roles", json={"clinic": ["nurse", "doctor"]})
    assert ok.status_code == 200 and ok.json()["roles"] == {"clinic": ["doctor", "nurse"]}
    [changed] = await audit_rows(settings.database_url, "user.roles_changed")
    assert changed["app"] == "clinic" and changed["detail"]["after"] == {
        "clinic": ["doctor", "nurse"]
    }
    me = await client.get("/api/auth/me", headers=await _signed_in(client, "alice"))
    assert me.json()["roles"] == {"clinic": ["doctor", "nurse"]}
    cleared = await client.put("/api/users/alice/roles", json={"clinic": []})
    assert cleared.json()["roles"] == {}


async def test_role_changes_apply_to_existing_tokens_at_once(
    client: httpx.AsyncClient, users: Users
) -> None:
    await install(client)
    alice = await users.create("alice")
    await client.put("/api/users/alice/roles", json={"clinic": ["doctor"]})
    me = await client.get("/api/auth/me", headers=alice.headers)
    assert me.json()["roles"] == {"clinic": ["doctor"]}


async def test_an_admin_sets_a_password_and_the_users_sessions_end(
    client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    alice: TestUser = await users.create("alice")
    personal = await users.token("alice", kind="personal")
    response = await client.post("/api/users/alice/password", json={"password": "short"})
    assert response.status_code == 422
    response = await client.post(
        "/api/users/alice/password", json={"password": "brand new password"}
    )
    assert response.status_code == 204
    assert (await client.get("/api/auth/me", headers=alice.headers)).status_code == 401
    kept = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {personal}"})
    assert kept.status_code == 200
    [row] = await audit_rows(settings.database_url, "user.password_set")
    assert row["actor"] == "admin" and row["detail"] == {"username": "alice"}
