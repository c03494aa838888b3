"""What changes between two versions of a form, and what each change means for its records.

Every field change gets a *class*:

* ``safe`` — existing records stay valid as they are: a new optional field, a relabel, a new
  option, widened validation, a removed field that no record has a value for;
* ``needs_migration`` — some existing records must change: a rename, a type change, a new
  required field, narrowed validation (a lower ``max``, a removed option, a new ``pattern``…);
* ``destructive`` — data would be dropped: a removed field or form that records have values
  for.

Each change also carries ``touches``: a JsonLogic filter, over the records *as stored under
the old definition*, that selects the records the change touches, and whether that filter
is ``exact`` or an upper bound (a new ``pattern`` or a shorter ``max_length`` cannot be
expressed as a filter, so every record with a value is counted). The platform counts with
SQL; this module never sees a record.

``recompute`` marks changes after which stored records must be re-prepared even when no
value moves (a new formula, a new visibility rule): the platform re-runs them through the
form engine when it applies the change, and refuses the change if a record would become
invalid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from formloom.engines.forms.fields import (
    BaseField,
    ComputedField,
    InputField,
    MultiselectField,
    RelationField,
    SectionField,
    SelectField,
    TableField,
)
from formloom.engines.forms.spec import FormSpec

ChangeClass = Literal["safe", "needs_migration", "destructive"]
ChangeKind = Literal["added", "removed", "changed", "renamed"]

#: Attributes that never affect stored values or their validity.
COSMETIC = frozenset(
    {"label", "help", "description", "indexed", "pattern_message", "placeholder", "width"}
)
#: Type changes under which every stored value stays a valid value.
WIDENING_TYPES = frozenset(
    {
        ("text", "textarea"),
        ("integer", "number"),
        ("select", "text"),
        ("select", "textarea"),
        ("email", "text"),
        ("phone", "text"),
        ("url", "text"),
        ("image", "file"),
        ("rating", "integer"),
        ("rating", "number"),
        ("signature", "image"),
        ("signature", "file"),
    }
)
_RANK = {"safe": 0, "needs_migration": 1, "destructive": 2}


@dataclass(frozen=True)
class FieldChange:
    field: str
    kind: ChangeKind
    change_class: ChangeClass
    reasons: tuple[str, ...]
    touches: Any = None
    exact: bool = True
    renamed_from: str | None = None
    recompute: bool = False
    fills_default: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "field": self.field,
            "change": self.kind,
            "class": self.change_class,
            "reasons": list(self.reasons),
        }
        if self.renamed_from is not None:
            out["renamed_from"] = self.renamed_from
        return out


@dataclass(frozen=True)
class FormDiff:
    form: str
    kind: Literal["added", "removed", "changed"]
    fields: tuple[FieldChange, ...] = ()
    cosmetic_only: bool = False

    @property
    def change_class(self) -> ChangeClass:
        if self.kind == "removed":
            return "destructive"
        worst: ChangeClass = "safe"
        for change in self.fields:
            if _RANK[change.change_class] > _RANK[worst]:
                worst = change.change_class
        return worst

    @property
    def rewrites_records(self) -> bool:
        """Whether applying this diff must re-prepare stored records."""
        return self.kind == "changed" and not self.cosmetic_only


@dataclass(frozen=True)
class EntryChanges:
    """Added, changed and removed keys of a list of keyed entries (rules, flows, ...)."""

    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, list[str]]:
        return {
            "added": list(self.added),
            "changed": list(self.changed),
            "removed": list(self.removed),
        }

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def _has_value(key: str) -> Any:
    return {"!": [{"missing": [key]}]}


def _with_value(key: str, condition: Any) -> Any:
    return {"and": [_has_value(key), condition]}


def _attrs(spec: BaseField) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_defaults=False)


def _semantic(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in attrs.items() if k not in COSMETIC and k != "key"}
    if "options" in out and out["options"] is not None:
        out["options"] = [option["value"] for option in out["options"]]
    if "fields" in out and out["fields"] is not None:
        out["fields"] = [
            {k: v for k, v in _semantic(column).items()} | {"key": column["key"]}
            for column in out["fields"]
        ]
    return out


def _lower_bound_raised(old: Any, new: Any) -> bool:
    return new is not None and (old is None or new > old)


def _upper_bound_lowered(old: Any, new: Any) -> bool:
    return new is not None and (old is None or new < old)


def _narrowing(old: BaseField, new: BaseField, key: str) -> tuple[list[str], list[Any], bool]:
    """Reasons a changed field narrows what is valid, filters of the records each narrowing
    touches, and whether those filters are exact."""
    reasons: list[str] = []
    filters: list[Any] = []
    exact = True
    o, n = _attrs(old), _attrs(new)
    var = {"var": key}
    for bound in ("min", "min_length", "min_items", "min_rows"):
        if bound in n and _lower_bound_raised(o.get(bound), n.get(bound)):
            reasons.append(f"{bound} {o.get(bound)} -> {n[bound]}")
            if bound == "min":
                filters.append(_with_value(key, {"<": [var, n[bound]]}))
            else:
                filters.append(_has_value(key))
                exact = False
    for bound in ("max", "max_length", "max_items", "max_rows", "max_size"):
        if bound in n and _upper_bound_lowered(o.get(bound), n.get(bound)):
            reasons.append(f"{bound} {o.get(bound)} -> {n[bound]}")
            if bound == "max":
                filters.append(_with_value(key, {">": [var, n[bound]]}))
            else:
                filters.append(_has_value(key))
                exact = False
    if n.get("pattern") and n.get("pattern") != o.get("pattern"):
        reasons.append("new pattern" if not o.get("pattern") else "pattern changed")
        filters.append(_has_value(key))
        exact = False
    if isinstance(old, SelectField | MultiselectField) and isinstance(
        new, SelectField | MultiselectField
    ):
        removed = sorted({opt.value for opt in old.options} - {opt.value for opt in new.options})
        if removed:
            reasons.append("option(s) removed: " + ", ".join(removed))
            if isinstance(old, SelectField):
                filters.append({"in": [var, removed]})
            else:
                filters.append({"or": [{"in": [value, var]} for value in removed]})
    if (
        isinstance(new, InputField)
        and new.required
        and not (isinstance(old, InputField) and old.required)
    ):
        reasons.append("now required")
        filters.append({"missing": [key]})
    if getattr(new, "unique", False) and not getattr(old, "unique", False):
        reasons.append("now unique")
        filters.append(_has_value(key))
        exact = False
    if (
        isinstance(old, RelationField)
        and isinstance(new, RelationField)
        and old.target != new.target
    ):
        reasons.append(f"relation target {old.target} -> {new.target}")
        filters.append(_has_value(key))
    if (
        isinstance(old, TableField)
        and isinstance(new, TableField)
        and _semantic(_attrs(old)).get("fields") != _semantic(_attrs(new)).get("fields")
    ):
        reasons.append("table columns changed")
        filters.append(_has_value(key))
        exact = False
    accept_old, accept_new = o.get("accept"), n.get("accept")
    if accept_new and accept_new != accept_old:
        reasons.append("accepted file types changed")
        filters.append(_has_value(key))
        exact = False
    if o.get("multiple") and not n.get("multiple"):
        reasons.append("no longer multiple")
        filters.append(_has_value(key))
    return reasons, filters, exact


def _any_of(filters: list[Any]) -> Any:
    if not filters:
        return None
    return filters[0] if len(filters) == 1 else {"or": filters}


def _changed_field(old: BaseField, new: BaseField, renamed_from: str | None) -> FieldChange | None:
    key = new.key
    old_key = renamed_from or key
    old_sem, new_sem = _semantic(_attrs(old)), _semantic(_attrs(new))
    # every field model has a `type` literal (BaseField itself declares none)
    old_type: str = _attrs(old)["type"]
    new_type: str = _attrs(new)["type"]
    reasons: list[str] = []
    if renamed_from is not None:
        reasons.append(f"renamed {renamed_from} -> {key}")
    if old_sem == new_sem:
        if renamed_from is None:
            cosmetic = [a for a in sorted(COSMETIC) if _attrs(old).get(a) != _attrs(new).get(a)]
            options_relabelled = isinstance(old, SelectField | MultiselectField) and (
                _attrs(old).get("options") != _attrs(new).get("options")
            )
            if options_relabelled:
                cosmetic.append("option labels")
            if not cosmetic:
                return None
            return FieldChange(key, "changed", "safe", tuple(f"{a} changed" for a in cosmetic))
        return FieldChange(
            key,
            "renamed",
            "needs_migration",
            tuple(reasons),
            touches=_has_value(old_key),
            renamed_from=renamed_from,
        )

    if old_type != new_type and (old_type, new_type) not in WIDENING_TYPES:
        reasons.append(f"type {old_type} -> {new_type}")
        return FieldChange(
            key,
            "renamed" if renamed_from else "changed",
            "needs_migration",
            tuple(reasons),
            touches=_has_value(old_key),
            renamed_from=renamed_from,
            recompute=True,
        )
    if old_type != new_type:
        reasons.append(f"type {old_type} -> {new_type} (every value stays valid)")

    narrow_reasons, filters, exact = _narrowing(old, new, old_key)
    reasons += narrow_reasons
    recompute = False
    if (
        isinstance(new, ComputedField)
        and isinstance(old, ComputedField)
        and (old.formula != new.formula or old.result_type != new.result_type)
    ):
        reasons.append("formula changed: stored values are recomputed")
        recompute = True
    if old.visible_if != new.visible_if:
        reasons.append("visibility rule changed: records are re-checked")
        recompute = True
    if isinstance(new, InputField) and isinstance(old, InputField):
        for attr in ("default", "default_expr", "read_only"):
            if getattr(old, attr) != getattr(new, attr):
                reasons.append(f"{attr} changed (new records only)")
    if not reasons:
        reasons.append("definition changed")
    if filters or renamed_from:
        touches = _any_of(filters + ([_has_value(old_key)] if renamed_from else []))
        return FieldChange(
            key,
            "renamed" if renamed_from else "changed",
            "needs_migration",
            tuple(reasons),
            touches=touches,
            exact=exact,
            renamed_from=renamed_from,
            recompute=True,
        )
    return FieldChange(
        key, "changed", "safe", tuple(reasons), recompute=recompute or (old_type != new_type)
    )


def _added_field(new: BaseField) -> FieldChange:
    if isinstance(new, SectionField):
        return FieldChange(new.key, "added", "safe", ("new section",))
    if isinstance(new, ComputedField):
        return FieldChange(
            new.key,
            "added",
            "safe",
            ("new computed field: computed for existing records",),
            recompute=True,
        )
    if isinstance(new, InputField) and new.required:
        if new.default is not None:
            return FieldChange(
                new.key,
                "added",
                "safe",
                (f"new required field; existing records get the default {new.default!r}",),
                recompute=True,
                fills_default=True,
            )
        reason = "new required field"
        if new.visible_if is not None:
            reason += " (only where visible; counted for every record)"
        return FieldChange(
            new.key,
            "added",
            "needs_migration",
            (reason,),
            touches=True,
            exact=new.visible_if is None,
            recompute=True,
        )
    return FieldChange(new.key, "added", "safe", ("new optional field",))


def _removed_field(old: BaseField) -> FieldChange:
    if not old.has_value:
        return FieldChange(old.key, "removed", "safe", ("section removed",))
    return FieldChange(
        old.key,
        "removed",
        "destructive",
        ("field removed: its values leave the records (kept in history)",),
        touches=_has_value(old.key),
        recompute=True,
    )


def diff_form(old: FormSpec, new: FormSpec, renames: Mapping[str, str] | None = None) -> FormDiff:
    """The changes from ``old`` to ``new``. ``renames`` maps old keys to new keys; a pair is
    used only when the old key is gone from ``new`` and the new key is not in ``old``."""
    old_fields = {f.key: f for f in old.fields}
    new_fields = {f.key: f for f in new.fields}
    pairs = {
        o: n
        for o, n in (renames or {}).items()
        if o in old_fields and o not in new_fields and n in new_fields and n not in old_fields
    }
    renamed_to = set(pairs.values())
    changes: list[FieldChange] = []
    for key, spec in new_fields.items():
        if key in renamed_to:
            old_key = next(o for o, n in pairs.items() if n == key)
            change = _changed_field(old_fields[old_key], spec, old_key)
        elif key in old_fields:
            change = _changed_field(old_fields[key], spec, None)
        else:
            change = _added_field(spec)
        if change is not None:
            changes.append(change)
    for key, spec in old_fields.items():
        if key not in new_fields and key not in pairs:
            changes.append(_removed_field(spec))
    form_level = [
        name
        for name in ("label", "description", "title_field", "sensitive")
        if getattr(old, name, None) != getattr(new, name, None)
    ]
    order_changed = [f.key for f in old.fields if f.key in new_fields] != [
        f.key for f in new.fields if f.key in old_fields
    ]
    cosmetic_only = all(c.change_class == "safe" and not c.recompute for c in changes)
    if not changes and not form_level and not order_changed:
        return FormDiff(new.key, "changed", (), cosmetic_only=True)
    if form_level or order_changed:
        reasons = tuple(f"{name} changed" for name in form_level) + (
            ("field order changed",) if order_changed else ()
        )
        changes.append(FieldChange("", "changed", "safe", reasons))
    return FormDiff(new.key, "changed", tuple(changes), cosmetic_only=cosmetic_only)


def is_unchanged(diff: FormDiff) -> bool:
    return diff.kind == "changed" and not diff.fields


def diff_entries(
    old: list[dict[str, Any]], new: list[dict[str, Any]], key: str = "key"
) -> EntryChanges:
    """Compare lists of keyed entries (rules, flows, reports, dashboards, roles...)."""

    def keyed(entries: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            str(entry.get(key, f"#{index}")): entry
            for index, entry in enumerate(entries)
            if isinstance(entry, dict)
        }

    before, after = keyed(old), keyed(new)
    return EntryChanges(
        added=tuple(k for k in after if k not in before),
        changed=tuple(k for k in after if k in before and before[k] != after[k]),
        removed=tuple(k for k in before if k not in after),
    )


def diff_forms(
    old: list[FormSpec],
    new: list[FormSpec],
    renames: Mapping[str, Mapping[str, str]] | None = None,
) -> tuple[FormDiff, ...]:
    """Form by form: added, removed, and changed (with their field changes)."""
    before = {f.key: f for f in old}
    after = {f.key: f for f in new}
    out: list[FormDiff] = []
    for key, spec in after.items():
        if key not in before:
            out.append(FormDiff(key, "added"))
        else:
            diff = diff_form(before[key], spec, (renames or {}).get(key))
            if not is_unchanged(diff):
                out.append(diff)
    for key in before:
        if key not in after:
            out.append(FormDiff(key, "removed"))
    return tuple(out)
