"""The form spec: an immutable, validated definition of one form of an app.

``FormSpec`` is built from the app definition JSON (``FormSpec.model_validate(...)``) and is
never changed afterwards; a designer's save produces a new ``FormSpec`` (a new form
version). Everything derived from it — the JSON Schema, the compiled validator, the order in
which computed fields are evaluated — is computed once per spec and cached (see
:mod:`.compiled`).

Whole-form invariants checked here (each error carries pydantic's ``loc``; use
:func:`definition_errors` for JSON pointers): field keys are unique and not reserved for
record columns, ``title_field`` names a top-level field with a value, no computed field
depends on itself (directly or through other computed fields, in the form or within a
table), no ``visible_if`` reads its own field, every JsonLogic expression passes the
logic engine's static check, and a form laid out as ``tabs`` has a section to make a tab of.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from formloom.engines.forms.fields import (
    FIELD_TYPES,
    SCALAR_TYPES,
    STORED_AS,
    BaseField,
    ColumnSpec,
    ComputedField,
    DefinitionIssue,
    FieldSpec,
    IndexableField,
    Loc,
    MultiselectField,
    SectionField,
    TableField,
    UserField,
    raise_issues,
)
from formloom.engines.forms.interop import FhirForm, resource_map_issues
from formloom.engines.forms.labels import Label, label_text
from formloom.engines.logic import check_expression, variables

#: Names of record columns; a field with one of these keys would be ambiguous in filters.
RESERVED_KEYS = frozenset(
    {
        "id",
        "app",
        "form",
        "form_version",
        "version",
        "data",
        "created_at",
        "created_by",
        "updated_at",
        "updated_by",
        "deleted_at",
    }
)


class FormSpec(BaseModel):
    """One form: its key, labels and ordered fields (sections included, in display order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Identifier of the form within its app (lower-case, digits, underscores).",
    )
    label: Label = Field(description='Name of the form, e.g. {"en": "Patient"}.')
    description: Label | None = Field(default=None, description="What the form is for.")
    title_field: str | None = Field(
        default=None,
        description="Key of the field whose value names a record (in lists, links, titles).",
    )
    sensitive: bool = Field(
        default=False,
        description="Records hold sensitive (e.g. medical) data: access is audited.",
    )
    user_field: str | None = Field(
        default=None,
        description="Records of this form stand for people who sign in (staff): the key of "
        "the text or e-mail field holding each one's user name. Flow tasks assigned through "
        "a relation to this form go to that user.",
    )
    sort: str | None = Field(
        default=None,
        pattern=r"^-?[a-z][a-z0-9_]*(,-?[a-z][a-z0-9_]*)*$",
        description="The order of the form's lists when the reader picks none, as a list's "
        "`sort`: `-visit_date` (newest visit first), `name`, `-created_at`. Unset: newest "
        "record first.",
    )
    search: tuple[str, ...] | None = Field(
        default=None,
        description="Keys of the text, e-mail and phone fields the list's quick search looks "
        "in. Unset: the title field and every indexed text, e-mail and phone field.",
    )
    summary: tuple[str, ...] | None = Field(
        default=None,
        max_length=3,
        description="Keys of up to three single-value fields (text, e-mail, phone, URL, "
        "select, date, time, number) a relation picker shows under each record's title to "
        'tell namesakes apart: `["phone", "birth_date"]`. Unset: the first two of its '
        "phone fields, then dates, then selects.",
    )
    layout: Literal["sections", "tabs"] = Field(
        default="sections",
        description="How the form's top-level sections are shown: `sections` one under "
        "another (the default), `tabs` one tab per section, the fields before the first "
        "section above the tabs. Only the display changes; records and checks do not.",
    )
    fields: tuple[FieldSpec, ...] = Field(
        description="The fields in display order; a section groups the fields after it."
    )
    fhir: FhirForm | None = Field(
        default=None, description="How the form appears as a FHIR Questionnaire (docs/fhir.md)."
    )

    @model_validator(mode="after")
    def _check_form(self) -> Self:
        issues: list[DefinitionIssue] = []
        issues.extend(_key_issues(self.fields))
        issues.extend(_expression_issues(self.fields, ("fields",)))
        issues.extend(_cycle_issues(self.fields, ("fields",)))
        for index, field in enumerate(self.fields):
            if isinstance(field, TableField):
                issues.extend(_expression_issues(field.fields, ("fields", index, "fields")))
                issues.extend(_cycle_issues(field.fields, ("fields", index, "fields")))
        if self.title_field is not None:
            target = self.field(self.title_field)
            if target is None:
                issues.append(
                    DefinitionIssue(
                        ("title_field",),
                        "unknown_title_field",
                        f"{self.title_field!r} is not a field of the form",
                        self.title_field,
                    )
                )
            elif not isinstance(target, IndexableField | ComputedField):
                issues.append(
                    DefinitionIssue(
                        ("title_field",),
                        "invalid_title_field",
                        f"{self.title_field!r} is a {target.field_type} field; the title "
                        "field must hold a single value (text, number, date, select, ...)",
                        self.title_field,
                    )
                )
        if self.user_field is not None:
            target = self.field(self.user_field)
            if target is None or target.field_type not in ("text", "email"):
                issues.append(
                    DefinitionIssue(
                        ("user_field",),
                        "invalid_user_field",
                        f"{self.user_field!r} must be a text or e-mail field of the form",
                        self.user_field,
                    )
                )
        sortable = {k for k, t in field_types(self).items() if t in SCALAR_TYPES}
        for index, part in enumerate((self.sort or "").split(",") if self.sort else ()):
            key = part.lstrip("-")
            if key not in sortable and key not in SORTABLE_COLUMNS:
                issues.append(
                    DefinitionIssue(
                        ("sort",),
                        "invalid_sort",
                        f"part {index + 1}, {key!r}, is not a field of the form that a list "
                        "can be sorted by (a single value) nor a record column",
                        self.sort,
                    )
                )
        for index, key in enumerate(self.search or ()):
            if field_types(self).get(key) not in SEARCHABLE_TYPES:
                issues.append(
                    DefinitionIssue(
                        ("search", index),
                        "invalid_search_field",
                        f"{key!r} must be a text, long text, e-mail or phone field of the form",
                        key,
                    )
                )
        for index, key in enumerate(self.summary or ()):
            if field_types(self).get(key) not in SUMMARY_TYPES:
                issues.append(
                    DefinitionIssue(
                        ("summary", index),
                        "invalid_summary_field",
                        f"{key!r} must be a text, e-mail, phone, URL, select, date, time or "
                        "number field of the form",
                        key,
                    )
                )
        if self.layout == "tabs" and not any(isinstance(f, SectionField) for f in self.fields):
            issues.append(
                DefinitionIssue(
                    ("layout",),
                    "tabs_without_sections",
                    "a form laid out as tabs needs at least one section: each top-level "
                    "section is a tab",
                    self.layout,
                )
            )
        if self.fhir is not None and self.fhir.map:
            issues.extend(self._fhir_map_issues(self.fhir))
        raise_issues("FormSpec", issues)
        return self

    def _fhir_map_issues(self, fhir: FhirForm) -> list[DefinitionIssue]:
        """The FHIR resource map's problems (``fhir.map``), located in the form."""
        fields = {
            key: (kind, tuple(o.value for o in getattr(self.field(key), "options", ())))
            for key, kind in field_types(self).items()
        }
        return [
            DefinitionIssue(("fhir", *issue.loc), issue.kind, issue.message, issue.value)
            for issue in resource_map_issues(fhir, fields)
        ]

    @property
    def title(self) -> str:
        return label_text(self.label) or self.key

    def field(self, key: str) -> BaseField | None:
        """The top-level field (or section) with ``key``."""
        for field in self.fields:
            if field.key == key:
                return field
        return None

    def value_fields(self) -> Iterator[BaseField]:
        """The top-level fields that hold a value (sections left out), in order."""
        return (field for field in self.fields if not isinstance(field, SectionField))


