"""Service accounts for integrations: made by an admin (API or CLI), no password (they never
sign in), their own roles and tokens; what they do is done, and audited, as themselves —
not as the admin who made their token. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from formloom.platform.cli import main
from formloom.platform.settings import Settings
from tests import factories as f
from tests.platform.auth.helpers import audit_rows
from tests.platform.auth.test_cli import api, use_database  # noqa: F401 - a fixture

APP = "clinic"


def clinic() -> dict[str, Any]:
    return f.app(
        APP,
        f.form("visit", f.field("patient", required=True), f.field("pain", "integer")),
        roles=[{"key": "integration", "label": "Integration"}, {"key": "doctor", "label": "Dr"}],
        permissions=[{"roles": ["integration"], "form": "visit", "actions": ["create", "read"]}],
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_service_account_acts_and_is_audited_as_itself(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await client.post("/api/apps/import", json=clinic())).status_code == 201
    made = await client.post("/api/users", json={"username": "his_bridge", "service": True})
    assert made.status_code == 201, made.text
    account = made.json()
    assert account["is_service"] is True and account["is_admin"] is False
    assert "password" not in account or account["password"] is None
    roles = await client.put("/api/users/his_bridge/roles", json={APP: ["integration"]})
    assert roles.status_code == 200, roles.text
    issued = await client.post(
        "/api/users/his_bridge/tokens", json={"name": "HIS", "app": APP, "days": 30}
    )
    assert issued.status_code == 201, issued.text
    token = issued.json()["token"]

    me = (await anon_client.get("/api/auth/me", headers=bearer(token))).json()
    assert me["username"] == "his_bridge" and me["is_admin"] is False
    written = await anon_client.post(
        f"/api/records/{APP}/visit", json={"data": {"patient": "Wang", "pain": 3}},
        headers=bearer(token),
    )  # fmt: skip
    assert written.status_code == 201, written.text
    record = written.json()
    assert record["created_by"] == "his_bridge"
    # its own roles, not the admin's: no admin endpoint, no update it was not granted
    assert (await anon_client.get("/api/users", headers=bearer(token))).status_code == 403
    patched = await anon_client.patch(
        f"/api/records/{APP}/visit/{record['id']}", json={"data": {"pain": 4}},
        headers=bearer(token),
    )  # fmt: skip
    assert patched.status_code == 403

    [created] = await audit_rows(settings.database_url, "record.create")
    assert created["actor"] == "his_bridge" and created["record_id"] == record["id"]
    [token_made] = await audit_rows(settings.database_url, "auth.token_created")
    assert token_made["actor"] == "admin"
    assert token_made["detail"]["username"] == "his_bridge"
    made_rows = await audit_rows(settings.database_url, "user.created")
    [user_made] = [r for r in made_rows if r["detail"]["username"] == "his_bridge"]
    assert user_made["detail"]["service"] is True and user_made["actor"] == "admin"


async def test_a_service_account_never_signs_in_and_has_no_password(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    refused = await client.post(
        "/api/users", json={"username": "bot", "service": True, "password": "long enough pw 1"}
    )
    assert refused.status_code == 422
    assert [e["path"] for e in refused.json()["errors"]] == ["/password"]
    admin_bot = await client.post(
        "/api/users", json={"username": "bot", "service": True, "is_admin": True}
    )
    assert admin_bot.status_code == 422
    assert [e["path"] for e in admin_bot.json()["errors"]] == ["/is_admin"]
    assert (
        await client.post("/api/users", json={"username": "bot", "service": True})
    ).status_code == 201
    no_password = await client.post(
        "/api/users/bot/password", json={"password": "long enough pw 1"}
    )
    assert no_password.status_code == 422
    promoted = await client.patch("/api/users/bot", json={"is_admin": True})
    assert promoted.status_code == 422
    for password in ("", "long enough pw 1"):
        answer = await anon_client.post(
            "/api/auth/token", json={"username": "bot", "password": password}
        )
        assert answer.status_code in (401, 422)
    # people make their own tokens: an admin cannot mint one that acts as a person
    person = await client.post("/api/users", json={"username": "nurse1"})
    assert person.status_code == 201
    assert (await client.post("/api/users/nurse1/tokens", json={"name": "x"})).status_code == 409


def test_the_cli_makes_a_service_account_with_roles_and_a_token(
    use_database: str,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    path = tmp_path / "clinic.json"
    path.write_text(json.dumps(clinic()))
    assert main(["app", "import", str(path)]) == 0
    assert main(["user", "create-service", "his", "--app", APP, "--role", "surgeon"]) == 2
    assert "declares no role 'surgeon'" in capsys.readouterr().err
    code = main(["user", "create-service", "his", "--app", APP, "--role", "integration"])
    assert code == 0
    out = capsys.readouterr().out
    assert "service account 'his' created; roles in 'clinic': integration" in out
    token = out.rsplit("(shown once): ", 1)[1].strip()
    written = api(
        use_database, "POST", f"/api/records/{APP}/visit",
        json={"data": {"patient": "Li"}}, headers=bearer(token),
    )  # fmt: skip
    assert written.status_code == 201, written.text
    assert written.json()["created_by"] == "his"
    [created] = asyncio.run(audit_rows(use_database, "record.create"))
    assert created["actor"] == "his"
    main(["user", "list"])
    assert "service" in capsys.readouterr().out
