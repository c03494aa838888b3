"""Form templates over HTTP (docs/forms.md, Form templates).

``GET /api/form-templates`` (every signed-in user: the shipped and the saved ones, without
their fields), ``GET /api/form-templates/{id}`` (one, with its form),
``POST /api/apps/{app}/forms/{form}/template`` (save a form as a template: the app's
designers) and ``DELETE /api/form-templates/{id}`` (the designers of the app it was saved
from, or a platform admin). Starting from a template is the designer's
``/designer/{app}/new?template={id}``; it saves through ``PUT /api/apps/{app}/forms/{form}``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from formloom.platform.audit.log import audit
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import NotFound, Unauthorized
from formloom.platform.form_templates import service
from formloom.platform.i18n import request_locale
from formloom.platform.permissions import guard

router = APIRouter(prefix="/api", tags=["form templates"])


class NewTemplate(BaseModel):
    """What to call a form saved as a template."""

    model_config = ConfigDict(extra="forbid")

    label: str | dict[str, str] | None = Field(
        default=None,
        description='The template\'s name, e.g. {"en": "Complaint", "zh-CN": "投诉"}. '
        "Default: the form's name.",
    )
    description: str | dict[str, str] | None = Field(
        default=None, description="What the template is for."
    )


@router.get("/form-templates")
async def list_templates(request: Request, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """The templates a new form can start from: shipped ones first, then saved ones."""
    if not who.authenticated:
        raise Unauthorized()
    lang = request_locale(request)
    async with p.db.transaction(write=False) as session:
        templates = await service.all_templates(session)
    return {"items": [template.summary(lang) for template in templates]}


@router.get("/form-templates/{template_id}")
async def read_template(template_id: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """One template with its form definition (without a key)."""
    if not who.authenticated:
        raise Unauthorized()
    async with p.db.transaction(write=False) as session:
        return (await service.get_template(session, template_id)).public()


@router.post("/apps/{app}/forms/{form}/template", status_code=201)
async def save_template(
    app: str,
    form: str,
    p: PlatformDep,
    who: PrincipalDep,
    body: Annotated[NewTemplate | None, Body()] = None,
) -> dict[str, Any]:
    """Save the form's definition (its fields and settings, never its records) as a
    template anyone designing in the installation can start from."""
    guard.require_designer(who, app, "save form templates")
    wanted = body or NewTemplate()
    now = p.clock.now()
    async with p.db.transaction() as session:
        installed = await p.catalog.get(session, app)
        guard.require_design(who, app, installed.spec.design, "save form templates")
        installed.form(form)
        document = next(f for f in installed.document["forms"] if f.get("key") == form)
        template = await service.save_template(
            session,
            document=document,
            app=app,
            form=form,
            label=wanted.label,
            description=wanted.description,
            actor=who.username,
            now=now,
        )
        audit(session, who, "form_template.saved", at=now, app=app,
              detail={"id": template.id, "form": form})  # fmt: skip
    return template.public()


@router.delete("/form-templates/{template_id}", status_code=204)
async def delete_template(template_id: str, p: PlatformDep, who: PrincipalDep) -> Response:
    """Delete a saved template: a designer of the app it was saved from, or an admin."""
    if not who.authenticated:
        raise Unauthorized()
    now = p.clock.now()
    async with p.db.transaction() as session:
        template = await service.get_template(session, template_id)
        if not template.builtin and not who.is_admin:
            assert template.app is not None
            guard.require_designer(who, template.app, "delete its form templates")
            design: Sequence[str] = ()  # the app is gone: only admins may delete its templates
            with contextlib.suppress(NotFound):
                design = (await p.catalog.get(session, template.app)).spec.design
            guard.require_design(who, template.app, design, "delete its form templates")
        row = await service.delete_template(session, template_id)
        audit(session, who, "form_template.deleted", at=now, app=row.app,
              detail={"id": row.id, "form": row.source_form})  # fmt: skip
    return Response(status_code=204)
