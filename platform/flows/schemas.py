"""What the flow and task endpoints take and give (pydantic, so OpenAPI says it)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartBody(_Body):
    record_id: str = Field(description="Id of the record the flow runs on (of the flow's form).")
    vars: dict[str, Any] = Field(
        default_factory=dict, description="Starting variables, added to the flow's own."
    )


class CompleteBody(_Body):
    outcome: str | None = Field(
        default=None, description="One of the task's outcomes (needed when it offers several)."
    )
    comment: str | None = Field(default=None, max_length=4000, description="A comment.")
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="Record fields the step may edit -> new values (validated like a write).",
    )


class ReturnBody(_Body):
    to: str = Field(description="Key of the earlier user task to send the work back to.")
    comment: str | None = Field(default=None, max_length=4000, description="Why.")


class DelegateBody(_Body):
    user: str = Field(description="User name of the person who takes the task over.")


class MessageBody(_Body):
    name: str = Field(description="The message's name (what a wait node listens for).")
    data: Any = Field(default=None, description="Data the message carries.")


class CancelBody(_Body):
    reason: str | None = Field(default=None, max_length=500, description="Why.")


class SimulateBody(_Body):
    flow: dict[str, Any] | None = Field(
        default=None,
        description="A draft of the flow to simulate instead of the saved one (the flow "
        "designer's; for the app's designers). Checked as a save would check it: 422 with "
        "pointers into the flow.",
    )
    record: dict[str, Any] | None = Field(
        default=None, description="A sample record's data (or give `record_id`)."
    )
    record_id: str | None = Field(default=None, description="Simulate on a stored record.")
    choices: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="Node key -> the choices its people make in turn: an outcome, or "
        '{"outcome", "after" (ISO 8601 duration), "actor", "comment", "return_to"}.',
    )
    messages: list[dict[str, Any]] = Field(
        default_factory=list, description='Messages: {"name", "after", "data"}.'
    )
    changes: list[dict[str, Any]] = Field(
        default_factory=list, description='Record changes: {"after", "values"}.'
    )
    default_outcome: bool = Field(
        default=False, description="Tasks without a choice take their first outcome at once."
    )
    vars: dict[str, Any] = Field(default_factory=dict, description="Starting variables.")
    horizon_days: int = Field(default=366, ge=1, le=3660, description="How far to look ahead.")


class TaskOut(BaseModel):
    id: str
    app: str
    title: str
    description: str | None
    status: Literal["open", "done", "cancelled"]
    kind: Literal["flow", "rule"]
    form: str | None
    record_id: str | None
    flow: str | None = Field(description="The flow's key (flow tasks).")
    instance_id: str | None
    node: str | None
    role: str | None = Field(description="The first role the task is for (rules' tasks: the role).")
    assignee: str | None
    candidates: dict[str, list[str]] = Field(description='{"roles": [...], "users": [...]}.')
    claim_required: bool
    due: str | None = Field(description="Due time (UTC, RFC 3339) or date.")
    overdue: bool
    outcomes: list[dict[str, Any]]
    edit: list[str]
    required: list[str]
    returnable: bool
    outcome: str | None
    comment: str | None
    created_at: str
    claimed_at: str | None
    completed_at: str | None
    completed_by: str | None


class TaskDetail(TaskOut):
    record: dict[str, Any] | None = Field(
        description="The record as the step shows it (its hidden fields left out)."
    )


class TaskCounts(BaseModel):
    assigned: int = Field(description="Open tasks assigned to me.")
    claimable: int = Field(description="Open tasks my roles or I may claim, unassigned.")
    overdue: int = Field(description="Of those, past their due time.")


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_cursor: str | None
    counts: TaskCounts


class InstanceOut(BaseModel):
    id: str
    app: str
    flow: str
    app_version: int
    form: str
    record_id: str
    parent_id: str | None
    status: Literal["running", "completed", "terminated", "cancelled"]
    started_by: str | None
    started_at: str
    ended_at: str | None
    waiting_at: list[str] = Field(description="Nodes with live tokens.")


class TimelineEntry(BaseModel):
    at: str
    kind: str
    actor: str | None
    node: str | None
    task_id: str | None
    data: dict[str, Any]


class InstanceDetail(InstanceOut):
    vars: dict[str, Any]
    steps: dict[str, Any]
    open_tasks: list[TaskOut]
    timeline: list[TimelineEntry]


class InstancePage(BaseModel):
    items: list[InstanceOut]
    next_cursor: str | None


class SimulationOut(BaseModel):
    status: str = Field(description="The instance's status when the simulation stopped.")
    stopped: Literal["ended", "idle", "horizon", "max_events"]
    timeline: list[dict[str, Any]]
    open_tasks: list[dict[str, Any]]
    record: dict[str, Any]
