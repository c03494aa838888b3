"""Typed projections get a format (``record_projections.format``): the layout of a
generation's table. Format 1 is the layout of 0013 (fields and system columns); format 2,
on PostgreSQL, adds the record's form version and ``_whole`` (whether the projected columns
are the whole document), so a list whose rows are whole reads the projection alone
(platform/records/projections.py). Existing generations are format 1; at start-up the
service builds a format-2 generation for each form online, as for a changed form, the old
one serving reads until the new one is filled.

Downgrading drops the generations of format 2 (their triggers, tables and functions) and
the column: the records are untouched (the source of truth), and the release before builds
its own generations again at start-up.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("record_projections") as table:
        table.add_column(sa.Column("format", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    names = list(
        bind.execute(
            sa.text("SELECT table_name FROM record_projections WHERE format >= 2")
        ).scalars()
    )
    for name in names:
        # the table's name is ours (fp_ and hex digits), checked before it is written
        assert name.startswith("fp_") and name[3:].isalnum()
        for event in ("insert", "update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{event}" + (" ON records" if pg else ""))
        op.execute(f"DROP TABLE IF EXISTS {name}")
        if pg:
            op.execute(f"DROP FUNCTION IF EXISTS {name}_sync()")
    op.execute("DELETE FROM record_projections WHERE format >= 2")
    with op.batch_alter_table("record_projections") as table:
        table.drop_column("format")
