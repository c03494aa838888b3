"""Records of every form as JSON documents, their history and their unique claims."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Integer, String, text
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


class RecordHistory(Base):
    """Every version of every record: a full snapshot plus the fields that changed."""

    __tablename__ = "record_history"

    # A history row is identified by its record and version: one index, no sequence.
    record_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    form_version: Mapped[int] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    changed: Mapped[list[str]] = mapped_column(JsonDocument)
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
