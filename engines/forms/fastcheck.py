"""A fast yes/no check of data against the compiled schema, with jsonschema as the authority.

``jsonschema`` walks a schema keyword by keyword through generic machinery; on a 30-field
form that costs about 250 µs per record, most of it overhead, while the checks themselves are
a few ``isinstance`` calls. :func:`compile_check` turns the subset of JSON Schema that
:func:`~formloom.engines.forms.schema.compile_schema` produces into nested Python closures
that answer only "valid or not".

The contract is one-sided, so that it can never let an error through: when the fast check
says *valid*, jsonschema would say so too; when it says *invalid* (or is unsure), the caller
runs the ``jsonschema`` validator, whose errors are what gets reported. A keyword the
compiler does not know makes :func:`compile_check` raise ``UnsupportedSchema`` (so a schema
change that the fast path cannot follow fails loudly at compile time); the caller then uses
``jsonschema`` alone. Tests compare both on every value of the field-type suite.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]

#: Keywords that never affect validity (annotations) and are skipped.
ANNOTATIONS = frozenset(
    {
        "$schema",
        "title",
        "description",
        "default",
        "readOnly",
        "format",
        "formatMinimum",
        "formatMaximum",
        "x-target",
        "contentMediaType",
    }
)


class UnsupportedSchema(Exception):
    """The schema uses a keyword the fast check cannot evaluate."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Check] = {
    "string": lambda value: isinstance(value, str),
    "number": _is_number,
    "integer": _is_integer,
    "boolean": lambda value: isinstance(value, bool),
    "array": lambda value: isinstance(value, list),
    "object": lambda value: isinstance(value, dict),
}


def _all_unique_strings(value: list[Any]) -> bool:
    # Unsure about anything but strings (jsonschema's equality has its own rules for
    # numbers and booleans): answer "invalid" and let jsonschema decide.
    return all(isinstance(item, str) for item in value) and len(set(value)) == len(value)


_KNOWN = ANNOTATIONS | {
    "type",
    "enum",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "pattern",
    "items",
    "uniqueItems",
    "minItems",
    "maxItems",
    "properties",
    "additionalProperties",
    "required",
}
_STRING_KEYWORDS = ANNOTATIONS | {"type", "enum", "minLength", "maxLength", "pattern"}
_NUMBER_KEYWORDS = ANNOTATIONS | {"type", "minimum", "maximum"}
_ARRAY_KEYWORDS = ANNOTATIONS | {"type", "items", "uniqueItems", "minItems", "maxItems"}
_OBJECT_KEYWORDS = ANNOTATIONS | {"type", "properties", "additionalProperties", "required"}


def compile_check(schema: dict[str, Any]) -> Check:
    """A function telling whether a value is valid against ``schema`` (see module doc)."""
    unknown = set(schema) - _KNOWN
    if unknown:
        raise UnsupportedSchema(", ".join(sorted(unknown)))
    kind = schema.get("type")
    keywords = set(schema)
    # One specialised closure per value kind: a record check is ~30 calls, not ~100.
    if kind == "string" and keywords <= _STRING_KEYWORDS:
        return _string_check(schema)
    if kind in ("number", "integer") and keywords <= _NUMBER_KEYWORDS:
        return _number_check(schema, integer=kind == "integer")
    if kind == "boolean" and keywords <= ANNOTATIONS | {"type"}:
        return _TYPES["boolean"]
    if kind == "array" and keywords <= _ARRAY_KEYWORDS:
        return _array_check(schema)
    if kind == "object" and keywords <= _OBJECT_KEYWORDS:
        return _object_check(schema)
    return _generic_check(schema)


def _string_check(schema: dict[str, Any]) -> Check:
    shortest: int = schema.get("minLength", 0)
    longest: float = schema.get("maxLength", math.inf)
    pattern = schema.get("pattern")
    search = re.compile(pattern).search if pattern is not None else None  # as jsonschema
    options = schema.get("enum")
    if options is not None and not all(isinstance(option, str) for option in options):
        raise UnsupportedSchema("enum of non-strings")
    allowed = frozenset(options) if options is not None else None

    def check(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if not shortest <= len(value) <= longest:
            return False
        if search is not None and search(value) is None:
            return False
        return allowed is None or value in allowed

    return check


def _number_check(schema: dict[str, Any], *, integer: bool) -> Check:
    low: float = schema.get("minimum", -math.inf)
    high: float = schema.get("maximum", math.inf)
    is_kind = _is_integer if integer else _is_number

    def check(value: Any) -> bool:
        return is_kind(value) and low <= value <= high

    return check


def _array_check(schema: dict[str, Any]) -> Check:
    item_check = compile_check(schema["items"]) if "items" in schema else None
    unique = bool(schema.get("uniqueItems"))
    fewest: int = schema.get("minItems", 0)
    most: float = schema.get("maxItems", math.inf)

    def check(value: Any) -> bool:
        if not isinstance(value, list) or not fewest <= len(value) <= most:
            return False
        if item_check is not None:
            for item in value:
                if not item_check(item):
                    return False
        return not unique or _all_unique_strings(value)

    return check


def _generic_check(schema: dict[str, Any]) -> Check:
    """Any combination of the known keywords, each checked on its own."""
    checks: list[Check] = []
    kind = schema.get("type")
    if kind is not None:
        if not isinstance(kind, str) or kind not in _TYPES:
            raise UnsupportedSchema(f"type {kind!r}")
        checks.append(_TYPES[kind])
    string_keywords = ("enum", "minLength", "maxLength", "pattern")
    if any(key in schema for key in string_keywords):
        string_check = _string_check({k: v for k, v in schema.items() if k in string_keywords})
        checks.append(lambda value: not isinstance(value, str) or string_check(value))
    if "minimum" in schema or "maximum" in schema:
        number_check = _number_check(schema, integer=False)
        checks.append(lambda value: not _is_number(value) or number_check(value))
    if any(key in schema for key in ("items", "uniqueItems", "minItems", "maxItems")):
        array_check = _array_check(schema)
        checks.append(lambda value: not isinstance(value, list) or array_check(value))
    if any(key in schema for key in ("properties", "additionalProperties", "required")):
        object_check = _object_check(schema)
        checks.append(lambda value: not isinstance(value, dict) or object_check(value))
    bundle = tuple(checks)

    def check(value: Any) -> bool:
        return all(one(value) for one in bundle)

    return check


def _object_check(schema: dict[str, Any]) -> Check:
    properties: dict[str, Check] = {
        key: compile_check(sub) for key, sub in schema.get("properties", {}).items()
    }
    extra = schema.get("additionalProperties", True)
    if extra is not True and extra is not False:
        raise UnsupportedSchema("additionalProperties other than true/false")
    closed = extra is False
    required = tuple(schema.get("required", ()))

    def check(value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        for key in required:
            if key not in value:
                return False
        for key, item in value.items():
            item_check = properties.get(key)
            if item_check is None:
                if closed:
                    return False
            elif not item_check(item):
                return False
        return True

    return check
