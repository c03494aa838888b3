"""The FHIR API (docs/fhir.md): Questionnaires in and out of an app, records as
QuestionnaireResponses, and the app's patients as FHIR ``Patient`` resources through the map
the patient form declares (platform/fhir/patient.py).

Who may do what is the rest of the API's: adding a form is the designer's save (admin or a
``design`` role), reading a Questionnaire needs a role in the app and leaves out the fields
hidden from the caller, and records go through the record service (its grants, row rules,
validation and audit).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.forms import RecordInvalid
from formloom.platform.apps import auditing
from formloom.platform.apps.endpoints import _audited, _hidden, _member, _result
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import BadRequest
from formloom.platform.fhir import patient, service
from formloom.platform.permissions import guard
from formloom.platform.records.service import etag, service_for

router = APIRouter(prefix="/api", tags=["fhir"])

FHIR_JSON = "application/fhir+json"


class UnmappedOut(BaseModel):
    link_id: str | None = Field(description="linkId of the item (null: the questionnaire)")
    reason: str = Field(description="What was not carried over, and why")


class QuestionnaireImportOut(BaseModel):
    """The save's result (or, with ``dry_run``, its plan) and what was not mapped."""

    model_config = ConfigDict(extra="allow")

    form: str = Field(description="Key of the form made from the questionnaire")
    definition: dict[str, Any] = Field(description="The form definition (app format)")
    unmapped: list[UnmappedOut] = Field(
        description="Every part of an item that could not be mapped, with its linkId and why"
    )
    dry_run: bool = False


class FhirResource(BaseModel):
    """A FHIR R4 resource (JSON), e.g. a Questionnaire or a QuestionnaireResponse."""

    model_config = ConfigDict(extra="allow")

    resourceType: str  # noqa: N815 (FHIR's own name)


def _base(p: Platform, request: Request) -> str:
    configured = getattr(p.settings, "public_base_url", None)
    return str(configured or request.base_url)


@router.post(
    "/apps/{app}/fhir/Questionnaire",
    response_model=QuestionnaireImportOut,
    summary="Add a FHIR R4 Questionnaire to the app as a form",
)
async def import_questionnaire(
    app: str,
    p: PlatformDep,
    who: PrincipalDep,
    questionnaire: Annotated[dict[str, Any], Body(description="A FHIR R4 Questionnaire")],
    dry_run: Annotated[bool, Query(description="Report the plan and the unmapped list")] = False,
    form: Annotated[
        str | None, Query(description="Key of the form (default: from the questionnaire)")
    ] = None,
    allow_destructive: Annotated[
        bool, Query(description="Confirm changes that drop data (replacing a form)")
    ] = False,
) -> JSONResponse:
    guard.require_designer(who, app, "change forms")
    async with (
        _audited(p, who, "app.form_saved", app, dry_run),
        p.db.transaction(write=not dry_run) as session,
    ):
        current = await p.catalog.get(session, app)
        guard.require_design(who, app, current.spec.design, "change forms")
        before = await auditing.grants_before(session, p.catalog, app)
        done = await service.import_into_app(
            session,
            p.catalog,
            app,
            questionnaire,
            form=form,
            actor=who.username,
            now=p.clock.now(),
            allow_destructive=allow_destructive,
            dry_run=dry_run,
        )
        result = done.result
        if not dry_run and result.status != "unchanged":
            await auditing.audit_change(
                session, p.catalog, who, "app.form_saved", result, p.clock.now(), before
            )
    body: dict[str, Any] = {
        "form": done.definition["key"],
        "definition": done.definition,
        "unmapped": [u.as_json() for u in done.unmapped],
    }
    if dry_run:
        assert result.plan is not None
        return JSONResponse({"dry_run": True, **result.plan.to_dict(), **body})
    existed = any(f.get("key") == body["form"] for f in current.document.get("forms", []))
    return JSONResponse({**_result(result), **body}, status_code=200 if existed else 201)


