"""The JsonLogic evaluator: ``evaluate(rule, data, now=...)``.

A *rule* is JSON. A dict with exactly one key is an operator call (``{"op": args}``); any
other dict, and every string, number, boolean and ``null``, is a literal; a list is evaluated
element by element. This module walks that tree recursively and dispatches each call through
a dict of operator functions, so evaluation costs one dict lookup per node and nothing is
compiled or matched with regular expressions at run time.

Operators come in two kinds:

* **eager** operators (``+``, ``var``, ``cat``, ``in`` ...) receive their arguments already
  evaluated, as a list. Written without a list (``{"cat": "ice"}``) the single argument is
  evaluated, and if *that* yields a list it becomes the argument list — the "chaining" of the
  newer spec (``{"max": {"var": "scores"}}``, ``{"+": {"merge": [...]}}``);
* **lazy** operators (``if``, ``and``, ``or``, comparisons, iterators, ``try``, ``??``,
  ``preserve``) receive the raw arguments and evaluate only what they need, which gives
  short-circuiting and lets them insist on a literal argument list.

Scopes: iterators (``map``, ``filter``, ``reduce``, ``all``, ``some``, ``none``) evaluate their
body with the current element as data. The enclosing levels are kept in ``above``, a chain of
3-tuples ``(meta, parent_data, parent_above)`` ending in a :class:`_Root` that carries the
run's ``now``. ``meta`` is the iteration index (climbing to it yields ``{"index": i}``) or
``None`` inside a ``try`` fallback. ``{"val": [[n], ...]}`` climbs ``n`` levels: 1 is the
iteration's meta, 2 the data the iterator was called in, and so on.

Semantics follow the classic jsonlogic.com suite (which wins any conflict) and, beyond it, the
community compat tables; the differences from plain JavaScript are listed in
docs/jsonlogic.md. Whatever JSON comes in, only :class:`LogicError` comes out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

from . import bins, dates
from .coercion import (
    describe,
    loose_equal,
    ordering_operands,
    strict_equal,
    tidy_number,
    to_number,
    to_string,
    truthy,
)
from .errors import (
    InvalidArguments,
    LogicError,
    NotANumber,
    ThrownError,
    UnknownOperator,
)

__all__ = ["OPERATORS", "evaluate"]

_log = logging.getLogger("formloom.engines.logic")

EagerOp = Callable[[list[Any], Any, Any], Any]
LazyOp = Callable[[Any, Any, Any], Any]


class _Root:
    """The outermost scope of one evaluation: nothing above it but the run's ``now`` (the
    caller's; ``None`` when the caller gave none)."""

    __slots__ = ("now",)

    def __init__(self, now: datetime | None) -> None:
        self.now = now


def evaluate(rule: Any, data: Any = None, *, now: datetime | None = None) -> Any:
    """Evaluate a JsonLogic ``rule`` against ``data`` (JSON values).

    ``now`` is the instant ``now``/``today`` see, the caller's clock: the evaluator never
    reads one. Without it (``None``) an expression that reads the time raises
    :class:`LogicError`; any other expression evaluates as usual.
    The result may share structure with ``rule`` and ``data``; do not mutate it in place.
    Raises :class:`LogicError` (or a subclass) for anything that cannot be evaluated.
    """
    try:
        return _eval(rule, data, _Root(now))
    except LogicError:
        raise
    except RecursionError as error:
        raise LogicError("the rule is nested too deeply to evaluate") from error
    except (TypeError, ValueError, ArithmeticError, LookupError, AttributeError) as error:
        # A safety net: every operator validates its input, so reaching this is a bug, but the
        # caller still gets the one exception type it handles.
        raise LogicError(f"cannot evaluate rule: {error}") from error


def _eval(rule: Any, data: Any, above: Any) -> Any:
    kind = type(rule)
    if kind is dict:
        if len(rule) != 1:
            return rule
        [(op, args)] = rule.items()
        if op == "var" and type(args) is str:
            # The hottest node of all, {"var": "field"}, without building an argument list.
            if type(data) is dict and args and "." not in args:
                return data.get(args)
            return _var_path(data, args, None)
        eager = _EAGER.get(op)
        if eager is not None:
            if type(args) is list:
                return eager([_eval(arg, data, above) for arg in args], data, above)
            if type(args) is dict:
                value = _eval(args, data, above)
                return eager(value if type(value) is list else [value], data, above)
            return eager([args], data, above)
        lazy = _LAZY.get(op)
        if lazy is None:
            raise UnknownOperator(op)
        return lazy(args, data, above)
    if kind is list:
        return [_eval(item, data, above) for item in rule]
    return rule


