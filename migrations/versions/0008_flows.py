"""The flow engine's tables: instances, their timeline, task candidates; flow columns on tasks.

Existing tasks (from rules) get their candidates from ``role`` / ``assignee``, so every
inbox query reads one table of candidates; downgrading drops the flow tables and columns.
A trigger on ``tasks`` keeps each candidate's ``task_open`` equal to its task being open, so
an inbox finds its user's open tasks in the index without the closed ones (on SQLite a later
batch migration that rebuilds ``tasks`` drops it: the answers stay the same, only slower).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from formloom.platform.models.base import JsonDocument, UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PG_FUNCTION = """
CREATE FUNCTION task_candidates_follow_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE task_candidates SET task_open = (NEW.status = 'open') WHERE task_id = NEW.id;
    RETURN NULL;
END
$$
"""
_PG_TRIGGER = """
CREATE TRIGGER task_candidates_follow_status AFTER UPDATE OF status ON tasks
FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
EXECUTE FUNCTION task_candidates_follow_status()
"""
_SQLITE_TRIGGER = """
CREATE TRIGGER task_candidates_follow_status AFTER UPDATE OF status ON tasks
FOR EACH ROW WHEN OLD.status IS NOT NEW.status
BEGIN
    UPDATE task_candidates SET task_open = (NEW.status = 'open') WHERE task_id = NEW.id;
END
"""


def upgrade() -> None:
    op.create_table(
        "flow_instances",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("flow", sa.String(63), nullable=False),
        sa.Column("app_version", sa.Integer(), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("record_id", sa.String(32), nullable=False),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("parent_key", sa.String(80), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", JsonDocument, nullable=False),
        sa.Column("lock_version", sa.Integer(), nullable=False),
        sa.Column("started_by", sa.String(150), nullable=True),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("ended_at", UtcDateTime(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_flow_instances"),
    )
    op.create_index("ix_flow_instances_record", "flow_instances", ["record_id", "status"])
    op.create_index(
        "ix_flow_instances_app_flow_status", "flow_instances", ["app", "flow", "status"]
    )
    op.create_index("ix_flow_instances_parent", "flow_instances", ["parent_id"])

    op.create_table(
        "flow_events",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("instance_id", sa.String(32), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("node", sa.String(63), nullable=True),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("data", JsonDocument, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_flow_events"),
    )
    op.create_index("ix_flow_events_instance", "flow_events", ["instance_id", "id"])

    op.create_table(
        "task_candidates",
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("value", sa.String(150), nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("task_open", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.PrimaryKeyConstraint("task_id", "kind", "value", name="pk_task_candidates"),
    )
    op.create_index(
        "ix_task_candidates_who", "task_candidates", ["kind", "value", "task_open", "app"]
    )

    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("instance_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("node", sa.String(63), nullable=True))
        batch.add_column(sa.Column("due_at", UtcDateTime(), nullable=True))
        batch.add_column(
            sa.Column("claim_required", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("claimed_at", UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("outcome", sa.String(63), nullable=True))
        batch.add_column(sa.Column("comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("step", JsonDocument, nullable=True))
    op.create_index("ix_tasks_instance_id", "tasks", ["instance_id"])
    op.create_index("ix_tasks_assignee_status", "tasks", ["assignee", "status"])
    op.execute(
        "INSERT INTO task_candidates (task_id, kind, value, app, task_open) "
        "SELECT id, 'role', role, app, status = 'open' FROM tasks WHERE role IS NOT NULL"
    )
    op.execute(
        "INSERT INTO task_candidates (task_id, kind, value, app, task_open) "
        "SELECT id, 'user', assignee, app, status = 'open' FROM tasks WHERE assignee IS NOT NULL"
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    else:
        op.execute(_SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS task_candidates_follow_status ON tasks")
        op.execute("DROP FUNCTION IF EXISTS task_candidates_follow_status()")
    else:
        op.execute("DROP TRIGGER IF EXISTS task_candidates_follow_status")
    op.drop_index("ix_tasks_assignee_status", table_name="tasks")
    op.drop_index("ix_tasks_instance_id", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        for column in (
            "step", "comment", "outcome", "claimed_at", "claim_required", "due_at", "node",
            "instance_id",
        ):  # fmt: skip
            batch.drop_column(column)
    op.drop_index("ix_task_candidates_who", table_name="task_candidates")
    op.drop_table("task_candidates")
    op.drop_index("ix_flow_events_instance", table_name="flow_events")
    op.drop_table("flow_events")
    op.drop_index("ix_flow_instances_parent", table_name="flow_instances")
    op.drop_index("ix_flow_instances_app_flow_status", table_name="flow_instances")
    op.drop_index("ix_flow_instances_record", table_name="flow_instances")
    op.drop_table("flow_instances")
