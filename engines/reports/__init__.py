"""The report engine: pivot specs compiled to one SQL statement, reshaped into a matrix.

:class:`PivotSpec` is the definition (data); :func:`check` validates it against the app's
forms with JSON pointers; :func:`compile_pivot` (alias :func:`compile`) builds one SQLAlchemy
Core statement over the records table for PostgreSQL or SQLite; the platform executes it and
:func:`reshape` (or :meth:`PivotQuery.reshape`) turns its rows into a :class:`PivotResult`
with headers, cells and totals; :func:`drill` gives the drill-down condition of one cell
from its coordinates (its row's and column's header keys), or ``reshape(..., drill=True)``
one per cell (see docs/reports.md).

The engine never executes SQL and imports nothing from the platform.
"""

from formloom.engines.reports.query import PivotError, PivotQuery, ReportTarget, compile_pivot
from formloom.engines.reports.result import (
    Cell,
    DrillDown,
    Header,
    PivotResult,
    RelatedCondition,
    drill,
    drill_down_condition,
    kept_values,
    reshape,
)
from formloom.engines.reports.spec import (
    MAX_DIMENSIONS,
    MAX_MEASURES,
    Dimension,
    Issue,
    Measure,
    PivotSpec,
    SortKey,
    TopN,
    check,
)

compile = compile_pivot  # noqa: A001 - the name the platform calls: reports.compile(...)

__all__ = [
    "MAX_DIMENSIONS",
    "MAX_MEASURES",
    "Cell",
    "Dimension",
    "DrillDown",
    "Header",
    "Issue",
    "Measure",
    "PivotError",
    "PivotQuery",
    "PivotResult",
    "PivotSpec",
    "RelatedCondition",
    "ReportTarget",
    "SortKey",
    "TopN",
    "check",
    "compile",
    "compile_pivot",
    "drill",
    "drill_down_condition",
    "kept_values",
    "reshape",
]
