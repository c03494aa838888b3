"""The pivot spec: what a report groups by and what it measures, as data.

A :class:`PivotSpec` is immutable JSON (part of an app definition, or posted ad hoc). It is
checked in two steps: pydantic checks its shape (strict, no unknown keys), and :func:`check`
checks it against the app's forms (fields exist, measures fit their field types, relation
hops land on a form, filters are inside the SQL subset), returning every problem with a JSON
pointer, so the platform can answer 422 at import time and at run time alike.

Dimensions name a field of the source form (``"department"``), a system column
(``"created_at"``) or one hop through a relation field (``"patient.gender"``). How a field
is grouped follows from its type and the dimension's options: a date or datetime with
``bucket``, a number with ``bins`` or ``bin_width``, a multiselect one row per option.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal, TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.forms import SCALAR_TYPES, FormSpec, RelationField, field_types
from formloom.engines.logic import check_expression, variables
from formloom.engines.logic.sql import FilterError, FilterTarget, compile_filter

__all__ = [
    "MAX_DIMENSIONS",
    "MAX_MEASURES",
    "Bucket",
    "Dimension",
    "GroupTop",
    "Issue",
    "Measure",
    "PivotSpec",
    "SortKey",
    "period_dimension",
    "split_filter",
    "TopN",
    "check",
]

MAX_MEASURES = 50
MAX_DIMENSIONS = 8
MAX_BIN_EDGES = 100
#: Bin edges and widths stay where a bin number fits a 64-bit integer for any sane value
#: (a width of 1e-300 would overflow the database's integer, or silently clamp on SQLite).
MAX_BIN_VALUE = 1e15
MIN_BIN_WIDTH = 1e-6
BinEdge: TypeAlias = Annotated[
    float | int, Field(ge=-MAX_BIN_VALUE, le=MAX_BIN_VALUE, allow_inf_nan=False)
]

Bucket: TypeAlias = Literal["day", "week", "month", "quarter", "year", "weekday", "hour"]
#: The buckets that are periods of time one after another (``fill`` can add the empty ones).
FILLED_BUCKETS = frozenset({"day", "week", "month", "quarter", "year"})
MeasureOp: TypeAlias = Literal[
    "count",
    "count_distinct",
    "sum",
    "avg",
    "min",
    "max",
    "median",
    "percentile",
    "stddev",
    "percent_of_total",
    "ratio",
    "difference",
    "running_total",
    "rank",
    "moving_average",
    "cumulative_percent",
    "period_over_period",
]
#: Measures the database aggregates; the others are computed from them per group.
BASE_OPS = frozenset(
    {"count", "count_distinct", "sum", "avg", "min", "max", "median", "percentile", "stddev"}
)
#: Measures over the distribution of values: PostgreSQL computes them; on SQLite the group's
#: values come back as a JSON array and the result computes them (the same definitions:
#: percentiles interpolate linearly as percentile_cont, stddev is the sample deviation).
DISTRIBUTION_OPS = frozenset({"median", "percentile", "stddev"})
DERIVED_OPS = frozenset(
    {
        "percent_of_total",
        "ratio",
        "difference",
        "running_total",
        "rank",
        "moving_average",
        "cumulative_percent",
        "period_over_period",
    }
)
#: Derived measures that read the cells before them in the column (computed once the matrix
#: stands; no other measure may be computed from them).
SEQUENCE_OPS = frozenset({"running_total", "rank", "moving_average", "cumulative_percent"})
MAX_WINDOW = 366
NUMERIC_TYPES = frozenset({"number", "integer"})
DATE_TYPES = frozenset({"date", "datetime"})
#: System columns a dimension or measure may name (besides form fields).
SYSTEM_COLUMNS: Mapping[str, str] = {
    "id": "text",
    "created_at": "timestamp",
    "updated_at": "timestamp",
    "created_by": "text",
    "updated_by": "text",
}
#: Field types a dimension can group by directly: one scalar (long text aside), or the
#: options of a multiselect, one group each.
GROUPABLE_TYPES = (SCALAR_TYPES - {"textarea"}) | {"multiselect"}

Issue: TypeAlias = tuple[str, str, str]
"""``(JSON pointer into the spec, code, message)``."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Dimension(_Model):
    """One grouping of the rows or columns of a pivot."""

    field: str = Field(
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$",
        description=(
            "Field of the source form, a system column (created_at, updated_at, created_by, "
            "updated_by), or one hop through a relation field: 'patient.gender'."
        ),
    )
    label: str | dict[str, str] | None = Field(
        default=None, description="Header of the dimension; defaults to the field's label."
    )
    bucket: Bucket | None = Field(
        default=None,
        description=(
            "For a date/datetime field: group by day, ISO week (starting Monday), month, "
            "quarter, year, weekday (1 = Monday .. 7 = Sunday) or hour (0..23), in the "
            "report's time zone."
        ),
    )
    fill: bool = Field(
        default=False,
        description=(
            "With a day, week, month, quarter or year bucket, alone on its axis: the periods "
            "between the first and the last with records are shown too, empty (counts 0), so "
            "a line chart does not skip them."
        ),
    )
    bins: list[BinEdge] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_BIN_EDGES,
        description=(
            "For a number field: ascending bin edges; bins are [e0, e1), [e1, e2), ... plus "
            "'below e0' and 'e_last or more'."
        ),
    )
    bin_width: float | int | None = Field(
        default=None,
        ge=MIN_BIN_WIDTH,
        le=MAX_BIN_VALUE,
        description="For a number field: bins of this width, [k*w, (k+1)*w).",
    )


