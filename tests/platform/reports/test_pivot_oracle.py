"""Every dimension and measure kind of the pivot engine against an independent computation.

Seeded visits and patients (nulls, absent keys, datetimes at local midnight and month ends
in Asia/Shanghai, multiselects, dangling relations, deleted rows) are inserted into the
migrated ``records`` table on SQLite and PostgreSQL; each pivot runs through the engine's
single statement and is compared, cell by cell and total by total, with pandas ``groupby``
over the same records, whose dimensions are computed here in plain Python (``zoneinfo``,
the JsonLogic evaluator for filters). Every cell's drill-down condition must then select
exactly the records the cell counts.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from itertools import product
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import sqlalchemy as sa

from formloom.engines.logic import evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.reports import (
    Cell,
    PivotQuery,
    PivotResult,
    PivotSpec,
    ReportTarget,
    compile_pivot,
    drill_down_condition,
)
from formloom.platform.db import Database
from formloom.platform.jsonsafe import operator_count
from formloom.platform.models.record import Record
from formloom.platform.records.query import MAX_FILTER_OPERATIONS
from tests.platform.reports.factories import APP, FORMS, generate

ZONE = "Asia/Shanghai"
NOW = datetime(2026, 3, 1, tzinfo=UTC)
NULL = "\x00null"
OTHER = "\x00other"
RECORDS = Record.__table__
#: Most drill-down conditions checked per pivot (an even sample beyond that).
MAX_DRILLS = 60

ALL_MEASURES = [
    {"key": "n", "op": "count"},
    {"key": "patients", "op": "count_distinct", "field": "patient"},
    {"key": "weight_sum", "op": "sum", "field": "weight"},
    {"key": "satisfaction", "op": "avg", "field": "satisfaction"},
    {"key": "low", "op": "min", "field": "satisfaction"},
    {"key": "latest", "op": "max", "field": "seen_at"},
    {"key": "first_day", "op": "min", "field": "visit_date"},
]
NPS = [
    {"key": "n", "op": "count"},
    {"key": "promoters", "op": "count", "filter": {">=": [{"var": "nps"}, 9]}},
    {"key": "detractors", "op": "count", "filter": {"<=": [{"var": "nps"}, 6]}},
    {"key": "answered", "op": "count", "filter": {"!==": [{"var": "nps"}, None]}},
    {
        "key": "pct_promoters",
        "op": "ratio",
        "numerator": "promoters",
        "denominator": "answered",
        "scale": 100,
    },
    {
        "key": "pct_detractors",
        "op": "ratio",
        "numerator": "detractors",
        "denominator": "answered",
        "scale": 100,
    },
    {"key": "nps", "op": "difference", "minuend": "pct_promoters", "subtrahend": "pct_detractors"},
    {
        "key": "happy_weight",
        "op": "avg",
        "field": "weight",
        "filter": {">": [{"var": "satisfaction"}, 5]},
    },
]

PIVOTS: dict[str, dict[str, Any]] = {
    "fields_all_measures": {
        "rows": [{"field": "department"}],
        "columns": [{"field": "channel"}],
        "measures": ALL_MEASURES,
    },
    **{
        f"datetime_{bucket}": {
            "rows": [{"field": "seen_at", "bucket": bucket}],
            "columns": [{"field": "completed"}],
            "measures": [
                {"key": "n", "op": "count"},
                {"key": "s", "op": "avg", "field": "satisfaction"},
            ],
        }
        for bucket in ("day", "week", "month", "quarter", "year", "weekday", "hour")
    },
    **{
        f"date_{bucket}": {
            "rows": [{"field": "visit_date", "bucket": bucket}],
            "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "sum", "field": "weight"}],
        }
        for bucket in ("week", "month", "weekday")
    },
    **{
        f"new_york_{bucket}": {
            "zone": "America/New_York",
            "rows": [{"field": "seen_at", "bucket": bucket}],
            "measures": [{"key": "n", "op": "count"}],
        }
        for bucket in ("day", "hour", "weekday")
    },
    "created_at_month": {
        "rows": [{"field": "created_at", "bucket": "month"}],
        "columns": [{"field": "created_by"}],
        "measures": [{"key": "n", "op": "count"}],
    },
    "bins_edges": {
        "rows": [{"field": "satisfaction", "bins": [3, 6, 8]}],
        "columns": [{"field": "department"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "max", "field": "weight"}],
    },
    "bins_width": {
        "rows": [{"field": "weight", "bin_width": 25}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "avg", "field": "weight"}],
    },
    "multiselect": {
        "rows": [{"field": "symptoms"}],
        "columns": [{"field": "department"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "w", "op": "sum", "field": "weight"},
            {"key": "s", "op": "avg", "field": "satisfaction"},
        ],
    },
    "relation_hop": {
        "rows": [{"field": "patient.gender"}],
        "columns": [{"field": "patient.channel"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "age", "op": "avg", "field": "patient.age"},
            {"key": "patients", "op": "count_distinct", "field": "patient"},
        ],
    },
    "nps_filters": {
        "rows": [{"field": "department"}],
        "measures": NPS,
        "filter": {"!==": [{"var": "department"}, "oncology"]},
    },
    "percent_of_total": {
        "rows": [{"field": "department"}],
        "columns": [{"field": "completed"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "all", "op": "percent_of_total", "of": "n", "scale": 100},
            {"key": "in_row", "op": "percent_of_total", "of": "n", "within": "row"},
            {"key": "in_column", "op": "percent_of_total", "of": "n", "within": "column"},
        ],
        "totals": False,
    },
    "subtotals_sorted": {
        "rows": [{"field": "department"}, {"field": "completed"}],
        "columns": [{"field": "channel"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "p", "op": "count_distinct", "field": "patient"},
        ],
        "subtotals": True,
        "sort": {"by": "n", "direction": "desc"},
    },
    "column_subtotals": {
        "rows": [{"field": "department"}, {"field": "completed"}],
        "columns": [{"field": "channel"}, {"field": "seen_at", "bucket": "year"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "p", "op": "count_distinct", "field": "patient"},
            {"key": "share", "op": "percent_of_total", "of": "n", "within": "column"},
        ],
        "subtotals": True,
    },
    "top_other": {
        "rows": [{"field": "department"}],
        "columns": [{"field": "seen_at", "bucket": "quarter"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "p", "op": "count_distinct", "field": "patient"},
        ],
        "top": {"n": 2, "by": "n"},
    },
    "bottom_other": {
        "rows": [{"field": "department"}],
        "columns": [{"field": "completed"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "sum", "field": "weight"}],
        "top": {"n": 2, "by": "n", "keep": "smallest"},
        "totals": True,
    },
    "bottom_without_other": {
        "rows": [{"field": "channel"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 2, "by": "n", "keep": "smallest", "other": False},
    },
    "top_without_other": {
        "rows": [{"field": "channel"}],
        "columns": [{"field": "completed"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "sum", "field": "weight"}],
        "top": {"n": 3, "by": "n", "other": False},
    },
    # top-N of many values: "Other" drills down within the filter limits (issue 20, defect
    # 4). Plain values and a date's days are one list whatever n; a datetime's days are
    # ranges (neighbours merged), so scattered days still cost three operations each
    "top_many_days": {
        "rows": [{"field": "seen_at", "bucket": "day"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 60, "by": "n"},
    },
    "top_many_dates": {
        "rows": [{"field": "visit_date", "bucket": "day"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 200, "by": "n"},
    },
    "top_many_patients": {
        "rows": [{"field": "patient"}],
        "columns": [{"field": "completed"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 70, "by": "n"},
    },
    "top_many_weeks": {
        "rows": [{"field": "visit_date", "bucket": "week"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 40, "by": "n", "other": False},
    },
    # scattered bins of a fractional width: "Other" and the kept bins are their bin numbers
    # in one list ({"in": [{"bin_of": [var, 0.1]}, [...]]}), not a range per run of bins.
    # Bins 100-999 only, so that ties in the ranking break alike here (str) and in the engine
    "top_many_bins": {
        "rows": [{"field": "weight", "bin_width": 0.1}],
        "columns": [{"field": "completed"}],
        "measures": [{"key": "n", "op": "count"}],
        "filter": {"<=": [10, {"var": "weight"}, 99.9]},
        "top": {"n": 200, "by": "n"},
    },
    "top_weekday": {
        "rows": [{"field": "seen_at", "bucket": "weekday"}],
        "measures": [{"key": "n", "op": "count"}],
        "top": {"n": 4, "by": "n"},
        "sort": {"by": "label", "direction": "desc"},
    },
    **{
        f"top_hop_{n}_{'other' if other else 'only'}": {
            "rows": [{"field": "patient.gender"}],
            "columns": [{"field": "department"}],
            "measures": [{"key": "n", "op": "count"}],
            "top": {"n": n, "by": "n", "other": other},
        }
        for n in (1, 3)
        for other in (True, False)
    },
    "no_dimensions": {
        "measures": ALL_MEASURES,
        "filter": {"in": ["fever", {"var": "symptoms"}]},
    },
    "median": {
        "rows": [{"field": "department"}],
        "measures": [{"key": "m", "op": "median", "field": "weight"}, {"key": "n", "op": "count"}],
    },
    "yes_no": {
        "rows": [{"field": "department"}],
        "totals": True,
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "done", "op": "sum", "field": "completed"},
            {"key": "share", "op": "avg", "field": "completed"},
            {
                "key": "heavy_done",
                "op": "sum",
                "field": "completed",
                "filter": {">": [{"var": "weight"}, 50]},
            },
        ],
    },
    "distribution": {
        "rows": [{"field": "department"}, {"field": "visit_date", "bucket": "month"}],
        "columns": [{"field": "channel"}],
        "totals": True,
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "med", "op": "median", "field": "weight"},
            {"key": "p90", "op": "percentile", "p": 0.9, "field": "weight"},
            {
                "key": "p10",
                "op": "percentile",
                "p": 0.1,
                "field": "weight",
                "filter": {">": [{"var": "weight"}, 0]},
            },
            {"key": "sd", "op": "stddev", "field": "weight"},
            {"key": "share", "op": "ratio", "numerator": "p90", "denominator": "med"},
        ],
    },
}


# --------------------------------------------------------------------------------------
# The data, in the database and in Python
# --------------------------------------------------------------------------------------

ROWS = generate()


@pytest.fixture
async def loaded(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.execute(RECORDS.insert(), ROWS)
    yield db
    await db.dispose()


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record_view(row: dict[str, Any]) -> dict[str, Any]:
    """What a dimension path can read: data plus system columns."""
    return {
        **row["data"],
        "id": row["id"],
        "created_at": _utc_text(row["created_at"]),
        "created_by": row["created_by"],
        "updated_by": row["updated_by"],
    }


LIVE_VISITS = [r for r in ROWS if r["form"] == "visit" and r["deleted_at"] is None]
LIVE_PATIENTS = {
    r["id"]: _record_view(r) for r in ROWS if r["form"] == "patient" and r["deleted_at"] is None
}


def _read(record: dict[str, Any], path: str) -> Any:
    head, _, tail = path.partition(".")
    if not tail:
        return record.get(head)
    target = LIVE_PATIENTS.get(record.get(head))  # type: ignore[arg-type]
    return None if target is None else target.get(tail)


ZONES = [ZONE]  # the zone of the pivot being computed (a one-item stack)


def _local(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONES[-1]))


#: The calendar of the pivot being computed: its week's first day (days after Monday) and
#: its fiscal year's first month.
CALENDAR = {"week_start": 0, "fiscal_year_start": 1}


def _fiscal(day: date) -> tuple[str, int]:
    """(the fiscal year's name, its quarter) of ``day``: a year named by the calendar year
    it ends in."""
    start = CALENDAR["fiscal_year_start"]
    if start == 1:
        return str(day.year), (day.month + 2) // 3
    months_in = (day.month - start) % 12
    ends_in = day.year + 1 if day.month >= start else day.year
    return f"FY{ends_in}", months_in // 3 + 1


def _bucket(value: Any, bucket: str, is_date: bool) -> Any:
    if value is None:
        return NULL
    moment = datetime.fromisoformat(value) if is_date else _local(value)
    day = moment.date()
    back = (day.weekday() - CALENDAR["week_start"]) % 7
    return {
        "day": lambda: day.isoformat(),
        "week": lambda: (day - timedelta(days=back)).isoformat(),
        "month": lambda: day.isoformat()[:7],
        "quarter": lambda: "{}-Q{}".format(*_fiscal(day)),
        "year": lambda: _fiscal(day)[0],
        "weekday": lambda: day.isoweekday(),
        "hour": lambda: moment.hour,
    }[bucket]()


def _dimension(d: dict[str, Any]) -> Callable[[dict[str, Any]], Any]:
    """A record -> its group value (a list for multiselect: one row per option)."""
    path = d["field"]
    field_type = "timestamp" if path == "created_at" else _type_of(path)

    def value(record: dict[str, Any]) -> Any:
        v = _read(record, path)
        if "bucket" in d:
            return _bucket(v, d["bucket"], field_type == "date")
        if v is None:
            return [NULL] if field_type == "multiselect" else NULL
        if "bins" in d:
            return sum(1 for edge in d["bins"] if v >= edge)
        if "bin_width" in d:
            # decimal arithmetic, as the engine bins (engines/reports/spec.py "bins of a width")
            return math.floor(Decimal(repr(v)) / Decimal(repr(d["bin_width"])))
        if field_type == "multiselect":
            return list(v) or [NULL]
        return v

    return value


def _type_of(path: str) -> str:
    head, _, tail = path.partition(".")
    if tail:
        return dict((f.key, f.field_type) for f in FORMS["patient"].fields)[tail]
    types = {f.key: f.field_type for f in FORMS["visit"].fields}
    return types.get(head, "text")


def _aggregate(op: str, values: list[Any], count_rows: int, p: float | None = None) -> Any:
    present = [v for v in values if v is not None]
    if op == "count":
        return len(present)
    if op == "count_distinct" and any(isinstance(v, list) for v in present):
        # a multiselect: the distinct options its records hold, as pandas' explode counts
        return int(pd.Series(present, dtype=object).explode().dropna().nunique())
    if op == "count_distinct":
        return len(set(present))
    if not present:
        return None
    if op == "sum":
        return float(sum(present))
    if op == "avg":
        return float(sum(present)) / len(present)
    if op == "median":
        return float(pd.Series(present, dtype=float).median())
    if op == "percentile":
        return float(pd.Series(present, dtype=float).quantile(p))
    if op == "stddev":
        deviation = pd.Series(present, dtype=float).std()  # sample deviation (ddof=1)
        return None if pd.isna(deviation) else float(deviation)
    return min(present) if op == "min" else max(present)


def _expected(
    spec: dict[str, Any], keep: Callable[[dict[str, Any]], bool] = lambda row: True
) -> dict[frozenset[int], dict[tuple[Any, ...], dict[str, Any]]]:
    """pandas over Python-computed dimensions: set -> key -> base + derived measures."""
    dims = list(spec.get("rows", [])) + list(spec.get("columns", []))
    n_rows = len(spec.get("rows", []))
    functions = [_dimension(d) for d in dims]
    tags = {i for i, d in enumerate(dims) if _type_of(d["field"]) == "multiselect"}
    base = [m for m in spec["measures"] if "field" in m or m["op"] == "count"]
    records = [
        r
        for r in LIVE_VISITS
        if keep(r)
        and (spec.get("filter") is None or evaluate(spec["filter"], _filtered(r, spec["filter"])))
    ]
    top = spec.get("top")
    kept: set[Any] | None = None
    if top:
        ranking = pd.DataFrame(
            {
                "d": [functions[0](_record_view(r)) for r in records],
                "v": [1 for _ in records],
            }
        )
        counts = ranking.groupby("d").size().to_dict()
        sign = 1 if top.get("keep") == "smallest" else -1
        order = sorted(counts, key=lambda k: (sign * counts[k], k == NULL, str(k)))
        kept = set(order[: top["n"]])

    def table(s: frozenset[int]) -> pd.DataFrame:
        out: list[dict[str, Any]] = []
        for r in records:
            view = _record_view(r)
            values = [functions[i](view) for i in range(len(dims))]
            if kept is not None and values[0] not in kept:
                if top.get("other") is False:
                    continue  # left out entirely, totals included
                values[0] = OTHER
            choices = [values[i] if i in tags else [values[i]] for i in range(len(dims))]
            choices = [c if i in s else [None] for i, c in enumerate(choices)]
            inputs = {}
            for m in base:
                ok = m.get("filter") is None or evaluate(m["filter"], _filtered(r, m["filter"]))
                inputs[m["key"]] = (
                    (1 if m["op"] == "count" else _read(view, m["field"])) if ok else None
                )
            for combo in product(*choices):
                out.append({**{f"d{i}": combo[i] for i in range(len(dims))}, **inputs})
        return pd.DataFrame(
            out, columns=[f"d{i}" for i in range(len(dims))] + [m["key"] for m in base]
        )

    sets = _sets(spec, len(dims), n_rows)
    expected: dict[frozenset[int], dict[tuple[Any, ...], dict[str, Any]]] = {}
    for s in sets:
        frame = table(s)
        keys = [f"d{i}" for i in sorted(s)]
        grouped: dict[tuple[Any, ...], dict[str, Any]] = {}
        if keys:
            for key, group in frame.groupby(keys, dropna=False, sort=False):
                key = key if isinstance(key, tuple) else (key,)
                grouped[key] = {
                    m["key"]: _aggregate(m["op"], _clean(group[m["key"]]), len(group), m.get("p"))
                    for m in base
                }
        elif len(frame):
            grouped[()] = {
                m["key"]: _aggregate(m["op"], _clean(frame[m["key"]]), len(frame), m.get("p"))
                for m in base
            }
        expected[s] = grouped
    for s, groups in expected.items():
        for key, values in groups.items():
            _derive(spec, dims, n_rows, s, key, values, expected)
    return expected


def _filtered(record: dict[str, Any], rule: Any) -> dict[str, Any]:
    """What a filter reads: the record's data; where the filter reads ``patient.x``, the
    patient's fields under ``patient`` (a dangling or deleted patient: none)."""
    if "patient." not in json.dumps(rule):
        return record["data"]
    return {**record["data"], "patient": LIVE_PATIENTS.get(record["data"].get("patient"))}


def _clean(series: pd.Series) -> list[Any]:
    return [None if (isinstance(v, float) and math.isnan(v)) else v for v in series.tolist()]


def _sets(spec: dict[str, Any], n: int, n_rows: int) -> list[frozenset[int]]:
    rows = list(range(n_rows))
    cols = frozenset(range(n_rows, n))
    sets = {frozenset(range(n)), frozenset(rows), cols, frozenset()}
    for i in range(1, n_rows):
        sets.add(frozenset(rows[:i]) | cols)
        sets.add(frozenset(rows[:i]))
    for j in range(n_rows + 1, n):  # column subtotals: prefixes of the column dimensions
        prefix = frozenset(range(n_rows, j))
        sets.add(prefix)
        for i in range(1, n_rows + 1):
            sets.add(frozenset(rows[:i]) | prefix)
    return list(sets)


def _derive(spec, dims, n_rows, s, key, values, expected) -> None:  # type: ignore[no-untyped-def]
    for m in spec["measures"]:
        op = m["op"]
        if op == "ratio":
            a, b = values.get(m["numerator"]), values.get(m["denominator"])
            values[m["key"]] = None if a is None or not b else a / b * m.get("scale", 1)
        elif op == "difference":
            a, b = values.get(m["minuend"]), values.get(m["subtrahend"])
            values[m["key"]] = None if a is None or b is None else a - b
        elif op == "percent_of_total":
            within = m.get("within", "all")
            ordered = sorted(s)
            keep = {
                "all": set(),
                "row": {i for i in s if i < n_rows},
                "column": {i for i in s if i >= n_rows},
            }[within]
            ref_key = tuple(k for i, k in zip(ordered, key, strict=True) if i in keep)
            total = expected[frozenset(keep)].get(ref_key, {}).get(m["of"])
            a = values.get(m["of"])
            values[m["key"]] = None if a is None or not total else a / total * m.get("scale", 1)


# --------------------------------------------------------------------------------------
# Comparing
# --------------------------------------------------------------------------------------


def _key(header_keys: list[Any], other: bool) -> tuple[Any, ...]:
    out = []
    for index, value in enumerate(header_keys):
        if other and index == 0:
            out.append(OTHER)
        else:
            out.append(NULL if value is None else value)
    return tuple(out)


def _same(actual: Any, wanted: Any) -> bool:
    if wanted is None or actual is None:
        return actual == wanted or (wanted is None and actual == 0)
    if isinstance(wanted, str) or isinstance(actual, str):
        return actual == wanted
    return actual == pytest.approx(wanted, rel=1e-9, abs=1e-9)


def _compare(
    result: PivotResult, spec: dict[str, Any], expected: dict[Any, Any], *, all_rows: bool = True
) -> int:
    n_rows = len(spec.get("rows", []))
    n = n_rows + len(spec.get("columns", []))
    checked = 0
    measures = [m["key"] for m in spec["measures"]]
    sequences = (
        "running_total",
        "rank",
        "moving_average",
        "cumulative_percent",
        "period_over_period",  # _check_periods
    )

    def check_cell(s: frozenset[int], key: tuple[Any, ...], values: dict[str, Any]) -> None:
        nonlocal checked
        wanted = expected[s].get(key)
        for m in spec["measures"]:
            if m["op"] in sequences:
                continue  # read down the rows: _check_sequences
            got = values[m["key"]]
            want = None if wanted is None else wanted[m["key"]]
            if wanted is None and m["op"] in ("count", "count_distinct"):
                want = 0
            assert _same(got, want), (s, key, m["key"], got, want)
        checked += 1

    full = frozenset(range(n))
    if all_rows:  # else a condition on the groups chose some (checked by the caller)
        assert {_key(h.keys, h.other) for h in result.rows if not h.subtotal} == {
            k[:n_rows] for k in expected[full]
        }
    assert {_key(c.keys, False) for c in result.columns if not c.subtotal} == {
        k[n_rows:] for k in expected[full]
    }

    def col_set(column: Any) -> frozenset[int]:
        return frozenset(range(n_rows, n_rows + len(column.keys)))

    for i, header in enumerate(result.rows):
        row_key = _key(header.keys, header.other)
        row_set = frozenset(range(len(row_key)))
        for j, column in enumerate(result.columns):
            check_cell(
                row_set | col_set(column),
                row_key + _key(column.keys, False),
                result.cells[i][j].values,
            )
        if result.row_totals is not None:
            check_cell(row_set, row_key, result.row_totals[i].values)
    if result.column_totals is not None:
        for j, column in enumerate(result.columns):
            check_cell(col_set(column), _key(column.keys, False), result.column_totals[j].values)
    if result.grand_total is not None:
        check_cell(frozenset(), (), result.grand_total.values)
    assert result.measures == measures
    return checked


async def _drill_counts(
    db: Database, result: PivotResult, dialect: str, query: PivotQuery | None = None
) -> None:
    """Every drill-down selects exactly the records its cell counts (measure 'n'), within
    the record API's filter limits; with ``query``, the drill-down built from the cell's
    coordinates alone (what the drill endpoint does) is the same condition."""
    target = ReportTarget(RECORDS, APP)
    placed: list[tuple[Cell, list[Any], list[Any], bool]] = []
    for r, row in enumerate(result.rows):
        for c, column in enumerate(result.columns):
            placed.append((result.cells[r][c], row.keys, column.keys, row.other))
        if result.row_totals is not None:
            placed.append((result.row_totals[r], row.keys, [], row.other))
    for c, column in enumerate(result.columns):
        if result.column_totals is not None:
            placed.append((result.column_totals[c], [], column.keys, False))
    if result.grand_total is not None:
        placed.append((result.grand_total, [], [], False))
    placed = [p for p in placed if "n" in p[0].values]
    kept_rows: list[Any] = []
    if query is not None and query.kept is not None:
        async with db.engine.connect() as conn:
            kept_rows = list((await conn.execute(query.kept)).all())
    for cell, row_keys, col_keys, other in placed:
        assert cell.drill_down is not None
        # compact enough for a link and the record API's filter limits
        assert len(json.dumps(cell.drill_down.filter)) < 20_000, cell.drill_down.filter
        assert operator_count(cell.drill_down.filter) <= MAX_FILTER_OPERATIONS
        for related in cell.drill_down.related:
            assert operator_count(related.filter) <= MAX_FILTER_OPERATIONS
        if query is not None:
            alone = query.drill(row_keys, col_keys, other=other, kept_rows=kept_rows)
            assert alone == cell.drill_down, (row_keys, col_keys, other)
    cells = [p[0] for p in placed]
    if len(cells) > MAX_DRILLS:  # an even sample, always including the first and the last
        step = len(cells) / MAX_DRILLS
        cells = [cells[int(i * step)] for i in range(MAX_DRILLS)] + [cells[-1]]
    conditions = [
        drill_down_condition(c.drill_down, FORMS, target, dialect=dialect, now=NOW)  # type: ignore[arg-type]
        for c in cells
    ]
    for start in range(0, len(conditions), 20):
        chunk = conditions[start : start + 20]
        statement = sa.select(
            *[sa.func.coalesce(sa.func.sum(sa.case((c, 1), else_=0)), 0) for c in chunk]
        ).select_from(RECORDS)
        async with db.engine.connect() as conn:
            counts = (await conn.execute(statement)).one()
        for cell, count in zip(cells[start : start + 20], counts, strict=True):
            assert count == cell.values["n"], (cell.drill_down, count, cell.values)


@pytest.mark.parametrize("name", sorted(PIVOTS))
async def test_pivot_matches_pandas(loaded: Database, name: str) -> None:
    raw = {"form": "visit", **PIVOTS[name]}
    zone = raw.pop("zone", ZONE)
    ZONES[:] = [zone]
    spec = PivotSpec.model_validate(raw)
    dialect = loaded.dialect
    query = compile_pivot(
        spec,
        FORMS,
        ReportTarget(RECORDS, APP),
        dialect=dialect,  # type: ignore[arg-type]
        time_zone=zone,
        now=NOW,
    )
    async with loaded.engine.connect() as conn:
        rows = (await conn.execute(query.statement)).all()
    result = query.reshape(rows, drill=True)
    expected = _expected(raw)
    assert _compare(result, raw, expected) > 0
    if raw.get("sort", {}).get("by") == "n":  # descending by count, at the top level
        assert result.row_totals is not None
        top_level = [
            t.values["n"]
            for h, t in zip(result.rows, result.row_totals, strict=True)
            if len(h.keys) == 1
        ]
        assert top_level == sorted(top_level, reverse=True) and len(top_level) > 1
    if raw.get("subtotals") and len(raw.get("columns", [])) > 1:
        # one subtotal column after each group of the first column dimension
        groups = [tuple(c.keys[:1]) for c in result.columns if not c.subtotal]
        subtotals = [tuple(c.keys) for c in result.columns if c.subtotal]
        assert subtotals == list(dict.fromkeys(groups)) and len(subtotals) > 1
        assert result.columns[-1].subtotal
    if not any(m.get("filter") for m in raw["measures"]) or name == "nps_filters":
        await _drill_counts(loaded, result, dialect, query)


def test_bucket_edges_are_local() -> None:
    """The generated data really has records either side of local midnight."""
    seen = [r["data"].get("seen_at") for r in LIVE_VISITS if r["data"].get("seen_at")]
    hours = {_local(s).hour for s in seen}
    assert {23, 0} <= hours
    assert any(_local(s).date() != date.fromisoformat(s[:10]) for s in seen)


async def test_the_callers_condition_is_anded_in(loaded: Database) -> None:
    """The platform's row filter (SQL over the records table) limits cells, totals and
    drill-downs alike."""
    raw = {"form": "visit", **PIVOTS["multiselect"]}
    ZONES[:] = [ZONE]
    target = ReportTarget(RECORDS, APP, condition=RECORDS.c.created_by == "alice")
    query = compile_pivot(
        PivotSpec.model_validate(raw),
        FORMS,
        target,
        dialect=loaded.dialect,  # type: ignore[arg-type]
        time_zone=ZONE,
        now=NOW,
    )
    async with loaded.engine.connect() as conn:
        result = query.reshape((await conn.execute(query.statement)).all(), drill=True)
    expected = _expected(raw, keep=lambda row: row["created_by"] == "alice")
    assert _compare(result, raw, expected) > 0
    assert result.grand_total is not None
    assert result.grand_total.values["n"] < len(LIVE_VISITS)
    condition = drill_down_condition(
        result.grand_total.drill_down,  # type: ignore[arg-type]
        FORMS,
        target,
        dialect=loaded.dialect,  # type: ignore[arg-type]
        now=NOW,
    )
    async with loaded.engine.connect() as conn:
        count = await conn.scalar(sa.select(sa.func.count()).where(condition))
    assert count == result.grand_total.values["n"]


# --------------------------------------------------------------------------------------
# Analyses read across cells (issue 20, "what managers ask for"): each against pandas over
# the oracle's own groups (``_expected``), in the order the pivot shows its rows
# --------------------------------------------------------------------------------------

SEQUENCE_MEASURES = [
    {"key": "n", "op": "count"},
    {"key": "w", "op": "sum", "field": "weight"},
    {"key": "run", "op": "running_total", "of": "w"},
    {"key": "place", "op": "rank", "of": "n"},
    {"key": "avg3", "op": "moving_average", "of": "w", "window": 3},
    {"key": "cum", "op": "cumulative_percent", "of": "n", "scale": 100},
]
ANALYSES: dict[str, dict[str, Any]] = {
    "sequences_months": {
        "rows": [{"field": "visit_date", "bucket": "month", "fill": True}],
        "columns": [{"field": "completed"}],
        "measures": SEQUENCE_MEASURES,
    },
    "sequences_weeks": {
        "rows": [{"field": "seen_at", "bucket": "week"}],
        "measures": SEQUENCE_MEASURES,
    },
    # period over period: months against the month before and a year before, with the
    # percent change, the difference and the earlier value; with to_date every period cut
    # at NOW's place in it (the KPI's "same days of last month")
    "period_months": {
        "rows": [{"field": "department"}, {"field": "visit_date", "bucket": "month"}],
        "columns": [{"field": "completed"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "w", "op": "avg", "field": "weight"},
            {"key": "pct", "op": "period_over_period", "of": "n", "scale": 100},
            {"key": "diff", "op": "period_over_period", "of": "w", "compare": "difference"},
            {
                "key": "last_year",
                "op": "period_over_period",
                "of": "n",
                "compare": "previous",
                "offset": "year",
            },
            {"key": "mtd", "op": "period_over_period", "of": "n", "to_date": True},
        ],
        "subtotals": True,
    },
    "period_weeks_from_sunday": {
        "columns": [{"field": "seen_at", "bucket": "week"}],
        "rows": [{"field": "channel"}],
        "week_start": "sunday",
        "time_zone": "America/New_York",
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "d", "op": "period_over_period", "of": "n", "compare": "difference"},
            {
                "key": "wtd",
                "op": "period_over_period",
                "of": "n",
                "to_date": True,
                "compare": "difference",
            },
        ],
    },
    "fiscal_quarters": {
        "rows": [{"field": "seen_at", "bucket": "quarter", "fill": True}],
        "fiscal_year_start": 4,
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "yoy", "op": "period_over_period", "of": "n", "offset": "year"},
            {
                "key": "qtd",
                "op": "period_over_period",
                "of": "n",
                "to_date": True,
                "compare": "difference",
            },
        ],
    },
    "fiscal_years_saturday_weekdays": {
        "rows": [{"field": "visit_date", "bucket": "year"}],
        "columns": [{"field": "seen_at", "bucket": "weekday"}],
        "fiscal_year_start": 7,
        "week_start": "saturday",
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "ytd", "op": "period_over_period", "of": "n", "to_date": True},
        ],
    },
    # rows in the order the form lists the options (backwards), columns by a measure
    "sort_options_columns_by_measure": {
        "rows": [{"field": "department"}, {"field": "symptoms"}],
        "columns": [{"field": "channel"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "sum", "field": "weight"}],
        "sort": {"by": "options", "direction": "desc"},
        "column_sort": {"by": "w", "direction": "desc"},
        "subtotals": True,
    },
    # filters reading a related record's fields (one hop), alone or with the form's own,
    # one that holds for a visit without a patient, and a measure filter through the hop
    "related_filters": {
        "rows": [{"field": "department"}],
        "columns": [{"field": "patient.gender"}],
        "filter": {
            "and": [
                {">=": [{"var": "patient.age"}, 30]},
                {"!==": [{"var": "weight"}, None]},
                {"!=": [{"var": "patient.channel"}, "web"]},
            ]
        },
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "vip", "op": "count", "filter": {"in": ["vip", {"var": "patient.tags"}]}},
        ],
    },
    "related_filter_empty_holds": {
        "rows": [{"field": "channel"}],
        "filter": {"!=": [{"var": "patient.gender"}, "female"]},
        "measures": [{"key": "n", "op": "count"}],
    },
    # distinct count of a multiselect: the options the group's records hold
    "distinct_options": {
        "rows": [{"field": "department"}, {"field": "visit_date", "bucket": "quarter"}],
        "columns": [{"field": "completed"}],
        "subtotals": True,
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "kinds", "op": "count_distinct", "field": "symptoms"},
            {
                "key": "heavy_kinds",
                "op": "count_distinct",
                "field": "symptoms",
                "filter": {">": [{"var": "weight"}, 60]},
            },
            {"key": "tags", "op": "count_distinct", "field": "patient.tags"},
        ],
    },
    "distinct_options_by_option": {
        "rows": [{"field": "symptoms"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "kinds", "op": "count_distinct", "field": "symptoms"},
        ],
    },
    # "doctors with an NPS below -50": the innermost groups whose measures (all columns
    # together) satisfy the condition; JsonLogic's null semantics (an empty NPS is below 30)
    "having_nps": {
        "rows": [{"field": "department"}, {"field": "channel"}],
        "columns": [{"field": "completed"}],
        "measures": NPS,
        "having": {"<": [{"var": "nps"}, -50]},
        "subtotals": True,
    },
    "having_count_and": {
        "rows": [{"field": "patient"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "avg", "field": "weight"}],
        "having": {"and": [{">=": [{"var": "n"}, 3]}, {">": [{"var": "w"}, 40]}]},
        "sort": {"by": "n", "direction": "desc"},
    },
    "top_per_group": {
        "rows": [{"field": "department"}, {"field": "patient.gender"}, {"field": "channel"}],
        "columns": [{"field": "completed"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "sum", "field": "weight"}],
        "top_per_group": {"n": 2, "by": "w"},
    },
    "bottom_per_group_with_having": {
        "rows": [{"field": "department"}, {"field": "visit_date", "bucket": "month"}],
        "measures": [{"key": "n", "op": "count"}],
        "top_per_group": {"n": 3, "by": "n", "keep": "smallest"},
        "having": {">": [{"var": "n"}, 1]},
    },
}

