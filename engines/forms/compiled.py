"""What validation needs from a form, derived once per form version and cached.

Building a ``jsonschema`` validator, ordering computed fields by dependency and finding which
fields a section hides all take far longer than validating one record, so they are done once
per :class:`~formloom.engines.forms.spec.FormSpec` and kept in a :class:`CompiledForm`.

The cache has two levels: by object identity (the spec is frozen, so an object never
changes; the entry is dropped when the spec is garbage collected) and, for a spec parsed
again from the same JSON, by content (a bounded LRU keyed by the spec's canonical JSON).
A platform that keeps one ``FormSpec`` per form version hits the first level every time.

Bounded work
    Validation must cost time linear in the size of the data, with small constants, whatever
    a client sends. Two things here keep it so: every list a field can hold has a largest
    valid length (:class:`ListLimit`: a table's ``max_rows``, else :data:`DEFAULT_MAX_ROWS`;
    a multiselect's ``max_items`` or its number of options), which the record engine checks
    before looking at the items; and the ``jsonschema`` validators check ``uniqueItems`` with
    a hash set (:func:`_unique_items`) instead of jsonschema's own check, which falls back to
    comparing every pair of items (5,000 objects: 36 s) when the items cannot be sorted.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jsonschema import (  # type: ignore[import-untyped,unused-ignore]
    Draft202012Validator,
    ValidationError,
    validators,
)

from formloom.engines.forms.fastcheck import Check, UnsupportedSchema, compile_check
from formloom.engines.forms.fields import (
    BaseField,
    ColumnSpec,
    ComputedField,
    DateField,
    DatetimeField,
    InputField,
    MultiselectField,
    Problem,
    RichTextField,
    SectionField,
    TableField,
    TimeField,
)
from formloom.engines.forms.schema import compile_schema
from formloom.engines.forms.spec import FormSpec, computed_order
from formloom.engines.logic import variables

_CONTENT_CACHE_SIZE = 256

#: Most rows a table field accepts when its definition sets no ``max_rows`` (docs/forms.md).
DEFAULT_MAX_ROWS = 1000


Normaliser = Callable[[Any, list[Problem]], Any]


@dataclass(frozen=True, slots=True)
class ListLimit:
    """The longest list a field's value can validly be, and how to say it is too long."""

    most: int
    code: str
    #: The message up to the count sent, e.g. "Items allows at most 1000 rows".
    message: str

    def problem(self, sent: int) -> Problem:
        return Problem(self.code, f"{self.message} ({sent} were sent)")


def _list_limit(field: BaseField) -> ListLimit | None:
    if isinstance(field, TableField):
        most = field.max_rows if field.max_rows is not None else DEFAULT_MAX_ROWS
        return ListLimit(most, "max_rows", f"{field.title} allows at most {most} rows")
    if isinstance(field, MultiselectField):
        # Choices are unique options: a longer list cannot be valid, whatever it holds.
        choices = len(field.options)
        if field.max_items is not None and field.max_items <= choices:
            most = field.max_items
            return ListLimit(most, "max_items", f"{field.title} allows at most {most} choices")
        return ListLimit(
            choices, "max_items", f"{field.title} has {choices} options, each allowed once"
        )
    return None


def _json_key(value: Any) -> Any:
    """A hashable key equal for two JSON values exactly when jsonschema calls them equal
    (``1 == 1.0``; ``true`` is not ``1``; objects and arrays compared by content)."""
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int | float):
        return ("n", value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list | tuple):
        return ("l", tuple(_json_key(item) for item in value))
    if isinstance(value, dict):
        return ("d", frozenset((key, _json_key(item)) for key, item in value.items()))
    if value is None:
        return ("z",)
    return ("o", id(value))


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Any:
    """``uniqueItems`` in one pass over a hash set (jsonschema's is quadratic for items it
    cannot sort: objects, or numbers mixed with text)."""
    if not unique or not validator.is_type(instance, "array"):
        return
    seen: set[Any] = set()
    for item in instance:
        key = _json_key(item)
        if key in seen:
            # Short: jsonschema's message repeats the whole list; describe() says what is wrong.
            yield ValidationError("has non-unique elements")
            return
        seen.add(key)


#: Draft 2020-12 with a linear ``uniqueItems``; everything else is jsonschema's.
Validator: Any = validators.extend(Draft202012Validator, {"uniqueItems": _unique_items})


@dataclass(frozen=True, slots=True)
class Scope:
    """The fields of one level of data: the record's top level, or one table's rows.

    Most members are precomputed lookups so that validating a record does no ``isinstance``
    checks against the field models.
    """

    #: Fields that hold a value, by key (computed fields included, sections not).
    by_key: dict[str, BaseField]
    #: Position of each value field in the form, for ordering errors.
    position: dict[str, int]
    #: ``(key, visible_if, is_section)`` for every field in display order.
    rules: tuple[tuple[str, Any, bool], ...]
    #: Whether any field or section has a ``visible_if`` that can hide it.
    conditional: bool
    #: Computed fields, each after the computed fields it reads.
    computed: tuple[ComputedField, ...]
    computed_keys: frozenset[str]
    #: Input fields with a ``default`` or ``default_expr``.
    defaults: tuple[InputField, ...]
    #: Input fields that must have a value while visible.
    required: tuple[InputField, ...]
    #: Input fields clients may not change.
    read_only: tuple[InputField, ...]
    #: ``normalise`` of the fields whose values need more than "empty means absent".
    normalisers: dict[str, Normaliser]
    #: Fields whose values JSON Schema cannot fully check (temporal min/max).
    constrained: tuple[BaseField, ...]
    #: Keys any ``visible_if`` or formula reads (``"*"`` when some path is dynamic).
    rule_reads: frozenset[str]
    #: Keys of table fields (top level only).
    table_keys: frozenset[str]
    #: The longest valid list of each field that holds a list of bounded length.
    list_limits: dict[str, ListLimit]


