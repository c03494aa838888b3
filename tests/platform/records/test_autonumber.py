"""Auto-number fields on SQLite and PostgreSQL (records/numbering.py): the server numbers
each new record of the form in its create's unit of work — consecutive, never twice (a
deleted record's number is not given again), read-only to clients, reset per year when
asked, numbered in bulk writes and spreadsheet imports too, and 20 concurrent creates get
20 distinct consecutive numbers."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from tests import factories as f
from tests.conftest import Users

APP = "desk"
BASE = f"/api/records/{APP}/complaint"


def definition(**number: Any) -> dict[str, Any]:
    return f.app(
        APP,
        f.form(
            "complaint",
            f.field("no", "autonumber", **{"format": "CP-{YYYY}-{0000}", **number}),
            f.field("subject", required=True),
            title_field="no",
        ),
    )


@pytest.fixture
async def desk(client: httpx.AsyncClient) -> None:
    answer = await client.post("/api/apps/import", json=definition(reset="yearly"))
    assert answer.status_code == 201, answer.text


async def create(client: httpx.AsyncClient, **data: Any) -> httpx.Response:
    return await client.post(BASE, json={"data": {"subject": "noise", **data}})


async def number(client: httpx.AsyncClient, **headers: str) -> str:
    answer = await client.post(BASE, json={"data": {"subject": "noise"}}, headers=headers)
    assert answer.status_code == 201, answer.text
    value: str = answer.json()["data"]["no"]
    return value


async def test_numbers_count_up_and_are_never_given_twice(
    client: httpx.AsyncClient, desk: None
) -> None:
    assert [await number(client) for _ in range(2)] == ["CP-2026-0001", "CP-2026-0002"]
    second = (await client.get(BASE, params={"sort": "-id", "limit": 1})).json()["items"][0]
    deleted = await client.delete(f"{BASE}/{second['id']}")
    assert deleted.status_code == 204
    assert await number(client) == "CP-2026-0003"  # the deleted record's number stays its own
    # a create refused by the checks takes no number
    refused = await client.post(BASE, json={"data": {}})
    assert refused.status_code == 422
    assert await number(client) == "CP-2026-0004"
    found = await client.get(BASE, params={"filter": '{"==": [{"var": "no"}, "CP-2026-0004"]}'})
    assert [item["data"]["no"] for item in found.json()["items"]] == ["CP-2026-0004"]


async def test_clients_cannot_write_the_number(client: httpx.AsyncClient, desk: None) -> None:
    answer = await create(client, no="CP-2026-9999")
    assert answer.status_code == 422
    [error] = answer.json()["errors"]
    assert (error["path"], error["code"]) == ("/data/no", "read_only")
    assert "numbered by the server" in error["message"]
    made = (await create(client)).json()
    url = f"{BASE}/{made['id']}"
    same = await client.patch(url, json={"data": {"no": made["data"]["no"], "subject": "x"}})
    assert same.status_code == 200  # sending back what was read is tolerated
    other = await client.patch(url, json={"data": {"no": "CP-2026-0100"}})
    assert other.status_code == 422 and other.json()["errors"][0]["code"] == "read_only"
    assert (await client.get(url)).json()["data"]["no"] == made["data"]["no"]


async def test_a_yearly_counter_starts_again_in_a_new_year(
    client: httpx.AsyncClient, clock: FixedClock, users: Users, desk: None
) -> None:
    assert await number(client) == "CP-2026-0001"
    # the clinic's clock decides the year: 2026-12-31 17:00 UTC is already 2027 in Shanghai
    clock.at = datetime(2027, 1, 1, 1, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    signed = {"Authorization": f"Bearer {await users.token('admin')}"}
    numbers = [await number(client, **signed) for _ in range(2)]
    assert numbers == ["CP-2027-0001", "CP-2027-0002"]


async def test_twenty_concurrent_creates_get_twenty_consecutive_numbers(
    client: httpx.AsyncClient, desk: None
) -> None:
    answers = await asyncio.gather(*(create(client, subject=f"s{i}") for i in range(20)))
    assert [answer.status_code for answer in answers] == [201] * 20
    numbers = sorted(answer.json()["data"]["no"] for answer in answers)
    assert numbers == [f"CP-2026-{n:04d}" for n in range(1, 21)]


async def test_bulk_writes_and_imports_number_their_records(
    client: httpx.AsyncClient, desk: None
) -> None:
    items = [{"op": "create", "data": {"subject": f"s{i}"}} for i in range(3)]
    answer = await client.post(f"{BASE}/bulk", json={"items": items})
    assert answer.status_code == 200, answer.text
    # an atomic call with a bad item writes nothing and takes no number
    bad = [*items, {"op": "create", "data": {}}]
    assert (await client.post(f"{BASE}/bulk", json={"items": bad})).status_code == 422
    csv = b"subject\nfrom a file\nanother\n"
    for dry_run in ("true", "false"):  # a dry run rolls back, its numbers with it
        imported = await client.post(
            f"{BASE}/import",
            params={"dry_run": dry_run},
            files={"file": ("complaints.csv", csv, "text/csv")},
        )
        assert imported.status_code == 200, imported.text
    listed = await client.get(BASE, params={"sort": "no", "limit": 10})
    numbers = [item["data"]["no"] for item in listed.json()["items"]]
    assert numbers == [f"CP-2026-{n:04d}" for n in range(1, 6)]


async def test_a_form_without_reset_counts_on(
    client: httpx.AsyncClient, clock: FixedClock, users: Users
) -> None:
    answer = await client.post("/api/apps/import", json=definition(format="N{000000}"))
    assert answer.status_code == 201, answer.text
    assert await number(client) == "N000001"
    clock.at = datetime(2027, 3, 1, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    signed = {"Authorization": f"Bearer {await users.token('admin')}"}
    assert await number(client, **signed) == "N000002"


async def test_a_bad_format_is_refused_at_its_pointer(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/api/apps/import", json=definition(format="CP-{0000}", reset="monthly")
    )
    assert answer.status_code == 422
    pointers = [error.get("pointer") or error.get("path") for error in answer.json()["errors"]]
    assert "/forms/0/fields/0/reset" in pointers


async def test_a_number_added_to_a_form_with_records_numbers_new_records_only(
    client: httpx.AsyncClient,
) -> None:
    plain = f.app(APP, f.form("complaint", f.field("subject", required=True)))
    assert (await client.post("/api/apps/import", json=plain)).status_code == 201
    old = await client.post(BASE, json={"data": {"subject": "before"}})
    assert old.status_code == 201
    form = definition()["forms"][0]
    form["fields"] += [f.field("owner", "user"), f.field("ward", "department")]
    dry = await client.put(f"/api/apps/{APP}/forms/complaint?dry_run=true", json=form)
    assert dry.status_code == 200, dry.text
    saved = await client.put(f"/api/apps/{APP}/forms/complaint", json=form)
    assert saved.status_code == 200, saved.text
    assert "no" not in (await client.get(f"{BASE}/{old.json()['id']}")).json()["data"]
    assert await number(client) == "CP-2026-0001"


async def test_a_unique_number_is_claimed_by_every_write_path(
    client: httpx.AsyncClient, db: Database
) -> None:
    answer = await client.post("/api/apps/import", json=definition(unique=True))
    assert answer.status_code == 201, answer.text
    items = [{"op": "create", "data": {"subject": f"s{i}"}} for i in range(2)]
    assert (await client.post(f"{BASE}/bulk", json={"items": items})).status_code == 200
    assert await number(client) == "CP-2026-0003"
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT value FROM record_unique WHERE field = 'no' ORDER BY value")
        )
        # claims hold values folded for comparison (claims.claim_value)
        assert [value for (value,) in rows] == ["cp-2026-0001", "cp-2026-0002", "cp-2026-0003"]
