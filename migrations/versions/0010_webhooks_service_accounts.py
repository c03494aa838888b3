"""Webhook subscriptions (``webhook_subscriptions``: an app's record events sent, signed,
to a URL) and service accounts (``users.is_service``: integrations that never sign in).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from formloom.platform.models.base import JsonDocument, UtcDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("events", JsonDocument, nullable=False),
        sa.Column("form", sa.String(63), nullable=True),
        sa.Column("fields", JsonDocument, nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_webhook_subscriptions_app", "webhook_subscriptions", ["app", "active"])
    # Plain ALTER TABLE on both databases: a batch "move and copy" of ``users`` on SQLite
    # would drop the table its roles and tokens cascade from (foreign keys are on).
    op.add_column(
        "users", sa.Column("is_service", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("users", "is_service")  # SQLite 3.35+ drops a column in place
    op.drop_index("ix_webhook_subscriptions_app", table_name="webhook_subscriptions")
    op.drop_table("webhook_subscriptions")
