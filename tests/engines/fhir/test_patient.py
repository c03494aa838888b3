"""The Patient map of a form (engines/fhir/patient.py, engines/forms/interop.py): a map is
checked against the form's fields, a record travels to a valid R4 Patient and back, codes go
through the option map, and search parameters become filters."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.patient import Patient
from pydantic import ValidationError

from formloom.engines.fhir.patient import (
    PatientInvalid,
    PatientMap,
    patient_to_data,
    record_to_patient,
    search_criteria,
)
from formloom.engines.forms import FormSpec
from tests import factories as f


def form(**fhir: Any) -> dict[str, Any]:
    return f.form(
        "person",
        f.field("name"),
        f.field("sex", "select", options=[{"value": "f"}, {"value": "m"}, {"value": "x"}]),
        f.field("born", "date"),
        f.field("mobile", "phone"),
        f.field("mrn"),
        f.field("city"),
        fhir=fhir,
    )


MAP = {
    "name.text": "name",
    "gender": {"field": "sex", "values": {"female": "f", "male": "m"}},
    "birthDate": "born",
    "telecom(phone)": "mobile",
    "identifier(urn:mrn)": "mrn",
    "address.city": "city",
}


def spec() -> FormSpec:
    return FormSpec.model_validate(form(resource="Patient", map=MAP))


def test_a_record_becomes_a_valid_patient_and_comes_back() -> None:
    pmap = PatientMap.of(spec())
    assert pmap is not None
    data = {"name": "李娜", "sex": "f", "born": "1985-01-02", "mobile": "139", "mrn": "M1",
            "city": "Shanghai"}  # fmt: skip
    record = {"id": "r1", "version": 3, "updated_at": "2026-12-04T02:00:00Z", "data": data}
    resource = record_to_patient(pmap, record)
    model = Patient.model_validate(resource)
    assert model.gender == "female" and model.address[0].city == "Shanghai"
    assert resource["meta"]["versionId"] == "3"
    back = patient_to_data(pmap, resource)
    assert back.data == data and back.ignored == []
    assert back.sources["mrn"] == "/identifier/0/value"
    # an option without a code is no element; a code without an option is refused
    assert "gender" not in record_to_patient(pmap, {**record, "data": {**data, "sex": "x"}})
    with pytest.raises(PatientInvalid) as refused:
        patient_to_data(pmap, {**resource, "gender": "other"})
    assert refused.value.pointer == "/gender"
    # what the map does not read is listed; what the resource leaves out is None
    partial = patient_to_data(pmap, {"resourceType": "Patient", "maritalStatus": {"text": "S"}})
    assert partial.data == dict.fromkeys(data) and partial.ignored == ["/maritalStatus"]


def test_search_parameters_become_filters() -> None:
    pmap = PatientMap.of(spec())
    assert pmap is not None
    found = search_criteria(pmap, {"identifier": "urn:mrn|M1", "name": "李", "gender": "male"})
    assert found.filter == {"and": [
        {"==": [{"var": "mrn"}, "M1"]}, {"in": ["李", {"var": "name"}]},
        {"==": [{"var": "sex"}, "m"]},
    ]}  # fmt: skip
    assert search_criteria(pmap, {"phone": "139"}).phone == ("mobile", "139")
    with pytest.raises(PatientInvalid):
        search_criteria(pmap, {"identifier": "urn:other|1"})


@pytest.mark.parametrize(
    ("change", "where", "kind"),
    [
        ({"name.txt": "name"}, ("fhir", "map", "name.txt"), "unknown_fhir_element"),
        ({"birthDate": "mobile"}, ("fhir", "map", "birthDate"), "invalid_fhir_field"),
        ({"telecom(email)": "nope"}, ("fhir", "map", "telecom(email)"), "unknown_field"),
        ({"gender": "sex"}, ("fhir", "map", "gender", "values", "f"), "unknown_fhir_code"),
        ({"identifier(urn:x)": "name"}, ("fhir", "map", "identifier(urn:x)"),
         "field_mapped_twice"),
        ({"gender": {"field": "sex", "values": {"female": "q"}}},
         ("fhir", "map", "gender", "values", "female"), "unknown_option"),
    ],
)  # fmt: skip
def test_a_map_is_checked_against_the_form(
    change: dict[str, Any], where: tuple[str, ...], kind: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        FormSpec.model_validate(form(resource="Patient", map={**MAP, **change}))
    found = {(tuple(e["loc"]), e["type"]) for e in refused.value.errors()}
    assert (where, kind) in found, found


def test_a_resource_needs_a_map() -> None:
    with pytest.raises(ValidationError):
        FormSpec.model_validate(form(resource="Patient"))
    assert PatientMap.of(FormSpec.model_validate(form(url="urn:q"))) is None


def test_an_app_declares_each_resource_once() -> None:
    from formloom.engines.apps.checks import document_problems

    mapped = {"resource": "Patient", "map": {"name.text": "name"}}
    document = f.app(
        "two",
        f.form("adult", f.field("name"), fhir=mapped),
        f.form("child", f.field("name"), fhir=mapped),
    )
    problems = [(p.path, p.code) for p in document_problems(document)]
    assert problems == [("/forms/1/fhir/resource", "duplicate_fhir_resource")]
