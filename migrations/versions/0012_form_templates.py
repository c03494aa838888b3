"""Form templates (``form_templates``): a form's definition saved by a designer for anyone
in the installation to start a new form from (docs/forms.md, Form templates).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from formloom.platform.models.base import JsonDocument, UtcDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "form_templates",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("label", JsonDocument, nullable=False),
        sa.Column("description", JsonDocument, nullable=True),
        sa.Column("form", JsonDocument, nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("source_form", sa.String(63), nullable=False),
        sa.Column("created_by", sa.String(150), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_form_templates_created_at", "form_templates", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_form_templates_created_at", table_name="form_templates")
    op.drop_table("form_templates")
