"""Auto-number counters: the last number given per (app, form, field, period)."""

from __future__ import annotations

from sqlalchemy import BigInteger, String
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base


class RecordCounter(Base):
    """The last number an auto-number field gave. ``period`` is ``""`` for a counter that
    never resets, else the year, month or day it counts (``2026``, ``2026-12``,
    ``2026-12-04``). Numbers come from an upsert in the creating transaction
    (``records.numbering``), so they are never given twice."""

    __tablename__ = "record_counters"

    app: Mapped[str] = mapped_column(String(63), primary_key=True)
    form: Mapped[str] = mapped_column(String(63), primary_key=True)
    field: Mapped[str] = mapped_column(String(63), primary_key=True)
    period: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
