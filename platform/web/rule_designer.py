"""The rule editor's pages: ``/designer/{app}/rules`` (the app's rules, with an on/off
switch and what the rule log says of each) and ``/designer/{app}/rules/{rule}`` (one rule;
``new`` starts one).

Like the form designer, the pages are shells: the server hands the rule exactly as written
in the app, the app's forms, fields and roles, and the revision it was read at, to
``ui/static/rule-editor.js``; saving goes through ``PUT /api/apps/{app}/rules/{rule}``
(``dry_run`` first, then with ``If-Match``), so the editor never writes anything an import
could not. Only the app's designers (platform admins and the roles its ``design`` grant
names) may open them; others get a 403 page, anonymous callers the sign-in page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from formloom.engines.forms import label_text
from formloom.engines.forms.fields import MultiselectField, RelationField, SelectField
from formloom.engines.rules import DateTrigger, RecordTrigger, RuleSpec, ScheduleTrigger
from formloom.platform.apps.rules_api import designed_app, rule_figures
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import NotFound, Problem
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.permissions.policy import resolve
from formloom.platform.records.service import iso
from formloom.platform.web import listing
from formloom.platform.web.designer import _problem
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)

#: The path that starts a new rule (a rule whose key is "new" opens at ``new?existing=1``).
NEW = "new"


def _form_label(installed: InstalledApp, form: str, lang: str) -> str:
    spec = installed.forms.get(form)
    return label_text(spec.label, lang) if spec is not None else form


def _field_label(installed: InstalledApp, form: str, key: str, lang: str) -> str:
    spec = installed.forms.get(form)
    field = spec.field(key) if spec is not None else None
    return listing.field_label(field, lang) if field is not None else key


def trigger_words(installed: InstalledApp, rule: RuleSpec, lang: str) -> str:
    """The rule's trigger as a sentence in the reader's language."""
    t = Translator(lang)
    trigger = rule.on
    form = _form_label(installed, trigger.form, lang)
    if isinstance(trigger, RecordTrigger):
        words = {
            "created": t("When a {form} record is created", form=form),
            "updated": t("When a {form} record is changed", form=form),
            "deleted": t("When a {form} record is deleted", form=form),
        }[trigger.event]
        if trigger.fields:
            names = ", ".join(
                _field_label(installed, trigger.form, f, lang) for f in trigger.fields
            )
            words += t(" (when {fields} changes)", fields=names)
        return words
    if isinstance(trigger, ScheduleTrigger):
        when = t("every day at {at}", at=trigger.at) if trigger.at else f"cron {trigger.cron}"
        return t("On a schedule, {when}, for each {form} record", when=when, form=form)
    assert isinstance(trigger, DateTrigger)
    field = _field_label(installed, trigger.form, trigger.field, lang)
    words = t("Relative to {field} of each {form} record ({offset})", field=field, form=form,
              offset=trigger.offset)  # fmt: skip
    if trigger.at:
        words += t(", at {at}", at=trigger.at)
    if trigger.every_year:
        words += t(", every year")
    return words


def _fields(installed: InstalledApp, form: str, lang: str) -> list[dict[str, Any]]:
    out = []
    for field in installed.forms[form].fields:
        if field.field_type in ("section",):
            continue
        meta: dict[str, Any] = {
            "key": field.key,
            "label": listing.field_label(field, lang),
            "type": getattr(field, "result_type", None) or field.field_type,
        }
        if isinstance(field, SelectField | MultiselectField):
            meta["options"] = [
                {"value": o.value, "label": label_text(o.label, lang) or o.value}
                for o in field.options
            ]
        if isinstance(field, RelationField):
            meta["target"] = field.target
        out.append(meta)
    return out


def designer_data(
    installed: InstalledApp, who: Principal, rule: dict[str, Any] | None, lang: str
) -> dict[str, Any]:
    def hidden_of(form: str) -> frozenset[str] | None:
        access = resolve(installed.spec.permissions, who, installed.key, form)
        return access.hidden if access.allows("read") else None

    return {
        "app": {
            "key": installed.key,
            "label": label_text(installed.spec.label, lang),
            "locales": list(installed.spec.locales),
        },
        "forms": [
            {
                "key": key,
                "label": label_text(spec.label, lang),
                "fields": _fields(installed, key, lang),
            }
            for key, spec in installed.forms.items()
        ],
        "roles": [
            {"key": role.key, "label": label_text(role.label, lang) if role.label else role.key}
            for role in installed.spec.roles
        ],
        # the forms the caller may read, for the record picker of "Try it on a record"
        "picker_app": listing.forms_meta(installed, lang, hidden_of),
        "rule": rule,
        "revision": installed.version,
    }


@router.get("/designer/{app}/rules", response_model=None)
async def rules_page(app: str, request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """The app's rules: label, trigger in words, on/off, and the rule log's figures."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            installed = await designed_app(p, session, who, app, "change rules")
            figures = await rule_figures(session, app)
    except Problem as problem:
        return await _problem(request, who, problem)
    rows = []
    for rule in installed.spec.rules:
        log = figures.get(rule.key, {"runs": 0, "matches": 0, "errors": 0, "last_run": None})
        rows.append(
            {
                "key": rule.key,
                "label": label_text(rule.label, lang) if rule.label else rule.key,
                "trigger": trigger_words(installed, rule, lang),
                "enabled": rule.enabled,
                **log,
            }
        )
    return render_page(
        request,
        "designer/rules.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        rules=rows,
        revision=installed.version,
        now=iso(p.clock.now()),
    )


@router.get("/designer/{app}/rules/{rule}", response_model=None)
async def rule_page(
    app: str, rule: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    key = None if rule == NEW and "existing" not in request.query_params else rule
    try:
        async with p.db.transaction(write=False) as session:
            installed = await designed_app(p, session, who, app, "change rules")
        document = None
        if key is not None:
            document = next(
                (r for r in installed.document.get("rules", []) if r.get("key") == key), None
            )
            if document is None:
                raise NotFound(f"App '{app}' has no rule '{key[:80]}'.")
    except Problem as problem:
        return await _problem(request, who, problem)
    data = designer_data(installed, who, document, lang)
    label = label_text(document.get("label"), lang) if document and document.get("label") else key
    return render_page(
        request,
        "designer/rules-editor.html",
        who,
        app=data["app"],
        rule_key=key,
        rule_label=label,
        page_data=data,
    )