class Measure(_Model):
    """One value computed for every cell, subtotal and total."""

    key: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$",
        description="Identifier of the measure (used by sort, top, ratio, percent_of_total).",
    )
    op: MeasureOp = Field(
        description=(
            "count (records), count_distinct/sum/avg/min/max/median/stddev (of 'field'), "
            "percentile (of 'field', at 'p'), "
            "percent_of_total (of measure 'of', within 'within'), ratio (numerator / "
            "denominator measures, times 'scale'), difference (minuend - subtrahend), "
            "running_total (of measure 'of', down the rows), rank (of measure 'of', 1 = "
            "largest, down the rows), moving_average (of measure 'of', over 'window' rows "
            "ending at this one), cumulative_percent (running total of 'of' over its "
            "column's sum, times 'scale'), period_over_period (measure 'of' against the "
            "previous period of the report's date dimension, or the same one a year "
            "before: 'compare' says how)."
        )
    )
    label: str | dict[str, str] | None = Field(
        default=None, description="Header of the measure; defaults to the key."
    )
    field: str | None = Field(
        default=None,
        pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)?$",
        description="The field aggregated (count_distinct, sum, avg, min, max, median, "
        "percentile, stddev).",
    )
    p: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="percentile: which one, as a fraction (0.9 for the 90th percentile).",
    )
    filter: Any = Field(
        default=None,
        description=(
            "JsonLogic over the source form: only records matching it enter this measure "
            "(e.g. promoters: {'>=': [{'var': 'nps'}, 9]})."
        ),
    )
    of: str | None = Field(default=None, description="percent_of_total: the measure's key.")
    within: Literal["all", "row", "column"] = Field(
        default="all",
        description=(
            "percent_of_total: share of the grand total (all), of its row's total (row) or "
            "of its column's total (column)."
        ),
    )
    numerator: str | None = Field(default=None, description="ratio: key of the numerator.")
    denominator: str | None = Field(default=None, description="ratio: key of the denominator.")
    minuend: str | None = Field(default=None, description="difference: key of the minuend.")
    subtrahend: str | None = Field(
        default=None, description="difference: key of the measure subtracted."
    )
    scale: float | int = Field(
        default=1,
        description="ratio, percent_of_total and cumulative_percent: multiply the result "
        "(100 for percentages).",
    )
    compare: Literal["percent_change", "difference", "previous"] = Field(
        default="percent_change",
        description="period_over_period: the change as a fraction of the earlier value "
        "(times 'scale'; 100 for percent), the difference, or the earlier value itself.",
    )
    offset: Literal["period", "year"] = Field(
        default="period",
        description="period_over_period: against the period before (last month) or the same "
        "period a year before (this month last year; a week: 52 weeks before).",
    )
    to_date: bool = Field(
        default=False,
        description="period_over_period of a count/sum/...: every period counts only its "
        "days up to today's place in the current one (the 1st to the 4th of each month on "
        "4 December), so this month so far is compared with the same days of the last, "
        "as a KPI compares.",
    )
    window: int | None = Field(
        default=None,
        ge=2,
        le=MAX_WINDOW,
        description="moving_average: how many rows it averages, this one and those before it "
        "(3: this month and the two before).",
    )


class SortKey(_Model):
    """How the row (or column) headers are ordered, at every level of their dimensions."""

    by: str = Field(
        default="label",
        description="'label' (what the reader sees: option labels, titles, values), "
        "'options' (the order the form lists a choice field's options; other dimensions by "
        "label) or a measure key (a row's value over all columns, a column's over all rows).",
    )
    direction: Literal["asc", "desc"] = Field(default="asc", description="Sort direction.")