#: What each condition on groups admits, written here independently of the evaluator
#: (JsonLogic: an empty value compares as 0).
ADMITS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "having_nps": lambda v: (v["nps"] or 0) < -50,
    "having_count_and": lambda v: v["n"] >= 3 and (v["w"] or 0) > 40,
    "bottom_per_group_with_having": lambda v: v["n"] > 1,
}


def _chosen_rows(raw: dict[str, Any], name: str, expected: dict[Any, Any]) -> set[tuple[Any, ...]]:
    """The innermost row groups that a having and a top per group keep, with pandas."""
    n_rows = len(raw["rows"])
    groups = expected[frozenset(range(n_rows))]
    admits = ADMITS.get(name, lambda v: True)
    kept = [k for k, v in groups.items() if admits(v)]
    top = raw.get("top_per_group")
    if top is None:
        return set(kept)
    frame = pd.DataFrame(
        {"key": kept, "parent": [k[:-1] for k in kept], "v": [groups[k][top["by"]] for k in kept]}
    )
    frame = frame.sort_values("v", ascending=top.get("keep") == "smallest", na_position="last")
    chosen = frame.groupby("parent", sort=False).head(top["n"])
    return set(chosen["key"])


async def _run(db: Database, raw: dict[str, Any]) -> tuple[PivotResult, PivotQuery]:
    zone = raw.get("time_zone", ZONE)
    ZONES[:] = [zone]
    CALENDAR.update(
        week_start={"monday": 0, "sunday": 6, "saturday": 5}[raw.get("week_start", "monday")],
        fiscal_year_start=raw.get("fiscal_year_start", 1),
    )
    query = compile_pivot(
        PivotSpec.model_validate(raw),
        FORMS,
        ReportTarget(RECORDS, APP),
        dialect=db.dialect,  # type: ignore[arg-type]
        time_zone=ZONE,
        now=NOW,
    )
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query.statement)).all()
    return query.reshape(rows, drill=True), query


