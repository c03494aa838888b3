"""Value semantics shared by the JsonLogic operators: truthiness, numbers, strings, equality.

JsonLogic inherits its value model from JavaScript, evaluated over JSON values (``None``,
``bool``, ``int``, ``float``, ``str``, ``list``, ``dict``). The rules implemented here:

* **Truthiness** — falsy are ``false``, ``null``, ``0``, ``""`` and ``[]``; everything else
  (including ``"0"`` and ``{}``) is truthy.
* **Numbers** — like JavaScript's ``Number(x)``: ``null``/``false`` -> 0, ``true`` -> 1, a
  numeric string -> its value (``""`` -> 0, ``" 12 "`` -> 12, ``"1e2"`` -> 100, ``"0x1F"`` -> 31).
  Where JavaScript would produce ``NaN`` (a non-numeric string, a list, an object) we raise
  :class:`NotANumber` instead: ``NaN`` is not JSON and silently wrong numbers are worse than
  an error. Booleans are never numbers in results (``bool`` is checked before ``int``).
* **Loose equality** (``==``) — same-typed primitives compare directly; a number against a
  string compares numerically (a non-numeric string raises ``NaN``); booleans count as 0/1;
  ``null`` equals exactly ``0``, ``false`` and ``""``; lists and objects cannot be compared
  loosely (``NaN`` error). This is the community compat-tables semantics, not JavaScript's
  (which has ``null == 0`` false); see docs/jsonlogic.md.
* **Strict equality** (``===``, ``in``) — same JSON type and value, deep for lists/objects;
  ``1 === 1.0`` (JSON has one number type) but ``1 !== true``.
* **Ordering** (``<`` ...) — two strings compare by code point; otherwise both sides are
  converted to numbers; a number against a non-numeric string, or any list/object, raises
  ``NaN``.

Everything here is a plain function on values; nothing evaluates rules.
"""

from __future__ import annotations

import math
import sys
from decimal import Decimal
from typing import Any

from .errors import NotANumber

Number = int | float

#: Integers up to this magnitude survive a float round trip exactly (JavaScript's safe range).
_SAFE_INTEGER = 2**53
#: Beyond the largest double JavaScript has only Infinity; results past it are not numbers.
_LARGEST = int(sys.float_info.max)


def truthy(value: Any) -> bool:
    """JsonLogic truthiness: ``{}`` is truthy, ``[]``, ``""``, ``0`` and ``null`` are not."""
    return True if type(value) is dict else bool(value)


def describe(value: Any) -> str:
    """A short rendering of a value for error messages."""
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


def parse_number(text: str) -> Number | None:
    """``Number(text)`` as JavaScript computes it, or ``None`` where JavaScript gives NaN."""
    s = text.strip()
    if not s:
        return 0
    if not s.isascii() or "_" in s:
        return None
    digits = s[1:] if s[0] in "+-" else s
    if digits.isdigit() and len(digits) < 400:
        return int(s)
    try:
        value = float(s)
    except ValueError:
        lowered = s.lower()
        if lowered.startswith(("0x", "0o", "0b")):
            try:
                return int(s, 0)
            except ValueError:
                return None
        return None
    if not math.isfinite(value):  # "nan", "inf", "Infinity": not numbers for us
        return None
    return value


def to_number(value: Any, operator: str) -> Number:
    """Convert an operand to a number or raise :class:`NotANumber` naming the operator."""
    kind = type(value)
    if kind is int or kind is float:
        return value  # type: ignore[no-any-return]
    if kind is bool:
        return 1 if value else 0
    if value is None:
        return 0
    if kind is str:
        number = parse_number(value)
        if number is not None:
            return number
    raise NotANumber(f"{operator!r}: {describe(value)} is not a number")


def tidy_number(value: Number, operator: str) -> Number:
    """Normalise an arithmetic result: whole floats become ints, non-finite results raise."""
    if type(value) is int:
        if -_LARGEST <= value <= _LARGEST:
            return value
        raise NotANumber(f"{operator!r}: the result is too large to be a number")
    if type(value) is float:
        if not math.isfinite(value):
            raise NotANumber(f"{operator!r}: the result is not a finite number")
        if value.is_integer() and -_SAFE_INTEGER <= value <= _SAFE_INTEGER:
            return int(value)
    return value


