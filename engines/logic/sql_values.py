"""Compile JsonLogic *value* expressions to SQL over JSON records (PostgreSQL).

:mod:`formloom.engines.logic.sql` compiles conditions; this module compiles expressions that
*compute a value* — a migration's ``set`` (the new value of a field, computed from the old
record) — so that PostgreSQL can migrate a form's records in one set-based statement instead
of sending every record through the evaluator. It builds expressions only.

The concept
    For a record ``data``, :func:`compile_value` gives an SQL expression whose JSONB value is
    what ``evaluate(rule, data, now=now)`` returns (SQL ``NULL`` where the evaluator gives
    ``null``), stored byte for byte as the evaluator's result would be, *and* an ``exact``
    condition. Where ``exact`` is true the SQL value is guaranteed to be the evaluator's;
    where it is false (a number at or beyond 2**53 in arithmetic, a remainder of a fraction,
    a number ``cat`` would write in exponent form) the caller must evaluate that record in
    Python. Anything outside the subset raises :class:`~formloom.engines.logic.sql.FilterError`
    at compile time, so the caller falls back for the whole expression.

Invariants
    * Types are static: every sub-expression is text, number, boolean or null, known from
      the form's field types (see :data:`~formloom.engines.logic.sql.FIELD_TYPES`) and the
      literals; an operator whose result type depends on the data is not compiled. Stored
      values are assumed to have their field's type, as the form engine guarantees.
    * Numbers: JSON numbers read from a record (or written in the rule) stay JSON until
      arithmetic needs them, so a value passed through (``var``, ``min``, an ``if`` branch)
      is stored exactly as it was (``1.0`` stays ``1.0``). Arithmetic runs in ``double
      precision``: for floats that *is* Python's arithmetic, and integers are exact in it
      while every operand and partial result stays below 2**53 in magnitude, which the
      ``exact`` condition checks. A result is written with ``to_jsonb(double precision)``,
      which prints the shortest round-tripping digits, as Python's ``repr`` does (this needs
      ``extra_float_digits`` >= 1, PostgreSQL's default; the caller checks it), and whole
      numbers as integers, as the evaluator's ``tidy_number`` does.
    * Division and remainder only by a non-zero constant: the evaluator raises on a zero
      divisor, and an error is not a value.
    * Conditions (``if``, ``?:``) are compiled by the filter compiler, so they mean exactly
      what they mean in a filter; a condition it does not support is tested for truthiness
      as a value.
    * ``var``/``val`` read top-level fields of ``target.fields`` only (never system columns:
      a migration's data has none), and a sub-expression that reads no data is evaluated once
      with :func:`~formloom.engines.logic.evaluate` and becomes a bound literal.

See docs/filters.md ("Values: `set` expressions compiled to SQL") for the subset.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION, JSONB
from sqlalchemy.sql.elements import ColumnElement

from .coercion import to_number, to_string, truthy
from .errors import LogicError
from .evaluator import evaluate
from .sql import (
    FIELD_TYPES,
    FilterError,
    FilterTarget,
    _arguments,
    _check_key,
    _Compiler,
    _escape_pointer,
    _json_at,
    _operation,
    _reads_data,
    _text_at,
)

__all__ = ["VALUE_OPERATORS", "CompiledValue", "ValueKind", "compile_value"]

ValueKind: TypeAlias = Literal["text", "number", "boolean", "null"]

#: Operators a value expression may apply to data (constant sub-expressions may use any).
# fmt: off
VALUE_OPERATORS: Final[tuple[str, ...]] = (
    "var", "val", "if", "?:", "??", "+", "-", "*", "/", "%", "min", "max", "cat", "substr",
    "==", "!=", "===", "!==", "<", "<=", ">", ">=", "!", "!!", "in", "is_empty", "exists",
)
# fmt: on

#: Integers are exact in double precision below this magnitude.
SAFE: Final[float] = float(2**53)
#: Operators whose result is always true or false: compiled as conditions.
_BOOLEAN_OPERATORS = frozenset(
    {"==", "!=", "===", "!==", "<", "<=", ">", ">=", "!", "!!", "in", "is_empty", "exists"}
)


@dataclass(frozen=True)
class CompiledValue:
    """A value expression compiled to SQL.

    ``value`` is JSONB (SQL ``NULL`` where the evaluator gives ``null``); ``scalar`` the same
    value typed for checks: ``text``, ``double precision`` or ``boolean`` by ``kind`` (SQL
    ``NULL`` for null). ``exact`` is true on the rows where ``value`` is guaranteed to be the
    evaluator's result; elsewhere the record must be evaluated in Python.
    """

    kind: ValueKind
    value: ColumnElement[Any]
    scalar: ColumnElement[Any]
    exact: ColumnElement[bool]


@dataclass(frozen=True)
class _Value:
    """A compiled sub-expression.

    ``sql`` is ``text``/``boolean``/``double precision`` by kind — except a *raw* number,
    whose ``sql`` is its JSON (``jsonb``) and ``text`` its JSON text; ``None`` for null.
    ``exact`` lists the conditions under which the SQL equals the evaluator.
    """

    kind: ValueKind
    sql: ColumnElement[Any] | None = None
    raw: bool = False
    text: ColumnElement[Any] | None = None
    exact: tuple[ColumnElement[bool], ...] = ()
    constant: Any = None
    is_constant: bool = False


_NULL = _Value("null", is_constant=True)


def _whole_path() -> ColumnElement[Any]:
    """The path of ``#>>`` that gives a JSON scalar as text (``'{}'``)."""
    return sa.literal_column("'{}'::text[]")


