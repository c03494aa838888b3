"""Who may do what to which records of a form: the app's ``permissions``, and what they
grant one member.

An app declares permission entries (:class:`PermissionSpec`); each grants some roles some
actions on one form (or every form, ``"*"``), optionally limited by a **row filter**
(JsonLogic over the record and ``$user``) and with **field rules** (fields hidden from, or
read-only for, those roles). Entries are additive, as in Frappe and NocoBase: a member may do
an action if any entry matching one of their roles grants it; they see the rows any such
entry's filter admits (an entry without a filter admits all); a field is hidden only if every
entry that lets them read hides it, and read-only unless some entry that lets them update
leaves it writable.

:func:`form_access` turns the entries + a member's roles and ``$user`` context into a
:class:`FormAccess` — plain data that the platform applies: actions to check, row filters to
AND into SQL (with ``$user`` values already substituted as literals, so the SQL compiler
needs no notion of users), fields to strip from every response and to refuse in every
request. Who the member is (and that a platform admin may do anything) is the platform's
business; this module sees roles and attributes only.

:func:`row_filter_problems` is the import-time check that a row filter compiles to SQL on
both databases, against a records table built here from :data:`RECORD_COLUMNS`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.logic.sql import FilterError, FilterTarget, compile_filter

__all__ = [
    "ACTIONS",
    "FULL_ACCESS",
    "NOTHING",
    "NO_ACCESS",
    "RECORD_COLUMNS",
    "USER_PREFIX",
    "Action",
    "FormAccess",
    "PermissionSpec",
    "form_access",
    "row_filter_problems",
    "substitute_user",
]

Action = Literal["create", "read", "update", "delete", "export"]
ACTIONS: tuple[Action, ...] = ("create", "read", "update", "delete", "export")
USER_PREFIX = "$user"
#: The record columns a row filter may read besides fields (``created_by`` = "own
#: records"), with the kind the SQL compiler gives each. The platform's records table has
#: these columns with these types.
RECORD_COLUMNS: Mapping[str, Literal["text", "number", "timestamp"]] = {
    "id": "text",
    "version": "number",
    "created_at": "timestamp",
    "created_by": "text",
    "updated_at": "timestamp",
    "updated_by": "text",
}


class PermissionSpec(BaseModel):
    """One grant: these roles may do these actions on this form (within a row filter)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    form: str = Field(
        pattern=r"^(\*|[a-z][a-z0-9_]{0,62})$",
        description='Key of the form the grant is for, or "*" for every form of the app.',
    )
    roles: list[str] = Field(
        min_length=1, description="Role keys (declared in the app's `roles`) granted to."
    )
    actions: list[Action] = Field(
        min_length=1,
        description="What the roles may do: create, read, update, delete, export (download "
        "the rows they read as CSV or XLSX; an app that grants export to no one lets every "
        "reader export, as before export was an action).",
    )
    row_filter: dict[str, Any] | None = Field(
        default=None,
        description="JsonLogic over the record's fields and `$user` (e.g. "
        '{"==": [{"var": "department"}, {"var": "$user.department"}]}); only rows it admits '
        "are granted. None: every row.",
    )
    hidden_fields: list[str] = Field(
        default_factory=list,
        description="Fields these roles never see: absent from every response, refused in "
        "requests, unusable in filters and sorts.",
    )
    read_only_fields: list[str] = Field(
        default_factory=list, description="Fields these roles see but may not write."
    )


@dataclass(frozen=True)
class FormAccess:
    """What one caller may do on one form."""

    actions: frozenset[str]
    # action -> row filter (JsonLogic, `$user` substituted); None means every row
    row_filters: Mapping[str, Any] = field(default_factory=dict)
    hidden: frozenset[str] = frozenset()
    read_only: frozenset[str] = frozenset()
    unrestricted: bool = False

    def allows(self, action: str) -> bool:
        return action in self.actions

    def row_filter(self, action: str) -> Any:
        return self.row_filters.get(action)


FULL_ACCESS = FormAccess(actions=frozenset(ACTIONS), unrestricted=True)
NO_ACCESS = FormAccess(actions=frozenset())


class _Missing(Exception):
    """A row filter reads a `$user` attribute the caller does not have."""


#: A row filter that admits nothing (folded to a constant false by the SQL compiler).
NOTHING: dict[str, Any] = {"==": [1, 0]}


def substitute_user(rule: Any, user: Mapping[str, Any]) -> Any:
    """Replace every ``{"var": "$user.x"}`` by the caller's value of ``x`` (a literal), so
    the rule compiles to SQL like any filter over record fields.

    A grant whose filter reads an attribute the caller lacks admits **no** rows: substituting
    null would let ``{"==": [{"var": "department"}, {"var": "$user.department"}]}`` admit
    every record without a department to a nurse without one, a leak by omission.
    """
    try:
        return _substitute(rule, user)
    except _Missing:
        return NOTHING


