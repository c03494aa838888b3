"""Oversized records get a short, clear 422 and change nothing (issue 19, item 5).

A create with 50,000 empty table rows took up to 24 s and answered 50,004 errors; a request
with thousands of bad fields answered every one. Now a table holds at most its ``max_rows``
(default 1,000) and an answer lists at most 100 problems, saying when there were more.
"""

from __future__ import annotations

import httpx
import pytest

from formloom.engines.forms.compiled import DEFAULT_MAX_ROWS
from formloom.engines.forms.record import MAX_ERRORS
from tests import factories as f

BASE = "/api/records/demo/order"


@pytest.fixture
async def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    order = f.form(
        "order",
        f.field("title", required=True),
        f.field("tags", "multiselect", options=[{"value": "a"}, {"value": "b"}]),
        f.field(
            "lines",
            "table",
            fields=[
                f.field("item", required=True),
                f.field("qty", "integer", min=1, default=1),
            ],
        ),
        f.field(
            "batches",
            "table",
            max_rows=DEFAULT_MAX_ROWS + 500,
            fields=[f.field("code", required=True)],
        ),
    )
    assert (await client.post("/api/apps/import", json=f.app("demo", order))).status_code == 201
    return client


async def _count(api: httpx.AsyncClient) -> int:
    return int((await api.get(BASE, params={"count": "true"})).json()["count"])


async def test_fifty_thousand_empty_rows_are_one_clear_problem(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json={"data": {"title": "x", "lines": [{}] * 50_000}})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"] == [
        {
            "field": "lines",
            "path": "/data/lines",
            "code": "max_rows",
            "message": f"Lines allows at most {DEFAULT_MAX_ROWS} rows (50000 were sent)",
        }
    ]
    assert "truncated" not in body
    assert await _count(api) == 0


async def test_a_full_table_is_accepted_and_max_rows_raises_the_bound(
    api: httpx.AsyncClient,
) -> None:
    lines = [{"item": f"i{n}"} for n in range(DEFAULT_MAX_ROWS)]
    batches = [{"code": f"b{n}"} for n in range(DEFAULT_MAX_ROWS + 500)]
    response = await api.post(
        BASE, json={"data": {"title": "x", "lines": lines, "batches": batches}}
    )
    assert response.status_code == 201, response.text[:500]
    data = response.json()["data"]
    assert len(data["lines"]) == DEFAULT_MAX_ROWS
    assert len(data["batches"]) == DEFAULT_MAX_ROWS + 500
    assert data["lines"][0] == {"item": "i0", "qty": 1}


async def test_an_oversized_table_on_update_changes_nothing(api: httpx.AsyncClient) -> None:
    created = (await api.post(BASE, json={"data": {"title": "x", "lines": [{"item": "a"}]}})).json()
    url = f"{BASE}/{created['id']}"
    response = await api.patch(url, json={"data": {"lines": [{"item": "b"}] * 1001}})
    assert response.status_code == 422
    assert [e["code"] for e in response.json()["errors"]] == ["max_rows"]
    stored = (await api.get(url)).json()
    assert stored["version"] == 1 and stored["data"]["lines"] == [{"item": "a", "qty": 1}]


async def test_a_long_multiselect_is_one_problem(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json={"data": {"title": "x", "tags": ["a"] * 20_000}})
    assert response.status_code == 422
    assert [(e["path"], e["code"]) for e in response.json()["errors"]] == [
        ("/data/tags", "max_items")
    ]


async def test_thousands_of_bad_fields_list_the_first_hundred_and_say_so(
    api: httpx.AsyncClient,
) -> None:
    data = {"title": "x", **{f"nope_{n:05d}": n for n in range(5_000)}}
    response = await api.post(BASE, json={"data": data})
    assert response.status_code == 422
    body = response.json()
    assert len(body["errors"]) == MAX_ERRORS
    assert body["truncated"] is True
    assert body["detail"] == (
        f"More than {MAX_ERRORS} values are not valid; the first {MAX_ERRORS} are listed."
    )
    assert {e["code"] for e in body["errors"]} == {"unknown_field"}
    assert await _count(api) == 0


async def test_a_thousand_bad_rows_list_the_first_hundred_in_row_order(
    api: httpx.AsyncClient,
) -> None:
    lines = [{"item": n, "qty": 0} for n in range(DEFAULT_MAX_ROWS)]
    response = await api.post(BASE, json={"data": {"title": "x", "lines": lines}})
    assert response.status_code == 422
    body = response.json()
    assert body["truncated"] is True and len(body["errors"]) == MAX_ERRORS
    assert body["errors"][0]["path"] == "/data/lines/0/item"
    assert body["errors"][1]["path"] == "/data/lines/0/qty"


async def test_a_few_problems_are_all_listed(api: httpx.AsyncClient) -> None:
    response = await api.post(BASE, json={"data": {"tags": ["z"], "lines": [{}]}})
    assert response.status_code == 422
    body = response.json()
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        ("/data/title", "required"),
        ("/data/tags/0", "option"),
        ("/data/lines/0/item", "required"),
    ]
    assert body["detail"] == "3 fields are not valid." and "truncated" not in body
