"""Builders for form-engine tests: a form is a list of field dicts with a few defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from formloom.engines.forms import FieldError, FormSpec, RecordInvalid, prepare

#: The fixed instant every test runs at (a Wednesday, 09:30 UTC).
NOW = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)


def field(key: str, type: str = "text", **attrs: Any) -> dict[str, Any]:
    """One field definition."""
    return {"key": key, "type": type, **attrs}


def options(*values: str) -> list[dict[str, Any]]:
    return [{"value": value} for value in values]


def form_dict(*fields: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    return {"key": "test", "label": "Test", "fields": list(fields), **attrs}


def make_form(*fields: dict[str, Any], **attrs: Any) -> FormSpec:
    """A validated form with the given fields."""
    return FormSpec.model_validate(form_dict(*fields, **attrs))


def errors_of(form: FormSpec, incoming: dict[str, Any], **kwargs: Any) -> list[FieldError]:
    """The errors ``prepare`` raises (fails the test if it accepts the data)."""
    kwargs.setdefault("now", NOW)
    try:
        prepare(form, incoming, **kwargs)
    except RecordInvalid as exc:
        return exc.errors
    raise AssertionError(f"expected RecordInvalid for {incoming!r}")


def codes(form: FormSpec, incoming: dict[str, Any], **kwargs: Any) -> list[tuple[str, str]]:
    """``(path, code)`` of each error ``prepare`` raises."""
    return [(error.path, error.code) for error in errors_of(form, incoming, **kwargs)]


def ok(form: FormSpec, incoming: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("now", NOW)
    return prepare(form, incoming, **kwargs)
