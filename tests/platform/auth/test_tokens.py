"""Bearer and personal tokens: expiry on the platform's clock, revocation, app scope, and
every kind of bad credential answered alike (401, audited)."""

from __future__ import annotations

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import TestUser, Users
from tests.platform.auth.helpers import audit_rows

INVALID = "invalid or expired credentials"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.json()["detail"] == INVALID
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_no_credential_is_anonymous_and_admin_endpoints_say_401(
    anon_client: httpx.AsyncClient,
) -> None:
    response = await anon_client.get("/api/auth/me")
    assert response.status_code == 401 and response.json()["detail"] == "Sign in to continue."
    assert (await anon_client.get("/api/users")).status_code == 401
    assert (await anon_client.get("/api/health")).status_code == 200


async def test_a_token_expires_with_the_platform_clock(
    anon_client: httpx.AsyncClient, users: Users, clock: FixedClock, settings: Settings
) -> None:
    alice = await users.create("alice")
    assert (await anon_client.get("/api/auth/me", headers=alice.headers)).status_code == 200
    clock.advance(hours=11, minutes=59)
    assert (await anon_client.get("/api/auth/me", headers=alice.headers)).status_code == 200
    clock.advance(minutes=1)
    assert_refused(await anon_client.get("/api/auth/me", headers=alice.headers))
    [denied] = await audit_rows(settings.database_url, "auth.denied")
    assert denied["detail"]["reason"] == "expired" and denied["actor"] == "alice"
    assert denied["outcome"] == "denied" and denied["detail"]["path"] == "/api/auth/me"


async def test_logout_revokes_the_token_of_the_request(
    anon_client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    alice = await users.create("alice")
    other = await users.token("alice")
    response = await anon_client.post("/api/auth/logout", headers=alice.headers)
    assert response.status_code == 204
    assert_refused(await anon_client.get("/api/auth/me", headers=alice.headers))
    assert (await anon_client.get("/api/auth/me", headers=bearer(other))).status_code == 200
    [revoked] = await audit_rows(settings.database_url, "auth.token_revoked")
    assert revoked["actor"] == "alice" and revoked["detail"]["kind"] == "bearer"
    reasons = [
        r["detail"]["reason"] for r in await audit_rows(settings.database_url, "auth.denied")
    ]
    assert reasons == ["revoked"]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # forged secret
        lambda t: t[:4] + "f" * 32 + t[36:],  # unknown id
        lambda t: t + "0",  # too long
        lambda t: t.upper(),  # not the format
        lambda t: "",  # empty
        lambda t: "x" * 5000,  # huge
        lambda t: t.replace("_", "-"),  # wrong separators
    ],
    ids=["forged", "unknown-id", "too-long", "upper", "empty", "huge", "separators"],
)
async def test_forged_and_malformed_tokens_are_refused_alike(
    anon_client: httpx.AsyncClient, users: Users, settings: Settings, mangle: object
) -> None:
    alice = await users.create("alice")
    bad = mangle(alice.token)  # type: ignore[operator]
    assert_refused(await anon_client.get("/api/auth/me", headers=bearer(bad)))
    [denied] = await audit_rows(settings.database_url, "auth.denied")
    assert denied["actor"] == "anonymous" and denied["address"] == "127.0.0.1"
    assert denied["detail"]["reason"] in {"forged_token", "unknown_token", "malformed"}


@pytest.mark.parametrize("header", ["Basic YWxpY2U6cHc=", "Bearer", "Token abc", "bearer  "])
async def test_other_authorization_schemes_are_refused(
    anon_client: httpx.AsyncClient, header: str
) -> None:
    assert_refused(await anon_client.get("/api/auth/me", headers={"Authorization": header}))


async def test_the_scheme_is_case_insensitive(anon_client: httpx.AsyncClient, users: Users) -> None:
    alice = await users.create("alice")
    response = await anon_client.get(
        "/api/auth/me", headers={"Authorization": f"bearer {alice.token}"}
    )
    assert response.status_code == 200


