"""Uploaded files (the values of file and image fields point at these rows)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, UtcDateTime


class StoredFile(Base):
    """One uploaded file and its bytes, uploaded for one file/image field of one form.

    A record refers to it by ``id`` in the field's value (``{id, name, content_type,
    size}``). The bytes live in the database, so a file commits or rolls back with the unit
    of work that wrote it and a backup of the database is a backup of the files.
    """

    __tablename__ = "files"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    app: Mapped[str] = mapped_column(String(63))
    form: Mapped[str] = mapped_column(String(63))
    # the field key; "table.column" for a column of a table field
    field: Mapped[str] = mapped_column(String(127))
    name: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(150))

    __table_args__ = (Index("ix_files_app_form", "app", "form"),)
