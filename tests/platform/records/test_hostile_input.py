"""Input that databases or the JSON layer choke on must get a clear 4xx, never a 500.

Found by probing: PostgreSQL's JSONB cannot hold NUL characters, Python's JSON parser
accepts NaN and Infinity, lone UTF-16 surrogates cannot be encoded, SQLite refuses integer
parameters beyond 64 bits and expressions more than 1000 deep.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests import factories as f

BASE = "/api/records/demo/contact"
RAW = {"content-type": "application/json"}


@pytest.fixture
async def api(client: httpx.AsyncClient) -> httpx.AsyncClient:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    return client


@pytest.mark.parametrize(
    ("body", "path"),
    [
        (b'{"data": {"name": "a\\u0000b"}}', "/data/name"),
        (b'{"data": {"name": "ok", "score": NaN}}', "/data/score"),
        (b'{"data": {"name": "ok", "score": -Infinity}}', "/data/score"),
        (b'{"data": {"name": "\\ud800"}}', "/data/name"),
        (b'{"data": {"name": "ok", "\\ud800x": 1}}', "/data/\\ud800x"),
        (b'{"data": {"name": "ok", "tags": ' + b"[" * 70 + b"]" * 70 + b"}}", None),
    ],
)
async def test_unstorable_values_are_refused_with_their_path(
    api: httpx.AsyncClient, body: bytes, path: str | None
) -> None:
    response = await api.post(BASE, content=body, headers=RAW)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert all(e["code"] == "invalid_value" for e in errors)
    if path:
        assert errors[0]["path"] == path
    assert (await api.get(BASE, params={"count": "true"})).json()["count"] == 0


async def test_unstorable_values_are_refused_on_update_too(api: httpx.AsyncClient) -> None:
    record = (await api.post(BASE, json={"data": {"name": "Ann"}})).json()
    url = f"{BASE}/{record['id']}"
    response = await api.patch(url, content=b'{"data": {"name": "a\\u0000"}}', headers=RAW)
    assert response.status_code == 422
    assert (await api.get(url)).json()["data"]["name"] == "Ann"


@pytest.mark.parametrize(
    "rule",
    [
        {"==": [{"var": "name"}, "a\u0000"]},
        {"==": [{"var": "age"}, 10**30]},
        {"and": [{"==": [{"var": "name"}, str(i)]} for i in range(400)]},
    ],
    ids=["nul", "huge-int", "too-many-operations"],
)
async def test_unusable_filters_are_refused(api: httpx.AsyncClient, rule: Any) -> None:
    response = await api.post(f"{BASE}/query", json={"filter": rule})
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["parameter"] == "filter"


async def test_deeply_nested_filter_text_is_refused(api: httpx.AsyncClient) -> None:
    response = await api.get(BASE, params={"filter": "[" * 5000 + "]" * 5000})
    assert response.status_code == 400


async def test_large_value_lists_are_fine(api: httpx.AsyncClient) -> None:
    await api.post(BASE, json={"data": {"name": "n7"}})
    rule = {"in": [{"var": "name"}, [f"n{i}" for i in range(5000)]]}
    response = await api.post(f"{BASE}/query", json={"filter": rule, "count": True})
    assert response.status_code == 200 and response.json()["count"] == 1


@pytest.mark.parametrize(
    "url", ["/api/records/%00/x", "/api/records/demo/%00", "/api/apps/%00/export", "/api/apps/%00"]
)
async def test_nul_in_the_path_is_a_404(api: httpx.AsyncClient, url: str) -> None:
    response = await api.get(url)
    assert response.status_code == 404
    assert json.dumps(response.json())  # the message is encodable


async def test_unstorable_app_definitions_are_refused(api: httpx.AsyncClient) -> None:
    body = b'{"format": "formloom.app/v1", "key": "a", "version": "1.0.0", "label": "\\u0000"}'
    response = await api.post("/api/apps/import", content=body, headers=RAW)
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "/label"
