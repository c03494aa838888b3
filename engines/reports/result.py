"""Reshape the grouped rows of a pivot query into a matrix, with drill-down filters.

:func:`reshape` takes the rows of :attr:`CompiledPivot.statement` (one per group of every
grouping set) and builds a :class:`PivotResult`: row and column headers, one cell per
row x column with every measure, the row/column/grand totals and subtotals as the database
computed them. A cell's *coordinates* are its row header's and column header's ``keys`` (a
prefix for a subtotal, empty for a total; ``other`` for the top-N "Other" row): from them
:func:`drill` builds its :class:`DrillDown` — the condition selecting exactly the records
that cell counts — one cell at a time; ``reshape(..., drill=True)`` puts one in every cell
and total (a tenfold cost on pivots of thousands of cells, so only where needed). Derived
measures (percent of total, ratio, difference) are computed here from database aggregates
of the *same* group (never by re-adding cells).

A drill-down is JsonLogic over the source form (``filter``) plus, for dimensions reached
through a relation, conditions on the related record (``related``: the record's relation
field points — or does not point — to a live record of the target form matching a
JsonLogic filter). :func:`drill_down_condition` compiles it to SQL.
"""

from __future__ import annotations

import calendar
import json
import math
import re
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.sql.elements import ColumnElement

from formloom.engines.forms import FormSpec, label_text
from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.sql import (
    MAX_LIST_VALUES,
    Dialect,
    FilterTarget,
    bin_width_problem,
    compile_filter,
)

from .compiled import (
    CompiledPivot,
    DimPlan,
    PivotError,
    ReportTarget,
    grouping_mask,
    records_filter_target,
)
from .spec import (
    DISTRIBUTION_OPS,
    SEQUENCE_OPS,
    WEEK_STARTS,
    Measure,
    SortKey,
    bin_edge,
    period_dimension,
    previous_period,
    split_filter,
    to_date_key,
)

__all__ = [
    "Cell",
    "DrillDown",
    "Header",
    "PivotResult",
    "RelatedCondition",
    "drill",
    "drill_down_condition",
    "kept_values",
    "reshape",
]

#: ``having`` reads no clock; a fixed one keeps it from reading the real one.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class HeaderWords:
    """The words header labels are made of besides the app's own labels."""

    other: str
    empty: str
    yes: str
    no: str
    weekdays: tuple[str, ...]
    week_of: str


HEADER_WORDS = {
    "en": HeaderWords("Other", "(empty)", "Yes", "No", WEEKDAYS, "Week of {}"),
    "zh-CN": HeaderWords(
        "其他",
        "（空）",
        "是",
        "否",
        ("星期一", "星期二", "星期三", "星期四", "星期五", "星期六", "星期日"),
        "{} 起的一周",
    ),  # fmt: skip
}
Number = int | float


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class RelatedCondition(_Out):
    """The record's relation field ``via`` points (``exists``) — or does not — to a live
    record of ``form`` for which ``filter`` holds."""

    via: str = Field(description="Relation field of the source form.")
    form: str = Field(description="Target form of the relation.")
    filter: Any = Field(description="JsonLogic over the target form.")
    exists: bool = Field(default=True, description="False: no such related record.")


class DrillDown(_Out):
    """The records behind a cell: ``filter`` over the source form AND every ``related``."""

    form: str
    filter: Any = Field(default=None, description="JsonLogic over the source form.")
    related: list[RelatedCondition] = Field(default_factory=list)


class Header(_Out):
    """A row or column header: one value per dimension (a prefix for subtotals)."""

    keys: list[Any] = Field(description="Grouped values (null: empty; see 'other').")
    labels: list[str]
    other: bool = Field(default=False, description="The top-N 'other' group.")
    subtotal: bool = Field(
        default=False, description="A subtotal row or column (its keys are a prefix)."
    )


class Cell(_Out):
    values: dict[str, Number | str | None]
    drill_down: DrillDown | None = Field(
        default=None,
        description="Only when asked for (reshape(..., drill=True)); otherwise a cell's "
        "coordinates are its row's and column's header keys, and drill() gives its records.",
    )


class PivotResult(_Out):
    row_dimensions: list[str]
    column_dimensions: list[str]
    measures: list[str]
    rows: list[Header]
    columns: list[Header]
    cells: list[list[Cell]] = Field(description="cells[row][column].")
    row_totals: list[Cell] | None = Field(
        default=None, description="Per row: all columns together."
    )
    column_totals: list[Cell] | None = Field(
        default=None, description="Per column: all rows together."
    )
    grand_total: Cell | None = None
    rows_left_out: int = Field(
        default=0,
        description="Innermost row groups not listed because of 'having' or "
        "'top_per_group' (the totals still count their records).",
    )


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):  # PostgreSQL numeric
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _dimension_value(plan: DimPlan, value: Any, fiscal: bool = False) -> Any:
    if value is None:
        return None
    if plan.ref.field_type == "boolean" and plan.kind == "value":
        return bool(value)  # SQLite's json_extract gives 0/1
    if plan.kind in ("bins", "width") or plan.dimension.bucket in ("weekday", "hour"):
        return int(value)
    if isinstance(value, datetime) and plan.kind == "bucket":  # PostgreSQL's date_trunc
        key = _bucket_key(value, plan.dimension.bucket or "day")
        return f"FY{key}" if fiscal and plan.dimension.bucket in ("quarter", "year") else key
    return _plain(value)


def _bucket_key(start: datetime, bucket: str) -> str:
    """The key of the bucket starting at ``start``, as SQLite's text and the drill-downs
    write it: ``2025-01-06`` (day; week: its Monday), ``2025-01``, ``2025-Q1``, ``2025``."""
    if bucket in ("day", "week"):
        return start.date().isoformat()
    if bucket == "month":
        return f"{start.year:04d}-{start.month:02d}"
    if bucket == "quarter":
        return f"{start.year:04d}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year:04d}"


def distribution(op: str, values: Sequence[Any], p: float | None = None) -> float | None:
    """A median, percentile (linear interpolation between the closest ranks, as
    PostgreSQL's ``percentile_cont`` and pandas' ``quantile``) or sample standard deviation
    (``stddev_samp``, pandas' ``std``) of the numbers among ``values`` (nulls skipped);
    None when there are none (or fewer than two, for a deviation)."""
    numbers = sorted(float(v) for v in values if isinstance(v, int | float))
    if op == "stddev":
        return statistics.stdev(numbers) if len(numbers) >= 2 else None
    if not numbers:
        return None
    fraction = 0.5 if op == "median" else float(p if p is not None else 0.5)
    position = fraction * (len(numbers) - 1)
    below = math.floor(position)
    above = min(below + 1, len(numbers) - 1)
    return numbers[below] + (numbers[above] - numbers[below]) * (position - below)


def _count(value: Any) -> int:
    return 0 if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _measure_reader(measure: Measure) -> Callable[[Any], Any]:
    """:func:`_measure_value` for one measure, its kind decided once (it runs per group)."""
    if measure.op in ("count", "count_distinct"):
        return _count
    if measure.op in ("sum", "avg"):
        return _float
    return lambda value: _measure_value(measure, value)


def _measure_value(measure: Measure, value: Any) -> Any:
    if measure.op in DISTRIBUTION_OPS and isinstance(value, str):
        # SQLite: the group's values as a JSON array (query.aggregate)
        return distribution(measure.op, json.loads(value), measure.p)
    if value is None:
        return 0 if measure.op in ("count", "count_distinct") else None
    if measure.op in ("count", "count_distinct"):
        return int(value)
    if measure.op in ("sum", "avg") or measure.op in DISTRIBUTION_OPS:
        return float(value)
    return _plain(value)


_GroupKey = tuple[Any, ...]  # ((value, other), ...) per dim of the set, in dim order


