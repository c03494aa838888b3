"""The FHIR ``Patient`` of an app: the form whose definition declares
``{"fhir": {"resource": "Patient", "map": {...}}}``, read, searched, created and updated
through the record service (docs/fhir.md).

Invariants:

* Every call is the caller's: records are read and written by ``RecordService`` with the
  caller's grants, so row filters apply (a patient outside them is the record API's 403 or
  404), hidden fields never reach the resource (it is written from ``RecordService.view``),
  writes run the form's validation and rules, and sensitive reads are audited as any read.
* A replacement (``PUT``) sets every mapped field the caller may change to what the
  resource says, clearing those it leaves out; a mapped field the caller may not see or
  change is left as it is when the resource says nothing of it (and refused as in the record
  API when it does).
* Errors point into the resource: a field's validation error carries the JSON pointer of the
  element it came from (or the map's element path when the resource did not say it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from formloom.engines.apps.permissions import FormAccess
from formloom.engines.fhir.patient import (
    PatientData,
    PatientInvalid,
    PatientMap,
    patient_to_data,
    record_to_patient,
    search_criteria,
)
from formloom.engines.forms import RecordInvalid
from formloom.platform.apps.service import InstalledApp
from formloom.platform.errors import BadRequest, NotFound, Unprocessable
from formloom.platform.records import search
from formloom.platform.records.query import ListQuery
from formloom.platform.records.service import RecordService

#: The search parameters a Patient search understands (besides ``_count``).
SEARCH_PARAMS = ("identifier", "name", "phone", "birthdate", "gender")
DEFAULT_COUNT = 50


def patient_map(installed: InstalledApp) -> PatientMap:
    """The app's Patient map (the first form declaring one); 404 when it has none."""
    for spec in installed.spec.forms:
        found = PatientMap.of(spec)
        if found is not None:
            return found
    raise NotFound(
        f"App '{installed.key}' keeps no FHIR Patient: no form declares "
        '{"fhir": {"resource": "Patient", "map": {...}}}.'
    )


def as_patient(records: RecordService, pmap: PatientMap, record: Any) -> dict[str, Any]:
    """The record as a Patient, as the caller may see it."""
    return record_to_patient(pmap, records.view(record))


def read_resource(pmap: PatientMap, resource: Any) -> PatientData:
    try:
        return patient_to_data(pmap, resource)
    except PatientInvalid as exc:
        raise Unprocessable(
            exc.message, errors=[{"path": exc.pointer, "code": "fhir", "message": exc.message}]
        ) from None


def writable(read: PatientData, access: FormAccess, *, replacing: bool) -> dict[str, Any]:
    """The data to write: what the resource says, without the mapped fields it says nothing
    of that the caller may not write (hidden; read-only when replacing)."""
    kept = access.hidden | (access.read_only if replacing else frozenset())
    return {key: value for key, value in read.data.items() if value is not None or key not in kept}


def located(exc: RecordInvalid, pmap: PatientMap, read: PatientData) -> Unprocessable:
    """The record's field errors at the elements of the resource they came from."""
    paths = {b.field: b.element.path for b in pmap.bound}
    errors = [
        {
            "field": error.field,
            "path": read.sources.get(error.field) or paths.get(error.field, error.path),
            "element": paths.get(error.field),
            "code": error.code,
            "message": error.message,
        }
        for error in exc.errors
    ]
    noun = "element is" if len(errors) == 1 else "elements are"
    return Unprocessable(f"{len(errors)} {noun} not valid for this clinic.", errors=errors)


@dataclass
class Found:
    """A search's matches (as Patients) and whether there may be more than were returned."""

    patients: list[dict[str, Any]]
    complete: bool


async def search_patients(
    records: RecordService, installed: InstalledApp, pmap: PatientMap, params: dict[str, str]
) -> Found:
    """The caller's patients matching ``params`` (see ``engines.fhir.patient``), at most
    ``_count``. A phone number matches by its digits (spaces, dashes and +86 do not count),
    through the list's quick search when the phone field is one of its search fields."""
    unknown = sorted(set(params) - {*SEARCH_PARAMS, "_count", "_format"})
    if unknown:
        raise BadRequest(f"Unknown Patient search parameter(s): {', '.join(unknown)}.")
    count = _count(params.get("_count"), records.max_page_size)
    try:
        criteria = search_criteria(pmap, {k: v for k, v in params.items() if k in SEARCH_PARAMS})
    except PatientInvalid as exc:
        problem = [{"path": exc.pointer, "message": exc.message}]
        raise BadRequest(exc.message, errors=problem) from None
    condition = criteria.filter
    q = None
    wanted: str | None = None
    if criteria.phone is not None:
        key, number = criteria.phone
        spec = installed.form(pmap.form)
        access = records.allowed(installed, pmap.form, "read")
        searchable = dict(search.search_fields(spec)).get(key) == "phone"
        if searchable and key not in access.hidden:
            q, wanted = number, search.phone_digits(number)
        else:
            same = {"==": [{"var": key}, number]}
            condition = same if condition is None else {"and": [condition, same]}
    limit = records.max_page_size if wanted is not None else count
    page = await records.list(
        installed.key, pmap.form, ListQuery(filter=condition, sort="id", limit=limit, q=q)
    )
    items = page.items
    if wanted is not None and criteria.phone is not None:
        key = criteria.phone[0]
        items = [i for i in items if search.phone_digits(str(i["data"].get(key) or "")) == wanted]
    complete = page.next_cursor is None and len(items) <= count
    return Found([record_to_patient(pmap, item) for item in items[:count]], complete)


def _count(raw: str | None, most: int) -> int:
    if raw is None:
        return DEFAULT_COUNT
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest("_count must be a whole number.") from None
    return max(1, min(value, most))
