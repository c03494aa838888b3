"""What a list of records may ask for, checked: its sort keys and its filter.

A sort names system columns and scalar fields, each once, with at most one sign, and ends
with ``id`` (so keyset pages are stable); a filter must be data the databases can bind and
small enough that the SQL it compiles to stays within what SQLite accepts. Both are refused
with a 400 naming the query parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement

from formloom.engines.forms import SCALAR_TYPES
from formloom.engines.logic.sql import FIELD_TYPES, FilterTarget, field_value
from formloom.platform import jsonsafe
from formloom.platform.errors import BadRequest, shown
from formloom.platform.models import SYSTEM_COLUMNS, Record
from formloom.platform.records import cursor as keyset

# Bounds the SQL a filter can produce (SQLite refuses expressions more than 1000 deep).
# Long value lists (`in`) are one operation however many values they hold.
MAX_FILTER_OPERATIONS = 300
# A keyset condition grows with the square of the number of sort keys.
MAX_SORT_KEYS = 10
#: What cursors carry for each sortable system column and field kind.
_COLUMN_KINDS: dict[str, keyset.ValueKind] = {
    "version": "integer",
    "created_at": "timestamp",
    "updated_at": "timestamp",
}
_FIELD_KINDS: dict[str, keyset.ValueKind] = {"number": "number", "boolean": "boolean"}


@dataclass(frozen=True)
class ListQuery:
    filter: Any = None
    #: None: the form's own default sort (its definition's ``sort``), else ``id``.
    sort: str | None = "id"
    limit: int = 50
    cursor: str | None = None
    fields: list[str] | None = None
    count: bool = False
    #: A quick-search term (platform/records/search.py); blank: none.
    q: str | None = None
    #: Another action the rows must also be granted for (``export``: a download lists the
    #: rows the caller may both read and export; it must be allowed at all).
    also: str | None = None


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next_cursor: str | None
    count: int | None


def sort_problem(code: str, message: str) -> BadRequest:
    return BadRequest(
        f"`sort` cannot be used: {message}.",
        errors=[{"in": "query", "parameter": "sort", "code": code, "message": message}],
    )


def sort_keys(target: FilterTarget, sort: str) -> list[keyset.SortKey]:
    """The keys of ``sort`` (``"-created_at,name"``), then ``id``; every part must name a
    sortable field or column once, with at most one sign (a 400 otherwise)."""
    keys: list[keyset.SortKey] = []
    types = target.fields
    parts = [part.strip() for part in sort.split(",")] if sort.strip() else ["id"]
    if len(parts) > MAX_SORT_KEYS:
        raise sort_problem(
            "too_many_keys",
            f"has {len(parts)} keys; at most {MAX_SORT_KEYS} are allowed",
        )
    for position, raw in enumerate(parts, start=1):
        descending = raw.startswith("-")
        name = raw[1:] if raw[:1] in ("-", "+") else raw
        if not name or name[:1] in ("-", "+"):
            what = "is empty" if not raw else f"'{shown(raw)}' is not a key with one sign"
            raise sort_problem("empty_key", f"part {position} {what}")
        nullable = name not in SYSTEM_COLUMNS
        kind: keyset.ValueKind
        if name in SYSTEM_COLUMNS:
            expression: ColumnElement[Any] = target.columns.get(name, getattr(Record, name))
            kind = _COLUMN_KINDS.get(name, "text")
        elif types.get(name) in SCALAR_TYPES:
            expression = field_value(target, name)
            kind = _FIELD_KINDS.get(FIELD_TYPES[types[name]], "text")
        else:
            reason = (
                "is not a field of this form"
                if name not in types
                else f"is a {types[name]} field, which cannot be sorted on"
            )
            raise BadRequest(
                f"Cannot sort by '{shown(name)}': it {reason}.",
                errors=[
                    {
                        "in": "query",
                        "parameter": "sort",
                        "code": "unknown_field",
                        "message": f"'{shown(name)}' {reason}",
                    }
                ],
            )
        if any(key.name == name for key in keys):
            raise sort_problem("duplicate_key", f"'{name}' is named twice")
        keys.append(keyset.SortKey(name, descending, expression, nullable, kind))
    if not any(key.name == "id" for key in keys):
        identity = target.columns.get("id", Record.__table__.c.id)
        keys.append(keyset.SortKey("id", False, identity, nullable=False))
    return keys


def check_filter(filter: Any) -> None:
    """A 400 unless ``filter`` is data the databases can bind, within the size bound."""
    found = jsonsafe.problems(filter, bounded_ints=True)
    operations = jsonsafe.operator_count(filter)
    if operations > MAX_FILTER_OPERATIONS:
        found.insert(
            0, ("", f"has {operations} operations; at most {MAX_FILTER_OPERATIONS} are allowed")
        )
    if found:
        pointer, message = found[0]
        raise BadRequest(
            f"The filter cannot be used: the value at {pointer or '/'} {message}.",
            errors=[
                {
                    "in": "query",
                    "parameter": "filter",
                    "pointer": pointer,
                    "code": "invalid_value",
                    "message": message,
                }
            ],
        )