def _parse(
    rows: Sequence[Sequence[Any]],
    query: CompiledPivot,
    groups: dict[frozenset[int], dict[_GroupKey, dict[str, Any]]],
    *,
    other_at: int | None = None,
    raw_keys: dict[_GroupKey, tuple[Any, ...]] | None = None,
) -> None:
    """Read the rows of ``query.statement`` (or of :meth:`.query.PivotQuery.group_other`:
    ``other_at``, the innermost row dimension's index, is then every group's "Other") into
    ``groups``; ``raw_keys``: the innermost row groups' keys -> the raw values of the row
    dimensions (and of top-N's flag) as the database returned them."""
    spec = query.spec
    dims = query.dims
    top = spec.top is not None
    width = len(dims) + (1 if top else 0)
    branch_sets = {(b.number, _mask_of(b.columns, s)): s for b in query.branches for s in b.sets}
    # a dimension's values repeat across rows and sets: each raw value is converted once,
    # to its (value, other) pair; where a row holds a dimension (d0, o0 with top-N, d1...)
    seen: list[dict[Any, tuple[Any, bool]]] = [{} for _ in dims]
    seen_other: dict[Any, tuple[Any, bool]] = {}
    at = {d.index: 2 + d.index + (1 if top and d.index > 0 else 0) for d in dims}
    set_dims = {
        s: [(at[d.index], d, seen[d.index]) for d in dims if d.index in s] for s in query.sets
    }
    row_set = frozenset(d.index for d in dims if d.axis == "rows")
    raw_end = 2 + len(row_set) + (1 if top else 0)
    fiscal = spec.fiscal_year_start != 1
    measure_keys = [m.key for m in query.base_measures]
    readers = [_measure_reader(m) for m in query.base_measures]
    first, end = 2 + width, 2 + width + len(readers)
    for row in rows:
        s = branch_sets[(row[0], row[1])]
        parts = []
        for position, d, known in set_dims[s]:
            if d.index == other_at:
                parts.append((None, True))
                continue
            raw = row[position]
            if top and d.index == 0 and row[3]:  # the top-N "Other" group
                known = seen_other
            try:
                pair = known[raw]
            except KeyError:
                pair = known[raw] = (_dimension_value(d, raw, fiscal), known is seen_other)
            except TypeError:  # unhashable: not a grouped value, convert every time
                pair = (_dimension_value(d, raw, fiscal), known is seen_other)
            parts.append(pair)
        read = [reader(v) for reader, v in zip(readers, row[first:end], strict=True)]
        key = tuple(parts)
        groups[s][key] = dict(zip(measure_keys, read, strict=True))
        if raw_keys is not None and s == row_set:
            raw_keys[key] = tuple(row[2:raw_end])


def reshape(
    rows: Sequence[Sequence[Any]],
    query: CompiledPivot,
    locale: str = "en",
    *,
    drill: bool = False,
    titles: Mapping[int, Mapping[str, str]] | None = None,
    others: Sequence[Sequence[Any]] | None = None,
) -> PivotResult:
    """The matrix of a pivot from the rows of ``query.statement``; with ``drill`` every cell
    and total carries its drill-down (costly on large pivots: :func:`drill` builds one from
    a cell's coordinates instead). ``titles``: per dimension index, a related record's id
    -> its title, the label of a relation dimension's header (and what ``sort: label``
    sorts by); the id stays its key. ``others``: with ``top_per_group`` and its ``other``,
    the rows of ``query.group_other(shown_rows(rows, query))`` — each group's "Other" row
    (without them there is none).

    Raises :class:`PivotError` when the matrix would have more than ``max_cells`` cells.
    """
    if len(rows) >= query.limit:
        raise _too_large(query, None)
    spec = query.spec
    dims = query.dims
    groups: dict[frozenset[int], dict[_GroupKey, dict[str, Any]]] = {s: {} for s in query.sets}
    _parse(rows, query, groups)
    if others:
        inner = max(d.index for d in dims if d.axis == "rows")
        _parse(others, query, groups, other_at=inner)
    week_start = WEEK_STARTS[spec.week_start]
    row_dims = [d for d in dims if d.axis == "rows"]
    col_dims = [d for d in dims if d.axis == "columns"]
    full = frozenset(d.index for d in dims)
    row_keys = sorted(
        {k[: len(row_dims)] for k in groups[full]},
        key=lambda k: _sort_key(k, row_dims, week_start),
    )
    col_keys = sorted(
        {k[len(row_dims) :] for k in groups[full]},
        key=lambda k: _sort_key(k, col_dims, week_start),
    )
    row_keys = _filled(row_keys, row_dims, query.max_cells)
    col_keys = _filled(col_keys, col_dims, query.max_cells)
    if max(len(row_keys), 1) * max(len(col_keys), 1) > query.max_cells:
        raise _too_large(query, len(row_keys) * len(col_keys))
    builder = _Shaper(query, groups, locale, drill=drill, titles=titles)
    row_index = frozenset(d.index for d in row_dims)
    row_keys = builder.order_rows(row_keys, row_dims)
    if spec.column_sort is not None:
        col_keys = builder.order_rows(col_keys, col_dims, spec.column_sort)
    left_out = 0
    if spec.having is not None or spec.top_per_group is not None:
        kept_rows = builder.chosen_rows(row_keys, row_dims)
        left_out = sum(not (k and k[-1][1]) for k in row_keys) - sum(
            not (k and k[-1][1]) for k in kept_rows
        )
        row_keys = kept_rows
    # columns in label order, each group followed by its subtotal column when asked for
    column_entries = builder.with_subtotals(col_keys, col_dims)
    row_entries = builder.with_subtotals(row_keys, row_dims)
    # subtotal rows and columns are cells too
    if max(len(row_entries), 1) * max(len(column_entries), 1) > query.max_cells:
        raise _too_large(query, len(row_entries) * len(column_entries))
    col_sets = {
        length: frozenset(d.index for d in col_dims[:length]) for length in range(len(col_dims) + 1)
    }
    headers: list[Header] = []
    cells: list[list[Cell]] = []
    row_totals: list[Cell] = []
    have_row_totals = spec.totals and row_index in groups
    column_keys = [ck for ck, _ in column_entries]
    for key, subtotal in row_entries:
        prefix_dims = row_dims[: len(key)]
        headers.append(builder.header(key, prefix_dims, subtotal=subtotal))
        row_set = frozenset(d.index for d in prefix_dims)
        cells.append(builder.row_cells(row_set, key, column_keys, col_sets))
        if have_row_totals:
            row_totals.append(builder.cell(row_set, key))
    columns = [builder.header(ck, col_dims[: len(ck)], subtotal=sub) for ck, sub in column_entries]
    column_totals = None
    grand = None
    if spec.totals:
        column_totals = [builder.cell(col_sets[len(ck)], ck) for ck, _ in column_entries]
        grand = builder.cell(frozenset(), ())
    sequences = [m for m in spec.measures if m.op in SEQUENCE_OPS]
    if sequences:
        data_rows = [i for i, header in enumerate(headers) if not header.subtotal]
        for j in range(len(column_entries)):
            ends = _sequences(sequences, [cells[i][j] for i in data_rows])
            if column_totals is not None:
                _sequence_total(sequences, column_totals[j], ends)
        ends = {}
        if have_row_totals:
            ends = _sequences(sequences, [row_totals[i] for i in data_rows])
        if grand is not None:
            _sequence_total(sequences, grand, ends)
    return PivotResult(
        row_dimensions=[_dimension_label(d, query) for d in row_dims],
        column_dimensions=[_dimension_label(d, query) for d in col_dims],
        measures=[m.key for m in spec.measures],
        rows=headers,
        columns=columns,
        cells=cells,
        row_totals=row_totals if have_row_totals else None,
        column_totals=column_totals,
        grand_total=grand,
        rows_left_out=left_out,
    )


