"""The plan of a change to an app: every change classified, counted and either allowed or
blocked, before anything is applied.

:mod:`~formloom.engines.forms.diff` says what changes and which records each change touches
(as a filter); the platform counts those records with SQL and hands the counts in here. This
module turns diff and counts into a :class:`Plan`:

* a change that touches no record is ``safe``, whatever its kind;
* a ``destructive`` change (a removed field or form that records have values for) is blocked
  unless the caller allows destructive changes;
* a change that ``needs_migration`` and touches records is blocked unless a ``migrations``
  entry covers it (a rename, or a ``set`` expression for the field) — or its count is only
  an upper bound, in which case applying it checks every record.

The plan is pure data (``Plan.to_dict()`` is the API's and the CLI's JSON); it never sees a
record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from formloom.engines.forms.diff import EntryChanges, FieldChange, FormDiff

#: The keyed lists of an app definition whose entries a plan reports as added, changed or
#: removed (by key).
ENTRY_LISTS = ("roles", "rules", "flows", "reports", "dashboards", "permissions")
_RANK = {"safe": 0, "needs_migration": 1, "destructive": 2}


class MigrationEntry(Protocol):
    """One ``migrations`` entry of an app definition (``MigrationSpec``)."""

    @property
    def form(self) -> str: ...
    @property
    def rename(self) -> Mapping[str, str]: ...
    @property
    def set(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class FormMigration:
    """The ``migrations`` entries of one form, merged: ``rename`` (old key -> new key) and
    ``set`` (field -> JsonLogic computing its new value from the record as it was)."""

    form: str
    rename: Mapping[str, str] = field(default_factory=dict)
    set: Mapping[str, Any] = field(default_factory=dict)


def migrations_by_form(entries: Iterable[MigrationEntry]) -> dict[str, FormMigration]:
    """The entries merged per form; a later entry's keys win."""
    merged: dict[str, FormMigration] = {}
    for entry in entries:
        previous = merged.get(entry.form)
        if previous is None:
            merged[entry.form] = FormMigration(entry.form, dict(entry.rename), dict(entry.set))
        else:
            merged[entry.form] = FormMigration(
                entry.form,
                {**previous.rename, **entry.rename},
                {**previous.set, **entry.set},
            )
    return merged


@dataclass
class CountedChange:
    change: FieldChange
    records: int | None  # None: not counted (a plan between two files, no database)
    covered_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out = self.change.to_dict()
        out["records"] = self.records
        if not self.change.exact and self.records:
            out["records_note"] = "at most; every record is checked when the change is applied"
        if self.covered_by:
            out["covered_by"] = self.covered_by
        out["class"] = self.effective_class
        return out

    @property
    def effective_class(self) -> str:
        # A change that touches no record is safe, whatever its kind.
        if self.change.change_class != "safe" and self.records == 0:
            return "safe"
        return self.change.change_class


@dataclass
class FormPlan:
    diff: FormDiff
    records: int | None
    changes: list[CountedChange] = field(default_factory=list)

    @property
    def change_class(self) -> str:
        if self.diff.kind == "removed":
            return "destructive" if self.records else "safe"
        worst = "safe"
        for change in self.changes:
            if _RANK[change.effective_class] > _RANK[worst]:
                worst = change.effective_class
        return worst

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "form": self.diff.form,
            "change": self.diff.kind,
            "class": self.change_class,
            "records": self.records,
        }
        if self.changes:
            out["fields"] = [c.to_dict() for c in self.changes]
        return out


@dataclass
class Plan:
    app: str
    status: Literal["create", "update", "unchanged"]
    revision: int | None
    forms: list[FormPlan] = field(default_factory=list)
    entries: dict[str, EntryChanges] = field(default_factory=dict)
    blocked: list[dict[str, Any]] = field(default_factory=list)
    migrations: dict[str, FormMigration] = field(default_factory=dict)
    #: Running flow instances per changed or removed flow: they stay on the version they
    #: started on (docs/flows.md, "Versions").
    running_flows: dict[str, int] = field(default_factory=dict)
    #: What the change does to the forms' typed projections (the platform's storage), one
    #: entry per form whose projected columns change: its columns added, removed or
    #: retyped, the records to copy, and whether that happens in batches after the change.
    projections: list[dict[str, Any]] = field(default_factory=list)

    @property
    def can_apply(self) -> bool:
        return not self.blocked

    def to_dict(self) -> dict[str, Any]:
        counts = {"safe": 0, "needs_migration": 0, "destructive": 0}
        for form in self.forms:
            if form.diff.kind == "changed":
                for change in form.changes:
                    counts[change.effective_class] += 1
            else:
                counts[form.change_class] += 1
        return {
            "app": self.app,
            "status": self.status,
            "revision": self.revision,
            "summary": counts,
            "forms": [f.to_dict() for f in self.forms],
            **{name: changes.to_dict() for name, changes in self.entries.items()},
            **({"running_flows": dict(self.running_flows)} if self.running_flows else {}),
            **({"projections": list(self.projections)} if self.projections else {}),
            "can_apply": self.can_apply,
            "blocked": self.blocked,
        }


def covered_by(change: FieldChange, migration: FormMigration | None) -> str | None:
    """What carries a change out on the records: a rename, a ``set``, or nothing."""
    if change.renamed_from is not None:
        return "rename"
    if migration is not None and change.field in migration.set:
        return "set"
    return None


def form_plan(
    diff: FormDiff,
    records: int | None,
    touched: Sequence[int | None],
    migration: FormMigration | None,
) -> FormPlan:
    """A changed or removed form's plan: each field change with the records it touches
    (``touched``, in the order of ``diff.fields``; ``None`` when not counted)."""
    plan = FormPlan(diff, records)
    for change, count in zip(diff.fields, touched, strict=True):
        plan.changes.append(CountedChange(change, count, covered_by(change, migration)))
    return plan


def block(plan: Plan, allow_destructive: bool) -> None:
    """Add to ``plan.blocked`` every change that may not be applied as it stands, each with
    a message saying what to add."""
    for form in plan.forms:
        if form.diff.kind == "removed" and form.records and not allow_destructive:
            plan.blocked.append(
                {
                    "form": form.diff.form,
                    "class": "destructive",
                    "message": f"Removing form '{form.diff.form}' drops {form.records} record(s); "
                    "pass allow_destructive to confirm.",
                }
            )
        for counted in form.changes:
            change = counted.change
            label = f"{form.diff.form}.{change.field}"
            if counted.effective_class == "destructive" and not allow_destructive:
                plan.blocked.append(
                    {
                        "form": form.diff.form,
                        "field": change.field,
                        "class": "destructive",
                        "message": f"{label}: {'; '.join(change.reasons)} — {counted.records} "
                        "record(s) have a value; pass allow_destructive to confirm.",
                    }
                )
            elif (
                counted.effective_class == "needs_migration"
                and change.exact
                and counted.covered_by is None
            ):
                plan.blocked.append(
                    {
                        "form": form.diff.form,
                        "field": change.field,
                        "class": "needs_migration",
                        "message": f"{label}: {'; '.join(change.reasons)} — touches "
                        f"{counted.records} record(s). Add a `migrations` entry for form "
                        f"'{form.diff.form}' with `set` (a JsonLogic expression computing the new "
                        "value from the old record) or `rename`.",
                    }
                )
