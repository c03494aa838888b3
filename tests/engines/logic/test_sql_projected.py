"""The filter compiler reading typed projection columns, against the evaluator (both databases).

The same differential check as test_sql.py, on the path lists take when a form has a typed
projection (platform/records/projections.py): the fields it projects are read from typed
columns of a table joined to the records by id, the others from the document. The records
are the same generated ones without their JSON nulls, as the platform stores them (an empty
field is an absent key), which is what the projection path assumes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from formloom.engines.logic import evaluate
from formloom.engines.logic.sql import PROJECTED_TYPES, Dialect, FilterTarget, compile_filter
from formloom.platform.records.projections import _value_sql

from .test_sql import FIELDS, FILTERS, FIXED_NOW, POSTGRES_URL, RECORDS, Record, records_table

STORED = [
    Record(
        r.id, r.version, r.created_at, r.created_by, r.updated_at, r.updated_by,
        {key: value for key, value in r.data.items() if value is not None},
    )
    for r in RECORDS
]  # fmt: skip
PROJECTED = {key: PROJECTED_TYPES[kind] for key, kind in FIELDS.items() if kind in PROJECTED_TYPES}
_SQL_TYPES = {
    "text": 'TEXT COLLATE "C"',
    "numeric": "NUMERIC",
    "boolean": "BOOLEAN",
    "json": "JSONB",
}


class Projected:
    def __init__(
        self, engine: AsyncEngine, records: sa.Table, projection: sa.Table, dialect: Dialect
    ) -> None:
        self.engine = engine
        self.records = records
        self.projection = projection
        columns = {
            name: records.c[name]
            for name in ("id", "version", "created_at", "created_by", "updated_at", "updated_by")
        }
        projected = {key: projection.c[key] for key in PROJECTED}
        self.target = FilterTarget(records.c.data, FIELDS, columns, dialect, projected)

    async def ids(self, rule: Any) -> set[str]:
        condition = compile_filter(rule, self.target, now=FIXED_NOW)
        joined = self.projection.join(self.records, self.records.c.id == self.projection.c._id)
        async with self.engine.connect() as conn:
            statement = sa.select(self.records.c.id).select_from(joined).where(condition)
            rows = await conn.execute(statement)
            return {row[0] for row in rows}


@pytest_asyncio.fixture(scope="module", params=["sqlite", "postgresql"])
async def projected(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Projected]:
    """The generated records and their projection, filled with the platform's own value
    expressions: typed columns on PostgreSQL, columns without affinity on SQLite."""
    dialect: Dialect = request.param
    pg = dialect == "postgresql"
    schema = f"test_projected_{os.getpid()}_{secrets.token_hex(3)}" if pg else None
    folder = tmp_path_factory.mktemp("projected")
    engine = create_async_engine(POSTGRES_URL if pg else f"sqlite+aiosqlite:///{folder}/p.db")
    records = records_table(sa.MetaData(schema=schema))
    types = {"text": sa.Text(), "numeric": sa.Numeric(), "boolean": sa.Boolean(), "json": JSONB()}
    projection = sa.Table(
        "proj",
        sa.MetaData(schema=schema),
        sa.Column("_id", sa.Text(), primary_key=True),
        *(
            sa.Column(key, types[kind] if pg else sa.types.NullType())
            for key, kind in PROJECTED.items()
        ),
    )
    prefix = f'"{schema}".' if schema else ""
    try:
        async with engine.begin() as conn:
            if schema:
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(records.metadata.create_all)
            await conn.execute(
                records.insert(),
                [
                    {"id": r.id, "app": "clinic", "form": "patient", "version": r.version,
                     "data": r.data, "created_at": r.created_at, "created_by": r.created_by,
                     "updated_at": r.updated_at, "updated_by": r.updated_by}
                    for r in STORED
                ],
            )  # fmt: skip
            definitions = ", ".join(
                f'"{k}" {_SQL_TYPES[t] if pg else ""}' for k, t in PROJECTED.items()
            )
            await conn.execute(
                sa.text(f"CREATE TABLE {prefix}proj (_id TEXT PRIMARY KEY, {definitions})")
            )
            values = ", ".join(
                _value_sql(key, kind, "r", dialect) for key, kind in PROJECTED.items()
            )
            names = ", ".join(f'"{key}"' for key in PROJECTED)
            await conn.execute(
                sa.text(
                    f"INSERT INTO {prefix}proj (_id, {names}) "
                    f"SELECT r.id, {values} FROM {prefix}records r"
                )
            )
        yield Projected(engine, records, projection, dialect)
    finally:
        if schema:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


def expected_ids(rule: Any) -> set[str]:
    return {r.id for r in STORED if evaluate({"!!": [rule]}, r.as_logic_data(), now=FIXED_NOW)}


def test_the_projection_holds_the_scalar_fields_and_multiselects() -> None:
    assert set(PROJECTED) == {
        "name", "note", "email", "status", "doctor", "age", "weight", "active", "visit_date",
        "discharged_at", "dob", "appt_time", "tags",
    }  # fmt: skip
    assert PROJECTED["tags"] == "json"


@pytest.mark.parametrize("name", list(FILTERS))
async def test_projected_filter_matches_python_evaluation(projected: Projected, name: str) -> None:
    rule = FILTERS[name]
    assert await projected.ids(rule) == expected_ids(rule)


async def test_projected_fields_are_read_from_the_projection(projected: Projected) -> None:
    """The compiled SQL reads a projected field's column, not the document."""
    condition = compile_filter({">": [{"var": "weight"}, 50]}, projected.target, now=FIXED_NOW)
    sql = str(condition.compile(compile_kwargs={"literal_binds": True}))
    assert "proj.weight" in sql and "data" not in sql
    tags = compile_filter({"in": ["a", {"var": "tags"}]}, projected.target, now=FIXED_NOW)
    sql = str(tags.compile(compile_kwargs={"literal_binds": True}))
    assert "proj.tags" in sql and "data" not in sql
    mixed = compile_filter(
        {"and": [{">": [{"var": "weight"}, 50]}, {"!!": [{"var": "photo"}]}]},
        projected.target,
        now=FIXED_NOW,
    )
    assert "data" in str(mixed.compile(compile_kwargs={"literal_binds": True}))