def _root(above: Any) -> _Root:
    while type(above) is tuple:
        above = above[2]
    root: _Root = above
    return root


def _now(above: Any) -> datetime:
    now = _root(above).now
    if now is None:
        raise LogicError(
            "'now' and 'today' read the caller's clock, and this evaluation was given none "
            "(evaluate(..., now=...))"
        )
    return now


# --------------------------------------------------------------------------------------------
# Data access: var, val, exists, missing, missing_some
# --------------------------------------------------------------------------------------------

_MISSING = object()


def _step(current: Any, key: Any) -> Any:
    """One step of a path: a dict key or a list index; ``_MISSING`` when there is none."""
    kind = type(current)
    if kind is dict:
        if type(key) is not str:
            key = to_string(key)
        return current.get(key, _MISSING)
    if kind is list:
        if type(key) is str:
            if not (key.isdecimal() and key.isascii() and len(key) < 20):
                return _MISSING
            key = int(key)
        elif type(key) is float and key.is_integer():
            key = int(key)
        elif type(key) is not int:
            return _MISSING
        if 0 <= key < len(current):
            return current[key]
    return _MISSING


def _op_var(args: list[Any], data: Any, above: Any) -> Any:
    if not args:
        return data
    return _var_path(data, args[0], args[1] if len(args) > 1 else None)


def _var_path(data: Any, path: Any, default: Any) -> Any:
    """``{"var": [path, default]}``: a dotted path (or an index) into ``data``."""
    kind = type(path)
    if path is None or path == "" or (kind is list and not path):
        return data
    if kind is str:
        value = data
        for key in path.split(".") if "." in path else (path,):
            value = value.get(key, _MISSING) if type(value) is dict else _step(value, key)
            if value is _MISSING:
                break
    elif kind is int or kind is float:
        value = _step(data, to_string(path))
    else:
        raise InvalidArguments(
            f"'var': the path must be a string or a number, got {describe(path)}"
        )
    # A missing value and an explicit null both mean "no value" in records: use the default.
    return default if value is _MISSING or value is None else value


def _climb(above: Any, levels: Any) -> Any:
    """The data ``levels`` scopes up (``val``'s ``[[n], ...]`` form); ``_MISSING`` past the top."""
    if not (type(levels) is int or (type(levels) is float and levels.is_integer())):
        raise InvalidArguments(f"'val': a scope climb must be a whole number, got {levels!r}")
    steps = abs(int(levels))
    node = above
    while steps > 2:
        if type(node) is not tuple:
            return _MISSING
        node = node[2]
        steps -= 2
    if type(node) is not tuple:
        return _MISSING
    if steps == 1:
        meta = node[0]
        return {"index": meta} if type(meta) is int else meta
    return node[1]


def _lookup(args: list[Any], data: Any, above: Any) -> Any:
    """Resolve a ``val``/``exists`` path; ``_MISSING`` when some step has no value."""
    if len(args) == 1 and type(args[0]) is not list:
        return _step(data, args[0])
    value = data
    start = 0
    if args and type(args[0]) is list:
        climb = args[0]
        if len(climb) != 1:
            raise InvalidArguments("'val': a scope climb is written [[n], key, ...]")
        if climb[0] != 0:
            value = _climb(above, climb[0])
        start = 1
    for key in args[start:]:
        if value is _MISSING:
            break
        value = _step(value, key)
    return value


def _op_val(args: list[Any], data: Any, above: Any) -> Any:
    value = _lookup(args, data, above)
    return None if value is _MISSING else value


def _op_exists(args: list[Any], data: Any, above: Any) -> bool:
    return bool(args) and _lookup(args, data, above) is not _MISSING


def _op_missing(args: list[Any], data: Any, above: Any) -> list[Any]:
    keys = args[0] if args and type(args[0]) is list else args
    missing = []
    for key in keys:
        value = _op_var([key], data, above)
        if value is None or value == "":
            missing.append(key)
    return missing