def _columns_of(
    result: PivotResult, n_rows: int
) -> list[tuple[frozenset[int], tuple[Any, ...], list[Cell]]]:
    """Every run down the rows: (set, column key, cells), the row totals' run last."""
    data = [i for i, h in enumerate(result.rows) if not h.subtotal]
    out = []
    for j, column in enumerate(result.columns):
        s = frozenset(range(n_rows + len(column.keys)))
        out.append((s, _key(column.keys, False), [result.cells[i][j] for i in data]))
    if result.row_totals is not None:
        out.append((frozenset(range(n_rows)), (), [result.row_totals[i] for i in data]))
    return out


def _value(
    expected: dict[Any, Any],
    raw: dict[str, Any],
    s: frozenset[int],
    key: tuple[Any, ...],
    measure: str,
) -> Any:
    """A base or derived measure of a group; a group without records counts 0."""
    found = expected[s].get(key)
    if found is not None:
        return found.get(measure)
    op = next(m["op"] for m in raw["measures"] if m["key"] == measure)
    return 0 if op in ("count", "count_distinct") else None


def _check_sequences(result: PivotResult, raw: dict[str, Any], expected: dict[Any, Any]) -> int:
    n_rows = len(raw.get("rows", []))
    keys = [_key(h.keys, h.other) for h in result.rows if not h.subtotal]
    checked = 0
    for s, column_key, cells in _columns_of(result, n_rows):
        for m in raw["measures"]:
            if m["op"] not in ("running_total", "rank", "moving_average", "cumulative_percent"):
                continue
            series = pd.Series(
                [_value(expected, raw, s, k + column_key, m["of"]) for k in keys], dtype=float
            )
            if m["op"] == "running_total":
                want = series.fillna(0).cumsum()
            elif m["op"] == "rank":
                want = series.rank(method="min", ascending=False)
            elif m["op"] == "moving_average":
                want = series.rolling(m["window"], min_periods=1).mean()
            else:
                total = series.sum()
                want = series.fillna(0).cumsum() / total * m.get("scale", 1)
            for cell, value in zip(cells, want.tolist(), strict=True):
                wanted = None if isinstance(value, float) and math.isnan(value) else value
                assert _same(cell.values[m["key"]], wanted), (m["key"], column_key, cell.values)
                checked += 1
    return checked


