"""Form templates saved by designers: a form's definition (never its records) that anyone
designing in the installation can start a new form from (docs/forms.md, Form templates)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from formloom.platform.models.base import Base, JsonDocument, UtcDateTime


class FormTemplate(Base):
    """``form`` is a form definition without its key (the new form gets one from its name);
    ``label`` names the template (a string or ``{locale: text}``); ``app`` and
    ``source_form`` say where it was saved from, ``created_by`` who may delete it besides
    platform admins."""

    __tablename__ = "form_templates"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[Any] = mapped_column(JsonDocument)
    description: Mapped[Any | None] = mapped_column(JsonDocument, nullable=True)
    form: Mapped[dict[str, Any]] = mapped_column(JsonDocument)
    app: Mapped[str] = mapped_column(String(63))
    source_form: Mapped[str] = mapped_column(String(63))
    created_by: Mapped[str] = mapped_column(String(150))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_form_templates_created_at", "created_at"),)
