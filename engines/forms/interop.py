"""What a form keeps for exchange with HL7 FHIR (see docs/fhir.md): codes and item identity.

These attributes do not change how a record is validated; they let a form imported from a
FHIR Questionnaire export back as the same Questionnaire (its linkIds, item codes, prefixes,
answer codes, the FHIRPath it was given) and let records travel as QuestionnaireResponses.
Invariant: every attribute is optional and a form without any of them is an ordinary form
(its keys stand in for linkIds on export).

A form can also stand for a FHIR resource through a declared mapping (``resource`` and
``map``: FHIR element path -> field key), so that its records are read, searched, created
and updated as that resource (``Patient``; engines/fhir/patient.py). The element paths a map
may name are listed here (:func:`patient_element`); :func:`resource_map_issues` checks a map
against the form's fields (each path known, each field a top-level field of a type that can
hold the element, each code mapped to an option of a select).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, NamedTuple, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Coding(BaseModel):
    """A code from a code system (FHIR ``Coding``): system, code and display."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    system: str | None = Field(default=None, description="URI of the code system.")
    code: str | None = Field(default=None, description="The code within the system.")
    display: str | None = Field(default=None, description="How the code system names it.")


class FhirItem(BaseModel):
    """How a field (or section) appears as a FHIR Questionnaire item."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    link_id: str | None = Field(
        default=None, description="The item's linkId when it differs from the field key."
    )
    parent: str | None = Field(
        default=None,
        description="linkId of the enclosing item (a group, or a question with sub-items); "
        "unset at the top level.",
    )
    type: str | None = Field(
        default=None,
        description="The FHIR item type when the field type does not say it (display, "
        "open-choice, reference, quantity, string).",
    )
    code: tuple[Coding, ...] = Field(default=(), description="Codes of the question (item.code).")
    prefix: str | None = Field(default=None, description="The item's prefix (e.g. '1.1').")
    unit: Coding | None = Field(default=None, description="Unit of a quantity item.")
    continues: bool = Field(
        default=False,
        description="A section that only resumes its enclosing group after a nested group or "
        "a display text; it is no item of its own.",
    )
    calculated_expression: str | None = Field(
        default=None,
        description="The FHIRPath (SDC calculatedExpression) this computed field came from.",
    )
    enable_when_expression: str | None = Field(
        default=None,
        description="The FHIRPath (SDC enableWhenExpression) this visible_if came from.",
    )


class FhirBinding(BaseModel):
    """A mapped element's field, with the FHIR codes' options for a coded element."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="Key of a top-level field of the form.")
    values: dict[str, str] | None = Field(
        default=None,
        description="For a coded element (gender): FHIR code -> the select's option value; "
        "unset: the option values are the FHIR codes.",
    )


class FhirForm(BaseModel):
    """How a form appears as a FHIR Questionnaire."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str | None = Field(default=None, description="The Questionnaire's canonical URL.")
    name: str | None = Field(default=None, description="The Questionnaire's computable name.")
    resource: Literal["Patient"] | None = Field(
        default=None,
        description="The FHIR resource the form's records are (with `map`): `Patient`.",
    )
    map: dict[str, str | FhirBinding] | None = Field(
        default=None,
        description='FHIR element path -> field key, e.g. {"name.text": "name", '
        '"telecom(phone)": "phone", "identifier(urn:oid:...)": "id_number", "birthDate": '
        '"birth_date", "gender": {"field": "gender", "values": {"female": "f"}}} '
        "(docs/fhir.md lists the paths).",
    )

    @model_validator(mode="after")
    def _resource_and_map(self) -> Self:
        if (self.resource is None) != (not self.map):
            raise ValueError("`resource` and a non-empty `map` go together")
        return self

    def bindings(self) -> list[tuple[str, FhirBinding]]:
        """The map's entries, each target as a binding (a plain key: no value map)."""
        return [
            (path, target if isinstance(target, FhirBinding) else FhirBinding(field=target))
            for path, target in (self.map or {}).items()
        ]


# -- the elements of a Patient a map may name -------------------------------------------------

TEXTUAL = frozenset({"text", "textarea"})
#: FHIR ContactPoint.system codes (telecom(<system>)).
TELECOM_SYSTEMS = ("phone", "fax", "email", "pager", "url", "sms", "other")
#: FHIR AdministrativeGender.
GENDER_CODES = ("male", "female", "other", "unknown")

ElementKind = Literal["name", "telecom", "identifier", "address", "simple"]


@dataclass(frozen=True)
class PatientElement:
    """One element of a Patient a map may name: where it lives, its FHIR value type, and
    the field types that can hold it."""

    path: str
    kind: ElementKind
    #: name / address: the part (``text``, ``family``, ``city``); simple: the element name
    part: str
    #: FHIR value type: string, date, dateTime, boolean or code
    value_type: str
    field_types: frozenset[str]
    #: telecom: the ContactPoint system; identifier: the Identifier system
    system: str | None = None
    codes: tuple[str, ...] = ()