def _earlier(key: Any, bucket: str, offset: str) -> Any:
    """The key of the period before ``key`` (or a year before), worked out here on dates."""
    if key in (NULL, OTHER):
        return None
    if bucket in ("day", "week"):
        day = date.fromisoformat(key)
        if offset == "year":
            if bucket == "week":
                return (day - timedelta(days=364)).isoformat()
            return date(
                day.year - 1, day.month, min(day.day, 28) if day.month == 2 else day.day
            ).isoformat()
        return (day - timedelta(days=7 if bucket == "week" else 1)).isoformat()
    fy = key.startswith("FY")
    text = key[2:] if fy else key
    if bucket == "year":
        out = str(int(text) - 1)
    elif bucket == "quarter":
        year, quarter = int(text[:4]), int(text[-1])
        n = year * 4 + quarter - 1 - (4 if offset == "year" else 1)
        out = f"{n // 4}-Q{n % 4 + 1}"
    else:
        year, month = int(text[:4]), int(text[5:7])
        n = year * 12 + month - 1 - (12 if offset == "year" else 1)
        out = f"{n // 12}-{n % 12 + 1:02d}"
    return ("FY" if fy else "") + out


def _place(record: dict[str, Any], d: dict[str, Any]) -> bool:
    """Whether a record's date is not after NOW's place in its period (to_date)."""
    value = _read(_record_view(record), d["field"])
    if value is None:
        return False
    is_date = _type_of(d["field"]) == "date"
    day = (datetime.fromisoformat(value) if is_date else _local(value)).date()
    today = NOW.astimezone(ZoneInfo(ZONES[-1])).date()
    if d["bucket"] == "week":
        start = CALENDAR["week_start"]
        return (day.weekday() - start) % 7 <= (today.weekday() - start) % 7
    if d["bucket"] == "day":
        return True
    months = {"month": 1, "quarter": 3, "year": 12}[d["bucket"]]
    start = CALENDAR["fiscal_year_start"]

    def where(moment: date) -> tuple[int, int]:
        return ((moment.month - start) % 12) % months, moment.day

    return where(day) <= where(today)


