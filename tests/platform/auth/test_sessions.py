"""The web UI's session: an HttpOnly cookie, a CSRF token for every unsafe request, and
sign-out."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests.conftest import Users, running_service
from tests.platform.auth.helpers import audit_rows

PASSWORD = "correct horse battery"


async def start_session(c: httpx.AsyncClient) -> httpx.Response:
    response = await c.post("/api/auth/session", json={"username": "alice", "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response


def cookie_headers(response: httpx.Response) -> dict[str, str]:
    """Set-Cookie header values by cookie name."""
    out = {}
    for value in response.headers.get_list("set-cookie"):
        out[value.split("=", 1)[0]] = value
    return out


@pytest.fixture
async def browser(
    settings: Settings, clock: FixedClock, users: Users
) -> AsyncIterator[httpx.AsyncClient]:
    await users.create("alice", attributes={"department": "cardiology"})
    async with running_service(settings, clock) as c:
        yield c


async def test_sign_in_sets_an_httponly_lax_session_cookie_and_a_readable_csrf_cookie(
    browser: httpx.AsyncClient,
) -> None:
    response = await start_session(browser)
    body = response.json()
    assert body["user"]["username"] == "alice" and len(body["csrf_token"]) == 64
    cookies = cookie_headers(response)
    session = cookies["formloom_session"].lower()
    assert "httponly" in session and "samesite=lax" in session and "path=/" in session
    assert "max-age=43200" in session and "secure" not in session
    csrf = cookies["formloom_csrf"].lower()
    assert "httponly" not in csrf and "samesite=lax" in csrf
    assert browser.cookies["formloom_csrf"] == body["csrf_token"]
    me = await browser.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["via"] == "session"


async def test_cookies_are_secure_over_https(
    settings: Settings, clock: FixedClock, users: Users
) -> None:
    await users.create("alice")
    async with running_service(settings, clock, "https://formloom.test") as c:
        response = await start_session(c)
        cookies = cookie_headers(response)
        assert all("; secure" in v.lower() for v in cookies.values())
        assert (await c.get("/api/auth/me")).status_code == 200


async def test_secure_cookies_can_be_forced_behind_a_tls_proxy(
    settings: Settings, clock: FixedClock, users: Users
) -> None:
    await users.create("alice")
    forced = settings.model_copy(update={"secure_cookies": True})
    async with running_service(forced, clock) as c:
        cookies = cookie_headers(await start_session(c))
        assert all("; secure" in v.lower() for v in cookies.values())


async def test_unsafe_requests_need_the_csrf_token(
    browser: httpx.AsyncClient, settings: Settings
) -> None:
    csrf = (await start_session(browser)).json()["csrf_token"]
    body = {"name": "script"}
    missing = await browser.post("/api/auth/tokens", json=body)
    assert missing.status_code == 403 and "X-CSRF-Token" in missing.json()["detail"]
    wrong = await browser.post("/api/auth/tokens", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    ok = await browser.post("/api/auth/tokens", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    # Safe methods need none.
    assert (await browser.get("/api/auth/tokens")).status_code == 200
    denied = await audit_rows(settings.database_url, "auth.denied")
    assert [(d["actor"], d["detail"]["reason"], d["outcome"]) for d in denied] == [
        ("alice", "csrf", "denied"),
        ("alice", "csrf", "denied"),
    ]
    assert denied[0]["detail"]["method"] == "POST" and denied[0]["via"] == "session"


async def test_bearer_requests_need_no_csrf_token(browser: httpx.AsyncClient, users: Users) -> None:
    token = await users.token("alice")
    # A bearer header wins over any cookie, and needs no CSRF token.
    await start_session(browser)
    response = await browser.post(
        "/api/auth/tokens", json={"name": "x"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201


async def test_a_csrf_token_of_another_session_does_not_fit(
    browser: httpx.AsyncClient,
) -> None:
    first = (await start_session(browser)).json()["csrf_token"]
    second = (await start_session(browser)).json()["csrf_token"]
    assert first != second
    response = await browser.post(
        "/api/auth/tokens", json={"name": "x"}, headers={"X-CSRF-Token": first}
    )
    assert response.status_code == 403


async def test_a_tampered_session_cookie_is_refused(
    browser: httpx.AsyncClient, settings: Settings
) -> None:
    await start_session(browser)
    value = browser.cookies["formloom_session"]
    browser.cookies.set("formloom_session", value[:-2] + ("00" if value[-2:] != "00" else "11"))
    response = await browser.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "invalid or expired credentials"
    [denied] = await audit_rows(settings.database_url, "auth.denied")
    assert denied["detail"]["channel"] == "cookie"


async def test_a_bearer_token_is_not_accepted_as_a_session_cookie(
    browser: httpx.AsyncClient, users: Users
) -> None:
    token = await users.token("alice")
    browser.cookies.set("formloom_session", token)
    assert (await browser.get("/api/auth/me")).status_code == 401


async def test_the_session_expires(browser: httpx.AsyncClient, clock: FixedClock) -> None:
    await start_session(browser)
    clock.advance(hours=12)
    assert (await browser.get("/api/auth/me")).status_code == 401


async def test_sign_out_revokes_the_session_and_clears_the_cookies(
    browser: httpx.AsyncClient, settings: Settings
) -> None:
    csrf = (await start_session(browser)).json()["csrf_token"]
    value = browser.cookies["formloom_session"]
    refused = await browser.delete("/api/auth/session")
    assert refused.status_code == 403  # sign-out is a change too
    response = await browser.delete("/api/auth/session", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    cleared = cookie_headers(response)
    assert 'formloom_session=""' in cleared["formloom_session"]
    assert "max-age=0" in cleared["formloom_session"].lower()
    assert "formloom_session" not in browser.cookies
    # The old cookie, replayed, no longer works.
    browser.cookies.set("formloom_session", value)
    assert (await browser.get("/api/auth/me")).status_code == 401
    actions = [r["action"] for r in await audit_rows(settings.database_url, "auth.")]
    assert actions[:2] == ["auth.sign_in", "auth.denied"]
    assert "auth.token_revoked" in actions and "auth.sign_out" in actions


async def test_sign_out_with_a_stale_cookie_still_clears_it(
    browser: httpx.AsyncClient, clock: FixedClock
) -> None:
    await start_session(browser)
    clock.advance(hours=13)
    response = await browser.delete("/api/auth/session")
    assert response.status_code == 204
    assert "formloom_session" not in browser.cookies


async def test_a_password_change_ends_other_sessions_but_not_this_one(
    browser: httpx.AsyncClient, users: Users
) -> None:
    other = await users.token("alice")
    csrf = (await start_session(browser)).json()["csrf_token"]
    change = {"current_password": PASSWORD, "new_password": "a new long password"}
    wrong = await browser.post(
        "/api/auth/password",
        json={**change, "current_password": "not it at all"},
        headers={"X-CSRF-Token": csrf},
    )
    assert wrong.status_code == 422
    response = await browser.post("/api/auth/password", json=change, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204, response.text
    assert (await browser.get("/api/auth/me")).status_code == 200
    stale = await browser.get("/api/auth/me", headers={"Authorization": f"Bearer {other}"})
    assert stale.status_code == 401
    again = await browser.post(
        "/api/auth/token", json={"username": "alice", "password": "a new long password"}
    )
    assert again.status_code == 200