class TopN(_Model):
    """Keep only the first row dimension's top values; the rest become 'other'."""

    n: int = Field(ge=1, le=1000, description="How many values to keep.")
    by: str = Field(description="Key of a count/sum/... measure that ranks the values.")
    keep: Literal["largest", "smallest"] = Field(
        default="largest",
        description="Keep the values with the largest measure (top-N) or the smallest "
        "(bottom-N: the departments with the fewest visits). Empty measures rank last.",
    )
    other: bool = Field(
        default=True, description="Group the remaining values into one 'other' row."
    )


class GroupTop(_Model):
    """Keep only the top values of the innermost row dimension within each group of the
    outer ones (the top 3 doctors of every branch); the rest of each group is one 'Other'
    row before the group's subtotal (or left out with ``other: false``)."""

    n: int = Field(ge=1, le=1000, description="How many values to keep in each group.")
    by: str = Field(description="Key of the measure that ranks them (any but a sequence).")
    keep: Literal["largest", "smallest"] = Field(
        default="largest",
        description="Keep the largest values of the measure or the smallest. Empty measures "
        "rank last; equal ones by their label.",
    )
    other: bool = Field(
        default=True,
        description="Group the rest of each group into one 'other' row (aggregated by the "
        "database from those records; its drill-down selects them).",
    )


class PivotSpec(_Model):
    """A pivot over the records of one form."""

    form: str = Field(
        pattern=r"^[a-z][a-z0-9_]{0,62}$", description="Key of the source form (same app)."
    )
    filter: Any = Field(
        default=None,
        description="JsonLogic over the source form's fields: which records enter the pivot.",
    )
    rows: list[Dimension] = Field(default=[], description="Row dimensions, outer first.")
    columns: list[Dimension] = Field(default=[], description="Column dimensions, outer first.")
    measures: list[Measure] = Field(min_length=1, description="The values computed for every cell.")
    totals: bool = Field(
        default=True, description="Compute a total row, a total column and a grand total."
    )
    subtotals: bool = Field(
        default=False, description="Compute a subtotal for every level of the row dimensions."
    )
    sort: SortKey = Field(default_factory=SortKey, description="Order of the row headers.")
    column_sort: SortKey | None = Field(
        default=None,
        description="Order of the column headers (default: by label, as 'sort' by label).",
    )
    time_zone: str | None = Field(
        default=None,
        max_length=64,
        description="IANA time zone the report's dates are bucketed in (a branch's "
        "'America/New_York'), instead of the app's or the reader's clock.",
    )
    week_start: Literal["monday", "sunday", "saturday"] = Field(
        default="monday",
        description="First day of a week bucket (its key is that day's date) and of the "
        "weekday order.",
    )
    fiscal_year_start: int = Field(
        default=1,
        ge=1,
        le=12,
        description="Month a fiscal year starts (4: April): quarter and year buckets are "
        "fiscal, keyed 'FY2026-Q1' and 'FY2026', a fiscal year named by the calendar year "
        "it ends in.",
    )
    top: TopN | None = Field(default=None, description="Top-N of the first row dimension.")
    top_per_group: GroupTop | None = Field(
        default=None,
        description="Top-N of the innermost row dimension within each group of the outer "
        "ones (needs two row dimensions or more).",
    )
    having: Any = Field(
        default=None,
        description=(
            "JsonLogic over the measure keys: only the innermost row groups whose values "
            "(all columns together) satisfy it are listed — doctors with an NPS below 30: "
            "{'<': [{'var': 'nps'}, 30]}. Totals and subtotals still count every record."
        ),
    )


# --------------------------------------------------------------------------------------
# Resolving names against the forms
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRef:
    """A field a dimension or measure reads: local (``via`` None) or through a relation."""

    key: str
    field_type: str  # a form field type, or "timestamp"/"text" for system columns
    via: str | None = None  # the relation field of the source form
    target_form: str | None = None
    system: bool = False

    @property
    def path(self) -> str:
        return f"{self.via}.{self.key}" if self.via else self.key