def _sequences(measures: Sequence[Measure], column: Sequence[Cell]) -> dict[str, Any]:
    """Running totals, ranks, moving averages and cumulative percents down one column of
    cells (the rows in their order, subtotal rows left out), as pandas computes them over
    the column's values: ``fillna(0).cumsum()``; ``rank(method="min", ascending=False)`` (1
    for the largest, equal values sharing the best rank, an empty value unranked);
    ``rolling(window, min_periods=1).mean()`` (the values present among this row and the
    ``window - 1`` before it; empty when there are none); ``fillna(0).cumsum() / sum()``
    times ``scale`` (empty when the column sums to 0). Returns each measure's value for
    the column's totals cell: the run's end (a running total's last value, 100 % of a
    cumulative percent), nothing for ranks and moving averages."""
    ends: dict[str, Any] = {}
    for m in measures:
        assert m.of is not None
        values = [cell.values.get(m.of) for cell in column]
        numbers = [v if isinstance(v, int | float) else None for v in values]
        if m.op in ("running_total", "cumulative_percent"):
            whole = sum(v for v in numbers if v is not None)
            running: float | int = 0
            for cell, value in zip(column, numbers, strict=True):
                if value is not None:
                    running += value
                if m.op == "running_total":
                    cell.values[m.key] = running
                else:
                    cell.values[m.key] = running / whole * m.scale if whole else None
            if m.op == "running_total":
                ends[m.key] = whole
            else:
                ends[m.key] = float(m.scale) if whole else None
        elif m.op == "moving_average":
            assert m.window is not None
            for i, cell in enumerate(column):
                present = [v for v in numbers[max(0, i - m.window + 1) : i + 1] if v is not None]
                cell.values[m.key] = sum(present) / len(present) if present else None
            ends[m.key] = None
        else:
            present = sorted((v for v in numbers if v is not None), reverse=True)
            first: dict[float | int, int] = {}
            for place, value in enumerate(present, start=1):
                first.setdefault(value, place)
            for cell, value in zip(column, numbers, strict=True):
                cell.values[m.key] = first[value] if value is not None else None
            ends[m.key] = None
    return ends


def _sequence_total(measures: Sequence[Measure], total: Cell, ends: Mapping[str, Any]) -> None:
    """A totals cell below (or beside) a run: the run's end (:func:`_sequences`); a
    running total ends at the total of what it reads, as the database computed it."""
    for m in measures:
        assert m.of is not None
        if m.op == "running_total":
            value = total.values.get(m.of)
            total.values[m.key] = value if isinstance(value, int | float) else None
        else:
            total.values[m.key] = ends.get(m.key)


def periods(first: str, last: str, bucket: str, limit: int) -> list[str]:
    """The keys of the ``bucket`` periods from ``first`` to ``last`` (as :func:`_bucket_key`
    writes them), at most ``limit`` of them."""
    if first.startswith("FY") and last.startswith("FY"):  # fiscal: numbered like calendar
        return ["FY" + key for key in periods(first[2:], last[2:], bucket, limit)]
    out: list[str] = []
    if bucket in ("day", "week"):
        day, end = date.fromisoformat(first), date.fromisoformat(last)
        step = timedelta(days=7 if bucket == "week" else 1)
        while day <= end and len(out) < limit:
            out.append(day.isoformat())
            day += step
        return out
    if bucket == "year":
        return [f"{y:04d}" for y in range(int(first), int(last) + 1)][:limit]
    per_year = 4 if bucket == "quarter" else 12
    separator = "-Q" if bucket == "quarter" else "-"

    def number(key: str) -> int:
        year, part = key.split(separator)
        return int(year) * per_year + int(part) - 1

    for n in range(number(first), number(last) + 1):
        if len(out) >= limit:
            break
        year, part = divmod(n, per_year)
        out.append(f"{year:04d}{separator}{part + 1:0{1 if bucket == 'quarter' else 2}d}")
    return out


def _filled(keys: list[_GroupKey], dims: Sequence[DimPlan], limit: int) -> list[_GroupKey]:
    """``keys`` with the empty periods between the first and the last added, when the axis'
    one dimension asks for ``fill``."""
    if len(dims) != 1 or not dims[0].dimension.fill or dims[0].dimension.bucket is None:
        return keys
    present = sorted(str(k[0][0]) for k in keys if k[0][0] is not None and not k[0][1])
    if len(present) < 2:
        return keys
    have = set(keys)
    extra = [
        ((key, False),)
        for key in periods(present[0], present[-1], dims[0].dimension.bucket, limit + 1)
        if ((key, False),) not in have
    ]
    return sorted([*keys, *extra], key=lambda k: _sort_key(k, dims))


def _too_large(query: CompiledPivot, cells: int | None) -> PivotError:
    size = f"{cells} cells" if cells is not None else "too many cells"
    message = (
        f"this pivot would produce {size}, more than the limit of {query.max_cells}; "
        "filter it, use coarser buckets or fewer dimensions"
    )
    return PivotError(message, [("", "too_many_cells", message)])


def _mask_of(columns: Sequence[str], s: frozenset[int]) -> int:
    return grouping_mask(columns, s)


def _dimension_label(plan: DimPlan, query: CompiledPivot) -> str:
    """The dimension's label, else the field's (``Patient / Gender`` through a relation)."""
    if plan.dimension.label is not None:
        return label_text(plan.dimension.label)
    form = query.forms[query.spec.form]

    def title(spec: FormSpec, key: str) -> str:
        field = spec.field(key)
        return field.title if field is not None else key.replace("_", " ").capitalize()

    if plan.ref.via is None:
        return title(form, plan.ref.key)
    assert plan.ref.target_form is not None
    target = query.forms[plan.ref.target_form]
    return f"{title(form, plan.ref.via)} / {title(target, plan.ref.key)}"


def _sort_key(key: _GroupKey, dims: Sequence[DimPlan], week_start: int = 0) -> tuple[Any, ...]:
    parts: list[Any] = []
    for plan, (value, other) in zip(dims, key, strict=False):
        if week_start and plan.dimension.bucket == "weekday" and isinstance(value, int):
            value = (value - 1 - week_start) % 7  # the week's first day first
        parts.append(_value_order(value, other))
    return tuple(parts)


def _value_order(value: Any, other: bool) -> tuple[int, Any, str]:
    if other:
        return (3, 0, "")
    if value is None:
        return (2, 0, "")
    if isinstance(value, bool):
        return (0, int(value), "")
    if isinstance(value, int | float):
        return (0, value, "")
    return (1, 0, str(value))


