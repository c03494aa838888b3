"""The typed OpenAPI document, on SQLite and PostgreSQL: valid OpenAPI 3.1, one set of typed
schemas and operations per form, regenerated when an app changes, and usable by a generated
client against the real API."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import datamodel_code_generator as codegen
import httpx
import pydantic
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

import formloom.builtin_apps
from formloom.platform import openapi
from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import TestUser, running_service

PATIENT = "/api/records/clinic_crm/patient"


async def install_clinic(client: httpx.AsyncClient) -> dict[str, Any]:
    definition = formloom.builtin_apps.load("clinic_crm")
    response = await client.post("/api/apps/import", json=definition)
    assert response.status_code == 201, response.text
    return definition


async def document(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/openapi.json")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def resolve(doc: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        target: Any = doc
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def component(doc: dict[str, Any], name: str) -> dict[str, Any]:
    schema: dict[str, Any] = doc["components"]["schemas"][name]
    return schema


def validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    """A JSON Schema validator of one component, its references resolved in ``doc``."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def operation(doc: dict[str, Any], operation_id: str) -> tuple[str, str, dict[str, Any]]:
    """(path, method, operation) of ``operation_id``, as a generated client finds it."""
    found = [
        (path, method, op)
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if op.get("operationId") == operation_id
    ]
    assert len(found) == 1, operation_id
    return found[0]


def body_component(doc: dict[str, Any], op: dict[str, Any]) -> str:
    ref: str = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


def generated_client(doc: dict[str, Any], directory: Path, name: str) -> ModuleType:
    """Pydantic models generated from the document by datamodel-code-generator, imported."""
    source = codegen.generate(
        httpx.Response(200, json=doc).text,
        input_file_type=codegen.InputFileType.OpenAPI,
        output_model_type=codegen.DataModelType.PydanticV2BaseModel,
        formatters=[codegen.Formatter.BUILTIN],
        # EmailStr would need the email-validator package; the pattern still checks emails.
        type_mappings=["email=string"],
        disable_timestamp=True,
    )
    assert isinstance(source, str)
    path = directory / f"{name}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


