"""The flow designer's pages: ``/designer/{app}/flows`` (the app's flows) and
``/designer/{app}/flows/{flow}`` (one flow; ``new`` starts one).

As the rule editor, the pages are shells: the server hands the flow exactly as written in
the app, the app's forms, fields, roles and other flows, and the revision it was read at, to
``ui/static/flow-designer.js``; saving goes through ``PUT /api/apps/{app}/flows/{flow}``
(``dry_run`` first, then with ``If-Match``) and Simulate through
``POST /api/flows/{app}/{flow}/simulate`` with the draft, so the designer never writes what
an import could not. Only the app's designers (platform admins and the roles of its
``design`` grant) may open them; others get a 403 page, anonymous callers the sign-in page.
"""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.forms import label_text
from formloom.engines.forms.localtime import zone_name
from formloom.platform.apps import parts
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Problem
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.models.flow import FlowInstance
from formloom.platform.web.designer import _problem
from formloom.platform.web.pages import render_page, signin_redirect
from formloom.platform.web.rule_designer import designer_data
from formloom.platform.web.runtime import clinic_zone

router = APIRouter(include_in_schema=False)

#: The path that starts a new flow (a flow whose key is "new" opens at ``new?existing=1``).
NEW = "new"


#: At most this many running instances are counted for the drawing's "waiting here" badges.
COUNTED = 20_000


async def waiting_counts(session: AsyncSession, app: str, flow: str) -> dict[str, int]:
    """Per step of the flow, how many running instances wait there (a parallel instance
    counts at each step it waits at). Counts only: which records they are is for the record
    pages and the instance API, through the reader's grants."""
    states = await session.scalars(
        select(FlowInstance.state)
        .where(FlowInstance.app == app, FlowInstance.flow == flow)
        .where(FlowInstance.status == "running")
        .limit(COUNTED)
    )
    counts: Counter[str] = Counter()
    for state in states:
        nodes = {t.get("node") for t in (state or {}).get("tokens", []) if isinstance(t, dict)}
        counts.update(str(node) for node in nodes if node)
    return dict(counts)


@router.get("/designer/{app}/flows", response_model=None)
async def flows_page(app: str, request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """The app's flows: label, form, steps, who may start them."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    t = Translator(lang)
    try:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(p, session, who, app, "change flows")
            counted = await session.execute(
                select(FlowInstance.flow, func.count())
                .where(FlowInstance.app == app, FlowInstance.status == "running")
                .group_by(FlowInstance.flow)
            )
            running = {str(flow): int(n) for flow, n in counted.all()}
    except Problem as problem:
        return await _problem(request, who, problem)
    rows = []
    for flow in installed.spec.flows:
        form = installed.forms.get(flow.form)
        steps = sum(1 for n in flow.nodes if n.type not in ("start", "end"))
        rows.append(
            {
                "key": flow.key,
                "label": label_text(flow.label, lang) if flow.label else flow.key,
                "form": label_text(form.label, lang) if form is not None else flow.form,
                "steps": t("{n} steps", n=steps),
                "running": running.get(flow.key, 0),
            }
        )
    return render_page(
        request,
        "designer/flows.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        flows=rows,
    )


@router.get("/designer/{app}/flows/{flow}", response_model=None)
async def flow_page(
    app: str, flow: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    key = None if flow == NEW and "existing" not in request.query_params else flow
    try:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(p, session, who, app, "change flows")
            document = parts.find(installed, parts.FLOWS, key) if key is not None else None
            positions = await waiting_counts(session, app, key) if key is not None else {}
    except Problem as problem:
        return await _problem(request, who, problem)
    data = designer_data(installed, who, None, lang)
    data.pop("rule")
    data["flow"] = document
    data["flows"] = [
        {"key": f.key, "label": label_text(f.label, lang) if f.label else f.key, "form": f.form}
        for f in installed.spec.flows
    ]
    data["zone"] = zone_name(clinic_zone(p))
    data["positions"] = positions
    data["instance"] = request.query_params.get("instance")
    label = label_text(document.get("label"), lang) if document and document.get("label") else key
    return render_page(
        request,
        "designer/flows-editor.html",
        who,
        app=data["app"],
        flow_key=key,
        flow_label=label,
        page_data=data,
    )
