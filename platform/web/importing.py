"""The import page of a form (``/apps/{app}/forms/{form}/import``): upload a CSV or XLSX
file, check the mapping of its columns to fields (editable), see the dry run's bad rows and
counts, then import — all through ``POST /api/records/{app}/{form}/import``
(platform/records/importing.py); ``ui/static/import-page.js`` drives it.

Rendered for callers who may create or update the form's records (the API checks each row
again); the fields offered come from the API's own dry run, so hidden fields never show.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from formloom.engines.forms import label_text, unique_fields
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Forbidden, Problem, audit_refusal
from formloom.platform.i18n import request_locale
from formloom.platform.records.service import service_for
from formloom.platform.web.listing import field_label
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)


@router.get("/apps/{app}/forms/{form}/import", response_model=None, include_in_schema=False)
async def import_page(
    app: str, form: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            records = service_for(p, session, who)
            installed, spec = await records.load_form(app, form)
            access = records.access(installed, form)
            if not (access.allows("create") or access.allows("update")):
                raise Forbidden(
                    f"Your roles in app '{app}' do not allow you to import {form} records.",
                    audit={
                        "action": "auth.denied",
                        "app": app,
                        "form": form,
                        "detail": {"reason": "action", "action": "import"},
                    },  # fmt: skip
                )
    except Problem as problem:
        if isinstance(problem, Forbidden) and problem.audit is not None:
            await audit_refusal(request, problem.audit)
        response = render_page(request, "runtime/problem.html", who, problem=problem)
        response.status_code = problem.status
        return response
    unique = [
        {"key": key, "label": field_label(field, lang)}
        for key in unique_fields(spec)
        if key not in access.hidden and (field := spec.field(key)) is not None
    ]
    return render_page(
        request,
        "runtime/import.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        form={"key": form, "label": label_text(spec.label, lang)},
        page_data={
            "endpoint": f"/api/records/{app}/{form}/import",
            "list": f"/apps/{app}/forms/{form}",
            "unique": unique,
        },
    )
