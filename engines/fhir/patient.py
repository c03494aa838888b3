"""A form's records as FHIR R4 ``Patient`` resources, through the map its definition declares
(``{"fhir": {"resource": "Patient", "map": {element path: field key}}}``, docs/fhir.md).

:func:`record_to_patient` writes a record (as the caller may see it) as a Patient;
:func:`patient_to_data` reads a Patient into the record's data; :func:`search_criteria`
turns the search parameters ``identifier``, ``phone``, ``name``, ``birthdate`` and ``gender``
into what the record service filters by. Pure: no web, no database.

Invariants:

* Only mapped fields travel, in both directions; a field absent from the record (hidden from
  the caller) is absent from the resource, and a resource's unmapped elements are not read
  (they are listed, with their path, in :attr:`PatientData.ignored`).
* A coded element (``gender``) goes through its code -> option map both ways; an option
  without a code is written as no element (never as a code FHIR does not know).
* ``patient_to_data`` gives a value (``None`` when the element is absent) for every mapped
  field, so a caller replacing a record (``PUT``) clears what the resource no longer says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from formloom.engines.forms import FormSpec
from formloom.engines.forms.interop import FhirBinding, PatientElement, patient_element

__all__ = [
    "PatientData",
    "PatientInvalid",
    "PatientMap",
    "SearchCriteria",
    "patient_to_data",
    "record_to_patient",
    "search_criteria",
]


class PatientInvalid(ValueError):
    """The resource is not a Patient this form can take; ``pointer`` locates it (JSON
    pointer into the resource)."""

    def __init__(self, message: str, pointer: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.pointer = pointer


@dataclass(frozen=True)
class Bound:
    element: PatientElement
    field: str
    #: FHIR code -> option value (coded elements); empty: none
    to_option: dict[str, str]

    @property
    def to_code(self) -> dict[str, str]:
        return {option: code for code, option in self.to_option.items()}


@dataclass(frozen=True)
class PatientMap:
    """A form's declared Patient map, resolved (paths to elements, codes to options)."""

    form: str
    bound: tuple[Bound, ...]

    @classmethod
    def of(cls, spec: FormSpec) -> PatientMap | None:
        """The form's map, or ``None`` when the form is no Patient (the definition was
        checked on import, so every path is known)."""
        if spec.fhir is None or spec.fhir.resource != "Patient":
            return None
        bound = []
        for path, binding in spec.fhir.bindings():
            element = patient_element(path)
            if element is not None:
                bound.append(Bound(element, binding.field, _options(element, binding, spec)))
        return cls(spec.key, tuple(bound))

    def field_of(self, path: str) -> str | None:
        return next((b.field for b in self.bound if b.element.path == path), None)

    def identifiers(self) -> list[Bound]:
        return [b for b in self.bound if b.element.kind == "identifier"]

    def fields(self) -> list[str]:
        return [b.field for b in self.bound]


def _options(element: PatientElement, binding: FhirBinding, spec: FormSpec) -> dict[str, str]:
    if not element.codes:
        return {}
    if binding.values is not None:
        return dict(binding.values)
    options = getattr(spec.field(binding.field), "options", ())
    return {o.value: o.value for o in options if o.value in element.codes}


# -- record -> Patient -------------------------------------------------------------------------


def record_to_patient(pmap: PatientMap, record: dict[str, Any]) -> dict[str, Any]:
    """The record (``{"id", "version", "updated_at", "data"}``, as the caller may see it)
    as a Patient resource."""
    data: dict[str, Any] = record.get("data") or {}
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": record["id"],
        "meta": {"versionId": str(record["version"]), "lastUpdated": record["updated_at"]},
    }
    name: dict[str, Any] = {}
    address: dict[str, Any] = {}
    for bound in pmap.bound:
        value = data.get(bound.field)
        if value is None or value == "":
            continue
        element = bound.element
        if element.kind == "name":
            name[element.part] = [value] if element.part in ("given", "prefix") else value
        elif element.kind == "address":
            address[element.part] = [value] if element.part == "line" else value
        elif element.kind == "telecom":
            patient.setdefault("telecom", []).append({"system": element.system, "value": value})
        elif element.kind == "identifier":
            patient.setdefault("identifier", []).append({"system": element.system, "value": value})
        elif element.codes:
            code = bound.to_code.get(value)
            if code is not None:
                patient[element.part] = code
        else:
            patient[element.part] = value
    if name:
        patient["name"] = [name]
    if address:
        patient["address"] = [address]
    return _ordered(patient)


#: Patient's elements in the order the specification lists them (readers expect it).
_ORDER = ("resourceType", "id", "meta", "identifier", "active", "name", "telecom", "gender",
          "birthDate", "deceasedBoolean", "deceasedDateTime", "address")  # fmt: skip


def _ordered(resource: dict[str, Any]) -> dict[str, Any]:
    return {key: resource[key] for key in _ORDER if key in resource}


# -- Patient -> record -------------------------------------------------------------------------


@dataclass
class PatientData:
    """A Patient read for a form: the record's data (every mapped field, ``None`` where
    the resource says nothing), where each field came from, and what was not read."""

    data: dict[str, Any]
    #: field key -> JSON pointer of its value in the resource
    sources: dict[str, str]
    #: JSON pointers of the resource's elements no mapping reads
    ignored: list[str] = field(default_factory=list)