async def test_a_disabled_users_tokens_stop_working(
    client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    alice = await users.create("alice")
    personal = await users.token("alice", kind="personal")
    response = await client.patch("/api/users/alice", json={"disabled": True})
    assert response.status_code == 200 and response.json()["disabled"] is True
    for token in (alice.token, personal):
        assert_refused(await client.get("/api/auth/me", headers=bearer(token)))
    # Enabling the account again does not bring the old tokens back.
    assert (await client.patch("/api/users/alice", json={"disabled": False})).status_code == 200
    assert_refused(await client.get("/api/auth/me", headers=alice.headers))
    actions = [r["action"] for r in await audit_rows(settings.database_url, "user.")]
    assert actions[-2:] == ["user.disabled", "user.enabled"]


async def test_personal_tokens_are_shown_once_listed_without_secrets_and_revocable(
    anon_client: httpx.AsyncClient, users: Users, clock: FixedClock, settings: Settings
) -> None:
    alice = await users.create("alice")
    made = await anon_client.post(
        "/api/auth/tokens", json={"name": "nightly export", "days": 30}, headers=alice.headers
    )
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert made.json()["kind"] == "personal" and made.json()["app"] is None
    assert made.json()["expires_at"] == "2026-12-23T02:30:00Z"
    listed = await anon_client.get("/api/auth/tokens", headers=bearer(token))
    assert listed.status_code == 200
    kinds = {(t["kind"], t["name"], t["current"]) for t in listed.json()}
    assert kinds == {("personal", "nightly export", True), ("bearer", None, False)}
    assert token not in listed.text and "secret" not in listed.text
    me = await anon_client.get("/api/auth/me", headers=bearer(token))
    assert me.json()["via"] == "personal"
    token_id = made.json()["id"]
    # Someone else cannot revoke it (and cannot tell it exists).
    bob = await users.create("bob")
    response = await anon_client.delete(f"/api/auth/tokens/{token_id}", headers=bob.headers)
    assert response.status_code == 404
    response = await anon_client.delete(f"/api/auth/tokens/{token_id}", headers=alice.headers)
    assert response.status_code == 204
    assert_refused(await anon_client.get("/api/auth/me", headers=bearer(token)))
    created = await audit_rows(settings.database_url, "auth.token_created")
    assert created[0]["detail"]["name"] == "nightly export" and created[0]["actor"] == "alice"
    clock.advance(days=31)


async def test_personal_token_lifetime_is_bounded(
    anon_client: httpx.AsyncClient, users: Users
) -> None:
    alice = await users.create("alice")
    response = await anon_client.post(
        "/api/auth/tokens", json={"name": "forever", "days": 100_000}, headers=alice.headers
    )
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "/days"


async def test_an_admin_may_revoke_anyones_token(client: httpx.AsyncClient, users: Users) -> None:
    alice = await users.create("alice")
    listed = await client.get("/api/auth/tokens", headers=alice.headers)
    [mine] = listed.json()
    assert (await client.delete(f"/api/auth/tokens/{mine['id']}")).status_code == 204
    assert_refused(await client.get("/api/auth/me", headers=alice.headers))


async def test_a_token_scoped_to_one_app_is_refused_for_another(
    client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    roles = [{"key": "doctor"}]
    for key in ("north", "south"):
        response = await client.post("/api/apps/import", json=f.app(key, roles=roles))
        assert response.status_code in (200, 201), response.text
    alice = await users.create("alice", roles={"north": ["doctor"], "south": ["doctor"]})
    made = await client.post(
        "/api/auth/tokens", json={"name": "north only", "app": "north"}, headers=alice.headers
    )
    assert made.status_code == 201, made.text
    scoped = bearer(made.json()["token"])
    assert (await client.get("/api/apps/north", headers=scoped)).status_code == 200
    refused = await client.get("/api/apps/south", headers=scoped)
    assert refused.status_code == 403
    denied = await audit_rows(settings.database_url, "auth.denied")
    assert denied[-1]["app"] == "south" and denied[-1]["detail"]["reason"] == "app_scope"
    # ... nor may it make an unscoped token, or act as a platform admin.
    escalate = await client.post("/api/auth/tokens", json={"name": "all"}, headers=scoped)
    assert escalate.status_code == 403
    unknown = await client.post(
        "/api/auth/tokens", json={"name": "x", "app": "nosuchapp"}, headers=alice.headers
    )
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["path"] == "/app"


async def test_an_admins_scoped_token_is_not_a_platform_admin(
    client: httpx.AsyncClient, admin: TestUser, users: Users
) -> None:
    await client.post("/api/apps/import", json=f.app("north"))
    scoped = await users.token("admin", kind="personal", app="north")
    assert (await client.get("/api/users", headers=bearer(scoped))).status_code == 403
    assert (await client.get("/api/audit", headers=bearer(scoped))).status_code == 403


async def test_a_session_token_is_not_accepted_as_a_bearer_token(
    anon_client: httpx.AsyncClient, users: Users, settings: Settings
) -> None:
    await users.create("alice")
    session = await users.token("alice", kind="session")
    assert_refused(await anon_client.get("/api/auth/me", headers=bearer(session)))
    [denied] = await audit_rows(settings.database_url, "auth.denied")
    assert denied["detail"]["reason"] == "wrong_channel"


async def test_the_client_address_comes_from_trusted_proxies_only(
    settings: Settings, clock: FixedClock, users: Users
) -> None:
    from tests.conftest import running_service

    await users.create("alice")
    forwarded = {"X-Forwarded-For": "203.0.113.9, 198.51.100.7"}
    body = {"username": "alice", "password": "correct horse battery"}
    async with running_service(settings, clock) as c:
        await c.post("/api/auth/token", json=body, headers=forwarded)
    behind_one = settings.model_copy(update={"forwarded_hops": 1})
    async with running_service(behind_one, clock) as c:
        await c.post("/api/auth/token", json=body, headers=forwarded)
    behind_two = settings.model_copy(update={"forwarded_hops": 2})
    async with running_service(behind_two, clock) as c:
        await c.post("/api/auth/token", json=body, headers=forwarded)
    rows = await audit_rows(settings.database_url, "auth.sign_in")
    assert [r["address"] for r in rows] == ["127.0.0.1", "198.51.100.7", "203.0.113.9"]


async def test_another_process_sees_a_revocation_within_the_cache_time(
    settings: Settings, clock: FixedClock, users: Users, monkeypatch: pytest.MonkeyPatch
) -> None:
    from formloom.platform.auth import cache
    from tests.conftest import running_service

    ticks = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: ticks[0])
    alice = await users.create("alice")
    async with (
        running_service(settings, clock) as one,
        running_service(settings, clock, "http://two") as two,
    ):
        assert (await two.get("/api/auth/me", headers=alice.headers)).status_code == 200
        assert (await one.post("/api/auth/logout", headers=alice.headers)).status_code == 204
        # The process that revoked it refuses it at once ...
        assert_refused(await one.get("/api/auth/me", headers=alice.headers))
        # ... the other one once its memory of the token is older than the cache time.
        assert (await two.get("/api/auth/me", headers=alice.headers)).status_code == 200
        ticks[0] += settings.credential_cache_seconds
        assert_refused(await two.get("/api/auth/me", headers=alice.headers))


async def test_without_the_cache_every_request_looks_the_token_up(
    settings: Settings, clock: FixedClock, users: Users
) -> None:
    from tests.conftest import running_service

    alice = await users.create("alice")
    uncached = settings.model_copy(update={"credential_cache_seconds": 0})
    async with (
        running_service(uncached, clock) as one,
        running_service(uncached, clock, "http://two") as two,
    ):
        assert (await two.get("/api/auth/me", headers=alice.headers)).status_code == 200
        assert (await one.post("/api/auth/logout", headers=alice.headers)).status_code == 204
        assert_refused(await two.get("/api/auth/me", headers=alice.headers))


async def test_a_cached_token_id_with_another_secret_is_refused(
    anon_client: httpx.AsyncClient, users: Users
) -> None:
    alice = await users.create("alice")
    assert (await anon_client.get("/api/auth/me", headers=alice.headers)).status_code == 200
    forged = alice.token[:-4] + ("0000" if not alice.token.endswith("0000") else "1111")
    assert_refused(await anon_client.get("/api/auth/me", headers=bearer(forged)))
