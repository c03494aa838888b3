"""How each stored record of a form follows a change to its definition.

A :class:`RecordMigration` is the one description of what happens to a record's data, derived
once from the form's diff and its ``migrations`` entry (:func:`record_migration`):

1. ``renames`` — values move from the old key to the new key;
2. ``sets`` — each ``set`` expression (for a field whose change needs migration) is evaluated
   over the record as it was, renamed keys readable under both names; ``null`` removes the
   value;
3. ``defaults`` — a new required field with a literal default gets it where it is empty;
4. ``keep`` — only the keys of the new definition's value fields are kept.

Two interpreters carry it out and must agree: :meth:`RecordMigration.apply` (then the form
engine prepares the record, :func:`migrate_record`) — the reference, which the platform runs
in batches — and, on PostgreSQL, one set-based statement compiled from the same description
(``platform/apps/repository.py``, through :mod:`formloom.engines.logic.sql_values`).
:func:`set_based` decides whether the statement is known to give the reference's result: it
returns a :class:`SetBased` (what the statement does) or the reason it is not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from formloom.engines.forms.diff import FieldChange, FormDiff
from formloom.engines.forms.fields import (
    BaseField,
    BooleanField,
    ComputedField,
    IntegerField,
    NumberField,
    SectionField,
    SelectField,
    TableField,
    TextareaField,
    TextField,
)
from formloom.engines.forms.plan import CountedChange, FormMigration
from formloom.engines.forms.record import prepare
from formloom.engines.forms.spec import FormSpec
from formloom.engines.logic import evaluate, variables
from formloom.engines.logic.sql import FIELD_TYPES
from formloom.engines.logic.sql_values import ValueKind

#: The value kind (see ``engines.logic.sql_values``) each field type needs whose validation
#: SQL can check: required, type, length, options, min/max, whole number.
VALUE_KIND_OF_FIELD: Mapping[type[BaseField], ValueKind] = {
    TextField: "text",
    TextareaField: "text",
    SelectField: "text",
    NumberField: "number",
    IntegerField: "number",
    BooleanField: "boolean",
}


@dataclass(frozen=True)
class RecordMigration:
    """What happens to every record of a form: see the module's docstring for the order."""

    renames: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, Any] = field(default_factory=dict)
    keep: frozenset[str] = frozenset()

    def apply(self, data: Mapping[str, Any], *, now: datetime) -> dict[str, Any]:
        """The record's data after the migration, before the form engine prepares it.
        Raises :class:`~formloom.engines.logic.LogicError` if a ``set`` expression fails."""
        moved = dict(data)
        for old_key, new_key in self.renames.items():
            if old_key in moved:
                moved[new_key] = moved.pop(old_key)
        context = {**data, **moved}
        for key, expression in self.sets.items():
            value = evaluate(expression, context, now=now)
            if value is None:
                moved.pop(key, None)
            else:
                moved[key] = value
        for key, default in self.defaults.items():
            if moved.get(key) in (None, "", []):
                moved[key] = default
        return {key: value for key, value in moved.items() if key in self.keep}


def record_migration(
    diff: FormDiff, new_form: FormSpec, migration: FormMigration | None
) -> RecordMigration:
    """The migration of a changed form's records: every rename of the diff, the ``set``
    expressions of fields whose change needs migration, the defaults of new required fields."""
    renames = {c.renamed_from: c.field for c in diff.fields if c.renamed_from is not None}
    needs = {c.field for c in diff.fields if c.change_class == "needs_migration"}
    sets = {k: v for k, v in (migration.set if migration else {}).items() if k in needs}
    defaults = {}
    for change in diff.fields:
        if change.fills_default:
            spec = next(f for f in new_form.fields if f.key == change.field)
            defaults[change.field] = getattr(spec, "default", None)
    keep = frozenset(f.key for f in new_form.value_fields())
    return RecordMigration(renames, sets, defaults, keep)


def migrate_record(
    form: FormSpec, migration: RecordMigration, data: Mapping[str, Any], *, now: datetime
) -> dict[str, Any]:
    """A stored record's clean data under the new definition ``form``. Raises
    :class:`~formloom.engines.forms.RecordInvalid` if the record would be invalid, and
    :class:`~formloom.engines.logic.LogicError` if a ``set`` expression fails."""
    moved = migration.apply(data, now=now)
    return prepare(form, {}, existing=moved, now=now, allow_read_only=True)


# -- the set-based decision -----------------------------------------------------------------


