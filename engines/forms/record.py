"""Turn what a client sends into the clean ``data`` of a record, or say everything wrong with it.

:func:`prepare` runs these steps, collecting every problem rather than stopping at the first:

1. **Keys.** An unknown key is ``unknown_field``; a computed field is never written by
   clients (``read_only``).
2. **Merge.** The incoming keys, normalised (datetimes to UTC ``Z``, emails/phones/urls
   trimmed, ``""`` meaning no value), are laid over ``existing`` (PATCH semantics: an absent
   key keeps its value, ``null`` clears it). Keys of fields no longer in the form are dropped.
3. **Defaults.** On create only, a field absent from the input gets its ``default`` or the
   value of its ``default_expr`` (evaluated at ``now`` over the data given).
4. **Read-only.** A ``read_only`` field keeps the value it has (on create: its default);
   sending that same value is tolerated, anything else is a ``read_only`` error.
5. **Visibility and computed fields, to a fixpoint.** Fields are walked in form order; a field
   whose ``visible_if`` is false (or whose section is hidden) is hidden and its value is
   removed before later rules are evaluated. Computed fields are evaluated (in dependency
   order) over the data that is visible at the start of each pass. Passes repeat until the set
   of hidden fields stops changing. Hidden fields are not required and later rules and
   formulas do not see them. On create their values are not stored; on update a hidden
   top-level field **keeps** the value the record holds (the new one when the client sends
   one): a change that hides a field does not delete what it held (issue 17), a client
   clears it by sending ``null``. Table cells hidden in their row are dropped (rows are
   replaced whole on write).
6. **Validate.** Each value is checked against its part of the compiled schema — by the fast
   pre-check, and by the cached ``jsonschema`` validator when the pre-check refuses it (its
   errors are the ones reported); the engine adds what the schema cannot say (``required``
   while visible, date/time limits).

Table rows go through steps 3-6 on their own, with the row's columns over the record's
top-level fields as the data their rules see. Rows are replaced whole on write, so column
defaults apply to every row that is written.

Bounded work
    Whatever a client sends, validation costs time linear in its size, and a bad record
    stops early: a list longer than its field can validly hold (a table's ``max_rows`` or
    :data:`~formloom.engines.forms.compiled.DEFAULT_MAX_ROWS`, a multiselect's ``max_items``
    or number of options) is one problem and its items are not looked at; and once more than
    :data:`MAX_ERRORS` problems are known, validation stops at the next row or step and
    reports the first :data:`MAX_ERRORS` (in form order) with ``RecordInvalid.truncated``
    set. ``jsonschema`` errors are drawn lazily, a row (or list item) at a time, so a table of
    bad rows costs only the rows looked at.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any

from formloom.engines.forms.compiled import CompiledForm, Scope, compiled
from formloom.engines.forms.errors import FieldError, RecordInvalid, pointer
from formloom.engines.forms.fields import (
    AutonumberField,
    BaseField,
    ComputedField,
    DatetimeField,
    InputField,
    Problem,
    RelationField,
    SelectField,
    TableField,
    TextField,
)
from formloom.engines.forms.labels import label_text
from formloom.engines.forms.localtime import local_text
from formloom.engines.forms.spec import FormSpec
from formloom.engines.forms.values import ValueProblem, format_number
from formloom.engines.logic import LogicError, evaluate

_MISSING: Any = object()

#: Most problems reported for one record; validation stops once it has found more.
MAX_ERRORS = 100

#: Files a problem found while resolving a scope, keyed by the field's key in that scope.
Reporter = Callable[[tuple[str, Problem]], None]


class _Collector:
    """Problems found so far, each tied to a top-level field and a path under ``/data``."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.found: list[tuple[tuple[int, int], FieldError]] = []
        self.paths: set[tuple[str | int, ...]] = set()
        self.seen: set[tuple[tuple[str | int, ...], str]] = set()
        #: More than :data:`MAX_ERRORS` problems are known: time to stop looking. (An
        #: attribute, not a property: it is read once per key and row of every record.)
        self.full = False

    def add(self, key: str, problem: Problem) -> None:
        if self.full:
            return
        path = (key, *problem.subpath)
        if (path, problem.code) in self.seen:
            return
        self.seen.add((path, problem.code))
        self.paths.add(path)
        error = FieldError(key, pointer(*path), problem.code, problem.message)
        row = problem.subpath[0] if problem.subpath else -1
        order = (self.scope.position.get(key, -1), row if isinstance(row, int) else -1)
        self.found.append((order, error))
        self.full = len(self.found) > MAX_ERRORS

    def has(self, *path: str | int) -> bool:
        """Whether a problem was already found for the value at ``path``."""
        return _covered(self.paths, path)

    def errors(self) -> list[FieldError]:
        """The problems (at most :data:`MAX_ERRORS`), ordered by field position in the form,
        then by row."""
        ordered = sorted(self.found, key=lambda item: item[0])
        return [error for _, error in ordered[:MAX_ERRORS]]

    def stop_if_full(self) -> None:
        """Raise what is known so far when there is already more than can be reported."""
        if self.full:
            raise RecordInvalid(self.errors(), truncated=True)