class _Shaper:
    def __init__(
        self,
        query: CompiledPivot,
        groups: dict[frozenset[int], dict[_GroupKey, dict[str, Any]]],
        locale: str = "en",
        *,
        drill: bool = False,
        titles: Mapping[int, Mapping[str, str]] | None = None,
    ) -> None:
        self.query = query
        self.titles = titles or {}
        self.locale = locale
        self.words = HEADER_WORDS.get(locale, HEADER_WORDS["en"])
        self.spec = query.spec
        self.groups = groups
        self.form = query.forms[query.spec.form]
        self.base_only = [m.key for m in query.base_measures] == [m.key for m in self.spec.measures]
        self.no_groups: dict[_GroupKey, dict[str, Any]] = {}
        self.empty: dict[str, Any] = {
            m.key: (0 if m.op in ("count", "count_distinct") else None) for m in query.base_measures
        }
        self.driller: _Driller | None = None
        where = period_dimension(self.spec)
        self.period = None
        if where is not None:
            axis_dims = [d for d in query.dims if d.axis == where[0]]
            self.period = axis_dims[where[1]]
        #: With top_per_group: each outer group's key -> its listed innermost values, and
        #: every innermost value it holds (a multiselect's "Other" is the rest of them)
        self.group_kept: dict[_GroupKey, list[Any]] = {}
        self.group_present: dict[_GroupKey, list[Any]] = {}
        #: per dimension: its field's options as value -> (place, label), None without any
        self._options: dict[int, dict[Any, tuple[int, str]] | None] = {}
        if drill:
            kept = {k[0][0] for s, g in groups.items() if 0 in s for k in g if not k[0][1]}
            self.driller = _Driller(query, kept, self.group_kept, self.group_present)

    # -- ordering ----------------------------------------------------------------------

    def order_rows(
        self, keys: list[_GroupKey], dims: Sequence[DimPlan], sort: SortKey | None = None
    ) -> list[_GroupKey]:
        """``keys`` (rows, or columns with the spec's ``column_sort``) in ``sort``'s order,
        at every level: by label, by the options' order in the form, or by a measure of
        the group (a row's over all columns, a column's over all rows)."""
        sort = sort or self.spec.sort
        by = sort.by
        reverse = sort.direction == "desc"
        if by in ("label", "options"):
            # by what the reader sees (an option's label, not its stored value), or where
            # the form lists the option, either way; the empty group and "Other" come last
            # in both directions
            def labelled(key: _GroupKey) -> tuple[Any, ...]:
                out: list[Any] = []
                for plan, (value, other) in zip(dims, key, strict=False):
                    special = 2 if other else 1 if value is None else 0
                    order = self.label_order(plan, value, by == "options")
                    out.append((special, _Reversed(order) if reverse else order))
                return tuple(out)

            return sorted(keys, key=labelled)

        def level_value(prefix: _GroupKey) -> tuple[int, float, tuple[Any, ...]]:
            s = frozenset(d.index for d in dims[: len(prefix)])
            values = self.values(s, prefix)
            value = values.get(by)
            label_order = _sort_key(
                prefix[-1:], dims[len(prefix) - 1 :], WEEK_STARTS[self.spec.week_start]
            )
            if prefix[-1][1]:  # "Other" is no row of its own rank: last
                return (2, 0.0, label_order)
            if not isinstance(value, int | float):
                return (1, 0.0, label_order)
            return (0, -value if reverse else value, label_order)

        return sorted(keys, key=lambda k: tuple(level_value(k[: i + 1]) for i in range(len(k))))

    def chosen_rows(self, keys: list[_GroupKey], dims: Sequence[DimPlan]) -> list[_GroupKey]:
        """The innermost row groups ``having`` admits (JsonLogic over the row's measures, all
        columns together — the condition language of every filter, its null semantics
        included), then, with ``top_per_group``, the first ``n`` of each group of the outer
        dimensions by the measure (empty values last, equal ones in label order). Kept in
        their order; subtotal and total cells are left as the database computed them."""
        s = frozenset(d.index for d in dims)
        # each group's "Other" (top_per_group's other) is listed while the group lists a row
        others = {k[:-1]: k for k in keys if k and k[-1][1]}
        keys = [k for k in keys if not (k and k[-1][1])]
        self.group_present.clear()  # the driller reads the same dict
        for k in keys:
            self.group_present.setdefault(k[:-1], []).append(k[-1][0])
        if self.spec.having is not None:
            having = self.spec.having

            def admitted(key: _GroupKey) -> bool:
                try:
                    return truthy(evaluate(having, self.values(s, key), now=_EPOCH))
                except (LogicError, RecursionError, ValueError, OverflowError):
                    return False  # a condition that cannot be worked out admits nothing

            keys = [k for k in keys if admitted(k)]
        top = self.spec.top_per_group
        if top is None:
            return keys
        largest = top.keep == "largest"
        siblings: dict[_GroupKey, list[_GroupKey]] = {}
        for key in keys:
            siblings.setdefault(key[:-1], []).append(key)
        chosen: set[_GroupKey] = set()
        for group in siblings.values():

            def rank(key: _GroupKey) -> tuple[int, float, tuple[Any, ...]]:
                value = self.values(s, key).get(top.by)
                label = self.label_order(dims[-1], key[-1][0])
                if not isinstance(value, int | float) or key[-1][1]:
                    return (1, 0.0, label)
                return (0, -value if largest else value, label)

            chosen.update(sorted(group, key=rank)[: top.n])
        out = [k for k in keys if k in chosen]
        self.group_kept.clear()  # the driller reads the same dict
        for k in out:
            self.group_kept.setdefault(k[:-1], []).append(k[-1][0])
        if not others:
            return out
        # the group's "Other" right after its last row (before its subtotal)
        placed: list[_GroupKey] = []
        for i, k in enumerate(out):
            placed.append(k)
            if (i + 1 == len(out) or out[i + 1][:-1] != k[:-1]) and k[:-1] in others:
                placed.append(others[k[:-1]])
        return placed

    def with_subtotals(
        self, keys: list[_GroupKey], dims: Sequence[DimPlan]
    ) -> list[tuple[_GroupKey, bool]]:
        if not self.spec.subtotals or len(dims) < 2:
            return [(k, False) for k in keys]
        out: list[tuple[_GroupKey, bool]] = []
        previous: _GroupKey | None = None
        pending: list[_GroupKey] = []
        for key in keys:
            for level in range(len(dims) - 1, 0, -1):
                if previous is not None and previous[:level] != key[:level]:
                    prefix = previous[:level]
                    if prefix not in pending:
                        pending.append(prefix)
            out.extend((p, True) for p in pending)
            pending = []
            out.append((key, False))
            previous = key
        if previous is not None:
            out.extend((previous[:level], True) for level in range(len(dims) - 1, 0, -1))
        return out

    # -- values ------------------------------------------------------------------------

    def base_values(self, s: frozenset[int], key: _GroupKey) -> dict[str, Any]:
        """The database's values of a group; of a group without records, the empty values
        (one dict shared by every such cell: nothing changes a cell's values once built —
        derived measures are computed into a copy, :meth:`values`)."""
        found = self.groups.get(s, self.no_groups).get(key)
        return self.empty if found is None else found

    def row_cells(
        self,
        row_set: frozenset[int],
        key: _GroupKey,
        column_keys: Sequence[_GroupKey],
        col_sets: Mapping[int, frozenset[int]],
    ) -> list[Cell]:
        """One row's cells (``key``, over the dimensions ``row_set``), one per column key."""
        if self.driller is not None or not self.base_only:
            return [self.cell(row_set | col_sets[len(ck)], key + ck) for ck in column_keys]
        # the common case, thousands of times: the database's values as they are
        found = {
            length: self.groups.get(row_set | s, self.no_groups) for length, s in col_sets.items()
        }
        empty = self.empty
        return [_bare_cell(found[len(ck)].get(key + ck, empty)) for ck in column_keys]

    def values(
        self, s: frozenset[int], key: _GroupKey, only: Sequence[str] | None = None
    ) -> dict[str, Any]:
        """The measures of one group (``only``: just these and what they are computed from)."""
        if self.base_only:  # nothing derived: the database's values as they are
            return self.base_values(s, key)
        out = dict(self.base_values(s, key))
        measures = {m.key: m for m in self.spec.measures}
        ordered = [i for i in sorted(s)]

        def compute(name: str, stack: tuple[str, ...] = ()) -> Any:
            if name in out:
                return out[name]
            m = measures[name]
            value: Any = None
            if m.op == "ratio":
                assert m.numerator is not None and m.denominator is not None
                a, b = compute(m.numerator), compute(m.denominator)
                if isinstance(a, int | float) and isinstance(b, int | float) and b != 0:
                    value = a / b * m.scale
            elif m.op == "difference":
                assert m.minuend is not None and m.subtrahend is not None
                a, b = compute(m.minuend), compute(m.subtrahend)
                if isinstance(a, int | float) and isinstance(b, int | float):
                    value = a - b
            elif m.op in SEQUENCE_OPS:
                value = None  # down the rows, once the matrix stands (_sequences)
            elif m.op == "period_over_period":
                value = self.period_change(m, s, key, compute)
            elif m.op == "percent_of_total":
                assert m.of is not None
                a = compute(m.of)
                dims = {d.index: d for d in self.query.dims}
                if m.within == "all":
                    keep: set[int] = set()
                elif m.within == "row":
                    keep = {i for i in s if dims[i].axis == "rows"}
                else:
                    keep = {i for i in s if dims[i].axis == "columns"}
                ref_set = frozenset(keep)
                ref_key = tuple(k for i, k in zip(ordered, key, strict=True) if i in keep)
                total = self.values(ref_set, ref_key).get(m.of) if ref_set != s else a
                if isinstance(a, int | float) and isinstance(total, int | float) and total:
                    value = a / total * m.scale
            out[name] = value
            return value

        if only is not None:
            return {name: compute(name) for name in only}
        for m in self.spec.measures:
            compute(m.key)
        return {m.key: out[m.key] for m in self.spec.measures}

    def period_change(
        self, m: Measure, s: frozenset[int], key: _GroupKey, compute: Callable[[str], Any]
    ) -> Any:
        """Measure ``m.of`` of this group against the same group one period (or a year)
        before: the group whose period dimension's key is the earlier period's, all other
        keys equal — looked up among the database's groups, so the earlier period need not
        be a row of the matrix (but its records must be in the report). None in a total or
        subtotal without the period dimension, and for the empty and "Other" groups."""
        plan = self.period
        assert m.of is not None
        if plan is None or plan.index not in s:
            return None
        at = sorted(s).index(plan.index)
        value, other = key[at]
        if value is None or other:
            return None
        earlier = previous_period(str(value), plan.dimension.bucket or "month", m.offset)
        before = (*key[:at], (earlier, False), *key[at + 1 :])
        if m.to_date:
            name = to_date_key(m.of)
            now, then = self.base_values(s, key)[name], self.base_values(s, before)[name]
        else:
            now, then = compute(m.of), self.values(s, before, [m.of])[m.of]
        if m.compare == "previous":
            return then
        if not isinstance(now, int | float) or not isinstance(then, int | float):
            return None
        if m.compare == "difference":
            return now - then
        return (now / then - 1) * m.scale if then else None

    def cell(self, s: frozenset[int], key: _GroupKey) -> Cell:
        if self.driller is None:
            return _bare_cell(self.values(s, key))
        return Cell(values=self.values(s, key), drill_down=self.driller.drill_down(s, key))

    # -- headers and drill-down ----------------------------------------------------------

    def header(self, key: _GroupKey, dims: Sequence[DimPlan], *, subtotal: bool = False) -> Header:
        labels = [self.label(d, v, o) for d, (v, o) in zip(dims, key, strict=False)]
        # built as Header.model_construct would (the values are the shaper's own, of the
        # declared types), without validating each row's header anew
        header = _new(Header)
        _set(
            header,
            "__dict__",
            {
                "keys": [v for v, _ in key],
                "labels": labels,
                "other": any(o for _, o in key),
                "subtotal": subtotal,
            },
        )
        _set(header, "__pydantic_fields_set__", _HEADER_FIELDS)
        _set(header, "__pydantic_extra__", None)
        _set(header, "__pydantic_private__", None)
        return header

    def label_order(
        self, plan: DimPlan, value: Any, by_options: bool = False
    ) -> tuple[int, Any, str]:
        """Where ``value`` sorts by label: an option by its label in the reader's language
        (case folded) — or, ``by_options``, by its place among the field's options —,
        anything else by its value (numbers as numbers, dates as dates)."""
        if value is None:
            return (2, 0, "")
        if by_options and plan.kind in ("value", "tags") and not plan.ref.system:
            options = self.options(plan)
            if options:
                found = _option(options, value)
                if found is not None:
                    return (0, found[0], "")
                # a value the options no longer list: after them, by label
                return (1, 0, self.label(plan, value, False).casefold())
        if plan.dimension.bucket == "weekday" and isinstance(value, int):
            return (0, (value - 1 - WEEK_STARTS[self.spec.week_start]) % 7, "")
        if plan.kind == "value" and isinstance(value, str):
            if value in self.titles.get(plan.index, {}):
                return (1, 0, self.label(plan, value, False).casefold())
            if not plan.ref.system and self.options(plan):
                return (1, 0, self.label(plan, value, False).casefold())
        return _value_order(value, False)

    def options(self, plan: DimPlan) -> dict[Any, tuple[int, str]] | None:
        """The options of ``plan``'s field, value -> (place, label in the reader's
        language, "" for none), the first of equal values winning; None for a field without
        options. Worked out once per dimension (labels and label sorts ask per row)."""
        if plan.index in self._options:
            return self._options[plan.index]
        form = self.query.forms[plan.ref.target_form or self.spec.form]
        listed = getattr(form.field(plan.ref.key), "options", None)
        found: dict[Any, tuple[int, str]] | None = None
        if listed:
            found = {}
            for place, option in enumerate(listed):
                found.setdefault(option.value, (place, label_text(option.label, self.locale)))
        self._options[plan.index] = found
        return found

    def label(self, plan: DimPlan, value: Any, other: bool) -> str:
        if other:
            return self.words.other
        if value is None:
            return self.words.empty
        text = self.value_label(plan, value)
        if plan.kind in ("value", "tags") and text in (self.words.empty, self.words.other):
            # a stored "(empty)" or "Other" is not the empty group nor top-N's rest
            return f"\u201c{text}\u201d"
        return text

    def value_label(self, plan: DimPlan, value: Any) -> str:
        title = self.titles.get(plan.index, {}).get(value) if isinstance(value, str) else None
        if title is not None:
            return title
        d = plan.dimension
        if plan.kind == "bins":
            assert d.bins is not None
            edges = d.bins
            if value == 0:
                return f"< {_fmt(edges[0])}"
            if value == len(edges):
                return f"≥ {_fmt(edges[-1])}"
            return f"[{_fmt(edges[value - 1])}, {_fmt(edges[value])})"
        if plan.kind == "width":
            assert d.bin_width is not None
            low, high = bin_edge(value, d.bin_width), bin_edge(value + 1, d.bin_width)
            return f"[{_fmt(low)}, {_fmt(high)})"
        if plan.kind == "bucket":
            if d.bucket == "weekday":
                return self.words.weekdays[int(value) - 1]
            if d.bucket == "hour":
                return f"{int(value):02d}:00"
            if d.bucket == "week":
                if self.spec.week_start != "monday":  # not an ISO week: named by its first day
                    return self.words.week_of.format(value)
                year, week, _ = date.fromisoformat(str(value)).isocalendar()
                return f"{year}-W{week:02d}"
            if d.bucket == "quarter" and str(value).startswith("FY"):
                return str(value).replace("-Q", " Q")
            return str(value)
        if isinstance(value, bool):
            return self.words.yes if value else self.words.no
        options = self.options(plan)
        if options:
            found = _option(options, value)
            if found is not None:
                return found[1] or str(value)
        return str(value)


