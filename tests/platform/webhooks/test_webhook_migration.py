"""Migration 0010: ``webhook_subscriptions`` and ``users.is_service`` come and go cleanly,
and users keep their roles and tokens both ways. On a database of its own, of each kind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from tests.platform.migrations import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "m0010") as db:
        yield db


async def schema(db: Database) -> dict[str, Any]:
    def read(sync: Connection) -> dict[str, Any]:
        found = inspect(sync)
        tables = set(found.get_table_names())
        return {
            "tables": tables,
            "users": {c["name"] for c in found.get_columns("users")},
            "indexes": (
                {i["name"] for i in found.get_indexes("webhook_subscriptions")}
                if "webhook_subscriptions" in tables
                else set()
            ),
        }

    async with db.engine.connect() as connection:
        return await connection.run_sync(read)


async def people(db: Database) -> list[tuple[Any, ...]]:
    async with db.engine.connect() as connection:
        rows = await connection.execute(
            text(
                "SELECT u.username, r.role, t.id FROM users u JOIN user_roles r "
                "ON r.user_id = u.id JOIN auth_tokens t ON t.user_id = u.id ORDER BY u.id"
            )
        )
        return [tuple(row) for row in rows]


async def test_0010_adds_subscriptions_and_service_accounts_and_is_reversible(
    scratch: Database,
) -> None:
    await upgrade(scratch, "0009")
    before = await schema(scratch)
    assert "webhook_subscriptions" not in before["tables"]
    async with scratch.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO users (id, username, display_name, is_admin, attributes, "
                "created_at, updated_at) VALUES ('u1', 'his', 'HIS', false, '{}', "
                "'2026-11-23 00:00:00', '2026-11-23 00:00:00')"
            )
        )
        await connection.execute(
            text("INSERT INTO user_roles (user_id, app, role) VALUES ('u1', 'ward', 'doctor')")
        )
        await connection.execute(
            text(
                "INSERT INTO auth_tokens (id, secret_hash, user_id, kind, created_at, "
                "expires_at) VALUES ('t1', 'x', 'u1', 'bearer', '2026-11-23 00:00:00', "
                "'2027-11-23 00:00:00')"
            )
        )
    kept = await people(scratch)
    assert kept == [("his", "doctor", "t1")]

    await upgrade(scratch, "0010")
    after = await schema(scratch)
    assert "webhook_subscriptions" in after["tables"]
    assert after["users"] == before["users"] | {"is_service"}
    assert after["indexes"] == {"ix_webhook_subscriptions_app"}
    assert await people(scratch) == kept
    async with scratch.engine.connect() as connection:
        flags = await connection.execute(text("SELECT is_service FROM users"))
        assert [bool(flag) for (flag,) in flags] == [False]

    await downgrade(scratch, "0009")
    back = await schema(scratch)
    assert back == before
    assert await people(scratch) == kept

    await upgrade(scratch)
    assert (await schema(scratch))["users"] == after["users"]