def _substitute(rule: Any, user: Mapping[str, Any]) -> Any:
    if isinstance(rule, list):
        return [_substitute(item, user) for item in rule]
    if not isinstance(rule, dict):
        return rule
    if len(rule) == 1 and "var" in rule:
        path = rule["var"]
        name = path[0] if isinstance(path, list) and path else path
        if isinstance(name, str) and (name == USER_PREFIX or name.startswith(USER_PREFIX + ".")):
            value: Any = user
            for part in name.split(".")[1:]:
                value = value.get(part) if isinstance(value, Mapping) else None
            if value is None and isinstance(path, list) and len(path) > 1:
                value = path[1]
            if value is None:
                raise _Missing(name)
            return value
    return {op: _substitute(args, user) for op, args in rule.items()}


def _any_of(filters: list[Any]) -> Any:
    if any(f is None for f in filters):
        return None
    return filters[0] if len(filters) == 1 else {"or": filters}


def form_access(
    permissions: Iterable[PermissionSpec],
    form: str,
    *,
    roles: frozenset[str],
    user: Mapping[str, Any],
) -> FormAccess:
    """What the entries grant a member holding ``roles`` on ``form``; ``user`` is what
    ``$user`` means in their row filters (attributes, ``id``, ``username``, ...)."""
    if not roles:
        return NO_ACCESS
    permissions = tuple(permissions)
    matching = [
        p for p in permissions if (p.form == form or p.form == "*") and roles & set(p.roles)
    ]
    if not matching:
        return NO_ACCESS
    actions: set[str] = set()
    row_filters: dict[str, Any] = {}
    # Export became an action of its own; an app that names it in no grant keeps what it
    # had before: whoever reads may export what they read.
    exports_granted = any("export" in p.actions for p in permissions)
    for action in ACTIONS:
        wanted = action if action != "export" or exports_granted else "read"
        granting = [p for p in matching if wanted in p.actions]
        if not granting:
            continue
        actions.add(action)
        row_filters[action] = _any_of(
            [substitute_user(p.row_filter, user) if p.row_filter else None for p in granting]
        )
    readers = [p for p in matching if "read" in p.actions]
    hidden = (
        frozenset.intersection(*[frozenset(p.hidden_fields) for p in readers])
        if readers
        else frozenset()
    )
    writers = [p for p in matching if "update" in p.actions or "create" in p.actions]
    read_only = (
        frozenset.intersection(*[frozenset(p.read_only_fields) for p in writers])
        if writers
        else frozenset()
    )
    return FormAccess(
        actions=frozenset(actions),
        row_filters=row_filters,
        hidden=hidden,
        read_only=read_only | hidden,
    )


#: Stand-ins for `$user` values when checking at import that a row filter compiles: the
#: attributes' types are not known until a user signs in, so any one that compiles will do.
_PLACEHOLDERS: tuple[Any, ...] = ("x", ["x"], 1)
_COLUMN_TYPES: Mapping[str, sa.types.TypeEngine[Any]] = {
    "text": sa.String(),
    "number": sa.Integer(),
    "timestamp": sa.DateTime(timezone=True),
}


def _records_table() -> tuple[sa.ColumnElement[Any], dict[str, sa.ColumnElement[Any]]]:
    """The records table as a filter sees it: its ``data`` and its :data:`RECORD_COLUMNS`."""
    table = sa.table(
        "records",
        sa.column("data", sa.JSON()),
        *(sa.column(name, _COLUMN_TYPES[kind]) for name, kind in RECORD_COLUMNS.items()),
    )
    return table.c.data, {name: table.c[name] for name in RECORD_COLUMNS}


def row_filter_problems(
    rule: Any, fields: Mapping[str, str], *, now: datetime
) -> list[tuple[str, str]]:
    """Why ``rule`` cannot serve as a row filter on a form with ``fields`` (key -> type):
    (pointer inside the rule, message) pairs; empty when it compiles to SQL on both
    databases for some value of the `$user` attributes it reads."""
    data, columns = _records_table()
    first: list[tuple[str, str]] = []
    for placeholder in _PLACEHOLDERS:
        user = _Everything(placeholder)
        concrete = _substitute(rule, user)
        found: list[tuple[str, str]] = []
        for dialect in ("postgresql", "sqlite"):
            target = FilterTarget(data=data, fields=fields, columns=columns, dialect=dialect)
            try:
                compile_filter(concrete, target, now=now)
            except FilterError as exc:
                found.append((exc.pointer, exc.message))
                break
        if not found:
            return []
        first = first or found
    return first


class _Everything(dict[str, Any]):
    """A `$user` context that has every attribute, each the same placeholder value."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def get(self, key: Any, default: Any = None) -> Any:
        return self.value
