"""The JsonLogic -> SQL filter compiler, checked against the Python evaluator.

The main test is differential: a table shaped like ``records`` is filled with generated
records (absent fields, JSON nulls, empty strings, zero, multiselect arrays, dates, datetimes
near midnight UTC, system columns with sub-second timestamps), and for every filter the ids
SQL returns must equal the ids for which ``evaluate(rule, record, now=FIXED_NOW)`` is truthy.
Every case runs on SQLite (aiosqlite) and on PostgreSQL (asyncpg); PostgreSQL is required:
when it is unreachable these tests error, they are not skipped.
"""

from __future__ import annotations

import os
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.sql import (
    Dialect,
    FilterError,
    FilterTarget,
    clock_part,
    compile_filter,
    field_value,
    index_expression_sql,
    local_time,
)
from formloom.engines.logic.zones import offset_periods

# The `postgres` database every server has (a throw-away schema is made in it): a database
# named `test` exists only where someone created it.
POSTGRES_URL = os.environ.get(
    "FORMLOOM_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
#: 01:30 in Shanghai: "today" there (2024-06-15) is already a day ahead of UTC (06-14).
FIXED_NOW = datetime(2024, 6, 15, 1, 30, tzinfo=timezone(timedelta(hours=8)))

FIELDS: dict[str, str] = {
    "name": "text",
    "note": "textarea",
    "email": "email",
    "status": "select",
    "doctor": "relation",
    "age": "integer",
    "weight": "number",
    "active": "boolean",
    "tags": "multiselect",
    "visit_date": "date",
    "discharged_at": "datetime",
    "dob": "date",
    "appt_time": "time",
    "items": "table",
    "photo": "image",
}

ABSENT = object()
POOLS: dict[str, list[Any]] = {
    "name": ["Alice", "alice", "Bob", "Émile", "李雷", "", "50% off", "a_b", "O'Brien",
             "Zed", "zed", "5", "anna", "Anna", "Hannah", ABSENT, None],
    "note": ["", "call back", "active", ABSENT, None],
    "email": ["a@x.org", "b@y.com", "", ABSENT, None],
    "status": ["new", "active", "closed", "", ABSENT, None],
    "doctor": ["r001", "r002", ABSENT],
    "age": [0, 1, 17, 18, 30, 64, 65, 90, -1, ABSENT, None],
    "weight": [0, 0.1, 0.3, 55.5, 70, 70.5, 120.25, 1e-7, 18, ABSENT, None],
    "active": [True, False, ABSENT, None],
    "tags": [[], ["a"], ["b"], ["a", "b"], ["c", "a"], ["50%"], ABSENT, None],
    "dob": ["2000-02-29", "2006-06-15", "2006-06-14", "2006-06-16", "1980-01-01",
            "2030-01-01", "2024-06-15", "2024-06-14", ABSENT, None],
    "appt_time": ["09:30", "14:00", "09:30:15", "10:00", ABSENT],
    "items": [[], [{"qty": 1}], ABSENT, None],
    "photo": [{"id": "f1", "name": "x.png", "content_type": "image/png", "size": 10}, {},
              ABSENT, None],
}  # fmt: skip


@dataclass(frozen=True)
class Record:
    id: str
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime | None
    updated_by: str | None
    data: dict[str, Any]

    def as_logic_data(self) -> dict[str, Any]:
        """What the Python evaluator sees: the data plus system columns as UTC text."""
        return {
            **self.data,
            "id": self.id,
            "version": self.version,
            "created_at": _utc_text(self.created_at),
            "created_by": self.created_by,
            "updated_at": _utc_text(self.updated_at) if self.updated_at else None,
            "updated_by": self.updated_by,
        }


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_records(count: int = 180) -> list[Record]:
    rng = random.Random(20240615)
    records = []
    base = datetime(2024, 5, 20, tzinfo=UTC)
    for i in range(count):
        data: dict[str, Any] = {}
        for key, pool in POOLS.items():
            value = rng.choice(pool)
            if value is not ABSENT:
                data[key] = value
        visit = rng.choice([ABSENT, None, *range(-69, 40, 3)])
        if visit is not ABSENT:
            data["visit_date"] = (
                None if visit is None else (FIXED_NOW.date() + timedelta(days=visit)).isoformat()
            )
        discharged = rng.choice([ABSENT, None, *range(0, 12 * 24 * 60, 97)])
        if discharged is not ABSENT:
            moment = datetime(2024, 6, 4, tzinfo=UTC) + timedelta(minutes=discharged or 0)
            data["discharged_at"] = None if discharged is None else _utc_text(moment)
        created = base + timedelta(hours=7 * i, microseconds=rng.choice([0, 0, 250_000, 999_999]))
        if i in (5, 6, 7):  # exactly on, just after, and within the second of a boundary
            created = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(
                microseconds=(0, 1, 500_000)[i - 5]
            )
        updated = None if i % 5 == 0 else created + timedelta(hours=rng.randint(0, 200))
        records.append(
            Record(
                id=f"r{i:03d}",
                version=1 + i % 4,
                created_at=created,
                created_by=rng.choice(["alice", "bob", "Carol"]),
                updated_at=updated,
                updated_by=None if updated is None else "bob",
                data=data,
            )
        )
    return records


RECORDS = make_records()


def records_table(metadata: sa.MetaData) -> sa.Table:
    """A table of the same shape as the platform's ``records``."""
    return sa.Table(
        "records",
        metadata,
        sa.Column("id", sa.Text(), primary_key=True),
        sa.Column("app", sa.Text(), nullable=False),
        sa.Column("form", sa.Text(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_by", sa.Text(), nullable=True),
    )


@dataclass
class Database:
    engine: AsyncEngine
    table: sa.Table
    dialect: Dialect
    schema: str | None

    @property
    def target(self) -> FilterTarget:
        columns = {
            name: self.table.c[name]
            for name in ("id", "version", "created_at", "created_by", "updated_at", "updated_by")
        }
        return FilterTarget(self.table.c.data, FIELDS, columns, self.dialect)

    async def ids(self, rule: Any) -> set[str]:
        condition = compile_filter(rule, self.target, now=FIXED_NOW)
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(self.table.c.id).where(condition))
            return {row[0] for row in rows}


@asynccontextmanager
async def open_database(dialect: Dialect, folder: Path) -> AsyncIterator[Database]:
    """A filled records table: a file database on SQLite, a throw-away schema on PostgreSQL."""
    schema: str | None = None
    if dialect == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{folder / 'records.db'}")
    else:
        schema = f"test_logic_sql_{os.getpid()}_{secrets.token_hex(3)}"
        engine = create_async_engine(POSTGRES_URL)
    table = records_table(sa.MetaData(schema=schema))
    try:
        async with engine.begin() as conn:
            if schema:
                await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(
                table.insert(),
                [
                    {"id": r.id, "app": "clinic", "form": "patient", "version": r.version,
                     "data": r.data, "created_at": r.created_at, "created_by": r.created_by,
                     "updated_at": r.updated_at, "updated_by": r.updated_by}
                    for r in RECORDS
                ],
            )  # fmt: skip
        yield Database(engine, table, dialect, schema)
    finally:
        if schema:
            async with engine.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await engine.dispose()


@pytest_asyncio.fixture(scope="module", params=["sqlite", "postgresql"])
async def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Database]:
    async with open_database(request.param, tmp_path_factory.mktemp("logic_sql")) as database:
        yield database


@pytest_asyncio.fixture(scope="module")
async def postgres(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    async with open_database("postgresql", tmp_path_factory.mktemp("logic_sql")) as database:
        yield database


def expected_ids(rule: Any) -> set[str]:
    return {r.id for r in RECORDS if evaluate({"!!": [rule]}, r.as_logic_data(), now=FIXED_NOW)}


def var(key: str) -> dict[str, Any]:
    return {"var": key}


TODAY: dict[str, Any] = {"today": []}
FILTERS: dict[str, Any] = {
    # equality on text, with JsonLogic's null rules (null == "" is true, != on null is true)
    "eq_text": {"==": [var("status"), "active"]},
    "ne_text": {"!=": [var("status"), "active"]},
    "strict_eq": {"===": [var("status"), "new"]},
    "strict_ne": {"!==": [var("status"), "new"]},
    "eq_empty_string": {"==": [var("status"), ""]},
    "eq_null": {"==": [var("name"), None]},
    "ne_null": {"!=": [var("name"), None]},
    "strict_eq_null": {"===": [var("name"), None]},
    "eq_numeric_looking_text": {"==": [var("name"), "5"]},
    "relation_ne": {"!=": [var("doctor"), "r001"]},
    # ordering on text: code point order, case-sensitive, unicode
    "text_lt": {"<": [var("name"), "M"]},
    "text_literal_left": {">=": ["b", var("name")]},
    "time_lt": {"<": [var("appt_time"), "10:00"]},
    # numbers (null orders and equals as 0)
    "num_gt": {">": [var("age"), 30]},
    "num_lt_null_as_zero": {"<": [var("age"), 18]},
    "num_between": {"<=": [18, var("age"), 65]},
    "num_between_exclusive": {"<": [0, var("weight"), 70.5]},
    "num_chain_gt": {">": [100, var("age"), 17]},
    "num_ge_float": {">=": [var("weight"), 0.1]},
    "num_eq_zero": {"==": [var("age"), 0]},
    "num_ne": {"!=": [var("weight"), 70]},
    "num_eq_float": {"==": [var("weight"), 0.3]},
    "num_eq_int_as_float": {"===": [var("weight"), 18.0]},
    # booleans (null == false is true)
    "bool_eq_true": {"==": [var("active"), True]},
    "bool_eq_false": {"==": [var("active"), False]},
    "bool_ne_true": {"!=": [var("active"), True]},
    "bool_truthy": var("active"),
    "bool_not": {"!": var("active")},
    # truthiness of other types
    "text_truthy": {"!!": [var("name")]},
    "num_falsy": {"!": [var("age")]},
    "tags_truthy": {"!!": var("tags")},
    # in / contains
    "in_multiselect": {"in": ["a", var("tags")]},
    "not_in_multiselect": {"!": {"in": ["b", var("tags")]}},
    "in_multiselect_percent": {"in": ["50%", var("tags")]},
    "in_list": {"in": [var("status"), ["new", "closed"]]},
    "in_list_with_null": {"in": [var("status"), ["new", None]]},
    "in_number_list": {"in": [var("age"), [0, 18, 65.0]]},
    "in_empty_list": {"in": [var("status"), []]},
    "substring_percent": {"in": ["50%", var("name")]},
    "substring_underscore": {"in": ["_", var("name")]},
    "substring_case": {"in": ["an", var("name")]},
    "substring_empty": {"in": ["", var("name")]},
    "field_inside_string": {"in": [var("status"), "inactive/closed"]},
    "contains_text": {"contains": [var("name"), "li"]},
    "contains_tags": {"contains": [var("tags"), "a"]},
    "not_contains_tags": {"!": {"contains": [var("tags"), "a"]}},
    # missing / missing_some / is_empty
    "missing": {"missing": ["name", "age"]},
    "not_missing": {"!": {"missing": "email"}},
    "missing_list_form": {"missing": [["tags", "photo"]]},
    "missing_some_1": {"missing_some": [1, ["email", "status"]]},
    "missing_some_2": {"missing_some": [2, ["email", "status", "name"]]},
    "is_empty_text": {"is_empty": [var("name")]},
    "is_empty_tags": {"is_empty": [var("tags")]},
    "is_empty_table": {"is_empty": var("items")},
    "is_empty_image": {"is_empty": [var("photo")]},
    "not_is_empty_number": {"!": {"is_empty": [var("age")]}},
    # dates: constants folded in Python, compared as ISO text
    "recent_visit": {">=": [var("visit_date"), {"date_add": [TODAY, -30, "day"]}]},
    "visit_today": {"==": [var("visit_date"), TODAY]},
    "visit_next_month": {"<": [TODAY, var("visit_date"), {"date_add": [TODAY, 1, "month"]}]},
    "discharged_before_now": {"<": [var("discharged_at"), {"now": []}]},
    "discharged_since_date": {">=": [var("discharged_at"), "2024-06-12"]},
    "discharged_until_date": {"<=": [var("discharged_at"), "2024-06-12"]},
    "discharged_last_day": {">": [var("discharged_at"), {"date_add": [{"now": []}, -1, "day"]}]},
    "days_since_discharge": {">": [{"days_between": [var("discharged_at"), TODAY]}, 3]},
    "days_until_visit": {"<=": [{"days_between": [TODAY, var("visit_date")]}, 7]},
    "days_between_null_zero": {"==": [{"days_between": [var("visit_date"), TODAY]}, 0]},
    "adult": {">=": [{"years_between": [var("dob"), TODAY]}, 18]},
    "born_in_future": {"<": [{"years_between": [var("dob"), TODAY]}, 0]},
    "years_to_birthday": {"==": [{"years_between": [TODAY, var("dob")]}, -18]},
    # hour_of / weekday_of: the wall clock in a zone (dates: hour 0, their own weekday)
    "discharged_hour_shanghai": {"==": [{"hour_of": [var("discharged_at"), "Asia/Shanghai"]}, 9]},
    "discharged_morning_new_york": {
        "<": [{"hour_of": [var("discharged_at"), "America/New_York"]}, 12]
    },
    "discharged_wednesday": {"==": [{"weekday_of": [var("discharged_at"), "Asia/Shanghai"]}, 3]},
    "visit_on_weekend": {">=": [{"weekday_of": [var("visit_date")]}, 6]},
    "visit_hour_is_midnight": {"===": [{"hour_of": [var("visit_date"), "Asia/Shanghai"]}, 0]},
    "created_hour_utc": {"==": [{"hour_of": var("created_at")}, 7]},
    # a number computed from a date looked up in a list (the reports' "Other" drill-downs)
    "visit_weekday_in": {"in": [{"weekday_of": [var("visit_date")]}, [1, 3, 6]]},
    "discharged_hour_in": {
        "in": [{"hour_of": [var("discharged_at"), "Asia/Shanghai"]}, [0, 9, 23]]
    },
    "days_since_visit_in": {"in": [{"days_between": [var("visit_date"), TODAY]}, [0, 1, 400, 2.0]]},
    "not_weekday_in": {"!": {"in": [{"weekday_of": [var("visit_date")]}, [2, 4]]}},
    "weekday_in_with_null": {"in": [{"weekday_of": [var("visit_date")]}, [None, 7]]},
    "created_monday_shanghai": {"===": [{"weekday_of": [var("created_at"), "Asia/Shanghai"]}, 1]},
    "updated_not_sunday": {"!=": [{"weekday_of": [var("updated_at"), "Europe/London"]}, 7]},
    # bin_of: the bin number of a number field (the reports' bin_width drill-downs);
    # the edge values themselves are in test_sql_bins.py
    "weight_bin_in": {"in": [{"bin_of": [var("weight"), 0.1]}, [0, 1, 3, 705]]},
    "weight_bin_eq": {"==": [{"bin_of": [var("weight"), 0.3]}, 1]},
    "weight_bin_strict": {"===": [{"bin_of": [var("weight"), 0.25]}, 481]},
    "weight_bin_lt_null_as_zero": {"<": [{"bin_of": [var("weight"), 25]}, 3]},
    "not_weight_bin_in": {"!": {"in": [{"bin_of": [var("weight"), 0.25]}, [0, 481, 280]]}},
    "weight_bin_in_with_null": {"in": [{"bin_of": [var("weight"), 0.5]}, [None, 141, 36.0]]},
    "weight_bin_default": {"===": [{"bin_of": [{"var": ["weight", 0.3]}, 0.1]}, 3]},
    "age_bin_between": {"<=": [1, {"bin_of": [var("age"), 7]}, 4]},
    "age_bin_negative": {"==": [{"bin_of": [var("age"), 7]}, -1]},
    "version_bin_in": {"in": [{"bin_of": [var("version"), 2]}, [1]]},
    # var defaults (used for absent and null alike)
    "var_default_text": {"==": [{"var": ["status", "new"]}, "new"]},
    "var_default_number": {"<": [{"var": ["age", 100]}, 50]},
    "var_folded_path": {"==": [{"var": {"cat": ["sta", "tus"]}}, "new"]},
    "val": {">": [{"val": "age"}, 17]},
    "exists": {"exists": "email"},
    "not_exists": {"!": {"exists": ["active"]}},
    # logic
    "and_or": {
        "and": [
            {"or": [{"==": [var("status"), "new"]}, {"in": ["a", var("tags")]}]},
            {"!": {"missing": ["visit_date"]}},
        ]
    },
    "not_and": {"!": {"and": [var("active"), {">": [var("age"), 18]}]}},
    "not_or": {"!": {"or": [{"<": [var("age"), 18]}, {"==": [var("name"), "Bob"]}]}},
    "double_bang": {"!!": {"==": [var("status"), "closed"]}},
    "constant_in_and": {"and": [True, {"==": [var("doctor"), "r001"]}, {"<": [1, 2]}]},
    "constant_false": {"==": [1, 2]},
    "constant_true": True,
    # two fields
    "fields_numbers": {"<": [var("age"), var("weight")]},
    "fields_text_eq": {"==": [var("note"), var("status")]},
    "fields_text_ne": {"!=": [var("note"), var("status")]},
    "fields_dates": {"<": [var("visit_date"), var("discharged_at")]},
    # system columns: datetimes compare as their UTC text, seconds truncated
    "created_since_date": {">=": [var("created_at"), "2024-06-01"]},
    "created_until_date": {"<=": [var("created_at"), "2024-06-01"]},
    "created_at_second": {"==": [var("created_at"), "2024-06-01T00:00:00Z"]},
    "created_after_second": {">": [var("created_at"), "2024-06-01T00:00:00Z"]},
    "created_not_second": {"!=": [var("created_at"), "2024-06-01T00:00:00Z"]},
    "created_last_3_days": {">=": [var("created_at"), {"date_add": [{"now": []}, -3, "day"]}]},
    "created_days_ago": {"<": [{"days_between": [var("created_at"), TODAY]}, 10]},
    "never_updated": {"==": [var("updated_at"), None]},
    "created_by": {"==": [var("created_by"), "alice"]},
    "created_by_order": {"<": [var("created_by"), "b"]},
    "version_gt": {">": [var("version"), 2]},
    "id_in": {"in": [var("id"), ["r001", "r010", "r999"]]},
    "created_before_updated": {"<": [var("created_at"), var("updated_at")]},
}


def test_filters_are_discriminating() -> None:
    """Guards the data set: most filters must select some records but not all of them."""
    trivial = [
        name for name, rule in FILTERS.items()
        if len(expected_ids(rule)) in (0, len(RECORDS))
        and name not in ("constant_false", "constant_true", "in_empty_list", "substring_empty")
    ]  # fmt: skip
    assert trivial == []


@pytest.mark.parametrize("name", list(FILTERS))
async def test_filter_matches_python_evaluation(db: Database, name: str) -> None:
    rule = FILTERS[name]
    assert await db.ids(rule) == expected_ids(rule)


async def test_datetime_literals_are_normalised_to_utc(db: Database) -> None:
    shanghai = {">=": [var("discharged_at"), "2024-06-12T08:00:00+08:00"]}
    utc = {">=": [var("discharged_at"), "2024-06-12T00:00:00Z"]}
    assert await db.ids(shanghai) == expected_ids(utc)
    created = {">": [var("created_at"), "2024-06-01T08:00:00+08:00"]}
    assert await db.ids(created) == expected_ids({">": [var("created_at"), "2024-06-01T00:00:00Z"]})


async def test_sorting_by_field_value_is_code_point_order(db: Database) -> None:
    value = field_value(db.target, "name")
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(value).where(value.is_not(None)).order_by(value, db.table.c.id)
        )
        names = [row[0] for row in rows]
    assert names == sorted(names)
    assert names.index("Zed") < names.index("alice") < names.index("Émile") < names.index("李雷")


async def test_literals_are_bound_parameters(db: Database) -> None:
    nasty = "x' OR '1'='1"
    condition = compile_filter({"==": [var("name"), nasty]}, db.target, now=FIXED_NOW)
    dialect = db.engine.dialect
    compiled = sa.select(db.table.c.id).where(condition).compile(dialect=dialect)
    assert nasty not in str(compiled)
    assert nasty in compiled.params.values()
    assert await db.ids({"==": [var("name"), nasty]}) == set()


# --------------------------------------------------------------------------------------
# Indexes (PostgreSQL)
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "zone", ["Asia/Shanghai", "America/New_York", "Asia/Kathmandu", "Europe/Moscow", "UTC"]
)
async def test_wall_clock_in_sql_matches_the_evaluator(db: Database, zone: str) -> None:
    """hour_of / weekday_of's SQL on both sides of every offset change (Shanghai's DST of
    1986-1991, then its settled +08:00 taken by the fast path; New York's DST; Kathmandu's
    +05:45; Moscow's changes to 2014) agrees with the evaluator to the second."""
    moments = {"1905-03-01T12:00:00Z", "1969-07-20T20:17:40Z", "2024-02-29T16:00:00Z"}
    for start, _offset in offset_periods(zone):
        if "1986" <= start[:4] <= "1992" or "2010" <= start[:4] <= "2026":
            moment = datetime.fromisoformat(start)
            for seconds in (-1, 0, 1):
                moments.add(_utc_text(moment + timedelta(seconds=seconds)))
    texts = sorted(moments)
    columns = []
    for text in texts:
        local = local_time(sa.literal(text, sa.Text()), "datetime", zone, db.dialect)
        columns += [clock_part(local, "hour", db.dialect), clock_part(local, "weekday", db.dialect)]
    async with db.engine.connect() as conn:
        row = (await conn.execute(sa.select(*columns))).one()
    expected = []
    for text in texts:
        expected += [evaluate({"hour_of": [text, zone]}), evaluate({"weekday_of": [text, zone]})]
    assert list(row) == expected


