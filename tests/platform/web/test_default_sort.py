"""A form's default order is part of its definition (issue 17, item 13): `"sort":
"-day"` orders the API's list, the list page and the CSV when the reader picks no order of
their own (the clinic's visit list was in creation order, so its dates looked random); a
reader's own `sort` still wins, and a sort naming no sortable field is refused at import.
On SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import httpx

from tests import factories as f
from tests.conftest import Users
from tests.platform.reports.test_pages import signed_in

APP = "desk"
DAYS = ["2026-11-02", "2026-11-20", "2026-10-15", "2026-11-05"]


def definition(sort: str | None = "-day") -> dict[str, Any]:
    extra = {"sort": sort} if sort else {}
    return f.app(
        APP, f.form("visit", f.field("day", "date"), f.field("tags", "multiselect",
                    options=[{"value": "a"}]), title_field="day", **extra)
    )  # fmt: skip


async def test_a_forms_own_order(client: httpx.AsyncClient, users: Users) -> None:
    assert (await client.post("/api/apps/import", json=definition())).status_code == 201
    for day in DAYS:
        assert (
            await client.post(f"/api/records/{APP}/visit", json={"data": {"day": day}})
        ).status_code == 201
    newest_first = sorted(DAYS, reverse=True)
    listed = (await client.get(f"/api/records/{APP}/visit")).json()["items"]
    assert [item["data"]["day"] for item in listed] == newest_first
    queried = (await client.post(f"/api/records/{APP}/visit/query", json={"limit": 2})).json()
    assert [item["data"]["day"] for item in queried["items"]] == newest_first[:2]
    rest = await client.post(
        f"/api/records/{APP}/visit/query", json={"cursor": queried["next_cursor"]}
    )
    assert [item["data"]["day"] for item in rest.json()["items"]] == newest_first[2:]
    # the reader's own order wins
    by_id = (await client.get(f"/api/records/{APP}/visit", params={"sort": "id"})).json()
    assert [item["data"]["day"] for item in by_id["items"]] == DAYS
    # the list page and its CSV follow the form's order
    async with signed_in(client, users, "boss", admin=True) as browser:
        page = (await browser.get(f"/apps/{APP}/forms/visit")).text
        assert re.findall(r"\d{4}-\d\d-\d\d(?=</a>)", page) == newest_first
        exported = await browser.get(f"/api/exports/{APP}/visit", params={"fields": "day"})
        rows = list(csv.reader(io.StringIO(exported.text.lstrip("\ufeff"))))
        assert [row[1] for row in rows[1:]] == newest_first
    # without one: newest record first on the page, id order in the API, as before
    assert (await client.post("/api/apps/import", json=definition(None))).status_code == 200
    listed = (await client.get(f"/api/records/{APP}/visit")).json()["items"]
    assert [item["data"]["day"] for item in listed] == DAYS


async def test_a_sort_naming_no_sortable_field_is_refused(client: httpx.AsyncClient) -> None:
    for sort in ("-dya", "tags", "day,-nope"):
        answer = await client.post("/api/apps/import", json=definition(sort))
        assert answer.status_code == 422, (sort, answer.text)
        assert answer.json()["errors"][0]["path"] == "/forms/0/sort", answer.text
    bad = await client.post("/api/apps/import", json=definition("day;drop"))
    assert bad.status_code == 422