_VALUES_ONLY = {"values"}
_HEADER_FIELDS = {"keys", "labels", "other", "subtotal"}


def _option(options: Mapping[Any, tuple[int, str]], value: Any) -> tuple[int, str] | None:
    """``value``'s entry among a field's options (by equality, as the stored value
    compares; a value that cannot be a key, a list say, is no option)."""
    try:
        return options.get(value)
    except TypeError:
        return None


_new = object.__new__
_set = object.__setattr__


def _bare_cell(values: dict[str, Any]) -> Cell:
    """A :class:`Cell` without a drill-down, as ``Cell.model_construct`` builds it, minus
    the per-field loop that is a third of reshaping a pivot of thousands of cells."""
    cell = _new(Cell)
    _set(cell, "__dict__", {"values": values, "drill_down": None})
    _set(cell, "__pydantic_fields_set__", _VALUES_ONLY)
    _set(cell, "__pydantic_extra__", None)
    _set(cell, "__pydantic_private__", None)
    return cell


class _Reversed:
    """An order key sorted the other way round (for a descending sort of mixed keys)."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and bool(self.key == other.key)

    __hash__ = None  # type: ignore[assignment]


class _Driller:
    """Drill-downs: the condition selecting the records a cell counts, from the cell's
    coordinates and (with top-N) the kept values of the first row dimension."""

    def __init__(
        self,
        query: CompiledPivot,
        kept: Iterable[Any],
        group_kept: Mapping[_GroupKey, Sequence[Any]] | None = None,
        group_present: Mapping[_GroupKey, Sequence[Any]] | None = None,
    ) -> None:
        self.query = query
        self.spec = query.spec
        self.zone = ZoneInfo(query.time_zone)
        self.kept = sorted(set(kept), key=lambda v: _value_order(v, False))
        #: top_per_group: an outer group's key -> the innermost values it lists (read when
        #: a drill-down is built: the shaper fills it once it has chosen the rows)
        self.group_kept = group_kept if group_kept is not None else {}
        #: ... and every innermost value the group holds (read for a multiselect)
        self.group_present = group_present if group_present is not None else {}
        rows = [d.index for d in query.dims if d.axis == "rows"]
        self.inner = rows[-1] if len(rows) > 1 and self.spec.top_per_group is not None else None

    # -- headers and drill-down ----------------------------------------------------------

    def drill_down(self, s: frozenset[int], key: _GroupKey) -> DrillDown:
        parts: list[Any] = []
        related: list[RelatedCondition] = []
        self.spec_filter(parts, related)
        dims = [d for d in self.query.dims if d.index in s]
        for plan, (value, other) in zip(dims, key, strict=True):
            if other and plan.index == self.inner:  # the group's "Other": not one it lists
                listed = self.group_kept.get(key[: plan.index], ())
                if plan.kind == "tags":
                    # a record counts in Other once per option it has outside the listed
                    # ones: the records with at least one of the group's other options
                    rest = self.group_present.get(key[: plan.index], ())
                    rest = [v for v in rest if v not in listed]
                    self.top_filter(plan, parts, related, other=False, kept=rest)
                else:
                    self.top_filter(plan, parts, related, other=True, kept=listed)
                continue
            if other:
                self.top_filter(plan, parts, related, other=True)
                continue
            rule, exists = self.value_filter(plan, value)
            if plan.ref.via is None:
                parts.append(rule)
            else:
                assert plan.ref.target_form is not None
                related.append(
                    RelatedCondition(
                        via=plan.ref.via, form=plan.ref.target_form, filter=rule, exists=exists
                    )
                )
        top = self.spec.top
        if top is not None and not top.other and 0 not in s:
            # Rolled up over the first dimension: only its kept values were counted.
            self.top_filter(self.query.dims[0], parts, related, other=False)
        rule = None if not parts else parts[0] if len(parts) == 1 else {"and": parts}
        return DrillDown(form=self.spec.form, filter=rule, related=related)

    def spec_filter(self, parts: list[Any], related: list[RelatedCondition]) -> None:
        """The spec's filter: its part over the source form as it is; a part over a related
        form as a condition on the related record. The pivot reads a related record the
        caller may not read (or none) as one with empty fields, so a part that holds for
        empty fields is "no related record where it fails", else "a related record where
        it holds"."""
        split, _ = split_filter(self.spec.filter)
        if split.source is not None:
            parts.append(split.source)
        form = self.query.forms[self.spec.form]
        for via, rule in sorted(split.related.items()):
            target = getattr(form.field(via), "target", None)
            assert isinstance(target, str)
            try:
                holds_when_empty = truthy(evaluate(rule, {}, now=_EPOCH))
            except (LogicError, RecursionError, ValueError, OverflowError):
                holds_when_empty = False
            if holds_when_empty:
                related.append(
                    RelatedCondition(via=via, form=target, filter={"!": rule}, exists=False)
                )
            else:
                related.append(RelatedCondition(via=via, form=target, filter=rule))

    def top_filter(
        self,
        plan: DimPlan,
        parts: list[Any],
        related: list[RelatedCondition],
        *,
        other: bool,
        kept: Sequence[Any] | None = None,
    ) -> None:
        """Add the condition "the first dimension's value is (not) one of the kept ones"
        (or the dimension's value one of ``kept``), written compactly (:meth:`one_of`):
        top-N keeps up to 1,000 values, and a filter may hold at most 300 operations (a
        literal list counts as none)."""
        if kept is None:
            kept = self.kept
        else:
            kept = sorted(set(kept), key=lambda v: _value_order(v, False))
        present = [v for v in kept if v is not None]
        null_kept = None in kept
        if plan.ref.via is None:
            kept = [self.one_of(plan, present)] if present else []
            if null_kept:
                kept.append(self.value_filter(plan, None)[0])
            if kept:
                either = kept[0] if len(kept) == 1 else {"or": kept}
                parts.append({"!": either} if other else either)
            elif not other:
                parts.append({"==": [1, 0]})
            return
        # Through a relation: the related record's value is in K (or the empty group).
        assert plan.ref.target_form is not None
        var = {"var": plan.ref.key}
        inside = self.one_of(plan, present) if present else None
        some: Any = {"!==": [var, None]}
        outside: Any = {"and": [some, {"!": inside}]} if inside is not None else some
        if not null_kept:  # a kept non-null value (other: none of them)
            if inside is None:
                if not other:
                    parts.append({"==": [1, 0]})
                return
            rule, exists = inside, not other
        else:  # a non-null value outside K (other) / none such (kept, empty included)
            rule, exists = outside, other
        related.append(
            RelatedCondition(
                via=plan.ref.via, form=plan.ref.target_form, filter=rule, exists=exists
            )
        )

    def one_of(self, plan: DimPlan, values: Sequence[Any]) -> Any:
        """JsonLogic: the dimension's value is one of ``values`` (none null), in a few
        operations whatever their number where it can: plain values as one ``in`` with a
        literal list; a date's days likewise; bins of a width as their bin numbers in one
        list (:meth:`bins_in`); buckets and edge bins as ranges, neighbours merged into one
        range (a run of 30 kept days is one range)."""
        var = {"var": plan.ref.key}
        d = plan.dimension
        plain = all(isinstance(v, str) or (_is_number(v)) for v in values)
        if plan.kind == "value" and plain:
            return {"in": [var, list(values)]}
        if plan.kind == "bucket" and d.bucket == "day" and plan.ref.field_type == "date":
            return {"in": [var, [str(v) for v in values]]}
        ranges: list[tuple[Any, Any]] = []
        if plan.kind == "bucket" and d.bucket not in ("weekday", "hour"):
            ranges = sorted(
                _bucket_range(str(v), d.bucket or "day", self.spec.fiscal_year_start)
                for v in values
            )
        elif plan.kind == "width" or plan.kind == "bins":
            ranges = sorted((int(v), int(v) + 1) for v in values)
        if not ranges:
            rules = [self.value_filter(plan, v)[0] for v in values]
            return rules[0] if len(rules) == 1 else {"or": rules}
        merged: list[list[Any]] = []
        for low, high in ranges:
            if merged and merged[-1][1] == low:
                merged[-1][1] = high
            else:
                merged.append([low, high])
        rules = [self.run_filter(plan, low, high) for low, high in merged]
        runs = rules[0] if len(rules) == 1 else {"or": rules}
        if plan.kind == "bucket" and len(merged) > 2:
            days = self.days_in(plan, merged)
            if days is not None and _operations(days) < _operations(runs):
                return days
        if plan.kind == "width":
            binned = self.bins_in(plan, [int(v) for v in values])
            if binned is not None and _operations(binned) < _operations(runs):
                return binned
        return runs

    def bins_in(self, plan: DimPlan, numbers: Sequence[int]) -> Any:
        """Bins of a width as "the bin number is one of these",
        ``{"in": [{"bin_of": [var, width]}, [k1, k2, ...]]}``: 3 operations however
        scattered the bins (a range each is 7: past ~40 scattered kept bins a filter passed
        the 300 allowed), and the bin the cell's own SQL computes (:func:`bin_number` is
        both), where a range compares the value with decimal edges. None when the record
        API could not compile it (a width it does not take, a list past its limit)."""
        width = plan.dimension.bin_width
        if bin_width_problem(width) is not None or len(numbers) > MAX_LIST_VALUES:
            return None
        return {"in": [{"bin_of": [{"var": plan.ref.key}, width]}, sorted(set(numbers))]}

    def days_in(self, plan: DimPlan, runs: Sequence[Sequence[date]]) -> Any:
        """The calendar buckets [low, high) of ``runs`` as "the local day is one of these",
        in a few operations however scattered the runs (one range each is 5 operations:
        past ~60 scattered days a filter passed the 300 allowed): a date's days as one
        list; a datetime's local day as its UTC date and its local weekday — the local day
        is the one of the UTC date, the day before or the day after that falls on that
        weekday, whatever the zone's offset and its changes — so per weekday present, "the
        UTC date is one of these (each kept day, the day before and the day after)". None
        when a list would pass the databases' limit."""
        days = [low + timedelta(days=n) for low, high in runs for n in range((high - low).days)]
        var = {"var": plan.ref.key}
        if plan.ref.field_type == "date":
            if len(days) > MAX_LIST_VALUES:
                return None
            return {"in": [var, [day.isoformat() for day in days]]}
        near: dict[int, set[int]] = {}
        for day in days:
            number = (day - _DAY_ZERO).days
            near.setdefault(day.isoweekday(), set()).update((number - 1, number, number + 1))
        if any(len(numbers) > MAX_LIST_VALUES for numbers in near.values()):
            return None
        utc_day = {"days_between": [_DAY_ZERO.isoformat(), var]}
        rules = [
            {
                "and": [
                    {"==": [{"weekday_of": [var, self.query.time_zone]}, weekday]},
                    {"in": [utc_day, sorted(numbers)]},
                ]
            }
            for weekday, numbers in sorted(near.items())
        ]
        return rules[0] if len(rules) == 1 else {"or": rules}

    def run_filter(self, plan: DimPlan, low: Any, high: Any) -> Any:
        """The values of the buckets (or bin numbers) from ``low`` up to ``high``."""
        if plan.kind == "bucket":
            return self.range_filter(plan, low, high)
        var = {"var": plan.ref.key}
        d = plan.dimension
        conditions: list[Any] = [{"!==": [var, None]}]
        if plan.kind == "width":
            assert d.bin_width is not None
            lower, upper = bin_edge(low, d.bin_width), bin_edge(high, d.bin_width)
            return {"and": [*conditions, {">=": [var, lower]}, {"<": [var, upper]}]}
        assert d.bins is not None
        edges = d.bins
        if low > 0:
            conditions.append({">=": [var, edges[low - 1]]})
        if high - 1 < len(edges):
            conditions.append({"<": [var, edges[high - 1]]})
        return {"and": conditions}

    def value_filter(self, plan: DimPlan, value: Any) -> tuple[Any, bool]:
        """(JsonLogic selecting the records with ``value`` for the dimension, exists)."""
        var = {"var": plan.ref.key}
        d = plan.dimension
        if value is None:
            if plan.kind == "tags":
                return {"is_empty": [var]}, True
            if plan.ref.via is not None:
                return {"!==": [var, None]}, False  # no related record with a value
            return {"===": [var, None]}, True
        present = {"!==": [var, None]}
        if plan.kind == "tags":
            return {"in": [value, var]}, True
        if plan.kind == "bins":
            assert d.bins is not None
            edges = d.bins
            conditions: list[Any] = [present]
            if value > 0:
                conditions.append({">=": [var, edges[value - 1]]})
            if value < len(edges):
                conditions.append({"<": [var, edges[value]]})
            return {"and": conditions}, True
        if plan.kind == "width":
            assert d.bin_width is not None
            if bin_width_problem(d.bin_width) is None:
                # the bin number, computed as the cell's SQL computes it (bin_number)
                return {"===": [{"bin_of": [var, d.bin_width]}, int(value)]}, True
            low, high = bin_edge(value, d.bin_width), bin_edge(value + 1, d.bin_width)
            return {"and": [present, {">=": [var, low]}, {"<": [var, high]}]}, True
        if plan.kind == "bucket":
            return self.bucket_filter(plan, value), True
        return {"===": [var, value]}, True

    def bucket_filter(self, plan: DimPlan, value: Any) -> Any:
        bucket = plan.dimension.bucket
        if bucket in ("weekday", "hour"):
            # No range of time: the wall clock's hour / ISO weekday in the report's zone.
            op = "hour_of" if bucket == "hour" else "weekday_of"
            return {"===": [{op: [{"var": plan.ref.key}, self.query.time_zone]}, int(value)]}
        start, end = _bucket_range(str(value), bucket or "day", self.spec.fiscal_year_start)
        return self.range_filter(plan, start, end)

    def range_filter(self, plan: DimPlan, start: date | datetime, end: date | datetime) -> Any:
        """Local [start, end) as a condition on the stored value."""
        var = {"var": plan.ref.key}
        if plan.ref.field_type == "date":
            return {"and": [{">=": [var, start.isoformat()]}, {"<": [var, end.isoformat()]}]}
        return {"and": [{">=": [var, self.utc(start)]}, {"<": [var, self.utc(end)]}]}

    def utc(self, moment: date | datetime) -> str:
        if isinstance(moment, datetime):
            local = moment.replace(tzinfo=self.zone)
        else:
            local = datetime(moment.year, moment.month, moment.day, tzinfo=self.zone)
        return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


