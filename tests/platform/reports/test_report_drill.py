"""A cell's drill-down on demand (issue 20): ``GET /api/reports/{app}/{report}/drill`` and
``POST /api/reports/{app}/drill`` turn a cell's coordinates into its filter and records link
under the caller's grants, and top-N's "Other" stays within the filter limits for a large
n — on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests import factories as f
from tests.conftest import Users
from tests.platform.reports.test_reports_api import APP, ward  # noqa: F401 - the fixture

URL = f"/api/reports/{APP}/by_department"


async def _count(client: httpx.AsyncClient, drill: dict[str, Any], **kw: Any) -> int:
    listed = await client.post(
        f"/api/records/{APP}/{drill['form']}/query",
        json={"filter": drill["filter"], "count": True},
        **kw,
    )
    assert listed.status_code == 200, listed.text
    return int(listed.json()["count"])


async def test_a_drill_down_never_widens_what_the_caller_sees(
    client: httpx.AsyncClient,
    users: Users,
    ward: None,  # noqa: F811
) -> None:
    """A nurse sees her department's visits: the grand total's drill-down, listed by her,
    counts what her report counts (3), not the ward's 5; a spec naming a field hidden from
    her has no drill-down (403, as the report)."""
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"department": "surgery"})
    mine = (await client.get(URL, headers=nurse.headers)).json()["result"]
    total = mine["grand_total"]["values"]["visits"]
    assert total == 3
    drilled = await client.get(f"{URL}/drill", headers=nurse.headers)
    assert drilled.status_code == 200, drilled.text
    assert await _count(client, drilled.json(), headers=nurse.headers) == total
    # dental is not hers: its cell drills down to nothing she can list
    dental = await client.get(
        f"{URL}/drill", params={"row": '["dental"]', "column": '["first"]'}, headers=nurse.headers
    )
    assert await _count(client, dental.json(), headers=nurse.headers) == 0
    hidden = {
        "form": "visit",
        "rows": [{"field": "secret_score"}],
        "measures": [{"key": "n", "op": "count"}],
    }
    body = {"spec": hidden, "row": [9]}
    refused = await client.post(f"/api/reports/{APP}/drill", json=body, headers=nurse.headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["errors"][0]["path"] == "/spec/rows/0/field"
    # the admin may: the filter names the field
    allowed = await client.post(f"/api/reports/{APP}/drill", json=body)
    assert allowed.status_code == 200 and "secret_score" in json.dumps(allowed.json())


async def test_bad_coordinates_are_4xx_with_where(
    client: httpx.AsyncClient,
    ward: None,  # noqa: F811
) -> None:
    for params, where in (
        ({"row": "[not json"}, "row"),
        ({"column": '{"a": 1}'}, "column"),
        ({"row": '["a", "b"]'}, None),  # two keys for one row dimension
        ({"row": "[[1]]"}, "row"),
        ({"row": "[NaN]"}, "row"),
        ({"column": "[1e999]"}, "column"),
        ({"column": "[" * 5_000}, "column"),
        ({"row": '["a\\u0000b"]'}, "row"),
    ):
        answer = await client.get(f"{URL}/drill", params=params)
        assert answer.status_code == 422, (params, answer.text)
        if where is not None:
            assert answer.json()["errors"][0]["parameter"] == where
    spec = {
        "form": "visit",
        "rows": [{"field": "day", "bucket": "month"}],
        "measures": [{"key": "n", "op": "count"}],
    }
    for key in ("2026-13", "November", 3):
        answer = await client.post(f"/api/reports/{APP}/drill", json={"spec": spec, "row": [key]})
        assert answer.status_code == 422, (key, answer.text)
        assert answer.json()["errors"][0]["path"] == "/spec/row/0"
    other = await client.post(f"/api/reports/{APP}/drill", json={"spec": spec, "other": True})
    assert other.status_code == 422
    for row in ([2**70], [{"a": 1}], ["a\u0000b"]):
        body = json.dumps({"spec": spec, "row": row})
        answer = await client.post(
            f"/api/reports/{APP}/drill", content=body, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, (row, answer.text)


async def test_other_of_a_large_top_n_is_one_short_filter(client: httpx.AsyncClient) -> None:
    """Top 250 of 300 codes: "Other" was 250 conditions (751 operations, refused by the
    records page, the query API and the CSV export); it is one list now."""
    document = f.app(APP, f.form("item", f.field("code"), f.field("n", "integer")))
    answer = await client.post("/api/apps/import", json=document)
    assert answer.status_code in (200, 201), answer.text
    for i in range(300):
        data = {"code": f"c{i:03d}", "n": i}
        made = await client.post(f"/api/records/{APP}/item", json={"data": data})
        assert made.status_code == 201, made.text
    spec = {
        "form": "item",
        "rows": [{"field": "code"}],
        "measures": [{"key": "n", "op": "count"}, {"key": "total", "op": "sum", "field": "n"}],
        "top": {"n": 250, "by": "total"},
    }
    result = (await client.post(f"/api/reports/{APP}", json=spec)).json()["result"]
    assert result["rows"][-1]["other"] and len(result["rows"]) == 251
    other_count = result["cells"][-1][0]["values"]["n"]
    assert other_count == 50
    answer = await client.post(
        f"/api/reports/{APP}/drill", json={"spec": spec, "row": [None], "other": True}
    )
    assert answer.status_code == 200, answer.text
    drill = answer.json()
    assert await _count(client, drill) == other_count
    listed = await client.get(
        f"/api/records/{APP}/item", params={"filter": json.dumps(drill["filter"]), "limit": 100}
    )
    assert listed.status_code == 200 and len(listed.json()["items"]) == 50
    exported = await client.get(
        f"/api/exports/{APP}/item",
        params={"drill": json.dumps({k: v for k, v in drill.items() if k != "href"})},
    )
    assert exported.status_code == 200, exported.text
    assert len(exported.content.decode("utf-8-sig").strip().splitlines()) == 1 + 50
    page = await client.get(drill["href"])
    assert page.status_code in (200, 303, 401), page.text  # the page itself needs a session