def patient_to_data(pmap: PatientMap, resource: Any) -> PatientData:
    """The record data a Patient gives the form (see :class:`PatientData`)."""
    if not isinstance(resource, dict) or resource.get("resourceType") != "Patient":
        raise PatientInvalid("The body must be a FHIR Patient (resourceType 'Patient').", "")
    data: dict[str, Any] = {key: None for key in pmap.fields()}
    sources: dict[str, str] = {}
    read: set[str] = set()
    names, name_at = _first(resource, "name", "official")
    addresses, address_at = _first(resource, "address", "home")
    for bound in pmap.bound:
        element = bound.element
        value: Any = None
        at = f"/{element.part}"
        if element.kind == "name" and names is not None:
            value, at = _part(names, element.part, f"/name/{name_at}")
            read.add("name")
        elif element.kind == "address" and addresses is not None:
            value, at = _part(addresses, element.part, f"/address/{address_at}")
            read.add("address")
        elif element.kind in ("telecom", "identifier"):
            value, at = _by_system(resource, element)
            read.add(element.kind)
        elif element.kind == "simple" and element.part in resource:
            value = resource[element.part]
            read.add(element.part)
            if element.codes:
                if value not in bound.to_option:
                    known = ", ".join(sorted(bound.to_option))
                    raise PatientInvalid(
                        f"{element.path} {value!r} has no option in this form ({known}).", at
                    )
                value = bound.to_option[value]
        if value is not None:
            data[bound.field] = value
            sources[bound.field] = at
    ignored = [f"/{key}" for key in resource if key not in read | _SKIPPED]
    return PatientData(data, sources, ignored)


#: Elements that carry no record data: the server keeps its own id, versions and narrative.
_SKIPPED = {"resourceType", "id", "meta", "text"}


def _first(resource: dict[str, Any], name: str, use: str) -> tuple[dict[str, Any] | None, int]:
    """The entry of a repeating element a map reads: the first with ``use``, else the first."""
    entries = resource.get(name)
    if entries is None:
        return None, 0
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PatientInvalid(f"Patient.{name} must be a list of objects.", f"/{name}")
    for index, entry in enumerate(entries):
        if entry.get("use") == use:
            return entry, index
    return (entries[0], 0) if entries else (None, 0)


def _part(entry: dict[str, Any], part: str, at: str) -> tuple[Any, str]:
    value = entry.get(part)
    if isinstance(value, list):  # given, prefix, line: the first (a form has one)
        return (value[0] if value else None), f"{at}/{part}/0"
    return value, f"{at}/{part}"


def _by_system(resource: dict[str, Any], element: PatientElement) -> tuple[Any, str]:
    entries = resource.get(element.kind) or []
    if not isinstance(entries, list):
        raise PatientInvalid(f"Patient.{element.kind} must be a list.", f"/{element.kind}")
    for index, entry in enumerate(entries):
        if isinstance(entry, dict) and entry.get("system") == element.system:
            return entry.get("value"), f"/{element.kind}/{index}/value"
    return None, f"/{element.kind}"


# -- search ------------------------------------------------------------------------------------


@dataclass
class SearchCriteria:
    """A Patient search as the record service takes it: a JsonLogic filter over the form's
    fields, and phone numbers (compared by their digits by the caller's search)."""

    filter: dict[str, Any] | None
    phone: tuple[str, str] | None  # (field, number)


def search_criteria(pmap: PatientMap, params: dict[str, str]) -> SearchCriteria:
    """The filter of ``identifier`` (``system|value``, ``|value`` or ``value``: any mapped
    identifier), ``name`` (the mapped name text, family or given name contains it),
    ``birthdate`` and ``gender`` (exact; a gender code through the map); ``phone``: the
    ``telecom(phone)`` field (else ``telecom(sms)``), left to the caller to compare by digits.
    A parameter the map cannot answer is refused (:class:`PatientInvalid`, pointer: its name)."""
    parts: list[Any] = []
    if "identifier" in params:
        raw = params["identifier"]
        system, _, value = raw.rpartition("|") if "|" in raw else ("", "", raw)
        fields = [b.field for b in pmap.identifiers() if not system or b.element.system == system]
        if not fields:
            raise PatientInvalid(f"No identifier of system {system!r} is kept.", "identifier")
        parts.append(_any([{"==": [{"var": key}, value]} for key in fields]))
    if "name" in params:
        fields = [b.field for b in pmap.bound if b.element.kind == "name"]
        if not fields:
            raise PatientInvalid("This form keeps no name.", "name")
        parts.append(_any([{"in": [params["name"], {"var": key}]} for key in fields]))
    for param, path in (("birthdate", "birthDate"), ("gender", "gender")):
        if param not in params:
            continue
        key = pmap.field_of(path)
        if key is None:
            raise PatientInvalid(f"This form keeps no {path}.", param)
        value = params[param]
        if path == "gender":
            bound = next(b for b in pmap.bound if b.element.path == path)
            value = bound.to_option.get(value, f"(no option for {value})")
        parts.append({"==": [{"var": key}, value]})
    phone = None
    if "phone" in params:
        key = pmap.field_of("telecom(phone)") or pmap.field_of("telecom(sms)")
        if key is None:
            raise PatientInvalid("This form keeps no phone number.", "phone")
        phone = (key, params["phone"])
    condition = None if not parts else parts[0] if len(parts) == 1 else {"and": parts}
    return SearchCriteria(condition, phone)


def _any(options: list[Any]) -> Any:
    return options[0] if len(options) == 1 else {"or": options}