def _check_periods(result: PivotResult, raw: dict[str, Any], expected: dict[Any, Any]) -> int:
    """Every period_over_period value against the same group a period (or a year) before,
    in the oracle's groups; with to_date, in groups of the records up to NOW's place."""
    n_rows = len(raw.get("rows", []))
    dims = list(raw.get("rows", [])) + list(raw.get("columns", []))
    at = next(
        i
        for i, d in enumerate(dims)
        if d.get("bucket") in ("day", "week", "month", "quarter", "year")
    )
    checked = 0
    cut = None
    for m in raw["measures"]:
        if m["op"] != "period_over_period":
            continue
        source = expected
        if m.get("to_date"):
            if cut is None:
                base = [x for x in raw["measures"] if x["op"] != "period_over_period"]
                cut = _expected({**raw, "measures": base}, keep=lambda r: _place(r, dims[at]))
            source = cut
        placed = []
        for i, header in enumerate(result.rows):
            row_key = _key(header.keys, header.other)
            for j, column in enumerate(result.columns):
                placed.append(
                    (row_key + _key(column.keys, False), len(row_key), result.cells[i][j])
                )
            if result.row_totals is not None:
                placed.append((row_key, len(row_key), result.row_totals[i]))
        for key, rows_in_key, cell in placed:
            s = frozenset(
                list(range(rows_in_key)) + [n_rows + c for c in range(len(key) - rows_in_key)]
            )
            position = sorted(s).index(at) if at in s else None
            want = None
            if position is not None:
                before = _earlier(key[position], dims[at]["bucket"], m.get("offset", "period"))
                if before is not None:
                    earlier_key = (*key[:position], before, *key[position + 1 :])
                    now = _value(source, raw, s, key, m["of"])
                    then = _value(source, raw, s, earlier_key, m["of"])
                    compare = m.get("compare", "percent_change")
                    if compare == "previous":
                        want = then
                    elif now is not None and then is not None:
                        if compare == "difference":
                            want = now - then
                        elif then:
                            want = (now / then - 1) * m.get("scale", 1)
            assert _same(cell.values[m["key"]], want), (m["key"], key, cell.values, want)
            checked += want is not None
    return checked


