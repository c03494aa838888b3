"""Checking rules against an app's forms and roles: every problem, with a JSON pointer.

pydantic has already checked each rule's shape; :func:`check` checks what needs the rest
of the app: forms and fields exist (and are not computed where a value is written), cron,
duration and time strings parse, JsonLogic is well formed and reads only known variables,
filters are inside the SQL subset, templates parse in Jinja2's sandbox, webhook URLs are
http(s), rule keys are unique. A path through relations (``record.patient.name``, in an
expression or a template) reads fields the related forms have, through at most two
relations; a recipient's or a task's ``field`` is a relation to a form whose records stand
for users (``user_field``). Pointers are relative to the rules list (``/0/on/form``);
the platform prefixes ``/rules`` at import.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias
from urllib.parse import urlsplit

import sqlalchemy as sa

from formloom.engines.forms import (
    ComputedField,
    FormSpec,
    RelationField,
    SectionField,
    field_types,
    required_left_out,
)
from formloom.engines.logic import check_expression, variables
from formloom.engines.logic.sql import FilterError, FilterTarget, compile_filter

from .cron import parse_cron
from .plan import substitute_context
from .related import path_problems, template_paths
from .spec import (
    CreateLinkAction,
    CreateRecordAction,
    CreateTaskAction,
    DateTrigger,
    NotifyAction,
    RecordTrigger,
    RejectAction,
    RuleSpec,
    ScheduleTrigger,
    SetAction,
    StartFlowAction,
    UpdateRecordsAction,
    WebhookAction,
)
from .templates import locale_texts, template_problems
from .timing import InvalidTiming, late_limit, parse_duration, parse_time_of_day

__all__ = ["CONTEXT_ROOTS", "Issue", "check", "check_rule"]

Issue: TypeAlias = tuple[str, str, str]
"""``(JSON pointer into the rules list, code, message)``."""

#: Longest a rule-made link lives, and the fields a link's holder cannot fill in (as for
#: links made through the API: platform/links/service.py).
LINK_MAX_DAYS = 90
LINK_NOT_FILLABLE = frozenset({"computed", "file", "image", "signature", "section"})
#: The variables a rule expression may read.
CONTEXT_ROOTS = frozenset({"record", "old", "changed", "user", "now"})
#: The instant filters are compiled at when checked (the real one comes at run time).
_SAMPLE_NOW = datetime(2000, 1, 1, tzinfo=UTC)
#: What a template may call on the record (a mapping), not fields.
_DICT_METHODS = frozenset({"get", "items", "keys", "values"})
_SYSTEM_COLUMNS = {"id": "text", "created_at": "timestamp", "updated_at": "timestamp",
                   "created_by": "text", "updated_by": "text"}  # fmt: skip


def check(
    rules: Sequence[RuleSpec],
    forms: Mapping[str, FormSpec],
    roles: Collection[str] | None = None,
    flows: Mapping[str, str] | None = None,
) -> list[Issue]:
    """Every problem of ``rules`` against the app's ``forms`` (and ``roles``, and ``flows``:
    flow key -> the form it runs on, when given)."""
    issues: list[Issue] = []
    seen: set[str] = set()
    for number, rule in enumerate(rules):
        here = f"/{number}"
        if rule.key in seen:
            issues.append((f"{here}/key", "duplicate_key", f"rule key {rule.key!r} is used twice"))
        seen.add(rule.key)
        issues += _Checker(rule, here, forms, roles, flows=flows).issues()
    return issues


def check_rule(
    rule: RuleSpec,
    forms: Mapping[str, FormSpec],
    roles: Collection[str] | None = None,
    *,
    roots: Collection[str] = CONTEXT_ROOTS,
) -> list[Issue]:
    """Every problem of one rule (pointers relative to it), whose expressions may read the
    variables ``roots`` (a flow's action node reads ``vars``, ``steps``, ... too)."""
    return _Checker(rule, "", forms, roles, roots=frozenset(roots)).issues()


class _Checker:
    def __init__(
        self,
        rule: RuleSpec,
        here: str,
        forms: Mapping[str, FormSpec],
        roles: Collection[str] | None,
        *,
        roots: frozenset[str] = CONTEXT_ROOTS,
        flows: Mapping[str, str] | None = None,
    ) -> None:
        self.roots = roots
        self.flows = flows
        self.rule = rule
        self.here = here
        self.forms = forms
        self.roles = roles
        self.found: list[Issue] = []
        self.form = forms.get(rule.on.form)

    def add(self, pointer: str, code: str, message: str) -> None:
        self.found.append((self.here + pointer, code, message))

    def issues(self) -> list[Issue]:
        trigger = self.rule.on
        if self.form is None:
            self.add("/on/form", "unknown_form", f"there is no form {trigger.form!r}")
        if isinstance(trigger, RecordTrigger):
            self._record_trigger(trigger)
        elif isinstance(trigger, ScheduleTrigger):
            self._schedule_trigger(trigger)
        else:
            self._date_trigger(trigger)
        self.expression(self.rule.condition, "/if")
        for index, action in enumerate(self.rule.then):
            self._action(action, f"/then/{index}")
        return self.found

    # -- triggers -----------------------------------------------------------------------

    def _record_trigger(self, trigger: RecordTrigger) -> None:
        for index, name in enumerate(trigger.fields or ()):
            self.field_exists(self.form, name, f"/on/fields/{index}")
        if "to" in trigger.model_fields_set and trigger.fields is None:
            self.add("/on/to", "to_needs_fields", "'to' needs 'fields': which field changes to it")

    def _schedule_trigger(self, trigger: ScheduleTrigger) -> None:
        if trigger.cron is not None and trigger.at is not None:
            self.add("/on", "conflicting_schedule", "give either 'cron' or 'at', not both")
        elif trigger.cron is None and trigger.at is None:
            self.add("/on", "missing_schedule", "a schedule needs 'cron' or 'at'")
        if trigger.cron is not None:
            self.timing(parse_cron, trigger.cron, "/on/cron", "invalid_cron")
        if trigger.at is not None:
            self.timing(parse_time_of_day, trigger.at, "/on/at", "invalid_time")
        if trigger.filter is not None and self.form is not None:
            self.filter(trigger.filter, self.form, "/on/filter")
        self.timing(late_limit, trigger.late, "/on/late", "invalid_late")

    def _date_trigger(self, trigger: DateTrigger) -> None:
        if self.form is not None and self.field_exists(self.form, trigger.field, "/on/field"):
            kind = field_types(self.form).get(trigger.field)
            if kind not in ("date", "datetime"):
                self.add(
                    "/on/field",
                    "not_a_date_field",
                    f"{trigger.field!r} is a {kind} field; a date trigger needs a date or "
                    "datetime field",
                )
        self.timing(parse_duration, trigger.offset, "/on/offset", "invalid_duration")
        if trigger.at is not None:
            self.timing(parse_time_of_day, trigger.at, "/on/at", "invalid_time")
        self.timing(late_limit, trigger.late, "/on/late", "invalid_late")

    # -- actions ------------------------------------------------------------------------

    def _action(self, action: Any, here: str) -> None:
        trigger = self.rule.on
        if not isinstance(action, RejectAction):
            self._delay(action, here)
        if isinstance(action, SetAction):
            if isinstance(trigger, RecordTrigger) and trigger.event == "deleted":
                self.add(here, "set_on_delete", "a deleted record's fields cannot be set")
            self.values(action.values, self.form, f"{here}/values")
        elif isinstance(action, RejectAction):
            if not isinstance(trigger, RecordTrigger):
                self.add(here, "reject_needs_write", "only a record trigger has a write to reject")
            if action.field is not None:
                self.field_exists(self.form, action.field, f"{here}/field")
            if action.exists is not None:
                target = self.target_form(action.exists.form, f"{here}/exists/form")
                self.query(action.exists.filter, target, f"{here}/exists/filter")
        elif isinstance(action, CreateRecordAction):
            target = self.target_form(action.form, f"{here}/form")
            self.values(action.values, target, f"{here}/values")
        elif isinstance(action, UpdateRecordsAction):
            target = self.target_form(action.form, f"{here}/form")
            self.values(action.values, target, f"{here}/values")
            self.query(action.filter, target, f"{here}/filter")
        elif isinstance(action, CreateTaskAction):
            self._task(action, here)
        elif isinstance(action, NotifyAction):
            for index, recipient in enumerate(action.recipients):
                where = f"{here}/recipients/{index}"
                given = [recipient.role, recipient.user, recipient.address, recipient.field]
                if sum(value is not None for value in given) != 1:
                    self.add(
                        where,
                        "invalid_recipient",
                        "give exactly one of role, user, address, field",
                    )
                self.staff_field(recipient.field, f"{where}/field")
                self.role(recipient.role, f"{where}/role")
                self.expression(recipient.user, f"{where}/user")
                self.expression(recipient.address, f"{where}/address")
            if action.subject is not None:
                self.template(action.subject, f"{here}/subject")
            self.template(action.template, f"{here}/template")
        elif isinstance(action, StartFlowAction):
            self._start_flow(action, here)
        elif isinstance(action, CreateLinkAction):
            self._create_link(action, here)
        elif isinstance(action, WebhookAction):
            url = urlsplit(action.url)
            if url.scheme not in ("http", "https") or not url.netloc:
                self.add(f"{here}/url", "invalid_url", f"{action.url!r} is not an http(s) URL")
            for name, value in action.headers.items():
                self.template(value, f"{here}/headers/{_escape(name)}")
            self.body(action.body, f"{here}/body")

    def _create_link(self, action: CreateLinkAction, here: str) -> None:
        if action.after is not None or action.at is not None:
            # its URL is for the same run's later actions, which cannot wait for a timer
            self.add(here, "delayed_link", "a create_link action cannot be delayed")
        names = [a.name for a in self.rule.then if isinstance(a, CreateLinkAction)]
        if names.count(action.name) > 1:
            self.add(f"{here}/as", "duplicate_link", f"two links are named {action.name!r}")
        try:
            duration = parse_duration(action.expires)
        except InvalidTiming as error:
            self.add(f"{here}/expires", "invalid_duration", str(error))
        else:
            days = duration.months * 31 + duration.days + duration.seconds / 86400
            if days <= 0 or days > LINK_MAX_DAYS:
                self.add(
                    f"{here}/expires",
                    "range",
                    f"a link expires after more than 0 and at most {LINK_MAX_DAYS} days",
                )
        target = self.target_form(action.form, f"{here}/form")
        if target is None:
            return
        if action.bind is not None and self.field_exists(target, action.bind, f"{here}/bind"):
            field = target.field(action.bind)
            if field is None or field.field_type != "relation":
                self.add(f"{here}/bind", "not_a_relation", f"{action.bind!r} is not a relation")
            elif getattr(field, "target", None) != self.rule.on.form:
                self.add(
                    f"{here}/bind",
                    "bind_target",
                    f"{action.bind!r} points at {getattr(field, 'target', None)!r} records, not "
                    f"at this rule's {self.rule.on.form!r} records",
                )
        if action.fields is not None:
            for key in required_left_out(target, action.fields, action.bind):
                self.add(
                    f"{here}/fields",
                    "required",
                    f"{key!r} is required, so the link must let its holder fill it in",
                )
        for index, key in enumerate(action.fields or ()):
            where = f"{here}/fields/{index}"
            if not self.field_exists(target, key, where):
                continue
            field = target.field(key)
            if field is None or field.field_type in LINK_NOT_FILLABLE or key == action.bind:
                self.add(where, "not_fillable", f"{key!r} cannot be filled in through a link")

    def _start_flow(self, action: StartFlowAction, here: str) -> None:
        for name, expression in action.vars.items():
            self.expression(expression, f"{here}/vars/{_escape(name)}")
        if self.flows is None:
            return
        form = self.flows.get(action.flow)
        if form is None:
            self.add(f"{here}/flow", "unknown_flow", f"there is no flow {action.flow!r}")
        elif form != self.rule.on.form:
            self.add(
                f"{here}/flow",
                "flow_form",
                f"flow {action.flow!r} runs on {form!r} records, not on this rule's "
                f"{self.rule.on.form!r} records",
            )

    def _task(self, action: CreateTaskAction, here: str) -> None:
        if sum(value is not None for value in (action.role, action.user, action.field)) != 1:
            self.add(here, "invalid_assignee", "give exactly one of 'role', 'user' and 'field'")
        self.staff_field(action.field, f"{here}/field")
        self.role(action.role, f"{here}/role")
        self.expression(action.user, f"{here}/user")
        if action.where is not None:
            if action.role is None:
                self.add(f"{here}/where", "where_without_role", "'where' narrows a 'role'")
            self.expression(action.where, f"{here}/where")
        self.template(action.title, f"{here}/title")
        if action.description is not None:
            self.template(action.description, f"{here}/description")
        if isinstance(action.due, str) and action.due.lstrip("-+").startswith("P"):
            self.timing(parse_duration, action.due, f"{here}/due", "invalid_duration")
        else:
            self.expression(action.due, f"{here}/due")
        if action.done_when is not None:
            target = self.target_form(action.done_when.form, f"{here}/done_when/form")
            self.query(action.done_when.filter, target, f"{here}/done_when/filter")

    def _delay(self, action: Any, here: str) -> None:
        if action.after is not None and action.at is not None:
            self.add(here, "conflicting_delay", "give either 'after' or 'at', not both")
        if action.after is not None:
            try:
                duration = parse_duration(action.after)
            except InvalidTiming as error:
                self.add(f"{here}/after", "invalid_duration", str(error))
            else:
                if duration.months < 0 or duration.days < 0 or duration.seconds < 0:
                    self.add(f"{here}/after", "negative_delay", "a delay cannot be negative")
        if action.at is not None:
            self.expression(action.at, f"{here}/at")

    # -- pieces -------------------------------------------------------------------------

    def timing(self, parse: Any, text: str, pointer: str, code: str) -> None:
        try:
            parse(text)
        except InvalidTiming as error:
            self.add(pointer, code, str(error))

    def field_exists(self, form: FormSpec | None, name: str, pointer: str) -> bool:
        if form is None:
            return False
        if name not in field_types(form):
            self.add(pointer, "unknown_field", f"form {form.key!r} has no field {name!r}")
            return False
        return True

    def target_form(self, key: str, pointer: str) -> FormSpec | None:
        form = self.forms.get(key)
        if form is None:
            self.add(pointer, "unknown_form", f"there is no form {key!r}")
        return form

    def values(self, values: Mapping[str, Any], form: FormSpec | None, pointer: str) -> None:
        for name, expression in values.items():
            where = f"{pointer}/{_escape(name)}"
            if form is not None and self.field_exists(form, name, where):
                field = form.field(name)
                if isinstance(field, ComputedField | SectionField):
                    self.add(
                        where,
                        "computed_field",
                        f"{name!r} is computed by form {form.key!r}; it cannot be set",
                    )
            self.expression(expression, where)

    def staff_field(self, name: str | None, pointer: str) -> None:
        """A relation field of the trigger's form to a form whose records stand for users."""
        if name is None or not self.field_exists(self.form, name, pointer):
            return
        assert self.form is not None
        field = self.form.field(name)
        target = self.forms.get(field.target) if isinstance(field, RelationField) else None
        if not isinstance(field, RelationField):
            self.add(pointer, "not_a_relation", f"{name!r} is not a relation: it names no user")
        elif target is None or target.user_field is None:
            self.add(
                pointer,
                "not_staff",
                f"{name!r} points at {field.target!r} records, which do not stand for users "
                "(the form has no 'user_field')",
            )

    def role(self, role: str | None, pointer: str) -> None:
        if role is not None and self.roles is not None and role not in self.roles:
            self.add(pointer, "unknown_role", f"there is no role {role!r}")

    def expression(self, expression: Any, pointer: str, *, context_only: bool = False) -> None:
        """Well-formed JsonLogic reading only the rule context (``record.x`` a known field).

        ``context_only``: plain (undotted) variables are another form's fields, checked
        by the filter compiler, so only dotted context variables are checked here.
        """
        if expression is None:
            return
        for sub, message in check_expression(expression):
            self.add(pointer + sub, "invalid_expression", message)
        for path in sorted(variables(expression)):
            if path == "*":
                continue
            root, _, rest = path.partition(".")
            if context_only and not rest:
                continue
            if root not in self.roots:
                extra = sorted(self.roots - CONTEXT_ROOTS)
                self.add(
                    pointer,
                    "unknown_variable",
                    f"{path!r}: a rule reads record.<field>, old.<field>, changed, user.<key> "
                    + (f"now or {', '.join(extra)}" if extra else "or now"),
                )
            elif root in ("record", "old") and rest and self.form is not None:
                name = rest.partition(".")[0]
                if name not in field_types(self.form) and name not in _SYSTEM_COLUMNS:
                    self.add(
                        pointer,
                        "unknown_field",
                        f"{path!r}: form {self.form.key!r} has no field {name!r}",
                    )
                else:
                    self.related_path(path, pointer)

    def related_path(self, path: str, pointer: str) -> None:
        """A path through relations reads fields the related forms have; ``old.<relation>.x``
        reads nothing (related records are read as they are now, through ``record``)."""
        root, _, rest = path.partition(".")
        name, _, further = rest.partition(".")
        if root == "old" and further and self.form is not None:
            if isinstance(self.form.field(name), RelationField):
                self.add(
                    pointer,
                    "related_old",
                    f"{path!r}: related records are read through record.{name}.…, not old",
                )
            return
        for code, message in path_problems(path, self.form, self.forms):
            self.add(pointer, code, message)

    def query(self, rule: Any, target: FormSpec | None, pointer: str) -> None:
        """A filter over ``target``'s records that may read the triggering context."""
        self.expression(rule, pointer, context_only=True)
        if target is not None:
            sample = self.sample_record()
            context: dict[str, Any] = {"record": sample, "old": sample, "user": {}}
            self.filter(substitute_context(rule, context, now=_SAMPLE_NOW), target, pointer)

    def sample_record(self) -> dict[str, Any]:
        """A value of the right type for every field of the trigger's form: the filter
        compiler checks literals against field types, and the real values come at run time."""
        types = field_types(self.form) if self.form is not None else {}
        sample = {key: _SAMPLES.get(kind, "x") for key, kind in types.items()}
        return {**sample, "id": "x"}

    def filter(self, rule: Any, form: FormSpec, pointer: str) -> None:
        table = sa.table("records", sa.column("data", sa.JSON()))
        columns = {
            name: sa.column(name, sa.DateTime() if kind == "timestamp" else sa.String())
            for name, kind in _SYSTEM_COLUMNS.items()
        }
        target = FilterTarget(table.c.data, field_types(form), columns, "postgresql")
        try:
            compile_filter(rule, target, now=_SAMPLE_NOW)
        except FilterError as error:
            self.add(pointer + error.pointer, "invalid_filter", error.message)

    def template(self, text: str | Mapping[str, str], pointer: str) -> None:
        for locale, body in locale_texts(text):
            problem = template_problems(body)
            where = pointer if locale is None else f"{pointer}/{_escape(locale)}"
            if problem is not None:
                self.add(where, "invalid_template", problem)
                continue
            for path in sorted(template_paths(body)):
                own = self.own_field_problem(path)
                if own is not None:
                    self.add(where, "unknown_field", own)
                    continue
                for code, message in path_problems(path, self.form, self.forms):
                    self.add(where, code, message)

    def own_field_problem(self, path: str) -> str | None:
        """Why a template's ``record.<name>…`` reads nothing: the form has no field
        ``name``. A template sees the record's fields and its ``id`` (not the other system
        columns), so a text that names another would fail at every delivery."""
        if self.form is None:
            return None
        name = path.split(".")[1]
        if name == "id" or name in _DICT_METHODS or name in field_types(self.form):
            return None
        return (
            f"{path!r}: form {self.form.key!r} has no field {name!r} (a template reads the "
            "record's fields and its id)"
        )

    def body(self, value: Any, pointer: str) -> None:
        if isinstance(value, str):
            self.template(value, pointer)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                self.body(item, f"{pointer}/{index}")
        elif isinstance(value, dict):
            for key, item in value.items():
                self.body(item, f"{pointer}/{_escape(str(key))}")


_SAMPLES: dict[str, Any] = {
    "number": 0,
    "integer": 0,
    "boolean": False,
    "date": "2000-01-01",
    "datetime": "2000-01-01T00:00:00Z",
    "time": "00:00",
    "multiselect": ["x"],
}


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