def _op_missing_some(args: list[Any], data: Any, above: Any) -> list[Any]:
    if len(args) != 2 or type(args[1]) is not list:
        raise InvalidArguments("'missing_some' takes [minimum, [keys...]]")
    need = to_number(args[0], "missing_some")
    keys = args[1]
    missing = _op_missing([keys], data, above)
    return [] if len(keys) - len(missing) >= need else missing


# --------------------------------------------------------------------------------------------
# Logic and control flow (lazy)
# --------------------------------------------------------------------------------------------


def _need_list(op: str, args: Any) -> list[Any]:
    if type(args) is not list:
        raise InvalidArguments(f"{op!r} needs a list of arguments, got {describe(args)}")
    arguments: list[Any] = args
    return arguments


def _op_if(args: Any, data: Any, above: Any) -> Any:
    args = _need_list("if", args)
    count = len(args)
    i = 0
    while i < count - 1:
        if truthy(_eval(args[i], data, above)):
            return _eval(args[i + 1], data, above)
        i += 2
    if i == count - 1:
        return _eval(args[i], data, above)
    return None


def _op_and(args: Any, data: Any, above: Any) -> Any:
    args = _need_list("and", args)
    value: Any = False
    for arg in args:
        value = _eval(arg, data, above)
        if not truthy(value):
            return value
    return value


def _op_or(args: Any, data: Any, above: Any) -> Any:
    args = _need_list("or", args)
    value: Any = False
    for arg in args:
        value = _eval(arg, data, above)
        if truthy(value):
            return value
    return value


def _single(args: Any, data: Any, above: Any) -> Any:
    """The one operand of a unary operator: ``{"!": [x]}`` and ``{"!": x}`` alike."""
    if type(args) is list:
        return _eval(args[0], data, above) if args else None
    return _eval(args, data, above)


def _op_not(args: Any, data: Any, above: Any) -> bool:
    return not truthy(_single(args, data, above))


def _op_bool(args: Any, data: Any, above: Any) -> bool:
    return truthy(_single(args, data, above))


def _op_coalesce(args: Any, data: Any, above: Any) -> Any:
    if type(args) is not list:
        value = _eval(args, data, above)
        if type(value) is not list:
            return value
        return next((item for item in value if item is not None), None)
    for arg in args:
        value = _eval(arg, data, above)
        if value is not None:
            return value
    return None


def _op_try(args: Any, data: Any, above: Any) -> Any:
    if type(args) is not list:
        return _eval(args, data, above)
    error: LogicError | None = None
    for arg in args:
        try:
            if error is None:
                return _eval(arg, data, above)
            # A fallback sees the error as its data; [[2], ...] still reaches the try's data.
            return _eval(arg, error.error_value, (None, data, above))
        except LogicError as caught:
            error = caught
    if error is not None:
        raise error
    return None


def _op_preserve(args: Any, data: Any, above: Any) -> Any:
    return args


def _comparison(op: str, test: Callable[[Any, Any], bool]) -> LazyOp:
    """A chained, short-circuiting comparison: ``{"<": [a, b, c]}`` is ``a < b and b < c``."""

    def compare(args: Any, data: Any, above: Any) -> bool:
        if type(args) is not list or len(args) < 2:
            raise InvalidArguments(f"{op!r} needs a list of at least two arguments")
        if len(args) == 2:
            return test(_eval(args[0], data, above), _eval(args[1], data, above))
        previous = _eval(args[0], data, above)
        for i in range(1, len(args)):
            current = _eval(args[i], data, above)
            if not test(previous, current):
                return False
            previous = current
        return True

    return compare


def _less(a: Any, b: Any) -> bool:
    pair = ordering_operands(a, b, "<")
    return pair is not None and pair[0] < pair[1]


def _less_equal(a: Any, b: Any) -> bool:
    pair = ordering_operands(a, b, "<=")
    return pair is not None and pair[0] <= pair[1]


def _greater(a: Any, b: Any) -> bool:
    pair = ordering_operands(a, b, ">")
    return pair is not None and pair[0] > pair[1]


def _greater_equal(a: Any, b: Any) -> bool:
    pair = ordering_operands(a, b, ">=")
    return pair is not None and pair[0] >= pair[1]


# --------------------------------------------------------------------------------------------
# Iterators (lazy: the body is evaluated once per element, in the element's scope)
# --------------------------------------------------------------------------------------------


