"""The app definition: one JSON document per app (``formloom.app/v1``), as data.

:class:`AppSpec` is the immutable spec of an app — its roles, forms, rules, flows, reports,
dashboards, permissions and migrations — assembled from the engines' own definitions (the
form engine's ``FormSpec``, the rule engine's ``RuleSpec``, the report engine's
``ReportSpec``/``DashboardSpec``). :func:`load` builds one from a document or raises
:class:`DefinitionInvalid` listing every problem by JSON pointer (:mod:`.checks` holds the
checks a JSON Schema cannot express); :func:`app_format_schema` is the published schema.
:mod:`.permissions` holds the grants (:class:`PermissionSpec`) and what they give a set of
roles (:func:`~.permissions.form_access`).

This is the one engine package that brings the others' definitions together, so that the
platform and the other engines (flows) can read a whole app. Like every engine it is pure:
no database, no HTTP, no import from the platform.
"""

from formloom.engines.apps.checks import DefinitionProblem
from formloom.engines.apps.document import DefinitionInvalid, canonical_text, digest, load
from formloom.engines.apps.permissions import FormAccess, PermissionSpec
from formloom.engines.apps.spec import (
    FORMAT,
    KEY_PATTERN,
    SCHEMA_DIALECT,
    SCHEMA_ID,
    AppSpec,
    MigrationSpec,
    RoleSpec,
    app_format_schema,
)

__all__ = [
    "FORMAT",
    "KEY_PATTERN",
    "SCHEMA_DIALECT",
    "SCHEMA_ID",
    "AppSpec",
    "DefinitionInvalid",
    "DefinitionProblem",
    "FormAccess",
    "MigrationSpec",
    "PermissionSpec",
    "RoleSpec",
    "app_format_schema",
    "canonical_text",
    "digest",
    "load",
]
