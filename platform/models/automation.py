"""What the rule engine leaves behind: the rule log, the outbox, durable timers, tasks and
the in-app inbox (docs/rules.md, "Carrying plans out")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class RuleRunLog(Base):
    """The rules one event ran: per rule, matched or not (and why), the actions it planned,
    its error, how long it took (``runs``, a JSON list). One row per event keeps the log's
    cost to one insert per write however many rules look at it; ``rules`` and ``matched``
    (",a,b," lists of rule keys) let the API select rows by rule. Rules a write's changed
    fields did not concern (their ``fields`` filter) did not run, so are not listed."""

    __tablename__ = "rule_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    record_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    event: Mapped[str] = mapped_column(String(16))
    rules: Mapped[str] = mapped_column(Text)
    matched: Mapped[str] = mapped_column(Text)
    failed: Mapped[bool] = mapped_column(Boolean)
    runs: Mapped[list[Any]] = mapped_column(JsonDocument)
    duration_ms: Mapped[float] = mapped_column(Float)
    depth: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_rule_runs_app_id", "app", "id"),
        Index("ix_rule_runs_record_id", "record_id"),
    )


class OutboxMessage(Base):
    """An outbound action (notify, webhook) committed with the write that planned it and
    delivered by a worker: ``pending`` -> ``done``, or after the last attempt ``dead``
    (visible in the API, retried by hand). ``lease_until`` is set while a worker delivers
    it; an expired lease (a worker that died) makes it deliverable again."""

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    rule: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))  # notify | webhook
    channel: Mapped[str | None] = mapped_column(String(32), nullable=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16))  # pending | done | dead
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)


class Timer(Base):
    """Something due later: a delayed action (``action``), a date-relative rule for one
    record (``date``, moved when the record's date field changes) or a schedule rule's next
    run (``schedule``). ``key`` makes each unique, so re-arming replaces. Fired in one
    transaction with what it does, so each fires exactly once."""

    __tablename__ = "timers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # action | date | schedule
    app: Mapped[str] = mapped_column(String(63))
    rule: Mapped[str] = mapped_column(String(63))
    form: Mapped[str | None] = mapped_column(String(63), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    status: Mapped[str] = mapped_column(String(16))  # pending | fired | dead
    attempts: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        Index("ix_timers_status_due", "status", "due_at"),
        Index("ix_timers_record_id", "record_id"),
    )


class Task(Base):
    """A to-do for people: from a rule's ``create_task`` (``rule``) or a flow's user task
    (``instance_id``, ``node``). One lifecycle for both: ``open`` (``assignee`` set once
    claimed) -> ``done`` (``outcome``, ``comment``, ``completed_by``) or ``cancelled``.
    Who may act is in ``task_candidates``; ``role``/``assignee`` are kept for the rules'
    tasks and as the first candidate for display."""

    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    role: Mapped[str | None] = mapped_column(String(63), nullable=True)
    assignee: Mapped[str | None] = mapped_column(String(150), nullable=True)
    form: Mapped[str | None] = mapped_column(String(63), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    rule: Mapped[str | None] = mapped_column(String(63), nullable=True)
    source_key: Mapped[str | None] = mapped_column(String(300), nullable=True, unique=True)
    due: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(16))  # open | done | cancelled
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    completed_by: Mapped[str | None] = mapped_column(String(150), nullable=True)
    # flow tasks (and the lifecycle both kinds share)
    instance_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    node: Mapped[str | None] = mapped_column(String(63), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    claim_required: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(63), nullable=True)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    step: Mapped[dict[str, Any] | None] = mapped_column(JsonDocument, nullable=True)
    #: A rule task that closes itself when a record of this form matching ``step``'s
    #: ``done_when`` filter is written.
    close_form: Mapped[str | None] = mapped_column(String(63), nullable=True)

    __table_args__ = (
        Index("ix_tasks_app_status", "app", "status"),
        Index("ix_tasks_record_id", "record_id"),
        Index("ix_tasks_instance_id", "instance_id"),
        Index("ix_tasks_assignee_status", "assignee", "status"),
        Index("ix_tasks_closing", "app", "close_form", "status"),
    )


class Notification(Base):
    """A message in a user's in-app inbox (the ``in_app`` notify channel)."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    app: Mapped[str] = mapped_column(String(63))
    rule: Mapped[str | None] = mapped_column(String(63), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(500), nullable=True)
    body: Mapped[str] = mapped_column(Text)
    form: Mapped[str | None] = mapped_column(String(63), nullable=True)
    record_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    source_key: Mapped[str] = mapped_column(String(340), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (Index("ix_notifications_user_created", "user_id", "created_at"),)
