"""PivotSpec validation, check() pointers, compile refusals, reshape and the zone table
(pure: no database)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pydantic
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from formloom.engines.forms import FormSpec
from formloom.engines.logic.zones import offset_periods
from formloom.engines.reports import (
    MAX_MEASURES,
    PivotError,
    PivotQuery,
    PivotSpec,
    ReportTarget,
    check,
    compile_pivot,
)

NOW = datetime(2026, 3, 1, tzinfo=UTC)
PATIENT = FormSpec.model_validate(
    {
        "key": "patient",
        "label": "Patient",
        "fields": [
            {"key": "name", "type": "text"},
            {"key": "gender", "type": "select", "options": [{"value": "f"}, {"value": "m"}]},
            {"key": "doctor", "type": "relation", "target": "staff"},  # no such form
        ],
    }
)
VISIT = FormSpec.model_validate(
    {
        "key": "visit",
        "label": "Visit",
        "fields": [
            {"key": "patient", "type": "relation", "target": "patient"},
            {"key": "department", "type": "select", "options": [{"value": "a"}, {"value": "b"}]},
            {"key": "note", "type": "text"},
            {"key": "score", "type": "integer"},
            {"key": "day", "type": "date"},
            {"key": "seen_at", "type": "datetime"},
            {"key": "tags", "type": "multiselect", "options": [{"value": "x"}]},
            {"key": "photo", "type": "image"},
        ],
    }
)
FORMS = {"patient": PATIENT, "visit": VISIT}
TABLE = sa.table(
    "records",
    *[sa.column(name) for name in ("id", "app", "form", "deleted_at", "created_by", "updated_by")],
    sa.column("data", sa.JSON()),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
)
COUNT = [{"key": "n", "op": "count"}]


def spec(**parts: Any) -> PivotSpec:
    return PivotSpec.model_validate({"form": "visit", "measures": COUNT, **parts})


def codes(**parts: Any) -> list[tuple[str, str]]:
    return [(pointer, code) for pointer, code, _ in check(spec(**parts), FORMS)]


def test_a_good_spec_has_no_issues() -> None:
    assert (
        codes(
            rows=[{"field": "department"}, {"field": "seen_at", "bucket": "month"}],
            columns=[{"field": "patient.gender"}],
            measures=[
                {"key": "n", "op": "count"},
                {"key": "s", "op": "avg", "field": "score", "filter": {">": [{"var": "score"}, 3]}},
                {"key": "p", "op": "percent_of_total", "of": "n", "scale": 100},
                {"key": "r", "op": "ratio", "numerator": "s", "denominator": "n"},
            ],
            top={"n": 3, "by": "n"},
            sort={"by": "s", "direction": "desc"},
        )
        == []
    )


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        ({"rows": [{"field": "nope"}]}, [("/rows/0/field", "unknown_field")]),
        ({"columns": [{"field": "patient.nope"}]}, [("/columns/0/field", "unknown_field")]),
        ({"rows": [{"field": "note.name"}]}, [("/rows/0/field", "not_a_relation")]),
        (
            {"rows": [{"field": "score", "bucket": "month"}]},
            [("/rows/0/bucket", "bucket_needs_date")],
        ),
        ({"rows": [{"field": "day", "bucket": "hour"}]}, [("/rows/0/bucket", "bucket_needs_time")]),
        ({"rows": [{"field": "note", "bins": [1, 2]}]}, [("/rows/0/bins", "bins_need_number")]),
        ({"rows": [{"field": "score", "bins": [3, 1]}]}, [("/rows/0/bins", "bins_not_ascending")]),
        ({"rows": [{"field": "photo"}]}, [("/rows/0/field", "not_groupable")]),
        (
            {"measures": [{"key": "s", "op": "sum", "field": "note"}]},
            [("/measures/0/field", "not_numeric")],
        ),
        (
            {"measures": [{"key": "s", "op": "avg", "field": "patient.name"}]},
            [("/measures/0/field", "not_numeric")],
        ),
        (
            {"measures": [{"key": "s", "op": "max", "field": "tags"}]},
            [("/measures/0/field", "not_ordered")],
        ),
        ({"measures": [{"key": "s", "op": "sum"}]}, [("/measures/0", "missing_field")]),
        (
            {"measures": [{"key": "r", "op": "ratio", "numerator": "x", "denominator": "r"}]},
            [("/measures/0/numerator", "unknown_measure"), ("/measures/0", "measure_cycle")],
        ),
        (
            {"measures": [*COUNT, {"key": "n", "op": "count"}]},
            [("/measures/1/key", "duplicate_measure")],
        ),
        (
            {"filter": {"and": [{"var": "note"}, {"map": [[1], {"var": ""}]}]}},
            [("/filter/and/1/map", "invalid_filter")],
        ),
        (
            {"measures": [{"key": "n", "op": "count", "filter": {"==": [{"var": "zzz"}, 1]}}]},
            [("/measures/0/filter/==/0/var", "invalid_filter")],
        ),
        ({"sort": {"by": "zzz"}}, [("/sort/by", "unknown_measure")]),
        ({"top": {"n": 3, "by": "n"}}, [("/top", "top_needs_rows")]),
        (
            {"rows": [{"field": "tags"}], "top": {"n": 3, "by": "n"}},
            [("/top", "top_on_multiselect")],
        ),
    ],
)
def test_check_reports_pointers(parts: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert codes(**parts) == expected


def test_relation_to_a_missing_form() -> None:
    forms = {"visit": VISIT, "patient": PATIENT}
    problems = check(
        PivotSpec.model_validate(
            {"form": "patient", "measures": COUNT, "rows": [{"field": "doctor.name"}]}
        ),
        forms,
    )
    assert [(p, c) for p, c, _ in problems] == [("/rows/0/field", "unknown_form")]
    assert "staff" in problems[0][2]


def test_unknown_source_form() -> None:
    problems = check(PivotSpec.model_validate({"form": "nope", "measures": COUNT}), FORMS)
    assert [(p, c) for p, c, _ in problems] == [("/form", "unknown_form")]


def test_ten_thousand_measures_are_refused_without_checking_each() -> None:
    measures = [{"key": f"m{i}", "op": "count"} for i in range(10_000)]
    problems = codes(measures=measures)
    assert problems == [("/measures", "too_many_measures")]
    assert MAX_MEASURES == 50


def test_shape_is_strict() -> None:
    with pytest.raises(pydantic.ValidationError):
        PivotSpec.model_validate({"form": "visit", "measures": COUNT, "colour": "red"})
    with pytest.raises(pydantic.ValidationError):
        spec(rows=[{"field": "department", "bucket": "fortnight"}])
    with pytest.raises(pydantic.ValidationError):
        spec(measures=[])


def test_json_schema_documents_every_property() -> None:
    schema = PivotSpec.model_json_schema()
    for name, definition in [("PivotSpec", schema), *schema["$defs"].items()]:
        for prop, body in definition["properties"].items():
            assert body.get("description"), f"{name}.{prop} has no description"
    json.dumps(schema)


def target() -> ReportTarget:
    return ReportTarget(TABLE, "clinic")


def test_compile_refuses_bad_specs_and_ranking_by_a_median_on_sqlite() -> None:
    with pytest.raises(PivotError) as raised:
        compile_pivot(
            spec(rows=[{"field": "nope"}]),
            FORMS,
            target(),
            dialect="sqlite",
            time_zone="UTC",
            now=NOW,
        )
    assert raised.value.issues[0][:2] == ("/rows/0/field", "unknown_field")
    # a median is computed on both databases; ranking a top-N by one needs PostgreSQL
    median = spec(measures=[{"key": "m", "op": "median", "field": "score"}])
    for dialect in ("sqlite", "postgresql"):
        compile_pivot(median, FORMS, target(), dialect=dialect, time_zone="UTC", now=NOW)
    ranked = spec(
        rows=[{"field": "department"}],
        measures=[{"key": "m", "op": "median", "field": "score"}],
        top={"n": 1, "by": "m"},
    )
    with pytest.raises(PivotError, match="median needs PostgreSQL") as refused:
        compile_pivot(ranked, FORMS, target(), dialect="sqlite", time_zone="UTC", now=NOW)
    assert refused.value.issues[0][:2] == ("/top/by", "top_by_distribution")
    compile_pivot(ranked, FORMS, target(), dialect="postgresql", time_zone="UTC", now=NOW)
    with pytest.raises(PivotError, match="time zone"):
        compile_pivot(spec(), FORMS, target(), dialect="sqlite", time_zone="Mars/Base", now=NOW)


def _compiled(pivot: PivotSpec, dialect: str) -> tuple[PivotQuery, str]:
    """The pivot compiled for ``dialect`` (in Asia/Shanghai), and its SQL text."""
    query = compile_pivot(
        pivot,
        FORMS,
        target(),
        dialect=dialect,  # type: ignore[arg-type]
        time_zone="Asia/Shanghai",
        now=NOW,
    )
    compiler = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    return query, str(query.statement.compile(dialect=compiler))


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_one_statement_with_bound_values(dialect: str) -> None:
    query, sql = _compiled(
        spec(
            rows=[{"field": "department"}, {"field": "tags"}],
            columns=[{"field": "seen_at", "bucket": "month"}],
            filter={"==": [{"var": "note"}, "it's; DROP TABLE records"]},
            subtotals=True,
            # with a distinct count every set is grouped from the records
            measures=[*COUNT, {"key": "p", "op": "count_distinct", "field": "patient"}],
        ),
        dialect,
    )
    assert "DROP TABLE" not in sql
    assert not query.rolled_up
    # the row bound is written out, not bound: a prepared statement's generic plan would
    # guess a small LIMIT and walk an index to stop early (see compile_pivot)
    assert f"LIMIT {query.limit}" in sql
    if dialect == "postgresql":
        assert "GROUPING SETS" in sql and "timezone(" in sql
    else:
        assert "UNION ALL" in sql and "seconds" in sql


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_measures_that_add_up_are_grouped_once_per_branch(dialect: str) -> None:
    """Counts, sums, minimums, maximums and averages: the records are read and grouped once
    per UNION ALL branch (the multiselect's exploded one and the rest), and the grouping
    sets group those groups."""
    measures = [
        *COUNT,
        {"key": "s", "op": "sum", "field": "score"},
        {"key": "a", "op": "avg", "field": "score"},
        {"key": "lo", "op": "min", "field": "seen_at"},
        {"key": "hi", "op": "max", "field": "score"},
    ]
    query, sql = _compiled(
        spec(
            rows=[{"field": "department"}, {"field": "tags"}],
            columns=[{"field": "seen_at", "bucket": "month"}],
            subtotals=True,
            totals=True,
            measures=measures,
        ),
        dialect,
    )
    assert query.rolled_up and len(query.sets) > len(query.branches) == 2
    assert sql.count("FROM records") == 2
    if dialect == "postgresql":
        assert sql.count("GROUPING SETS") == 2 and sql.count("AS finest_") == 2
    else:  # one SELECT per set over the groups, grouped once (a materialized CTE)
        assert sql.count("AS MATERIALIZED") == 2
        assert sql.count("FROM finest_") == len(query.sets)


def test_offset_periods_match_zoneinfo() -> None:
    for zone in ("Asia/Shanghai", "America/New_York", "Europe/London", "UTC"):
        periods = offset_periods(zone)
        assert periods[0][0] == ""
        info = ZoneInfo(zone)
        for start, offset in periods[1:]:
            moment = datetime.strptime(start, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            delta = moment.astimezone(info).utcoffset()
            assert delta is not None and delta.total_seconds() == offset, (zone, start)
    assert offset_periods("Asia/Shanghai")[-1] == ("1991-09-14T17:00:00Z", 28800)
    assert len(offset_periods("UTC")) == 1


def _ratio_query(max_cells: int = 100) -> Any:
    return compile_pivot(
        spec(
            rows=[{"field": "department"}],
            columns=[{"field": "score", "bins": [5]}],
            measures=[
                {"key": "n", "op": "count"},
                {"key": "s", "op": "sum", "field": "score"},
                {"key": "avg", "op": "ratio", "numerator": "s", "denominator": "n"},
                {"key": "share", "op": "percent_of_total", "of": "n", "scale": 100},
            ],
            sort={"by": "n", "direction": "desc"},
        ),
        FORMS,
        target(),
        dialect="sqlite",
        time_zone="UTC",
        now=NOW,
        max_cells=max_cells,
    )


# (branch, GROUPING mask, department, score bin, count, sum): masks are PostgreSQL's
# GROUPING(d0, d1) -- a bit set for each rolled-up dimension.
ROWS = [
    (0, 0, "a", 0, 2, 6),
    (0, 0, "a", 1, 1, 7),
    (0, 0, "b", 1, 5, 40),
    (0, 0, None, 0, 1, 1),
    (0, 1, "a", None, 3, 13),
    (0, 1, "b", None, 5, 40),
    (0, 1, None, None, 1, 1),
    (0, 2, None, 0, 3, 7),
    (0, 2, None, 1, 6, 47),
    (0, 3, None, None, 9, 54),
]


def test_reshape_builds_the_matrix_from_grouped_rows() -> None:
    query = _ratio_query()
    result = query.reshape(ROWS, drill=True)
    assert [h.keys for h in result.rows] == [["b"], ["a"], [None]]  # by count, descending
    assert [h.labels for h in result.rows][-1] == ["(empty)"]
    assert [h.labels for h in result.columns] == [["< 5"], ["≥ 5"]]
    assert result.row_dimensions == ["Department"] and result.column_dimensions == ["Score"]
    assert result.cells[0][0].values == {"n": 0, "s": None, "avg": None, "share": 0.0}
    assert result.cells[1][0].values == {"n": 2, "s": 6.0, "avg": 3.0, "share": 2 / 9 * 100}
    assert result.row_totals is not None and result.row_totals[1].values["avg"] == 13 / 3
    assert result.grand_total is not None and result.grand_total.values["share"] == 100.0
    assert result.column_totals is not None and result.column_totals[1].values["n"] == 6
    assert query.reshape(ROWS).cells[1][1].drill_down is None  # only when asked for
    drill = result.cells[1][1].drill_down.filter
    assert drill == {
        "and": [
            {"===": [{"var": "department"}, "a"]},
            {"and": [{"!==": [{"var": "score"}, None]}, {">=": [{"var": "score"}, 5]}]},
        ]
    }
    assert result.rows[2].keys == [None]
    assert result.cells[2][0].drill_down.filter["and"][0] == {"===": [{"var": "department"}, None]}


def test_reshape_refuses_too_many_cells() -> None:
    with pytest.raises(PivotError, match="more than the limit of 5"):
        _ratio_query(max_cells=5).reshape(ROWS)
    with pytest.raises(PivotError) as raised:  # the LIMIT was reached: refused unseen
        _ratio_query(max_cells=1).reshape(ROWS[:8])
    assert raised.value.issues[0][1] == "too_many_cells"


def test_percentiles_need_their_fraction_and_numbers() -> None:
    assert codes(measures=[{"key": "p", "op": "percentile", "field": "score"}]) == [
        ("/measures/0/p", "missing_p")
    ]
    assert codes(measures=[{"key": "m", "op": "median", "field": "score", "p": 0.9}]) == [
        ("/measures/0/p", "p_not_percentile")
    ]
    assert codes(measures=[{"key": "s", "op": "stddev", "field": "note"}]) == [
        ("/measures/0/field", "not_numeric")
    ]
    with pytest.raises(pydantic.ValidationError):
        spec(measures=[{"key": "p", "op": "percentile", "field": "score", "p": 1.5}])