def _covered(paths: set[tuple[str | int, ...]], path: tuple[str | int, ...]) -> bool:
    """Whether ``paths`` has a problem at ``path`` itself or at the row (or cell) holding it.

    A problem about a whole field (say, too few rows) does not cover problems in its rows.
    """
    if path in paths:
        return True
    return any(path[:size] in paths for size in range(2, len(path)))


def prepare(
    form: FormSpec,
    incoming: Mapping[str, Any],
    *,
    existing: Mapping[str, Any] | None = None,
    now: datetime,
    allow_read_only: bool = False,
) -> dict[str, Any]:
    """The clean data to store for a create (``existing is None``) or an update.

    ``incoming`` is what the client sent (for an update, only the keys it changes; ``None``
    clears a value). ``now`` (timezone-aware) is the instant ``default_expr`` and formulas see.
    ``allow_read_only`` lets trusted server code (rules) write ``read_only`` fields.
    Raises :class:`RecordInvalid` with every problem found (at most :data:`MAX_ERRORS`,
    then ``truncated``).
    """
    form_c = compiled(form)
    scope = form_c.scope
    by_key = scope.by_key
    found = _Collector(scope)
    if not isinstance(incoming, Mapping):
        raise RecordInvalid(
            [FieldError("", "/data", "type", f"{form_c.title} data must be an object")]
        )
    creating = existing is None
    stored: Mapping[str, Any] = existing if existing is not None else {}
    data: dict[str, Any] = {key: value for key, value in stored.items() if key in by_key}

    # 1-2. Keys, then merge the written values (normalised) onto the stored ones.
    for key, value in incoming.items():
        if found.full:
            break
        if key not in by_key:
            found.add(key, Problem("unknown_field", f"{key!r} is not a field of {form_c.title}"))
            continue
        if key in scope.computed_keys:
            title = by_key[key].title
            found.add(key, Problem("read_only", f"{title} is computed and cannot be written"))
            continue
        if value is None or value == "":
            data.pop(key, None)
            continue
        limit = scope.list_limits.get(key)
        if limit is not None and isinstance(value, list) and len(value) > limit.most:
            # Refused whole, before any of its items costs time.
            found.add(key, limit.problem(len(value)))
            data.pop(key, None)
            continue
        if key in scope.table_keys and isinstance(value, list):
            table = by_key[key]
            assert isinstance(table, TableField)
            value = _written_rows(
                table,
                form_c.tables[key],
                value,
                stored.get(key),
                data,
                now,
                found,
                allow_read_only,
            )
        else:
            normalise = scope.normalisers.get(key)
            if normalise is not None:
                problems: list[Problem] = []
                value = normalise(value, problems)
                for problem in problems:
                    found.add(key, problem)
                if value is None:
                    data.pop(key, None)
                    continue
        data[key] = value
    found.stop_if_full()

    # 3. Defaults, on create only, for the keys the client did not send.
    if creating:
        for field in scope.defaults:
            if field.key not in incoming:
                _apply_default(field, data, now, found)

    # 1b. Read-only fields keep the value they have (on create: their default).
    if not allow_read_only:
        for field in scope.read_only:
            if field.key in incoming and field.key not in scope.computed_keys:
                _keep_read_only(field, data, stored, creating, now, found)

    # 4-5. Visibility and computed fields, then the same inside each table row.
    def report(problem: tuple[str, Problem]) -> None:
        if not found.has(problem[0]):
            found.add(*problem)

    # On update, a hidden field keeps the value the record holds (or the one sent for it):
    # hiding a stored value does not delete it; clearing takes a ``null``. On create nothing
    # is stored yet, so hidden fields are dropped as before.
    held = {key for key in stored if key in data and key not in scope.computed_keys}
    merged = data
    data = _resolve(scope, data, None, now, report)
    found.stop_if_full()
    for key in scope.table_keys:
        rows = data.get(key)
        if isinstance(rows, list):
            table = by_key[key]
            assert isinstance(table, TableField)
            data[key] = _resolve_rows(table, form_c.tables[key], rows, data, now, found)
            found.stop_if_full()
    # Only resolving drops a value that was held: those are the hidden ones.
    data.update((key, merged[key]) for key in held if key not in data)

    # 6. Validate.
    _validate(form_c, data, found)
    found.stop_if_full()
    errors = found.errors()
    if errors:
        raise RecordInvalid(errors)
    return data