@dataclass(frozen=True)
class SetBased:
    """A migration one SQL statement carries out with the reference's result: values moved
    by ``migration.renames`` and computed by ``migration.sets``, each set value checked in
    SQL against ``targets`` (its field's new definition). No sets: values only move."""

    migration: RecordMigration
    targets: Mapping[str, BaseField] = field(default_factory=dict)

    @property
    def renames(self) -> Mapping[str, str]:
        return self.migration.renames

    @property
    def sets(self) -> Mapping[str, Any]:
        return self.migration.sets

    @property
    def unique(self) -> bool:
        """Whether a set field is unique (its claims must be rebuilt from the new values)."""
        return any(getattr(target, "unique", False) for target in self.targets.values())

    def kind(self, key: str) -> ValueKind:
        """The value kind the set field ``key`` needs."""
        return VALUE_KIND_OF_FIELD[type(self.targets[key])]


def _pure_rename(change: FieldChange) -> bool:
    """A rename whose definition is otherwise identical: values move unchanged."""
    return change.renamed_from is not None and change.reasons == (
        f"renamed {change.renamed_from} -> {change.field}",
    )


def _untouched(item: CountedChange) -> bool:
    """A change that touches no stored value: cosmetic, a new optional field, a removed
    field no record has."""
    change = item.change
    if change.change_class == "safe" and not (change.recompute or change.fills_default):
        return True
    return change.kind == "removed" and item.records == 0


def _rules_of(form: FormSpec) -> list[Any]:
    """Every formula and visibility rule of a form, table columns included."""
    rules: list[Any] = []
    for item in form.fields:
        columns: list[Any] = [item]
        if isinstance(item, TableField):
            columns += list(item.fields)
        for column in columns:
            if column.visible_if is not None:
                rules.append(column.visible_if)
            if isinstance(column, ComputedField):
                rules.append(column.formula)
    return rules


def _reads_clock(rule: Any) -> bool:
    """Whether a rule uses ``now``/``today``: its value changes whenever it is re-run."""
    if isinstance(rule, list):
        return any(_reads_clock(item) for item in rule)
    if isinstance(rule, dict):
        return any(op in ("now", "today") or _reads_clock(args) for op, args in rule.items())
    return False


def form_reads_clock(form: FormSpec) -> bool:
    """The batches re-run every formula and visibility rule of every record: one that reads
    the clock can give a new answer for any record, so only the batches do it right."""
    return any(_reads_clock(rule) for rule in _rules_of(form))


def set_based(
    migration: RecordMigration,
    counted: Sequence[CountedChange],
    old_form: FormSpec,
    new_form: FormSpec,
) -> SetBased | str:
    """The set-based form of a migration, or why only the batches give its result.

    Every change must either be computed by a ``set`` into a field whose new definition SQL
    can check, move values unchanged (a pure rename), or touch no stored value; no formula or
    visibility rule may read the clock or a field that is set (the batches re-run them all,
    so their results could change), and a set field must always be visible (what a hidden
    field keeps is the form engine's call, so those go to the batches). The expressions are
    compiled when the statement is built; one outside the SQL subset also sends the form to
    the batches.
    """
    sets = migration.sets
    for item in counted:
        if item.change.field in sets or _pure_rename(item.change) or _untouched(item):
            continue
        return f"{item.change.field}: {'; '.join(item.change.reasons)}"
    if migration.defaults:
        return "new required fields get their defaults"
    if not sets:
        if not migration.renames:
            return "no `set` expression or rename applies"
        if form_reads_clock(new_form):
            return "a formula or visibility rule reads the clock"
        return SetBased(migration)
    targets: dict[str, BaseField] = {}
    hidden_section = False
    for spec in new_form.fields:
        if isinstance(spec, SectionField):
            hidden_section = hidden_section or spec.visible_if is not None
        if spec.key not in sets:
            continue
        if type(spec) not in VALUE_KIND_OF_FIELD or getattr(spec, "pattern", None) is not None:
            return f"{spec.key}: a {spec.field_type} field is validated by the form engine"
        if spec.visible_if is not None or hidden_section:
            return f"{spec.key}: the field can be hidden"
        targets[spec.key] = spec
    if form_reads_clock(new_form):
        return "a formula or visibility rule reads the clock"
    if sets.keys() - targets.keys():
        return "a `set` names a field the form does not have"
    for rule in _rules_of(new_form):
        read = {path.split(".")[0] for path in variables(rule)}
        if "*" in read or read & sets.keys():
            return "a formula or visibility rule reads a field that is set"
    for key, target in targets.items():
        before = old_form.field(key)
        if before is not None and before.has_value:
            kinds = {FIELD_TYPES.get(before.field_type), VALUE_KIND_OF_FIELD[type(target)]}
            if kinds == {"number", "boolean"}:  # Python's True == 1 would hide the change
                return f"{key}: a change between boolean and number"
    return SetBased(migration, targets)
