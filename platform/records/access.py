"""What one caller may do with the records of a form: the app's grants, applied.

``Grants`` resolves a caller's ``FormAccess`` once per form and applies it: the action
(403 when refused, audited), the row filter (compiled into the SQL of every read; a row
outside it is never loaded), and the field rules (hidden fields refused in every input,
read-only ones refused unless the write leaves their stored value as it is).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import sqlalchemy as sa
from sqlalchemy import ColumnElement
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnClause, TextClause
from sqlalchemy.sql.util import find_tables

from formloom.engines.apps.permissions import FULL_ACCESS, NOTHING, FormAccess
from formloom.engines.forms import FieldError, FormSpec, RecordInvalid, field_types, label_text
from formloom.engines.forms.fields import TableField
from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.sql import Dialect, FilterError, FilterTarget, compile_filter
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import Forbidden
from formloom.platform.models import SYSTEM_COLUMNS, Record, system_columns
from formloom.platform.permissions.policy import resolve
from formloom.platform.rules.related import Sight

#: Stands for a value a field cannot hold (compares unequal to everything).
_UNUSABLE: Any = object()
_NOUNS = {
    "create": "create",
    "read": "read",
    "update": "change",
    "delete": "delete",
    "export": "export",
}


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RecordLike(Protocol):
    """What :func:`record_out` reads of a record: a :class:`Record` or a :class:`RecordView`."""

    @property
    def id(self) -> str: ...
    @property
    def app(self) -> str: ...
    @property
    def form(self) -> str: ...
    @property
    def form_version(self) -> int: ...
    @property
    def data(self) -> dict[str, Any]: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime: ...
    @property
    def updated_by(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RecordView:
    """A record as read from a typed projection, for :func:`record_out` (no ORM instance:
    building 50 of those was a quarter of a list page's time)."""

    id: str
    app: str
    form: str
    form_version: int
    data: dict[str, Any]
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


def record_out(
    record: RecordLike, fields: Sequence[str] | None = None, hidden: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """A record as the API answers it, without ``hidden`` fields (only ``fields``, if given)."""
    data = record.data
    if fields is not None:
        data = {key: data[key] for key in fields if key in data and key not in hidden}
    elif hidden:
        data = {key: value for key, value in data.items() if key not in hidden}
    return {
        "id": record.id,
        "app": record.app,
        "form": record.form,
        "version": record.version,
        "form_version": record.form_version,
        "created_at": iso(record.created_at),
        "created_by": record.created_by,
        "updated_at": iso(record.updated_at),
        "updated_by": record.updated_by,
        "data": data,
    }


def filter_target(
    spec: FormSpec,
    dialect: str,
    hidden: frozenset[str] = frozenset(),
    projection: sa.Table | None = None,
) -> FilterTarget:
    """What filters run against; a caller's own filters do not see hidden fields. With a
    typed ``projection`` (PostgreSQL, joined to the records by id: :func:`source`), the
    fields it holds are read from its columns, the rest from the document."""
    columns: dict[str, ColumnElement[Any]] = system_columns()
    types = field_types(spec)
    if hidden:
        types = {key: kind for key, kind in types.items() if key not in hidden}
    data: ColumnElement[Any] = Record.data  # type: ignore[assignment]  # a mapped column
    projected: dict[str, ColumnElement[Any]] = {}
    if projection is not None:
        projected = {key: projection.c[key] for key in types if key in projection.c}
        # its system columns too: sorts and keyset pages then walk the projection's indexes
        columns = {name: projection.c.get(f"_{name}", column) for name, column in columns.items()}
    return FilterTarget(
        data=data,
        fields=types,
        columns=columns,
        dialect=cast(Dialect, dialect),
        projected=projected,
    )


def source(
    projection: sa.Table | None, reading: Sequence[ColumnElement[Any]] | None = None
) -> sa.FromClause:
    """Where a list reads: the records, or a form's typed projection with the records
    LEFT JOINed by id — or the projection alone when none of ``reading`` (the conditions
    and columns of a count, given) reads a column of ``records``: a count over projected
    fields then scans only the narrow table (PostgreSQL drops such a join itself; SQLite
    does not)."""
    records = cast(sa.Table, Record.__table__)
    if projection is None:
        return records
    if reading is not None and not any(reads(clause, records) for clause in reading):
        return projection
    return projection.outerjoin(records, records.c.id == projection.c._id)


def reads(clause: ColumnElement[Any], table: sa.Table) -> bool:
    """Whether ``clause`` reads a column of ``table`` — or may: SQL written as text (the
    quick search's index expressions, ``literal_column("data ->> 'k'")``) names no table,
    so anything textual but a quoted or numeric literal counts as reading it."""
    if table in find_tables(clause, check_columns=True, include_aliases=True):
        return True
    for element in visitors.iterate(clause):
        if isinstance(element, TextClause):
            return True
        if not isinstance(element, ColumnClause) or not element.is_literal:
            continue
        if not _PLAIN_LITERAL.fullmatch(element.name):
            return True
    return False


#: A literal column that reads nothing: a quoted string or a number (keys, JSON paths).
_PLAIN_LITERAL = re.compile(r"'[^']*'|-?\d+(\.\d+)?")


class Grants:
    """The grants of one caller (``principal``) at one moment (``now``), per form."""

    def __init__(self, principal: Principal, *, now: datetime, dialect: str) -> None:
        self.principal = principal
        self.now = now
        self.dialect = dialect
        self._access: dict[tuple[str, str], FormAccess] = {}

    def access(self, installed: InstalledApp, form: str) -> FormAccess:
        key = (installed.key, form)
        found = self._access.get(key)
        if found is None:
            found = resolve(installed.spec.permissions, self.principal, installed.key, form)
            self._access[key] = found
        return found

    def forget(self, app: str, form: str) -> None:
        """Resolve the form's access again next time (the app's definition changed)."""
        self._access.pop((app, form), None)

    def known(self, app: str, form: str) -> FormAccess:
        """The access already resolved for the form (full access if none was)."""
        return self._access.get((app, form), FULL_ACCESS)

    def allowed(self, installed: InstalledApp, form: str, action: str) -> FormAccess:
        access = self.access(installed, form)
        if not access.allows(action):
            raise Forbidden(
                f"Your roles in app '{installed.key}' do not allow you to {_NOUNS[action]} "
                f"{form} records.",
                audit={
                    "action": "auth.denied",
                    "app": installed.key,
                    "form": form,
                    "detail": {"reason": "action", "action": action},
                },
            )
        return access

    def row_condition(
        self,
        access: FormAccess,
        action: str,
        spec: FormSpec,
        projection: sa.Table | None = None,
    ) -> ColumnElement[bool] | None:
        rule = access.row_filter(action)
        if rule is None:
            return None
        target = filter_target(spec, self.dialect, projection=projection)
        try:
            return compile_filter(rule, target, now=self.now)
        except FilterError:
            # Checked at import; a `$user` attribute of an unexpected type can still fail.
            # Admit nothing rather than everything.
            return compile_filter(NOTHING, target, now=self.now)

    def admits(self, access: FormAccess, action: str, record: Record) -> bool:
        """Whether ``record`` (as it would be stored) is within the action's row filter."""
        rule = access.row_filter(action)
        if rule is None:
            return True
        values = {name: getattr(record, name) for name in SYSTEM_COLUMNS}
        values = {k: iso(v) if isinstance(v, datetime) else v for k, v in values.items()}
        try:
            return truthy(evaluate(rule, {**record.data, **values}, now=self.now))
        except LogicError:
            return False

    def check_input(
        self,
        access: FormAccess,
        spec: FormSpec,
        payload: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> None:
        """Hidden fields cannot be written at all. A read-only field may be sent only when the
        write leaves its stored value as it is (a client may send a whole record back): the
        value it holds — on create (``old is None``), the value it would get anyway, its
        default or nothing — compared in stored form. Clearing it (``null``, ``""``, ``[]``)
        is a change when it holds a value, so it is refused like any other."""
        if access.unrestricted:
            return
        errors = []
        for key, value in payload.items():
            if key in access.hidden:
                errors.append(
                    FieldError(
                        field=key,
                        path=f"/data/{key}",
                        code="forbidden_field",
                        message="Your role may not set this field.",
                    )
                )
            elif key in access.read_only and not self._keeps(spec, key, value, payload, old):
                field = spec.field(key)
                label = label_text(getattr(field, "label", None) or key)
                errors.append(
                    FieldError(
                        field=key,
                        path=f"/data/{key}",
                        code="read_only",
                        message=f"{label} is read-only for your role.",
                    )
                )
        if errors:
            raise RecordInvalid(errors)

    def _keeps(
        self,
        spec: FormSpec,
        key: str,
        value: Any,
        payload: dict[str, Any],
        old: dict[str, Any] | None,
    ) -> bool:
        """Whether writing ``value`` to field ``key`` leaves what the record would hold
        without it (``check_input``). Both sides are compared as ``prepare`` stores them:
        normalised (a date or a number in another spelling is the same value), with
        ``None``, ``""`` and ``[]`` all meaning "no value"."""
        field = spec.field(key)

        def stored(raw: Any) -> Any:
            if field is None or not hasattr(field, "normalise"):
                return raw
            problems: list[Any] = []
            clean = field.normalise(raw, problems)
            if problems:
                return _UNUSABLE  # not a value the field could hold: a change
            if isinstance(field, TableField) and isinstance(clean, list):
                # clients' rows never need to carry computed cells (prepare recomputes them)
                computed = {c.key for c in field.fields if c.type == "computed"}
                clean = [
                    {k: v for k, v in row.items() if k not in computed}
                    if isinstance(row, dict)
                    else row
                    for row in clean
                ]
            return None if clean in ("", []) else clean

        if old is not None:
            before = old.get(key)
        else:
            # On create the field gets its default when it is not sent (prepare, step 3).
            before = getattr(field, "default", None)
            formula = getattr(field, "default_expr", None)
            if before is None and formula is not None:
                rest = {k: v for k, v in payload.items() if k != key}
                try:
                    before = evaluate(formula, rest, now=self.now)
                except LogicError:
                    before = None
        return bool(stored(value) == stored(before))


def sight_for(
    who: Principal, installed: Any, now: datetime, dialect: str
) -> Callable[[str], Sight]:
    """What ``who`` may see of each form a rule or flow reads through a relation: their
    grants, as the record API applies them (a rule's dry run or "try it" and a flow's
    simulation must not show what the records themselves would not)."""
    grants = Grants(who, now=now, dialect=dialect)

    def sight(form: str) -> Sight:
        access = grants.access(installed, form)
        if not access.allows("read") or installed.forms.get(form) is None:
            return Sight(readable=False)
        where = grants.row_condition(access, "read", installed.forms[form])
        return Sight(where=where, hidden=frozenset(access.hidden))

    return sight
