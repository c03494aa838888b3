"""Every CSV export is audited (issue 17, item 13): who exported which form, and what they
asked for — on SQLite and PostgreSQL, for a form that is not marked sensitive too."""

from __future__ import annotations

import json

import httpx

from tests import factories as f
from tests.conftest import Users

APP = "desk"


async def test_an_export_is_audited(client: httpx.AsyncClient, users: Users) -> None:
    document = f.app(
        APP,
        f.form("patient", f.field("name"), f.field("phone", "phone")),
        roles=[{"key": "clerk"}],
        permissions=[{"form": "patient", "roles": ["clerk"], "actions": ["read"]}],
    )
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    for name in ("Li", "He Li"):
        data = {"name": name, "phone": "+86 139 0000 0001"}
        assert (
            await client.post(f"/api/records/{APP}/patient", json={"data": data})
        ).status_code == 201
    clerk = await users.create("cleo", roles={APP: ["clerk"]})
    rule = {"==": [{"var": "name"}, "Li"]}
    answer = await client.get(
        f"/api/exports/{APP}/patient",
        params={"filter": json.dumps(rule), "q": "li", "fields": "name,phone"},
        headers=clerk.headers,
    )
    assert answer.status_code == 200 and "+86 139 0000 0001" in answer.text
    rows = (await client.get("/api/audit", params={"action": "record.export"})).json()["items"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["actor"], row["app"], row["form"], row["outcome"]) == ("cleo", APP, "patient", "ok")
    assert row["detail"]["filter"] == rule and row["detail"]["q"] == "li"
    assert row["detail"]["fields"] == ["name", "phone"]
