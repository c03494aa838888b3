"""Exporting a list is an action a grant allows (issue 17, item 13), on SQLite and
PostgreSQL: the clinic's nurse reads patients on screen but has no export button and gets 403
from the export API (CSV and XLSX); a branch manager exports her branch's patients."""

from __future__ import annotations

import httpx

from formloom import builtin_apps
from tests.conftest import Users

APP = "clinic_crm"


async def test_only_a_grant_to_export_lets_a_list_leave_the_clinic(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=builtin_apps.load(APP))).status_code == 201
    made = await client.post(
        f"/api/records/{APP}/patient", json={"data": {"name": "Chen Jing", "phone": "+86139"}}
    )
    assert made.status_code == 201, made.text
    nurse = await users.create("nurse_x", roles={APP: ["nurse"]}, attributes={"department": "x"})
    manager = await users.create("manager_x", roles={APP: ["manager"]})
    page = await client.get(f"/apps/{APP}/forms/patient", headers=nurse.headers)
    assert page.status_code == 200 and "Chen Jing" in page.text
    assert 'data-testid="export"' not in page.text
    for kind in ("csv", "xlsx"):
        refused = await client.get(
            f"/api/exports/{APP}/patient", params={"format": kind}, headers=nurse.headers
        )
        assert refused.status_code == 403, refused.text
        assert "export" in refused.json()["detail"]
    page = await client.get(f"/apps/{APP}/forms/patient", headers=manager.headers)
    assert 'data-testid="export"' in page.text
    exported = await client.get(f"/api/exports/{APP}/patient", headers=manager.headers)
    assert exported.status_code == 200 and "Chen Jing" in exported.text