class _Unresolved(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def resolve(path: str, form: FormSpec, forms: Mapping[str, FormSpec]) -> FieldRef:
    """The field ``path`` names, or :class:`_Unresolved`."""
    head, _, tail = path.partition(".")
    types = field_types(form)
    if not tail:
        if head in types:
            return FieldRef(head, types[head])
        if head in SYSTEM_COLUMNS:
            return FieldRef(head, SYSTEM_COLUMNS[head], system=True)
        raise _Unresolved("unknown_field", f"form '{form.key}' has no field '{head}'")
    if head not in types:
        raise _Unresolved("unknown_field", f"form '{form.key}' has no field '{head}'")
    relation = form.field(head)
    if not isinstance(relation, RelationField):
        raise _Unresolved(
            "not_a_relation",
            f"'{head}' is a {types[head]} field; only a relation field can be followed ('{path}')",
        )
    target = forms.get(relation.target)
    if target is None:
        raise _Unresolved(
            "unknown_form",
            f"relation '{head}' points to form '{relation.target}', which does not exist",
        )
    target_types = field_types(target)
    if tail in target_types:
        return FieldRef(tail, target_types[tail], via=head, target_form=target.key)
    if tail in SYSTEM_COLUMNS:
        return FieldRef(tail, SYSTEM_COLUMNS[tail], via=head, target_form=target.key, system=True)
    raise _Unresolved("unknown_field", f"form '{target.key}' has no field '{tail}'")


@dataclass(frozen=True)
class SplitFilter:
    """A filter cut where it reads: ``source`` (JsonLogic over the source form, or None)
    AND, per relation field followed, a condition over the related form (its field names
    without the hop: ``patient.gender`` is ``gender`` there)."""

    source: Any
    related: Mapping[str, Any]


def split_filter(rule: Any) -> tuple[SplitFilter, list[tuple[str, str, str]]]:
    """``rule`` cut into the part over the source form and one part per relation hop:
    each conjunct of a top-level ``and`` (or the rule itself) reads either the source
    form's fields or the fields of one related form (``patient.age``, ``patient.gender``),
    never both — a condition across two forms has no single place to run. Issues
    (pointer relative to the rule, code, message) for a conjunct that mixes them."""
    if rule is None:
        return SplitFilter(None, {}), []
    conjuncts: list[tuple[str, Any]]
    if isinstance(rule, dict) and list(rule) == ["and"] and isinstance(rule["and"], list):
        conjuncts = [(f"/and/{i}", part) for i, part in enumerate(rule["and"])]
    else:
        conjuncts = [("", rule)]
    source: list[Any] = []
    related: dict[str, list[Any]] = {}
    issues: list[tuple[str, str, str]] = []
    for pointer, part in conjuncts:
        names = variables(part)
        hops = {name.partition(".")[0] for name in names if "." in name}
        if not hops:
            source.append(part)
            continue
        if len(hops) > 1 or any("." not in name for name in names):
            issues.append(
                (
                    pointer,
                    "related_filter_mixed",
                    "a condition reads one form: put the conditions on a related form's "
                    "fields ('patient.age') and those on this form's in separate parts of "
                    "an 'and'",
                )
            )
            continue
        via = next(iter(hops))
        related.setdefault(via, []).append(_without_hop(part, via))

    if not related and not issues:
        return SplitFilter(rule, {}), []  # as written (its pointers stay right)

    def joined(parts: list[Any]) -> Any:
        return None if not parts else parts[0] if len(parts) == 1 else {"and": parts}

    return SplitFilter(joined(source), {via: joined(p) for via, p in related.items()}), issues


def _without_hop(node: Any, via: str) -> Any:
    """``node`` with ``{"var": "via.x"}`` read as ``{"var": "x"}``."""
    if isinstance(node, list):
        return [_without_hop(item, via) for item in node]
    if not isinstance(node, dict):
        return node
    if list(node) == ["var"]:
        args = node["var"]
        name = args[0] if isinstance(args, list) and args else args
        if isinstance(name, str) and name.startswith(via + "."):
            bare = name[len(via) + 1 :]
            return {"var": [bare, *args[1:]] if isinstance(args, list) else bare}
        return node
    return {key: _without_hop(value, via) for key, value in node.items()}


def _filter_issues(
    rule: Any, form: FormSpec, pointer: str, forms: Mapping[str, FormSpec] | None = None
) -> list[Issue]:
    """Problems of a filter over ``form``, whose conditions may read one hop through a
    relation (``patient.gender``: see :func:`split_filter`)."""
    if rule is None:
        return []
    split, mixed = split_filter(rule)
    issues: list[Issue] = [(pointer + at, code, message) for at, code, message in mixed]
    for via, part in split.related.items():
        try:
            ref = resolve(f"{via}.id", form, forms or {form.key: form})
        except _Unresolved as exc:
            issues.append((pointer, exc.code, exc.message))
            continue
        assert ref.target_form is not None
        related_form = (forms or {})[ref.target_form]
        issues += [
            (pointer, code, f"'{via}.': {message}")
            for _, code, message in _filter_issues(part, related_form, "")
        ]
    if split.source is None:
        return issues
    rule = split.source
    table = sa.table("records", sa.column("data", sa.JSON()))
    columns = {
        name: sa.column(name, sa.DateTime() if kind == "timestamp" else sa.String())
        for name, kind in SYSTEM_COLUMNS.items()
    }
    target = FilterTarget(table.c.data, field_types(form), columns, "postgresql")
    try:
        compile_filter(rule, target, now=datetime(2000, 1, 1, tzinfo=UTC))
    except FilterError as exc:
        return [(pointer + exc.pointer, "invalid_filter", exc.message)]
    return []


# --------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------


def check(spec: PivotSpec, forms: Mapping[str, FormSpec]) -> list[Issue]:
    """Every problem of ``spec`` against the app's ``forms`` (form key -> spec).

    An empty list means :func:`~formloom.engines.reports.compile_pivot` will accept it
    (except for what depends on the database: ranking a top-N by a median on SQLite, the
    cell limit).
    """
    form = forms.get(spec.form)
    if form is None:
        return [("/form", "unknown_form", f"there is no form '{spec.form}'")]
    issues: list[Issue] = []
    issues += _filter_issues(spec.filter, form, "/filter", forms)
    if spec.time_zone is not None and not known_zone(spec.time_zone):
        issues.append(
            (
                "/time_zone",
                "unknown_time_zone",
                f"'{spec.time_zone}' is not an IANA time zone (e.g. 'America/New_York')",
            )
        )
    dimensions = [("rows", i, d) for i, d in enumerate(spec.rows)] + [
        ("columns", i, d) for i, d in enumerate(spec.columns)
    ]
    if len(dimensions) > MAX_DIMENSIONS:
        issues.append(
            (
                "/columns" if spec.columns else "/rows",
                "too_many_dimensions",
                f"a pivot has at most {MAX_DIMENSIONS} dimensions, this one has {len(dimensions)}",
            )
        )
    for where, index, dimension in dimensions:
        issues += _dimension_issues(dimension, f"/{where}/{index}", form, forms)
        if dimension.fill:
            axis = spec.rows if where == "rows" else spec.columns
            at = f"/{where}/{index}/fill"
            if dimension.bucket not in FILLED_BUCKETS:
                issues.append(
                    (at, "fill_needs_period", "fill needs a day, week, month, quarter or year")
                )
            elif len(axis) != 1:
                issues.append(
                    (at, "fill_needs_single_dimension", f"fill needs it alone on the {where}")
                )
            elif where == "rows" and spec.top is not None:
                issues.append((at, "fill_with_top", "fill and top-N do not go together"))
    if len(spec.measures) > MAX_MEASURES:
        return [
            *issues,
            (
                "/measures",
                "too_many_measures",
                f"a pivot has at most {MAX_MEASURES} measures, this one has {len(spec.measures)}",
            ),
        ]
    keys: dict[str, Measure] = {}
    for index, measure in enumerate(spec.measures):
        if measure.key in keys:
            issues.append(
                (
                    f"/measures/{index}/key",
                    "duplicate_measure",
                    f"measure key '{measure.key}' is used twice",
                )
            )
        keys[measure.key] = measure
    for index, measure in enumerate(spec.measures):
        issues += _measure_issues(measure, f"/measures/{index}", form, forms, keys)
    issues += _cycle_issues(spec.measures)
    issues += _period_issues(spec, keys)
    for where, sort in (("sort", spec.sort), ("column_sort", spec.column_sort)):
        if sort is None:
            continue
        if sort.by in ("label", "options"):
            if sort.by in keys:
                issues.append(
                    (
                        f"/{where}/by",
                        "ambiguous_sort",
                        f"'{sort.by}' is a way to sort and a measure key: rename the measure",
                    )
                )
        elif sort.by not in keys:
            issues.append(
                (
                    f"/{where}/by",
                    "unknown_measure",
                    f"'{sort.by}' is neither 'label', 'options' nor a measure",
                )
            )
        elif keys[sort.by].op in SEQUENCE_OPS:
            issues.append(
                (f"/{where}/by", "sequence_measure", "cannot sort by what is read down the rows")
            )
    if spec.top is not None:
        issues += _top_issues(spec, keys, form, forms)
    if spec.top_per_group is not None:
        issues += _group_top_issues(spec, keys)
    if spec.having is not None:
        issues += _having_issues(spec, keys)
    return issues


def period_dimension(spec: PivotSpec) -> tuple[str, int] | None:
    """(axis, index) of the pivot's one dimension of periods one after another (a day,
    week, month, quarter or year bucket), which period_over_period reads; None when there is
    not exactly one."""
    found = [
        (axis, index)
        for axis in ("rows", "columns")
        for index, d in enumerate(getattr(spec, axis))
        if d.bucket in FILLED_BUCKETS
    ]
    return found[0] if len(found) == 1 else None


def _period_issues(spec: PivotSpec, keys: Mapping[str, Measure]) -> list[Issue]:
    issues: list[Issue] = []
    for index, m in enumerate(spec.measures):
        pointer = f"/measures/{index}"
        if m.op != "period_over_period":
            defaults = {"compare": "percent_change", "offset": "period", "to_date": False}
            for name, default in defaults.items():
                if getattr(m, name) != default:
                    issues.append(
                        (
                            f"{pointer}/{name}",
                            "not_period_over_period",
                            f"only a 'period_over_period' takes '{name}'",
                        )
                    )
            continue
        if period_dimension(spec) is None:
            buckets = [d for d in [*spec.rows, *spec.columns] if d.bucket in FILLED_BUCKETS]
            issues.append(
                (
                    pointer,
                    "period_needs_one_period_dimension",
                    "period over period compares the periods of one date dimension bucketed "
                    "by day, week, month, quarter or year; this report has "
                    + (f"{len(buckets)} of them" if buckets else "none"),
                )
            )
        target = keys.get(m.of or "")
        if m.to_date and target is not None and target.op not in BASE_OPS:
            issues.append(
                (
                    f"{pointer}/to_date",
                    "to_date_needs_base_measure",
                    f"'to_date' restricts the records counted: '{target.key}' must be a "
                    "count, sum, average, ... of records, not a calculation",
                )
            )
    return issues


def known_zone(name: str) -> bool:
    """Whether ``name`` is an IANA time zone this machine knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "America", a directory
        return False
    return True


#: Week starts as the number of days after Monday.
WEEK_STARTS: Mapping[str, int] = {"monday": 0, "sunday": 6, "saturday": 5}


def to_date_key(of: str) -> str:
    """The key of the hidden base measure that counts ``of`` up to today's place in each
    period (period_over_period with ``to_date``)."""
    return f"{of}__to_date"


def previous_period(key: str, bucket: str, offset: str = "period") -> str:
    """The key of the period before the one keyed ``key`` (as the report writes keys:
    ``2025-01-06``, ``2025-01``, ``2025-Q1``, ``2025``), or of the same period a year before
    (``offset`` "year": a day's date a year before — 29 February's is the 28th —, a week
    52 weeks before, a month 12 before, a quarter 4 before)."""
    if bucket in ("day", "week"):
        day = date.fromisoformat(key)
        if offset == "period":
            return (day - timedelta(days=7 if bucket == "week" else 1)).isoformat()
        if bucket == "week":
            return (day - timedelta(weeks=52)).isoformat()
        leap_day = day.month == 2 and day.day == 29
        return day.replace(year=day.year - 1, day=28 if leap_day else day.day).isoformat()
    prefix = "FY" if key.startswith("FY") else ""
    body = key[len(prefix) :]
    if bucket == "year":
        return f"{prefix}{int(body) - 1:04d}"
    per_year, separator = (4, "-Q") if bucket == "quarter" else (12, "-")
    year, part = body.split(separator)
    number = int(year) * per_year + int(part) - 1 - (per_year if offset == "year" else 1)
    year_before, part_before = divmod(number, per_year)
    width = 1 if bucket == "quarter" else 2
    return f"{prefix}{year_before:04d}{separator}{part_before + 1:0{width}d}"


def _group_top_issues(spec: PivotSpec, keys: Mapping[str, Measure]) -> list[Issue]:
    assert spec.top_per_group is not None
    issues: list[Issue] = []
    if len(spec.rows) < 2:
        issues.append(
            (
                "/top_per_group",
                "top_per_group_needs_groups",
                "top per group ranks the last row dimension within the groups of the ones "
                "before it: it needs two row dimensions or more",
            )
        )
    by = spec.top_per_group.by
    if by not in keys:
        issues.append(("/top_per_group/by", "unknown_measure", f"there is no measure '{by}'"))
    elif keys[by].op in SEQUENCE_OPS:
        issues.append(
            ("/top_per_group/by", "sequence_measure", "cannot rank by what is read down the rows")
        )
    return issues


def _having_issues(spec: PivotSpec, keys: Mapping[str, Measure]) -> list[Issue]:
    if not spec.rows:
        return [("/having", "having_needs_rows", "a condition on measures selects row groups")]
    issues: list[Issue] = [
        ("/having" + pointer, "invalid_having", message)
        for pointer, message in check_expression(spec.having)
    ]
    if issues:
        return issues
    for name in sorted(variables(spec.having)):
        if name not in keys:
            issues.append(
                (
                    "/having",
                    "unknown_measure",
                    f"'{name}' is not a measure of this report; the condition reads the "
                    f"measures: {', '.join(sorted(keys))}",
                )
            )
        elif keys[name].op in SEQUENCE_OPS:
            issues.append(
                (
                    "/having",
                    "sequence_measure",
                    f"'{name}' is read down the rows, after the rows are chosen",
                )
            )
    return issues


def _dimension_issues(
    dimension: Dimension, pointer: str, form: FormSpec, forms: Mapping[str, FormSpec]
) -> list[Issue]:
    try:
        ref = resolve(dimension.field, form, forms)
    except _Unresolved as exc:
        return [(f"{pointer}/field", exc.code, exc.message)]
    issues: list[Issue] = []
    kind = ref.field_type
    if kind not in GROUPABLE_TYPES and kind not in ("timestamp",):
        issues.append(
            (f"{pointer}/field", "not_groupable", f"a {kind} field cannot be a dimension")
        )
    if ref.via is not None and kind == "multiselect":
        issues.append(
            (
                f"{pointer}/field",
                "not_groupable",
                "a multiselect field of a related form cannot be a dimension",
            )
        )
    if dimension.bucket is not None and kind not in DATE_TYPES and kind != "timestamp":
        issues.append(
            (
                f"{pointer}/bucket",
                "bucket_needs_date",
                f"'{dimension.field}' is a {kind} field; only date and datetime fields can "
                "be bucketed",
            )
        )
    if dimension.bucket in ("hour",) and kind == "date":
        issues.append(
            (f"{pointer}/bucket", "bucket_needs_time", "a date field has no hour; use a datetime")
        )
    binned = dimension.bins is not None or dimension.bin_width is not None
    if dimension.bins is not None and dimension.bin_width is not None:
        issues.append((f"{pointer}/bins", "bins_conflict", "give either 'bins' or 'bin_width'"))
    if binned and kind not in NUMERIC_TYPES:
        issues.append(
            (
                f"{pointer}/{'bins' if dimension.bins is not None else 'bin_width'}",
                "bins_need_number",
                f"'{dimension.field}' is a {kind} field; only number fields can be binned",
            )
        )
    if dimension.bins is not None and any(
        b >= a for a, b in zip(dimension.bins[1:], dimension.bins, strict=False)
    ):
        issues.append((f"{pointer}/bins", "bins_not_ascending", "bin edges must ascend"))
    return issues


def _measure_issues(
    measure: Measure,
    pointer: str,
    form: FormSpec,
    forms: Mapping[str, FormSpec],
    keys: Mapping[str, Measure],
) -> list[Issue]:
    issues: list[Issue] = []
    op = measure.op
    issues += _filter_issues(measure.filter, form, f"{pointer}/filter", forms)
    if op == "percentile" and measure.p is None:
        issues.append((f"{pointer}/p", "missing_p", "'percentile' needs 'p' (0.9 for p90)"))
    if op != "percentile" and measure.p is not None:
        issues.append((f"{pointer}/p", "p_not_percentile", "only a 'percentile' takes 'p'"))
    if op in BASE_OPS and op != "count":
        if measure.field is None:
            return [*issues, (pointer, "missing_field", f"'{op}' needs a 'field'")]
        try:
            ref = resolve(measure.field, form, forms)
        except _Unresolved as exc:
            return [*issues, (f"{pointer}/field", exc.code, exc.message)]
        kind = ref.field_type
        if op in ("sum", "avg") and kind == "boolean":
            pass  # how many said yes; the share of yes
        elif (op in ("sum", "avg") or op in DISTRIBUTION_OPS) and kind not in NUMERIC_TYPES:
            issues.append(
                (
                    f"{pointer}/field",
                    "not_numeric",
                    f"'{op}' needs a number field; '{measure.field}' is a {kind} field",
                )
            )
        if op in ("min", "max") and kind not in NUMERIC_TYPES | DATE_TYPES | {"time"}:
            issues.append(
                (
                    f"{pointer}/field",
                    "not_ordered",
                    f"'{op}' needs a number, date, datetime or time field; "
                    f"'{measure.field}' is a {kind} field",
                )
            )
        if op == "count_distinct" and kind not in GROUPABLE_TYPES | {"timestamp"}:
            issues.append(
                (
                    f"{pointer}/field",
                    "not_countable",
                    f"'count_distinct' cannot count a {kind} field",
                )
            )
    elif op == "count" and measure.field is not None:
        issues.append((f"{pointer}/field", "unexpected_field", "'count' counts records"))
    references = {
        "percent_of_total": ("of",),
        "running_total": ("of",),
        "rank": ("of",),
        "moving_average": ("of",),
        "cumulative_percent": ("of",),
        "period_over_period": ("of",),
        "ratio": ("numerator", "denominator"),
        "difference": ("minuend", "subtrahend"),
    }.get(op, ())
    for name in references:
        value = getattr(measure, name)
        if value is None:
            issues.append((pointer, "missing_measure", f"'{op}' needs '{name}'"))
        elif value not in keys:
            issues.append(
                (f"{pointer}/{name}", "unknown_measure", f"there is no measure '{value}'")
            )
    for name in ("of", "numerator", "denominator", "minuend", "subtrahend"):
        target = keys.get(getattr(measure, name) or "")
        if target is not None and target.op in SEQUENCE_OPS:
            issues.append(
                (
                    f"{pointer}/{name}",
                    "sequence_measure",
                    f"'{target.key}' is a {target.op}, read down the rows; compute from the "
                    "measure it reads instead",
                )
            )
    if op == "moving_average" and measure.window is None:
        issues.append((f"{pointer}/window", "missing_window", "'moving_average' needs 'window'"))
    if op != "moving_average" and measure.window is not None:
        issues.append(
            (f"{pointer}/window", "window_not_moving", "only a 'moving_average' takes 'window'")
        )
    if op in DERIVED_OPS and (measure.field is not None or measure.filter is not None):
        issues.append(
            (
                pointer,
                "derived_measure",
                f"'{op}' is computed from other measures; put field and filter on those",
            )
        )
    return issues


def _references(measure: Measure) -> list[str]:
    return [
        r
        for r in (
            measure.of,
            measure.numerator,
            measure.denominator,
            measure.minuend,
            measure.subtrahend,
        )
        if r is not None
    ]


def _cycle_issues(measures: list[Measure]) -> list[Issue]:
    by_key = {m.key: m for m in measures}
    issues: list[Issue] = []
    for index, measure in enumerate(measures):
        seen: set[str] = set()
        stack = list(_references(measure))
        while stack:
            key = stack.pop()
            if key == measure.key:
                issues.append(
                    (
                        f"/measures/{index}",
                        "measure_cycle",
                        f"measure '{measure.key}' depends on itself",
                    )
                )
                break
            if key in seen or key not in by_key:
                continue
            seen.add(key)
            stack.extend(_references(by_key[key]))
    return issues


def _top_issues(
    spec: PivotSpec, keys: Mapping[str, Measure], form: FormSpec, forms: Mapping[str, FormSpec]
) -> list[Issue]:
    assert spec.top is not None
    issues: list[Issue] = []
    if not spec.rows:
        issues.append(("/top", "top_needs_rows", "top-N applies to the first row dimension"))
    else:
        try:
            ref = resolve(spec.rows[0].field, form, forms)
        except _Unresolved:
            ref = None
        if ref is not None and ref.field_type == "multiselect":
            issues.append(
                ("/top", "top_on_multiselect", "top-N cannot rank a multiselect dimension")
            )
    measure = keys.get(spec.top.by)
    if measure is None:
        issues.append(("/top/by", "unknown_measure", f"there is no measure '{spec.top.by}'"))
    elif measure.op not in BASE_OPS:
        issues.append(
            (
                "/top/by",
                "top_needs_base_measure",
                f"top-N ranks by a count/sum/avg/min/max measure, not '{measure.op}'",
            )
        )
    return issues


# -- bins of a width --------------------------------------------------------------------------
#
# A bin of width w is [k*w, (k+1)*w) in *decimal* arithmetic, the way people write widths
# (0.1) and values (0.3): 0.3 is in [0.3, 0.4). Binary floats disagree (0.3 / 0.1 is
# 2.9999999999999996 and 3 * 0.1 is 0.30000000000000004), so the cell and its drill-down
# compute the bin number k one way — the logic language's ``bin_of`` (the value counted in
# units of the width's last digit, rounded to 9 decimals, floored): the evaluator
# (engines/logic/bins.py), the browser and the SQL of both databases
# (``engines.logic.sql.bin_number``) — and the label's edges come from this function, in
# Decimal.


def bin_edge(index: int, width: float | int) -> float | int:
    """``index * width`` exactly (``3 * 0.1`` is ``0.3``), as an int when it is whole."""
    exact = Decimal(index) * Decimal(repr(width))
    return int(exact) if exact == exact.to_integral_value() else float(exact)