def number_to_string(value: Number) -> str:
    """A number as JavaScript's ``String(n)`` writes it (``1.0`` -> ``"1"``, ``1e-7``)."""
    if type(value) is int:
        if -(10**21) < value < 10**21:
            return str(value)
        if not -_LARGEST <= value <= _LARGEST:
            return "Infinity" if value > 0 else "-Infinity"
        value = float(value)  # JavaScript writes large numbers in exponent form
    if not math.isfinite(value):
        return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")
    if value == 0:
        return "0"
    sign, digit_tuple, exponent = Decimal(repr(value)).normalize().as_tuple()
    digits = "".join(map(str, digit_tuple))
    k = len(digits)
    n = k + int(exponent)  # value = 0.<digits> * 10**n
    prefix = "-" if sign else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return prefix + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return prefix + "0." + "0" * -n + digits
    mantissa = digits[0] + ("." + digits[1:] if k > 1 else "")
    e = n - 1
    return f"{prefix}{mantissa}e{'+' if e >= 0 else '-'}{abs(e)}"


def to_string(value: Any) -> str:
    """A value as text, the way ``cat`` joins it: ``null`` -> ``""``, ``true`` -> ``"true"``."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if value is None:
        return ""
    if kind is bool:
        return "true" if value else "false"
    if kind is int or kind is float:
        return number_to_string(value)
    if kind is list:
        return ",".join(to_string(item) for item in value)
    if kind is dict:
        return "[object Object]"
    return str(value)


def strict_equal(a: Any, b: Any) -> bool:
    """JSON identity: same type and value (deep); ``1 == 1.0`` but ``1 != true``."""
    ta = type(a)
    tb = type(b)
    if ta is bool or tb is bool:
        return ta is tb and a == b
    if (ta is int or ta is float) and (tb is int or tb is float):
        return bool(a == b)
    if ta is not tb:
        return False
    if ta is list:
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b, strict=True))
    if ta is dict:
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    return bool(a == b)


def _is_number(kind: type) -> bool:
    return kind is int or kind is float


def loose_equal(a: Any, b: Any) -> bool:
    """JsonLogic ``==`` (see the module docstring); raises :class:`NotANumber` where undefined."""
    ta = type(a)
    tb = type(b)
    if ta is tb or (_is_number(ta) and _is_number(tb)):
        if ta is list or ta is dict:
            raise NotANumber("'==': lists and objects cannot be compared with ==")
        return bool(a == b)
    if ta is list or ta is dict or tb is list or tb is dict:
        raise NotANumber("'==': lists and objects cannot be compared with ==")
    if a is None:
        return _equals_null(b)
    if b is None:
        return _equals_null(a)
    # Two different primitive types among number, string and boolean.
    if ta is str and tb is bool:
        number = parse_number(a)
        return number is not None and number == (1 if b else 0)
    if tb is str and ta is bool:
        number = parse_number(b)
        return number is not None and number == (1 if a else 0)
    return bool(to_number(a, "==") == to_number(b, "=="))


def _equals_null(value: Any) -> bool:
    if type(value) is bool:
        return not value
    if type(value) is str:
        return value == ""
    return bool(value == 0)


def ordering_operands(a: Any, b: Any, operator: str) -> tuple[Any, Any] | None:
    """The two values ``<``/``>`` should compare, or ``None`` when the answer is simply false.

    Strings compare as strings; anything else as numbers. A number against a non-numeric
    string, and any list or object, raise :class:`NotANumber`.
    """
    ta = type(a)
    tb = type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return a, b
    if ta is str and tb is str:
        return a, b
    if ta is list or ta is dict or tb is list or tb is dict:
        raise NotANumber(f"{operator!r}: lists and objects cannot be ordered")
    x = parse_number(a) if ta is str else to_number(a, operator)
    y = parse_number(b) if tb is str else to_number(b, operator)
    if x is None or y is None:
        if _is_number(ta) or _is_number(tb):
            text = a if x is None else b
            raise NotANumber(f"{operator!r}: {describe(text)} is not a number")
        return None
    return x, y