def _key_issues(fields: Sequence[FieldSpec]) -> list[DefinitionIssue]:
    issues: list[DefinitionIssue] = []
    seen: set[str] = set()
    for index, field in enumerate(fields):
        if field.key in seen:
            issues.append(
                DefinitionIssue(
                    ("fields", index, "key"),
                    "duplicate_key",
                    f"field key {field.key!r} appears more than once",
                    field.key,
                )
            )
        elif field.key in RESERVED_KEYS:
            issues.append(
                DefinitionIssue(
                    ("fields", index, "key"),
                    "reserved_key",
                    f"{field.key!r} is reserved for a record column; choose another key",
                    field.key,
                )
            )
        seen.add(field.key)
    return issues


def _expressions(field: BaseField) -> Iterator[tuple[str, Any]]:
    if field.visible_if is not None and not isinstance(field.visible_if, bool):
        yield "visible_if", field.visible_if
    if isinstance(field, ComputedField):
        yield "formula", field.formula
    default_expr = getattr(field, "default_expr", None)
    if default_expr is not None:
        yield "default_expr", default_expr


def _pointer_loc(pointer: str) -> Loc:
    parts: list[str | int] = []
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        parts.append(int(part) if part.isdigit() else part)
    return tuple(parts)


def _expression_issues(
    fields: Iterable[BaseField | ColumnSpec], base: Loc
) -> list[DefinitionIssue]:
    issues: list[DefinitionIssue] = []
    for index, field in enumerate(fields):
        for attribute, rule in _expressions(field):
            loc: Loc = (*base, index, attribute)
            for pointer, message in check_expression(rule):
                issues.append(
                    DefinitionIssue(
                        (*loc, *_pointer_loc(pointer)), "invalid_expression", message, rule
                    )
                )
            if attribute == "visible_if" and field.key in _read_keys(rule):
                issues.append(
                    DefinitionIssue(
                        loc,
                        "self_reference",
                        f"visible_if of {field.key!r} reads the field itself",
                        rule,
                    )
                )
    return issues


