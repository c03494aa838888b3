"""Permission grants in app definitions: their checks at import and how they resolve.

Pure tests (no database): ``load`` checks a definition's grants, ``resolve`` turns grants
and a caller into what the record service enforces.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql, sqlite

from formloom import builtin_apps
from formloom.engines.apps import DefinitionInvalid
from formloom.engines.apps.permissions import (
    NOTHING,
    RECORD_COLUMNS,
    PermissionSpec,
    _records_table,
    form_access,
    substitute_user,
)
from formloom.engines.logic.sql import FilterError, FilterTarget, compile_filter
from formloom.platform.apps.definition import load
from formloom.platform.auth.principal import ANONYMOUS, Principal
from formloom.platform.models import SYSTEM_COLUMNS, Record, system_columns
from formloom.platform.permissions.policy import resolve
from tests import factories as f

SAME_DEPARTMENT = {"==": [{"var": "department"}, {"var": "$user.department"}]}


def clinic() -> dict[str, Any]:
    document = f.app(
        "clinic",
        f.form("visit", f.field("department"), f.field("diagnosis"), f.field("fee", "number")),
        f.form("patient", f.field("name"), f.field("id_number")),
    )
    document["roles"] = [{"key": "doctor"}, {"key": "nurse"}, {"key": "front_desk"}]
    return document


def problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionInvalid) as info:
        load(document)
    for problem in info.value.problems:
        assert len(problem.message) > 10 and not problem.message.startswith("Input should")
    return [(problem.path, problem.code) for problem in info.value.problems]


def grant(**fields: Any) -> dict[str, Any]:
    return {"form": "visit", "roles": ["nurse"], "actions": ["read"], **fields}


# -- checks at import ----------------------------------------------------------------------


def test_valid_grants_load() -> None:
    document = clinic()
    document["permissions"] = [
        grant(row_filter=SAME_DEPARTMENT, hidden_fields=["diagnosis"]),
        {"form": "*", "roles": ["doctor"], "actions": ["create", "read", "update", "delete"]},
        grant(row_filter={"==": [{"var": "created_by"}, {"var": "$user.username"}]}),
    ]
    spec = load(document)
    assert spec.permissions[0].hidden_fields == ["diagnosis"]
    assert spec.permissions[1].form == "*"


def test_unknown_role_is_refused_with_its_pointer() -> None:
    document = clinic()
    document["permissions"] = [grant(roles=["nurse", "janitor"])]
    assert problems(document) == [("/permissions/0/roles/1", "unknown_role")]


def test_unknown_form_and_fields_are_refused() -> None:
    document = clinic()
    document["permissions"] = [
        grant(form="ward"),
        grant(hidden_fields=["diagnosis", "diagnose"], read_only_fields=["cost"]),
    ]
    assert problems(document) == [
        ("/permissions/0/form", "unknown_form"),
        ("/permissions/1/hidden_fields/1", "unknown_field"),
        ("/permissions/1/read_only_fields/0", "unknown_field"),
    ]


def test_wildcard_grant_fields_must_exist_in_every_form() -> None:
    document = clinic()
    document["permissions"] = [{**grant(form="*"), "hidden_fields": ["diagnosis"]}]
    assert problems(document) == [("/permissions/0/hidden_fields/0", "unknown_field")]


def test_row_filter_with_unknown_variable_is_rejected_at_import() -> None:
    document = clinic()
    document["permissions"] = [
        grant(row_filter={"==": [{"var": "departmnet"}, {"var": "$user.department"}]}),
        grant(row_filter={"==": [{"var": "department"}, {"var": "$now"}]}),
    ]
    assert problems(document) == [
        ("/permissions/0/row_filter/==/0", "unknown_variable"),
        ("/permissions/1/row_filter/==/1", "unknown_variable"),
    ]


def test_row_filter_must_compile_to_sql() -> None:
    document = clinic()
    document["permissions"] = [grant(row_filter={"map": [{"var": "department"}, 1]})]
    found = problems(document)
    assert found == [("/permissions/0/row_filter/map", "unsupported_filter")]


def test_bad_actions_are_refused_by_the_schema() -> None:
    document = clinic()
    document["permissions"] = [grant(actions=["read", "share"])]
    assert problems(document) == [("/permissions/0/actions/1", "literal_error")]


def test_the_clinic_crm_grants_load() -> None:
    document = json.loads(builtin_apps.path("clinic_crm").read_text(encoding="utf-8"))
    spec = load(document)
    roles = {role.key for role in spec.roles}
    assert {r for p in spec.permissions for r in p.roles} <= roles
    assert any(p.row_filter for p in spec.permissions)


# -- resolving -----------------------------------------------------------------------------


def nurse(**attributes: Any) -> Principal:
    return Principal(
        username="nina",
        user_id="u1",
        roles={"clinic": frozenset({"nurse"})},
        attributes=attributes,
        via="bearer",
    )


def specs(*grants: dict[str, Any]) -> list[PermissionSpec]:
    return [PermissionSpec.model_validate(g) for g in grants]


def test_user_values_are_substituted_as_literals() -> None:
    rule = substitute_user(SAME_DEPARTMENT, {"department": "cardiology"})
    assert rule == {"==": [{"var": "department"}, "cardiology"]}


def test_a_missing_user_attribute_admits_no_rows() -> None:
    assert substitute_user(SAME_DEPARTMENT, {}) == NOTHING
    access = resolve(specs(grant(row_filter=SAME_DEPARTMENT)), nurse(), "clinic", "visit")
    assert access.allows("read")
    assert access.row_filter("read") == NOTHING


def test_grants_add_up() -> None:
    grants = specs(
        grant(row_filter=SAME_DEPARTMENT, hidden_fields=["diagnosis", "fee"]),
        grant(actions=["read", "update"], hidden_fields=["fee"], read_only_fields=["department"]),
    )
    access = resolve(grants, nurse(department="icu"), "clinic", "visit")
    # an app that grants export to no one lets its readers export (as before the action)
    assert access.actions == {"read", "update", "export"}
    # one grant without a filter admits every row
    assert access.row_filter("read") is None
    # hidden only where every reading grant hides it
    assert access.hidden == {"fee"}
    assert "department" in access.read_only and "fee" in access.read_only


def test_filters_of_several_grants_are_ored() -> None:
    own = {"==": [{"var": "created_by"}, {"var": "$user.username"}]}
    grants = specs(grant(row_filter=SAME_DEPARTMENT), grant(row_filter=own))
    access = resolve(grants, nurse(department="icu"), "clinic", "visit")
    assert access.row_filter("read") == {
        "or": [
            {"==": [{"var": "department"}, "icu"]},
            {"==": [{"var": "created_by"}, "nina"]},
        ]
    }


def test_no_role_no_access_and_admin_everything() -> None:
    grants = specs(grant())
    assert not resolve(grants, ANONYMOUS, "clinic", "visit").actions
    assert not resolve(grants, nurse(), "clinic", "patient").actions
    other_app = Principal(username="x", roles={"other": frozenset({"nurse"})}, via="bearer")
    assert not resolve(grants, other_app, "clinic", "visit").actions
    admin = Principal(username="root", is_admin=True, via="bearer")
    assert resolve(grants, admin, "clinic", "visit").unrestricted


def test_a_token_scoped_to_another_app_grants_nothing() -> None:
    scoped = Principal(
        username="nina", roles={"clinic": frozenset({"nurse"})}, app_scope="other", via="personal"
    )
    assert not resolve(specs(grant()), scoped, "clinic", "visit").actions
    admin_scoped = Principal(username="root", is_admin=True, app_scope="other", via="personal")
    assert not resolve(specs(grant()), admin_scoped, "clinic", "visit").actions


def _compiled(rule: Any, target: FilterTarget) -> str:
    try:
        expression = compile_filter(rule, target, now=datetime(2024, 5, 1, tzinfo=UTC))
    except FilterError as exc:
        return f"FilterError: {exc}"
    dialect = postgresql.dialect() if target.dialect == "postgresql" else sqlite.dialect()
    return str(expression.compile(dialect=dialect))


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_engines_records_table_is_the_platforms(dialect: Any) -> None:
    """Row filters are checked at import against a records table the app engine builds (it
    imports no ORM): each of its columns must compile as the platform's does."""
    assert tuple(RECORD_COLUMNS) == SYSTEM_COLUMNS
    data, columns = _records_table()
    engine = FilterTarget(data=data, fields={"n": "number"}, columns=columns, dialect=dialect)
    orm = FilterTarget(Record.data, {"n": "number"}, system_columns(), dialect)
    samples = {"text": "x", "number": 3, "timestamp": {"now": []}}
    for name, kind in RECORD_COLUMNS.items():
        for rule in (
            {"<": [{"var": name}, samples[kind]]},
            {"==": [{"var": name}, "x"]},
            {"==": [{"var": name}, {"var": "n"}]},
            {"==": [{"var": name}, None]},
        ):
            assert _compiled(rule, engine) == _compiled(rule, orm), (name, rule)


def test_export_is_granted_on_its_own_once_an_app_names_it() -> None:
    """Once any grant of an app names ``export``, only those grants allow it (with their own
    row filters); an app naming it nowhere lets every reader export what they read."""
    reader = PermissionSpec(form="patient", roles=["nurse"], actions=["read"])
    exporter = PermissionSpec(
        form="patient",
        roles=["manager"],
        actions=["read", "export"],
        row_filter={"==": [{"var": "branch"}, {"var": "$user.branch"}]},
    )
    before = form_access([reader], "patient", roles=frozenset({"nurse"}), user={})
    assert before.allows("export")
    nurse = form_access([reader, exporter], "patient", roles=frozenset({"nurse"}), user={})
    assert nurse.allows("read") and not nurse.allows("export")
    manager = form_access(
        [reader, exporter], "patient", roles=frozenset({"manager"}), user={"branch": "b1"}
    )
    assert manager.allows("export")
    assert manager.row_filter("export") == {"==": [{"var": "branch"}, "b1"]}