def _default_value(
    field: InputField,
    context: Mapping[str, Any],
    now: datetime,
    found: _Collector | None,
    report_as: tuple[str | int, ...] | None = None,
) -> Any:
    """The default of ``field`` (``_MISSING`` when it has none or it failed)."""
    if field.default is not None:
        return copy.deepcopy(field.default)
    if field.default_expr is None:
        return _MISSING
    try:
        value = evaluate(field.default_expr, context, now=now)
    except LogicError as exc:
        if found is not None:
            key, *rest = report_as or (field.key,)
            found.add(
                str(key),
                Problem(
                    "default",
                    f"The default of {field.title} could not be computed: {exc}",
                    tuple(rest),
                ),
            )
        return _MISSING
    return _MISSING if value is None else value


def _apply_default(
    field: InputField, data: dict[str, Any], now: datetime, found: _Collector
) -> None:
    value = _default_value(field, data, now, found)
    if value is _MISSING:
        return
    problems: list[Problem] = []
    value = field.normalise(value, problems)
    for problem in problems:
        found.add(field.key, problem)
    if value is not None:
        data[field.key] = value


def _keep_read_only(
    field: InputField,
    data: dict[str, Any],
    stored: Mapping[str, Any],
    creating: bool,
    now: datetime,
    found: _Collector,
) -> None:
    """Refuse a change to a read-only field, keeping the value it has (or its default)."""
    key = field.key
    if creating:
        rest = {name: value for name, value in data.items() if name != key}
        allowed = _default_value(field, rest, now, None)
        if allowed is not _MISSING:
            allowed = field.normalise(allowed, [])
    else:
        allowed = stored.get(key, _MISSING)
    allowed = None if allowed is _MISSING else allowed
    if _without_computed(field, data.get(key)) == _without_computed(field, allowed):
        return  # writing the value it already has is tolerated
    if isinstance(field, AutonumberField):
        message = f"{field.title} is numbered by the server and cannot be written"
    else:
        message = f"{field.title} is read-only"
    found.add(key, Problem("read_only", message))
    if allowed is None:
        data.pop(key, None)
    else:
        data[key] = allowed


def _without_computed(field: InputField, value: Any) -> Any:
    """A table's rows without computed cells (clients' rows never carry them)."""
    if not isinstance(field, TableField) or not isinstance(value, list):
        return value
    computed = {column.key for column in field.fields if isinstance(column, ComputedField)}
    return [
        {key: cell for key, cell in row.items() if key not in computed}
        if isinstance(row, dict)
        else row
        for row in value
    ]