@router.get(
    "/apps/{app}/fhir/Questionnaire/{form}",
    response_model=FhirResource,
    summary="A form as a FHIR R4 Questionnaire",
)
async def read_questionnaire(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    report: Annotated[
        bool,
        Query(
            description="Answer `{questionnaire, unmapped}`: the Questionnaire and what of the "
            "form it could not represent, each with its path in the form definition"
        ),
    ] = False,
) -> JSONResponse:
    """The form as a Questionnaire. What it cannot represent (a check, a formula, a help
    text) is counted in ``X-Unmapped-Count`` and listed with ``report=true``."""
    async with p.db.transaction(write=False) as session:
        installed = await _member(p, session, who, app)
    definition = service.visible_definition(installed, form, _hidden(installed, who, form))
    questionnaire, unmapped = service.questionnaire_of(definition, _base(p, request), app)
    count = {"X-Unmapped-Count": str(len(unmapped))}
    if report:
        body = {"questionnaire": questionnaire, "unmapped": [u.as_json() for u in unmapped]}
        return JSONResponse(body, headers=count)
    return JSONResponse(questionnaire, media_type=FHIR_JSON, headers=count)


@router.get(
    "/records/{app}/{form}/{record_id}/fhir",
    response_model=FhirResource,
    summary="A record as a FHIR R4 QuestionnaireResponse (fields hidden from you left out)",
)
async def read_response(
    app: str, form: str, record_id: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> JSONResponse:
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        record = await records.get(app, form, record_id)
        view = records.view(record)
        installed, _spec = await records.load_form(app, form)
        hidden = records.grants.known(app, form).hidden
    definition = service.visible_definition(installed, form, hidden)
    response = service.response_of(
        definition, _base(p, request), app, view, form=installed.forms[form], now=p.clock.now()
    )
    return JSONResponse(response, media_type=FHIR_JSON, headers={"ETag": etag(record)})


@router.post(
    "/records/{app}/{form}/fhir",
    status_code=201,
    response_model=FhirResource,
    summary="Create a record from a FHIR R4 QuestionnaireResponse",
)
async def create_from_response(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    response: Annotated[dict[str, Any], Body(description="A FHIR R4 QuestionnaireResponse")],
) -> JSONResponse:
    async with p.db.transaction() as session:
        records = service_for(p, session, who)
        installed, _spec = await records.load_form(app, form)
        definition = service.visible_definition(installed, form, ())
        data, sources = service.data_of_response(definition, response)
        try:
            record = await records.create(app, form, data)
        except RecordInvalid as exc:
            raise service.located(exc, definition, sources) from None
        view = records.view(record)
        hidden = records.grants.known(app, form).hidden
    shown = service.visible_definition(installed, form, hidden)
    answer = service.response_of(
        shown, _base(p, request), app, view, form=installed.forms[form], now=p.clock.now()
    )
    return JSONResponse(
        answer,
        status_code=201,
        media_type=FHIR_JSON,
        headers={"ETag": etag(record), "Location": f"/api/records/{app}/{form}/{record.id}/fhir"},
    )


# -- Patient -----------------------------------------------------------------------------------


def _patient_url(p: Platform, request: Request, app: str, record_id: str) -> str:
    return f"{_base(p, request).rstrip('/')}/api/apps/{app}/fhir/Patient/{record_id}"


def _patient_answer(
    resource: dict[str, Any], record: Any, status_code: int = 200, **headers: str
) -> JSONResponse:
    """A Patient with its version as a weak ETag (and ``headers``)."""
    return JSONResponse(
        resource,
        status_code=status_code,
        media_type=FHIR_JSON,
        headers={"ETag": f"W/{etag(record)}", **headers},
    )


@router.get(
    "/apps/{app}/fhir/Patient",
    response_model=FhirResource,
    summary="Search the app's patients (FHIR searchset Bundle)",
)
async def search_patients(
    app: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    identifier: Annotated[
        str | None, Query(description="`system|value`, `|value` or `value`")
    ] = None,
    name: Annotated[str | None, Query(description="Text the patient's name contains")] = None,
    phone: Annotated[str | None, Query(description="A phone number (its digits count)")] = None,
    birthdate: Annotated[str | None, Query(description="YYYY-MM-DD")] = None,
    gender: Annotated[str | None, Query(description="male, female, other or unknown")] = None,
    count: Annotated[int | None, Query(alias="_count", ge=1, description="Most results")] = None,
) -> JSONResponse:
    params = dict(request.query_params)
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        records.require_app(app)
        installed = await p.catalog.get(session, app)
        pmap = patient.patient_map(installed)
        found = await patient.search_patients(records, installed, pmap, params)
    self_url = str(request.url)
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if found.complete:
        bundle["total"] = len(found.patients)
    bundle["link"] = [{"relation": "self", "url": self_url}]
    bundle["entry"] = [
        {
            "fullUrl": _patient_url(p, request, app, resource["id"]),
            "resource": resource,
            "search": {"mode": "match"},
        }
        for resource in found.patients
    ]
    return JSONResponse(bundle, media_type=FHIR_JSON)


@router.get(
    "/apps/{app}/fhir/Patient/{record_id}",
    response_model=FhirResource,
    summary="A patient as a FHIR R4 Patient (fields hidden from you left out)",
)
async def read_patient(app: str, record_id: str, p: PlatformDep, who: PrincipalDep) -> JSONResponse:
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        records.require_app(app)
        pmap = patient.patient_map(await p.catalog.get(session, app))
        record = await records.get(app, pmap.form, record_id)
        resource = patient.as_patient(records, pmap, record)
    return _patient_answer(resource, record)


@router.post(
    "/apps/{app}/fhir/Patient",
    status_code=201,
    response_model=FhirResource,
    summary="Register a patient from a FHIR R4 Patient (validated and ruled as any create)",
)
async def create_patient(
    app: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    resource: Annotated[dict[str, Any], Body(description="A FHIR R4 Patient")],
) -> JSONResponse:
    async with p.db.transaction() as session:
        records = service_for(p, session, who)
        records.require_app(app)
        installed = await p.catalog.get(session, app)
        pmap = patient.patient_map(installed)
        read = patient.read_resource(pmap, resource)
        access = records.allowed(installed, pmap.form, "create")
        try:
            record = await records.create(
                app, pmap.form, patient.writable(read, access, replacing=False)
            )
        except RecordInvalid as exc:
            raise patient.located(exc, pmap, read) from None
        answer = patient.as_patient(records, pmap, record)
    location = f"/api/apps/{app}/fhir/Patient/{record.id}"
    ignored = {"X-Ignored-Elements": ",".join(read.ignored)} if read.ignored else {}
    return _patient_answer(answer, record, 201, Location=location, **ignored)


@router.put(
    "/apps/{app}/fhir/Patient/{record_id}",
    response_model=FhirResource,
    summary="Replace a patient's mapped fields from a FHIR R4 Patient (`If-Match` honoured)",
)
async def update_patient(
    app: str,
    record_id: str,
    p: PlatformDep,
    who: PrincipalDep,
    resource: Annotated[dict[str, Any], Body(description="A FHIR R4 Patient")],
    if_match: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    if isinstance(resource, dict) and resource.get("id") not in (None, record_id):
        raise BadRequest(
            f"The Patient's id ({resource.get('id')!r}) is not the id in the address.",
            errors=[{"path": "/id", "message": "must be the id in the address"}],
        )
    async with p.db.transaction() as session:
        records = service_for(p, session, who)
        records.require_app(app)
        installed = await p.catalog.get(session, app)
        pmap = patient.patient_map(installed)
        read = patient.read_resource(pmap, resource)
        access = records.allowed(installed, pmap.form, "update")
        try:
            record = await records.update(
                app,
                pmap.form,
                record_id,
                patient.writable(read, access, replacing=True),
                if_match=if_match,
            )
        except RecordInvalid as exc:
            raise patient.located(exc, pmap, read) from None
        answer = patient.as_patient(records, pmap, record)
    ignored = {"X-Ignored-Elements": ",".join(read.ignored)} if read.ignored else {}
    return _patient_answer(answer, record, 200, **ignored)
