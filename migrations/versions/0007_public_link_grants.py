"""Public links submit with their creator's grant: who created a link, and its fields.

``creator_id`` is the user whose *current* roles and attributes bound a submission (it was
an admin-like principal before); existing links get it from ``created_by`` (a username),
and a link whose creator no longer exists stays without one and no longer accepts
submissions. ``fields`` are the fields the public may fill in (null: every field the
creator may write).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from formloom.platform.models.base import JsonDocument

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("public_links") as batch:
        batch.add_column(sa.Column("creator_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("fields", JsonDocument, nullable=True))
    op.execute(
        "UPDATE public_links SET creator_id = "
        "(SELECT users.id FROM users WHERE users.username = public_links.created_by)"
    )


def downgrade() -> None:
    with op.batch_alter_table("public_links") as batch:
        batch.drop_column("fields")
        batch.drop_column("creator_id")