def _written_rows(
    table: TableField,
    scope: Scope,
    rows: list[Any],
    old_rows: Any,
    data: Mapping[str, Any],
    now: datetime,
    found: _Collector,
    allow_read_only: bool,
) -> list[Any]:
    """Rows as written by a client: cells normalised, computed cells dropped (they are
    recomputed: clients read them back with the rows), column defaults filled in, read-only
    cells checked against the same row of the stored table."""
    old = old_rows if isinstance(old_rows, list) else []
    result: list[Any] = []
    for index, row in enumerate(rows):
        if found.full:
            break  # the caller raises: the rest is not looked at
        if not isinstance(row, dict):
            result.append(row)  # reported by the validator
            continue
        clean: dict[str, Any] = {}
        for key, cell in row.items():
            if key not in scope.by_key:
                clean[key] = cell  # reported by the validator as an unknown column
            elif key in scope.computed_keys or cell is None or cell == "":
                continue
            elif (
                (limit := scope.list_limits.get(key)) is not None
                and isinstance(cell, list)
                and len(cell) > limit.most
            ):
                found.add(table.key, table.row_problem(index, limit.problem(len(cell)), key))
            elif key in scope.normalisers:
                problems: list[Problem] = []
                cell = scope.normalisers[key](cell, problems)
                for problem in problems:
                    found.add(table.key, table.row_problem(index, problem, key))
                if cell is not None:
                    clean[key] = cell
            else:
                clean[key] = cell
        context = {**data, **clean}
        for column in scope.defaults:
            if column.key not in row:
                value = _default_value(column, context, now, found, (table.key, index, column.key))
                if value is not _MISSING:
                    problems = []
                    value = column.normalise(value, problems)
                    for problem in problems:
                        found.add(table.key, table.row_problem(index, problem, column.key))
                    if value is not None:
                        clean[column.key] = value
        if not allow_read_only:
            previous = old[index] if index < len(old) and isinstance(old[index], dict) else None
            for column in scope.read_only:
                if column.key not in row:
                    continue
                if previous is not None:
                    allowed = previous.get(column.key)
                else:
                    default = _default_value(column, context, now, None)
                    allowed = None if default is _MISSING else column.normalise(default, [])
                if clean.get(column.key) != allowed:
                    problem = Problem("read_only", f"{column.title} is read-only")
                    found.add(table.key, table.row_problem(index, problem, column.key))
                    if allowed is None:
                        clean.pop(column.key, None)
                    else:
                        clean[column.key] = allowed
        result.append(clean)
    return result


def _evaluate_rule(rule: Any, context: Mapping[str, Any], now: datetime) -> bool:
    if isinstance(rule, bool):
        return rule
    try:
        return bool(evaluate(rule, context, now=now))
    except LogicError:
        # A rule that cannot be evaluated must not hide a field: hiding would drop data and
        # waive "required" silently. The definition check catches malformed rules earlier.
        return True


def _compute(
    scope: Scope,
    values: dict[str, Any],
    context: Mapping[str, Any] | None,
    hidden: set[str],
    now: datetime,
    problems: list[tuple[str, Problem]],
) -> None:
    """Evaluate the scope's computed fields over ``values`` (in place)."""
    for field in scope.computed:
        if field.key in hidden:
            values.pop(field.key, None)
            continue
        env = values if context is None else {**context, **values}
        try:
            value = field.coerce(evaluate(field.formula, env, now=now))
        except LogicError as exc:
            problems.append(
                (field.key, Problem("computed", f"{field.title} could not be computed: {exc}"))
            )
            value = None
        except ValueProblem as exc:
            problems.append((field.key, Problem(exc.code, f"{field.title} {exc.detail}")))
            value = None
        if value is None:
            values.pop(field.key, None)
        else:
            values[field.key] = value


def _hide_pass(
    scope: Scope,
    base: Mapping[str, Any],
    context: Mapping[str, Any] | None,
    hidden: set[str],
    now: datetime,
    problems: list[tuple[str, Problem]],
) -> tuple[dict[str, Any], set[str]]:
    """One pass in form order: the visible values and the fields found hidden."""
    values = {key: value for key, value in base.items() if key not in hidden}
    _compute(scope, values, context, hidden, now, problems)
    now_hidden: set[str] = set()
    section_shown = True
    for key, rule, is_section in scope.rules:
        if is_section:
            section_shown = rule is None or _evaluate_rule(
                rule, values if context is None else {**context, **values}, now
            )
            continue
        shown = section_shown
        if shown and rule is not None:
            shown = _evaluate_rule(rule, values if context is None else {**context, **values}, now)
        if not shown:
            now_hidden.add(key)
            values.pop(key, None)
        elif key in hidden and key in base:
            values[key] = base[key]
    return values, now_hidden