def _read_keys(rule: Any) -> set[str]:
    """First segments of the ``var`` paths a rule reads (``items.0.qty`` -> ``items``)."""
    return {path.split(".", 1)[0] for path in variables(rule) if path and path != "*"}


def computed_order(fields: Sequence[BaseField | ColumnSpec]) -> list[ComputedField]:
    """Computed fields in an order where each comes after the computed fields it reads.

    Ties keep the form's order. Assumes no cycles (the spec rejects them). Iterative, so a
    long chain of computed fields cannot exhaust the interpreter's recursion limit.
    """
    computed = {field.key: field for field in fields if isinstance(field, ComputedField)}
    position = {key: index for index, key in enumerate(computed)}
    needs = {
        key: sorted(_read_keys(field.formula) & computed.keys(), key=position.__getitem__)
        for key, field in computed.items()
    }
    ordered: list[ComputedField] = []
    done: set[str] = set()
    for root in computed:
        if root in done:
            continue
        trail = {root}
        stack = [(root, iter(needs[root]))]
        while stack:  # depth first, each field after what it reads
            key, dependencies = stack[-1]
            for dependency in dependencies:
                if dependency not in done and dependency not in trail:
                    trail.add(dependency)
                    stack.append((dependency, iter(needs[dependency])))
                    break
            else:
                stack.pop()
                trail.discard(key)
                done.add(key)
                ordered.append(computed[key])
    return ordered


def _cycle_issues(fields: Sequence[BaseField | ColumnSpec], base: Loc) -> list[DefinitionIssue]:
    computed = {
        field.key: index for index, field in enumerate(fields) if isinstance(field, ComputedField)
    }
    needs: dict[str, list[str]] = {}
    for key, index in computed.items():
        field = fields[index]
        assert isinstance(field, ComputedField)
        reads = _read_keys(field.formula)
        needs[key] = sorted((name for name in reads if name in computed), key=computed.__getitem__)
    cycles = dependency_cycles(needs)
    issues: list[DefinitionIssue] = []
    for key, index in computed.items():
        if key in cycles:
            field = fields[index]
            assert isinstance(field, ComputedField)
            issues.append(
                DefinitionIssue(
                    (*base, index, "formula"),
                    "computed_cycle",
                    f"computed field {key!r} depends on itself ({' -> '.join(cycles[key])})",
                    field.formula,
                )
            )
    return issues


