"""The filter compiler refuses what the evaluator would quietly read as something else, and
binds what databases limit (issue 19, items 7 and 11).

The evaluator keeps JsonLogic's semantics (a two-key object is a literal, ``==`` chains, a
string is truthy); these are restrictions of the *filter* subset only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB

from formloom.engines.logic import evaluate
from formloom.engines.logic.sql import (
    MAX_FIELD_NAMES,
    MAX_LIST_VALUES,
    Dialect,
    FilterError,
    FilterTarget,
    compile_filter,
)

NOW = datetime(2026, 11, 23, 2, 30, tzinfo=UTC)
FIELDS = {
    "name": "text",
    "age": "integer",
    "score": "number",
    "active": "boolean",
    "born": "date",
    "seen_at": "datetime",
    "opens": "time",
    **{f"f{i}": "text" for i in range(MAX_FIELD_NAMES + 1)},
}
TABLE = sa.Table(
    "records",
    sa.MetaData(),
    sa.Column("id", sa.Text(), primary_key=True),
    sa.Column("version", sa.Integer()),
    sa.Column("data", sa.JSON().with_variant(JSONB(), "postgresql")),
    sa.Column("created_at", sa.DateTime(timezone=True)),
)


def target(dialect: Dialect) -> FilterTarget:
    columns = {name: TABLE.c[name] for name in ("id", "version", "created_at")}
    return FilterTarget(TABLE.c.data, FIELDS, columns, dialect)


def compiled(rule: Any, dialect: Dialect) -> sa.sql.compiler.SQLCompiler:
    condition = compile_filter(rule, target(dialect), now=NOW)
    engine_dialect = postgresql.dialect() if dialect == "postgresql" else sqlite.dialect()
    return sa.select(TABLE.c.id).where(condition).compile(dialect=engine_dialect)


def refused(rule: Any, dialect: Dialect = "postgresql") -> FilterError:
    with pytest.raises(FilterError) as caught:
        compile_filter(rule, target(dialect), now=NOW)
    return caught.value


def var(key: str) -> dict[str, Any]:
    return {"var": key}


@pytest.mark.parametrize(
    ("rule", "pointer", "message"),
    [
        ({"==": [1, 1], "!=": [1, 2]}, "", 'this one has 2 keys ("==", "!=")'),
        ({}, "", "this one is empty"),
        ({"or": [{"==": [var("age"), 1], "<": [var("age"), 5]}]}, "/or/0", "has 2 keys"),
        ({"==": [var("name"), {"a": 1, "b": 2}]}, "/==/1", "must be one operation"),
        ("abc", "", 'the value "abc" is not one'),
        (1, "", "the value 1 is not one"),
        ([1, 2], "", "a list is not one"),
        ({"and": [{"==": [var("age"), 1]}, 0]}, "/and/1", "the value 0 is not one"),
        ({"!": ["x"]}, "/!/0", 'the value "x" is not one'),
        ({"==": [var("name"), "a", "a"]}, "/==", "'==' takes 2 arguments, not 3; to test several"),
        ({"===": [var("age"), 1, 1]}, "/===", "takes 2 arguments, not 3"),
        ({"!==": [var("age")]}, "/!==", "takes 2 arguments, not 1"),
        ({"!": [var("active"), True]}, "/!", "'!' takes 0 to 1 arguments, not 2"),
        ({"var": ["active", False, 1]}, "/var", "takes 0 to 2 arguments, not 3"),
        ({"==": [var("name"), {"substr": ["abc", 1, 1, 1]}]}, "/==/1/substr", "2 to 3"),
        ({"<": [var("born"), "abc"]}, "/</1", "'born' is a date; compare it with a date"),
        ({"<": [var("born"), "2024"]}, "/</1", 'not "2024"'),
        ({"==": [var("born"), "2024-02-30"]}, "/==/1", "compare it with a date"),
        ({">": [var("seen_at"), "tomorrow"]}, "/>/1", "'seen_at' is a datetime"),
        ({"<": [var("opens"), "9:30"]}, "/</1", "compare it with a time (HH:MM or HH:MM:SS)"),
        ({"==": [var("opens"), "24:00"]}, "/==/1", "compare it with a time"),
        ({"in": [var("born"), ["2024-01-01", "later"]]}, "/in/1/1", "compare it with a date"),
        ({"<": [var("seen_at"), "9999-12-31T23:59:59-14:00"]}, "/</1", "outside years 1-9999"),
        ({"<": [var("born"), "0001-01-01T00:00:00+14:00"]}, "/</1", "outside years 1-9999"),
        ({">": [var("created_at"), "9999-12-31T23:59:59-01:00"]}, "/>/1", "outside years"),
        ({"in": [var("seen_at"), ["0001-01-01T00:30+01:00"]]}, "/in/1/0", "outside years"),
        ({"in": [var("age"), [1] * (MAX_LIST_VALUES + 1)]}, "/in/1", "at most 10000"),
        ({"missing": [f"f{i}" for i in range(MAX_FIELD_NAMES + 1)]}, "/missing", "at most 100"),
        (
            {"missing_some": [1, [f"f{i}" for i in range(MAX_FIELD_NAMES + 1)]]},
            "/missing_some/1",
            f"names {MAX_FIELD_NAMES + 1} fields",
        ),
    ],
)
@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_garbage_and_out_of_range_input_is_refused_at_its_pointer(
    dialect: Dialect, rule: Any, pointer: str, message: str
) -> None:
    error = refused(rule, dialect)
    assert error.pointer == pointer
    assert message in error.message


def test_the_evaluator_keeps_jsonlogic_semantics() -> None:
    """The same rules that a filter refuses still evaluate as JsonLogic says."""
    assert evaluate({"==": [1, 1], "!=": [1, 2]}) == {"==": [1, 1], "!=": [1, 2]}
    assert evaluate({"==": [1, 1, 1]}) is True
    assert evaluate({"<": [{"var": "d"}, "abc"]}, {"d": "2024-01-01"}) is True
    assert evaluate({"!": [True, 1]}) is False


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_what_stays_accepted(dialect: Dialect) -> None:
    for rule in [
        True,
        False,
        {"and": [True, {"==": [var("age"), 1]}]},
        {"<": [0, var("age"), 10]},  # "between" chains
        {">": [100, var("age"), 17]},
        {"==": [var("born"), "2024-02-29"]},
        {"<": [var("born"), "2024-06-12T10:00:00+08:00"]},
        {"!=": [var("born"), ""]},
        {"<=": [var("created_at"), "9999-12-31T23:59:59Z"]},
        {"<": [var("opens"), "09:30:15"]},
        {"in": [var("age"), [1] * MAX_LIST_VALUES]},
        {"missing": ["name"] * 1001},
        {"missing": [f"f{i}" for i in range(MAX_FIELD_NAMES)]},
    ]:
        compile_filter(rule, target(dialect), now=NOW)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
@pytest.mark.parametrize(
    ("field", "values"),
    [("name", [f"n{i}" for i in range(5000)]), ("age", list(range(5000))),
     ("score", [i / 4 for i in range(5000)]), ("active", [True, False] * 2500),
     ("id", [f"i{i}" for i in range(5000)]), ("version", list(range(5000)))],
)  # fmt: skip
def test_a_value_list_is_one_parameter(dialect: Dialect, field: str, values: list[Any]) -> None:
    """However long the list, the statement has the same parameters: the list is one."""
    short = compiled({"in": [var(field), values[:1]]}, dialect)
    long = compiled({"in": [var(field), values]}, dialect)
    assert str(long) == str(short)
    assert len(long.params) == len(short.params) <= 2


def test_missing_names_each_field_once() -> None:
    once = str(compiled({"missing": ["name"]}, "sqlite"))
    assert str(compiled({"missing": ["name"] * 1001}, "sqlite")) == once
    twice = str(compiled({"missing": ["name", "age", "name"]}, "sqlite"))
    assert twice == str(compiled({"missing": ["name", "age"]}, "sqlite"))