def _resolve_scope(
    scope: Scope,
    base: dict[str, Any],
    context: Mapping[str, Any] | None,
    now: datetime,
) -> tuple[dict[str, Any], set[str], list[tuple[str, Problem]]]:
    """Visible values (computed included), hidden keys and computation problems."""
    problems: list[tuple[str, Problem]] = []
    if not scope.conditional:
        if scope.computed:
            base = dict(base)
            _compute(scope, base, context, set(), now, problems)
        return base, set(), problems
    hidden: set[str] = set()
    values = base
    for _ in range(len(scope.rules) + 2):
        problems = []
        values, now_hidden = _hide_pass(scope, base, context, hidden, now, problems)
        if now_hidden == hidden:
            break
        if not hidden and "*" not in scope.rule_reads:
            # Hiding changes what rules see only if a rule reads a hidden value.
            dropped = {key for key in now_hidden if key in base or key in scope.computed_keys}
            if not dropped & scope.rule_reads:
                hidden = now_hidden
                break
        hidden = now_hidden
    # No convergence (rules that keep flipping each other): the last pass stands.
    return values, hidden, problems


def _resolve(
    scope: Scope,
    data: dict[str, Any],
    context: Mapping[str, Any] | None,
    now: datetime,
    report: Reporter,
) -> dict[str, Any]:
    """The visible values (computed included); hidden ones are left out."""
    values, hidden, problems = _resolve_scope(scope, data, context, now)
    for problem in problems:
        report(problem)
    for field in scope.required:
        if field.key not in hidden and _is_empty(values.get(field.key)):
            report((field.key, Problem("required", f"{field.title} is required")))
    return values


def hidden_keys(form: FormSpec, data: Mapping[str, Any], *, now: datetime) -> frozenset[str]:
    """The top-level fields of ``form`` hidden for ``data`` (``visible_if`` false, or in a
    hidden section): what a reader of the record does not see. A value such a field still
    holds (kept on an edit, rule 5 of docs/forms.md) is stored, but an answer sheet — a FHIR
    QuestionnaireResponse, which must not carry answers to disabled questions — leaves it
    out."""
    scope = compiled(form).scope
    if not scope.conditional:
        return frozenset()
    _values, hidden, _problems = _resolve_scope(scope, dict(data), None, now)
    return frozenset(hidden)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _resolve_rows(
    table: TableField,
    scope: Scope,
    rows: list[Any],
    data: Mapping[str, Any],
    now: datetime,
    found: _Collector,
) -> list[Any]:
    result: list[Any] = []
    for index, row in enumerate(rows):
        if found.full:
            break  # the caller raises: the rest is not looked at
        if not isinstance(row, dict):
            result.append(row)
            continue

        def report(problem: tuple[str, Problem], index: int = index) -> None:
            key, inner = problem
            if not found.has(table.key, index, key):
                found.add(table.key, table.row_problem(index, inner, key))

        if all(key in scope.by_key for key in row):
            result.append(_resolve(scope, row, data, now, report))
        else:
            known = {key: value for key, value in row.items() if key in scope.by_key}
            clean = _resolve(scope, known, data, now, report)
            # Unknown columns are left for the validator to report.
            clean.update((key, value) for key, value in row.items() if key not in scope.by_key)
            result.append(clean)
    return result


def _validate(form_c: CompiledForm, data: dict[str, Any], found: _Collector) -> None:
    scope = form_c.scope
    # Values with a problem found earlier (unparseable, not computable) are not re-reported.
    earlier = set(found.paths)
    # Field by field: the data holds only known keys (checked earlier) and "required" is the
    # engine's (visibility aware), so nothing else about the object as a whole can fail.
    checks = form_c.field_checks
    for key, value in data.items():
        if found.full:
            return
        quick_check, validator = checks[key]
        if quick_check is not None and quick_check(value):
            continue
        field = scope.by_key[key]
        for errors in _by_item(key, validator.iter_errors(value)):
            # A value of the wrong type breaks every other rule too; say only what matters.
            wrong_type = {path for error, path in errors if error.validator == "type"}
            for error, path in errors:
                if error.validator == "required" and key in scope.table_keys and len(path) == 2:
                    continue  # required columns: checked per row by the engine
                if error.validator != "type" and path in wrong_type:
                    continue
                if not _covered(earlier, path):
                    found.add(key, field.describe(error, path[1:]))
            if found.full:
                return
    for field in scope.constrained:
        if found.full:
            return
        if field.key in data and not found.has(field.key):
            for problem in field.check_constraints(data[field.key]):
                found.add(field.key, problem)
    for key, table_scope in form_c.tables.items():
        rows = data.get(key)
        if not table_scope.constrained or not isinstance(rows, list):
            continue
        table = scope.by_key[key]
        assert isinstance(table, TableField)
        for index, row in enumerate(rows):
            if found.full:
                return
            if not isinstance(row, dict):
                continue
            for column in table_scope.constrained:
                if column.key in row and not found.has(key, index, column.key):
                    for problem in column.check_constraints(row[column.key]):
                        found.add(key, table.row_problem(index, problem, column.key))


