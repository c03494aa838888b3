"""Rule tasks that close themselves: ``tasks.close_form`` names the form whose records the
task waits for (its filter is in ``step``), indexed so a write of that form finds the tasks
it may close without reading the others.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("close_form", sa.String(63), nullable=True))
    op.create_index("ix_tasks_closing", "tasks", ["app", "close_form", "status"])


def downgrade() -> None:
    op.drop_index("ix_tasks_closing", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("close_form")
