"""Migration 0012: ``form_templates`` comes and goes cleanly, on a database of its own, of
each kind; a stored template's JSON survives the round trip through its columns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from formloom.platform.db import Database
from formloom.platform.migrate import downgrade, upgrade
from tests.platform.migrations import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
async def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with scratch_database(request.param, tmp_path, "m0012") as db:
        yield db


async def tables(db: Database) -> dict[str, set[str]]:
    def read(sync: Connection) -> dict[str, set[str]]:
        found = inspect(sync)
        names = set(found.get_table_names())
        out = {"tables": names}
        if "form_templates" in names:
            out["columns"] = {c["name"] for c in found.get_columns("form_templates")}
            out["indexes"] = {i["name"] for i in found.get_indexes("form_templates")}
        return out

    async with db.engine.connect() as connection:
        return await connection.run_sync(read)


async def test_0012_adds_form_templates_and_is_reversible(scratch: Database) -> None:
    await upgrade(scratch, "0011")
    before = await tables(scratch)
    assert "form_templates" not in before["tables"]
    await upgrade(scratch, "0012")
    after = await tables(scratch)
    assert after["tables"] == before["tables"] | {"form_templates"}
    assert after["columns"] == {
        "id", "label", "description", "form", "app", "source_form", "created_by", "created_at"
    }  # fmt: skip
    assert after["indexes"] == {"ix_form_templates_created_at"}
    async with scratch.engine.begin() as connection:
        await connection.execute(
            text(
                "INSERT INTO form_templates (id, label, form, app, source_form, created_by, "
                'created_at) VALUES (\'t1\', \'{"en": "Complaint", "zh-CN": "投诉"}\', '
                "'{\"label\": \"Complaint\", \"fields\": []}', 'ward', 'complaint', 'chief', "
                "'2026-12-04 00:00:00')"
            )
        )
        label = (await connection.execute(text("SELECT label FROM form_templates"))).scalar()
        assert "投诉" in str(label)
    await downgrade(scratch, "0011")
    assert await tables(scratch) == before
    await upgrade(scratch)
    assert "form_templates" in (await tables(scratch))["tables"]