def test_index_expressions() -> None:
    assert index_expression_sql("name", "text") == "(data ->> 'name') COLLATE \"C\""
    assert index_expression_sql("visit_date", "date") == "(data ->> 'visit_date') COLLATE \"C\""
    assert index_expression_sql("age", "integer") == "CAST(data ->> 'age' AS NUMERIC)"
    assert index_expression_sql("weight", "number") == "CAST(data ->> 'weight' AS NUMERIC)"
    assert index_expression_sql("active", "boolean") == "CAST(data ->> 'active' AS BOOLEAN)"
    assert index_expression_sql("tags", "multiselect") == "data -> 'tags'"
    assert index_expression_sql("name", "text", dialect="sqlite") == "json_extract(data, '$.name')"
    with pytest.raises(FilterError):
        index_expression_sql("Name", "text")
    with pytest.raises(FilterError):
        index_expression_sql("name", "section")


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("status", {"==": [var("status"), "closed"]}),
        ("status", {"in": [var("status"), ["new", "closed"]]}),
        ("name", {"<": [var("name"), "B"]}),
        ("visit_date", {">=": [var("visit_date"), {"date_add": [TODAY, -7, "day"]}]}),
        ("age", {">": [var("age"), 64]}),
        ("age", {"<": [var("age"), 18]}),  # "... OR age IS NULL" (null counts as 0)
        ("weight", {"<": [0.05, var("weight"), 0.2]}),
        ("active", {"==": [var("active"), True]}),
        ("tags", {"in": ["a", var("tags")]}),  # a GIN index
    ],
)
async def test_postgresql_expression_index_is_used(postgres: Database, key: str, rule: Any) -> None:
    db = postgres
    table = db.table.fullname.replace(".", '"."')
    index = f"ix_{key}_{secrets.token_hex(3)}"
    condition = compile_filter(rule, db.target, now=FIXED_NOW)
    method = "gin" if FIELDS[key] == "multiselect" else "btree"
    async with db.engine.connect() as conn, conn.begin():
        expression = index_expression_sql(key, FIELDS[key])
        await conn.execute(
            sa.text(f'CREATE INDEX {index} ON "{table}" USING {method} (({expression}))')
        )
        await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        compiled = sa.select(db.table.c.id).where(condition).compile(dialect=conn.dialect)
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        plan = await conn.exec_driver_sql("EXPLAIN " + compiled.string, params)
        text = "\n".join(row[0] for row in plan)
        await conn.rollback()
    assert index in text, text


