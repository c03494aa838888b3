"""What the flow engine leaves behind: instances with their state, and their history.

An instance's ``state`` is the engine's :class:`~formloom.engines.flows.InstanceState` in its
stored format (live tokens only, so it stays small however long the instance lives); every
advance rewrites it in the transaction that carries the advance out, with ``lock_version``
bumped, so an instance is always before or after a step. ``flow_events`` is the timeline:
one row per effect of each advance (who did what, when), read by the instance's API and
prunable without touching the state. Tasks live in ``tasks`` (shared with the rules' tasks);
who may act on one is in ``task_candidates`` (one row per role or user), so an inbox query is
an indexed join however many tasks there are.

A candidate row outlives its task's being open (candidates still see the tasks they were
offered), so it carries ``task_open``, kept equal to ``tasks.status = 'open'`` by a trigger
on ``tasks`` (migration 0008): an inbox reads the open candidates of its user from the index
and costs what the user's open tasks cost, not the history of every task their roles ever
had. The flag only ever narrows a search for open tasks (the status is tested on ``tasks``
as well), so a copy of a database without the trigger gives the same answers, slower.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Integer, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class FlowInstance(Base):
    """One run of a flow on one record, pinned to the app version it started on."""

    __tablename__ = "flow_instances"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    flow: Mapped[str] = mapped_column(String(63))
    app_version: Mapped[int] = mapped_column(Integer)
    form: Mapped[str] = mapped_column(String(63))
    record_id: Mapped[str] = mapped_column(String(32))
    parent_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: The parent's name for this subflow (its engine key), to report back when it ends.
    parent_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # running | completed | terminated | cancelled
    state: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    lock_version: Mapped[int] = mapped_column(Integer)
    started_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (
        Index("ix_flow_instances_record", "record_id", "status"),
        Index("ix_flow_instances_app_flow_status", "app", "flow", "status"),
        Index("ix_flow_instances_parent", "parent_id"),
    )


class FlowEvent(Base):
    """One entry of an instance's timeline (an effect of an advance, or what caused it)."""

    __tablename__ = "flow_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    instance_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str | None] = mapped_column(String(150), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    node: Mapped[str | None] = mapped_column(String(63), nullable=True)
    task_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument)

    __table_args__ = (Index("ix_flow_events_instance", "instance_id", "id"),)


class TaskCandidate(Base):
    """Someone who may act on an open task: a role of the task's app, or a user."""

    __tablename__ = "task_candidates"

    task_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # role | user
    value: Mapped[str] = mapped_column(String(150), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    #: Whether the task is open (set by a trigger when its status changes; see above).
    task_open: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    __table_args__ = (Index("ix_task_candidates_who", "kind", "value", "task_open", "app"),)