def _check_orders(result: PivotResult, raw: dict[str, Any], expected: dict[Any, Any]) -> None:
    """Rows by the options' order in the form (descending: backwards, the empty group
    last), at both levels; columns by the measure over all rows, largest first."""
    options = {
        f.key: [o.value for o in getattr(f, "options", None) or []] for f in FORMS["visit"].fields
    }
    reverse = raw["sort"]["direction"] == "desc"

    def place(field: str, value: Any) -> tuple[int, int]:
        if value is None:
            return (1, 0)
        order = options[field].index(value)
        return (0, -order if reverse else order)

    fields = [d["field"] for d in raw["rows"]]
    data = [h.keys for h in result.rows if not h.subtotal]
    wanted = sorted(data, key=lambda k: tuple(place(f, v) for f, v in zip(fields, k, strict=True)))
    assert data == wanted and len({k[0] for k in data}) > 2
    columns = [c.keys for c in result.columns if not c.subtotal]
    n_rows = len(raw["rows"])
    by = raw["column_sort"]["by"]
    totals = [expected[frozenset({n_rows})][tuple(_key(k, False))][by] for k in columns]
    assert totals == sorted(totals, reverse=True) and len(set(totals)) > 2


@pytest.mark.parametrize("name", sorted(ANALYSES))
async def test_analyses_match_pandas(loaded: Database, name: str) -> None:
    raw = {"form": "visit", **ANALYSES[name]}
    result, query = await _run(loaded, raw)
    expected = _expected(raw)
    if raw.get("having") is None and raw.get("top_per_group") is None:
        assert _compare(result, raw, expected) > 0
        # the drill-downs of fiscal periods and of weeks from another day select their cells
        await _drill_counts(loaded, result, loaded.dialect, query)
        if raw.get("week_start") == "saturday":  # weekdays from the week's first day
            assert [c.keys[0] for c in result.columns][:3] == [6, 7, 1]
        if raw.get("column_sort"):
            _check_orders(result, raw, expected)
        if raw.get("fiscal_year_start", 1) != 1:
            assert all(h.keys[0].startswith("FY") and h.labels[0].startswith("FY")  # empty aside
                       for h in result.rows if h.keys[0] is not None)  # fmt: skip
        ops = {m["op"] for m in raw["measures"]}
        if ops & {"running_total", "rank", "moving_average", "cumulative_percent"}:
            assert _check_sequences(result, raw, expected) > 0
        if "period_over_period" in ops:
            assert _check_periods(result, raw, expected) > 0
        return
    assert _compare(result, raw, expected, all_rows=False) > 0
    n_rows = len(raw["rows"])
    shown = {_key(h.keys, h.other) for h in result.rows if len(h.keys) == n_rows}
    wanted = _chosen_rows(raw, name, expected)
    if raw.get("top_per_group") is not None:  # ties: any of the equal ones may be kept
        by = raw["top_per_group"]["by"]
        groups = expected[frozenset(range(n_rows))]
        assert sorted((k[:-1], groups[k][by]) for k in shown) == sorted(
            (k[:-1], groups[k][by]) for k in wanted
        )
    else:
        assert shown == wanted
    assert 0 < len(shown) < len(expected[frozenset(range(n_rows))])
    assert result.rows_left_out == len(expected[frozenset(range(n_rows))]) - len(shown)
    # a subtotal row is listed for a group with a listed row only
    for header in result.rows:
        if header.subtotal:
            prefix = _key(header.keys, header.other)
            assert any(k[: len(prefix)] == prefix for k in shown), prefix


