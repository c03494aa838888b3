"""One rule of an app at a time: the rule editor's API (``/api/apps/{app}/rules...``).

A rule is saved the way the form designer saves a form: the rule is put into (or taken out
of) the app's current definition and the result goes through the import's plan-and-apply
path (:func:`formloom.platform.apps.service.import_app`), so a saved rule is checked exactly
as an imported one, makes a new app revision (rollback restores the rules as they were), is
audited, and arms or drops its timers in the same unit of work. ``If-Match`` carries the app
revision the editor read (412 when someone saved meanwhile); ``?dry_run=true`` answers the
plan and changes nothing.

Invariants:

* errors are 422 with JSON pointers **into the rule** (``/then/0/template``), not into the
  app, so the editor can show each at its element;
* only platform admins and users holding one of the app's ``design`` roles get past the
  guard (:func:`formloom.platform.permissions.guard.require_design`); the rest get 403, a
  caller without any role in the app (or a token of another app) before the app is read;
* trying a rule (``.../try``) evaluates the *draft* the editor holds against a stored
  record the caller may read, as the test endpoint does: nothing is written, sent or
  scheduled.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.logic.dates import format_datetime
from formloom.engines.rules import DateTrigger, Event, RecordTrigger, RuleRun, RuleSpec
from formloom.engines.rules.related import merge_hops, reads
from formloom.platform.apps import parts, service
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import (
    NotFound,
    Unprocessable,
    shown,
)
from formloom.platform.models.automation import RuleRunLog
from formloom.platform.permissions.policy import resolve
from formloom.platform.records.access import sight_for
from formloom.platform.records.service import RecordService
from formloom.platform.rules import automation, related, zones

router = APIRouter(prefix="/api/apps", tags=["rules"])

#: How many of the app's newest rule-log events the list's figures are counted over.
LOG_WINDOW = 2_000

DryRun = Annotated[bool, Query(description="Report the plan; change nothing")]
IfMatch = Annotated[
    str | None, Header(description="The app revision the rule was read at (its ETag)")
]


designed_app = parts.designed_app


def _find(installed: service.InstalledApp, rule: str) -> dict[str, Any]:
    return parts.find(installed, parts.RULES, rule)


# -- reading ----------------------------------------------------------------------------


def trigger_kind(rule: RuleSpec) -> str:
    if isinstance(rule.on, RecordTrigger):
        return "record"
    return "date" if isinstance(rule.on, DateTrigger) else "schedule"


async def rule_figures(session: AsyncSession, app: str) -> dict[str, dict[str, Any]]:
    """Per rule, over the app's newest ``LOG_WINDOW`` logged events: how often it ran,
    matched and failed, and when it last ran (ISO instant).

    Read from the log's ``rules`` and ``matched`` key lists; the runs themselves (each with
    its planned actions and their context, kilobytes per rule) are decoded only for the
    events that failed, to tell which rule did. Decoding every run made the list of an app
    with 1,000 rules take seconds."""
    rows = (
        await session.execute(
            select(RuleRunLog.id, RuleRunLog.rules, RuleRunLog.matched, RuleRunLog.failed,
                   RuleRunLog.at)
            .where(RuleRunLog.app == app)
            .order_by(RuleRunLog.id.desc())
            .limit(LOG_WINDOW)
        )
    ).all()  # fmt: skip
    figures: dict[str, dict[str, Any]] = {}
    failed_ids = []
    for row_id, ran, matched, failed, at in rows:
        when = None
        for key in ran.strip(",").split(","):
            if not key:
                continue
            entry = figures.get(key)
            if entry is None:
                when = when or format_datetime(at)
                entry = figures[key] = {"runs": 0, "matches": 0, "errors": 0, "last_run": when}
            entry["runs"] += 1
        for key in matched.strip(",").split(","):
            if key in figures:
                figures[key]["matches"] += 1
        if failed:
            failed_ids.append(row_id)
    for start in range(0, len(failed_ids), 500):
        chunk = failed_ids[start : start + 500]
        runs = await session.execute(select(RuleRunLog.runs).where(RuleRunLog.id.in_(chunk)))
        for (logged_runs,) in runs:
            for logged in logged_runs or []:
                if (
                    isinstance(logged, dict)
                    and logged.get("error")
                    and logged.get("rule") in figures
                ):
                    figures[logged["rule"]]["errors"] += 1
    return figures


@router.get("/{app}/rules")
async def list_rules(app: str, p: PlatformDep, who: PrincipalDep) -> JSONResponse:
    """The app's rules as written, each with its figures from the rule log (runs, matches,
    errors, last run). For the app's designers."""
    async with p.db.transaction(write=False) as session:
        installed = await designed_app(p, session, who, app, "read the app's rules")
        figures = await rule_figures(session, app)
    empty = {"runs": 0, "matches": 0, "errors": 0, "last_run": None}
    items = [
        {"rule": document, "log": figures.get(str(document.get("key")), empty)}
        for document in parts.entries(installed, parts.RULES)
    ]
    return JSONResponse(
        {"app": app, "revision": installed.version, "rules": items},
        headers={"ETag": f'"{installed.version}"'},
    )