# --------------------------------------------------------------------------------------
# What is rejected, and where
# --------------------------------------------------------------------------------------

COLUMNS = records_table(sa.MetaData()).c
TARGET = FilterTarget(
    COLUMNS.data,
    FIELDS,
    {
        name: COLUMNS[name]
        for name in ("id", "version", "created_at", "created_by", "updated_at", "updated_by")
    },
    "postgresql",
)

REJECTED: list[tuple[Any, str, str | None]] = [
    ({"and": [{"==": [var("status"), "new"]}, {"map": [var("tags"), var("")]}]},
     "/and/1/map", "operator 'map' cannot be used in a filter; supported: var, val, exists, =="),
    ({"reduce": [var("tags"), {"+": [1, 2]}, 0]}, "/reduce", "operator 'reduce'"),
    ({"some": [var("tags"), {"==": [var(""), "a"]}]}, "/some", "operator 'some'"),
    ({"if": [var("active"), True, False]}, "/if", "operator 'if'"),
    ({"==": [{"cat": [var("name"), "x"]}, "ax"]}, "/==/0/cat", "operator 'cat' cannot be used"),
    ({">": [{"+": [var("age"), 1]}, 3]}, "/>/0/+", "operator '+' cannot be used as a value"),
    ({"<": [{"date_add": [var("visit_date"), 1, "day"]}, TODAY]}, "/</0/date_add",
     "'date_add' can only work on constants in a filter; move the arithmetic"),
    ({"==": [{"in": ["a", var("tags")]}, True]}, "/==/0/in", "operator 'in'"),
    ({"==": [var("unknown"), 1]}, "/==/0/var", "unknown field 'unknown'"),
    ({"!": {"var": ["Name"]}}, "/!/var/0", "is not a field key"),
    ({"==": [var("items.0.qty"), 1]}, "/==/0/var", "top-level fields only"),
    ({"<": [var("name"), 5]}, "/</1", "'name' is a text field; compare it with a text"),
    ({"==": [var("age"), "30"]}, "/==/1", "compare it with a number"),
    ({"==": [var("active"), 1]}, "/==/1", "true or false"),
    ({"==": [var("items"), "x"]}, "/==/0", "'items' is a table field"),
    ({"in": ["x", var("items")]}, "/in/0", "'in'/'contains' needs a multiselect or text"),
    ({"in": [True, var("tags")]}, "/in/0", "cannot be one"),
    ({"in": [var("tags"), ["a"]]}, "/in/1", "cannot be looked up in a list"),
    ({"in": [var("status"), [1]]}, "/in/1/0", "the list holds 1"),
    ({"==": [var("tags"), None]}, "", "no answer for"),
    ({"<": [var("name"), var("email")]}, "/<", "depends on the other field"),
    ({"==": [var("name"), var("name")]}, "/==/1", "a field and itself"),
    ({"==": [var("name"), {"/": [1, 0]}]}, "/==/1", "cannot be evaluated"),
    ({">": [{"days_between": [var("visit_date"), var("dob")]}, 1]}, "/>/0/days_between",
     "one date field and one constant date"),
    ({"days_between": [var("visit_date"), TODAY]}, "/days_between", "gives a number"),
    ({">": [{"years_between": [var("name"), TODAY]}, 1]}, "/>/0/years_between",
     "needs a date or datetime field"),
    ({"<": [var("created_at"), "yesterday"]}, "/</1", "compare it with a date"),
    ({"==": [{"hour_of": [var("name"), "UTC"]}, 1]}, "/==/0/hour_of",
     "needs a date or datetime field; 'name' is a text field"),
    ({"==": [{"hour_of": [var("discharged_at"), "Mars/Base"]}, 1]}, "/==/0/hour_of/1",
     "is not a time zone name"),
    ({"==": [{"hour_of": [var("discharged_at"), var("name")]}, 1]}, "/==/0/hour_of/1",
     "must be a constant"),
    ({"in": [{"bin_of": [var("weight"), 0]}, [1]]}, "/in/0/bin_of/1",
     "the width must be a positive number, not 0"),
    ({"in": [{"bin_of": [var("weight"), 1e-16]}, [1]]}, "/in/0/bin_of/1",
     "takes a width from 1e-15 to 1e15"),
    ({"in": [{"bin_of": [var("weight"), var("age")]}, [1]]}, "/in/0/bin_of/1",
     "must be a constant"),
    ({"==": [{"bin_of": [var("name"), 1]}, 1]}, "/==/0/bin_of",
     "needs a number field; 'name' is a text field"),
    ({"==": [{"bin_of": [var("weight"), 1]}, "3"]}, "/==/1", "compares a bin number with \"3\""),
    ({"in": [{"bin_of": [var("weight"), 1]}, ["a"]]}, "/in/1/0", "use numbers"),
    ({"bin_of": [var("weight"), 1]}, "/bin_of", "gives a number, not a condition"),
    ({"==": [{"bin_of": [var("weight")]}, 1]}, "/==/0/bin_of", "takes a number field and a"),
    ({"==": [{"weekday_of": [var("discharged_at")]}, "Monday"]}, "/==/1",
     "compares a weekday (1 = Monday ... 7 = Sunday) with \"Monday\""),
    ({"weekday_of": [var("discharged_at")]}, "/weekday_of", "gives a number"),
    ({"==": [{"hour_of": [var("discharged_at"), "UTC", 1]}, 1]}, "/==/0/hour_of",
     "takes a date or datetime field and a time zone"),
    ({"missing": [["name", "Bad"]]}, "/missing/0/1", "is not a field key"),
    ({"missing_some": [1, ["name", "name"]]}, "/missing_some/1", "lists a field twice"),
    ({"missing": "nope"}, "/missing", "unknown field 'nope'"),
    ({"==": [var("age"), 1, 1]}, "/==", "takes 2 arguments, not 3"),  # a filter compares two
]  # fmt: skip


