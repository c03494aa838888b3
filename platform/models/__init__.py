"""ORM tables of the platform, one module per table, on one declarative base."""

from formloom.platform.models.app import App, AppVersion
from formloom.platform.models.base import Base
from formloom.platform.models.record import Record, RecordHistory, RecordUnique

__all__ = ["App", "AppVersion", "Base", "Record", "RecordHistory", "RecordUnique"]
