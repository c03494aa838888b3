"""Keyset pagination over any sort order, with NULLs always last, and the cursors that carry it.

A list is ordered by its sort keys and then by ``id``; the cursor carries the sort spec and
the last row's key values. The next page is the rows strictly after that tuple, written as
an OR of "equal on the first i keys and after on key i+1" — which works for any mix of
directions and nullable JSON fields, on SQLite and PostgreSQL, with no OFFSET.

Cursors are opaque to clients: ``<payload>.<mac>``, both base64url without padding, where
the payload is the JSON ``[sort, [value, ...]]`` and the MAC the first 16 bytes of
HMAC-SHA256, under the server's cursor secret, of the list's scope (which app and form it
pages) and the payload.

Invariants
    * :func:`decode` is total: for *any* string it returns the key values or raises
      :class:`~formloom.platform.errors.BadRequest` (400, ``parameter: cursor``), never
      anything else, so no cursor can reach the database as a 500.
    * The MAC is checked before anything in the cursor is parsed: a forged or corrupted
      cursor costs one HMAC and is refused without being decoded.
    * A cursor that passes the MAC is still checked against the sort keys: each value must be
      of its key's kind (``SortKey.kind``) and bindable on both databases (text without NUL
      or unpaired surrogates, 64-bit integers, finite numbers, timezone-aware datetimes inside
      years 1-9999, ``null`` only for a nullable key). A signed cursor cannot hold anything
      else today; the check keeps decoding total if the format or a key's type ever changes.
    * Cursors are valid only for the scope and the sort they were made for, and only where
      the secret that signed them is known: the ``cursor_secret`` setting (see
      docs/contracts.md; processes behind one load balancer must share it).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, NoReturn, TypeAlias

from sqlalchemy import ColumnElement, Numeric, and_, false, literal, or_

from formloom.platform.errors import BadRequest

#: What a sort key's values are, as cursors carry them.
ValueKind: TypeAlias = Literal["text", "number", "integer", "boolean", "timestamp"]

#: Bytes of the HMAC-SHA256 kept in a cursor (128 bits, as RFC 2104 allows truncation to).
MAC_BYTES = 16
#: Used when no secret is configured: cursors then only work in the process that made them.
_PROCESS_SECRET = secrets.token_bytes(32)
_INT64 = 2**63 - 1
_INT32 = 2**31 - 1
# PostgreSQL NUMERIC: up to 131072 digits before the decimal point and 16383 after.
_NUMERIC_MAX_ADJUSTED = 131_071
_NUMERIC_MIN_EXPONENT = -16_383


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool
    expression: ColumnElement[Any]
    nullable: bool = True
    kind: ValueKind = "text"


def order_by(keys: list[SortKey]) -> list[ColumnElement[Any]]:
    clauses: list[ColumnElement[Any]] = []
    for key in keys:
        clause = key.expression.desc() if key.descending else key.expression.asc()
        # Empty values last either way, written NULLS LAST (not a leading "IS NULL" key):
        # an ascending index (field, id) then serves ascending pages as they are, and a
        # typed projection's (field DESC NULLS LAST, id) descending ones.
        clauses.append(clause.nulls_last() if key.nullable else clause)
    return clauses


def _bindable(key: SortKey, value: Any) -> Any:
    """``value`` as the key's expression can bind it: a decimal only binds as NUMERIC
    (PostgreSQL); SQLite's JSON values compare as integers and floats."""
    if isinstance(value, Decimal) and not isinstance(key.expression.type, Numeric):
        if value == value.to_integral_value() and abs(value) <= _INT64:
            return int(value)
        return float(value)
    return value


def after(keys: list[SortKey], values: list[Any]) -> ColumnElement[bool]:
    """Rows that come strictly after the row whose key values are ``values``."""
    alternatives: list[ColumnElement[bool]] = []
    equal_so_far: list[ColumnElement[bool]] = []
    for key, value in zip(keys, values, strict=True):
        expr = key.expression
        if value is None:
            beyond: ColumnElement[bool] = false()
            same: ColumnElement[bool] = expr.is_(None)
        else:
            bound = literal(_bindable(key, value), expr.type)
            step = expr < bound if key.descending else expr > bound
            beyond = or_(step, expr.is_(None)) if key.nullable else step
            same = expr == bound
        alternatives.append(and_(*equal_so_far, beyond) if equal_so_far else beyond)
        equal_so_far.append(same)
    return or_(*alternatives)


# -- the wire format -------------------------------------------------------------------


def _key_bytes(secret: str | bytes | None) -> bytes:
    if secret is None:
        return _PROCESS_SECRET
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def _mac(secret: str | bytes | None, scope: str, payload: str) -> str:
    # The scope is length-prefixed so that no (scope, payload) pair can pose as another.
    message = f"{len(scope)}:{scope}:{payload}".encode()
    digest = hmac.new(_key_bytes(secret), message, hashlib.sha256).digest()[:MAC_BYTES]
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"dt": value.isoformat()}
    if isinstance(value, Decimal):
        return {"dec": str(value)}
    return value


