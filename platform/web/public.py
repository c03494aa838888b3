"""The public form page: ``/p/<token>``, the URL a public link hands out (texted to a patient
after a visit). No account and no session: the token in the path is the credential.

The page shows what ``GET /api/public/<token>`` shows — the link's form restricted to the
link's fields, never any record (not even the bound one) — rendered by ``ui/static/form.js``
(the same validation as the staff pages), mobile first, in the app's languages (picked by
``?lang=``, the language cookie, then ``Accept-Language``; a switch on the page). It posts
to ``POST /api/public/<token>`` (token-authorised JSON, so no CSRF token: see
docs/permissions.md) and then shows the thank-you page. An unknown link is a 404 page, a
used, expired, withdrawn or no longer valid one a 410 page: pages, not JSON.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from formloom.engines.forms import label_text
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Problem
from formloom.platform.i18n import LANG_COOKIE, LOCALES, Translator, request_locale, supported
from formloom.platform.links import service
from formloom.platform.web.pages import UI

templates = Jinja2Templates(directory=str(UI / "templates"))
router = APIRouter(include_in_schema=False)

#: Nothing on these pages may be kept or shared beyond the visit: the URL is the credential.
HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex",
}


def _languages(locales: list[str] | None) -> list[str]:
    """The app's locales the UI speaks (all of them when the app names none)."""
    chosen = [found for found in (supported(x) for x in locales or ()) if found]
    return list(dict.fromkeys(chosen)) or list(LOCALES)


def _lang(request: Request, languages: list[str]) -> str:
    lang = request_locale(request)
    return lang if lang in languages else languages[0]


def _render(
    request: Request, name: str, lang: str, languages: list[str], status: int, **context: Any
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        name,
        {
            "lang": lang,
            "t": Translator(lang),
            "languages": languages,
            # the clinic's zone: a datetime question is answered on its clock (form-values.js)
            "timezone": request.app.state.platform.settings.timezone,
            **context,
        },
        status_code=status,
        headers=HEADERS,
    )
    chosen = supported(request.query_params.get("lang"))
    if chosen is not None:
        # the switch's choice stays for the next visit (a preference, not a session)
        response.set_cookie(LANG_COOKIE, chosen, max_age=31_536_000, samesite="lax")
    return response


@router.get("/p/{token}", response_class=HTMLResponse, include_in_schema=False)
async def public_page(token: str, request: Request, p: PlatformDep) -> HTMLResponse:
    try:
        async with p.db.transaction(write=False) as session:
            shown = await service.public_form(session, p.catalog, token, p.clock.now())
    except Problem as problem:
        languages = list(LOCALES)
        lang = _lang(request, languages)
        return _render(
            request, "public/gone.html", lang, languages, problem.status, code=problem.status
        )
    languages = _languages(shown["locales"])
    lang = _lang(request, languages)
    page = {
        "token": token,
        "form": shown["form"],
        "app": {"key": shown["app"]["key"], "forms": {}},
        "now": p.clock.now().isoformat(),
    }
    return _render(
        request,
        "public/form.html",
        lang,
        languages,
        200,
        title=label_text(shown["form"].get("label"), lang) or shown["form"].get("key"),
        app_label=label_text(shown["app"]["label"], lang),
        page_data=page,
    )
