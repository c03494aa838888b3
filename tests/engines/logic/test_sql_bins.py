"""``bin_of`` in SQL against the evaluator, on values on and beside bin edges (both databases).

A table holds numbers where binary floats and decimals disagree (0.3, the double
0.30000000000000004 = 0.1 + 0.2, 0.29999999999999993 = 0.7 - 0.4, -0.1, 1e-9...), large and
negative ones; each is read from the document (``records.data``) and from a typed projection
column filled by the platform's own expression. For every width, the bin number
:func:`bin_number` computes must equal ``evaluate({"bin_of": ...})`` record by record, and
filters over it (``in`` lists, comparisons, negations) must select exactly the records the
evaluator selects.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from formloom.engines.logic import evaluate
from formloom.engines.logic.sql import (
    Dialect,
    FilterTarget,
    bin_number,
    compile_filter,
    field_value,
)
from formloom.platform.records.projections import _value_sql

from .test_sql import FIXED_NOW, POSTGRES_URL

VALUES: list[Any] = [
    *(0.3, 0.1 + 0.2, 0.7 - 0.4, 0.30000000000000004, 0.29999999999999993),
    *(-0.1, -0.10000000000000002, -0.09999999999999999, 1e-9, -1e-9, 1e-10, -1e-10),
    *(0, 0.1, 0.2, 0.25, 0.5, 0.6, 0.7, 0.75, 0.9, 1, 2.5, 7, 14, -7, -0.3, -0.25, -0.5),
    *(0.74, 0.0999999999999, 0.09999999, 123.456, 55.5, 3 * 0.1, 3 * 0.3),
    *(3_000_000_000, -3_000_000_000, 3e9 + 0.5, 999_999_999.9),
]
WIDTHS: list[float | int] = [0.1, 0.25, 0.3, 0.5, 1, 7, 2.5, 0.001, 1e-6, 1_000]
RECORDS: dict[str, Any] = {f"b{i:03d}": value for i, value in enumerate(VALUES)}
RECORDS["b900"] = None  # absent from the document (no projection value)
FIELDS = {"w": "number"}


@dataclass
class Bins:
    engine: AsyncEngine
    dialect: Dialect
    records: sa.Table
    projection: sa.Table

    def target(self, projected: bool) -> FilterTarget:
        columns = {"id": self.records.c.id}
        typed = {"w": self.projection.c.w} if projected else {}
        return FilterTarget(self.records.c.data, FIELDS, columns, self.dialect, typed)

    def joined(self) -> Any:
        return self.records.join(self.projection, self.projection.c._id == self.records.c.id)

    async def bins(self, width: float | int, projected: bool) -> dict[str, Any]:
        target = self.target(projected)
        value = field_value(target, "w")  # the projected column when there is one
        statement = sa.select(
            self.records.c.id, bin_number(value, width, self.dialect)
        ).select_from(self.joined())
        async with self.engine.connect() as conn:
            return {row[0]: row[1] for row in await conn.execute(statement)}

    async def ids(self, rule: Any, projected: bool) -> set[str]:
        condition = compile_filter(rule, self.target(projected), now=FIXED_NOW)
        statement = sa.select(self.records.c.id).select_from(self.joined()).where(condition)
        async with self.engine.connect() as conn:
            return {row[0] for row in await conn.execute(statement)}


@pytest_asyncio.fixture(scope="module", params=["sqlite", "postgresql"])
async def bins(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Bins]:
    dialect: Dialect = request.param
    pg = dialect == "postgresql"
    schema = f"test_bins_{os.getpid()}_{secrets.token_hex(3)}" if pg else None
    folder = tmp_path_factory.mktemp("bins")
    engine = create_async_engine(POSTGRES_URL if pg else f"sqlite+aiosqlite:///{folder}/b.db")
    metadata = sa.MetaData(schema=schema)
    records = sa.Table(
        "records",
        metadata,
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("data", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    )
    projection = sa.Table(
        "proj",
        metadata,
        sa.Column("_id", sa.Text(), primary_key=True),
        sa.Column("w", sa.Numeric() if pg else sa.types.NullType()),
    )
    prefix = f'"{schema}".' if schema else ""
    try:
        async with engine.begin() as conn:
            if schema:
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(records.metadata.create_all, tables=[records])
            rows = [
                {"id": key, "data": {} if value is None else {"w": value}}
                for key, value in RECORDS.items()
            ]
            await conn.execute(records.insert(), rows)
            column = "NUMERIC" if pg else ""
            await conn.execute(
                sa.text(f"CREATE TABLE {prefix}proj (_id TEXT PRIMARY KEY, w {column})")
            )
            value = _value_sql("w", "numeric", "r", dialect)
            await conn.execute(
                sa.text(
                    f"INSERT INTO {prefix}proj (_id, w) SELECT r.id, {value} FROM {prefix}records r"
                )
            )
        yield Bins(engine, dialect, records, projection)
    finally:
        if schema:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


def _data(value: Any) -> dict[str, Any]:
    return {} if value is None else {"w": value}


def _bin(value: Any, width: float | int) -> Any:
    return evaluate({"bin_of": [value, width]})


def test_the_values_straddle_the_edges() -> None:
    """Guards the data: the doubles either side of 0.3 are different numbers that land in
    bin 3 of width 0.1, where comparing with the edge 0.3 would split them."""
    assert 0.1 + 0.2 != 0.3 != 0.7 - 0.4
    assert {_bin(v, 0.1) for v in (0.3, 0.1 + 0.2, 0.7 - 0.4)} == {3}
    assert (0.7 - 0.4) < 0.3
    assert _bin(-0.1, 0.1) == -1 and _bin(1e-9, 0.1) == 0 and _bin(-1e-9, 0.1) == -1


@pytest.mark.parametrize("projected", [False, True], ids=["document", "projection"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_sql_bin_numbers_are_the_evaluators(
    bins: Bins, width: float | int, projected: bool
) -> None:
    expected = {key: _bin(value, width) for key, value in RECORDS.items()}
    assert await bins.bins(width, projected) == expected


@pytest.mark.parametrize("projected", [False, True], ids=["document", "projection"])
@pytest.mark.parametrize("width", WIDTHS)
async def test_bin_filters_select_what_the_evaluator_selects(
    bins: Bins, width: float | int, projected: bool
) -> None:
    numbers = sorted({_bin(v, width) for v in VALUES})
    some = numbers[::2]
    middle = numbers[len(numbers) // 2]
    binned = {"bin_of": [{"var": "w"}, width]}
    rules = [
        {"in": [binned, some]},
        {"!": {"in": [binned, some]}},
        {"in": [binned, [*numbers[1::3], None, 0.5]]},
        {"==": [binned, middle]},
        {"===": [binned, 3]},
        {"!=": [binned, 0]},
        {"<": [binned, middle]},
        {">=": [binned, -1]},
        {"<=": [-1, binned, 3]},
    ]
    for rule in rules:
        wanted = {k for k, v in RECORDS.items() if evaluate({"!!": [rule]}, _data(v))}
        assert await bins.ids(rule, projected) == wanted, rule
    assert 0 < len(await bins.ids(rules[0], projected)) < len(RECORDS)
