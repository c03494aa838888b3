"""The plan of a change and the migration of each record: pure, no database.

The platform's differential tests (tests/platform/apps/test_set_based_changes.py) check that
the set-based statement compiled from a ``RecordMigration`` gives what ``apply`` gives; these
check the description itself, the blocking policy and the set-based decision.
"""

from __future__ import annotations

from typing import Any

import pytest

from formloom.engines.forms import FormSpec, RecordInvalid
from formloom.engines.forms.diff import FormDiff, diff_form
from formloom.engines.forms.migrate import (
    RecordMigration,
    SetBased,
    migrate_record,
    record_migration,
    set_based,
)
from formloom.engines.forms.plan import (
    FormMigration,
    Plan,
    block,
    form_plan,
    migrations_by_form,
)
from formloom.engines.logic import LogicError

from .factory import NOW, field, make_form, options

OLD = make_form(
    field("name", required=True),
    field("mobile", "phone"),
    field("age", "integer", max=150),
    field("level", "select", options=options("gold", "silver")),
    field("note"),
)


def change(
    new: FormSpec,
    migration: FormMigration | None = None,
    counts: list[int] | None = None,
) -> tuple[FormDiff, Any]:
    diff = diff_form(OLD, new, migration.rename if migration else None)
    touched = counts if counts is not None else [1] * len(diff.fields)
    return diff, form_plan(diff, 10, touched, migration)


def test_apply_renames_then_sets_over_the_old_record_then_defaults_then_keeps() -> None:
    migration = RecordMigration(
        renames={"mobile": "phone"},
        sets={"label": {"cat": [{"var": "mobile"}, "/", {"var": "phone"}]}, "note": None},
        defaults={"status": "new"},
        keep=frozenset({"name", "phone", "label", "note", "status"}),
    )
    data = {"name": "Ann", "mobile": "1", "note": "x", "gone": 1}
    assert migration.apply(data, now=NOW) == {
        "name": "Ann",
        "phone": "1",
        "label": "1/1",
        "status": "new",
    }
    assert data == {"name": "Ann", "mobile": "1", "note": "x", "gone": 1}  # not modified


def test_record_migration_takes_sets_only_for_fields_that_need_migration() -> None:
    new = make_form(
        field("name", required=True),
        field("phone", "phone"),
        field("age", "integer", max=120),
        field("level", "select", options=options("gold", "silver")),
        field("note", label="Note!"),
        field("status", required=True, default="new"),
    )
    migration = FormMigration(
        "test",
        rename={"mobile": "phone"},
        set={"age": {"min": [{"var": "age"}, 120]}, "note": {"cat": ["x"]}},
    )
    diff, _ = change(new, migration)
    rules = record_migration(diff, new, migration)
    assert rules.renames == {"mobile": "phone"}
    assert rules.sets == {"age": {"min": [{"var": "age"}, 120]}}  # the relabel needs none
    assert rules.defaults == {"status": "new"}
    assert rules.keep == {"name", "phone", "age", "level", "note", "status"}
    clean = migrate_record(new, rules, {"name": "A", "mobile": "+1 555 0101", "age": 140}, now=NOW)
    assert clean == {"name": "A", "phone": "+1 555 0101", "age": 120, "status": "new"}


def test_migrate_record_raises_what_the_batches_report() -> None:
    new = make_form(field("name", required=True), field("age", "integer", max=120))
    rules = RecordMigration(
        sets={"age": {"+": [{"var": "age"}, 1]}}, keep=frozenset({"name", "age"})
    )
    with pytest.raises(RecordInvalid):
        migrate_record(new, rules, {"name": "A", "age": 120}, now=NOW)
    failing = RecordMigration(sets={"age": {"/": [1, 0]}}, keep=frozenset({"name", "age"}))
    with pytest.raises(LogicError):
        migrate_record(new, failing, {"name": "A"}, now=NOW)


def test_blocking_needs_a_migration_or_allow_destructive() -> None:
    new = make_form(
        field("name", required=True),
        field("age", "integer", max=120),
        field("level", "select", options=options("gold", "silver")),
        field("note"),
    )
    diff, planned = change(new)
    plan = Plan("app", "update", 1, forms=[planned])
    block(plan, allow_destructive=False)
    assert sorted((b["field"], b["class"]) for b in plan.blocked) == [
        ("age", "needs_migration"),
        ("mobile", "destructive"),
    ]
    covered = FormMigration("test", set={"age": {"min": [{"var": "age"}, 120]}})
    _, planned = change(new, covered)
    plan = Plan("app", "update", 1, forms=[planned])
    block(plan, allow_destructive=True)
    assert plan.can_apply
    assert plan.to_dict()["summary"] == {"safe": 0, "needs_migration": 1, "destructive": 1}
    # a change that touches no record is safe whatever its kind
    _, untouched = change(new, None, [0] * len(diff.fields))
    assert untouched.change_class == "safe"


