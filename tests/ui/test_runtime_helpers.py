"""Helpers of the runtime browser tests (no tests here; named so it sits with them)."""

from __future__ import annotations

import secrets
from typing import Any

from tests.ui.conftest import LiveServer

APP = "clinic_crm"
PASSWORD = "runtime-tests-pw"


def unique_phone() -> str:
    return f"+86 138 {secrets.randbelow(10_000):04d} {secrets.randbelow(10_000):04d}"


def make_user(
    server: LiveServer, username: str, roles: list[str], attributes: dict[str, Any] | None = None
) -> str:
    """A user holding clinic roles (through the admin API); returns the username."""
    with server.api() as api:
        answer = api.post(
            "/api/users",
            json={"username": username, "password": PASSWORD, "attributes": attributes or {}},
        )
        assert answer.status_code in (201, 409), answer.text
        answer = api.put(f"/api/users/{username}/roles", json={APP: roles})
        assert answer.status_code == 200, answer.text
    return username


def create(server: LiveServer, form: str, data: dict[str, Any]) -> dict[str, Any]:
    with server.api() as api:
        answer = api.post(f"/api/records/{APP}/{form}", json={"data": data})
        assert answer.status_code == 201, answer.text
        record: dict[str, Any] = answer.json()
        return record


def first_id(server: LiveServer, form: str, **params: Any) -> str:
    with server.api() as api:
        answer = api.get(f"/api/records/{APP}/{form}", params={"limit": 1, **params})
        assert answer.status_code == 200, answer.text
        record_id: str = answer.json()["items"][0]["id"]
        return record_id
