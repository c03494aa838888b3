"""The clinic's patients as FHIR R4 Patients (issue 16) on SQLite and PostgreSQL, through the
map the patient form declares: read, search by identifier / phone / name (a searchset
Bundle), create and update from a hospital system — all with the caller's grants (row
filters, hidden fields), the form's validation and its rules. Every resource emitted is
validated with the R4B models of fhir.resources."""

from __future__ import annotations

from typing import Any

import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.patient import Patient

from formloom import builtin_apps
from tests import factories as f
from tests.conftest import Users

APP = "clinic_crm"
ID_SYSTEM = "urn:formloom:clinic_crm:id-number"
BASE = f"/api/apps/{APP}/fhir/Patient"


def hospital_patient(**changes: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [
            {"system": "urn:hospital:mrn", "value": "MRN-77"},
            {"system": ID_SYSTEM, "value": "110101199003071234"},
        ],
        "name": [{"use": "official", "text": "张伟"}],
        "telecom": [
            {"system": "phone", "value": "+86 139 1234 5678"},
            {"system": "email", "value": "zhang.wei@example.cn"},
        ],
        "gender": "male",
        "birthDate": "1990-03-07",
        "maritalStatus": {"text": "M"},
    }
    resource.update(changes)
    return resource


def valid(resource: dict[str, Any]) -> Patient:
    return Patient.model_validate(resource)