#: top_per_group with its "Other" (each group's rest, aggregated by the database in a second
#: statement): with and without columns, measures that cannot be re-added (distinct count,
#: median), a relation hop among the outer dimensions and as the innermost one, buckets.
GROUP_OTHERS: dict[str, dict[str, Any]] = {
    "with_columns": {
        "rows": [{"field": "department"}, {"field": "channel"}],
        "columns": [{"field": "completed"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "patients", "op": "count_distinct", "field": "patient"},
            {"key": "w", "op": "median", "field": "weight"},
        ],
        "top_per_group": {"n": 1, "by": "n"},
        "subtotals": True,
    },
    "hop_outer_no_columns": {
        "rows": [{"field": "department"}, {"field": "patient.gender"}, {"field": "channel"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "w", "op": "sum", "field": "weight"},
            {"key": "m", "op": "median", "field": "weight"},
        ],
        "top_per_group": {"n": 2, "by": "w"},
    },
    "hop_inner_smallest_with_having": {
        "rows": [{"field": "visit_date", "bucket": "quarter"}, {"field": "patient.gender"}],
        "columns": [{"field": "channel"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "patients", "op": "count_distinct", "field": "patient"},
        ],
        "top_per_group": {"n": 1, "by": "n", "keep": "smallest"},
        "having": {">": [{"var": "n"}, 1]},
    },
    "month_inner": {
        "rows": [{"field": "department"}, {"field": "visit_date", "bucket": "month"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "w", "op": "avg", "field": "weight"}],
        "top_per_group": {"n": 3, "by": "n"},
        "subtotals": True,
    },
}


@pytest.mark.parametrize("name", sorted(GROUP_OTHERS))
async def test_group_other_matches_pandas(loaded: Database, name: str) -> None:
    """Each group's "Other" row holds what pandas computes over the group's records whose
    innermost value is none of the listed ones, sits after the group's rows and before its
    subtotal, and its drill-downs (inline and from its coordinates) select those records."""
    raw = {"form": "visit", **GROUP_OTHERS[name]}
    spec = PivotSpec.model_validate(raw)
    assert spec.top_per_group is not None and spec.top_per_group.other  # the default
    _, query = await _run(loaded, raw)
    async with loaded.engine.connect() as conn:
        rows = (await conn.execute(query.statement)).all()
        shown, listed = query.shown(rows)
        statement = query.group_other(shown)
        assert statement is not None
        others = (await conn.execute(statement)).all()
    result = query.reshape(rows, drill=True, others=others)
    n_rows = len(raw["rows"])
    dims = [_dimension(d) for d in raw["rows"]]
    outer_spec = {**raw, "rows": raw["rows"][:-1]}
    for key in ("top_per_group", "having", "subtotals"):
        outer_spec.pop(key, None)
    checked = 0
    previous: Any = None
    for i, header in enumerate(result.rows):
        if not header.other:
            if not header.subtotal:
                previous = header
            continue
        # after a listed row of its group; the next row is the group's subtotal, if any
        assert previous is not None and previous.keys[:-1] == header.keys[:-1]
        if raw.get("subtotals"):
            following = result.rows[i + 1]
            assert following.subtotal and following.keys == header.keys[:-1]
        outer = tuple(header.keys[:-1])
        inner = {NULL if v is None else v for v in listed[outer]}
        wanted_outer = tuple(NULL if v is None else v for v in outer)

        def rest(record: dict[str, Any], outer: Any = wanted_outer, inner: Any = inner) -> bool:
            view = _record_view(record)
            values = tuple(f(view) for f in dims)
            return values[:-1] == outer and values[-1] not in inner

        expected = _expected(outer_spec, keep=rest)
        outer_set = frozenset(range(n_rows - 1))
        for j, column in enumerate(result.columns):
            s = outer_set | frozenset(range(n_rows - 1, n_rows - 1 + len(column.keys)))
            wanted = expected[s].get(wanted_outer + _key(column.keys, False))
            for m in raw["measures"]:
                got = result.cells[i][j].values[m["key"]]
                want = wanted[m["key"]] if wanted else (0 if m["op"].startswith("count") else None)
                assert _same(got, want), (header.keys, column.keys, m["key"], got, want)
        if result.row_totals is not None:
            totals = result.row_totals[i].values
            for m in raw["measures"]:
                want = expected[outer_set][wanted_outer][m["key"]]
                assert _same(totals[m["key"]], want), (header.keys, m["key"])
            assert totals["n"] > 0
        # from its coordinates alone, with what the group lists: the same condition
        for j, column in enumerate(result.columns):
            alone = query.drill(header.keys, column.keys, group_kept=listed[outer])
            assert alone == result.cells[i][j].drill_down
        checked += 1
    assert checked >= 2, name
    # the listed rows are the ones a pivot without "Other" lists; every row's records once
    plain, _ = await _run(
        loaded, {**raw, "top_per_group": {**raw["top_per_group"], "other": False}}
    )
    assert [h.keys for h in plain.rows] == [h.keys for h in result.rows if not h.other]
    assert result.rows_left_out == plain.rows_left_out
    # a group's listed rows and its Other count every record of the group once
    assert result.row_totals is not None
    whole = _expected(outer_spec)[frozenset(range(n_rows - 1))]
    counted: dict[tuple[Any, ...], int] = {}
    for header, total in zip(result.rows, result.row_totals, strict=True):
        if not header.subtotal:
            outer_key = tuple(NULL if v is None else v for v in header.keys[:-1])
            counted[outer_key] = counted.get(outer_key, 0) + int(total.values["n"] or 0)
    with_other = {
        tuple(NULL if v is None else v for v in h.keys[:-1]) for h in result.rows if h.other
    }
    assert with_other and all(counted[k] == whole[k]["n"] for k in with_other), counted
    await _drill_counts(loaded, result, loaded.dialect)


