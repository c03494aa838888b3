"""Who may use one form: the access screen's API (issue 17, item 2).

``GET /api/apps/{app}/forms/{form}/access`` answers the grants naming the form as written in
the app (``grants``), the ``"*"`` grants that apply to it too (``shared``, shown, not changed
here), the app's roles with their labels (and which of them design the app), the form's
fields, and, for a form no grant names yet, a starting ``proposal``. ``PUT`` replaces the
grants naming the form with the body's list (docs/permissions.md, "The access screen").

Invariants:

* only platform admins and the app's designers (its ``design`` roles) read or change access
  here, as Jiandaoyun's app admins manage their app's permissions; everyone else gets the
  same 403 as for the other designer endpoints (:func:`parts.designed_app`);
* the endpoint changes **only grants whose ``form`` is this form**: a grant in the body for
  another form or for ``"*"`` is a 422 at ``/N/form``, and the app's roles, its ``design``
  list, the ``"*"`` grants and other forms' grants are carried over untouched, so a designer
  cannot widen who designs the app or reach another form through this URL;
* the save goes through the import's plan and checks like every part save
  (:mod:`formloom.platform.apps.parts`): ``If-Match`` on the app revision (412 when someone
  saved meanwhile), ``?dry_run=true`` answers the plan and changes nothing, errors point into
  the body (``/2/hidden_fields/0``; a problem elsewhere in the app keeps its pointer into the
  app and is marked ``"in": "app"``), a new app revision that rollback restores, and the audit
  rows ``app.access_saved`` and ``app.permissions_changed``;
* the form's grants keep their place in the app's ``permissions`` (where the first of them
  was; after the others for a form that had none), so an export diffs only what changed.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse

from formloom.engines.apps.permissions import PermissionSpec
from formloom.engines.forms.fields import MultiselectField, RelationField, SelectField
from formloom.engines.forms.labels import humanize_key
from formloom.platform.apps import auditing, parts, service
from formloom.platform.apps.endpoints import _audited
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import InvalidDefinition, Unprocessable, shown

router = APIRouter(prefix="/api/apps", tags=["apps"])

#: The actions a grant can give, in the order the screen shows them.
ACTIONS = ("create", "read", "update", "delete", "export")
#: The ``$user`` names the screen's row filter offers as values (any attribute works in JSON).
USER_VALUES = ("$user.branch", "$user.department", "$user.username")
#: The grant's properties in the order they are written back.
_ORDER = ("form", "roles", "actions", "row_filter", "hidden_fields", "read_only_fields")

DryRun = Annotated[bool, Query(description="Report the plan; change nothing")]
IfMatch = Annotated[str | None, Header(description="The app revision the access was read at")]
Grants = Annotated[
    Any,
    Body(
        description="The grants of this form (docs/permissions.md); each one's `form` may be "
        "left out, and must be this form when given"
    ),
]


def form_grants(installed: service.InstalledApp, form: str) -> list[dict[str, Any]]:
    """The grants naming ``form``, as written in the app."""
    return [g for g in _permissions(installed.document) if g.get("form") == form]


def _permissions(document: dict[str, Any]) -> list[dict[str, Any]]:
    grants = document.get("permissions", [])
    return [g for g in grants if isinstance(g, dict)] if isinstance(grants, list) else []


def _shared_actions(permissions: list[PermissionSpec]) -> dict[str, set[str]]:
    """Role -> the actions ``"*"`` grants give it on every form."""
    given: dict[str, set[str]] = {}
    for grant in permissions:
        if grant.form == "*":
            for role in grant.roles:
                given.setdefault(role, set()).update(grant.actions)
    return given


def proposal(installed: service.InstalledApp, form: str) -> list[dict[str, Any]] | None:
    """A starting grant for a form no grant names yet (None once one does): the app's
    designers get every action, the roles that read any other form get ``read``; roles the
    ``"*"`` grants already give that are left out. Shown for the user to review and save."""
    if form_grants(installed, form):
        return None
    spec = installed.spec
    shared = _shared_actions(spec.permissions)
    design = set(spec.design)
    readers = {
        role
        for grant in spec.permissions
        if grant.form not in ("*", form) and "read" in grant.actions
        for role in grant.roles
    }
    order = [role.key for role in spec.roles]
    designers = [r for r in order if r in design and not set(ACTIONS) <= shared.get(r, set())]
    others = [
        r for r in order if r in readers and r not in design and "read" not in shared.get(r, set())
    ]
    proposed: list[dict[str, Any]] = []
    if designers:
        proposed.append({"form": form, "roles": designers, "actions": list(ACTIONS)})
    if others:
        proposed.append({"form": form, "roles": others, "actions": ["read"]})
    return proposed


def _fields(installed: service.InstalledApp, form: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for field in installed.form(form).fields:
        if field.field_type == "section":
            continue
        meta: dict[str, Any] = {
            "key": field.key,
            "label": field.label or humanize_key(field.key),
            "type": getattr(field, "result_type", None) or field.field_type,
        }
        if isinstance(field, SelectField | MultiselectField):
            meta["options"] = [
                {"value": o.value, "label": o.label or o.value} for o in field.options
            ]
        if isinstance(field, RelationField):
            meta["target"] = field.target
        out.append(meta)
    return out


def access_view(installed: service.InstalledApp, form: str) -> dict[str, Any]:
    """What the access screen shows for ``form`` (404 when the app has no such form)."""
    spec = installed.form(form)
    design = set(installed.spec.design)
    return {
        "app": installed.key,
        "form": form,
        "form_label": spec.label or humanize_key(form),
        "revision": installed.version,
        "grants": form_grants(installed, form),
        "shared": [g for g in _permissions(installed.document) if g.get("form") == "*"],
        "proposal": proposal(installed, form),
        "roles": [
            {"key": r.key, "label": r.label or humanize_key(r.key), "designer": r.key in design}
            for r in installed.spec.roles
        ],
        "fields": _fields(installed, form),
        "actions": list(ACTIONS),
        "user_values": list(USER_VALUES),
    }


def _checked(body: Any, form: str) -> list[dict[str, Any]]:
    """The body's grants, each for ``form`` and its properties in the usual order; 422 with
    a pointer per problem for what is not a list of grants of this form."""
    if not isinstance(body, list):
        raise Unprocessable(
            "The body must be the form's grants (a list).",
            errors=[{"path": "", "code": "type", "message": "must be a list of grants"}],
        )
    errors: list[dict[str, Any]] = []
    grants: list[dict[str, Any]] = []
    for index, item in enumerate(body):
        if not isinstance(item, dict):
            errors.append({"path": f"/{index}", "code": "type", "message": "must be an object"})
            continue
        named = item.get("form", form)
        if named != form:
            errors.append(
                {
                    "path": f"/{index}/form",
                    "code": "other_form",
                    "message": f"must be {shown(form)}: this page changes this form's grants "
                    f'only ({shown(str(named))} is changed on its own page, "*" by an import)',
                }
            )
        grant = {"form": form, **{k: v for k, v in item.items() if k != "form"}}
        for name in ("hidden_fields", "read_only_fields"):
            if grant.get(name) == []:
                del grant[name]
        if "row_filter" in grant and grant["row_filter"] is None:
            del grant["row_filter"]
        ordered = {k: grant[k] for k in _ORDER if k in grant}
        grants.append(ordered | {k: v for k, v in grant.items() if k not in ordered})
    if errors:
        raise Unprocessable(
            f"{len(errors)} grant(s) cannot be saved here; nothing was saved.", errors=errors
        )
    return grants


def _pointed_into_body(
    problem: InvalidDefinition, start: int, count: int, form: str
) -> InvalidDefinition:
    """The app's problems (``/permissions/7/hidden_fields/0``, already stripped of
    ``/permissions`` by :func:`parts.pointed_into`) pointed into the body (``/2/...``) when
    they are of one of its grants; any other keeps its pointer into the app."""
    errors: list[dict[str, Any]] = []
    for error in problem.errors:
        path = str(error.get("path", ""))
        if error.get("in") == "app":
            errors.append(error)
            continue
        head, _, rest = path.lstrip("/").partition("/")
        index = int(head) if head.isdigit() else -1
        tail = f"/{rest}" if rest else ""
        if start <= index < start + count:
            errors.append({**error, "path": f"/{index - start}{tail}"})
        else:
            errors.append({**error, "path": f"/permissions{path}", "in": "app"})
    return InvalidDefinition(
        f"The access to form '{form}' has {len(errors)} problem(s); nothing was saved.",
        errors=errors,
    )


@router.get("/{app}/forms/{form}/access", tags=["permissions"])
async def read_access(app: str, form: str, p: PlatformDep, who: PrincipalDep) -> JSONResponse:
    """The grants of one form, the ``"*"`` grants that apply to it, the app's roles and the
    form's fields; ``proposal`` is a starting grant when no grant names the form yet."""
    async with p.db.transaction(write=False) as session:
        installed = await parts.designed_app(p, session, who, app, "read who may use its forms")
    return JSONResponse(access_view(installed, form), headers={"ETag": f'"{installed.version}"'})


