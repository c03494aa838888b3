"""An indexed long text takes values longer than a B-tree entry, on both read paths (typed
projections on, and off: the record tests run both ways in ``make test``)."""

from __future__ import annotations

import httpx
from sqlalchemy import text

from formloom.platform.db import Database
from tests import factories as f
from tests.platform.records.test_projections import BASE, create


async def test_an_indexed_long_text_takes_values_longer_than_an_index_entry(
    client: httpx.AsyncClient, db: Database, database_url: str
) -> None:
    """Long text is projected; indexed, it gets a hash index on PostgreSQL (a B-tree entry
    holds at most ~2,700 bytes: a longer value's write failed with a 500). Equality filters
    find it, through the projection or the documents alike."""
    import random
    import string

    document = f.app()
    document["forms"][0]["fields"].append(f.field("note", "textarea", indexed=True))
    assert (await client.post("/api/apps/import", json=document)).status_code == 201
    noise = random.Random(21)
    long_note = "".join(noise.choice(string.ascii_letters) for _ in range(9000))
    made = await create(client, {"name": "Ann", "note": long_note})
    await create(client, {"name": "Bob", "note": "short"})
    found = await client.post(
        f"{BASE}/query", json={"filter": {"==": [{"var": "note"}, long_note]}, "count": True}
    )
    assert found.status_code == 200, found.text
    assert [item["id"] for item in found.json()["items"]] == [made["id"]]
    assert found.json()["items"][0]["data"]["note"] == long_note
    if database_url.startswith("postgresql"):
        async with db.transaction(write=False) as session:
            definitions = list(
                (
                    await session.execute(
                        text("SELECT indexdef FROM pg_indexes WHERE indexdef LIKE '%note%'")
                    )
                ).scalars()
            )
        assert definitions and all("USING hash" in d for d in definitions), definitions
