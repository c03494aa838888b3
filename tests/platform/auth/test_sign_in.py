"""Signing in for a bearer token: the same answer for every kind of failure, throttling per
username and per address (in the database, with the platform's clock), and the audit trail."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from formloom.platform.auth import passwords
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.models import User
from formloom.platform.settings import Settings
from tests.conftest import TestUser, Users, running_service
from tests.platform.auth.helpers import audit_rows

PASSWORD = "correct horse battery"


async def sign_in(c: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await c.post("/api/auth/token", json={"username": username, "password": password})


@pytest.fixture
async def alice(users: Users) -> TestUser:
    return await users.create("alice", attributes={"department": "cardiology"})


async def test_sign_in_gives_a_working_bearer_token(
    anon_client: httpx.AsyncClient, alice: TestUser, settings: Settings
) -> None:
    response = await sign_in(anon_client, "alice", PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer" and body["access_token"].startswith("flt_")
    assert body["expires_in"] == 12 * 3600 and body["expires_at"].endswith("Z")
    assert response.headers["cache-control"] == "no-store"
    me = await anon_client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["username"] == "alice" and me.json()["via"] == "bearer"
    assert me.json()["attributes"] == {"department": "cardiology"}
    [row] = await audit_rows(settings.database_url, "auth.sign_in")
    assert row["actor"] == "alice" and row["user_id"] == alice.id and row["outcome"] == "ok"
    assert row["address"] == "127.0.0.1" and row["via"] == "bearer"


async def test_the_username_is_case_insensitive(
    anon_client: httpx.AsyncClient, alice: TestUser
) -> None:
    assert (await sign_in(anon_client, "ALICE", PASSWORD)).status_code == 200


async def test_oauth2_password_form_is_accepted(
    anon_client: httpx.AsyncClient, alice: TestUser
) -> None:
    response = await anon_client.post(
        "/api/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert response.status_code == 200, response.text
    assert response.json()["token_type"] == "bearer"
    other = await anon_client.post(
        "/api/auth/token",
        data={"grant_type": "client_credentials", "username": "alice", "password": PASSWORD},
    )
    assert other.status_code == 400


@pytest.mark.parametrize(
    "body",
    [{"username": "alice"}, {"username": "alice", "password": 5}, [], {"x": 1}],
    ids=["no-password", "number", "array", "other"],
)
async def test_malformed_sign_in_bodies_are_422(
    anon_client: httpx.AsyncClient, body: object
) -> None:
    response = await anon_client.post("/api/auth/token", json=body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_unknown_user_wrong_password_and_disabled_user_get_the_same_answer(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, alice: TestUser, settings: Settings
) -> None:
    await client.post("/api/users", json={"username": "bob", "password": PASSWORD})
    assert (await client.patch("/api/users/bob", json={"disabled": True})).status_code == 200
    answers = [
        await sign_in(anon_client, "nobody", PASSWORD),
        await sign_in(anon_client, "alice", "wrong password!"),
        await sign_in(anon_client, "bob", PASSWORD),
        await sign_in(anon_client, "bad\r\nname", PASSWORD),
    ]
    assert {a.status_code for a in answers} == {401}
    assert {a.json()["detail"] for a in answers} == {"invalid username or password"}
    assert all(a.headers["www-authenticate"] == "Bearer" for a in answers)
    rows = await audit_rows(settings.database_url, "auth.sign_in_failed")
    assert [(r["detail"]["username"], r["detail"]["reason"], r["outcome"]) for r in rows] == [
        ("nobody", "unknown_user", "failed"),
        ("alice", "wrong_password", "failed"),
        ("bob", "user_disabled", "failed"),
        ("bad\r\nname", "unknown_user", "failed"),
    ]
    assert rows[1]["actor"] == "alice" and rows[0]["actor"] == "anonymous"


@pytest.fixture
async def strict(settings: Settings) -> Settings:
    return settings.model_copy(
        update={
            "max_failures_per_user": 3,
            "max_failures_per_address": 5,
            "sign_in_window_minutes": 10,
        }
    )


@pytest.fixture
async def strict_client(strict: Settings, clock: FixedClock) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(strict, clock) as c:
        yield c


async def test_throttled_per_username_even_with_the_right_password(
    strict_client: httpx.AsyncClient, alice: TestUser, clock: FixedClock, strict: Settings
) -> None:
    for _ in range(3):
        assert (await sign_in(strict_client, "alice", "wrong password!")).status_code == 401
    clock.advance(minutes=4)
    refused = await sign_in(strict_client, "alice", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == str(6 * 60)
    assert refused.headers["content-type"] == "application/problem+json"
    # Another user from the same address is not throttled (3 < 5 per address).
    await Users(strict, clock).create("carol")
    assert (await sign_in(strict_client, "carol", PASSWORD)).status_code == 200
    # Once the failures have left the window, the right password works again.
    clock.advance(minutes=6)
    assert (await sign_in(strict_client, "alice", PASSWORD)).status_code == 200
    throttled = await audit_rows(strict.database_url, "auth.sign_in_throttled")
    assert len(throttled) == 1 and throttled[0]["outcome"] == "denied"
    assert throttled[0]["actor"] == "alice" and throttled[0]["detail"]["per_user"] is True


async def test_a_success_clears_the_username_count(
    strict_client: httpx.AsyncClient, alice: TestUser
) -> None:
    for _ in range(2):
        await sign_in(strict_client, "alice", "wrong password!")
    assert (await sign_in(strict_client, "alice", PASSWORD)).status_code == 200
    for _ in range(2):
        assert (await sign_in(strict_client, "alice", "wrong password!")).status_code == 401
    assert (await sign_in(strict_client, "alice", PASSWORD)).status_code == 200


async def test_throttled_per_address_across_usernames(
    strict_client: httpx.AsyncClient, alice: TestUser, clock: FixedClock
) -> None:
    for name in ("u1", "u2", "u3", "u4", "u5"):
        assert (await sign_in(strict_client, name, "whatever password")).status_code == 401
        clock.advance(seconds=30)
    refused = await sign_in(strict_client, "alice", PASSWORD)
    assert refused.status_code == 429
    # The oldest failure (2.5 minutes ago) leaves the 10-minute window in 7.5 minutes.
    assert refused.headers["retry-after"] == "450"
    clock.advance(seconds=449)
    assert (await sign_in(strict_client, "alice", PASSWORD)).status_code == 429
    clock.advance(seconds=1)
    assert (await sign_in(strict_client, "alice", PASSWORD)).status_code == 200


async def test_failures_are_counted_across_processes(
    strict: Settings, clock: FixedClock, alice: TestUser
) -> None:
    async with (
        running_service(strict, clock) as one,
        running_service(strict, clock, "http://two") as two,
    ):
        await sign_in(one, "alice", "wrong password!")
        await sign_in(two, "alice", "wrong password!")
        await sign_in(one, "alice", "wrong password!")
        assert (await sign_in(two, "alice", PASSWORD)).status_code == 429


async def test_a_hash_made_with_other_parameters_is_upgraded_at_sign_in(
    anon_client: httpx.AsyncClient, alice: TestUser, settings: Settings
) -> None:
    db = Database(settings.database_url)
    try:
        async with db.transaction() as session:
            user = await session.get(User, alice.id)
            assert user is not None
            user.password_hash = passwords.hash_password("argon2id", PASSWORD)
        assert (await sign_in(anon_client, "alice", PASSWORD)).status_code == 200
        async with db.transaction(write=False) as session:
            user = await session.get(User, alice.id)
            assert user is not None and "m=64," in (user.password_hash or "")
    finally:
        await db.dispose()
    assert (await sign_in(anon_client, "alice", PASSWORD)).status_code == 200