def test_migrations_of_a_form_merge_later_keys_winning() -> None:
    merged = migrations_by_form(
        [
            FormMigration("a", rename={"x": "y"}, set={"k": 1}),
            FormMigration("a", set={"k": 2, "j": 3}),
            FormMigration("b", rename={"p": "q"}),
        ]
    )
    assert merged["a"] == FormMigration("a", {"x": "y"}, {"k": 2, "j": 3})
    assert merged["b"].rename == {"p": "q"}


def decide(
    new: FormSpec, migration: FormMigration, old: FormSpec = OLD, counts: list[int] | None = None
) -> Any:
    diff = diff_form(old, new, migration.rename)
    planned = form_plan(diff, 10, counts or [1] * len(diff.fields), migration)
    return set_based(record_migration(diff, new, migration), planned.changes, old, new)


def with_fields(*extra: dict[str, Any], phone: str = "phone") -> FormSpec:
    return make_form(
        field("name", required=True),
        field(phone, "phone"),
        field("age", "integer", max=150),
        field("level", "select", options=options("gold", "silver")),
        field("note"),
        *extra,
    )


def test_renames_alone_are_set_based() -> None:
    chosen = decide(with_fields(), FormMigration("test", rename={"mobile": "phone"}))
    assert isinstance(chosen, SetBased) and not chosen.sets
    assert chosen.renames == {"mobile": "phone"} and not chosen.unique


def test_a_set_on_a_renamed_field_is_part_of_the_set_based_statement() -> None:
    new = make_form(
        field("name", required=True),
        field("mobile", "phone"),
        field("age", "integer", max=150),
        field("level", "select", options=options("gold", "silver")),
        field("memo"),
    )
    migration = FormMigration("test", rename={"note": "memo"}, set={"memo": {"var": "note"}})
    chosen = decide(new, migration)
    assert isinstance(chosen, SetBased)
    assert chosen.sets == {"memo": {"var": "note"}} and chosen.kind("memo") == "text"


def test_a_set_into_a_unique_field_asks_for_its_claims_to_be_rebuilt() -> None:
    new = with_fields(field("code", required=True, unique=True))
    chosen = decide(
        new, FormMigration("test", rename={"mobile": "phone"}, set={"code": {"var": "name"}})
    )
    assert isinstance(chosen, SetBased) and chosen.unique


CLOCK = field(
    "days",
    "computed",
    result_type="integer",
    formula={"days_between": ["2020-01-01", {"today": []}]},
)
UPPER = field("upper", "computed", result_type="text", formula={"var": "code"})


CODE = field("code", required=True)
#: case: (fields of the old form, of the new form, `set` expressions, reason); both forms
#: have the base fields, and ``mobile`` is renamed ``phone``.
TO_BATCHES: dict[str, tuple[list[Any], list[Any], dict[str, Any], str]] = {
    "a narrowed field nothing sets": (
        [field("score", "integer", max=9)],
        [field("score", "integer", max=5)],
        {},
        "score: max 9 -> 5",
    ),
    "a formula reading the clock": ([CLOCK], [CLOCK], {}, "reads the clock"),
    "a pattern": (
        [],
        [field("code", required=True, pattern="^[A-Z]+$")],
        {"code": {"var": "name"}},
        "validated by the form engine",
    ),
    "a visibility rule": (
        [],
        [field("code", required=True, visible_if={"var": "name"})],
        {"code": {"var": "name"}},
        "can be hidden",
    ),
    "a formula reading a set field": (
        [field("code"), UPPER],
        [CODE, UPPER],
        {"code": {"var": "name"}},
        "reads a field that is set",
    ),
}


@pytest.mark.parametrize("case", list(TO_BATCHES))
def test_what_sends_a_migration_to_the_batches(case: str) -> None:
    before, after, sets, reason = TO_BATCHES[case]
    old, new = with_fields(*before, phone="mobile"), with_fields(*after)
    chosen = decide(new, FormMigration("test", rename={"mobile": "phone"}, set=sets), old)
    assert isinstance(chosen, str) and reason in chosen
