"""Formloom's condition language: JsonLogic (jsonlogic.com) plus a few documented extensions.

One language for visibility rules, computed fields, rule and flow conditions, permissions and
list filters. Rules are JSON data; :func:`evaluate` interprets them against a record's data;
:mod:`formloom.engines.logic.sql` compiles the filterable subset to SQL; :func:`variables` and
:func:`check_expression` analyse a rule without running it (for the designer and app import).

Invariants: evaluation is pure (no I/O; the clock is read only when the caller passes no
``now``), and every failure is a :class:`LogicError`. The classic jsonlogic.com suite passes
277/277; the semantics, the extensions and the compat-tables figure are in docs/jsonlogic.md.
"""

from __future__ import annotations

from .analysis import check_expression, variables
from .errors import (
    InvalidArguments,
    LogicError,
    NotANumber,
    ThrownError,
    UnknownOperator,
)
from .evaluator import OPERATORS, evaluate

__all__ = [
    "OPERATORS",
    "InvalidArguments",
    "LogicError",
    "NotANumber",
    "ThrownError",
    "UnknownOperator",
    "check_expression",
    "evaluate",
    "variables",
]
