"""The audit log: written by ``audit``/``audit_now``, read by admins through GET /api/audit
with filters and keyset pages, never changed through any endpoint, and append-only in the
database."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from formloom.platform.audit.log import audit, audit_now
from formloom.platform.auth.principal import Principal
from formloom.platform.clock import FixedClock
from formloom.platform.db import Database
from formloom.platform.settings import Settings
from tests.conftest import Users

NURSE = Principal(username="nurse1", user_id="u" * 32, via="bearer", address="10.0.0.5")


@pytest.fixture
async def logged(db: Database, clock: FixedClock) -> None:
    """Six entries, a minute apart, about two apps."""
    start = clock.now() - timedelta(hours=1)
    events = [
        ("record.create", "ok", "clinic", "patient", "r1"),
        ("record.update", "ok", "clinic", "patient", "r1"),
        ("record.read", "ok", "clinic", "visit", "r2"),
        ("auth.denied", "denied", "clinic", "visit", None),
        ("public_link.created", "ok", "survey", "feedback", None),
        ("publicXlink.other", "ok", "survey", "feedback", None),
    ]
    for minute, (action, outcome, app, form, record_id) in enumerate(events):
        await audit_now(
            db,
            NURSE,
            action,
            at=start + timedelta(minutes=minute),
            outcome=outcome,  # type: ignore[arg-type]
            app=app,
            form=form,
            record_id=record_id,
            version=1 if record_id else None,
            detail={"n": minute},
        )


async def entries(client: httpx.AsyncClient, **params: object) -> list[dict[str, object]]:
    response = await client.get("/api/audit", params={"actor": "nurse1", **params})
    assert response.status_code == 200, response.text
    items: list[dict[str, object]] = response.json()["items"]
    return items


async def test_entries_come_newest_first_with_every_column(
    client: httpx.AsyncClient, logged: None
) -> None:
    items = await entries(client)
    assert [i["detail"] for i in items] == [{"n": n} for n in (5, 4, 3, 2, 1, 0)]
    last = items[-1]
    assert last["action"] == "record.create" and last["actor"] == "nurse1"
    assert last["via"] == "bearer" and last["address"] == "10.0.0.5"
    assert last["user_id"] == "u" * 32 and last["version"] == 1
    assert last["at"] == "2026-11-23T01:30:00Z"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"action": "record."}, [2, 1, 0]),
        ({"action": "record.update"}, [1]),
        ({"action": "record"}, []),  # not a prefix without the dot
        ({"action": "public_link."}, [4]),  # `_` is not a wildcard
        ({"action": "public_link*"}, [4]),
        ({"outcome": "denied"}, [3]),
        ({"app": "clinic", "form": "visit"}, [3, 2]),
        ({"record_id": "r1"}, [1, 0]),
        ({"since": "2026-11-23T01:32:00Z"}, [5, 4, 3, 2]),
        ({"until": "2026-11-23T09:32:00+08:00"}, [1, 0]),
        ({"actor": "someone"}, []),
    ],
)
async def test_filters(
    client: httpx.AsyncClient, logged: None, params: dict[str, str], expected: list[int]
) -> None:
    items = await entries(client, **params)
    assert [i["detail"]["n"] for i in items] == expected  # type: ignore[index]


async def test_keyset_pages(client: httpx.AsyncClient, logged: None) -> None:
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, object] = {"actor": "nurse1", "limit": 4}
        if cursor:
            params["cursor"] = cursor
        body = (await client.get("/api/audit", params=params)).json()
        seen += [i["detail"]["n"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1, 0] and pages == 2
    bad = await client.get("/api/audit", params={"cursor": "abc"})
    assert bad.status_code == 400


@pytest.mark.parametrize(
    "params",
    [{"since": "2026-11-23T01:32:00"}, {"limit": 0}, {"limit": 5000}, {"outcome": "maybe"}],
)
async def test_bad_parameters_are_422(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    assert (await client.get("/api/audit", params=params)).status_code == 422


async def test_only_platform_admins_read_the_log(
    client: httpx.AsyncClient, anon_client: httpx.AsyncClient, users: Users
) -> None:
    alice = await users.create("alice")
    assert (await anon_client.get("/api/audit")).status_code == 401
    assert (await client.get("/api/audit", headers=alice.headers)).status_code == 403
    denied = await entries(client, actor="alice", action="auth.denied")
    assert denied[0]["detail"]["path"] == "/api/audit"  # type: ignore[index]


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "POST"])
async def test_no_endpoint_changes_entries(
    client: httpx.AsyncClient, logged: None, method: str
) -> None:
    first = (await entries(client))[-1]["id"]
    assert (await client.request(method, "/api/audit", json={})).status_code == 405
    assert (await client.request(method, f"/api/audit/{first}", json={})).status_code in (
        404,
        405,
    )
    assert len(await entries(client)) == 6


async def test_audit_rows_commit_with_their_unit_of_work(db: Database, clock: FixedClock) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as session:
            audit(session, NURSE, "record.create", at=clock.now(), app="clinic")
            await session.flush()
            raise RuntimeError("the write failed")
    async with db.transaction() as session:
        audit(session, NURSE, "record.create", at=clock.now(), app="kept")
    async with db.transaction(write=False) as session:
        apps = (await session.execute(text("SELECT app FROM audit_log"))).scalars().all()
    assert apps == ["kept"]


async def test_the_database_refuses_to_change_entries(
    db: Database, logged: None, settings: Settings
) -> None:
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.transaction() as session:
            await session.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    if db.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.transaction() as session:
                await session.execute(text("DELETE FROM audit_log"))
    async with db.transaction(write=False) as session:
        count = (await session.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
    assert count == 6
