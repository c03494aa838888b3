"""The access screen: ``/designer/{app}/{form}/access``, who may do what with one form.

A shell like the form designer and the rule editor: the server hands the form's grants as
written, the ``"*"`` grants that apply to it, the app's roles, the form's fields and, for a
form no grant names, a proposed starting grant (the same document as
``GET /api/apps/{app}/forms/{form}/access``) to ``ui/static/access-editor.js``, which edits
them as roles × actions with a row filter and field rules per role; saving goes through
``PUT /api/apps/{app}/forms/{form}/access`` with ``If-Match``, so the screen never writes
anything an import could not. Only the app's designers and platform admins may open it;
others get a 403 page, anonymous callers the sign-in page.

Registered before the form designer's ``/designer/{app}/{form}`` and after the rule, report,
dashboard and flow editors' ``/designer/{app}/rules/{rule}``... (a rule named ``access`` keeps
its page; the access of forms keyed ``rules``, ``reports``, ``dashboards`` or ``flows`` is
reached through the API).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from formloom.engines.forms import label_text
from formloom.platform.apps import parts
from formloom.platform.apps.access_api import access_view
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Problem
from formloom.platform.i18n import request_locale
from formloom.platform.web.designer import _problem
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)


@router.get("/designer/{app}/{form}/access", response_model=None)
async def access_page(
    app: str, form: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(
                p, session, who, app, "change who may use its forms"
            )
        view = access_view(installed, form)
    except Problem as problem:
        return await _problem(request, who, problem)
    app_meta = {
        "key": installed.key,
        "label": label_text(installed.spec.label, lang),
        "locales": list(installed.spec.locales),
    }
    return render_page(
        request,
        "designer/access.html",
        who,
        app=app_meta,
        form_key=form,
        form_label=label_text(installed.forms[form].label, lang) or form,
        page_data={**view, "app": app_meta},
    )