#: The day ``days_between`` counts a datetime's UTC date from in :meth:`_Driller.days_in`.
_DAY_ZERO = date(2000, 1, 1)


def _operations(rule: Any) -> int:
    """The operations of a JsonLogic rule as the records API counts them against its limit
    (each object key; literal lists and values count none)."""
    if isinstance(rule, dict):
        return len(rule) + sum(_operations(v) for v in rule.values())
    if isinstance(rule, list):
        return sum(_operations(v) for v in rule if isinstance(v, dict | list))
    return 0


def kept_values(rows: Sequence[Sequence[Any]], query: CompiledPivot) -> list[Any]:
    """The first row dimension's kept values (top-N) from the rows of ``query.kept``."""
    fiscal = query.spec.fiscal_year_start != 1
    return [_dimension_value(query.dims[0], row[0], fiscal) for row in rows]


def shown_rows(
    rows: Sequence[Sequence[Any]],
    query: CompiledPivot,
    present: dict[tuple[Any, ...], list[Any]] | None = None,
) -> tuple[list[tuple[Any, ...]], dict[tuple[Any, ...], list[Any]]]:
    """With ``top_per_group``: the innermost row groups the pivot lists (``having`` and the
    ranking applied), as the raw values of the row dimensions in the rows of
    ``query.statement`` (what :meth:`.query.PivotQuery.group_other` reads), and per outer group
    (its keys) the innermost values it lists (what :func:`drill` reads for its "Other");
    ``present`` is given every innermost value each group holds (a multiselect's "Other"
    drills into the records with one of those it does not list)."""
    groups: dict[frozenset[int], dict[_GroupKey, dict[str, Any]]] = {s: {} for s in query.sets}
    raw: dict[_GroupKey, tuple[Any, ...]] = {}
    _parse(rows, query, groups, raw_keys=raw)
    row_dims = [d for d in query.dims if d.axis == "rows"]
    builder = _Shaper(query, groups)
    chosen = builder.chosen_rows(list(raw), row_dims)
    listed = {tuple(v for v, _ in k): list(values) for k, values in builder.group_kept.items()}
    if present is not None:
        present.update(
            {tuple(v for v, _ in k): list(values) for k, values in builder.group_present.items()}
        )
    return [raw[k] for k in chosen], listed


