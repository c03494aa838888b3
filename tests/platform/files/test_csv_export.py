"""CSV export of a list (``GET /api/exports/{app}/{form}``), on SQLite and PostgreSQL: the
list's filter and sort, every page, UTF-8 with a BOM, and never a hidden field or a row
outside the caller's grants."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import httpx
import pytest

from tests import factories as f
from tests.conftest import Users

APP = "ward"


def ward() -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "patient",
            f.field("name", required=True, label={"en": "Name", "zh-CN": "姓名"}),
            f.field("dept", "select", options=[{"value": "a"}, {"value": "b"}]),
            f.field("age", "integer"),
            f.field("tags", "multiselect", options=[{"value": "x"}, {"value": "y"}]),
            f.field("secret", "text", label="Secret score"),
            f.field("phone", "phone"),
        ),
        roles=[{"key": "nurse"}],
        permissions=[
            {
                "form": "patient",
                "roles": ["nurse"],
                "actions": ["read"],
                "row_filter": {"==": [{"var": "dept"}, {"var": "$user.dept"}]},
                "hidden_fields": ["secret"],
            }
        ],
    )


@pytest.fixture
async def patients(client: httpx.AsyncClient) -> None:
    assert (await client.post("/api/apps/import", json=ward())).status_code == 201
    for i in range(250):
        data = {
            "name": f"Patient {i:03d}" if i else '=HYPERLINK("http://x")',
            "dept": "ab"[i % 2],
            "age": i,
            "tags": ["x", "y"] if i % 5 == 0 else [],
            "secret": f"s{i}",
            "phone": f"+86 139 0000 {i:04d}",
        }
        answer = await client.post(f"/api/records/{APP}/patient", json={"data": data})
        assert answer.status_code == 201, answer.text


def rows(answer: httpx.Response) -> list[list[str]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))


async def test_every_page_is_exported_with_labels(
    client: httpx.AsyncClient, patients: None
) -> None:
    # settings.max_page_size is 100 in tests: 250 records take three pages
    table = rows(await client.get(f"/api/exports/{APP}/patient", params={"sort": "age"}))
    header, body = table[0], table[1:]
    assert header[:7] == ["ID", "Name", "Dept", "Age", "Tags", "Secret score", "Phone"]
    assert header[-4:] == ["Created (UTC)", "Created by", "Updated (UTC)", "Updated by"]
    assert len(body) == 250
    assert [row[3] for row in body] == [str(i) for i in range(250)]
    assert body[5][4] == "x; y" and body[1][4] == ""
    assert body[0][1] == '\'=HYPERLINK("http://x")'  # never run as a formula
    assert body[3][6] == "+86 139 0000 0003"  # a phone number is left alone
    assert (
        "attachment"
        in (await client.get(f"/api/exports/{APP}/patient")).headers["content-disposition"]
    )


async def test_the_list_filter_and_columns_apply(client: httpx.AsyncClient, patients: None) -> None:
    rule = {"and": [{">=": [{"var": "age"}, 200]}, {"in": ["x", {"var": "tags"}]}]}
    table = rows(
        await client.get(
            f"/api/exports/{APP}/patient",
            params={"filter": json.dumps(rule), "fields": "name,age,created_by", "sort": "-age"},
        )
    )
    assert table[0] == ["ID", "Name", "Age", "Created by"]
    assert [row[2] for row in table[1:]] == [str(age) for age in range(245, 199, -5)]
    chinese = await client.get(
        f"/api/exports/{APP}/patient", params={"fields": "name", "lang": "zh-CN"}
    )
    assert rows(chinese)[0] == ["ID", "姓名"]


async def test_hidden_fields_and_other_rows_are_never_exported(
    client: httpx.AsyncClient, users: Users, patients: None
) -> None:
    nurse = await users.create("nina", roles={APP: ["nurse"]}, attributes={"dept": "a"})
    table = rows(await client.get(f"/api/exports/{APP}/patient", headers=nurse.headers))
    assert "Secret score" not in table[0]
    assert len(table) - 1 == 125
    assert all(not cell.startswith("s") or cell == "" for row in table[1:] for cell in row[5:6])
    text = (await client.get(f"/api/exports/{APP}/patient", headers=nurse.headers)).text
    assert "s11" not in text and "Patient 001" not in text  # dept b rows are not hers
    # naming a hidden field is the list API's unknown-field error
    answer = await client.get(
        f"/api/exports/{APP}/patient", params={"fields": "name,secret"}, headers=nurse.headers
    )
    assert answer.status_code == 400
    assert answer.json()["errors"][0]["parameter"] == "fields"
    answer = await client.get(
        f"/api/exports/{APP}/patient",
        params={"filter": json.dumps({"==": [{"var": "secret"}, "s2"]})},
        headers=nurse.headers,
    )
    assert answer.status_code == 400 and answer.json()["errors"][0]["parameter"] == "filter"


async def test_bad_requests_are_4xx(client: httpx.AsyncClient, patients: None) -> None:
    for params, status in (
        ({"filter": "{not json"}, 400),
        ({"filter": json.dumps({"map": [1]})}, 400),
        ({"sort": "nope"}, 400),
        ({"drill": "{}"}, 400),
    ):
        answer = await client.get(f"/api/exports/{APP}/patient", params=params)
        assert answer.status_code == status, (params, answer.text)
        assert answer.json()["errors"], answer.text
    assert (await client.get(f"/api/exports/{APP}/nope")).status_code == 404
    anonymous = httpx.AsyncClient(transport=client._transport, base_url=str(client.base_url))
    async with anonymous:
        assert (await anonymous.get(f"/api/exports/{APP}/patient")).status_code == 401
