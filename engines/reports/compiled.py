"""What a compiled pivot is made of: the plan of each dimension, the UNION ALL branches,
the target table, and the error a pivot raises. ``query`` builds these and ``result``
reshapes rows with them; both import them from here, so neither imports the other back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from formloom.engines.forms import FormSpec, field_types
from formloom.engines.logic.sql import Dialect, FilterTarget

from .spec import Dimension, FieldRef, Measure, PivotSpec

DimKind: TypeAlias = Literal["value", "bucket", "bins", "width", "tags"]


class PivotError(Exception):
    """A pivot cannot be compiled or is too large. ``issues``: (pointer, code, message)."""

    kind = "Invalid Pivot"

    def __init__(self, message: str, issues: Sequence[tuple[str, str, str]] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.issues = list(issues) or [("", "invalid_pivot", message)]


#: The caller's condition on the records of a related form, read through an alias of the
#: records table: (alias, form key) -> condition, or None for every record.
RelatedRows: TypeAlias = Callable[[Any, str], "ColumnElement[bool] | None"]


@dataclass(frozen=True, eq=False)
class ReportTarget:
    """The records table (or any table with its columns: id, app, form, data, deleted_at,
    created_at, updated_at, created_by, updated_by), the app, an optional extra condition
    over that table (the caller's row filter), ANDed into the source records, and optionally
    the caller's row filter on related forms (``related``): a hop through a relation reads
    only the related records it admits, the others count as no related record at all."""

    table: sa.Table | sa.TableClause
    app: str
    condition: ColumnElement[bool] | None = None
    related: RelatedRows | None = None
    #: The source form's typed projection (PostgreSQL; platform/records/projections.py):
    #: its live records only, system columns ``_id``, ``_created_at``... and a typed column
    #: per projected field. Given, the base reads from it, the records LEFT JOINed by id for
    #: what it does not hold; ``condition`` must then be written over it as well.
    projection: sa.Table | None = None

    def related_condition(self, alias: Any, form: str) -> ColumnElement[bool] | None:
        return self.related(alias, form) if self.related is not None else None


@dataclass(frozen=True)
class DimPlan:
    index: int
    axis: Literal["rows", "columns"]
    dimension: Dimension
    ref: FieldRef
    kind: DimKind


@dataclass(frozen=True)
class Branch:
    """One UNION ALL branch: the grouping sets that explode the same multiselect dims."""

    number: int
    exploded: frozenset[int]
    columns: tuple[str, ...]  # grouping columns in GROUPING() order
    sets: tuple[frozenset[int], ...]


@dataclass
class CompiledPivot:
    """What a compiled pivot holds: the statement to execute and what reshaping its rows
    needs (``query.PivotQuery`` adds the reshaping)."""

    spec: PivotSpec
    forms: Mapping[str, FormSpec]
    statement: sa.Select[Any] | sa.CompoundSelect[Any]
    dims: list[DimPlan]
    sets: list[frozenset[int]]
    branches: list[Branch]
    base_measures: list[Measure]
    dialect: Dialect
    time_zone: str
    max_cells: int
    limit: int
    top_other: bool = False
    #: With top-N: the first row dimension's kept values (:func:`.result.kept_values`), for
    #: drilling into a cell without running the whole pivot.
    kept: sa.Select[Any] | None = None
    #: Every measure adds up, and the statement groups the records once at the finest
    #: grain, its grouping sets grouping those groups (``query._finest_groups``)
    rolled_up: bool = False


def _as_impl(column: Any) -> Any:
    """A column of a custom type (the platform's UTC datetime) as its underlying type."""
    if isinstance(column.type, sa.types.TypeDecorator):
        return sa.type_coerce(column, column.type.impl)
    return column


def records_filter_target(table: Any, form: FormSpec, dialect: Dialect) -> FilterTarget:
    """The filter compiler's view of ``table`` for ``form``. A column of a custom type (the
    platform's UTC datetime) is seen as its underlying type, which the compiler knows."""
    columns: dict[str, ColumnElement[Any]] = {}
    for name in ("id", "version", "created_at", "created_by", "updated_at", "updated_by"):
        if name in table.c:
            column = table.c[name]
            if isinstance(column.type, sa.types.TypeDecorator):
                column = sa.type_coerce(column, column.type.impl)
            columns[name] = column
    return FilterTarget(table.c.data, field_types(form), columns, dialect)


def projected_target(target: FilterTarget, projection: sa.Table) -> FilterTarget:
    """``target`` reading the system columns and the projected fields of a form's typed
    projection (its columns ``_id``, ``_created_at``..., and one per projected field)."""
    return dataclasses.replace(
        target,
        columns={
            name: _as_impl(projection.c[f"_{name}"]) if f"_{name}" in projection.c else column
            for name, column in target.columns.items()
        },
        projected={key: projection.c[key] for key in target.fields if key in projection.c},
    )


def dim_of(column: str) -> int:
    return 0 if column == "o0" else int(column[1:])


def grouping_mask(group_columns: Sequence[str], s: frozenset[int]) -> int:
    """PostgreSQL's GROUPING(c1, ..., cn): bit (n - 1 - i) set when ci is rolled up."""
    mask = 0
    for column in group_columns:
        mask = (mask << 1) | (0 if dim_of(column) in s else 1)
    return mask
