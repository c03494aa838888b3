"""The public page of a link (``/p/<token>``) and links made by rules (``create_link``),
on SQLite and PostgreSQL.

The page shows only the link's fields and never a record; unknown, used, expired and
withdrawn links are friendly pages (404/410), not JSON. A rule makes a link bound to the
visit, texts its URL through a local gateway, the patient submits through the page's API,
and the rule log names the link but never holds its token.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from formloom.platform.apps.service import AppCatalog
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.links import tokens
from formloom.platform.models.audit import AuditEntry
from formloom.platform.models.automation import OutboxMessage, RuleRunLog
from formloom.platform.models.public_link import PublicLink
from formloom.platform.rules.worker import Worker
from formloom.platform.settings import Settings
from tests import factories as f
from tests.servers import http_sink

APP = "clinic"
BASE = "https://clinic.example.com"
SCORES = [{"value": str(n), "label": {"en": f"{n} stars", "zh-CN": f"{n} 星"}} for n in (1, 5)]

SURVEY_RULE = {
    "key": "visit_survey",
    "on": {"form": "visit", "event": "created"},
    "then": [
        {"type": "create_link", "form": "survey", "bind": "visit",
         "fields": ["score", "comment"], "expires": "P7D", "as": "survey"},
        {"type": "notify", "channel": "sms_gateway",
         "recipients": [{"address": {"var": "record.phone"}}],
         "template": {"en": "Please rate your visit: {{ links.survey }}",
                      "zh-CN": "请评价本次就诊：{{ links.survey }}"}},
    ],
}  # fmt: skip


def definition(*rules: dict[str, Any]) -> dict[str, Any]:
    return f.app(
        APP,
        f.form("visit", f.field("patient_name", required=True), f.field("phone", "phone")),
        f.form(
            "survey",
            f.field("visit", "relation", target="visit"),
            f.field(
                "score",
                "select",
                options=SCORES,
                required=True,
                label={"en": "Score", "zh-CN": "评分"},
            ),
            f.field("comment", "textarea", max_length=200),
            f.field("staff_note", "text"),
        ),  # fmt: skip
        locales=["zh-CN", "en"],
        rules=list(rules),
    )


async def install(client: httpx.AsyncClient, *rules: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/apps/import", json=definition(*rules))


async def visit(client: httpx.AsyncClient, name: str = "Wang Fang") -> str:
    made = await client.post(
        f"/api/records/{APP}/visit",
        json={"data": {"patient_name": name, "phone": "+8613800000000"}},
    )
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


async def staff_link(client: httpx.AsyncClient, visit_id: str) -> dict[str, Any]:
    made = await client.post(
        f"/api/apps/{APP}/forms/survey/links",
        json={"bind": {"field": "visit", "record": visit_id}, "fields": ["score", "comment"]},
    )
    assert made.status_code == 201, made.text
    return dict(made.json())


def page_data(html: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="form-data">(.*?)</script>', html, re.S)
    assert found is not None
    return dict(json.loads(found.group(1)))


async def test_the_page_shows_only_the_links_fields_and_no_record(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    assert (await install(client)).status_code == 201
    visit_id = await visit(client)
    link = await staff_link(client, visit_id)
    page = await anon_client.get(link["url"], headers={"accept-language": "zh-CN,zh;q=0.9"})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-store"
    assert "set-cookie" not in page.headers
    assert '<html lang="zh-CN" data-timezone="UTC">' in page.text
    shown = page_data(page.text)
    assert [x["key"] for x in shown["form"]["fields"]] == ["score", "comment"]
    # nothing of any record: not the bound visit's id, not its values
    assert visit_id not in page.text and "Wang Fang" not in page.text
    assert "staff_note" not in page.text
    english = await anon_client.get(link["url"] + "?lang=en")
    assert '<html lang="en" data-timezone="UTC">' in english.text and "Submit" in english.text
    # the page's script posts to the JSON API; the record is bound to the visit
    sent = await anon_client.post(f"/api/public/{link['token']}", json={"data": {"score": "5"}})
    assert sent.status_code == 201, sent.text
    [survey] = (await client.get(f"/api/records/{APP}/survey")).json()["items"]
    assert survey["data"]["visit"] == visit_id
    used = await anon_client.get(link["url"])
    assert used.status_code == 410
    assert used.headers["content-type"].startswith("text/html")
    assert 'data-testid="link-problem"' in used.text and "already been used" in used.text


async def test_unknown_expired_and_withdrawn_links_are_friendly_pages(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, clock: FixedClock
) -> None:
    assert (await install(client)).status_code == 201
    visit_id = await visit(client)
    link = await staff_link(client, visit_id)
    for wrong in ("/p/nothing", f"/p/{link['id']}.wrongsecret", "/p/" + "x" * 300):
        page = await anon_client.get(wrong, headers={"accept-language": "zh-CN"})
        assert page.status_code == 404, wrong
        assert page.headers["content-type"].startswith("text/html")
        assert "此链接无效" in page.text
    withdrawn = await staff_link(client, visit_id)
    gone = await client.delete(f"/api/apps/{APP}/forms/survey/links/{withdrawn['id']}")
    assert gone.status_code == 204
    assert (await anon_client.get(withdrawn["url"])).status_code == 410
    clock.advance(days=8)
    expired = await anon_client.get(link["url"])
    assert expired.status_code == 410 and "can no longer be used" in expired.text


async def test_a_rule_texts_a_link_bound_to_the_visit_and_the_patient_answers(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    settings: Settings,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_base_url", BASE)
    installed = await install(client, SURVEY_RULE)
    assert installed.status_code == 201, installed.text
    visit_id = await visit(client)
    with http_sink() as gateway:
        local = settings.model_copy(update={"sms_gateway_url": f"{gateway.url}/send"})
        db = Database(settings.database_url)
        try:
            report = await Worker(db, AppCatalog(), local).run_once(clock.now())
            async with db.transaction(write=False) as session:
                [link] = (await session.execute(select(PublicLink))).scalars()
                [log] = (await session.execute(select(RuleRunLog))).scalars()
                [message] = (await session.execute(select(OutboxMessage))).scalars()
                audits = (
                    await session.execute(
                        select(AuditEntry).where(AuditEntry.action.like("public_link.%"))
                    )
                ).scalars()
                created = [(a.action, a.actor) for a in audits]
        finally:
            await db.dispose()
    assert report.delivered == 1, report.errors
    [text] = gateway.requests
    assert text.body["to"] == "+8613800000000"
    found = re.fullmatch(r"请评价本次就诊：https://clinic\.example\.com/p/(\S+)", text.body["text"])
    assert found is not None, text.body["text"]
    token = found.group(1)
    assert token.startswith(f"{link.id}.")
    secret = token.partition(".")[2]
    assert (link.created_by, link.creator_id) == ("rule:visit_survey", None)
    assert (link.bind_field, link.bind_record, link.fields) == (
        "visit",
        visit_id,
        ["score", "comment"],
    )
    assert link.expires_at == clock.now() + (link.expires_at - link.created_at)
    assert (link.expires_at - link.created_at).days == 7
    assert created == [("public_link.created", "rule:visit_survey")]
    # the rule log names the link, never its secret; the outbox row holds the URL to send
    logged = json.dumps(log.runs)
    assert secret not in logged and link.id in logged
    assert log.runs[0]["links"] == [{"as": "survey", "link": link.id}]
    assert "warnings" not in log.runs[0]
    assert message.status == "done"
    dry = await client.post(
        f"/api/rules/{APP}/visit_survey/test", json={"record": {"patient_name": "X"}}
    )
    assert dry.status_code == 200, dry.text
    [run] = dry.json()["runs"]
    assert run["actions"][0]["data"]["as"] == "survey"
    assert "links" not in run["actions"][1]["data"]["context"]  # made only when carried out
    # the patient: no account, the page, then the page's API
    page = await anon_client.get(f"/p/{token}")
    assert page.status_code == 200
    assert [x["key"] for x in page_data(page.text)["form"]["fields"]] == ["score", "comment"]
    assert visit_id not in page.text
    refused = await anon_client.post(f"/api/public/{token}", json={"data": {"staff_note": "x"}})
    assert refused.status_code == 422
    sent = await anon_client.post(
        f"/api/public/{token}", json={"data": {"score": "5", "comment": "很好"}}
    )
    assert sent.status_code == 201, sent.text
    [survey] = (await client.get(f"/api/records/{APP}/survey")).json()["items"]
    assert survey["data"] == {"visit": visit_id, "score": "5", "comment": "很好"}
    assert survey["created_by"] == f"public-link:{link.id}"
    assert (await anon_client.get(f"/p/{token}")).status_code == 410
    again = await anon_client.post(f"/api/public/{token}", json={"data": {"score": "1"}})
    assert again.status_code == 410


async def test_without_a_base_url_the_link_is_relative_and_the_log_warns(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tokens, "_base_url", None)
    assert (await install(client, SURVEY_RULE)).status_code == 201
    await visit(client)
    log = await client.get(f"/api/rules/{APP}/log")
    assert log.status_code == 200, log.text
    assert "FORMLOOM_PUBLIC_BASE_URL is not set" in log.text
    [message] = (await client.get("/api/outbox")).json()["items"]
    assert message["kind"] == "notify"


async def test_a_rule_made_link_stops_when_the_rule_is_removed(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await install(client, SURVEY_RULE)).status_code == 201
    await visit(client)
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            [message] = (await session.execute(select(OutboxMessage))).scalars()
    finally:
        await db.dispose()
    context = message.payload["action"]["data"]["context"]
    token = context["links"]["survey"].rpartition("/p/")[2]
    assert (await anon_client.get(f"/p/{token}")).status_code == 200
    assert (await install(client)).status_code in (200, 201)  # the rule is gone
    assert (await anon_client.get(f"/p/{token}")).status_code == 410


@pytest.mark.parametrize(
    ("action", "pointer", "code"),
    [
        ({"bind": "score"}, "/rules/0/then/0/bind", "not_a_relation"),
        ({"form": "visit", "bind": None, "fields": ["nope"]}, "/rules/0/then/0/fields/0",
         "unknown_field"),
        ({"expires": "P1Y"}, "/rules/0/then/0/expires", "range"),
        ({"fields": ["comment"]}, "/rules/0/then/0/fields", "required"),
        ({"after": "PT1H"}, "/rules/0/then/0", "delayed_link"),
    ],
)  # fmt: skip
async def test_create_link_is_checked_at_import(
    client: httpx.AsyncClient, action: dict[str, Any], pointer: str, code: str
) -> None:
    rule = json.loads(json.dumps(SURVEY_RULE))
    rule["then"][0].update(action)
    refused = await install(client, rule)
    assert refused.status_code == 422, refused.text
    found = [(e["path"], e["code"]) for e in refused.json()["errors"]]
    assert any(p.endswith(pointer.removeprefix("/rules")) and c == code for p, c in found), found


SURVEY_FLOW = {
    "key": "aftercare",
    "label": "Aftercare",
    "form": "visit",
    "nodes": [
        {"type": "start", "key": "begin"},
        {"type": "action", "key": "ask", "actions": SURVEY_RULE["then"]},
        {"type": "end", "key": "done"},
    ],
    "edges": [{"from": "begin", "to": "ask"}, {"from": "ask", "to": "done"}],
}


async def test_a_flows_action_node_makes_a_link_too(
    client: httpx.AsyncClient,
    anon_client: httpx.AsyncClient,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tokens, "_base_url", BASE)
    document = definition()
    document["flows"] = [SURVEY_FLOW]
    installed = await client.post("/api/apps/import", json=document)
    assert installed.status_code == 201, installed.text
    visit_id = await visit(client)
    started = await client.post(f"/api/flows/{APP}/aftercare/start", json={"record_id": visit_id})
    assert started.status_code in (200, 201), started.text
    db = Database(settings.database_url)
    try:
        async with db.transaction(write=False) as session:
            [link] = (await session.execute(select(PublicLink))).scalars()
            [message] = (await session.execute(select(OutboxMessage))).scalars()
    finally:
        await db.dispose()
    assert (link.created_by, link.bind_record) == ("rule:ask", visit_id)
    url = message.payload["action"]["data"]["context"]["links"]["survey"]
    assert url.startswith(f"{BASE}/p/{link.id}.")
    page = await anon_client.get(url.removeprefix(BASE))
    assert page.status_code == 200


def test_a_planned_create_link_of_the_first_format_still_loads() -> None:
    from formloom.engines.rules import PlannedCreateLink, action_from_dict

    stored = {
        "rule": "visit_survey", "index": 0, "type": "create_link", "mode": "sync", "due": None,
        "idempotency_key": "clinic:visit_survey:visit:1:1:0",
        "data": {"form": "survey", "bind": "visit", "record_id": "1", "fields": None,
                 "expires": "P7D", "as": "survey"},
    }  # fmt: skip
    action = action_from_dict(stored)
    assert isinstance(action, PlannedCreateLink) and action.name == "survey"
    assert action_from_dict(action.to_dict()) == action
    assert "token" not in json.dumps(action.to_dict())