@pytest.mark.parametrize(("rule", "pointer", "message"), REJECTED)
def test_unsupported_constructs_are_rejected(rule: Any, pointer: str, message: str | None) -> None:
    if message is None:
        compile_filter(rule, TARGET, now=FIXED_NOW)
        return
    with pytest.raises(FilterError) as caught:
        compile_filter(rule, TARGET, now=FIXED_NOW)
    assert caught.value.pointer == pointer
    assert message in caught.value.message
    assert isinstance(caught.value, LogicError)


def test_field_value_rejects_bad_and_unknown_keys() -> None:
    with pytest.raises(FilterError, match="not a field key"):
        field_value(TARGET, "data'); DROP TABLE records; --")
    with pytest.raises(FilterError, match="unknown field"):
        field_value(TARGET, "nope")
    assert field_value(TARGET, "id") is TARGET.columns["id"]


def test_compile_filter_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        compile_filter(True, TARGET, now=datetime(2024, 1, 1))


def test_every_filter_compiles_on_both_dialects_without_evaluating_anything() -> None:
    sqlite_target = FilterTarget(sa.column("data", sa.JSON()), FIELDS, TARGET.columns, "sqlite")
    for rule in FILTERS.values():
        try:
            compile_filter(rule, sqlite_target, now=FIXED_NOW)
        except FilterError as error:  # pragma: no cover - the message is the diagnosis
            pytest.fail(f"{rule}: {error}")