@router.get("/{app}/rules/{rule}")
async def read_rule(app: str, rule: str, p: PlatformDep, who: PrincipalDep) -> JSONResponse:
    """One rule as written in the app, with the app revision (also the ``ETag``)."""
    async with p.db.transaction(write=False) as session:
        installed = await designed_app(p, session, who, app, "read the app's rules")
    return JSONResponse(
        {"app": app, "revision": installed.version, "rule": _find(installed, rule)},
        headers={"ETag": f'"{installed.version}"'},
    )


# -- saving -----------------------------------------------------------------------------


@router.put(
    "/{app}/rules/{rule}",
    responses={201: {"description": "The rule was added (200: replaced; dry run: the plan)."}},
)
async def save_rule(
    app: str,
    rule: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[Any, Body(description="The rule (docs/rules.md); its key is the URL's")],
    dry_run: DryRun = False,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Create or replace one rule: 201 when it is new, 200 when replaced; ``dry_run`` gives
    the plan. The rule keeps its place in the app's list; a new one goes last."""
    if not isinstance(body, dict):
        raise Unprocessable(
            "The body must be a rule (an object).",
            errors=[{"path": "", "code": "type", "message": "must be an object"}],
        )
    if body.get("key", rule) != rule:
        raise Unprocessable(
            f"The rule's key ({shown(str(body.get('key')))}) differs from the URL ({shown(rule)}).",
            errors=[{"path": "/key", "code": "mismatch", "message": "must match the URL"}],
        )
    definition = {"key": rule, **body}
    created = False

    def put(rules: list[Any]) -> int:
        nonlocal created
        for index, existing in enumerate(rules):
            if isinstance(existing, dict) and existing.get("key") == rule:
                rules[index] = definition
                return index
        created = True
        rules.append(definition)
        return len(rules) - 1

    result = await parts.save_section(
        p, who, app, parts.RULES, "app.rule_saved", put,
        lambda: {"rule": rule, "change": "added" if created else "changed"},
        dry_run=dry_run, if_match=if_match,
    )  # fmt: skip
    response = parts.answer(result, "rule", rule, dry_run, created=created)
    if created and not dry_run:
        response.status_code = 201
    return response


@router.delete("/{app}/rules/{rule}")
async def delete_rule(
    app: str,
    rule: str,
    p: PlatformDep,
    who: PrincipalDep,
    dry_run: DryRun = False,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Remove one rule (its pending timers are dropped; its log stays)."""

    def remove(rules: list[Any]) -> None:
        rules[:] = [r for r in rules if not (isinstance(r, dict) and r.get("key") == rule)]

    result = await parts.save_section(
        p, who, app, parts.RULES, "app.rule_deleted", remove, lambda: {"rule": rule},
        dry_run=dry_run, if_match=if_match, must_exist=rule,
    )  # fmt: skip
    return parts.answer(result, "rule", rule, dry_run)


class RuleToggle(BaseModel):
    """Turn a rule on or off."""

    model_config = ConfigDict(extra="forbid", strict=True)

    enabled: bool = Field(description="false: the rule never runs and its timers are dropped.")


@router.patch("/{app}/rules/{rule}")
async def toggle_rule(
    app: str,
    rule: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[RuleToggle, Body()],
    dry_run: DryRun = False,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Enable or disable one rule. A disabled rule keeps its definition; enabling it again
    arms its schedule or date timers afresh from now (moments missed meanwhile are not made
    up)."""

    def toggle(rules: list[Any]) -> int:
        for index, existing in enumerate(rules):
            if isinstance(existing, dict) and existing.get("key") == rule:
                updated = {k: v for k, v in existing.items() if k != "enabled"}
                if not body.enabled:
                    updated["enabled"] = False
                rules[index] = updated
                return index
        raise NotFound(f"App '{app}' has no rule '{shown(rule)}'.")

    change = "enabled" if body.enabled else "disabled"
    result = await parts.save_section(
        p, who, app, parts.RULES, "app.rule_saved", toggle,
        lambda: {"rule": rule, "change": change}, dry_run=dry_run, if_match=if_match,
    )  # fmt: skip
    return parts.answer(result, "rule", rule, dry_run, enabled=body.enabled)


# -- trying a draft on a record ---------------------------------------------------------


class RuleTry(BaseModel):
    """A draft rule and a stored record to try it on."""

    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] | None = Field(
        default=None, description="The draft; by default the rule as saved."
    )
    record_id: str = Field(max_length=32, description="A record of the trigger's form.")
    event: Literal["created", "updated", "deleted", "schedule", "date"] | None = Field(
        default=None, description="The event; by default the rule's own trigger's."
    )


def _draft(installed: service.InstalledApp, rule: str, draft: dict[str, Any]) -> RuleSpec:
    """The draft checked as a save would check it (against the whole app), or 422 with
    pointers into the rule."""
    spec = parts.draft(installed, parts.RULES, rule, draft)
    return next(r for r in spec.rules if r.key == rule)


def _event_of(rule: RuleSpec, kind: str | None) -> str:
    trigger = rule.on
    if kind is not None:
        return kind
    if isinstance(trigger, RecordTrigger):
        return trigger.event
    return "date" if isinstance(trigger, DateTrigger) else "schedule"


@router.post("/{app}/rules/{rule}/try")
async def try_rule(
    app: str,
    rule: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[RuleTry, Body()],
) -> dict[str, Any]:
    """What the rule (the draft, or the saved one) would do for a stored record, as if the
    event had just happened to it: ``created`` as if it were new; ``updated`` as if the
    trigger's ``fields`` had just been given their present values. The record is read
    through the caller's grants (hidden fields are left out); nothing is written, sent or
    scheduled."""
    now = p.clock.now()
    async with p.db.transaction(write=False) as session:
        installed = await designed_app(p, session, who, app, "try rules")
        spec = (
            _draft(installed, rule, body.rule)
            if body.rule is not None
            else next(
                (r for r in installed.spec.rules if r.key == rule),
                None,
            )
        )
        if spec is None:
            raise NotFound(f"App '{app}' has no rule '{shown(rule)}'.")
        form = spec.on.form
        records = RecordService(session, p.catalog, principal=who, now=now)
        stored = await records.get(app, form, body.record_id)
        hidden = resolve(installed.spec.permissions, who, app, form).hidden
        data = {k: v for k, v in dict(stored.data).items() if k not in hidden}
        data["id"] = stored.id
        hops = merge_hops([reads(spec, installed.forms)])
        sight = sight_for(who, installed, now, p.db.dialect)
        loaded = await related.load_related(session, app, installed.spec, hops, data, sight)
        zone = await zones.record_zone(session, installed, form, data, p.settings.timezone)
    kind = _event_of(spec, body.event)
    old: dict[str, Any] | None = None
    if kind == "updated":
        fields = spec.on.fields if isinstance(spec.on, RecordTrigger) else None
        old = {k: v for k, v in data.items() if not fields or k not in fields}
    elif kind == "deleted":
        old = dict(data)
    event = Event(
        app=app,
        form=form,
        kind=kind,  # type: ignore[arg-type]
        record=data,
        now=now,
        record_id=stored.id,
        old=old,
        user=who.context(app),
        zone=zone,
        occurrence="test",
        related=loaded,
    )
    wanted = _event_of(spec, None)
    if kind != wanted:
        reason = f"the rule runs on {wanted}, not {kind}"
        runs = (RuleRun(spec.key, False, reason=reason),)
        plan = automation.MeasuredPlan(event, runs, dict(data), frozenset(), (0.0,))
    else:
        plan = automation.measured_plan(event, (spec,))
    return {
        "rule": rule,
        "record_id": stored.id,
        "event": kind,
        "dry_run": True,
        **plan.to_dict(),
        "related": loaded,
    }
