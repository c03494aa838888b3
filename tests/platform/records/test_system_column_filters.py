"""Filters and sorts on the record columns (created_at, created_by...), not only on fields."""

from __future__ import annotations

import httpx

from formloom.platform.clock import FixedClock
from tests import factories as f

BASE = "/api/records/demo/contact"


async def test_filters_on_created_at_and_created_by(
    client: httpx.AsyncClient, clock: FixedClock
) -> None:
    assert (await client.post("/api/apps/import", json=f.app())).status_code == 201
    first = (await client.post(BASE, json={"data": {"name": "Ann"}})).json()
    assert "id" in first, first
    clock.advance(hours=1)  # (the admin token lives 12 h)
    second = (await client.post(BASE, json={"data": {"name": "Bob"}})).json()
    between = first["created_at"][:19] + "Z"
    cases = [
        ({">": [{"var": "created_at"}, between]}, [second["id"]]),
        ({"<=": [{"var": "created_at"}, between]}, [first["id"]]),
        ({"==": [{"var": "created_by"}, "admin"]}, [first["id"], second["id"]]),
        ({"==": [{"var": "created_by"}, "someone"]}, []),
    ]
    for rule, expected in cases:
        response = await client.post(f"{BASE}/query", json={"filter": rule, "count": True})
        assert response.status_code == 200, (rule, response.text)
        assert [item["id"] for item in response.json()["items"]] == expected, rule
        assert response.json()["count"] == len(expected)