def drill(
    query: CompiledPivot,
    row: Sequence[Any],
    column: Sequence[Any],
    *,
    other: bool = False,
    kept: Iterable[Any] = (),
    group_kept: Sequence[Any] | None = None,
    group_present: Sequence[Any] = (),
) -> DrillDown:
    """The drill-down of one cell from its coordinates: its row header's ``keys`` and its
    column header's ``keys`` (a prefix for a subtotal, empty for a total), ``other`` for the
    top-N "Other" row, and — with top-N — the kept values (:func:`kept_values`). The same
    condition :func:`reshape` writes with ``drill=True``.

    With ``top_per_group``'s ``other``, ``group_kept`` (the innermost values the row's outer
    group lists: :func:`shown_rows`) makes the cell its group's "Other" (the row's last key
    is not read).

    Raises :class:`PivotError` (pointers ``/row/<i>``, ``/column/<j>``, ``/other``) for keys
    that are not values of their dimension.
    """
    row_dims = [d for d in query.dims if d.axis == "rows"]
    per_group = query.spec.top_per_group
    if group_kept is not None:
        if per_group is None or not per_group.other or len(row) != len(row_dims):
            raise PivotError(
                "this report has no 'Other' of a group there",
                [("/row", "no_other", "a group's 'Other' is a row of every row dimension")],
            )
        row = list(row[:-1])
    col_dims = [d for d in query.dims if d.axis == "columns"]
    issues: list[tuple[str, str, str]] = []
    for name, keys, dims in (("row", row, row_dims), ("column", column, col_dims)):
        if len(keys) > len(dims):
            issues.append(
                (f"/{name}", "too_many_keys", f"at most {len(dims)} keys (one per dimension)")
            )
    if other and (query.spec.top is None or not query.spec.top.other or not row):
        issues.append(("/other", "no_other", "this report has no 'Other' row"))
    if issues:
        raise PivotError(issues[0][2], issues)
    key: list[tuple[Any, bool]] = []
    for name, keys, dims in (("row", row, row_dims), ("column", column, col_dims)):
        for i, (plan, value) in enumerate(zip(dims, keys, strict=False)):
            flagged = other and plan.index == 0
            if flagged:
                key.append((None, True))
                continue
            problem = _key_problem(plan, value, query.spec.fiscal_year_start)
            if problem is not None:
                issues.append((f"/{name}/{i}", "invalid_key", problem))
            key.append((value, False))
    if issues:
        raise PivotError(issues[0][2], issues)
    if group_kept is not None:
        outer = tuple(key[: len(row)])
        key.insert(len(row), (None, True))
        row = [*row, None]
        s = frozenset(d.index for d in row_dims) | frozenset(
            d.index for d in col_dims[: len(column)]
        )
        driller = _Driller(query, kept, {outer: group_kept}, {outer: group_present})
        return driller.drill_down(s, tuple(key))
    s = frozenset(d.index for d in row_dims[: len(row)]) | frozenset(
        d.index for d in col_dims[: len(column)]
    )
    return _Driller(query, kept).drill_down(s, tuple(key))


