"""Users for permission tests, made through the public API as a platform admin would."""

from __future__ import annotations

from typing import Any

import httpx

PASSWORD = "correct horse battery staple"


async def make_user(
    admin: httpx.AsyncClient,
    username: str,
    *,
    roles: dict[str, list[str]] | None = None,
    attributes: dict[str, Any] | None = None,
    is_admin: bool = False,
) -> str:
    """Create a user with ``roles`` per app and ``attributes``; return a bearer token."""
    response = await admin.post(
        "/api/users",
        json={
            "username": username,
            "password": PASSWORD,
            "is_admin": is_admin,
            "attributes": attributes or {},
        },
    )
    assert response.status_code == 201, response.text
    if roles:
        response = await admin.put(f"/api/users/{username}/roles", json=roles)
        assert response.status_code == 200, response.text
    response = await admin.post(
        "/api/auth/token", json={"username": username, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def as_user(admin: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    """A client on the same in-process service that signs in with ``token``."""
    return httpx.AsyncClient(
        transport=admin._transport,
        base_url=str(admin.base_url),
        headers={"Authorization": f"Bearer {token}"},
    )
