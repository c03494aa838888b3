"""Builders of app definitions for tests: start from a small valid app and change one thing."""

from __future__ import annotations

import copy
from typing import Any


def field(key: str, type: str = "text", **attrs: Any) -> dict[str, Any]:
    return {"key": key, "type": type, "label": key.replace("_", " ").capitalize(), **attrs}


def form(key: str, *fields: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    return {"key": key, "label": key.capitalize(), "fields": list(fields), **attrs}


def app(key: str = "demo", *forms: dict[str, Any], **attrs: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "format": "formloom.app/v1",
        "key": key,
        "version": "1.0.0",
        "label": key.capitalize(),
        "forms": list(forms) or [contact_form()],
    }
    document.update(attrs)
    return copy.deepcopy(document)


def contact_form() -> dict[str, Any]:
    return form(
        "contact",
        field("name", required=True, max_length=50, indexed=True),
        field("phone", "phone", unique=True),
        field("age", "integer", min=0, max=150),
        field("score", "number"),
        field("vip", "boolean"),
        field("since", "date"),
        field("tags", "multiselect", options=[{"value": "a"}, {"value": "b"}, {"value": "c"}]),
        field("kind", "select", options=[{"value": "person"}, {"value": "company"}]),
        field("company", "text", visible_if={"==": [{"var": "kind"}, "company"]}, required=True),
        field(
            "age_next_year",
            "computed",
            result_type="integer",
            formula={"if": [{"var": "age"}, {"+": [{"var": "age"}, 1]}, None]},
        ),
    )


def crm_app() -> dict[str, Any]:
    """Two related forms, for relation tests."""
    return app(
        "crm",
        contact_form(),
        form(
            "deal",
            field("title", required=True),
            field("contact", "relation", target="contact", required=True),
            field("amount", "number", min=0, indexed=True),
            field(
                "referrals",
                "table",
                fields=[
                    field("who", "relation", target="contact", required=True),
                    field("note"),
                ],
            ),
        ),
    )