_SIMPLE = {
    "birthDate": ("date", frozenset({"date"})),
    "gender": ("code", frozenset({"select"})),
    "active": ("boolean", frozenset({"boolean"})),
    "deceasedBoolean": ("boolean", frozenset({"boolean"})),
    "deceasedDateTime": ("dateTime", frozenset({"datetime"})),
}
NAME_PARTS = ("text", "family", "given", "prefix")
ADDRESS_PARTS = ("text", "line", "city", "district", "state", "postalCode", "country")
_TELECOM = re.compile(r"telecom\((" + "|".join(TELECOM_SYSTEMS) + r")\)")
_IDENTIFIER = re.compile(r"identifier\(([^()\s|]+)\)")


def patient_element(path: str) -> PatientElement | None:
    """The element ``path`` names (``name.text``, ``telecom(phone)``,
    ``identifier(<system URI>)``, ``birthDate``, ``gender``, ``address.city``, ...), or
    ``None`` for a path a map may not name."""
    if path in _SIMPLE:
        value_type, types = _SIMPLE[path]
        codes = GENDER_CODES if path == "gender" else ()
        return PatientElement(path, "simple", path, value_type, types, codes=codes)
    head, _, part = path.partition(".")
    if head == "name" and part in NAME_PARTS:
        return PatientElement(path, "name", part, "string", TEXTUAL)
    if head == "address" and part in ADDRESS_PARTS:
        return PatientElement(path, "address", part, "string", TEXTUAL)
    if found := _TELECOM.fullmatch(path):
        kinds = {"phone": "phone", "sms": "phone", "fax": "phone", "email": "email", "url": "url"}
        own = kinds.get(found[1])
        types = TEXTUAL | {own} if own else TEXTUAL
        return PatientElement(path, "telecom", found[1], "string", types, system=found[1])
    if found := _IDENTIFIER.fullmatch(path):
        types = frozenset({"text", "phone", "email"})
        return PatientElement(path, "identifier", "value", "string", types, system=found[1])
    return None


class MapIssue(NamedTuple):
    """Something wrong with a form's FHIR map: where (relative to the map), what, why."""

    loc: tuple[str | int, ...]
    kind: str
    message: str
    value: object = None


def resource_map_issues(
    fhir: FhirForm, fields: Mapping[str, tuple[str, tuple[str, ...]]]
) -> list[MapIssue]:
    """What is wrong with ``fhir``'s map for a form whose top-level fields are ``fields``
    (key -> (type, option values)); locations are relative to ``fhir``."""
    issues: list[MapIssue] = []
    used: dict[str, str] = {}
    for path, binding in fhir.bindings():
        where: tuple[str | int, ...] = ("map", path)
        element = patient_element(path)
        if element is None:
            issues.append(
                MapIssue(where, "unknown_fhir_element", f"{path!r} is not an element of a "
                         "Patient a map can name (docs/fhir.md lists them)", path)
            )  # fmt: skip
            continue
        found = fields.get(binding.field)
        if found is None:
            issues.append(
                MapIssue(where, "unknown_field", f"{binding.field!r} is not a top-level "
                         "field of the form", binding.field)
            )  # fmt: skip
            continue
        kind, options = found
        if kind not in element.field_types:
            wanted = ", ".join(sorted(element.field_types))
            issues.append(
                MapIssue(where, "invalid_fhir_field", f"{path} needs a field of type {wanted}; "
                         f"{binding.field!r} is a {kind} field", binding.field)
            )  # fmt: skip
            continue
        if binding.field in used:
            issues.append(
                MapIssue(where, "field_mapped_twice", f"{binding.field!r} is already the "
                         f"field of {used[binding.field]}", binding.field)
            )  # fmt: skip
        used[binding.field] = path
        issues.extend(_code_issues(element, binding, options, where))
    return issues


def _code_issues(
    element: PatientElement,
    binding: FhirBinding,
    options: tuple[str, ...],
    where: tuple[str | int, ...],
) -> list[MapIssue]:
    if not element.codes:
        if binding.values is not None:
            message = f"{element.path} is not a coded element: it takes no values map"
            return [MapIssue((*where, "values"), "values_not_coded", message)]
        return []
    issues = []
    values = binding.values if binding.values is not None else {o: o for o in options}
    for code, option in values.items():
        if code not in element.codes:
            issues.append(
                MapIssue((*where, "values", code), "unknown_fhir_code",
                         f"{code!r} is not a code of {element.path} "
                         f"({', '.join(element.codes)})", code)
            )  # fmt: skip
        elif option not in options:
            issues.append(
                MapIssue((*where, "values", code), "unknown_option",
                         f"{option!r} is not an option of {binding.field!r}", option)
            )  # fmt: skip
    return issues
