"""The rule editor's API and the ``design`` grant: saving one rule (plan, If-Match, audit,
revision, rollback), turning it off and on, deleting it, trying a draft on a record, and who
may do any of it (an app role granted ``design``; nobody else)."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select

from formloom.platform.db import Database
from formloom.platform.models import AuditEntry
from tests import factories as f
from tests.conftest import Users

APP = "ward"
OTHER = "clinic2"
FLAG = {
    "key": "flag_pain",
    "on": {"form": "visit", "event": "created"},
    "if": {">=": [{"var": "record.pain"}, 7]},
    "then": [{"type": "set", "values": {"flag": "urgent"}}],
}


def ward(*rules: dict[str, Any], key: str = APP, design: list[str] | None = None) -> dict[str, Any]:
    return f.app(
        key,
        f.form("visit", f.field("pain", "integer", min=0, max=10), f.field("flag")),
        roles=[{"key": "chief"}, {"key": "nurse"}],
        permissions=[{"form": "visit", "roles": ["chief", "nurse"], "actions": ["create", "read"]}],
        design=["chief"] if design is None else design,
        rules=list(rules),
    )


async def install(client: httpx.AsyncClient, document: dict[str, Any]) -> int:
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code in (200, 201), response.text
    return int(response.json()["revision"])


async def test_design_must_name_declared_roles(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/apps/import", json=ward(design=["chief", "boss", "chief"]))
    assert response.status_code == 422
    errors = {(e["path"], e["code"]) for e in response.json()["errors"]}
    assert errors == {("/design/1", "unknown_role"), ("/design/2", "duplicate_key")}


async def test_a_designer_saves_a_rule_through_plan_if_match_and_a_new_revision(
    client: httpx.AsyncClient, users: Users, db: Database
) -> None:
    revision = await install(client, ward())
    chief = await users.create("chief", roles={APP: ["chief"]})
    url = f"/api/apps/{APP}/rules/flag_pain"
    body = {k: v for k, v in FLAG.items() if k != "key"}

    plan = await client.put(f"{url}?dry_run=true", json=body, headers=chief.headers)
    assert plan.status_code == 200, plan.text
    assert plan.json()["dry_run"] is True
    assert plan.json()["rules"]["added"] == ["flag_pain"]
    assert (await client.get(url, headers=chief.headers)).status_code == 404  # nothing saved

    stale = await client.put(url, json=body, headers={**chief.headers, "If-Match": '"99"'})
    assert stale.status_code == 412
    saved = await client.put(url, json=body, headers={**chief.headers, "If-Match": f'"{revision}"'})
    assert saved.status_code == 201, saved.text
    assert saved.json()["revision"] == revision + 1
    assert saved.headers["ETag"] == f'"{revision + 1}"'
    read = await client.get(url, headers=chief.headers)
    assert read.json()["rule"] == FLAG

    # the rule runs on the next write
    visit = await client.post(
        f"/api/records/{APP}/visit", json={"data": {"pain": 8}}, headers=chief.headers
    )
    assert visit.status_code == 201, visit.text
    assert visit.json()["data"]["flag"] == "urgent"

    calm = await client.post(
        f"/api/records/{APP}/visit", json={"data": {"pain": 2}}, headers=chief.headers
    )
    assert calm.status_code == 201
    listed = await client.get(f"/api/apps/{APP}/rules", headers=chief.headers)
    [item] = listed.json()["rules"]
    assert item["rule"] == FLAG
    assert {k: v for k, v in item["log"].items() if k != "last_run"} == {
        "runs": 2,
        "matches": 1,
        "errors": 0,
    }
    assert item["log"]["last_run"].endswith("Z")

    # replaced in place, audited
    lower = {**body, "if": {">=": [{"var": "record.pain"}, 6]}}
    again = await client.put(url, json=lower, headers={**chief.headers, "If-Match": "*"})
    assert again.status_code == 200 and again.json()["created"] is False
    async with db.transaction(write=False) as session:
        rows = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor, AuditEntry.detail).where(
                    AuditEntry.action == "app.rule_saved", AuditEntry.outcome == "ok"
                )
            )
        ).all()
    assert [(r[0], r[1], r[2]["change"]) for r in rows] == [
        ("app.rule_saved", "chief", "added"),
        ("app.rule_saved", "chief", "changed"),
    ]


async def test_rule_errors_point_into_the_rule(client: httpx.AsyncClient, users: Users) -> None:
    await install(client, ward())
    chief = await users.create("chief", roles={APP: ["chief"]})
    broken = {
        "on": {"form": "visit", "event": "created"},
        "if": {">=": [{"var": "record.pian"}, 7]},
        "then": [{"type": "set", "values": {"flag": "x"}}, {"type": "notify"}],
    }
    response = await client.put(f"/api/apps/{APP}/rules/broken", json=broken, headers=chief.headers)
    assert response.status_code == 422
    paths = [e["path"] for e in response.json()["errors"]]
    assert paths == ["/then/1/channel", "/then/1/recipients", "/then/1/template"]
    unknown = {**broken, "then": broken["then"][:1]}
    response = await client.put(
        f"/api/apps/{APP}/rules/broken", json=unknown, headers=chief.headers
    )
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["/if"]
    mismatch = await client.put(
        f"/api/apps/{APP}/rules/broken", json={**broken, "key": "other"}, headers=chief.headers
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["errors"][0]["path"] == "/key"


async def test_a_disabled_rule_never_runs_and_rollback_restores_rules(
    client: httpx.AsyncClient, users: Users
) -> None:
    revision = await install(client, ward(FLAG))
    chief = await users.create("chief", roles={APP: ["chief"]})
    url = f"/api/apps/{APP}/rules/flag_pain"
    records = f"/api/records/{APP}/visit"

    off = await client.patch(url, json={"enabled": False}, headers=chief.headers)
    assert off.status_code == 200, off.text
    assert (await client.get(url, headers=chief.headers)).json()["rule"]["enabled"] is False
    quiet = await client.post(records, json={"data": {"pain": 9}}, headers=chief.headers)
    assert quiet.json()["data"].get("flag") is None

    on = await client.patch(url, json={"enabled": True}, headers=chief.headers)
    assert on.status_code == 200
    assert "enabled" not in (await client.get(url, headers=chief.headers)).json()["rule"]
    loud = await client.post(records, json={"data": {"pain": 9}}, headers=chief.headers)
    assert loud.json()["data"]["flag"] == "urgent"
    bad = await client.patch(url, json={"enabled": "no"}, headers=chief.headers)
    assert bad.status_code == 422

    gone = await client.delete(url, headers=chief.headers)
    assert gone.status_code == 200, gone.text
    assert (await client.get(url, headers=chief.headers)).status_code == 404
    assert (await client.delete(url, headers=chief.headers)).status_code == 404
    after = await client.post(records, json={"data": {"pain": 9}}, headers=chief.headers)
    assert after.json()["data"].get("flag") is None

    # rolling back (an admin's act) brings the rule back as it was
    back = await client.post(f"/api/apps/{APP}/rollback?to={revision}")
    assert back.status_code == 200, back.text
    assert (await client.get(url, headers=chief.headers)).json()["rule"] == FLAG


async def test_only_the_apps_designers_may_save(client: httpx.AsyncClient, users: Users) -> None:
    await install(client, ward(FLAG))
    await install(client, ward(key=OTHER))
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    other_chief = await users.create("chief2", roles={OTHER: ["chief"], APP: ["nurse"]})
    scoped = await users.create("chief3", roles={APP: ["chief"], OTHER: ["chief"]}, app=OTHER)
    outsider = await users.create("outsider")
    url = f"/api/apps/{APP}/rules/flag_pain"
    body = {k: v for k, v in FLAG.items() if k != "key"}
    form = {"key": "visit", "label": "Visit", "fields": [f.field("pain", "integer")]}
    for who in (nurse, other_chief, scoped, outsider):
        attempts = [
            await client.put(url, json=body, headers=who.headers),
            await client.put(f"{url}?dry_run=true", json=body, headers=who.headers),
            await client.patch(url, json={"enabled": False}, headers=who.headers),
            await client.delete(url, headers=who.headers),
            await client.get(url, headers=who.headers),
            await client.get(f"/api/apps/{APP}/rules", headers=who.headers),
            await client.post(f"{url}/try", json={"record_id": "x" * 26}, headers=who.headers),
            await client.put(f"/api/apps/{APP}/forms/visit", json=form, headers=who.headers),
        ]
        assert [a.status_code for a in attempts] == [403] * len(attempts), who.username
    # the scoped token's user is a designer of APP, but the token is for OTHER only
    chief3 = await users.token("chief3")
    ok = await client.get(url, headers={"Authorization": f"Bearer {chief3}"})
    assert ok.status_code == 200
    # whole-app changes stay with platform admins
    chief = await users.create("chief", roles={APP: ["chief"]})
    assert (
        await client.post("/api/apps/import", json=ward(), headers=chief.headers)
    ).status_code == 403
    assert (await client.get(f"/api/apps/{APP}/export", headers=chief.headers)).status_code == 403


async def test_a_designer_saves_a_form(client: httpx.AsyncClient, users: Users) -> None:
    revision = await install(client, ward())
    chief = await users.create("chief", roles={APP: ["chief"]})
    form = {
        "key": "visit",
        "label": "Visit",
        "fields": [f.field("pain", "integer", min=0, max=10), f.field("flag"), f.field("note")],
    }
    saved = await client.put(
        f"/api/apps/{APP}/forms/visit",
        json=form,
        headers={**chief.headers, "If-Match": str(revision)},
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["revision"] == revision + 1


async def test_trying_a_draft_on_a_record_writes_nothing(
    client: httpx.AsyncClient, users: Users
) -> None:
    await install(client, ward(FLAG))
    chief = await users.create("chief", roles={APP: ["chief"]})
    created = await client.post(
        f"/api/records/{APP}/visit", json={"data": {"pain": 6}}, headers=chief.headers
    )
    record = created.json()
    assert record["data"].get("flag") is None
    url = f"/api/apps/{APP}/rules/flag_pain/try"
    saved = await client.post(url, json={"record_id": record["id"]}, headers=chief.headers)
    assert saved.status_code == 200, saved.text
    assert saved.json()["runs"][0]["matched"] is False
    draft = {**FLAG, "if": {">=": [{"var": "record.pain"}, 6]}}
    tried = await client.post(
        url, json={"record_id": record["id"], "rule": draft}, headers=chief.headers
    )
    assert tried.status_code == 200, tried.text
    [run] = tried.json()["runs"]
    assert run["matched"] is True and run["actions"][0]["type"] == "set"
    assert tried.json()["record"]["flag"] == "urgent"
    stored = await client.get(f"/api/records/{APP}/visit/{record['id']}", headers=chief.headers)
    assert stored.json()["data"].get("flag") is None
    broken = await client.post(
        url,
        json={"record_id": record["id"], "rule": {**draft, "if": {"var": "record.nope"}}},
        headers=chief.headers,
    )
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["path"].startswith("/if")


async def test_designers_read_the_rule_log_and_test_saved_rules(
    client: httpx.AsyncClient, users: Users
) -> None:
    await install(client, ward(FLAG))
    chief = await users.create("chief", roles={APP: ["chief"]})
    nurse = await users.create("nurse", roles={APP: ["nurse"]})
    made = await client.post(
        f"/api/records/{APP}/visit", json={"data": {"pain": 9}}, headers=chief.headers
    )
    assert made.status_code == 201
    log = await client.get(f"/api/rules/{APP}/log", headers=chief.headers)
    assert log.status_code == 200, log.text
    assert [(i["rule"], i["matched"]) for i in log.json()["items"]] == [("flag_pain", True)]
    test = f"/api/rules/{APP}/flag_pain/test"
    tested = await client.post(test, json={"record": {"pain": 8}}, headers=chief.headers)
    assert tested.status_code == 200 and tested.json()["runs"][0]["matched"] is True
    assert (await client.get(f"/api/rules/{APP}/log", headers=nurse.headers)).status_code == 403
    assert (await client.post(test, json={"record": {}}, headers=nurse.headers)).status_code == 403
    # platform admins still read the log of an app they name, installed or not
    assert (await client.get("/api/rules/nowhere/log")).status_code == 200
