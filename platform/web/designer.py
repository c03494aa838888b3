"""The form designer's pages: ``/designer/{app}`` (the app's forms, and the templates a new
one can start from), ``/designer/{app}/{form}`` (change a form) and ``/designer/{app}/new``
(start a new one; ``?template={id}`` starts it from a form template, docs/forms.md).

The page is a shell: the server hands the form's definition exactly as written in the app
(plus the app's locales and forms, and the revision it was read at) to
``ui/static/designer.js``, which does the editing in the browser. Saving goes through the
API's plan-and-apply path (``PUT /api/apps/{app}/forms/{form}`` with ``dry_run`` first and
``If-Match``), so the designer never writes anything an import could not. Only those who may
save forms (platform admins and the app's designers, see ``guard.require_design``) may open
it; others get a 403 page, anonymous callers the sign-in page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from formloom.engines.forms import label_text
from formloom.engines.forms.fields import FIELD_TYPES
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import Forbidden, Problem, audit_refusal
from formloom.platform.form_templates import service as templates
from formloom.platform.i18n import request_locale
from formloom.platform.permissions import guard
from formloom.platform.records.service import iso
from formloom.platform.web import listing
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)

#: The path that starts a new form. A form whose key is "new" opens at ``new?existing=1``.
NEW = "new"


async def _problem(request: Request, who: Principal, problem: Problem) -> HTMLResponse:
    if isinstance(problem, Forbidden) and problem.audit is not None:
        # audited like the API's refusals (the error handler does it for problem responses)
        await audit_refusal(request, problem.audit)
    response = render_page(request, "designer/problem.html", who, problem=problem)
    response.status_code = problem.status
    return response


async def _app(p: Platform, who: Principal, app: str) -> InstalledApp:
    guard.require_designer(who, app, "change forms")
    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    guard.require_design(who, app, installed.spec.design, "change forms")
    return installed


def _page_data(p: Platform, installed: InstalledApp, form: str | None, lang: str) -> dict[str, Any]:
    documents = [f for f in installed.document.get("forms", []) if isinstance(f, dict)]
    index = next((i for i, f in enumerate(documents) if f.get("key") == form), len(documents))
    return {
        "app": {
            "key": installed.key,
            "label": label_text(installed.spec.label, lang),
            "locales": list(installed.spec.locales),
            "forms": [{"key": f.get("key"), "label": f.get("label")} for f in documents],
        },
        "preview_app": listing.forms_meta(installed, lang, lambda form: frozenset()),
        "form": documents[index] if index < len(documents) else None,
        "form_index": index,
        "revision": installed.version,
        "types": list(FIELD_TYPES),
        "now": iso(p.clock.now()),
    }


@router.get("/designer/{app}", response_model=None)
async def designer_home(app: str, request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """The app's forms, each opening in the designer, and a button for a new one."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        installed = await _app(p, who, app)
    except Problem as problem:
        return await _problem(request, who, problem)
    forms = [
        {"key": spec.key, "label": label_text(spec.label, lang), "fields": len(spec.fields)}
        for spec in installed.spec.forms
    ]
    async with p.db.transaction(write=False) as session:
        found = await templates.all_templates(session)
    shown = [
        {
            **template.summary(lang),
            "about": label_text(template.description, lang) if template.description else "",
            # the designers of the app it came from may delete it, and admins (the API checks)
            "deletable": not template.builtin and (who.is_admin or template.app == app),
        }
        for template in found
    ]
    return render_page(
        request,
        "designer/home.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        forms=forms,
        templates=shown,
    )


@router.get("/designer/{app}/{form}", response_model=None)
async def designer_page(
    app: str, form: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    key = None if form == NEW and "existing" not in request.query_params else form
    try:
        installed = await _app(p, who, app)
        if key is not None:
            installed.form(key)
    except Problem as problem:
        return await _problem(request, who, problem)
    data = _page_data(p, installed, key, lang)
    template_id = request.query_params.get("template")
    if key is None and template_id:
        try:
            async with p.db.transaction(write=False) as session:
                template = await templates.get_template(session, template_id)
        except Problem as problem:
            return await _problem(request, who, problem)
        # a new form with the template's fields; saved like any other (plan, If-Match)
        data["form"] = templates.start_form(template, set(installed.forms))
        data["is_new"] = True
        data["template"] = label_text(template.label, lang)
    form_label = label_text(installed.forms[key].label, lang) if key is not None else None
    return render_page(
        request,
        "designer/designer.html",
        who,
        app=data["app"],
        form_key=key,
        form_label=form_label,
        page_data=data,
    )