#: Most keys shown on each side of a cycle's route; longer routes are cut with "…".
ROUTE_LIMIT = 5
#: Components up to this size get the shortest route for each key (one search per key).
SMALL_COMPONENT = 50


def dependency_cycles(needs: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Each key that depends on itself (directly or through others) -> a route showing how.

    ``needs`` maps a key to the keys it reads. A route starts and ends with the key
    (``["a", "b", "a"]``): the shortest one in a small tangle; in a big one, a route through
    the component's first key, cut with "…" standing for the keys left out. Linear in the
    size of the graph for big tangles — strongly connected components (Tarjan), then one
    breadth-first search each way per component — so thousands of computed fields are
    checked in milliseconds.
    """
    routes: dict[str, list[str]] = {}
    for component in _components(needs):
        members = set(component)
        root = component[0]
        if len(component) == 1 and root not in needs.get(root, ()):
            continue
        if len(component) <= SMALL_COMPONENT:
            for key in component:
                routes[key] = _shortest_cycle(key, needs, members)
            continue
        # ahead[v]: the step from v towards root; behind[v]: the step before v from root.
        ahead = _breadth_first(root, _reverse(needs, members))
        behind = _breadth_first(root, {k: [v for v in needs[k] if v in members] for k in members})
        for key in component:
            if key == root:
                last = min(
                    (k for k in members if root in needs[k]), key=lambda k: _depth(k, behind)
                )
                if last == root:
                    routes[key] = [root, root]
                    continue
                back, cut = _walk(last, behind, root)
                routes[key] = [root, *(["…"] if cut else []), *reversed(back), root]
            else:
                forth, cut_forth = _walk(key, ahead, root)
                back, cut_back = _walk(key, behind, root)
                routes[key] = [
                    *forth,
                    *(["…"] if cut_forth else []),
                    root,
                    *(["…"] if cut_back else []),
                    *reversed(back),
                ]
    return routes


def _components(needs: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Strongly connected components of ``needs`` (Tarjan, iterative), each in key order."""
    order = {key: position for position, key in enumerate(needs)}
    edges = {key: [target for target in needs[key] if target in order] for key in needs}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in needs:
        if start in index:
            continue
        work: list[tuple[str, int]] = [(start, 0)]
        while work:
            key, next_edge = work.pop()
            if next_edge == 0:
                index[key] = low[key] = len(index)
                stack.append(key)
                on_stack.add(key)
            targets = edges[key]
            descended = False
            while next_edge < len(targets):
                target = targets[next_edge]
                next_edge += 1
                if target not in index:
                    work.extend([(key, next_edge), (target, 0)])
                    descended = True
                    break
                if target in on_stack:
                    low[key] = min(low[key], index[target])
            if descended:
                continue
            if low[key] == index[key]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == key:
                        break
                found.append(sorted(component, key=order.__getitem__))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[key])
    return found


def _reverse(needs: Mapping[str, Sequence[str]], members: set[str]) -> dict[str, list[str]]:
    reverse: dict[str, list[str]] = {key: [] for key in members}
    for key in members:
        for target in needs[key]:
            if target in members:
                reverse[target].append(key)
    return reverse