def _by_item(key: str, errors: Iterable[Any]) -> Iterator[list[tuple[Any, tuple[str | int, ...]]]]:
    """``jsonschema`` errors of one value with their paths (``key`` first), drawn lazily and
    grouped by the item they are in (a row, a list item; the value itself).

    jsonschema checks an array's items one after the other, so the errors of one item come
    together: a group holds every error at any path inside it, and the caller can stop
    between groups without having paid for the items after.
    """
    group: list[tuple[Any, tuple[str | int, ...]]] = []
    current: tuple[str | int, ...] | None = None
    for error in errors:
        path: tuple[str | int, ...] = (key, *error.absolute_path)
        if path[:2] != current and group:
            yield group
            group = []
        current = path[:2]
        group.append((error, path))
    if group:
        yield group


def relation_values(form: FormSpec, data: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Every relation value in ``data`` as ``(where, target form, record id)``.

    ``where`` is the field key for a top-level field and ``table/row/column`` (e.g.
    ``items/0/product``) for a column of a table row, so ``"/data/" + where`` is the JSON
    pointer to report a missing target at. The engine cannot see the database: the caller
    checks that each target record exists.
    """
    found: list[tuple[str, str, str]] = []
    for field in form.fields:
        value = data.get(field.key)
        if isinstance(field, RelationField) and isinstance(value, str):
            found.append((field.key, field.target, value))
        elif isinstance(field, TableField) and isinstance(value, list):
            columns = [column for column in field.fields if isinstance(column, RelationField)]
            for index, row in enumerate(value):
                if not isinstance(row, dict):
                    continue
                for column in columns:
                    cell = row.get(column.key)
                    if isinstance(cell, str):
                        found.append((f"{field.key}/{index}/{column.key}", column.target, cell))
    return found


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """Sorted keys whose value differs between two versions of a record's data.

    A key present in one and absent in the other counts as changed.
    """
    return sorted(
        key for key in old.keys() | new.keys() if old.get(key, _MISSING) != new.get(key, _MISSING)
    )


def _display(field: BaseField, value: Any, locale: str, zone: tzinfo | None) -> str:
    if isinstance(field, DatetimeField) and isinstance(value, str):
        # a person reads the clinic's clock; without a zone, UTC and said so
        local = local_text(value, zone or UTC)
        if local is not None:
            return local if zone is not None else f"{local} UTC"
        return value
    if isinstance(field, SelectField) and isinstance(value, str):
        for option in field.options:
            if option.value == value:
                return label_text(option.label, locale) or value
        return value
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, list):
        return ", ".join(_display(field, item, locale, zone) for item in value)
    if isinstance(value, dict):
        return str(value.get("name", ""))
    return str(value)


def title_field(form: FormSpec) -> BaseField | None:
    """The field naming a form's records: its ``title_field``, else its first text field."""
    if form.title_field is not None:
        return form.field(form.title_field)
    return next((item for item in form.fields if isinstance(item, TextField)), None)


def title_of(
    form: FormSpec, data: Mapping[str, Any], locale: str = "en", zone: tzinfo | None = None
) -> str | None:
    """The text naming a record: its :func:`title_field` value (option labels for selects,
    a datetime as the wall clock of ``zone``, the clinic's: ``2026-12-04 10:00``; without a
    zone, in UTC and saying so: ``2026-12-04 02:00 UTC``); ``None`` when that field has no
    value."""
    field = title_field(form)
    if field is None:
        return None
    value = data.get(field.key)
    if _is_empty(value):
        return None
    return _display(field, value, locale, zone) or None
