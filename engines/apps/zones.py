"""Where a record's time zone comes from: the app's ``zone`` declaration.

A deployment runs on one clock (``settings.timezone``). An app whose records belong to
places in other zones (a clinic's branches) says so with one top-level declaration::

    "zone": {"field": "branch.timezone"}

read as: a record whose form has the relation field ``branch`` takes its zone from the
``timezone`` field of the record that relation points at; every other record (a form
without the relation, an empty or dangling relation, a related record without a zone)
uses the deployment's zone. Date-relative rule timers are computed on the record's clock
and the texts people read show its times there (docs/time-zones.md).

Invariants
    * The declaration is data; this module only reads it. Nothing here loads a record: the
      platform loads the related records (one query per batch) and passes their values to
      :func:`valid_zone`.
    * A zone is an IANA name from the machine's zone database (:func:`is_zone_name`); a
      value that is not one is never used (the deployment's zone is) and is refused when a
      record of the zone's form is written (:func:`zone_value_problem`).
    * At import (:func:`zone_problems`) the relation must exist on at least one form and be
      a relation wherever a form has a field of that name; each target form must have the
      zone field, as ``text`` or as a ``select`` whose every option is an IANA name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.apps.checks import DefinitionProblem
from formloom.engines.forms import FormSpec
from formloom.engines.forms.fields import RelationField, SelectField

__all__ = [
    "ZONE_FIELD_TYPES",
    "ZoneSource",
    "ZoneSpec",
    "is_zone_name",
    "valid_zone",
    "zone_problems",
    "zone_source",
    "zone_value_problem",
]

#: Field types a zone field may have.
ZONE_FIELD_TYPES = ("text", "select")


class ZoneSpec(BaseModel):
    """Where a record's time zone comes from (docs/app-format.md, "Time zones")."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}\.[a-z][a-z0-9_]{0,62}$",
        description="`relation.field`: a record whose form has the relation field "
        "`relation` takes its zone from the IANA zone name in `field` of the record it "
        'points at (e.g. "branch.timezone"); other records use the deployment\'s zone.',
    )

    @property
    def relation(self) -> str:
        return self.field.partition(".")[0]

    @property
    def zone_field(self) -> str:
        return self.field.partition(".")[2]


@dataclass(frozen=True)
class ZoneSource:
    """The declaration resolved against an app's forms: form -> the target form of its
    zone relation (forms without the relation are absent), and the field read there."""

    relation: str
    zone_field: str
    targets: dict[str, str]

    def target_of(self, form: str) -> str | None:
        return self.targets.get(form)

    def zone_forms(self) -> frozenset[str]:
        """The forms whose records hold zone names (what writes are checked on)."""
        return frozenset(self.targets.values())


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def is_zone_name(value: Any) -> bool:
    """Whether ``value`` is an IANA zone name this machine knows (``Asia/Urumqi``)."""
    return isinstance(value, str) and value in _zone_names()


def valid_zone(value: Any) -> str | None:
    """``value`` if it is an IANA zone name, else ``None`` (the caller's default applies)."""
    return value if is_zone_name(value) else None


def zone_source(spec: ZoneSpec | None, forms: list[FormSpec]) -> ZoneSource | None:
    """The declaration resolved against ``forms`` (``None``: the app declares none)."""
    if spec is None:
        return None
    targets: dict[str, str] = {}
    for form in forms:
        field = form.field(spec.relation)
        if isinstance(field, RelationField):
            targets[form.key] = field.target
    return ZoneSource(spec.relation, spec.zone_field, targets)


def zone_value_problem(value: Any) -> str | None:
    """Why a zone field's value cannot be stored, or ``None`` (empty is allowed: the record
    then uses the deployment's zone)."""
    if value is None or value == "" or is_zone_name(value):
        return None
    return (
        f"{str(value)[:80]!r} is not an IANA time zone name (e.g. 'Asia/Shanghai', "
        "'America/New_York')"
    )


def _type(field: object) -> str:
    return str(getattr(field, "type", "section"))


def zone_problems(spec: ZoneSpec | None, forms: list[FormSpec]) -> list[DefinitionProblem]:
    """What is wrong with the app's ``zone`` declaration, each at its JSON pointer."""
    if spec is None:
        return []
    here = "/zone/field"
    relation, name = spec.relation, spec.zone_field
    problems: list[DefinitionProblem] = []
    targets: dict[str, str] = {}
    for form in forms:
        field = form.field(relation)
        if field is None:
            continue
        if not isinstance(field, RelationField):
            problems.append(
                DefinitionProblem(
                    path=here,
                    code="invalid_zone_relation",
                    message=f"the field {relation!r} of form {form.key!r} is a {_type(field)}, "
                    "not a relation: a zone is read through a relation to the record holding it",
                )
            )
            continue
        targets.setdefault(field.target, form.key)
    if not targets and not problems:
        problems.append(
            DefinitionProblem(
                path=here,
                code="unknown_relation",
                message=f"no form has a relation field {relation!r} to read the zone through",
            )
        )
    by_key = {form.key: (index, form) for index, form in enumerate(forms)}
    for target, source in sorted(targets.items()):
        if target not in by_key:
            continue  # an unknown target form is reported by the form checks
        form_index, form = by_key[target]
        field = form.field(name)
        if field is None:
            problems.append(
                DefinitionProblem(
                    path=here,
                    code="unknown_field",
                    message=f"form {target!r} (the target of {source}.{relation}) has no "
                    f"field {name!r}",
                )
            )
        elif _type(field) not in ZONE_FIELD_TYPES:
            problems.append(
                DefinitionProblem(
                    path=here,
                    code="invalid_zone_field",
                    message=f"the field {name!r} of form {target!r} is a {_type(field)}; a zone "
                    "field is a text or a select of IANA zone names",
                )
            )
        elif isinstance(field, SelectField):
            field_index = next(i for i, f in enumerate(form.fields) if f.key == name)
            for option_index, option in enumerate(field.options):
                if not is_zone_name(option.value):
                    path = f"/forms/{form_index}/fields/{field_index}/options/{option_index}/value"
                    problems.append(
                        DefinitionProblem(
                            path=path,
                            code="invalid_zone",
                            message=f"{option.value[:80]!r} is not an IANA time zone name, "
                            f"and {target}.{name} holds the zone of records (the app's "
                            "'zone')",
                        )
                    )
    return problems