def encode(
    sort: str, values: list[Any], *, secret: str | bytes | None = None, scope: str = ""
) -> str:
    """A signed cursor for the row whose key values are ``values`` in a list sorted by
    ``sort``; ``scope`` names the list (a cursor of one list is refused by another)."""
    raw = json.dumps([sort, [_encode_value(v) for v in values]], separators=(",", ":"))
    return sign(raw, secret=secret, scope=scope)


def sign(document: str, *, secret: str | bytes | None = None, scope: str = "") -> str:
    """The cursor carrying the JSON text ``document`` (tests sign hand-made ones with it)."""
    payload = base64.urlsafe_b64encode(document.encode("utf-8", "surrogatepass"))
    text = payload.decode().rstrip("=")
    return f"{text}.{_mac(secret, scope, text)}"


class _Invalid(Exception):
    """Why a cursor is refused (said in the 400's errors)."""


def decode(
    cursor: str,
    sort: str,
    keys: int | Sequence[SortKey],
    *,
    secret: str | bytes | None = None,
    scope: str = "",
) -> list[Any]:
    """The key values of a cursor made for this list and sort; a 400 for anything else.

    ``keys`` are the sort keys the values are checked against; a number ``n`` stands for
    ``n`` non-null text keys (an id-only keyset)."""
    if isinstance(keys, int):
        keys = [SortKey(f"k{i}", False, literal(""), nullable=False) for i in range(keys)]
    try:
        payload, _, mac = cursor.partition(".")
        expected = _mac(secret, scope, payload).encode()
        # surrogatepass: a cursor from a JSON body may hold anything, even lone surrogates.
        if not hmac.compare_digest(expected, mac.encode("utf-8", "surrogatepass")):
            raise _Invalid(
                "not a cursor returned by this list (changed, or signed with another cursor secret)"
            )
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        document = json.loads(raw)
        if not (isinstance(document, list) and len(document) == 2):
            raise _Invalid("not a cursor returned by this list")
        given_sort, values = document
        if given_sort != sort:
            raise _Invalid("made for another sort order")
        if not isinstance(values, list) or len(values) != len(keys):
            raise _Invalid("does not match the sort keys")
        return [_decode_value(key, value) for key, value in zip(keys, values, strict=True)]
    except _Invalid as exc:
        _refuse(str(exc))
    except (ValueError, TypeError, binascii.Error, RecursionError, UnicodeError):
        # Only reachable with a valid MAC over a malformed payload: a format change.
        _refuse("not a cursor returned by this list")


def _refuse(message: str) -> NoReturn:
    raise BadRequest(
        "The cursor is not valid for this list; start again without `cursor`, keeping the "
        "same `sort`.",
        errors=[{"in": "query", "parameter": "cursor", "code": "invalid_cursor",
                 "message": message}],
    ) from None  # fmt: skip


def _decode_value(key: SortKey, value: Any) -> Any:
    """``value`` as the key's kind, or :class:`_Invalid`."""
    if value is None:
        if not key.nullable:
            raise _Invalid(f"'{key.name}' cannot be null")
        return None
    problem = f"'{key.name}' holds a value that is not {_EXPECTED[key.kind]}"
    if key.kind == "text":
        if not isinstance(value, str) or "\x00" in value:
            raise _Invalid(problem)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _Invalid(problem) from None
        return value
    if key.kind == "boolean":
        # SQLite's json_extract gives a JSON boolean as 1 or 0.
        if isinstance(value, bool) or (type(value) is int and value in (0, 1)):
            return bool(value)
        raise _Invalid(problem)
    if key.kind == "integer":
        if type(value) is int and abs(value) <= _INT32:
            return value
        raise _Invalid(problem)
    if key.kind == "number":
        return _number(value, problem)
    return _timestamp(value, problem)


_EXPECTED: dict[ValueKind, str] = {
    "text": "text",
    "number": "a number",
    "integer": "a whole number",
    "boolean": "true or false",
    "timestamp": "a date and time with a time zone",
}


def _number(value: Any, problem: str) -> int | float | Decimal:
    if type(value) is int:
        if abs(value) > _INT64:
            raise _Invalid(problem)
        return value
    if type(value) is float:
        if not math.isfinite(value):
            raise _Invalid(problem)
        return value
    if type(value) is dict and len(value) == 1 and type(value.get("dec")) is str:
        try:
            number = Decimal(value["dec"])
        except InvalidOperation:
            raise _Invalid(problem) from None
        if not number.is_finite():
            raise _Invalid(problem)
        exponent = number.as_tuple().exponent
        if number and (
            number.adjusted() > _NUMERIC_MAX_ADJUSTED
            or (isinstance(exponent, int) and exponent < _NUMERIC_MIN_EXPONENT)
        ):
            raise _Invalid(problem)
        return number
    raise _Invalid(problem)


def _timestamp(value: Any, problem: str) -> datetime:
    if not (type(value) is dict and len(value) == 1 and type(value.get("dt")) is str):
        raise _Invalid(problem)
    try:
        moment = datetime.fromisoformat(value["dt"])
        if moment.tzinfo is None:
            raise _Invalid(problem)
        return moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise _Invalid(problem) from None