@router.put(
    "/{app}/forms/{form}/access",
    tags=["permissions"],
)
async def save_access(
    app: str,
    form: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Grants,
    dry_run: DryRun = False,
    if_match: IfMatch = None,
) -> JSONResponse:
    """Replace the grants naming this form with the body's list (``[]`` removes them);
    ``dry_run`` answers the plan. Other grants, roles and ``design`` are kept as they are."""
    action = "app.access_saved"
    async with (
        _audited(p, who, action, app, dry_run),
        p.db.transaction(write=not dry_run) as session,
    ):
        installed = await parts.designed_app(p, session, who, app, "change who may use its forms")
        installed.form(form)
        parts.check_revision(installed, if_match)
        grants = _checked(body, form)
        place: list[int] = []

        def replace(document: dict[str, Any]) -> str:
            current = document.get("permissions", [])
            current = current if isinstance(current, list) else []
            ours = [
                i for i, g in enumerate(current) if isinstance(g, dict) and g.get("form") == form
            ]
            start = ours[0] if ours else len(current)
            kept = [g for i, g in enumerate(current) if i not in set(ours)]
            document["permissions"] = kept[:start] + grants + kept[start:]
            if not document["permissions"]:
                del document["permissions"]
            place.append(start)
            return "/permissions"

        before = await auditing.grants_before(session, p.catalog, app)
        try:
            result = await parts.change_document(
                session, p.catalog, installed, replace, noun="access", actor=who.username,
                now=p.clock.now(), dry_run=dry_run,
            )  # fmt: skip
        except InvalidDefinition as problem:
            raise _pointed_into_body(problem, place[0], len(grants), form) from None
        await parts.audit_saved(
            session, p.catalog, who, action, result, p.clock.now(), before,
            {"form": form, "grants": len(grants)}, dry_run,
        )  # fmt: skip
    return parts.answer(result, "form", form, dry_run, grants=len(grants))
