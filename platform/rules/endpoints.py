"""Rules over HTTP. So far: the dry run, which evaluates one rule against a given record and
returns its plan (matched or not, the actions it would take, when) without doing anything.

Carrying plans out on record writes (in the write's transaction), the outbox, durable timers
and the worker are the rest of the rule engine issue.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from formloom.engines.rules import Event, evaluate_rule
from formloom.platform import jsonsafe
from formloom.platform.auth.deps import PrincipalDep as CallerDep
from formloom.platform.deps import Platform, platform
from formloom.platform.errors import NotFound, Unprocessable
from formloom.platform.permissions import guard

router = APIRouter(prefix="/api/rules", tags=["rules"])
PlatformDep = Annotated[Platform, Depends(platform)]


class RuleTest(BaseModel):
    """An event to evaluate a rule against."""

    model_config = ConfigDict(extra="forbid")

    record: dict[str, Any] = Field(description="The record's data as after the write.")
    old: dict[str, Any] | None = Field(
        default=None, description="The record's data before an update (or a delete)."
    )
    event: Literal["created", "updated", "deleted", "schedule", "date"] | None = Field(
        default=None,
        description="The event; by default the rule's own record event (or its trigger kind).",
    )
    record_id: str | None = Field(default=None, description="Id used in idempotency keys.")
    user: dict[str, Any] | None = Field(
        default=None, description="The acting user's context; by default the caller's."
    )


def _default_event(rule: Any) -> str:
    trigger = rule.on
    return getattr(trigger, "event", None) or ("date" if hasattr(trigger, "field") else "schedule")


@router.post("/{app}/{rule}/test")
async def test_rule(
    app: str,
    rule: str,
    p: PlatformDep,
    who: CallerDep,
    body: Annotated[RuleTest, Body()],
) -> dict[str, Any]:
    """Evaluate one rule against the given record; nothing is written, sent or scheduled.
    For app designers: platform admins (or a token scoped to the app)."""
    guard.require_admin(who, app, "test rules")
    found = jsonsafe.problems(body.model_dump(mode="json"))
    if found:
        raise Unprocessable(
            "The test event holds values that cannot be used.",
            errors=[{"path": p_, "code": "invalid_value", "message": m} for p_, m in found],
        )
    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    spec = next((r for r in installed.spec.rules if r.key == rule), None)
    if spec is None:
        raise NotFound(f"App '{app}' has no rule '{rule[:80]}'.")
    event = Event(
        app=app,
        form=spec.on.form,
        kind=body.event or _default_event(spec),  # type: ignore[arg-type]
        record=body.record,
        now=p.clock.now(),
        record_id=body.record_id,
        old=body.old,
        user=body.user if body.user is not None else who.context(app),
        zone=p.settings.timezone,
        occurrence="test",
    )
    plan = evaluate_rule(spec, event)
    return {"rule": rule, "dry_run": True, **plan.to_dict()}
