"""``bin_of``: the bin of width ``w`` a number falls in, ``floor(value / w)``, in decimal.

People write widths and values in decimal (``0.1``, ``0.3``) and expect 0.3 in bin 3 of
width 0.1; binary floats disagree (``0.3 / 0.1`` is ``2.9999999999999996``). So a number
is read as the decimal its shortest repr writes (what JSON carries), and the bin is worked
out in whole numbers, exactly:

* the width becomes a whole number of units of its last decimal digit: ``0.25`` is
  ``25`` units of ``1/100`` (:func:`width_scale`, ``(scale, whole)`` = ``(100, 25)``);
* the value is counted in the same units and rounded to 9 decimals, half away from zero
  (``value * scale``, to ``10**-9``), which is what the databases compute too (SQLite's
  doubles need the rounding; PostgreSQL's NUMERIC gives the same digits);
* the bin is that count divided by ``whole``, floored (toward minus infinity: ``-0.5`` of
  width 1 is bin ``-1``).

Invariants: the result is an ``int`` (exact however large; the caller bounds it), ``None``
exactly when the value is not a finite number (``null``, text — even ``"3"`` —, booleans,
lists...); a width that is not a positive finite number is :class:`InvalidArguments`.
The same definition is in ui/static/logic.js (with BigInt) and, as SQL, in
:func:`formloom.engines.logic.sql.bin_number`, which report cells and drill-downs share.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from .coercion import describe
from .errors import InvalidArguments

__all__ = ["ROUNDING_PLACES", "bin_of", "width_scale"]

#: Decimals (in units of the width's last digit) a value is rounded to before flooring.
ROUNDING_PLACES = 9


def _is_number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _decimal(number: int | float) -> tuple[int, int]:
    """``(coefficient, exponent)`` with ``number == coefficient * 10**exponent``, the digits
    of its shortest repr without trailing zeros (``0.3`` -> ``(3, -1)``, ``1e15`` ->
    ``(1, 15)``; an int exactly)."""
    if type(number) is int:
        return number, 0
    sign, digits, exponent = Decimal(repr(number)).as_tuple()
    assert isinstance(exponent, int)  # finite: checked by the callers
    coefficient = int("".join(map(str, digits)) or "0")
    while coefficient and coefficient % 10 == 0:  # 5.0 is 5 (JavaScript writes "5")
        coefficient //= 10
        exponent += 1
    return (-coefficient if sign else coefficient), exponent


def width_scale(width: Any) -> tuple[int, int]:
    """``(10**k, width * 10**k)`` for a width with ``k`` decimals (``0.25`` -> ``(100, 25)``):
    the width as a whole number of units. :class:`InvalidArguments` unless ``width`` is a
    positive finite number."""
    if not _is_number(width) or width <= 0:
        raise InvalidArguments(
            f"'bin_of': the width must be a positive number, not {describe(width)}"
        )
    coefficient, exponent = _decimal(width)
    places = max(0, -exponent)
    return 10**places, coefficient * 10 ** (exponent + places)


def bin_of(value: Any, width: Any) -> int | None:
    """The bin number of ``value`` for bins of ``width`` (see the module docstring)."""
    scale, whole = width_scale(width)
    if not _is_number(value):
        return None
    coefficient, exponent = _decimal(value)
    units = coefficient * scale  # the value is units * 10**exponent of the width's units
    shift = exponent + ROUNDING_PLACES
    count: int
    if shift >= 0:
        count = units * 10**shift  # in 10**-9 units, exact
    else:
        step = 10**-shift
        quotient, remainder = divmod(abs(units), step)
        if 2 * remainder >= step:
            quotient += 1
        count = quotient if units >= 0 else -quotient
    divisor: int = whole * 10**ROUNDING_PLACES
    return count // divisor  # floor division of ints