@dataclass(frozen=True, slots=True)
class CompiledForm:
    """A form ready for validation: schema, validator, scopes."""

    title: str
    schema: dict[str, Any]
    #: The jsonschema validator of the whole ``data`` object.
    validator: Any  # jsonschema.Draft202012Validator (jsonschema ships no type hints)
    #: Per top-level field: a fast yes/no check (``None``: not available) and the
    #: jsonschema validator of the field's value, which runs only when the check says no.
    field_checks: dict[str, tuple[Check | None, Any]]
    scope: Scope
    #: One scope per table field, by the table's key.
    tables: dict[str, Scope]


def _reads(rule: Any) -> set[str]:
    found: set[str] = set()
    for path in variables(rule):
        found.add("*" if path in ("", "*") else path.split(".", 1)[0])
    return found


def _hides(field: BaseField) -> bool:
    return field.visible_if is not None and field.visible_if is not True


def _needs_normalising(field: BaseField) -> bool:
    kind = type(field)
    return (
        kind.normalise is not BaseField.normalise
        or kind.normalise_value is not BaseField.normalise_value
    )


def build_scope(items: Sequence[BaseField | ColumnSpec]) -> Scope:
    values = [field for field in items if not isinstance(field, SectionField)]
    inputs = [field for field in values if isinstance(field, InputField)]
    reads: set[str] = set()
    for field in items:
        if field.visible_if is not None and not isinstance(field.visible_if, bool):
            reads |= _reads(field.visible_if)
        if isinstance(field, ComputedField):
            reads |= _reads(field.formula)
    computed = computed_order(values)
    return Scope(
        by_key={field.key: field for field in values},
        position={field.key: index for index, field in enumerate(values)},
        rules=tuple(
            (field.key, field.visible_if, isinstance(field, SectionField)) for field in items
        ),
        conditional=any(_hides(field) for field in items),
        computed=tuple(computed),
        computed_keys=frozenset(field.key for field in computed),
        defaults=tuple(
            field for field in inputs if field.default is not None or field.default_expr is not None
        ),
        required=tuple(field for field in inputs if field.required),
        read_only=tuple(field for field in inputs if field.read_only),
        normalisers={
            field.key: field.normalise
            for field in inputs
            if _needs_normalising(field) and not isinstance(field, TableField)
        },
        constrained=tuple(
            field
            for field in values
            if (
                isinstance(field, DateField | DatetimeField | TimeField)
                and (field.min is not None or field.max is not None)
            )
            or isinstance(field, RichTextField)  # max_length counts the text, not the tags
        ),
        rule_reads=frozenset(reads),
        table_keys=frozenset(field.key for field in values if isinstance(field, TableField)),
        list_limits={
            field.key: limit for field in values if (limit := _list_limit(field)) is not None
        },
    )


def compile_form(form: FormSpec) -> CompiledForm:
    """Derive everything validation needs from ``form`` (uncached; see :func:`compiled`)."""
    schema = compile_schema(form)
    Draft202012Validator.check_schema(schema)
    field_checks: dict[str, tuple[Check | None, Any]] = {}
    for key, property_schema in schema["properties"].items():
        try:
            quick_check: Check | None = compile_check(property_schema)
        except UnsupportedSchema:
            quick_check = None
        field_checks[key] = (quick_check, Validator(property_schema))
    return CompiledForm(
        title=form.title,
        schema=schema,
        # No FormatChecker: every format is also a pattern in the schema and calendar
        # validity is checked while normalising, which is several times faster.
        validator=Validator(schema),
        field_checks=field_checks,
        scope=build_scope(form.fields),
        tables={
            field.key: build_scope(field.fields)
            for field in form.fields
            if isinstance(field, TableField)
        },
    )


_by_id: dict[int, CompiledForm] = {}
_by_content: OrderedDict[str, CompiledForm] = OrderedDict()
_lock = threading.Lock()


def compiled(form: FormSpec) -> CompiledForm:
    """The cached :class:`CompiledForm` of ``form``."""
    found = _by_id.get(id(form))
    if found is not None:
        return found
    content = form.model_dump_json()
    with _lock:
        found = _by_content.get(content)
        if found is not None:
            _by_content.move_to_end(content)
    if found is None:
        found = compile_form(form)
        with _lock:
            _by_content[content] = found
            while len(_by_content) > _CONTENT_CACHE_SIZE:
                _by_content.popitem(last=False)
    with _lock:
        _by_id[id(form)] = found
    weakref.finalize(form, _by_id.pop, id(form), None)
    return found
