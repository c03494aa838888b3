"""Request and response bodies of the record API."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RecordWrite(BaseModel):
    """A create (all values) or a partial update (only the values to change; null clears)."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = Field(description="Field values keyed by field key.")


class RecordOut(BaseModel):
    id: str
    app: str
    form: str
    version: int
    form_version: int
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str
    data: dict[str, Any]


class RecordPage(BaseModel):
    items: list[RecordOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    count: int | None = Field(default=None, description="All matching records, if asked.")


class QueryBody(BaseModel):
    """The list parameters as a JSON body, for filters too long for a URL.

    Strict: a JSON body says what it means, so ``"limit": "5"`` or ``"count": 0`` is a 422
    rather than quietly read as 5 or false (a query string is text and is parsed)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    filter: Any = Field(default=None, description="A JsonLogic expression.")
    sort: str = Field(default="id", description="Comma-separated keys; `-` for descending.")
    limit: int | None = Field(default=None, description="Page size (1 to the largest allowed).")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")
    fields: list[str] | None = Field(default=None, description="Field keys to return.")
    count: bool = Field(default=False, description="Also count all matches (true/false).")


class HistoryEntry(BaseModel):
    version: int
    operation: str
    at: str
    actor: str
    form_version: int
    changed: list[str]
    data: dict[str, Any]