def _f8(value: float) -> ColumnElement[Any]:
    return sa.literal(value, DOUBLE_PRECISION())


def _all(conditions: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    if not conditions:
        return sa.true()
    return conditions[0] if len(conditions) == 1 else sa.and_(*conditions)


def _decimal(text: str) -> ColumnElement[Any]:
    return sa.literal(Decimal(text), sa.Numeric())


def _within(number: ColumnElement[Any]) -> ColumnElement[bool]:
    """|number| < 2**53: an integer there is exact in double precision."""
    return sa.func.abs(number) < _f8(SAFE)


def _to_jsonb(expression: ColumnElement[Any]) -> ColumnElement[Any]:
    return sa.func.to_jsonb(expression, type_=JSONB())


class _ValueCompiler:
    def __init__(self, target: FilterTarget, now: datetime) -> None:
        if target.dialect != "postgresql":
            raise FilterError("value expressions are compiled to SQL on PostgreSQL only")
        # A migration's data has no system columns: `var` reads fields only.
        self.target = FilterTarget(target.data, target.fields, {}, target.dialect)
        self.now = now
        self.conditions = _Compiler(self.target, now)

    # -- constants -------------------------------------------------------------------

    def fold(self, node: Any, pointer: str) -> Any:
        try:
            return evaluate(node, {}, now=self.now)
        except LogicError as exc:
            raise FilterError(
                f"this expression cannot be evaluated: {exc}", pointer=pointer
            ) from exc

    def constant(self, value: Any, pointer: str) -> _Value:
        if value is None:
            return _NULL
        if isinstance(value, bool):
            return _Value(
                "boolean", sa.literal(value, sa.Boolean()), constant=value, is_constant=True
            )
        if isinstance(value, str):
            return _Value("text", sa.literal(value, sa.Text()), constant=value, is_constant=True)
        if isinstance(value, int | float):
            text = json.dumps(value)
            return _Value(
                "number",
                sa.cast(sa.literal(text, sa.Text()), JSONB()),
                raw=True,
                text=sa.literal(text, sa.Text()),
                constant=value,
                is_constant=True,
            )
        raise FilterError("a list or object cannot be a value computed in SQL", pointer=pointer)

    # -- views -----------------------------------------------------------------------

    def as_json(self, value: _Value) -> ColumnElement[Any]:
        if value.kind == "null" or value.sql is None:
            return sa.cast(sa.null(), JSONB())
        if value.raw:
            return value.sql
        return _to_jsonb(value.sql)

    def as_float(self, value: _Value) -> ColumnElement[Any]:
        """A number as double precision (SQL NULL for null)."""
        assert value.kind == "number" and value.sql is not None
        if not value.raw:
            return value.sql
        if value.is_constant:
            return _f8(float(value.constant))
        assert value.text is not None
        return sa.cast(value.text, DOUBLE_PRECISION())

    def number(self, value: _Value, pointer: str) -> tuple[ColumnElement[Any], list[Any]]:
        """``to_number`` of an operand, never NULL, and what makes it exact."""
        if value.kind == "null":
            return _f8(0.0), list(value.exact)
        if value.is_constant:
            try:
                number = to_number(value.constant, "+")
            except LogicError as exc:
                raise FilterError(f"not a number: {exc}", pointer=pointer) from exc
            if abs(number) >= SAFE:
                raise FilterError("the number is too large to compute in SQL", pointer=pointer)
            return _f8(float(number)), []
        if value.kind == "boolean":
            assert value.sql is not None
            return sa.case((value.sql, _f8(1.0)), else_=_f8(0.0)), list(value.exact)
        if value.kind != "number":
            raise FilterError(
                "arithmetic in SQL takes numbers (and true/false), not text", pointer=pointer
            )
        as_float = self.as_float(value)
        exact = list(value.exact)
        if value.raw:  # a stored integer beyond 2**53 would be exact in Python, not in SQL
            exact.append(sa.or_(as_float.is_(None), _within(as_float)))
        return sa.func.coalesce(as_float, _f8(0.0)), exact

    def string(self, value: _Value, pointer: str) -> tuple[ColumnElement[Any], list[Any]]:
        """``to_string`` of an operand (``cat``), never NULL, and what makes it exact."""
        if value.is_constant:
            return sa.literal(to_string(value.constant), sa.Text()), []
        exact = list(value.exact)
        if value.kind == "null":
            return sa.literal("", sa.Text()), exact
        if value.kind == "text":
            assert value.sql is not None
            return sa.func.coalesce(value.sql, sa.literal("", sa.Text())), exact
        if value.kind == "boolean":
            assert value.sql is not None
            return (
                sa.case(
                    (value.sql, sa.literal("true", sa.Text())),
                    (sa.not_(value.sql), sa.literal("false", sa.Text())),
                    else_=sa.literal("", sa.Text()),
                ),
                exact,
            )
        if value.kind != "number":
            raise FilterError("this value cannot be written as text in SQL", pointer=pointer)
        assert value.sql is not None
        empty = sa.literal("", sa.Text())
        if value.raw:
            assert value.text is not None
            # A stored number is an integer in Python when its JSON has no fraction digits
            # (scale 0), else a float, written the JavaScript way: plain digits between 1e-6
            # and 1e21; a float is exact to its shortest digits up to 15 significant digits.
            decimal = sa.cast(value.text, sa.Numeric())
            trimmed = sa.func.trim_scale(decimal)
            digits = sa.func.length(
                sa.func.ltrim(
                    sa.func.replace(sa.cast(sa.func.abs(trimmed), sa.Text()), ".", ""), "0"
                )
            )
            whole = sa.func.scale(decimal) == 0
            size = sa.func.abs(decimal)
            plain = sa.or_(
                decimal == 0,
                sa.and_(size >= _decimal("0.000001"), size < _decimal("1e21")),
            )
            exact.append(
                sa.or_(
                    value.text.is_(None),
                    sa.and_(whole, size < _decimal("1e21")),
                    sa.and_(sa.not_(whole), plain, digits <= 15),
                )
            )
            text = sa.case(
                (value.text.is_(None), empty),
                (whole, sa.cast(decimal, sa.Text())),
                else_=sa.cast(trimmed, sa.Text()),
            )
            return text, exact
        # A computed number: to_jsonb prints its shortest digits (plain, whole numbers as
        # integers), which is JavaScript's String(n) between 1e-6 and 1e21.
        size = sa.func.abs(value.sql)
        exact.append(
            sa.or_(
                value.sql.is_(None),
                value.sql == _f8(0.0),
                sa.and_(size >= _f8(1e-6), size < _f8(1e21)),
            )
        )
        written = sa.func.coalesce(
            _to_jsonb(value.sql).op("#>>", return_type=sa.Text())(_whole_path()),
            empty,
        )
        return written, exact

    def truth(self, value: _Value) -> ColumnElement[bool]:
        """SQL true exactly where the value is truthy (NULL counts as false)."""
        if value.is_constant:
            return sa.true() if truthy(value.constant) else sa.false()
        if value.kind == "null":
            return sa.false()
        assert value.sql is not None
        if value.kind == "boolean":
            return value.sql
        if value.kind == "text":
            return value.sql != sa.literal("", sa.Text())
        return self.as_float(value) != _f8(0.0)

    # -- the tree --------------------------------------------------------------------

    def condition(self, node: Any, pointer: str) -> tuple[ColumnElement[bool], list[Any]]:
        try:
            return self.conditions.predicate(node, pointer), []
        except FilterError:
            value = self.value(node, pointer)
            return self.truth(value), list(value.exact)

    def value(self, node: Any, pointer: str) -> _Value:
        if not _reads_data(node):
            return self.constant(self.fold(node, pointer), pointer)
        operation = _operation(node)
        if operation is None:
            raise FilterError(
                "a list or object containing fields cannot be a value computed in SQL",
                pointer=pointer,
            )
        op, args = operation
        op_pointer = f"{pointer}/{_escape_pointer(op)}"
        if op in ("var", "val"):
            return self.field(op, args, op_pointer)
        if op in ("!", "!!"):  # the truthiness of one operand (a value, if need be)
            arguments = _arguments(args, op_pointer)
            condition, exact = self.condition(*arguments[0])
            truth = condition if op == "!!" else condition.is_not(sa.true())
            return _Value("boolean", sa.func.coalesce(truth, sa.false()), exact=tuple(exact))
        if op in _BOOLEAN_OPERATORS:
            predicate = self.conditions.predicate(node, pointer)
            return _Value("boolean", sa.func.coalesce(predicate, sa.false()))
        if op in ("if", "?:"):
            return self.if_(op, args, op_pointer)
        if op == "??":
            return self.coalesce(args, op_pointer)
        if op in ("+", "*", "-", "/", "%"):
            return self.arithmetic(op, self.operands(args, op_pointer), op_pointer)
        if op in ("min", "max"):
            return self.extreme(op, self.operands(args, op_pointer), op_pointer)
        if op == "cat":
            return self.cat(self.operands(args, op_pointer))
        if op == "substr":
            return self.substr(self.operands(args, op_pointer), op_pointer)
        raise FilterError(
            f"operator '{op}' cannot be computed in SQL; supported: " + ", ".join(VALUE_OPERATORS),
            pointer=op_pointer,
        )

    def operands(self, args: Any, op_pointer: str) -> list[tuple[_Value, str]]:
        """An eager operator's evaluated arguments (a single non-list argument is one)."""
        return [(self.value(arg, p), p) for arg, p in _arguments(args, op_pointer)]

    def field(self, op: str, args: Any, op_pointer: str) -> _Value:
        arguments = _arguments(args, op_pointer)
        if not arguments:
            raise FilterError(f"'{op}' needs a field key", pointer=op_pointer)
        if op == "val" and len(arguments) != 1:
            raise FilterError("'val' in SQL reads one top-level field", pointer=op_pointer)
        path, path_pointer = arguments[0]
        if _operation(path) is not None:
            if _reads_data(path):
                raise FilterError(
                    "a field key computed from data cannot be read in SQL", pointer=path_pointer
                )
            path = self.fold(path, path_pointer)
        key = _check_key(path, path_pointer)
        field_type = self.target.fields.get(key)
        if field_type is None:
            raise FilterError(f"unknown field '{key}'", pointer=path_pointer)
        kind = FIELD_TYPES.get(field_type)
        text = _text_at(self.target, key)
        value: _Value
        if kind == "text":
            value = _Value("text", text)
        elif kind == "number":
            # JSON null reads as SQL NULL, like an absent key (the evaluator sees None)
            json_null = sa.cast(sa.literal("null", sa.Text()), JSONB())
            stored = sa.func.nullif(_json_at(self.target, key), json_null, type_=JSONB())
            value = _Value("number", stored, raw=True, text=text)
        elif kind == "boolean":
            value = _Value("boolean", sa.cast(text, sa.Boolean()))
        else:
            raise FilterError(
                f"field '{key}' ({field_type}) cannot be read in a value computed in SQL",
                pointer=path_pointer,
            )
        if len(arguments) < 2:
            return value
        default_node, default_pointer = arguments[1]
        if _reads_data(default_node):
            raise FilterError("a 'var' default must be a constant", pointer=default_pointer)
        default = self.constant(self.fold(default_node, default_pointer), default_pointer)
        return self.first_of([value, default], default_pointer)

    def if_(self, op: str, args: Any, op_pointer: str) -> _Value:
        if not isinstance(args, list):
            raise FilterError(f"'{op}' needs a list of arguments", pointer=op_pointer)
        branches: list[tuple[ColumnElement[bool], _Value]] = []
        guards: list[ColumnElement[bool]] = []
        otherwise = _NULL
        i = 0
        while i < len(args) - 1:
            condition, exact = self.condition(args[i], f"{op_pointer}/{i}")
            guards.extend(exact)
            branches.append((condition, self.value(args[i + 1], f"{op_pointer}/{i + 1}")))
            i += 2
        if i == len(args) - 1:
            otherwise = self.value(args[i], f"{op_pointer}/{i}")
        return self.choose(branches, otherwise, guards, op_pointer)

    def choose(
        self,
        branches: list[tuple[ColumnElement[bool], _Value]],
        otherwise: _Value,
        guards: list[ColumnElement[bool]],
        pointer: str,
    ) -> _Value:
        """``CASE WHEN c1 THEN v1 ... ELSE otherwise``; the values must share one kind."""
        if not branches:
            return replace(otherwise, exact=(*guards, *otherwise.exact))
        values = [v for _, v in branches] + [otherwise]
        kinds = {v.kind for v in values} - {"null"}
        if len(kinds) > 1:
            raise FilterError(
                "the branches give values of different types ("
                + ", ".join(sorted(kinds))
                + "); SQL needs one",
                pointer=pointer,
            )
        kind: ValueKind = kinds.pop() if kinds else "null"
        if kind == "null":
            return _Value("null", exact=tuple(guards))
        numbers = [v for v in values if v.kind == "number"]
        raw = kind == "number" and any(v.raw for v in numbers)

        def sql_of(value: _Value) -> ColumnElement[Any]:
            if value.kind == "null":
                if raw:
                    return sa.cast(sa.null(), JSONB())
                return sa.null()
            if raw:
                return self.as_json(value)
            assert value.sql is not None
            return value.sql

        sql = sa.case(*((c, sql_of(v)) for c, v in branches), else_=sql_of(otherwise))
        exact = sa.case(*((c, _all(v.exact)) for c, v in branches), else_=_all(otherwise.exact))
        text = sql.op("#>>", return_type=sa.Text())(_whole_path())
        return _Value(kind, sql, raw=raw, text=text if raw else None, exact=(*guards, exact))

    def first_of(self, values: list[_Value], pointer: str) -> _Value:
        """The first value that is not null (``??``, ``var`` with a default)."""
        branches: list[tuple[ColumnElement[bool], _Value]] = []
        for value in values[:-1]:
            if value.kind == "null":
                continue
            if value.is_constant:
                return self.choose(branches, value, [], pointer)
            assert value.sql is not None
            present: ColumnElement[bool] = (
                value.text.is_not(None)
                if value.raw and value.text is not None
                else value.sql.is_not(None)
            )
            branches.append((present, value))
        return self.choose(branches, values[-1], [], pointer)

    def coalesce(self, args: Any, op_pointer: str) -> _Value:
        arguments = _arguments(args, op_pointer)
        if not arguments:
            return _NULL
        values = [self.value(arg, p) for arg, p in arguments]
        return self.first_of(values, op_pointer)

    def arithmetic(self, op: str, operands: list[tuple[_Value, str]], pointer: str) -> _Value:
        guards: list[ColumnElement[bool]] = []

        def operand(index: int) -> ColumnElement[Any]:
            value, at = operands[index]
            number, exact = self.number(value, at)
            guards.extend(exact)
            return number

        def step(result: ColumnElement[Any]) -> ColumnElement[Any]:
            guards.append(_within(result))  # every partial result, as Python's ints are exact
            return result

        def divisor(index: int) -> float:
            value, at = operands[index]
            if not value.is_constant:
                raise FilterError(
                    f"'{op}' in SQL divides by constants only (the evaluator refuses a zero)",
                    pointer=at,
                )
            number = to_number(value.constant, op)
            if number == 0:
                raise FilterError("division by zero", pointer=at)
            if op == "%" and not float(number).is_integer():
                raise FilterError("'%' in SQL takes a whole divisor", pointer=at)
            return float(number)

        if op == "+":
            result: ColumnElement[Any] = _f8(0.0)
            for i in range(len(operands)):
                result = step(result + operand(i))
        elif op == "*":
            result = _f8(1.0)
            for i in range(len(operands)):
                result = step(result * operand(i))
        elif op == "-":
            if not operands:
                raise FilterError("'-' needs at least one argument", pointer=pointer)
            result = operand(0)
            if len(operands) == 1:
                result = step(-result)
            for i in range(1, len(operands)):
                result = step(result - operand(i))
        elif op == "/":
            if len(operands) < 2:
                raise FilterError("'/' in SQL divides by constants only", pointer=pointer)
            result = operand(0)
            for i in range(1, len(operands)):
                result = step(result / _f8(divisor(i)))
        else:  # "%": JavaScript's remainder (the dividend's sign) of whole numbers
            if len(operands) < 2:
                raise FilterError("'%' needs at least two arguments", pointer=pointer)
            result = operand(0)
            for i in range(1, len(operands)):
                whole = sa.and_(result == sa.func.trunc(result), _within(result))
                guards.append(whole)
                remainder = sa.func.mod(
                    sa.cast(result, sa.BigInteger()), sa.literal(int(divisor(i)), sa.BigInteger())
                )
                result = sa.case((whole, sa.cast(remainder, DOUBLE_PRECISION())), else_=_f8(0.0))
        return _Value("number", result, exact=tuple(guards))

    def extreme(self, op: str, operands: list[tuple[_Value, str]], pointer: str) -> _Value:
        """``min``/``max``: the first operand holding the extreme value, as it is (so a
        stored ``1.0`` stays ``1.0``); null counts as 0."""
        if not operands:
            return _NULL
        guards: list[ColumnElement[bool]] = []
        numbers = []
        for value, at in operands:
            number, exact = self.number(value, at)
            guards.extend(exact)
            numbers.append(number)
        pick = sa.func.greatest if op == "max" else sa.func.least
        best = pick(*numbers, type_=DOUBLE_PRECISION()) if len(numbers) > 1 else numbers[0]
        if not any(v.kind == "number" and v.raw for v, _ in operands):
            return _Value("number", best, exact=tuple(guards))

        def as_json(value: _Value) -> ColumnElement[Any]:
            if value.kind == "number":  # null counts as 0 (an integer)
                return sa.func.coalesce(self.as_json(value), sa.cast(sa.literal("0"), JSONB()))
            number, _ = self.number(value, pointer)
            return _to_jsonb(number)

        sql = sa.case(
            *(
                (number == best, as_json(value))
                for number, (value, _) in zip(numbers, operands, strict=True)
            ),
            else_=as_json(operands[0][0]),
        )
        text = sql.op("#>>", return_type=sa.Text())(_whole_path())
        return _Value("number", sql, raw=True, text=text, exact=tuple(guards))

    def cat(self, operands: list[tuple[_Value, str]]) -> _Value:
        guards: list[ColumnElement[bool]] = []
        parts = []
        for value, at in operands:
            text, exact = self.string(value, at)
            guards.extend(exact)
            parts.append(text)
        if not parts:
            return self.constant("", "")
        result = parts[0]
        for part in parts[1:]:
            result = result.op("||", return_type=sa.Text())(part)
        return _Value("text", result, exact=tuple(guards))

    def substr(self, operands: list[tuple[_Value, str]], pointer: str) -> _Value:
        if not 1 <= len(operands) <= 3:
            raise FilterError("'substr' in SQL takes a text, a start and a length", pointer=pointer)
        text, guards = self.string(*operands[0])
        bounds = []
        for value, at in operands[1:]:
            if not value.is_constant:
                raise FilterError("'substr' in SQL needs a constant start and length", pointer=at)
            try:
                bound = None if value.constant is None else int(to_number(value.constant, "substr"))
            except LogicError as exc:
                raise FilterError(f"not a number: {exc}", pointer=at) from exc
            bounds.append(bound)
        start = bounds[0] if bounds and bounds[0] is not None else 0
        if start >= 0:
            result = sa.func.substr(text, start + 1, type_=sa.Text())
        else:
            result = sa.func.right(text, -start, type_=sa.Text())
        if len(bounds) > 1 and bounds[1] is not None:
            result = sa.func.left(result, bounds[1], type_=sa.Text())
        return _Value("text", result, exact=tuple(guards))


def compile_value(rule: Any, target: FilterTarget, *, now: datetime) -> CompiledValue:
    """The SQL value of ``rule`` over ``target`` (PostgreSQL), or :class:`FilterError`.

    ``now`` (timezone-aware) is what ``today``/``now`` mean, as in ``evaluate``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    compiler = _ValueCompiler(target, now)
    value = compiler.value(rule, "")
    json_value = compiler.as_json(value)
    scalar: ColumnElement[Any]
    if value.kind == "null" or value.sql is None:
        scalar = sa.null()
    elif value.kind == "number":
        scalar = compiler.as_float(value)
    else:
        scalar = value.sql
    return CompiledValue(value.kind, json_value, scalar, _all(value.exact))
