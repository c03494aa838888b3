"""The analyses managers ask for (issue 20), through the report API on SQLite and
PostgreSQL: what the spec refuses, each with a pointer into it, and what a condition on the
groups leaves in the totals. (The values themselves are checked against pandas in
test_pivot_oracle.py.)"""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from tests import factories as f

APP = "analyses"
ROWS = [
    ("2026-01-05", "north", "ann", 3), ("2026-01-20", "north", "bob", 9),
    ("2026-02-03", "north", "cid", 10), ("2026-03-09", "south", "dan", 2),
    ("2026-03-10", "south", "eve", None), ("2026-05-01", "south", "dan", 9),
    ("2026-05-02", "north", "ann", 1),
]  # fmt: skip


@pytest.fixture
async def installed(client: httpx.AsyncClient) -> httpx.AsyncClient:
    document = f.app(
        APP,
        f.form(
            "visit",
            f.field("day", "date"),
            f.field("branch", "select", options=[{"value": "south"}, {"value": "north"}]),
            f.field("doctor"),
            f.field("score", "integer"),
        ),
    )
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    for day, branch, doctor, score in ROWS:
        data: dict[str, Any] = {"day": day, "branch": branch, "doctor": doctor}
        if score is not None:
            data["score"] = score
        made = await client.post(f"/api/records/{APP}/visit", json={"data": data})
        assert made.status_code == 201, made.text
    return client


MEASURES = [{"key": "n", "op": "count"}, {"key": "s", "op": "avg", "field": "score"}]


async def run(client: httpx.AsyncClient, spec: dict[str, Any]) -> httpx.Response:
    return await client.post(f"/api/reports/{APP}", json={"form": "visit", **spec})


