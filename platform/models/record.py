"""Records of every form as JSON documents, their history and their unique claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class Record(Base):
    __tablename__ = "records"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    form_version: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))
    deleted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)

    __table_args__ = (
        # Lists of one form in id (= creation) order; live rows only.
        Index(
            "ix_records_app_form_id",
            "app",
            "form",
            "id",
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )


#: The columns of a record that filters, sorts and row filters may name besides its fields.
SYSTEM_COLUMNS = ("id", "version", "created_at", "created_by", "updated_at", "updated_by")


def system_columns() -> dict[str, Any]:
    """Each of :data:`SYSTEM_COLUMNS` -> its column, as the filter compiler takes them."""
    return {name: getattr(Record, name) for name in SYSTEM_COLUMNS}


#: A JSON document or SQL NULL for None (a missing delta costs no bytes, not a JSON ``null``).
NullableJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class RecordHistory(Base):
    """Every version of every record, stored as a **reverse delta** (issue 21).

    The record itself (``records.data``) holds its newest version. A history row holds what
    its version changed, as the way back to the version before it:

    * ``before``: for each key whose stored value this version changed or removed, the value
      it had before (JSON); NULL when there is none (a create, a delete, a change that only
      added keys).
    * ``added``: the keys this version added (absent before it), sorted; NULL when none.
    * ``changed``: the changed keys as the history API shows them; NULL on a create row,
      where it is every key of version 1, sorted (rebuilt, not stored: it would repeat the
      body's key list for every record).

    Version ``k`` is rebuilt from the current data by undoing the deltas of the versions
    after ``k``, newest first (``records.history.versions``: one pass rebuilds every
    version). A record never updated costs one history row without a body. The invariant
    this needs: **every write that changes ``records.data`` writes its history row in the
    same transaction** (create, update, bulk, rules, form migrations in batches and in SQL,
    soft deletes), with ``before``/``added`` computed against the data it replaced — strictly
    (``1`` and ``1.0`` and ``true`` differ), since a missed difference would rebuild an older
    version wrongly. A hard delete of a record that keeps its history would have to store a
    full snapshot first; no such path exists (deletes are soft and keep the record's data).
    """

    __tablename__ = "record_history"

    # A history row is identified by its record and version: one index, no sequence.
    record_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    form_version: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict[str, Any] | None] = mapped_column(NullableJson, nullable=True)
    added: Mapped[list[str] | None] = mapped_column(NullableJson, nullable=True)
    changed: Mapped[list[str] | None] = mapped_column(NullableJson, nullable=True)
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UtcDateTime)


class RecordUnique(Base):
    """A claim on a value of a `unique` field. The primary key makes the claim atomic:

    two concurrent writes of the same value cannot both commit, on SQLite or PostgreSQL,
    without any per-form DDL.
    """

    __tablename__ = "record_unique"

    app: Mapped[str] = mapped_column(String(63), primary_key=True)
    form: Mapped[str] = mapped_column(String(63), primary_key=True)
    field: Mapped[str] = mapped_column(String(63), primary_key=True)
    value: Mapped[str] = mapped_column(String(500), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(32), index=True)
