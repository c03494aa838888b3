"""Typed record projections (``record_projections``): the catalog of the per-form typed
tables kept beside the JSON records (platform/records/projections.py). Downgrading drops
every projection table, its triggers and (PostgreSQL) its trigger function first: the
records themselves are untouched (they are the source of truth).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from formloom.platform.models.base import JsonDocument, UtcDateTime

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "record_projections",
        sa.Column("table_name", sa.String(63), primary_key=True),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("columns", JsonDocument, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("cursor", sa.String(32), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_record_projections_app_form", "record_projections", ["app", "form"])


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    names = list(bind.execute(sa.text("SELECT table_name FROM record_projections")).scalars())
    for name in names:
        # the table's name is ours (fp_ and hex digits), checked before it is written
        assert name.startswith("fp_") and name[3:].isalnum()
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{event}" + (" ON records" if pg else ""))
        op.execute(f"DROP TABLE IF EXISTS {name}")
        if pg:
            op.execute(f"DROP FUNCTION IF EXISTS {name}_sync()")
    op.drop_index("ix_record_projections_app_form", table_name="record_projections")
    op.drop_table("record_projections")
