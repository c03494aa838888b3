"""Public links: one-submission tokenised links to a form (e.g. a satisfaction survey).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from formloom.platform.models.base import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "public_links",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("bind_field", sa.String(63), nullable=True),
        sa.Column("bind_record", sa.String(32), nullable=True),
        sa.Column("max_submissions", sa.Integer(), nullable=False),
        sa.Column("submissions", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.Column("last_submitted_at", UtcDateTime(), nullable=True),
        sa.Column("last_record_id", sa.String(32), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_public_links"),
    )
    op.create_index("ix_public_links_app_form", "public_links", ["app", "form"])


def downgrade() -> None:
    op.drop_index("ix_public_links_app_form", table_name="public_links")
    op.drop_table("public_links")
