"""Errors raised by the JsonLogic engine.

Every problem with a rule or its data surfaces as a :class:`LogicError` (or a subclass), never
as a bare Python ``TypeError`` / ``ZeroDivisionError``: callers (forms, rules, flows, the SQL
compiler) catch one type and turn it into a user-facing message.

Each error also has a JSON *error value* (``{"type": ...}``), which is what the ``try``
operator hands to its fallback branch and what the community compat tables compare:
``"NaN"`` for arithmetic and comparisons that have no numeric answer, ``"Invalid Arguments"``
for a malformed operator call, or whatever a rule passed to ``throw``.
"""

from __future__ import annotations

from typing import Any


class LogicError(Exception):
    """A JsonLogic rule could not be evaluated: a bad rule, bad input, or a thrown error."""

    #: The short error kind carried in :attr:`error_value` (``{"type": kind}``).
    kind: str = "Error"

    @property
    def error_value(self) -> Any:
        """The JSON value a ``try`` fallback sees as its data (``{"type": ...}``)."""
        return {"type": self.kind}


class InvalidArguments(LogicError):
    """An operator was called with arguments it cannot accept (wrong shape or count)."""

    kind = "Invalid Arguments"


class NotANumber(LogicError):
    """Arithmetic or a comparison has no numeric answer (JavaScript would produce NaN)."""

    kind = "NaN"


class UnknownOperator(LogicError):
    """The rule uses an operator this evaluator does not know."""

    kind = "Unknown Operator"

    def __init__(self, operator: str) -> None:
        super().__init__(f"unknown operator {operator!r}")
        self.operator = operator


class ThrownError(LogicError):
    """Raised by the ``throw`` operator; ``value`` is the thrown error object."""

    def __init__(self, value: Any) -> None:
        if not isinstance(value, dict):
            value = {"type": value}
        kind = value.get("type")
        super().__init__(f"rule threw {kind if isinstance(kind, str) else value!r}")
        self.value: dict[str, Any] = value
        self.kind = kind if isinstance(kind, str) else "Error"

    @property
    def error_value(self) -> Any:
        return self.value
