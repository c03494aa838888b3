"""ORM tables of the platform, one module per table, on one declarative base."""

from formloom.platform.models.app import App, AppVersion
from formloom.platform.models.audit import AuditEntry
from formloom.platform.models.auth import AuthToken, SignInFailure, User, UserRole
from formloom.platform.models.automation import (
    Notification,
    OutboxMessage,
    RuleRunLog,
    Task,
    Timer,
)
from formloom.platform.models.base import Base
from formloom.platform.models.counter import RecordCounter
from formloom.platform.models.file import StoredFile
from formloom.platform.models.flow import FlowEvent, FlowInstance, TaskCandidate
from formloom.platform.models.form_template import FormTemplate
from formloom.platform.models.projection import RecordProjection
from formloom.platform.models.public_link import PublicLink
from formloom.platform.models.record import (
    SYSTEM_COLUMNS,
    Record,
    RecordHistory,
    RecordUnique,
    system_columns,
)
from formloom.platform.models.webhook import WebhookSubscription

__all__ = [
    "SYSTEM_COLUMNS",
    "system_columns",
    "App",
    "AppVersion",
    "AuditEntry",
    "AuthToken",
    "FlowEvent",
    "FlowInstance",
    "FormTemplate",
    "TaskCandidate",
    "Notification",
    "OutboxMessage",
    "RuleRunLog",
    "Task",
    "Timer",
    "Base",
    "PublicLink",
    "RecordProjection",
    "Record",
    "RecordCounter",
    "RecordHistory",
    "RecordUnique",
    "StoredFile",
    "SignInFailure",
    "User",
    "UserRole",
    "WebhookSubscription",
]
