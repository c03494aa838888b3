"""Two service processes on one database: a definition changed by one is what the other
validates against on its very next write, even though it caches definitions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from formloom.platform.clock import FixedClock
from formloom.platform.settings import Settings
from tests import factories as f
from tests.conftest import running_service


@pytest.fixture
async def second(
    settings: Settings, clock: FixedClock, client: httpx.AsyncClient
) -> AsyncIterator[httpx.AsyncClient]:
    async with running_service(settings, clock, "http://second") as c:
        c.headers["Authorization"] = client.headers["Authorization"]  # the same admin
        yield c


async def test_a_stale_cached_definition_is_never_used_for_a_write(
    client: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    document = f.app()
    await client.post("/api/apps/import", json=document)
    # the second process reads (and caches) revision 1
    first = await second.post("/api/records/demo/contact", json={"data": {"name": "Ann"}})
    assert first.status_code == 201 and first.json()["form_version"] == 1

    # the first process makes `city` required
    document["forms"][0]["fields"].append(f.field("city", required=True))
    document["migrations"] = [{"form": "contact", "set": {"city": "Unknown"}}]
    assert (await client.post("/api/apps/import", json=document)).json()["revision"] == 2

    refused = await second.post("/api/records/demo/contact", json={"data": {"name": "Bob"}})
    assert refused.status_code == 422
    assert [e["field"] for e in refused.json()["errors"]] == ["city"]
    accepted = await second.post(
        "/api/records/demo/contact", json={"data": {"name": "Bob", "city": "Pune"}}
    )
    assert accepted.status_code == 201 and accepted.json()["form_version"] == 2
    history = await second.get(f"/api/records/demo/contact/{accepted.json()['id']}/history")
    assert history.json()[0]["form_version"] == 2
