"""Rules in app definitions: checked at import, and evaluated by the dry-run endpoint."""

from __future__ import annotations

from typing import Any

import httpx

from tests import factories as f
from tests.conftest import Users

APP = "ward"
PAIN = {
    "key": "pain_alert",
    "priority": 10,
    "on": {"form": "visit", "event": "created"},
    "if": {">=": [{"var": "record.pain"}, 7]},
    "then": [
        {"type": "set", "values": {"flag": "urgent"}},
        {
            "type": "notify",
            "channel": "in_app",
            "recipients": [{"role": "doctor"}],
            "template": {"en": "Pain {{ record.pain }}", "zh-CN": "疼痛 {{ record.pain }}"},
        },
    ],
}


def definition(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form("visit", f.field("pain", "integer", min=0, max=10), f.field("flag")),
        locales=["en", "zh-CN"],
        label={"en": "Ward", "zh-CN": "病房"},
        roles=[{"key": "doctor", "label": {"en": "Doctor", "zh-CN": "医生"}}],
        rules=list(rules),
    )


def localised(document: dict[str, Any]) -> dict[str, Any]:
    for form in document["forms"]:
        form["label"] = {"en": form["label"], "zh-CN": form["label"]}
        for field in form["fields"]:
            field["label"] = {"en": field["label"], "zh-CN": field["label"]}
    return document


async def test_rules_are_checked_at_import_with_pointers(client: httpx.AsyncClient) -> None:
    bad = dict(PAIN, on={"form": "ward_round", "event": "created"})
    broken = {
        "key": "broken",
        "on": {"form": "visit", "event": "created"},
        "if": {">=": [{"var": "record.pian"}, 7]},
        "then": [{"type": "webhook", "method": "POST", "url": "ftp://example.org/x"}],
    }
    response = await client.post("/api/apps/import", json=localised(definition(bad, broken)))
    assert response.status_code == 422
    paths = [error["path"] for error in response.json()["errors"]]
    assert "/rules/0/on/form" in paths
    assert any(path.startswith("/rules/1/if") for path in paths)
    assert any(path.startswith("/rules/1/then/0/url") for path in paths)
    assert (await client.get(f"/api/apps/{APP}")).status_code == 404


async def test_a_rule_dry_run_returns_its_plan_and_changes_nothing(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (
        await client.post("/api/apps/import", json=localised(definition(PAIN)))
    ).status_code == 201
    url = f"/api/rules/{APP}/pain_alert/test"
    hit = await client.post(url, json={"record": {"pain": 8}})
    assert hit.status_code == 200, hit.text
    plan = hit.json()
    assert plan["dry_run"] is True and plan["record"]["flag"] == "urgent"
    [run] = plan["runs"]
    assert run["matched"] is True
    assert [(a["type"], a["mode"]) for a in run["actions"]] == [
        ("set", "sync"),
        ("notify", "outbound"),
    ]
    miss = (await client.post(url, json={"record": {"pain": 3}})).json()
    assert miss["runs"][0]["matched"] is False and miss["runs"][0]["actions"] == []
    # nothing was written anywhere
    assert (await client.get(f"/api/records/{APP}/visit?count=true")).json()["count"] == 0
    # bad input and access
    assert (
        await client.post(f"/api/rules/{APP}/nope/test", json={"record": {}})
    ).status_code == 404
    assert (await client.post(url, json={"record": {}, "colour": 1})).status_code == 422
    doctor = await users.create("doc", roles={APP: ["doctor"]})
    assert (await client.post(url, json={"record": {}}, headers=doctor.headers)).status_code == 403
