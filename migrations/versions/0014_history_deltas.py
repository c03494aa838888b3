"""Record history as reverse deltas (issue 21): each ``record_history`` row keeps, instead
of a full snapshot of its version (``data``), the values its version changed as they were
before it (``before``) and the keys it added (``added``); a create row keeps neither, and its
``changed`` (every key of version 1) becomes NULL. The newest version is the record itself,
older ones are rebuilt by undoing the deltas newest first (platform/records/history.py).

On PostgreSQL the audit log's index on ``at`` becomes a BRIN index (the log is appended in
time order, so block ranges are enough; a B-tree cost ~22 bytes a row), and its index on
``record_id`` a hash index (only ever asked for one record id, whose few rows are then
sorted; a B-tree keeps the 32-character id in every entry).

Downgrading rebuilds every full snapshot from the records and the deltas and puts the
B-trees back. Both ways read a record's rows in version order and trust that the newest
snapshot is the record's data (every write path keeps that true).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

from formloom.platform.models.base import JsonDocument

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: A JSON column whose Python None is SQL NULL (an empty delta costs nothing).
NULLABLE_JSON = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
#: Records per round trip (all of a record's rows are read together).
BATCH = 1000


def _history(*columns: sa.Column[Any]) -> sa.TableClause:
    return sa.table(
        "record_history",
        sa.column("record_id", sa.String()),
        sa.column("version", sa.Integer()),
        *columns,
    )


def _same(a: Any, b: Any) -> bool:
    """Stored alike: equal and of the same JSON kinds (a copy of records.history.same, kept
    here so the migration does not change with the code)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _groups(
    bind: sa.Connection, query: sa.Select[Any], history: sa.TableClause
) -> Iterator[list[Any]]:
    """The rows of ``query`` (history rows, with ``record_id`` and ``version``), a record at
    a time in version order, reading :data:`BATCH` records per round trip (keyset on the
    record id: writing a batch's rows before reading the next is safe)."""
    ids = sa.table("record_history", sa.column("record_id", sa.String()))
    last = ""
    while True:
        batch = list(
            bind.execute(
                sa.select(ids.c.record_id)
                .where(ids.c.record_id > last)
                .group_by(ids.c.record_id)
                .order_by(ids.c.record_id)
                .limit(BATCH)
            ).scalars()
        )
        if not batch:
            return
        last = batch[-1]
        rows = bind.execute(
            query.where(history.c.record_id.in_(batch)).order_by(
                history.c.record_id, history.c.version
            )
        ).all()
        group: list[Any] = []
        for row in rows:
            if group and group[0].record_id != row.record_id:
                yield group
                group = []
            group.append(row)
        if group:
            yield group


def _flush(bind: sa.Connection, statement: Any, pending: list[dict[str, Any]]) -> None:
    if pending:
        bind.execute(statement, pending)
        pending.clear()


def upgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    with op.batch_alter_table("record_history") as batch:
        batch.add_column(sa.Column("before", NULLABLE_JSON, nullable=True))
        batch.add_column(sa.Column("added", NULLABLE_JSON, nullable=True))
        batch.alter_column("changed", existing_type=JsonDocument, nullable=True)
    if pg:
        # one statement: each row against its predecessor (lag), compared as JSONB text
        op.execute(
            """
            UPDATE record_history AS h
            SET before = d.before, added = d.added,
                changed = CASE WHEN d.previous IS NULL AND h.changed = d.keys
                               THEN NULL ELSE h.changed END
            FROM (
                SELECT record_id, version, previous, keys,
                       CASE WHEN previous IS NULL THEN NULL ELSE
                         (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(previous) e
                          WHERE (data -> e.key)::text IS DISTINCT FROM e.value::text) END
                         AS before,
                       CASE WHEN previous IS NULL THEN NULL ELSE
                         (SELECT jsonb_agg(k ORDER BY k COLLATE "C")
                          FROM jsonb_object_keys(data) k WHERE NOT previous ? k) END
                         AS added
                FROM (
                    SELECT record_id, version, data,
                           lag(data) OVER (PARTITION BY record_id ORDER BY version) AS previous,
                           coalesce((SELECT jsonb_agg(k ORDER BY k COLLATE "C")
                                     FROM jsonb_object_keys(data) k), '[]'::jsonb) AS keys
                    FROM record_history
                ) AS s
            ) AS d
            WHERE h.record_id = d.record_id AND h.version = d.version
            """
        )
    else:
        read = _history(sa.column("data", JsonDocument), sa.column("changed", JsonDocument))
        write = (
            _history(
                sa.column("before", NULLABLE_JSON),
                sa.column("added", NULLABLE_JSON),
                sa.column("changed", NULLABLE_JSON),
            )
            .update()
            .where(
                sa.column("record_id") == sa.bindparam("b_id"),
                sa.column("version") == sa.bindparam("b_version"),
            )
            .values(
                before=sa.bindparam("b_before"),
                added=sa.bindparam("b_added"),
                changed=sa.bindparam("b_changed"),
            )
        )
        pending: list[dict[str, Any]] = []
        for group in _groups(bind, sa.select(read), read):
            previous: dict[str, Any] | None = None
            for row in group:
                data = row.data
                if previous is None:
                    before, added = None, None
                    changed = None if row.changed == sorted(data) else row.changed
                else:
                    before = {
                        k: v for k, v in previous.items() if k not in data or not _same(v, data[k])
                    } or None
                    added = sorted(k for k in data if k not in previous) or None
                    changed = row.changed
                pending.append(
                    {
                        "b_id": row.record_id,
                        "b_version": row.version,
                        "b_before": before,
                        "b_added": added,
                        "b_changed": changed,
                    }
                )
                previous = data
            if len(pending) >= BATCH:
                _flush(bind, write, pending)
        _flush(bind, write, pending)
    with op.batch_alter_table("record_history") as batch:
        batch.drop_column("data")
    if pg:
        op.drop_index("ix_audit_log_at", table_name="audit_log")
        op.create_index("ix_audit_log_at", "audit_log", ["at"], postgresql_using="brin")
        op.drop_index("ix_audit_log_record_id", table_name="audit_log")
        op.create_index(
            "ix_audit_log_record_id", "audit_log", ["record_id"], postgresql_using="hash"
        )


def downgrade() -> None:
    bind = op.get_bind()
    pg = bind.dialect.name == "postgresql"
    with op.batch_alter_table("record_history") as batch:
        batch.add_column(sa.Column("data", JsonDocument, nullable=True))
    history = _history(
        sa.column("before", NULLABLE_JSON),
        sa.column("added", NULLABLE_JSON),
        sa.column("changed", NULLABLE_JSON),
    )
    records = sa.table("records", sa.column("id", sa.String()), sa.column("data", JsonDocument))
    write = (
        _history(sa.column("data", JsonDocument), sa.column("changed", JsonDocument))
        .update()
        .where(
            sa.column("record_id") == sa.bindparam("b_id"),
            sa.column("version") == sa.bindparam("b_version"),
        )
        .values(data=sa.bindparam("b_data"), changed=sa.bindparam("b_changed"))
    )
    query = sa.select(history, records.c.data.label("current")).join(
        records, records.c.id == history.c.record_id
    )
    pending: list[dict[str, Any]] = []
    for group in _groups(bind, query, history):
        data = dict(group[0].current)
        snapshots: list[dict[str, Any]] = [{} for _ in group]
        for index in range(len(group) - 1, -1, -1):
            snapshots[index] = data
            row = group[index]
            if index and (row.before or row.added):
                data = {k: v for k, v in data.items() if k not in (row.added or ())}
                data.update(row.before or {})
        for row, snapshot in zip(group, snapshots, strict=True):
            changed = sorted(snapshot) if row.changed is None else row.changed
            pending.append(
                {"b_id": row.record_id, "b_version": row.version, "b_data": snapshot,
                 "b_changed": changed}
            )  # fmt: skip
        if len(pending) >= BATCH:
            _flush(bind, write, pending)
    _flush(bind, write, pending)
    with op.batch_alter_table("record_history") as batch:
        batch.alter_column("data", existing_type=JsonDocument, nullable=False)
        batch.alter_column("changed", existing_type=JsonDocument, nullable=False)
        batch.drop_column("added")
        batch.drop_column("before")
    if pg:
        op.drop_index("ix_audit_log_at", table_name="audit_log")
        op.create_index("ix_audit_log_at", "audit_log", ["at"])
        op.drop_index("ix_audit_log_record_id", table_name="audit_log")
        op.create_index("ix_audit_log_record_id", "audit_log", ["record_id"])
