"""The first platform tables: apps, app_versions, records, record_history, record_unique.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from formloom.platform.models.base import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_DOC = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "apps",
        sa.Column("key", sa.String(63), nullable=False),
        sa.Column("current_version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_apps"),
    )
    op.create_table(
        "app_versions",
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("semver", sa.String(50), nullable=False),
        sa.Column("definition", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("form_versions", JSON_DOC, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.ForeignKeyConstraint(
            ["app"], ["apps.key"], name="fk_app_versions_app_apps", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("app", "version", name="pk_app_versions"),
    )
    op.create_table(
        "records",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(100), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_records"),
    )
    op.create_index(
        "ix_records_app_form_id",
        "records",
        ["app", "form", "id"],
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )
    op.create_table(
        "record_history",
        sa.Column("record_id", sa.String(32), nullable=False),
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("form_version", sa.Integer(), nullable=False),
        sa.Column("operation", sa.String(16), nullable=False),
        sa.Column("data", JSON_DOC, nullable=False),
        sa.Column("changed", JSON_DOC, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("record_id", "version", name="pk_record_history"),
    )
    op.create_table(
        "record_unique",
        sa.Column("app", sa.String(63), nullable=False),
        sa.Column("form", sa.String(63), nullable=False),
        sa.Column("field", sa.String(63), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("record_id", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("app", "form", "field", "value", name="pk_record_unique"),
    )
    op.create_index("ix_record_unique_record_id", "record_unique", ["record_id"])


def downgrade() -> None:
    op.drop_table("record_unique")
    op.drop_table("record_history")
    op.drop_table("records")
    op.drop_table("app_versions")
    op.drop_table("apps")
