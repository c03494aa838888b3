"""Importing, listing, reading and exporting apps over the API, on both databases."""

from __future__ import annotations

import json

import httpx

from formloom import builtin_apps
from tests import factories as f


async def test_import_then_export_round_trips_byte_identically(client: httpx.AsyncClient) -> None:
    document = builtin_apps.load("clinic_crm")
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "created"
    assert set(response.json()["forms"]) >= {"patient", "staff", "appointment", "visit"}

    exported = await client.get("/api/apps/clinic_crm/export")
    assert exported.status_code == 200
    assert json.loads(exported.content) == document

    again = await client.post(
        "/api/apps/import", content=exported.content, headers={"content-type": "application/json"}
    )
    assert again.status_code == 200
    assert again.json()["status"] == "unchanged"
    assert (await client.get("/api/apps/clinic_crm/export")).content == exported.content


async def test_changed_definition_makes_a_new_revision(client: httpx.AsyncClient) -> None:
    document = f.app()
    assert (await client.post("/api/apps/import", json=document)).json()["revision"] == 1
    document["forms"][0]["fields"].append(f.field("city"))
    result = (await client.post("/api/apps/import", json=document)).json()
    assert {k: result[k] for k in ("app", "revision", "status", "forms")} == {
        "app": "demo",
        "revision": 2,
        "status": "updated",
        "forms": ["contact"],
    }
    [form] = result["plan"]["forms"]
    assert form["fields"][0]["field"] == "city" and form["fields"][0]["class"] == "safe"
    listing = (await client.get("/api/apps")).json()
    assert [(a["key"], a["revision"]) for a in listing] == [("demo", 2)]


async def test_invalid_definition_lists_every_error_and_imports_nothing(
    client: httpx.AsyncClient,
) -> None:
    document = f.app(
        "broken",
        f.form(
            "a",
            f.field("name", "txt"),
            f.field("ref", "relation", target="nowhere"),
            f.field("x", "text", colour="red"),
        ),
    )
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    paths = {e["path"] for e in body["errors"]}
    assert "/forms/0/fields/0/type" in paths
    assert "/forms/0/fields/2/colour" in paths
    for error in body["errors"]:
        assert error["message"]
    assert (await client.get("/api/apps/broken")).status_code == 404


async def test_semantic_errors_point_into_the_document(client: httpx.AsyncClient) -> None:
    document = f.app(
        "sem",
        f.form("a", f.field("name"), f.field("ref", "relation", target="nowhere")),
        f.form("a", f.field("title")),
    )
    response = await client.post("/api/apps/import", json=document)
    assert response.status_code == 422
    errors = {e["path"]: e for e in response.json()["errors"]}
    assert errors["/forms/0/fields/1/target"]["code"] == "unknown_form"
    assert errors["/forms/1/key"]["code"] == "duplicate_key"


async def test_non_object_and_malformed_bodies_are_client_errors(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/api/apps/import", json=[1, 2])).status_code == 422
    bad = await client.post(
        "/api/apps/import", content=b'{"format": ', headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert "not valid JSON" in bad.json()["detail"]


async def test_dry_run_reports_the_plan_and_changes_nothing(client: httpx.AsyncClient) -> None:
    document = f.app()
    plan = (await client.post("/api/apps/import?dry_run=true", json=document)).json()
    assert plan["status"] == "create"
    assert [(f["form"], f["change"]) for f in plan["forms"]] == [("contact", "added")]
    assert (await client.get("/api/apps/demo")).status_code == 404

    await client.post("/api/apps/import", json=document)
    await client.post("/api/records/demo/contact", json={"data": {"name": "Ann"}})
    document["forms"][0]["fields"] = [
        x for x in document["forms"][0]["fields"] if x["key"] != "score"
    ]
    plan = (await client.post("/api/apps/import?dry_run=true", json=document)).json()
    assert plan["status"] == "update"
    [form] = plan["forms"]
    assert form["records"] == 1
    [change] = form["fields"]
    # no record has a score: removing the field loses nothing
    assert (change["field"], change["change"], change["class"]) == ("score", "removed", "safe")
    assert (await client.get("/api/apps/demo")).json()["revision"] == 1


async def test_app_form_and_schema_endpoints(client: httpx.AsyncClient) -> None:
    await client.post("/api/apps/import", json=builtin_apps.load("clinic_crm"))
    app = (await client.get("/api/apps/clinic_crm")).json()
    assert {form["key"] for form in app["forms"]} >= {"patient", "visit"}
    form = (await client.get("/api/apps/clinic_crm/forms/patient")).json()
    assert form["form"]["key"] == "patient"
    schema = (await client.get("/api/apps/clinic_crm/forms/patient/schema")).json()
    assert schema["type"] == "object" and "phone" in schema["properties"]
    assert (await client.get("/api/apps/clinic_crm/forms/nope")).status_code == 404
    assert (await client.get("/api/apps/nope/export")).status_code == 404
    fmt = (await client.get("/api/schema/app")).json()
    assert "forms" in fmt["properties"]
