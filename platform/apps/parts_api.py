"""Reports, dashboards and flows of an app, one at a time: the editors' API.

``GET /api/apps/{app}/reports`` lists the definitions as written, ``GET .../reports/{key}``
reads one, ``PUT`` creates (201) or replaces (200) it, ``DELETE`` removes it; the same for
``dashboards`` and ``flows``. Saves go through :mod:`formloom.platform.apps.parts`: the
import's checks and plan, ``If-Match`` on the app revision, ``?dry_run=true``, errors pointed
into the part, a new app revision, an audit row (``app.report_saved``...).

Invariants:

* only the app's designers (its ``design`` roles) and platform admins read or change these
  definitions here; readers of reports and dashboards use ``/api/reports`` and
  ``/api/dashboards``, which apply their grants;
* a part keeps its place in the app's list; a new one goes last;
* removing a part something else names (a report on a dashboard, a flow a rule starts) is
  refused with the app's own error, pointed into the app (``"in": "app"``), and nothing
  changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query
from fastapi.responses import JSONResponse

from formloom.platform.apps import parts
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.deps import PlatformDep
from formloom.platform.errors import Unprocessable, shown

router = APIRouter(prefix="/api/apps", tags=["apps"])

DryRun = Annotated[bool, Query(description="Report the plan; change nothing")]
IfMatch = Annotated[
    str | None, Header(description="The app revision the part was read at (its ETag)")
]
Definition = Annotated[
    Any, Body(description="The definition (docs/app-format.md); its key is the URL's")
]


def _routes(section: parts.Section) -> None:
    noun, name = section.noun, section.name

    async def list_parts(app: str, p: PlatformDep, who: PrincipalDep) -> JSONResponse:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(p, session, who, app, f"read the app's {name}")
        return JSONResponse(
            {"app": app, "revision": installed.version, name: parts.entries(installed, section)},
            headers={"ETag": f'"{installed.version}"'},
        )

    async def read_part(app: str, key: str, p: PlatformDep, who: PrincipalDep) -> JSONResponse:
        async with p.db.transaction(write=False) as session:
            installed = await parts.designed_app(p, session, who, app, f"read the app's {name}")
        return JSONResponse(
            {"app": app, "revision": installed.version, noun: parts.find(installed, section, key)},
            headers={"ETag": f'"{installed.version}"'},
        )

    async def save_part(
        app: str,
        key: str,
        p: PlatformDep,
        who: PrincipalDep,
        body: Definition,
        dry_run: DryRun = False,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        if not isinstance(body, dict):
            raise Unprocessable(
                f"The body must be a {noun} (an object).",
                errors=[{"path": "", "code": "type", "message": "must be an object"}],
            )
        if body.get("key", key) != key:
            raise Unprocessable(
                f"The {noun}'s key ({shown(str(body.get('key')))}) differs from the URL "
                f"({shown(key)}).",
                errors=[{"path": "/key", "code": "mismatch", "message": "must match the URL"}],
            )
        definition = {"key": key, **body}
        created = False

        def put(items: list[Any]) -> int:
            nonlocal created
            index = parts.index_of(items, key)
            if index is not None:
                items[index] = definition
                return index
            created = True
            items.append(definition)
            return len(items) - 1

        result = await parts.save_section(
            p, who, app, section, section.saved, put,
            lambda: {noun: key, "change": "added" if created else "changed"},
            dry_run=dry_run, if_match=if_match,
        )  # fmt: skip
        response = parts.answer(result, noun, key, dry_run, created=created)
        if created and not dry_run:
            response.status_code = 201
        return response

    async def delete_part(
        app: str,
        key: str,
        p: PlatformDep,
        who: PrincipalDep,
        dry_run: DryRun = False,
        if_match: IfMatch = None,
    ) -> JSONResponse:
        def remove(items: list[Any]) -> None:
            items[:] = [e for e in items if not (isinstance(e, dict) and e.get("key") == key)]

        result = await parts.save_section(
            p, who, app, section, section.deleted, remove, lambda: {noun: key},
            dry_run=dry_run, if_match=if_match, must_exist=key,
        )  # fmt: skip
        return parts.answer(result, noun, key, dry_run)

    list_parts.__doc__ = f"The app's {name} as written, with the app revision (also the ETag)."
    read_part.__doc__ = f"One {noun} as written in the app, with the app revision (the ETag)."
    save_part.__doc__ = (
        f"Create (201) or replace (200) one {noun}; ``dry_run`` answers the plan. A new "
        f"{noun} goes last in the app's list."
    )
    delete_part.__doc__ = f"Remove one {noun} (refused while something else names it)."
    tags: list[str | Any] = [name]
    router.add_api_route(
        f"/{{app}}/{name}", list_parts, methods=["GET"], name=f"list_{name}", tags=tags
    )
    router.add_api_route(
        f"/{{app}}/{name}/{{key}}", read_part, methods=["GET"], name=f"read_{noun}", tags=tags
    )
    router.add_api_route(
        f"/{{app}}/{name}/{{key}}",
        save_part,
        methods=["PUT"],
        name=f"save_{noun}",
        tags=tags,
        responses={201: {"description": f"The {noun} was added (200: replaced)."}},
    )
    router.add_api_route(
        f"/{{app}}/{name}/{{key}}",
        delete_part,
        methods=["DELETE"],
        name=f"delete_{noun}",
        tags=tags,
    )


for _section in (parts.REPORTS, parts.DASHBOARDS, parts.FLOWS):
    _routes(_section)