async def test_document_is_valid_openapi_3_1_and_docs_still_work(
    client: httpx.AsyncClient,
) -> None:
    empty = await document(client)
    validate(empty)
    await install_clinic(client)
    doc = await document(client)
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(ids) == len(set(ids))
    for form in ("staff", "patient", "appointment", "visit"):
        for verb in ("list", "create", "query", "read", "update", "delete", "history"):
            assert f"clinic_crm_{form}_{verb}" in ids
    # The generic endpoints stay, documented as generic.
    generic = doc["paths"]["/api/records/{app}/{form}"]["post"]
    assert "Generic" in generic["description"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    assert doc["info"]["x-formloom-apps"] == {"clinic_crm": 1}
    page = await client.get("/docs")
    assert page.status_code == 200 and "/openapi.json" in page.text


async def test_patient_operations_show_patient_fields(client: httpx.AsyncClient) -> None:
    definition = await install_clinic(client)
    doc = await document(client)
    create_op = doc["paths"][PATIENT]["post"]
    assert create_op["operationId"] == "clinic_crm_patient_create"
    assert create_op["tags"] == ["clinic_crm.patient"]
    assert "Patient" in create_op["summary"]
    body = resolve(doc, create_op["requestBody"]["content"]["application/json"]["schema"])
    assert body["required"] == ["data"]
    create = resolve(doc, body["properties"]["data"])
    assert create is component(doc, "ClinicCrmPatientCreate")
    patient = next(form for form in definition["forms"] if form["key"] == "patient")
    tag_options = next(fld for fld in patient["fields"] if fld["key"] == "tags")["options"]
    props = create["properties"]
    assert {"name", "phone", "email", "birth_date", "tags", "gender"} <= props.keys()
    assert props["name"]["type"] == "string" and props["name"]["maxLength"] == 100
    tags = next(s for s in props["tags"]["anyOf"] if s.get("type") == "array")
    assert tags["items"]["enum"] == [option["value"] for option in tag_options]
    assert create["required"] == ["name", "phone"]
    assert create["additionalProperties"] is False
    # Computed: not written by clients, read-only when read.
    assert "age" not in props
    data = component(doc, "ClinicCrmPatientData")
    assert data["properties"]["age"]["readOnly"] is True
    assert data["properties"]["age"]["type"] == "integer"
    assert "$schema" not in data
    # Update: a merge, nothing required, null clears.
    update = component(doc, "ClinicCrmPatientUpdate")
    assert "required" not in update and "age" not in update["properties"]
    assert all({"type": "null"} in s["anyOf"] for s in update["properties"].values())
    # Record envelope, page, parameters and problem responses.
    record = component(doc, "ClinicCrmPatientRecord")
    assert record["properties"]["data"] == {"$ref": "#/components/schemas/ClinicCrmPatientData"}
    assert record["properties"]["form"]["const"] == "patient"
    listing = doc["paths"][PATIENT]["get"]["responses"]["200"]
    page = resolve(doc, listing["content"]["application/json"]["schema"])
    assert page["properties"]["items"]["items"]["$ref"].endswith("ClinicCrmPatientRecord")
    names = {p["name"] for p in doc["paths"][PATIENT]["get"]["parameters"]}
    assert names == {"filter", "q", "sort", "limit", "cursor", "fields", "count"}
    patch = doc["paths"][PATIENT + "/{record_id}"]["patch"]
    assert {p["name"] for p in patch["parameters"]} == {"record_id", "If-Match"}
    assert set(patch["responses"]) >= {"200", "400", "404", "412", "413", "422"}
    problem = resolve(doc, patch["responses"]["422"])
    assert "application/problem+json" in problem["content"]
    assert resolve(doc, problem["content"]["application/problem+json"]["schema"])["properties"][
        "errors"
    ]
    # Appointment: a required field with a default is not required on create.
    appointment = component(doc, "ClinicCrmAppointmentCreate")
    assert "status" not in appointment["required"] and "starts_at" in appointment["required"]


async def test_regenerated_exactly_when_an_app_changes(
    client: httpx.AsyncClient,
    admin: TestUser,
    settings: Settings,
    clock: FixedClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    builds: list[int] = []
    real_build = openapi.build_document

    def counting(base: dict[str, Any], apps: Any, access: Any = None) -> dict[str, Any]:
        builds.append(len(apps))
        return real_build(base, apps, access)

    monkeypatch.setattr(openapi, "build_document", counting)
    definition = await install_clinic(client)
    first = (await client.get("/openapi.json")).content
    second = (await client.get("/openapi.json")).content
    assert first == second and len(builds) == 1

    # Changed by another process on the same database: seen on the next request.
    patient = next(form for form in definition["forms"] if form["key"] == "patient")
    patient["fields"].append(f.field("nickname", max_length=40))
    async with running_service(settings, clock, token=admin.token) as other:
        response = await other.post("/api/apps/import", json=definition)
        assert response.status_code == 200, response.text
    doc = await document(client)
    assert len(builds) == 2
    assert doc["info"]["x-formloom-apps"] == {"clinic_crm": 2}
    for variant in ("Data", "Create", "Update"):
        assert "nickname" in component(doc, f"ClinicCrmPatient{variant}")["properties"]
    await document(client)
    assert len(builds) == 2

    # A second app adds its own forms and leaves the clinic's as they were.
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    both = await document(client)
    assert len(builds) == 3
    assert "/api/records/demo/contact" in both["paths"]
    assert component(both, "ClinicCrmPatientCreate") == component(doc, "ClinicCrmPatientCreate")


async def test_a_generated_client_creates_a_patient(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    await install_clinic(client)
    doc = await document(client)
    models = generated_client(doc, tmp_path, "clinic_client_models")

    path, method, op = operation(doc, "clinic_crm_patient_create")
    body_model = getattr(models, body_component(doc, op))
    data_model = body_model.model_fields["data"].annotation
    data = data_model.model_validate(
        {
            "name": "Li Lei",
            "phone": "+86 138 0000 1234",
            "birth_date": "1980-05-01",
            "gender": "male",
            "tags": ["hypertension", "vip"],
        }
    )
    body = body_model(data=data).model_dump(mode="json", exclude_none=True)
    response = await client.request(method.upper(), path, json=body)
    assert response.status_code == 201, response.text
    created = response.json()

    (status,) = (code for code in op["responses"] if code.startswith("2"))
    schema = op["responses"][status]["content"]["application/json"]["schema"]
    record_name = schema["$ref"].rsplit("/", 1)[1]
    assert list(validator(doc, record_name).iter_errors(created)) == []
    record = getattr(models, record_name).model_validate(created)
    assert record.data.age == 46 and record.data.name == "Li Lei"

    # The generated model refuses what the API refuses, and the API agrees.
    bad = {"name": "Han Meimei", "phone": "call me", "tags": ["vip", "unknown"]}
    with pytest.raises(pydantic.ValidationError):
        data_model.model_validate(bad)
    assert list(validator(doc, data_model.__name__).iter_errors(bad))
    refused = await client.request(method.upper(), path, json={"data": bad})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in refused.json()["errors"]} == {"phone", "tags"}

    # Writing a computed field or leaving out a required one: invalid for both.
    for wrong in ({"name": "A", "phone": "12345678", "age": 3}, {"name": "No phone"}):
        assert list(validator(doc, data_model.__name__).iter_errors(wrong))
        assert (await client.post(path, json={"data": wrong})).status_code == 422

    # The update operation: null clears, If-Match guards.
    path, method, op = operation(doc, "clinic_crm_patient_update")
    change = {"data": {"gender": None, "email": "li@example.com"}}
    assert list(validator(doc, body_component(doc, op)).iter_errors(change)) == []
    url = path.replace("{record_id}", record.id)
    updated = await client.patch(url, json=change, headers={"If-Match": '"1"'})
    assert updated.status_code == 200, updated.text
    assert "gender" not in updated.json()["data"]
    assert list(validator(doc, record_name).iter_errors(updated.json())) == []
    stale = await client.patch(url, json=change, headers={"If-Match": '"1"'})
    assert stale.status_code == 412

    # A page of the list operation matches its schema too.
    path, method, op = operation(doc, "clinic_crm_patient_list")
    listed = await client.get(path, params={"count": "true"})
    page = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert list(validator(doc, page.rsplit("/", 1)[1]).iter_errors(listed.json())) == []


async def test_datetimes_with_any_offset_are_valid_input(client: httpx.AsyncClient) -> None:
    await install_clinic(client)
    doc = await document(client)
    ids = {}
    for form, data in (
        ("patient", {"name": "Li Lei", "phone": "13800001234"}),
        ("staff", {"name": "Dr Wang", "role": "doctor", "department": "general"}),
    ):
        response = await client.post(f"/api/records/clinic_crm/{form}", json={"data": data})
        assert response.status_code == 201, response.text
        ids[form] = response.json()["id"]
    appointment = {
        "patient": ids["patient"],
        "doctor": ids["staff"],
        "department": "general",
        "starts_at": "2026-11-24T09:30:00+08:00",
    }
    create = validator(doc, "ClinicCrmAppointmentCreate")
    assert list(create.iter_errors(appointment)) == []
    assert list(create.iter_errors({**appointment, "starts_at": "2026-11-24T09:30:00"}))
    response = await client.post("/api/records/clinic_crm/appointment", json={"data": appointment})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["starts_at"] == "2026-11-24T01:30:00Z"
    assert list(validator(doc, "ClinicCrmAppointmentRecord").iter_errors(response.json())) == []
    naive = {**appointment, "starts_at": "2026-11-24T09:30:00"}
    refused = await client.post("/api/records/clinic_crm/appointment", json={"data": naive})
    assert refused.status_code == 422


def every_type_form() -> dict[str, Any]:
    options = [{"value": "a", "label": {"en": "A", "zh-CN": "甲"}}, {"value": "b"}]
    return f.form(
        "everything",
        f.field("intro", "section", label={"en": "Intro", "zh-CN": "介绍"}),
        f.field("title", required=True, pattern="[A-Z].*", min_length=2, help="Capitalised"),
        f.field("body", "textarea", max_length=5000),
        f.field("amount", "number", min=0.5, max=99.5),
        f.field("count", "integer", min=0, max=10, default=1, required=True),
        f.field("flag", "boolean"),
        f.field("day", "date", min="2000-01-01", max="2100-12-31"),
        f.field("moment", "datetime", min="2000-01-01T00:00:00Z"),
        f.field("clock", "time", min="08:00", max="18:00"),
        f.field("choice", "select", options=options, indexed=True),
        f.field("choices", "multiselect", options=options, min_items=1, max_items=2),
        f.field("mail", "email", unique=True),
        f.field("tel", "phone"),
        f.field("site", "url"),
        f.field("parent", "relation", target="everything"),
        f.field(
            "lines",
            "table",
            min_rows=1,
            max_rows=5,
            fields=[
                f.field("item", required=True),
                f.field("qty", "integer", min=1, required=True, default=1),
                f.field("price", "number", min=0),
                f.field("at", "datetime"),
                f.field("hour", "time"),
                f.field("code", read_only=True, default="X"),
                f.field(
                    "total",
                    "computed",
                    result_type="number",
                    formula={"*": [{"var": "qty"}, {"var": "price"}]},
                ),
            ],
        ),
        f.field("attachment", "file", accept=["application/pdf"], max_size=1_000_000),
        f.field("photos", "image", multiple=True),
        f.field("stamp", "date", read_only=True, default_expr={"today": []}),
        f.field("more", "section", visible_if={"==": [{"var": "flag"}, True]}),
        f.field("secret", required=True),
        f.field(
            "doubled",
            "computed",
            result_type="integer",
            formula={"*": [{"var": "count"}, 2]},
        ),
        f.field("label_text", "computed", formula={"cat": ["#", {"var": "count"}]}),
        f.field("is_big", "computed", result_type="boolean", formula={">": [{"var": "count"}, 5]}),
        f.field("due", "computed", result_type="date", formula={"today": []}),
        label={"en": "Everything", "zh-CN": "全部"},
        description="Every field type",
    )


async def test_a_form_with_every_field_type(client: httpx.AsyncClient, tmp_path: Path) -> None:
    definition = f.app("kitchen_sink", every_type_form())
    response = await client.post("/api/apps/import", json=definition)
    assert response.status_code == 201, response.text
    doc = await document(client)
    validate(doc)
    generated_client(doc, tmp_path, "kitchen_sink_models")  # the generated module imports

    create = component(doc, "KitchenSinkEverythingCreate")
    assert set(create["properties"]) == {
        "title", "body", "amount", "count", "flag", "day", "moment", "clock", "choice",
        "choices", "mail", "tel", "site", "parent", "lines", "attachment", "photos", "secret",
    }  # fmt: skip
    # `count` has a default, `secret` can be hidden: neither required on create.
    assert create["required"] == ["title"]
    lines = next(s for s in create["properties"]["lines"]["anyOf"] if s.get("type") == "array")
    assert set(lines["items"]["properties"]) == {"item", "qty", "price", "at", "hour"}
    # JSON Schema's `time` format is RFC 3339 full-time (seconds and offset): not used.
    assert "format" not in lines["items"]["properties"]["hour"]["anyOf"][0]
    assert lines["items"]["required"] == ["item"]
    data = component(doc, "KitchenSinkEverythingData")
    for key in ("stamp", "doubled", "label_text", "is_big", "due"):
        assert data["properties"][key]["readOnly"] is True
    assert data["properties"]["lines"]["items"]["properties"]["total"]["readOnly"] is True

    value = {
        "title": "Hello",
        "body": "Line one\nLine two",
        "amount": 2.5,
        "flag": True,
        "day": "2024-02-29",
        "moment": "2024-05-01T09:30:00.5+08:00",
        "clock": "09:15",
        "choice": "a",
        "choices": ["a", "b"],
        "mail": "ann@example.com",
        "tel": "+86 (10) 1234-5678",
        "site": "https://example.com/x",
        "lines": [
            {"item": "Pen", "qty": 2, "price": 1.5, "at": "2024-05-01T10:00:00Z", "hour": "09:00"}
        ],
        # references come from real uploads (a made-up id is refused)
        "attachment": await _upload(
            client, "attachment", "a.pdf", "application/pdf", b"%PDF-1.4 x"
        ),
        "photos": [await _upload(client, "photos", "p.png", "image/png", b"\x89PNG\r\n\x1a\n")],
        "secret": "s",
    }
    assert list(validator(doc, "KitchenSinkEverythingCreate").iter_errors(value)) == []
    path, _, _ = operation(doc, "kitchen_sink_everything_create")
    created = await client.post(path, json={"data": value})
    assert created.status_code == 201, created.text
    record = created.json()
    assert record["data"]["lines"][0]["total"] == 3
    assert list(validator(doc, "KitchenSinkEverythingRecord").iter_errors(record)) == []

    change = {"body": None, "lines": [{"item": "Ink"}], "flag": False, "secret": None}
    assert list(validator(doc, "KitchenSinkEverythingUpdate").iter_errors(change)) == []
    updated = await client.patch(f"{path}/{record['id']}", json={"data": change})
    assert updated.status_code == 200, updated.text
    assert list(validator(doc, "KitchenSinkEverythingRecord").iter_errors(updated.json())) == []
    history = await client.get(f"{path}/{record['id']}/history")
    assert history.status_code == 200


async def _upload(
    client: httpx.AsyncClient, field: str, name: str, content_type: str, body: bytes
) -> dict[str, Any]:
    answer = await client.post(
        f"/api/files/kitchen_sink/everything/{field}", files={"file": (name, body, content_type)}
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def test_names_stay_unique_when_keys_run_together() -> None:
    pairs = [("a_b", "c"), ("a", "b_c"), ("clinic_crm", "patient"), ("record", "page")]
    names = openapi.form_names(pairs, {"RecordPageData"}, {"clinic_crm_patient_x"})
    assert names[("clinic_crm", "patient")] == ("ClinicCrmPatient", "clinic_crm_patient")
    components = [component for component, _ in names.values()]
    operations = [operation for _, operation in names.values()]
    assert len(set(components)) == len(set(operations)) == len(pairs)
    assert names[("a_b", "c")][0].startswith("ABC_")
    assert names[("record", "page")][0].startswith("RecordPage_")


# -- who sees what ----------------------------------------------------------------------------


def _names(doc: dict[str, Any]) -> str:
    """Every name the document carries, as one text to search."""
    return httpx.Response(200, json=doc).text


async def test_anonymous_callers_get_the_generic_document_only(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient
) -> None:
    await install_clinic(client)
    response = await anon_client.get("/openapi.json")
    assert response.status_code == 200
    assert "private" in response.headers["cache-control"]
    assert "authorization" in response.headers["vary"].lower()
    doc = response.json()
    validate(doc)
    # FHIR's own resource name (the same path in every deployment) names no app's form
    fhir = {path for path in doc["paths"] if path.startswith("/api/apps/{app}/fhir/Patient")}
    assert fhir == {"/api/apps/{app}/fhir/Patient", "/api/apps/{app}/fhir/Patient/{record_id}"}
    text = _names({**doc, "paths": {k: v for k, v in doc["paths"].items() if k not in fhir}})
    for secret in ("clinic_crm", "ClinicCrm", "id_number", "patient", "Patient"):
        assert secret not in text, secret
    assert doc["info"]["x-formloom-apps"] == {}
    # The generic record API is still documented, and so is how to sign in.
    assert "/api/records/{app}/{form}" in doc["paths"]
    assert doc["components"]["securitySchemes"]["bearer"]["flows"]["password"]["tokenUrl"]
    # A credential that does not work is refused, not served the generic document.
    refused = await anon_client.get("/openapi.json", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


async def test_each_caller_sees_the_forms_fields_and_operations_of_their_grant(
    client: httpx.AsyncClient, users: Any
) -> None:
    await install_clinic(client)
    nurse = await users.create(
        "nurse", roles={"clinic_crm": ["nurse"]}, attributes={"department": "general"}
    )
    outsider = await users.create("outsider")

    admin_doc = await document(client)
    nurse_response = await client.get("/openapi.json", headers=nurse.headers)
    assert nurse_response.status_code == 200
    nurse_doc = nurse_response.json()
    validate(nurse_doc)
    # Asked again as the admin after the nurse: the admin's own document, not the nurse's.
    assert await document(client) == admin_doc

    assert "id_number" in component(admin_doc, "ClinicCrmPatientData")["properties"]
    assert "id_number" in component(admin_doc, "ClinicCrmPatientCreate")["properties"]
    data = component(nurse_doc, "ClinicCrmPatientData")
    assert "id_number" not in data["properties"] and "allergies" in data["properties"]
    assert "id_number" not in _names(nurse_doc)
    # Read-only for nurses: shown read-only, not writable.
    assert data["properties"]["name"]["readOnly"] is True
    update = component(nurse_doc, "ClinicCrmPatientUpdate")
    assert "name" not in update["properties"] and "allergies" in update["properties"]
    # Nurses read and update patients; they do not create or delete them.
    ids = {op["operationId"] for item in nurse_doc["paths"].values() for op in item.values()}
    assert {"clinic_crm_patient_read", "clinic_crm_patient_update"} <= ids
    assert "clinic_crm_patient_create" not in ids and "clinic_crm_patient_delete" not in ids
    assert "ClinicCrmPatientCreate" not in nurse_doc["components"]["schemas"]
    # Typed operations say they need a credential and list the problems they answer.
    _, _, update_op = operation(nurse_doc, "clinic_crm_patient_update")
    assert update_op["security"] == [{"bearer": []}]
    assert {"401", "403", "404", "412", "422"} <= set(update_op["responses"])
    assert nurse_doc["info"]["x-formloom-apps"] == {"clinic_crm": 1}

    # The nurse's document describes what the API does for them.
    patient = await client.post(PATIENT, json={"data": {"name": "Li Lei", "phone": "13800001234"}})
    assert patient.status_code == 201, patient.text
    url = f"{PATIENT}/{patient.json()['id']}"
    read = await client.get(url, headers=nurse.headers)
    assert read.status_code == 200 and "id_number" not in read.json()["data"]
    refused = await client.post(PATIENT, json={"data": {"name": "X"}}, headers=nurse.headers)
    assert refused.status_code == 403

    # Someone without a role in any app sees no app.
    other = (await client.get("/openapi.json", headers=outsider.headers)).json()
    assert "clinic_crm" not in _names(other)


async def test_one_apps_document(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, users: Any
) -> None:
    await install_clinic(client)
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    nurse = await users.create(
        "nurse", roles={"clinic_crm": ["nurse"]}, attributes={"department": "general"}
    )
    path = "/api/apps/clinic_crm/openapi.json"
    only = await client.get(path)
    assert only.status_code == 200 and "private" in only.headers["cache-control"]
    doc = only.json()
    validate(doc)
    assert doc["info"]["x-formloom-apps"] == {"clinic_crm": 1}
    assert "/api/records/clinic_crm/patient" in doc["paths"]
    assert not any(p.startswith("/api/records/demo/") for p in doc["paths"])
    mine = (await client.get(path, headers=nurse.headers)).json()
    assert "id_number" not in component(mine, "ClinicCrmPatientData")["properties"]
    # Anonymous: 401; no role in the app: 403; no such app: 404 — each as problem details.
    assert (await anon_client.get(path)).status_code == 401
    assert (
        await client.get("/api/apps/demo/openapi.json", headers=nurse.headers)
    ).status_code == 403
    missing = await client.get("/api/apps/nothing_here/openapi.json")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_docs_page_is_served_from_local_files(anon_client: httpx.AsyncClient) -> None:
    page = await anon_client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    # Nothing from another site: every script and stylesheet is one of ours.
    assert "http://" not in page.text and "https://" not in page.text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png"):
        assert f"/docs/assets/{asset}" in page.text
        served = await anon_client.get(f"/docs/assets/{asset}")
        assert served.status_code == 200 and served.content, asset
    # The Authorize button's OAuth2 password flow: the redirect page and the token endpoint.
    assert (await anon_client.get("/docs/oauth2-redirect")).status_code == 200
    assert (await anon_client.get("/redoc")).status_code == 404


async def test_every_operation_lists_the_problems_it_can_answer(
    client: httpx.AsyncClient,
) -> None:
    await install_clinic(client)
    doc = await document(client)
    for path, item in doc["paths"].items():
        for method, op in item.items():
            statuses = set(op["responses"])
            where = f"{method.upper()} {path}"
            if op.get("security"):
                assert {"401", "403"} <= statuses, where
            if "requestBody" in op:
                assert {"400", "413", "422"} <= statuses, where
            if any(p["in"] == "path" for p in op.get("parameters", [])):
                assert "404" in statuses, where
            for status in statuses - {"200", "201", "204", "304"}:
                problem = resolve(doc, op["responses"][status])
                assert "application/problem+json" in problem["content"], where
    for sign_in in ("/api/auth/token", "/api/auth/session"):
        assert "429" in doc["paths"][sign_in]["post"]["responses"]
