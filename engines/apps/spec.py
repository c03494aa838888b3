"""The app definition format, ``formloom.app/v1``: one JSON document per app.

The pydantic models here (:class:`AppSpec` and what it holds: the forms from the form
engine, the rules from the rule engine, the reports and dashboards from the report engine,
the grants from :mod:`.permissions`) *are* the format: the published JSON Schema
(:func:`app_format_schema`, served as ``formloom schema app`` and ``GET /api/schema/app``)
is generated from them, so it cannot drift from what is accepted. Flows are kept and
round-tripped as given until their engine lands.

A spec is immutable. Build one from a document with :func:`formloom.engines.apps.load`,
which also runs the checks a schema cannot express (:mod:`.checks`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.apps.permissions import PermissionSpec
from formloom.engines.apps.zones import ZoneSpec
from formloom.engines.flows.calendar import CalendarSpec
from formloom.engines.flows.spec import FlowSpec
from formloom.engines.forms import FormSpec, Label
from formloom.engines.forms.labels import LOCALE_PATTERN
from formloom.engines.reports.definition import DashboardSpec, ReportSpec
from formloom.engines.rules import RuleSpec

__all__ = [
    "FORMAT",
    "KEY_PATTERN",
    "SCHEMA_DIALECT",
    "SCHEMA_ID",
    "SCHEMA_TITLE",
    "AppSpec",
    "MigrationSpec",
    "RoleSpec",
    "app_format_schema",
]

FORMAT = "formloom.app/v1"
KEY_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: The identifier of the published schema. A URN, not a URL: nothing is served there, and
#: editors find the schema through the ``$schema`` property of a file (docs/app-format.md).
SCHEMA_ID = "urn:formloom:schema:app:v1"
SCHEMA_TITLE = "Formloom app definition (formloom.app/v1)"

Key = Annotated[str, Field(pattern=KEY_PATTERN)]


class RoleSpec(BaseModel):
    """A role users can hold; permissions, task assignment and flows refer to it by key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: Key = Field(description="Identifier of the role, unique in the app, e.g. `doctor`.")
    label: Label | None = Field(default=None, description="Name of the role shown to people.")
    description: Label | None = Field(default=None, description="What the role is for.")


class MigrationSpec(BaseModel):
    """How existing records of one form follow a change that needs migration.

    Applied only to changes in the import's plan: a rename whose old key is a field of the
    installed form and whose new key is a field of the new one, and `set` expressions for
    fields whose change needs migration. Kept with the definition for the record; an entry
    that matches no change of a later import does nothing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    form: Key = Field(description="Key of the form whose records migrate.")
    rename: dict[Key, Key] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": False},  # keys are field keys too
        description="Old field key -> new field key; values move to the new key, which must "
        "be a field of the form.",
    )
    set: dict[Key, Any] = Field(
        default_factory=dict,
        json_schema_extra={"additionalProperties": False},
        description="Field key -> JsonLogic expression computing the new value from the "
        "record as it was before the change (after renames).",
    )


def _schema_header(schema: dict[str, Any]) -> None:
    """Mark the generated schema as a 2020-12 schema with an identifier and a title."""
    schema.update({"$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID, "title": SCHEMA_TITLE})


class AppSpec(BaseModel):
    """A Formloom app: its forms, and the roles, rules, flows and reports that work on them.

    One JSON document per app, imported and exported whole. The reference is
    docs/app-format.md (the app level) and docs/forms.md (forms and fields).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_schema_header)

    schema_uri: str | None = Field(
        default=None,
        alias="$schema",
        title="$schema",
        description="Where an editor finds this JSON Schema, e.g. "
        '"./formloom-app.schema.json"; ignored by Formloom.',
    )
    format: Literal["formloom.app/v1"] = Field(
        description='Format marker and version; always "formloom.app/v1".'
    )
    key: Key = Field(description="Identifier of the app, used in URLs and API paths.")
    version: str = Field(
        pattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$",
        description="The app author's semantic version of this definition, e.g. 1.2.0.",
    )
    label: Label = Field(description="Name of the app shown to people.")
    description: Label | None = Field(default=None, description="What the app is for.")
    locales: list[Annotated[str, Field(pattern=LOCALE_PATTERN)]] = Field(
        default_factory=lambda: ["en"],
        min_length=1,
        description='Locales the app is written in, e.g. ["en", "zh-CN"]; every '
        "{locale: text} label must give a text for each.",
    )
    roles: list[RoleSpec] = Field(default_factory=list, description="Roles users can hold.")
    forms: list[FormSpec] = Field(
        default_factory=list, description="The forms of the app (docs/forms.md)."
    )
    rules: list[RuleSpec] = Field(
        default_factory=list,
        description="If-then rules: a trigger (record event, schedule, date), a JsonLogic "
        "condition and actions (docs/rules.md). Checked at import; `POST "
        "/api/rules/{app}/{rule}/test` evaluates one against a record.",
    )
    flows: list[FlowSpec] = Field(
        default_factory=list,
        description="Task flows (task graphs) that run on one record each: user tasks, "
        "actions, timers, gateways, waits and subflows joined by edges (docs/flows.md).",
    )
    calendar: CalendarSpec | None = Field(
        default=None,
        description="The business calendar (working days and hours, holidays, make-up "
        "working days) that flows count working days and hours on; without one every hour "
        "counts.",
    )
    zone: ZoneSpec | None = Field(
        default=None,
        description='Where a record\'s time zone comes from, e.g. {"field": '
        '"branch.timezone"}: records of forms with that relation use the zone of the '
        "record it points at (timers, messages, pages); others the deployment's "
        "(docs/time-zones.md).",
    )
    reports: list[ReportSpec] = Field(
        default_factory=list,
        description="Saved pivot reports: source form, filter, row and column dimensions, "
        "measures, and how to chart them (docs/reports.md).",
    )
    dashboards: list[DashboardSpec] = Field(
        default_factory=list,
        description="Grids of reports with shared filters (docs/reports.md).",
    )
    design: list[Key] = Field(
        default_factory=list,
        description="Roles whose users may change this app's forms and rules (the designers' "
        "save APIs, with plan, If-Match, audit and a new revision) without being platform "
        "admins; importing the whole app, its grants and this list stay admin-only "
        "(docs/permissions.md).",
    )
    permissions: list[PermissionSpec] = Field(
        default_factory=list,
        description="Who may do what on which form: grants of actions to roles, each with an "
        "optional row filter and hidden / read-only fields (docs/permissions.md). Grants add "
        "up; a platform admin may do anything.",
    )
    migrations: list[MigrationSpec] = Field(
        default_factory=list,
        description="How existing records follow changes that need migration (renames, new "
        "values computed from old ones).",
    )

    def form(self, key: str) -> FormSpec | None:
        for form in self.forms:
            if form.key == key:
                return form
        return None


def app_format_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of ``formloom.app/v1``, generated from the models.

    The same as ``AppSpec.model_json_schema()`` (what ``GET /api/schema/app`` returns), with
    ``$schema``, ``$id`` and ``title`` moved first for people reading the file.
    """
    schema = AppSpec.model_json_schema()
    first = ("$schema", "$id", "title", "description")
    return {**{key: schema[key] for key in first}, **schema}