def _breadth_first(root: str, edges: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """For each key reachable from ``root``: the key it was reached from."""
    came_from: dict[str, str] = {root: root}
    queue = [root]
    for key in queue:
        for target in edges.get(key, ()):
            if target not in came_from:
                came_from[target] = key
                queue.append(target)
    return came_from


def _shortest_cycle(start: str, needs: Mapping[str, Sequence[str]], members: set[str]) -> list[str]:
    came_from: dict[str, str] = {}
    queue = [start]
    for key in queue:
        for target in needs[key]:
            if target == start:
                route = [start]
                while key != start:
                    route.append(key)
                    key = came_from[key]
                return [start, *reversed(route[1:]), start]
            if target in members and target not in came_from:
                came_from[target] = key
                queue.append(target)
    raise AssertionError(f"{start!r} is on no cycle")  # pragma: no cover


def _depth(key: str, came_from: Mapping[str, str]) -> int:
    depth = 0
    while came_from[key] != key and depth <= ROUTE_LIMIT:
        key = came_from[key]
        depth += 1
    return depth


def _walk(start: str, step: Mapping[str, str], stop: str) -> tuple[list[str], bool]:
    """``start``, ``step[start]``, ... up to (not including) ``stop``; cut after
    ``ROUTE_LIMIT`` keys (the flag says so)."""
    keys: list[str] = []
    key = start
    while key != stop:
        if len(keys) == ROUTE_LIMIT:
            return keys, True
        keys.append(key)
        key = step[key]
    return keys, False


def definition_errors(error: ValidationError) -> list[dict[str, str]]:
    """A pydantic error about a form (or app) definition as ``{pointer, code, message}`` dicts.

    ``pointer`` is a JSON pointer into the definition document: pydantic's ``loc`` without
    the union tags it inserts for discriminated fields (``fields/1/text/default`` becomes
    ``/fields/1/default``).
    """
    found: list[dict[str, str]] = []
    for item in error.errors():
        parts: list[str] = []
        loc = list(item["loc"])
        for position, part in enumerate(loc):
            tag_position = (
                position >= 2
                and loc[position - 2] == "fields"
                and isinstance(loc[position - 1], int)
            )
            if tag_position and isinstance(part, str) and part in FIELD_TYPES:
                continue  # the discriminator tag pydantic adds for tagged unions
            parts.append(str(part).replace("~", "~0").replace("/", "~1"))
        found.append(
            {
                "pointer": "/" + "/".join(parts) if parts else "",
                "code": item["type"],
                "message": item["msg"],
            }
        )
    return found


def required_left_out(form: FormSpec, given: Iterable[str], bound: str | None) -> list[str]:
    """Required fields that nobody fills in and that get no value otherwise: not among
    ``given``, not ``bound`` (set by whoever hands the form out), with no default, and not
    conditional (``visible_if``, or in a conditional section). A public link without them
    could never be submitted."""
    filled = set(given)
    missing = []
    conditional_section = False
    for field in form.fields:
        if isinstance(field, SectionField):
            conditional_section = field.visible_if is not None
            continue
        if (
            getattr(field, "required", False)
            and field.visible_if is None
            and not conditional_section
            and getattr(field, "default", None) is None
            and getattr(field, "default_expr", None) is None
            and field.key not in filled
            and field.key != bound
        ):
            missing.append(field.key)
    return missing


def unique_fields(form: FormSpec) -> list[str]:
    """Keys of the top-level fields whose value must be unique across the form's records."""
    return [
        field.key
        for field in form.fields
        if isinstance(field, IndexableField | ComputedField) and field.unique
    ]


def indexed_fields(form: FormSpec) -> list[str]:
    """Keys of the top-level fields to index (``indexed`` or ``unique``)."""
    return [
        field.key
        for field in form.fields
        if (isinstance(field, IndexableField | ComputedField) and (field.indexed or field.unique))
        or (isinstance(field, MultiselectField) and field.indexed)
    ]


#: The record columns a form's default sort may name besides its fields.
SORTABLE_COLUMNS = frozenset(
    {"id", "version", "created_at", "created_by", "updated_at", "updated_by"}
)

#: Field types (a computed field's result type) a list's quick search can look in.
SEARCHABLE_TYPES = frozenset({"text", "textarea", "email", "phone"})
#: Field types (a computed field's result type) a relation picker's second line can show.
SUMMARY_TYPES = frozenset(
    {"text", "email", "phone", "url", "select", "date", "datetime", "time", "number", "integer"}
)


def field_types(form: FormSpec) -> dict[str, str]:
    """Top-level field key -> type (a computed field gives its ``result_type``, a field stored
    as another type that type: a rating reads as an integer, ``fields.STORED_AS``).

    Sections carry no value and are left out. This is the mapping the SQL filter compiler
    (``formloom.engines.logic.sql.FilterTarget.fields``) expects.
    """
    types: dict[str, str] = {}
    for field in form.fields:
        if isinstance(field, SectionField):
            continue
        if isinstance(field, UserField) and field.multiple:
            types[field.key] = "multiselect"  # a list of user ids, read as a list of values
            continue
        kind = field.result_type if isinstance(field, ComputedField) else field.type
        types[field.key] = STORED_AS.get(kind, kind)
    return types