def _iteration(op: str, args: Any, data: Any, above: Any, *, null_ok: bool) -> list[Any]:
    """Check an iterator call and evaluate its array; ``null_ok`` maps a missing array to []."""
    if type(args) is not list or len(args) < 2:
        raise InvalidArguments(f"{op!r} needs a list of [array, expression]")
    if args[0] is None:
        raise InvalidArguments(f"{op!r}: the array is null")
    items = _eval(args[0], data, above)
    if type(items) is list:
        result: list[Any] = items
        return result
    if items is None and null_ok:
        return []
    raise InvalidArguments(f"{op!r}: expected an array, got {describe(items)}")


def _op_map(args: Any, data: Any, above: Any) -> list[Any]:
    items = _iteration("map", args, data, above, null_ok=True)
    body = args[1]
    if body is None:
        raise InvalidArguments("'map': the expression is null")
    return [_eval(body, item, (i, data, above)) for i, item in enumerate(items)]


def _op_filter(args: Any, data: Any, above: Any) -> list[Any]:
    items = _iteration("filter", args, data, above, null_ok=True)
    body = args[1]
    if body is None:
        raise InvalidArguments("'filter': the expression is null")
    return [item for i, item in enumerate(items) if truthy(_eval(body, item, (i, data, above)))]


def _op_reduce(args: Any, data: Any, above: Any) -> Any:
    items = _iteration("reduce", args, data, above, null_ok=True)
    body = args[1]
    if len(args) > 2:
        accumulator = _eval(args[2], data, above)
        start = 0
    elif items:
        accumulator, start = items[0], 1
    else:
        return None
    for i in range(start, len(items)):
        scope = {"current": items[i], "accumulator": accumulator}
        accumulator = _eval(body, scope, (i, data, above))
    return accumulator


def _op_all(args: Any, data: Any, above: Any) -> bool:
    items = _iteration("all", args, data, above, null_ok=False)
    if not items:
        return False
    body = args[1]
    return all(truthy(_eval(body, item, (i, data, above))) for i, item in enumerate(items))


def _op_some(args: Any, data: Any, above: Any) -> bool:
    items = _iteration("some", args, data, above, null_ok=False)
    body = args[1]
    return any(truthy(_eval(body, item, (i, data, above))) for i, item in enumerate(items))


def _op_none(args: Any, data: Any, above: Any) -> bool:
    items = _iteration("none", args, data, above, null_ok=False)
    body = args[1]
    return not any(truthy(_eval(body, item, (i, data, above))) for i, item in enumerate(items))


# --------------------------------------------------------------------------------------------
# Arithmetic (eager)
# --------------------------------------------------------------------------------------------


def _too_large(op: str, error: OverflowError) -> NotANumber:
    # Only absurd integers (beyond the largest double) overflow when mixed with floats.
    return NotANumber(f"{op!r}: a number is too large")


def _op_add(args: list[Any], data: Any, above: Any) -> Any:
    total: Any = 0
    try:
        for arg in args:
            kind = type(arg)
            total += arg if kind is int or kind is float else to_number(arg, "+")
    except OverflowError as error:
        raise _too_large("+", error) from error
    return tidy_number(total, "+")


def _op_multiply(args: list[Any], data: Any, above: Any) -> Any:
    product: Any = 1
    try:
        for arg in args:
            kind = type(arg)
            product *= arg if kind is int or kind is float else to_number(arg, "*")
    except OverflowError as error:
        raise _too_large("*", error) from error
    return tidy_number(product, "*")


def _op_subtract(args: list[Any], data: Any, above: Any) -> Any:
    if not args:
        raise InvalidArguments("'-' needs at least one argument")
    first = to_number(args[0], "-")
    if len(args) == 1:
        return tidy_number(-first, "-")
    result: Any = first
    try:
        for arg in args[1:]:
            result -= to_number(arg, "-")
    except OverflowError as error:
        raise _too_large("-", error) from error
    return tidy_number(result, "-")


def _op_divide(args: list[Any], data: Any, above: Any) -> Any:
    if not args:
        raise InvalidArguments("'/' needs at least one argument")
    numbers = [to_number(arg, "/") for arg in args]
    if len(numbers) == 1:
        numbers.insert(0, 1)  # {"/": x} is 1 / x
    result: Any = numbers[0]
    for divisor in numbers[1:]:
        if divisor == 0:
            raise NotANumber("'/': division by zero")
        result = _divide(result, divisor)
    return tidy_number(result, "/")


