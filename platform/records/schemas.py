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
    """The list parameters as a JSON body, for filters too long for a URL."""

    model_config = ConfigDict(extra="forbid")

    filter: Any = Field(default=None, description="A JsonLogic expression.")
    sort: str = Field(default="id", description="Comma-separated keys; `-` for descending.")
    limit: int | None = None
    cursor: str | None = None
    fields: list[str] | None = None
    count: bool = False


class HistoryEntry(BaseModel):
    version: int
    operation: str
    at: str
    actor: str
    form_version: int
    changed: list[str]
    data: dict[str, Any]
