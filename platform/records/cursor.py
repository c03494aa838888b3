"""Keyset pagination over any sort order, with NULLs always last.

A list is ordered by its sort keys and then by ``id``; the cursor carries the sort spec and
the last row's key values. The next page is the rows strictly after that tuple, written as
an OR of "equal on the first i keys and after on key i+1" — which works for any mix of
directions and nullable JSON fields, on SQLite and PostgreSQL, with no OFFSET.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, and_, false, literal, or_

from formloom.platform.errors import BadRequest


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool
    expression: ColumnElement[Any]
    nullable: bool = True


def order_by(keys: list[SortKey]) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        if key.nullable:
            clauses.append(key.expression.is_(None).asc())
        clauses.append(key.expression.desc() if key.descending else key.expression.asc())
    return clauses


def after(keys: list[SortKey], values: list[Any]) -> ColumnElement[bool]:
    """Rows that come strictly after the row whose key values are ``values``."""
    alternatives: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        expr = key.expression
        if value is None:
            beyond: ColumnElement[bool] = false()
            same = expr.is_(None)
        else:
            bound = literal(value, expr.type)
            step = expr < bound if key.descending else expr > bound
            beyond = or_(step, expr.is_(None)) if key.nullable else step
            same = expr == bound
        alternatives.append(and_(*equal_so_far, beyond) if equal_so_far else beyond)
        equal_so_far.append(same)
    return or_(*alternatives)


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict):
        if "dt" in value:
            return datetime.fromisoformat(value["dt"])
        if "dec" in value:
            return Decimal(value["dec"])
        raise ValueError("unknown cursor value")
    return value


def encode(sort: str, values: list[Any]) -> str:
    raw = json.dumps([sort, [_encode_value(v) for v in values]], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, sort: str, length: int) -> list[Any]:
    """The key values in a cursor made for this sort; a 400 for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        given_sort, values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if given_sort != sort or not isinstance(values, list) or len(values) != length:
            raise ValueError("cursor made for another sort")
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, binascii.Error, InvalidOperation, UnicodeDecodeError):
        raise BadRequest(
            "The cursor is not valid for this list; start again without `cursor`, "
            "keeping the same `sort`.",
            errors=[
                {
                    "in": "query",
                    "parameter": "cursor",
                    "code": "invalid_cursor",
                    "message": "not a cursor returned by this list",
                }
            ],
        ) from None