def _divide(a: Any, b: Any) -> Any:
    if type(a) is int and type(b) is int and a % b == 0:
        return a // b  # exact for integers beyond float precision
    try:
        return a / b
    except OverflowError as error:
        raise _too_large("/", error) from error


def _op_modulo(args: list[Any], data: Any, above: Any) -> Any:
    if len(args) < 2:
        raise InvalidArguments("'%' needs at least two arguments")
    result: Any = to_number(args[0], "%")
    for arg in args[1:]:
        divisor = to_number(arg, "%")
        if divisor == 0:
            raise NotANumber("'%': division by zero")
        if type(result) is int and type(divisor) is int:
            # JavaScript's remainder takes the dividend's sign (-8 % 3 == -2).
            remainder = abs(result) % abs(divisor)
            result = -remainder if result < 0 else remainder
        else:
            try:
                result = math.fmod(result, divisor)
            except OverflowError as error:
                raise _too_large("%", error) from error
    return tidy_number(result, "%")


def _op_max(args: list[Any], data: Any, above: Any) -> Any:
    if not args:
        return None
    return max(to_number(arg, "max") for arg in args)


def _op_min(args: list[Any], data: Any, above: Any) -> Any:
    if not args:
        return None
    return min(to_number(arg, "min") for arg in args)


# --------------------------------------------------------------------------------------------
# Strings and arrays (eager)
# --------------------------------------------------------------------------------------------


def _op_cat(args: list[Any], data: Any, above: Any) -> str:
    return "".join([to_string(arg) for arg in args])


def _op_substr(args: list[Any], data: Any, above: Any) -> str:
    if not args:
        raise InvalidArguments("'substr' needs [string, start, length?]")
    text = to_string(args[0])
    start = _integer(args[1], "substr") if len(args) > 1 else 0
    if start < 0:
        start = max(len(text) + start, 0)
    text = text[start:]
    if len(args) < 3 or args[2] is None:
        return text
    length = _integer(args[2], "substr")
    if length < 0:  # a negative length drops that many characters from the end
        return text[: max(len(text) + length, 0)]
    return text[:length]


def _integer(value: Any, op: str) -> int:
    # to_number only returns finite numbers; int() truncates toward zero like JavaScript.
    return int(to_number(value, op))


def _op_in(args: list[Any], data: Any, above: Any) -> bool:
    needle = args[0] if args else None
    haystack = args[1] if len(args) > 1 else None
    if type(haystack) is str:
        return needle is not None and to_string(needle) in haystack
    if type(haystack) is list:
        return any(strict_equal(needle, item) for item in haystack)
    if haystack is None:
        return False
    raise InvalidArguments(f"'in': cannot search in {describe(haystack)}")


def _op_merge(args: list[Any], data: Any, above: Any) -> list[Any]:
    merged: list[Any] = []
    for arg in args:
        if type(arg) is list:
            merged.extend(arg)
        else:
            merged.append(arg)
    return merged


def _unary(op: str, args: Any, data: Any, above: Any) -> Any:
    """The operand of a one-argument operator that, like ``!``, never spreads a list value."""
    if type(args) is list and len(args) > 1:
        raise InvalidArguments(f"{op!r} takes 1 argument, got {len(args)}")
    return _single(args, data, above)


def _op_log(args: Any, data: Any, above: Any) -> Any:
    value = _unary("log", args, data, above)
    _log.info("jsonlogic log: %r", value)
    return value


def _op_throw(args: Any, data: Any, above: Any) -> Any:
    raise ThrownError(_unary("throw", args, data, above))


# --------------------------------------------------------------------------------------------
# Formloom extensions (eager): dates, bin_of, contains, is_empty
# --------------------------------------------------------------------------------------------


def _no_arguments(op: str, args: list[Any]) -> None:
    if args and not (len(args) == 1 and args[0] is None):
        raise InvalidArguments(f"{op!r} takes no arguments")


def _op_now(args: list[Any], data: Any, above: Any) -> str:
    _no_arguments("now", args)
    return dates.now_string(_now(above))


def _op_today(args: list[Any], data: Any, above: Any) -> str:
    _no_arguments("today", args)
    return dates.today_string(_now(above))