async def test_a_hospital_registers_finds_reads_and_updates_a_patient(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=builtin_apps.load(APP))).status_code == 201
    made = await client.post(BASE, json=hospital_patient())
    assert made.status_code == 201, made.text
    assert made.headers["content-type"].startswith("application/fhir+json")
    created = made.json()
    patient_id = created["id"]
    assert made.headers["location"] == f"{BASE}/{patient_id}"
    assert made.headers["x-ignored-elements"] == "/maritalStatus"
    model = valid(created)
    assert model.name[0].text == "张伟" and model.gender == "male"
    assert str(model.birthDate) == "1990-03-07"
    assert {(i.system, i.value) for i in model.identifier} == {(ID_SYSTEM, "110101199003071234")}
    # it is a record of the patient form, written as any create
    record = (await client.get(f"/api/records/{APP}/patient/{patient_id}")).json()
    assert record["data"]["name"] == "张伟" and record["data"]["phone"] == "+86 139 1234 5678"
    assert record["data"]["age"] is not None  # the form's computed field ran

    read = await client.get(f"{BASE}/{patient_id}")
    assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
    assert valid(read.json()).telecom[1].value == "zhang.wei@example.cn"

    # search: by identifier (with and without system), phone digits, name
    for params in (
        {"identifier": f"{ID_SYSTEM}|110101199003071234"},
        {"identifier": "110101199003071234"},
        {"phone": "13912345678"},
        {"phone": "+86 139-1234-5678"},
        {"name": "张"},
        {"name": "张伟", "gender": "male", "birthdate": "1990-03-07"},
    ):
        found = await client.get(BASE, params=params)
        assert found.status_code == 200, (params, found.text)
        bundle = Bundle.model_validate(found.json())
        assert bundle.type == "searchset" and bundle.total == 1, params
        assert bundle.entry[0].resource.id == patient_id
        assert bundle.entry[0].fullUrl.endswith(f"{BASE}/{patient_id}")
    for params in ({"identifier": "urn:hospital:mrn|MRN-77"}, {"nickname": "x"}):
        refused = await client.get(BASE, params=params)
        assert refused.status_code == 400, refused.text
    none = Bundle.model_validate((await client.get(BASE, params={"phone": "13900000000"})).json())
    assert none.total == 0 and not none.entry

    # update: a replacement; what the resource leaves out is cleared
    moved = hospital_patient(id=patient_id, telecom=[{"system": "phone", "value": "13800001111"}])
    put = await client.put(f"{BASE}/{patient_id}", json=moved, headers={"If-Match": 'W/"1"'})
    assert put.status_code == 200, put.text
    assert put.headers["etag"] == 'W/"2"'
    record = (await client.get(f"/api/records/{APP}/patient/{patient_id}")).json()
    assert record["data"]["phone"] == "13800001111" and record["data"].get("email") is None
    stale = await client.put(f"{BASE}/{patient_id}", json=moved, headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    wrong = await client.put(f"{BASE}/{patient_id}", json=hospital_patient(id="other"))
    assert wrong.status_code == 400

    # validation errors point into the resource
    bad = await client.post(
        BASE, json=hospital_patient(birthDate="1990-13-45", identifier=[], telecom=[])
    )
    assert bad.status_code == 422, bad.text
    paths = {e["path"] for e in bad.json()["errors"]}
    assert "/birthDate" in paths
    unknown = await client.post(BASE, json=hospital_patient(gender="robot"))
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["path"] == "/gender"
    not_patient = await client.post(BASE, json={"resourceType": "Observation"})
    assert not_patient.status_code == 422


async def test_grants_apply_to_patients_as_to_records(
    client: httpx.AsyncClient, users: Users
) -> None:
    assert (await client.post("/api/apps/import", json=builtin_apps.load(APP))).status_code == 201
    made = await client.post(BASE, json=hospital_patient())
    assert made.status_code == 201, made.text
    patient_id = made.json()["id"]
    # the nurse may not see id numbers: not in the resource, and no search by them
    nurse = await users.create("nurse_p", roles={APP: ["nurse"]}, attributes={"department": "x"})
    read = await client.get(f"{BASE}/{patient_id}", headers=nurse.headers)
    assert read.status_code == 200, read.text
    seen = valid(read.json())
    assert seen.identifier is None and "110101199003071234" not in read.text
    assert seen.name[0].text == "张伟"
    probe = await client.get(
        BASE, params={"identifier": "110101199003071234"}, headers=nurse.headers
    )
    assert probe.status_code == 400 and "110101199003071234" not in probe.text
    # nor may she register patients
    refused = await client.post(BASE, json=hospital_patient(), headers=nurse.headers)
    assert refused.status_code == 403
    # front desk of another branch: the patient of branch A is outside her rows
    branch = await client.post(f"/api/records/{APP}/branch", json={"data": branch_data("A")})
    assert branch.status_code == 201, branch.text
    other = await client.post(f"/api/records/{APP}/branch", json={"data": branch_data("B")})
    assert other.status_code == 201, other.text
    tagged = await client.patch(
        f"/api/records/{APP}/patient/{patient_id}", json={"data": {"branch": branch.json()["id"]}}
    )
    assert tagged.status_code == 200, tagged.text
    desk = await users.create(
        "desk_b", roles={APP: ["front_desk"]}, attributes={"branch": other.json()["id"]}
    )
    api = await client.get(f"/api/records/{APP}/patient/{patient_id}", headers=desk.headers)
    fhir = await client.get(f"{BASE}/{patient_id}", headers=desk.headers)
    assert fhir.status_code == api.status_code and fhir.status_code in (403, 404)
    found = await client.get(BASE, params={"name": "张伟"}, headers=desk.headers)
    assert found.status_code == 200 and Bundle.model_validate(found.json()).total == 0
    put = await client.put(f"{BASE}/{patient_id}", json=hospital_patient(), headers=desk.headers)
    assert put.status_code in (403, 404)
    # an app without a Patient map has no Patient endpoint
    plain = f.app("plain", f.form("person", f.field("name")))
    assert (await client.post("/api/apps/import", json=plain)).status_code == 201
    assert (await client.get("/api/apps/plain/fhir/Patient/x")).status_code == 404


def branch_data(name: str) -> dict[str, Any]:
    return {"name": f"Branch {name}", "code": name, "timezone": "Asia/Shanghai"}


async def test_an_app_with_a_wrong_patient_map_is_refused_at_its_place(
    client: httpx.AsyncClient,
) -> None:
    mapped = {"resource": "Patient", "map": {"name.text": "name", "birthDate": "name"}}
    document = f.app("wrong", f.form("person", f.field("name"), fhir=mapped))
    refused = await client.post("/api/apps/import", json=document)
    assert refused.status_code == 422, refused.text
    found = {(e["path"], e["code"]) for e in refused.json()["errors"]}
    assert ("/forms/0/fhir/map/birthDate", "invalid_fhir_field") in found, found
