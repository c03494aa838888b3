"""Form templates (docs/forms.md, Form templates) on SQLite and PostgreSQL: the shipped ones
are valid forms in English and Chinese; a designer saves a form as a template (its
definition, never its records) that designers of other apps start from, through the
ordinary form save (plan, If-Match); who may save and delete; refusals as problem details."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from formloom.engines.forms import FormSpec, label_text
from formloom.platform.form_templates.service import builtin_templates, new_form_key
from tests import factories as f
from tests.conftest import Users

APP = "ward"
OTHER = "lab"


def ward() -> dict[str, Any]:
    return f.app(
        APP,
        {
            "key": "complaint",
            "label": {"en": "Complaint", "zh-CN": "投诉"},
            "layout": "tabs",
            "fields": [
                {"key": "who", "type": "text", "required": True},
                {"key": "about", "type": "section", "label": "About"},
                {
                    "key": "kind",
                    "type": "select",
                    "options": [{"value": "billing"}, {"value": "care"}],
                },
                {
                    "key": "invoice",
                    "type": "text",
                    "visible_if": {"==": [{"var": "kind"}, "billing"]},
                },
            ],
        },  # fmt: skip
        roles=[{"key": "chief"}, {"key": "nurse"}],
        permissions=[
            {"form": "complaint", "roles": ["chief", "nurse"], "actions": ["create", "read"]}
        ],
        design=["chief"],
    )


def lab() -> dict[str, Any]:
    return f.app(
        OTHER,
        f.form("sample", f.field("code")),
        roles=[{"key": "tech"}],
        design=["tech"],
    )


async def install(client: httpx.AsyncClient) -> None:
    for document in (ward(), lab()):
        answer = await client.post("/api/apps/import", json=document)
        assert answer.status_code in (200, 201), answer.text


def test_shipped_templates_are_valid_bilingual_forms() -> None:
    shipped = builtin_templates()
    assert {t.id for t in shipped} >= {
        "complaint", "satisfaction_survey", "appointment_request", "incident_report"
    }  # fmt: skip
    for template in shipped:
        spec = FormSpec.model_validate({"key": template.id, **template.form})
        for thing in (template.label, template.description, template.form["label"]):
            assert set(thing) == {"en", "zh-CN"}, template.id
        for field in spec.fields:
            assert label_text(field.label, "zh-CN") != label_text(field.label, "en"), field.key
            for option in getattr(field, "options", ()):
                assert isinstance(option.label, dict) and set(option.label) == {"en", "zh-CN"}
    incident = next(t for t in shipped if t.id == "incident_report")
    assert incident.form["layout"] == "tabs"


def test_new_form_keys_come_from_the_name_and_are_unique() -> None:
    assert new_form_key({"en": "Incident report", "zh-CN": "报告"}, set()) == "incident_report"
    assert new_form_key("Complaint", {"complaint"}) == "complaint_2"
    assert new_form_key("Complaint", {"complaint", "complaint_2"}) == "complaint_3"
    assert new_form_key("投诉", set()) == "form"
    assert new_form_key("2nd look", set()) == "f_2nd_look"


async def test_save_start_and_delete(client: httpx.AsyncClient, users: Users) -> None:
    await install(client)
    chief = await users.create("chief1", roles={APP: ["chief"]})
    nurse = await users.create("nurse1", roles={APP: ["nurse"]})
    tech = await users.create("tech1", roles={OTHER: ["tech"]})
    record = await client.post(f"/api/records/{APP}/complaint", json={"data": {"who": "Ann"}})
    assert record.status_code == 201, record.text

    listed = await client.get("/api/form-templates", headers=tech.headers)
    assert listed.status_code == 200
    before = listed.json()["items"]
    assert all(item["builtin"] for item in before)
    assert "form" not in before[0]

    # a nurse (no design role) may not save; the chief may
    url = f"/api/apps/{APP}/forms/complaint/template"
    refused = await client.post(url, json={"label": "Ward complaint"}, headers=nurse.headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("application/problem+json")
    bad = await client.post(url, json={"label": "  "}, headers=chief.headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["path"] == "/label"
    saved = await client.post(
        url, json={"label": {"en": "Ward complaint", "zh-CN": "病区投诉"}}, headers=chief.headers
    )
    assert saved.status_code == 201, saved.text
    template = saved.json()
    assert template["builtin"] is False
    assert template["created_by"] == "chief1"
    assert template["app"] == APP and template["source_form"] == "complaint"
    assert "key" not in template["form"]
    assert template["form"]["layout"] == "tabs"
    assert [x["key"] for x in template["form"]["fields"]] == ["who", "about", "kind", "invoice"]
    assert "Ann" not in str(template)  # the definition, never the records
    # the form's own name when none is given
    plain = await client.post(url, headers=chief.headers)
    assert plain.status_code == 201
    assert plain.json()["label"] == {"en": "Complaint", "zh-CN": "投诉"}

    # a designer of another app sees it and starts a form from it, through the form save
    items = (await client.get("/api/form-templates", headers=tech.headers)).json()["items"]
    assert [i["id"] for i in items][-2:] == [template["id"], plain.json()["id"]]
    mine = next(i for i in items if i["id"] == template["id"])
    assert mine["fields"] == 3 and mine["name"] == "Ward complaint"
    read = await client.get(f"/api/form-templates/{template['id']}", headers=tech.headers)
    assert read.json()["form"] == template["form"]
    key = new_form_key(read.json()["label"], {"sample"})
    form_url = f"/api/apps/{OTHER}/forms/{key}"
    lab_revision = (await client.get(f"/api/apps/{OTHER}")).json()["revision"]
    body = {"key": key, **read.json()["form"]}
    plan = await client.put(
        f"{form_url}?dry_run=true", json=body,
        headers={**tech.headers, "If-Match": f'"{lab_revision}"'},
    )  # fmt: skip
    assert plan.status_code == 200, plan.text
    made = await client.put(
        form_url, json=body, headers={**tech.headers, "If-Match": f'"{lab_revision}"'}
    )
    assert made.status_code == 200, made.text
    stale = await client.put(
        f"{form_url}_2", json={**body, "key": f"{key}_2"},
        headers={**tech.headers, "If-Match": f'"{lab_revision}"'},
    )  # fmt: skip
    assert stale.status_code == 412
    form = (await client.get(form_url, headers=tech.headers)).json()["form"]
    assert form["layout"] == "tabs"
    assert form["fields"][3]["visible_if"] == {"==": [{"var": "kind"}, "billing"]}
    assert (await client.get(f"/api/records/{OTHER}/{key}")).json()["items"] == []

    # deleting: not by a designer of another app, nor shipped ones; by the ward's designer
    gone = f"/api/form-templates/{template['id']}"
    assert (await client.delete(gone, headers=tech.headers)).status_code == 403
    assert (await client.delete(gone, headers=nurse.headers)).status_code == 403
    shipped = await client.delete("/api/form-templates/complaint", headers=chief.headers)
    assert shipped.status_code == 409
    assert (await client.delete(gone, headers=chief.headers)).status_code == 204
    assert (await client.get(gone)).status_code == 404
    # an admin deletes any
    assert (await client.delete(f"/api/form-templates/{plain.json()['id']}")).status_code == 204
    assert (await client.get("/api/form-templates")).json()["items"] == before


@pytest.mark.parametrize("path", ["/api/form-templates", "/api/form-templates/complaint"])
async def test_templates_are_for_signed_in_people(
    anon_client: httpx.AsyncClient, path: str
) -> None:
    answer = await anon_client.get(path)
    assert answer.status_code == 401


async def test_unknown_form_or_template(client: httpx.AsyncClient) -> None:
    await install(client)
    missing = await client.post(f"/api/apps/{APP}/forms/nothing/template")
    assert missing.status_code == 404
    assert (await client.get("/api/form-templates/nope")).status_code == 404
    assert (await client.delete("/api/form-templates/nope")).status_code == 404
    extra = await client.post(f"/api/apps/{APP}/forms/complaint/template", json={"name": "x"})
    assert extra.status_code == 422
