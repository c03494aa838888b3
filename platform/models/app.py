"""Installed apps and every version of their definitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class App(Base):
    __tablename__ = "apps"

    key: Mapped[str] = mapped_column(String(63), primary_key=True)
    current_version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class AppVersion(Base):
    """One imported definition. ``definition`` is the canonical JSON text, not JSONB:

    JSONB reorders keys, and an export must give back the document as it was written.
    """

    __tablename__ = "app_versions"

    app: Mapped[str] = mapped_column(
        String(63), ForeignKey("apps.key", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    semver: Mapped[str] = mapped_column(String(50))
    definition: Mapped[str] = mapped_column(Text)
    digest: Mapped[str] = mapped_column(String(64))
    # form key -> the app revision at which that form's definition last changed
    form_versions: Mapped[dict[str, int]] = mapped_column(JsonDocument)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