def _arguments(op: str, args: list[Any], count: int) -> list[Any]:
    if len(args) != count:
        raise InvalidArguments(f"{op!r} takes {count} arguments, got {len(args)}")
    return args


def _op_date_add(args: list[Any], data: Any, above: Any) -> Any:
    value, amount, unit = _arguments("date_add", args, 3)
    return dates.date_add(value, amount, unit)


def _op_days_between(args: list[Any], data: Any, above: Any) -> Any:
    a, b = _arguments("days_between", args, 2)
    return dates.days_between(a, b)


def _op_years_between(args: list[Any], data: Any, above: Any) -> Any:
    a, b = _arguments("years_between", args, 2)
    return dates.years_between(a, b)


def _op_hour_of(args: list[Any], data: Any, above: Any) -> Any:
    return dates.hour_of(*_zoned("hour_of", args))


def _op_weekday_of(args: list[Any], data: Any, above: Any) -> Any:
    return dates.weekday_of(*_zoned("weekday_of", args))


def _op_bin_of(args: list[Any], data: Any, above: Any) -> Any:
    value, width = _arguments("bin_of", args, 2)
    number = bins.bin_of(value, width)
    # tidy_number: a bin beyond the largest double is NaN, as any other arithmetic
    return None if number is None else tidy_number(number, "bin_of")


def _zoned(op: str, args: list[Any]) -> list[Any]:
    """``[value]`` or ``[value, zone]``."""
    if not 1 <= len(args) <= 2:
        raise InvalidArguments(f"{op!r} takes 1 or 2 arguments, got {len(args)}")
    return args


def _op_contains(args: list[Any], data: Any, above: Any) -> bool | None:
    haystack, needle = _arguments("contains", args, 2)
    if haystack is None or needle is None:
        return None
    if type(haystack) is list:
        return any(strict_equal(needle, item) for item in haystack)
    if type(haystack) is str:
        if type(needle) is not str:
            raise InvalidArguments(f"'contains': cannot look for {describe(needle)} in a string")
        return needle in haystack
    raise InvalidArguments(f"'contains': expected a list or a string, got {describe(haystack)}")


def _op_is_empty(args: Any, data: Any, above: Any) -> bool:
    value = _unary("is_empty", args, data, above)
    return value is None or ((type(value) in (str, list, dict)) and not value)


_EAGER: dict[str, EagerOp] = {
    "var": _op_var,
    "val": _op_val,
    "exists": _op_exists,
    "missing": _op_missing,
    "missing_some": _op_missing_some,
    "+": _op_add,
    "*": _op_multiply,
    "-": _op_subtract,
    "/": _op_divide,
    "%": _op_modulo,
    "max": _op_max,
    "min": _op_min,
    "cat": _op_cat,
    "substr": _op_substr,
    "in": _op_in,
    "merge": _op_merge,
    "now": _op_now,
    "today": _op_today,
    "date_add": _op_date_add,
    "days_between": _op_days_between,
    "years_between": _op_years_between,
    "hour_of": _op_hour_of,
    "weekday_of": _op_weekday_of,
    "bin_of": _op_bin_of,
    "contains": _op_contains,
}

_LAZY: dict[str, LazyOp] = {
    "if": _op_if,
    "?:": _op_if,
    "and": _op_and,
    "or": _op_or,
    "!": _op_not,
    "!!": _op_bool,
    "??": _op_coalesce,
    "try": _op_try,
    "preserve": _op_preserve,
    "log": _op_log,
    "throw": _op_throw,
    "is_empty": _op_is_empty,
    "==": _comparison("==", loose_equal),
    "!=": _comparison("!=", lambda a, b: not loose_equal(a, b)),
    "===": _comparison("===", strict_equal),
    "!==": _comparison("!==", lambda a, b: not strict_equal(a, b)),
    "<": _comparison("<", _less),
    "<=": _comparison("<=", _less_equal),
    ">": _comparison(">", _greater),
    ">=": _comparison(">=", _greater_equal),
    "map": _op_map,
    "filter": _op_filter,
    "reduce": _op_reduce,
    "all": _op_all,
    "some": _op_some,
    "none": _op_none,
}

#: Every operator name :func:`evaluate` understands.
OPERATORS: frozenset[str] = frozenset(_EAGER) | frozenset(_LAZY)