async def test_having_lists_the_groups_it_admits_and_totals_count_every_record(
    installed: httpx.AsyncClient,
) -> None:
    answer = await run(
        installed,
        {
            "rows": [{"field": "doctor"}],
            "measures": MEASURES,
            "having": {">=": [{"var": "s"}, 5]},
        },
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert [r["keys"] for r in result["rows"]] == [["bob"], ["cid"], ["dan"]]
    assert result["rows_left_out"] == 2
    assert result["grand_total"]["values"]["n"] == len(ROWS)


async def test_top_per_group_keeps_the_first_of_each_group(installed: httpx.AsyncClient) -> None:
    answer = await run(
        installed,
        {
            "rows": [{"field": "branch"}, {"field": "doctor"}],
            "measures": MEASURES,
            "top_per_group": {"n": 1, "by": "n"},
        },
    )
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    rows = [(r["keys"], r["other"]) for r in result["rows"]]
    # each branch's rest is its "Other", aggregated by the database (bob and cid; eve)
    assert rows == [
        (["north", "ann"], False),
        (["north", None], True),
        (["south", "dan"], False),
        (["south", None], True),
    ]
    assert result["rows"][1]["labels"] == ["north", "Other"]
    values = [row_total["values"] for row_total in result["row_totals"]]
    assert values == [{"n": 2, "s": 2}, {"n": 2, "s": 9.5}, {"n": 2, "s": 5.5}, {"n": 1, "s": None}]
    assert result["rows_left_out"] == 3
    left_out = await run(
        installed,
        {
            "rows": [{"field": "branch"}, {"field": "doctor"}],
            "measures": MEASURES,
            "top_per_group": {"n": 1, "by": "n", "other": False},
        },
    )
    rows = [r["keys"] for r in left_out.json()["result"]["rows"]]
    assert rows == [["north", "ann"], ["south", "dan"]]
    # with a top-N of the branches too: the top-N "Other" branch has its own "Other"
    both = await run(
        installed,
        {
            "rows": [{"field": "branch"}, {"field": "doctor"}],
            "measures": MEASURES,
            "top": {"n": 1, "by": "n"},
            "top_per_group": {"n": 1, "by": "n"},
        },
    )
    assert both.status_code == 200, both.text
    result = both.json()["result"]
    assert [(r["keys"], r["labels"]) for r in result["rows"]] == [
        (["north", "ann"], ["north", "ann"]),
        (["north", None], ["north", "Other"]),
        ([None, "dan"], ["Other", "dan"]),
        ([None, None], ["Other", "Other"]),
    ]
    assert [t["values"]["n"] for t in result["row_totals"]] == [2, 2, 2, 1]


async def test_a_groups_other_sits_before_its_subtotal_and_drills_to_its_records(
    installed: httpx.AsyncClient,
) -> None:
    """With subtotals and a column dimension: each branch's "Other" comes before the
    branch's subtotal, and its cells' drill-downs (inline and on demand) select exactly the
    branch's records of the doctors not listed (the records query API counts them)."""
    spec = {
        "form": "visit",
        "rows": [{"field": "branch"}, {"field": "doctor"}],
        "columns": [{"field": "day", "bucket": "quarter"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "m", "op": "median", "field": "score"}],
        "top_per_group": {"n": 1, "by": "n", "keep": "smallest"},
        "subtotals": True,
    }
    answer = await installed.post(f"/api/reports/{APP}?drill=inline", json=spec)
    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    shape = [(r["keys"], r["other"], r["subtotal"]) for r in result["rows"]]
    # the smallest count of each branch: bob (north, label order among 1s), eve (south)
    assert shape == [
        (["north", "bob"], False, False),
        (["north", None], True, False),
        (["north"], False, True),
        (["south", "eve"], False, False),
        (["south", None], True, False),
        (["south"], False, True),
    ]
    quarters = [c["keys"] for c in result["columns"]]
    assert quarters == [["2026-Q1"], ["2026-Q2"]]
    north_other = result["cells"][1]
    # north without bob: ann (Q1 3, Q2 1) and cid (Q1 10)
    assert [c["values"] for c in north_other] == [{"n": 2, "m": 6.5}, {"n": 1, "m": 1}]
    assert result["row_totals"][1]["values"] == {"n": 3, "m": 3}
    south_other = result["cells"][4]
    assert [c["values"] for c in south_other] == [{"n": 1, "m": 2}, {"n": 1, "m": 9}]

    async def count(drill: dict[str, Any]) -> int:
        listed = await installed.post(
            f"/api/records/{APP}/{drill['form']}/query",
            json={"filter": drill["filter"], "count": True},
        )
        assert listed.status_code == 200, listed.text
        return int(listed.json()["count"])

    for i in (1, 4):
        for cell in [*result["cells"][i], result["row_totals"][i]]:
            assert await count(cell["drill_down"]) == cell["values"]["n"], cell["drill_down"]
    for row, column, expected in (
        (["north", "ann"], ["2026-Q1"], 2),  # the last key is not read
        (["south", "x"], [], 2),
        (["north", None], [], 3),
    ):
        on_demand = await installed.post(
            f"/api/reports/{APP}/drill",
            json={"spec": spec, "row": row, "column": column, "group_other": True},
        )
        assert on_demand.status_code == 200, on_demand.text
        assert await count(on_demand.json()) == expected
    refused = await installed.post(
        f"/api/reports/{APP}/drill",
        json={"spec": spec, "row": ["north"], "group_other": True},
    )
    assert refused.status_code == 422, refused.text


async def test_a_reports_own_time_zone_week_start_and_fiscal_year(
    installed: httpx.AsyncClient,
) -> None:
    """The same records bucketed on another clock: a report's own zone (checked by its
    name), Sunday weeks and an April fiscal year, with a period-over-period change."""
    spec = {
        "rows": [{"field": "day", "bucket": "quarter"}],
        "measures": [
            {"key": "n", "op": "count"},
            {"key": "d", "op": "period_over_period", "of": "n", "compare": "difference"},
        ],
        "fiscal_year_start": 4,
        "time_zone": "America/New_York",
    }
    answer = await run(installed, spec)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["result"]["rows"]
    cells = answer.json()["result"]["cells"]
    # January-March 2026 is the fourth quarter of FY2026; April-June its first of FY2027
    assert [r["keys"] for r in rows] == [["FY2026-Q4"], ["FY2027-Q1"]]
    assert [r["labels"] for r in rows] == [["FY2026 Q4"], ["FY2027 Q1"]]
    assert [c[0]["values"]["d"] for c in cells] == [5, 2 - 5]
    weeks = await run(
        installed,
        {
            "rows": [{"field": "day", "bucket": "week"}],
            "measures": MEASURES,
            "week_start": "sunday",
        },
    )
    keys = [r["keys"][0] for r in weeks.json()["result"]["rows"]]
    assert keys[0] == "2026-01-04" and all(date.fromisoformat(k).isoweekday() == 7 for k in keys)
    assert weeks.json()["result"]["rows"][0]["labels"] == ["Week of 2026-01-04"]


@pytest.mark.parametrize(
    ("parts", "path", "code"),
    [
        ({"time_zone": "Mars/Olympus"}, "/time_zone", "unknown_time_zone"),
        ({"time_zone": "America"}, "/time_zone", "unknown_time_zone"),  # a directory
        (
            {"measures": [*MEASURES, {"key": "p", "op": "period_over_period", "of": "n"}]},
            "/measures/2",
            "period_needs_one_period_dimension",
        ),
        (
            {"measures": [{"key": "n", "op": "count", "offset": "year"}]},
            "/measures/0/offset",
            "not_period_over_period",
        ),
        (
            {
                "rows": [{"field": "day", "bucket": "month"}],
                "measures": [
                    *MEASURES,
                    {"key": "r", "op": "ratio", "numerator": "s", "denominator": "n"},
                    {"key": "p", "op": "period_over_period", "of": "r", "to_date": True},
                ],
            },
            "/measures/3/to_date",
            "to_date_needs_base_measure",
        ),
        ({"sort": {"by": "nope"}}, "/sort/by", "unknown_measure"),
        ({"column_sort": {"by": "nope"}}, "/column_sort/by", "unknown_measure"),
        ({"fiscal_year_start": 13}, "/fiscal_year_start", "less_than_equal"),
        ({"week_start": "friday"}, "/week_start", "literal_error"),
        ({"having": {"<": [{"var": "nps"}, 30]}}, "/having", "unknown_measure"),
        ({"having": {"<<": [{"var": "n"}, 30]}}, "/having", "invalid_having"),
        ({"having": {"<": [{"var": "n"}, 3]}, "rows": []}, "/having", "having_needs_rows"),
        ({"top_per_group": {"n": 2, "by": "n"}}, "/top_per_group", "top_per_group_needs_groups"),
        (
            {
                "top_per_group": {"n": 2, "by": "x"},
                "rows": [{"field": "branch"}, {"field": "doctor"}],
            },
            "/top_per_group/by",
            "unknown_measure",
        ),  # fmt: skip
    ],
)
async def test_refusals_point_into_the_spec(
    installed: httpx.AsyncClient, parts: dict[str, Any], path: str, code: str
) -> None:
    spec = {"rows": [{"field": "doctor"}], "measures": MEASURES, **parts}
    answer = await run(installed, spec)
    assert answer.status_code == 422, answer.text
    errors = answer.json()["errors"]
    assert (path, code) in [(e["path"], e["code"]) for e in errors], errors


@pytest.mark.parametrize(
    "having",
    [
        {">": [{"/": [{"var": "n"}, 0]}, 1]},
        {">": [{"var": "s"}, {"max": []}]},
        {"<": [{"+": [{"var": "n"}, 1e308, 1e308]}, 1]},
        {"!": [{"missing": ["n", "s"]}]},
    ],
)
async def test_a_condition_that_cannot_be_worked_out_admits_nothing_never_a_500(
    installed: httpx.AsyncClient, having: dict[str, Any]
) -> None:
    answer = await run(
        installed, {"rows": [{"field": "doctor"}], "measures": MEASURES, "having": having}
    )
    assert answer.status_code in (200, 422), answer.text