_BUCKET_KEYS = {
    "day": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "week": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "month": re.compile(r"^\d{4}-\d{2}$"),
    "quarter": re.compile(r"^\d{4}-Q[1-4]$"),
    "year": re.compile(r"^\d{4}$"),
}


def _key_problem(plan: DimPlan, value: Any, fiscal_start: int = 1) -> str | None:
    """Why ``value`` is no key of the dimension, or None."""
    if value is None:
        return None
    d = plan.dimension
    whole = isinstance(value, int) and not isinstance(value, bool)
    if plan.kind == "bins":
        assert d.bins is not None
        if not whole or not 0 <= value <= len(d.bins):
            return f"a bin number from 0 to {len(d.bins)}"
        return None
    if plan.kind == "width":
        return None if whole and abs(value) < 2**63 else "a bin number (a whole number)"
    if plan.kind == "bucket":
        bucket = d.bucket or "day"
        if bucket in ("weekday", "hour"):
            low, high = (1, 7) if bucket == "weekday" else (0, 23)
            return None if whole and low <= value <= high else f"a whole number {low}-{high}"
        fiscal = fiscal_start != 1 and bucket in ("quarter", "year")
        if (
            not isinstance(value, str)
            or value.startswith("FY") != fiscal
            or not _BUCKET_KEYS[bucket].match(value[2:] if fiscal else value)
        ):
            example = ("FY" if fiscal else "") + _BUCKET_EXAMPLES[bucket]
            return f"a {bucket} key as the report writes it (e.g. {example})"
        try:
            _bucket_range(value, bucket)
        except ValueError:
            return f"not a valid {bucket}"
        return None
    if plan.ref.field_type == "boolean" and plan.kind == "value":
        return None if isinstance(value, bool) else "true or false"
    if isinstance(value, str) or _is_number(value):
        return None if not isinstance(value, str) or len(value) <= 10_000 else "too long"
    return "a text or a number"


_BUCKET_EXAMPLES = {
    "day": "2025-01-31",
    "week": "2025-01-27",
    "month": "2025-01",
    "quarter": "2025-Q1",
    "year": "2025",
}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fmt(value: float | int) -> str:
    return str(_tidy(value))


def _tidy(value: float | int) -> float | int:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _bucket_range(key: str, bucket: str, fiscal_start: int = 1) -> tuple[date, date]:
    """The local days [start, end) of the period keyed ``key``. A fiscal key (``FY2026``,
    ``FY2026-Q1``) is numbered as the calendar period its months land in when moved
    forward to start in January (April + 9 months), so its range is that one moved back."""
    if key.startswith("FY"):
        start, end = _bucket_range(key[2:], bucket)
        back = (13 - fiscal_start) % 12
        return _months_before(start, back), _months_before(end, back)
    if bucket == "day":
        start = date.fromisoformat(key)
        return start, start + timedelta(days=1)
    if bucket == "week":
        start = date.fromisoformat(key)
        return start, start + timedelta(days=7)
    if bucket == "month":
        year, month = int(key[:4]), int(key[5:7])
        start = date(year, month, 1)
        return start, start + timedelta(days=calendar.monthrange(year, month)[1])
    if bucket == "quarter":
        year, quarter = int(key[:4]), int(key[-1])
        start = date(year, 3 * quarter - 2, 1)
        end = date(year + 1, 1, 1) if quarter == 4 else date(year, 3 * quarter + 1, 1)
        return start, end
    year = int(key[:4])
    return date(year, 1, 1), date(year + 1, 1, 1)


def _months_before(day: date, months: int) -> date:
    """The first of the month ``months`` before ``day``'s (``day`` is a first)."""
    number = day.year * 12 + day.month - 1 - months
    return date(number // 12, number % 12 + 1, 1)


def drill_down_condition(
    drill: DrillDown,
    forms: Mapping[str, FormSpec],
    target: ReportTarget,
    *,
    dialect: Dialect,
    now: datetime,
) -> ColumnElement[bool]:
    """SQL selecting the live source records of ``drill`` (app, form, deleted_at, filter,
    related conditions and the target's extra condition)."""
    table = target.table
    c = table.c

    def filter_target(t: Any, form: FormSpec) -> FilterTarget:
        return records_filter_target(t, form, dialect)

    parts: list[ColumnElement[bool]] = [
        c.app == target.app,
        c.form == drill.form,
        c.deleted_at.is_(None),
    ]
    if drill.filter is not None:
        parts.append(compile_filter(drill.filter, filter_target(table, forms[drill.form]), now=now))
    for number, related in enumerate(drill.related):
        alias = sa.alias(table, name=f"drill_{number}")
        pointer: ColumnElement[Any]
        if dialect == "postgresql":
            pointer = c.data.op("->>", return_type=sa.Text())(sa.literal_column(f"'{related.via}'"))
        else:
            pointer = sa.func.json_extract(c.data, sa.literal_column(f"'$.{related.via}'"))
        match = sa.exists(
            sa.select(sa.literal(1))
            .select_from(alias)
            .where(
                alias.c.id == pointer,
                alias.c.app == target.app,
                alias.c.form == related.form,
                alias.c.deleted_at.is_(None),
                compile_filter(related.filter, filter_target(alias, forms[related.form]), now=now),
                *[c for c in [target.related_condition(alias, related.form)] if c is not None],
            )
        )
        parts.append(match if related.exists else sa.not_(match))
    if target.condition is not None:
        parts.append(target.condition)
    return sa.and_(*parts)
