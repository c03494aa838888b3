"""Auto-number counters: ``record_counters`` holds the last number given per (app, form,
field, period). A create takes the next number with one upsert (``INSERT ... ON CONFLICT DO
UPDATE ... RETURNING``) in its own transaction, so the row stays locked until that
transaction ends: two creates never get the same number, and a create that rolls back gives
its number back with it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_counters",
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("field", sa.String(63), nullable=False),
        sa.Column("period", sa.String(16), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("app", "form", "field", "period", name="pk_record_counters"),
    )


def downgrade() -> None:
    op.drop_table("record_counters")
