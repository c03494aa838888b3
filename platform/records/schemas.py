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
    sort: str | None = Field(
        default=None,
        description="Comma-separated keys; `-` for descending. Absent: the form's own order "
        "(its definition's `sort`), else `id`.",
    )
    limit: int | None = Field(default=None, description="Page size (1 to the largest allowed).")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page.")
    fields: list[str] | None = Field(default=None, description="Field keys to return.")
    count: bool = Field(default=False, description="Also count all matches (true/false).")
    q: str | None = Field(default=None, description="A quick-search term, as for the list.")


class SearchHit(BaseModel):
    id: str
    title: str
    href: str = Field(description="The record's page.")


class SearchGroup(BaseModel):
    form: str
    label: str
    items: list[SearchHit] = Field(description="Best matches first.")
    more: bool = Field(description="More records of this form match.")
    list_href: str = Field(description="The form's list, searched for the same term.")


class AppSearchOut(BaseModel):
    q: str
    groups: list[SearchGroup] = Field(description="Forms with matches, in the app's order.")


class HistoryEntry(BaseModel):
    version: int
    operation: str
    at: str
    actor: str
    form_version: int
    changed: list[str]
    data: dict[str, Any]


class RelatedItem(BaseModel):
    record: RecordOut = Field(description="The record without the caller's hidden fields.")
    title: str
    at: str = Field(description="When it happened: its main date/datetime, else created_at.")
    summary: str = Field(description="A few of its visible values, for people to read.")


class RelationStep(BaseModel):
    form: str
    field: str = Field(description="The relation field pointing one step nearer the record.")
    label: str


class RelatedGroup(BaseModel):
    form: str
    form_label: str
    path: list[RelationStep] = Field(description="From the record outwards: 1 or 2 hops.")
    count: int = Field(description="Every readable record on this path.")
    items: list[RelatedItem] = Field(description="Newest first, at most `limit`.")
    list_filter: Any = Field(description="JsonLogic for the form's list giving the group.")
    list_href: str | None = Field(description="The record list filtered to the group.")


class RelatedTask(BaseModel):
    id: str
    title: str
    status: str
    kind: str
    assignee: str | None
    due_at: str | None
    created_at: str
    completed_at: str | None


class RelatedFlow(BaseModel):
    id: str
    flow: str
    label: str
    status: str
    started_at: str
    ended_at: str | None


class RelatedMessage(BaseModel):
    id: str
    rule: str
    rule_label: str
    channel: str | None
    status: str
    created_at: str
    delivered_at: str | None


class TimelineItem(BaseModel):
    kind: str = Field(description="record | task | flow | message")
    form: str | None
    form_label: str | None
    id: str
    title: str
    at: str
    summary: str
    href: str | None = Field(description="The record's page, for records.")


class RelatedOut(BaseModel):
    """A record with its related records, tasks, flows, messages and their timeline."""

    record: RecordOut
    title: str
    form_label: str
    at: str
    zone: str = Field(description="The clinic's time zone to show times in.")
    groups: list[RelatedGroup]
    tasks: list[RelatedTask]
    flows: list[RelatedFlow]
    messages: list[RelatedMessage]
    timeline: list[TimelineItem] = Field(description="Everything above, newest first.")
    left_out: int = Field(description="Relation paths left out: forms the caller may not read.")
