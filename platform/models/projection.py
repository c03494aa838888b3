"""The catalog of typed record projections (PostgreSQL; platform/records/projections.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class RecordProjection(Base):
    """One generation of a form's typed projection table.

    ``state`` is ``building`` while the table is being filled (its triggers already keep
    every write in step; ``cursor`` is the last record id the backfill reached, so a killed
    build resumes there), ``ready`` once it holds every live record (reads use it; at most
    one generation of a form is ready), ``retired`` once a newer generation replaced it (no
    longer written; dropped by the next build of the app).
    """

    __tablename__ = "record_projections"

    table_name: Mapped[str] = mapped_column(String(63), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    #: field key -> the column's SQL type (engines.logic.sql.PROJECTED_TYPES), in order
    columns: Mapped[dict[str, str]] = mapped_column(JsonDocument)
    #: the table's layout (platform/records/projections.py ``FORMATS``)
    format: Mapped[int] = mapped_column(Integer, server_default="1")
    state: Mapped[str] = mapped_column(String(16))
    cursor: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_record_projections_app_form", "app", "form"),)
