"""The editors' API for reports, dashboards and flows (``/api/apps/{app}/{section}/{key}``):
saved by the app's designers through the import's plan, If-Match, a new revision, an audit
row and rollback; errors pointed into the part; removing what something else names refused;
nobody else may read or change the definitions here."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select

from formloom.platform.db import Database
from formloom.platform.models import AuditEntry
from tests import factories as f
from tests.conftest import Users

APP = "ward"
REPORT = {
    "key": "pain_by_flag",
    "label": {"en": "Pain by flag"},
    "form": "visit",
    "rows": [{"field": "flag"}],
    "measures": [{"key": "n", "op": "count"}, {"key": "pain", "op": "avg", "field": "pain"}],
    "chart": {"type": "bar"},
}
DASHBOARD = {"key": "ward", "label": {"en": "Ward"}, "items": [{"report": "pain_by_flag"}]}
FLOW = {
    "key": "review",
    "form": "visit",
    "start": {"roles": ["chief"]},
    "nodes": [
        {"type": "start", "key": "begin"},
        {"type": "user_task", "key": "check", "title": "Check", "assignee": {"role": "chief"}},
        {"type": "end", "key": "done"},
    ],
    "edges": [{"from": "begin", "to": "check"}, {"from": "check", "to": "done"}],
}


def ward() -> dict[str, Any]:
    return f.app(
        APP,
        f.form("visit", f.field("pain", "integer", min=0, max=10), f.field("flag")),
        roles=[{"key": "chief"}, {"key": "nurse"}],
        permissions=[{"form": "visit", "roles": ["chief", "nurse"], "actions": ["create", "read"]}],
        design=["chief"],
    )


def without_key(part: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in part.items() if k != "key"}


async def install(client: httpx.AsyncClient) -> int:
    response = await client.post("/api/apps/import", json=ward())
    assert response.status_code in (200, 201), response.text
    return int(response.json()["revision"])


@pytest.mark.parametrize(
    ("section", "noun", "part"),
    [("reports", "report", REPORT), ("flows", "flow", FLOW)],
)
async def test_a_designer_adds_replaces_and_removes_a_part(
    client: httpx.AsyncClient,
    users: Users,
    db: Database,
    section: str,
    noun: str,
    part: dict[str, Any],
) -> None:
    revision = await install(client)
    chief = await users.create("chief", roles={APP: ["chief"]})
    url = f"/api/apps/{APP}/{section}/{part['key']}"

    plan = await client.put(f"{url}?dry_run=true", json=without_key(part), headers=chief.headers)
    assert plan.status_code == 200, plan.text
    assert plan.json()["dry_run"] is True
    assert (await client.get(url, headers=chief.headers)).status_code == 404

    stale = await client.put(url, json=part, headers={**chief.headers, "If-Match": '"99"'})
    assert stale.status_code == 412
    saved = await client.put(url, json=part, headers={**chief.headers, "If-Match": f'"{revision}"'})
    assert saved.status_code == 201, saved.text
    assert saved.json()["revision"] == revision + 1
    assert saved.headers["ETag"] == f'"{revision + 1}"'
    read = await client.get(url, headers=chief.headers)
    assert read.json()[noun] == part
    listed = await client.get(f"/api/apps/{APP}/{section}", headers=chief.headers)
    assert [p["key"] for p in listed.json()[section]] == [part["key"]]

    changed = {**part, "label": {"en": "Renamed"}}
    replaced = await client.put(url, json=changed, headers=chief.headers)
    assert replaced.status_code == 200, replaced.text
    assert (await client.get(url, headers=chief.headers)).json()[noun]["label"] == {"en": "Renamed"}

    removed = await client.delete(url, headers=chief.headers)
    assert removed.status_code == 200, removed.text
    assert (await client.get(url, headers=chief.headers)).status_code == 404
    assert (await client.delete(url, headers=chief.headers)).status_code == 404

    # rollback to the first save's revision brings the part back as it was
    back = await client.post(f"/api/apps/{APP}/rollback?to={revision + 1}")
    assert back.status_code == 200, back.text
    assert (await client.get(url, headers=chief.headers)).json()[noun] == part

    async with db.transaction(write=False) as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.app == APP, AuditEntry.actor == "chief")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert list(actions) == [
        f"app.{noun}_saved",  # the stale save was refused and is audited as failed
        f"app.{noun}_saved",
        f"app.{noun}_saved",
        f"app.{noun}_deleted",
        f"app.{noun}_deleted",  # the 404
    ]


async def test_a_saved_report_runs_for_its_readers(client: httpx.AsyncClient, users: Users) -> None:
    await install(client)
    chief = await users.create("chief", roles={APP: ["chief"]})
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    for pain, flag in ((8, "urgent"), (6, "urgent"), (2, "calm")):
        made = await client.post(
            f"/api/records/{APP}/visit", json={"data": {"pain": pain, "flag": flag}}
        )
        assert made.status_code == 201, made.text
    saved = await client.put(
        f"/api/apps/{APP}/reports/pain_by_flag", json=REPORT, headers=chief.headers
    )
    assert saved.status_code == 201, saved.text
    run = await client.get(f"/api/reports/{APP}/pain_by_flag", headers=nurse.headers)
    assert run.status_code == 200, run.text
    result = run.json()["result"]
    counts = {
        row["keys"][0]: result["cells"][r][0]["values"]["n"] for r, row in enumerate(result["rows"])
    }
    assert counts["urgent"] == 2 and counts["calm"] == 1, counts


async def test_errors_point_into_the_part_and_nothing_is_saved(
    client: httpx.AsyncClient, users: Users
) -> None:
    revision = await install(client)
    chief = await users.create("chief", roles={APP: ["chief"]})
    bad = {**REPORT, "rows": [{"field": "flga"}]}
    response = await client.put(
        f"/api/apps/{APP}/reports/pain_by_flag", json=bad, headers=chief.headers
    )
    assert response.status_code == 422, response.text
    paths = [e["path"] for e in response.json()["errors"]]
    assert paths and all(p.startswith("/rows/0") for p in paths), paths
    mismatch = await client.put(
        f"/api/apps/{APP}/reports/other", json=REPORT, headers=chief.headers
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["path"] == "/key"
    not_object = await client.put(
        f"/api/apps/{APP}/dashboards/ward", json=[1], headers=chief.headers
    )
    assert not_object.status_code == 422
    app = await client.get(f"/api/apps/{APP}")
    assert app.json()["revision"] == revision


async def test_a_report_on_a_dashboard_cannot_be_removed(
    client: httpx.AsyncClient, users: Users
) -> None:
    await install(client)
    chief = await users.create("chief", roles={APP: ["chief"]})
    for section, part in (("reports", REPORT), ("dashboards", DASHBOARD)):
        saved = await client.put(
            f"/api/apps/{APP}/{section}/{part['key']}", json=part, headers=chief.headers
        )
        assert saved.status_code == 201, saved.text
    refused = await client.delete(f"/api/apps/{APP}/reports/pain_by_flag", headers=chief.headers)
    assert refused.status_code == 422, refused.text
    errors = refused.json()["errors"]
    assert any(e.get("in") == "app" and e["path"].startswith("/dashboards/0") for e in errors)
    still = await client.get(f"/api/apps/{APP}/reports/pain_by_flag", headers=chief.headers)
    assert still.status_code == 200
    shown = await client.get(f"/api/dashboards/{APP}/ward", headers=chief.headers)
    assert shown.status_code == 200, shown.text


@pytest.mark.parametrize("section", ["reports", "dashboards", "flows"])
async def test_nobody_but_designers_reads_or_changes_the_definitions(
    client: httpx.AsyncClient, users: Users, section: str
) -> None:
    await install(client)
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    stranger = await users.create("stranger", roles={})
    part = {"reports": REPORT, "dashboards": DASHBOARD, "flows": FLOW}[section]
    url = f"/api/apps/{APP}/{section}/{part['key']}"
    for who in (nurse, stranger):
        assert (
            await client.get(f"/api/apps/{APP}/{section}", headers=who.headers)
        ).status_code == 403
        assert (await client.put(url, json=part, headers=who.headers)).status_code == 403
        assert (await client.delete(url, headers=who.headers)).status_code == 403
