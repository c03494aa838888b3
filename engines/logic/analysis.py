"""Static analysis of JsonLogic rules: which data a rule reads, and what is wrong with it.

Both functions look at a rule without evaluating it, so they are safe on untrusted input and
cheap enough for the designer to call on every keystroke and for app import to call on every
expression.

* :func:`variables` lists the record paths a rule reads (``var``, ``val``, ``exists``,
  ``missing``, ``missing_some``) as dotted strings. Paths inside an iterator body (``map``,
  ``filter``, ``reduce``, ``all``, ``some``, ``none``) or a ``try`` fallback are relative to
  the element or the error and are not record paths, so they are skipped — except a ``val``
  that climbs back to the record (``{"val": [[2], "x"]}`` one iterator deep). A path that is
  only known at run time, or a read of the whole record, is reported as ``"*"``. Given a
  ``now``, a key written as an expression that reads no data (``{"var": {"cat": ["id_",
  "number"]}}``) is worked out the way the evaluator and the SQL compiler work it out, and
  reported by the name it yields: what a permission check sees is what runs.
* :func:`check_expression` reports unknown operators, calls that need a literal argument list
  but have none, and wrong argument counts for operators whose count is fixed, each as
  ``(JSON pointer of the operator object within the rule, message)``. An empty list means the
  rule is well formed; it can still fail at run time on unexpected data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import dates
from .bins import width_scale
from .errors import InvalidArguments, LogicError
from .evaluator import OPERATORS, evaluate

__all__ = ["ARITY", "LIST_ONLY", "check_expression", "literal_key", "variables"]

#: Argument count (minimum, maximum or None for unbounded) of every operator.
ARITY: dict[str, tuple[int, int | None]] = {
    "var": (0, 2),
    "val": (0, None),
    "exists": (1, None),
    "missing": (0, None),
    "missing_some": (2, 2),
    "if": (0, None),
    "?:": (3, 3),
    "and": (0, None),
    "or": (0, None),
    "!": (0, 1),  # {"!": []} is true by the compat tables
    "!!": (0, 1),
    "??": (0, None),
    "try": (0, None),
    "throw": (1, 1),
    "preserve": (0, None),
    "==": (2, None),
    "!=": (2, None),
    "===": (2, None),
    "!==": (2, None),
    "<": (2, None),
    "<=": (2, None),
    ">": (2, None),
    ">=": (2, None),
    "+": (0, None),
    "*": (0, None),
    "-": (1, None),
    "/": (1, None),
    "%": (2, None),
    "max": (1, None),
    "min": (1, None),
    "map": (2, 2),
    "filter": (2, 2),
    "reduce": (2, 3),
    "all": (2, 2),
    "some": (2, 2),
    "none": (2, 2),
    "merge": (0, None),
    "in": (2, 2),
    "cat": (0, None),
    "substr": (2, 3),
    "log": (1, 1),
    "now": (0, 0),
    "today": (0, 0),
    "date_add": (3, 3),
    "days_between": (2, 2),
    "years_between": (2, 2),
    "hour_of": (1, 2),
    "weekday_of": (1, 2),
    "bin_of": (2, 2),
    "contains": (2, 2),
    "is_empty": (1, 1),
}

#: Operators whose arguments must be written as a literal list (evaluation rejects the rest).
LIST_ONLY: frozenset[str] = frozenset(
    {"if", "?:", "and", "or", "==", "!=", "===", "!==", "<", "<=", ">", ">=",
     "map", "filter", "reduce", "all", "some", "none"}
)  # fmt: skip

_ITERATORS = frozenset({"map", "filter", "reduce", "all", "some", "none"})
_DATE_UNITS = frozenset({"second", "minute", "hour", "day", "week", "month", "year"})

ANY_PATH = "*"


def _operator(node: Any) -> tuple[str, Any] | None:
    if type(node) is dict and len(node) == 1:
        [(op, args)] = node.items()
        return op, args
    return None


# --------------------------------------------------------------------------------------------
# variables
# --------------------------------------------------------------------------------------------


#: Works out a key written as an expression (None: it cannot be, or it reads data).
_Fold = Callable[[Any], Any]


def variables(rule: Any, *, now: datetime | None = None) -> set[str]:
    """Every record path ``rule`` reads, as dotted strings; ``"*"`` for computed paths.

    With ``now``, a key computed without reading data is evaluated (at ``now``) and counts
    by the name it gives; a key computed from data is still ``"*"``."""
    found: set[str] = set()
    _collect(rule, 0, found, _folder(now) if now is not None else None)
    return found


def _folder(now: datetime) -> _Fold:
    def fold(node: Any) -> Any:
        if _reads_data(node):
            return None
        try:
            return evaluate(node, {}, now=now)
        except (LogicError, RecursionError, ValueError, OverflowError):
            return None

    return fold


_DATA_OPERATORS = frozenset({"var", "val", "exists", "missing", "missing_some"})


def _reads_data(node: Any) -> bool:
    if type(node) is list:
        return any(_reads_data(item) for item in node)
    call = _operator(node)
    if call is None:
        return False
    op, args = call
    return op in _DATA_OPERATORS or _reads_data(args)


def _collect(node: Any, depth: int, found: set[str], fold: _Fold | None = None) -> None:
    if type(node) is list:
        for item in node:
            _collect(item, depth, found, fold)
        return
    call = _operator(node)
    if call is None:
        return
    op, args = call
    if op == "preserve":
        return
    arguments = args if type(args) is list else [args]
    if op == "var":
        _collect_var(arguments, depth, found, fold)
    elif op in ("val", "exists"):
        _collect_val(arguments, depth, found, fold)
    elif op == "missing":
        if fold is not None and not _reads_data(args):
            # as evaluated: the arguments first, then a first argument that is a list
            arguments = _folded(args, fold)
            arguments = arguments if type(arguments) is list else [arguments]
        first = arguments[0] if arguments else None
        keys = first if type(first) is list or _operator(first) else arguments
        _collect_keys(keys, depth, found, fold)
    elif op == "missing_some":
        if len(arguments) == 2:
            _collect(arguments[0], depth, found, fold)
            _collect_keys(arguments[1], depth, found, fold)
    elif op in _ITERATORS:
        if arguments:
            _collect(arguments[0], depth, found, fold)
        for i, body in enumerate(arguments[1:], start=1):
            # reduce's initial value (third argument) runs in the caller's scope.
            _collect(body, depth if (op == "reduce" and i == 2) else depth + 1, found, fold)
    elif op == "try":
        if arguments:
            _collect(arguments[0], depth, found, fold)
        for fallback in arguments[1:]:
            _collect(fallback, depth + 1, found, fold)
    else:
        _collect(arguments, depth, found, fold)


def literal_key(value: Any) -> str | None:
    """The key a literal path names: a string as is, an integer as its digits (``{"var":
    0}`` reads ``"0"``); None for anything else (an expression, a list, a float, a bool)."""
    if type(value) is str:
        return value
    if type(value) is int:
        return str(value)
    return None


def _folded(node: Any, fold: _Fold | None) -> Any:
    """``node`` worked out when it is an expression that reads no data (and ``fold`` is
    given); otherwise ``node`` itself."""
    if fold is None or (_operator(node) is None and type(node) is not list):
        return node
    value = fold(node)
    return node if value is None else value


def _collect_var(arguments: list[Any], depth: int, found: set[str], fold: _Fold | None) -> None:
    for default in arguments[1:]:
        _collect(default, depth, found, fold)
    path = arguments[0] if arguments else None
    if _operator(path) is not None:
        path = _folded(path, fold)
    if _operator(path) is not None or type(path) is list:
        _collect(path, depth, found, fold)
        found.add(ANY_PATH)
        return
    if depth:
        return
    key = literal_key(path)
    found.add(key if key else ANY_PATH)


def _collect_val(arguments: list[Any], depth: int, found: set[str], fold: _Fold | None) -> None:
    keys = [_folded(key, fold) if _operator(key) is not None else key for key in arguments]
    levels = 0
    if keys and type(keys[0]) is list:
        climb = keys.pop(0)
        if len(climb) == 1 and type(climb[0]) is int:
            levels = abs(climb[0])
        else:
            found.add(ANY_PATH)
            return
    dynamic = [key for key in keys if literal_key(key) is None]
    if dynamic:
        _collect(dynamic, depth, found, fold)
        found.add(ANY_PATH)
        return
    if levels != 2 * depth:
        return  # relative to an element, an iteration or an error, not to the record
    found.add(".".join(str(literal_key(key)) for key in keys) if keys else ANY_PATH)


def _collect_keys(keys: Any, depth: int, found: set[str], fold: _Fold | None) -> None:
    keys = _folded(keys, fold)
    if type(keys) is list:
        keys = [_folded(key, fold) if _operator(key) is not None else key for key in keys]
        if keys and type(keys[0]) is list:  # {"missing": [["a", "b"]]}
            keys = keys[0]
    elif fold is not None and literal_key(keys) is not None:
        keys = [keys]  # one key, as the compiler reads it ({"missing": {"cat": [...]}})
    if type(keys) is not list or any(literal_key(key) is None for key in keys):
        _collect(keys, depth, found, fold)
        found.add(ANY_PATH)
        return
    if depth == 0:
        found.update(str(literal_key(key)) for key in keys)


# --------------------------------------------------------------------------------------------
# check_expression
# --------------------------------------------------------------------------------------------


def _pointer(path: list[str]) -> str:
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


def check_expression(rule: Any) -> list[tuple[str, str]]:
    """Static problems in ``rule`` as ``(JSON pointer, message)``, in document order."""
    problems: list[tuple[str, str]] = []
    _check(rule, [], problems)
    return problems


def _check(node: Any, path: list[str], problems: list[tuple[str, str]]) -> None:
    if type(node) is list:
        for i, item in enumerate(node):
            _check(item, [*path, str(i)], problems)
        return
    call = _operator(node)
    if call is None:
        return
    op, args = call
    here = _pointer(path)
    if op not in OPERATORS:
        problems.append((here, f"unknown operator {op!r}"))
        _check(args, [*path, op], problems)
        return
    if op == "preserve":
        return
    if type(args) is list:
        _check_count(op, len(args), here, problems)
        _check_arguments(op, args, here, problems)
        for i, arg in enumerate(args):
            _check(arg, [*path, op, str(i)], problems)
        return
    if op in LIST_ONLY:
        problems.append((here, f"{op!r} needs a list of arguments"))
    elif _operator(args) is None:
        # A single literal argument; an operator argument may yield a whole argument list.
        _check_count(op, 1, here, problems)
    _check(args, [*path, op], problems)


def _check_count(op: str, count: int, here: str, problems: list[tuple[str, str]]) -> None:
    low, high = ARITY[op]
    if low <= count and (high is None or count <= high):
        return
    if high is None:
        wanted = f"at least {low} argument{'s' if low != 1 else ''}"
    elif low == high:
        wanted = f"{low} argument{'s' if low != 1 else ''}"
    elif low == 0:
        wanted = f"at most {high} argument{'s' if high != 1 else ''}"
    else:
        wanted = f"{low} to {high} arguments"
    problems.append((here, f"{op!r} takes {wanted}, got {count}"))


def _check_arguments(op: str, args: list[Any], here: str, problems: list[tuple[str, str]]) -> None:
    if op in _ITERATORS and args:
        if args[0] is None:
            problems.append((here, f"{op!r}: the array is null"))
        if op in ("map", "filter") and len(args) > 1 and args[1] is None:
            problems.append((here, f"{op!r}: the expression is null"))
    if op == "date_add" and len(args) == 3 and type(args[2]) is str:
        unit = args[2].strip().lower()
        if unit not in _DATE_UNITS and unit.removesuffix("s") not in _DATE_UNITS:
            units = ", ".join(sorted(_DATE_UNITS))
            problems.append((here, f"'date_add': unknown unit {args[2]!r} (use one of {units})"))
    if op == "bin_of" and len(args) == 2 and type(args[1]) not in (dict, list):
        try:
            width_scale(args[1])
        except InvalidArguments as error:
            problems.append((here, str(error)))
    if op in ("hour_of", "weekday_of") and len(args) == 2 and type(args[1]) is str:
        try:
            dates.time_zone(args[1], op)
        except InvalidArguments as error:
            problems.append((here, str(error)))
