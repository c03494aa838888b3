"""Checking a password (argon2: ~50-400 ms of CPU) runs off the event loop, so a burst of
sign-ins does not stall every other request on the server (issue 19, item 5)."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from formloom.platform.auth import passwords
from tests.conftest import Users

PASSWORD = "correct horse battery"


@pytest.fixture
def checked_on(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """For each password check: whether it ran on the event loop's thread."""
    loop_thread = threading.get_ident()
    seen: list[bool] = []
    verify = passwords.verify_password

    def recording(*args: Any) -> tuple[bool, bool]:
        seen.append(threading.get_ident() == loop_thread)
        return verify(*args)

    monkeypatch.setattr(passwords, "verify_password", recording)
    return seen


async def test_sign_in_checks_the_password_off_the_event_loop(
    anon_client: httpx.AsyncClient, users: Users, checked_on: list[bool]
) -> None:
    await users.create("alice")
    good = {"username": "alice", "password": PASSWORD}
    assert (await anon_client.post("/api/auth/token", json=good)).status_code == 200
    bad = {"username": "nobody", "password": "wrong password"}
    assert (await anon_client.post("/api/auth/token", json=bad)).status_code == 401
    assert checked_on == [False, False]


async def test_changing_ones_password_checks_the_old_one_off_the_event_loop(
    anon_client: httpx.AsyncClient, users: Users, checked_on: list[bool]
) -> None:
    alice = await users.create("alice")
    response = await anon_client.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": "another long password"},
        headers=alice.headers,
    )
    assert response.status_code == 204, response.text
    assert checked_on == [False]