def _alike(a: Any, b: Any, path: str = "") -> None:
    """``a`` equals ``b``, floats within rounding (sums re-added in another order)."""
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-9), path
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _alike(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _alike(x, y, f"{path}/{i}")
    else:
        assert a == b, path


ADDS_UP = ("count", "sum", "avg", "min", "max")
#: Every pivot and analysis above (those whose measures do not all add up are not rolled
#: up), and one with a filter nothing passes (the grand total of no records is still one
#: row: count 0, the rest empty)
ROLLED_UP = {
    **PIVOTS,
    **{f"analysis_{name}": raw for name, raw in ANALYSES.items()},
    **{
        f"{name}_adding_up": {
            **PIVOTS[name],
            "measures": [
                {"key": "n", "op": "count"},
                {"key": "w", "op": "sum", "field": "weight"},
                {"key": "a", "op": "avg", "field": "satisfaction"},
                {"key": "hi", "op": "max", "field": "seen_at"},
            ],
            "sort": {"by": "label"},
        }
        for name in ("subtotals_sorted", "column_subtotals", "top_other", "fields_all_measures")
    },
    "nothing_passes": {
        "rows": [{"field": "department"}, {"field": "seen_at", "bucket": "month"}],
        "columns": [{"field": "symptoms"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "w", "op": "sum", "field": "weight"},
            {"key": "a", "op": "avg", "field": "satisfaction"},
            {"key": "lo", "op": "min", "field": "visit_date"},
        ],
        "filter": {"==": [{"var": "weight"}, -12345]},
        "totals": True,
        "subtotals": True,
    },
}


@pytest.mark.parametrize("name", sorted(ROLLED_UP))
async def test_rolled_up_totals_match_the_databases_grouping_sets(
    loaded: Database, name: str
) -> None:
    """Totals added up from the finest groups (.rollup) against the database grouping every
    set itself: the same result, drill-downs included, on both databases."""
    raw = {"form": "visit", **ROLLED_UP[name]}
    zone = raw.pop("zone", ZONE)
    spec = PivotSpec.model_validate(raw)
    results = []
    for roll_up in (True, False):
        query = compile_pivot(
            spec,
            FORMS,
            ReportTarget(RECORDS, APP),
            dialect=loaded.dialect,  # type: ignore[arg-type]
            time_zone=zone,
            now=NOW,
            roll_up=roll_up,
        )
        async with loaded.engine.connect() as conn:
            rows = (await conn.execute(query.statement)).all()
        results.append((query.rolled_up, query.reshape(rows, drill=True).model_dump()))
    (rolled, by_sets), (not_rolled, by_database) = results
    assert not not_rolled
    adds_up = all(  # derived measures (ratios, shares...) are computed from the others
        m["op"] in ("count", "sum", "avg", "min", "max")
        for m in raw["measures"]
        if m["op"] in ("count_distinct", "median", "percentile", "stddev", *ADDS_UP)
    )
    if not adds_up:
        assert not rolled
        return
    _alike(by_sets, by_database)
    if raw.get("totals") or raw.get("subtotals"):
        assert rolled
    if name == "nothing_passes":
        assert by_sets["rows"] == [] and by_sets["grand_total"]["values"] == {
            "n": 0,
            "w": None,
            "a": None,
            "lo": None,
        }


async def test_a_multiselects_group_other_counts_the_options_it_does_not_list(
    loaded: Database,
) -> None:
    """A multiselect as the innermost row dimension of top_per_group: each group's "Other"
    counts its records' options that the group does not list (a record counts once per such
    option, as every option row counts it), and drills into the records with at least one
    of them — inline and from its coordinates alike."""
    raw = {
        "form": "visit",
        "rows": [{"field": "department"}, {"field": "symptoms"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "patients", "op": "count_distinct", "field": "patient"},
            {"key": "w", "op": "sum", "field": "weight"},
        ],
        "top_per_group": {"n": 1, "by": "n"},
    }
    _, query = await _run(loaded, raw)
    present: dict[tuple[Any, ...], list[Any]] = {}
    async with loaded.engine.connect() as conn:
        rows = (await conn.execute(query.statement)).all()
        shown, listed = query.shown(rows, present)
        statement = query.group_other(shown)
        assert statement is not None
        others = (await conn.execute(statement)).all()
    result = query.reshape(rows, drill=True, others=others)
    checked = 0
    for i, header in enumerate(result.rows):
        if not header.other:
            continue
        (department,) = header.keys[:-1]
        kept = listed[(department,)]
        pairs = []  # (record, option) of the group's records, options not listed
        for row in LIVE_VISITS:
            view = _record_view(row)
            if view.get("department") != department:
                continue
            options = view.get("symptoms")
            options = options if isinstance(options, list) and options else [None]
            pairs += [(view, option) for option in options if option not in kept]
        assert pairs, department
        values = result.cells[i][0].values
        assert values["n"] == len(pairs)
        assert values["patients"] == len({v["patient"] for v, _ in pairs if v.get("patient")})
        weights = [v["weight"] for v, _ in pairs if isinstance(v.get("weight"), int | float)]
        assert _same(values["w"], sum(weights) if weights else None)
        drill_down = result.cells[i][0].drill_down
        assert drill_down is not None
        selected = {
            row["id"]
            for row in LIVE_VISITS
            if truthy(evaluate(drill_down.filter, _record_view(row), now=NOW))
        }
        assert selected == {v["id"] for v, _ in pairs}
        alone = query.drill(
            header.keys,
            [],
            group_kept=kept,
            group_present=present[(department,)],
        )
        assert alone == drill_down
        checked += 1
    assert checked >= 3
