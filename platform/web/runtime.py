"""The runtime pages clinicians and front desk use: an app's home, record lists, generated
forms and record pages.

Lists and record pages are rendered on the server from the same service calls as the API
(``RecordService``: grants, row filters, hidden fields), so a list opens as fast as the API
page it shows and works without scripts; ``ui/static/runtime-list.js`` adds the filter bar,
the column picker and "load more" on top. The create and edit pages hand the form
definition, the values and the caller's field access (computed here, with the permission
code) to ``ui/static/form.js``, which renders the form; saving goes through the record API.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from formloom.engines.apps.permissions import FormAccess
from formloom.engines.forms import FormSpec, label_text
from formloom.engines.forms.fields import (
    ComputedField,
    MultiselectField,
    RelationField,
    SectionField,
    SelectField,
    TableField,
    UserField,
)
from formloom.engines.forms.localtime import zone_name, zone_of
from formloom.engines.logic import LogicError, evaluate
from formloom.engines.logic.coercion import truthy
from formloom.platform import errors
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import BadRequest, Forbidden, Problem
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.models import SYSTEM_COLUMNS
from formloom.platform.permissions import guard
from formloom.platform.records import search
from formloom.platform.records.ids import is_id
from formloom.platform.records.related import RelatedReader, local_text
from formloom.platform.records.service import ListQuery, RecordService, iso, service_for
from formloom.platform.rules import zones
from formloom.platform.web import listing
from formloom.platform.web.listing import Shown, field_label, show
from formloom.platform.web.pages import render_page, signin_redirect

router = APIRouter(include_in_schema=False)

PAGE_ROWS = 100
RELATED_ROWS = 10
HOME_CAP = 10_000
DEFAULT_SORT = "-id"
#: Columns a list shows before the user picks their own.
DEFAULT_COLUMNS = 7


def clinic_zone(p: Platform) -> tzinfo:
    """The clinic's zone (``settings.timezone``): every time a page shows is on its clock."""
    return zone_of(p.settings.timezone)


def _shown(
    request: Request, p: Platform, installed: InstalledApp, titles: dict[str, str], **kw: Any
) -> Shown:
    lang = request_locale(request)
    t = Translator(lang)
    return Shown(
        lang=lang,
        app=installed.key,
        titles=titles,
        forms=installed.forms,
        yes=t("Yes"),
        no=t("No"),
        signature=t("Signature"),
        signed=t("Signed"),
        someone=t("Someone else"),
        **{"zone": clinic_zone(p), **kw},
    )


async def _problem_page(request: Request, who: Principal, problem: Problem) -> HTMLResponse:
    """A refusal as a page. A 403 is audited as the API's error handler audits it (the
    page catches the problem before that handler would see it)."""
    if isinstance(problem, Forbidden) and problem.audit is not None:
        await errors.audit_refusal(request, problem.audit)
    response = render_page(request, "runtime/problem.html", who, problem=problem)
    response.status_code = problem.status
    return response


def _is_app_admin(who: Principal, app: str, installed: InstalledApp) -> bool:
    """Who gets the "Design" links: those the designer lets in, i.e. who may save forms —
    platform admins (or an admin's token scoped to the app) and the roles the app grants
    ``design``. Any other role (even one named "admin") is not enough: the form API refuses
    it, so the link would only lead to a 403."""
    return guard.may_design(who, app, installed.spec.design)


def _admits(access: FormAccess, action: str, record: dict[str, Any], now: datetime) -> bool:
    """Whether the caller's grants let them do ``action`` on this record (its row filter),
    to decide which buttons to offer; the API checks again on the request."""
    if not access.allows(action):
        return False
    rule = access.row_filter(action)
    if rule is None:
        return True
    values = {name: record.get(name) for name in SYSTEM_COLUMNS}
    try:
        return truthy(evaluate(rule, {**record["data"], **values}, now=now))
    except LogicError:
        return False


def _options(field: SelectField | MultiselectField, lang: str) -> list[dict[str, str]]:
    return [
        {"value": o.value, "label": label_text(o.label, lang) or o.value} for o in field.options
    ]


def _field_meta(field: Any, lang: str) -> dict[str, Any]:
    """What the filter bar needs to know about a field."""
    kind = field.result_type if isinstance(field, ComputedField) else field.field_type
    meta: dict[str, Any] = {"key": field.key, "label": field_label(field, lang), "type": kind}
    if isinstance(field, SelectField | MultiselectField):
        meta["options"] = _options(field, lang)
    if isinstance(field, RelationField):
        meta["target"] = field.target
    if isinstance(field, UserField) and field.multiple:
        meta["type"] = "users"  # a list of people: "has" one, as a multiselect
    return meta


def _app_meta(installed: InstalledApp, records: RecordService, lang: str) -> dict[str, Any]:
    """The app as form.js's relation pickers need it: the caller's readable forms."""

    def hidden_of(form: str) -> frozenset[str] | None:
        access = records.access(installed, form)
        return access.hidden if access.allows("read") else None

    return listing.forms_meta(installed, lang, hidden_of)


def form_document(installed: InstalledApp, form: str, hidden: frozenset[str]) -> dict[str, Any]:
    """The form's definition as written in the app (hidden fields left out)."""
    document: dict[str, Any] = next(f for f in installed.document["forms"] if f.get("key") == form)
    if not hidden:
        return document
    return {**document, "fields": [f for f in document["fields"] if f.get("key") not in hidden]}


def _has_datetime(spec: FormSpec, hidden: frozenset[str]) -> bool:
    """Whether the caller sees a datetime field of the form (top level or a table's)."""
    for field in spec.fields:
        if field.key in hidden:
            continue
        if field.field_type == "datetime":
            return True
        if isinstance(field, TableField) and any(c.field_type == "datetime" for c in field.fields):
            return True
    return False


def access_map(spec: FormSpec, access: FormAccess) -> dict[str, str]:
    """Field key -> "hidden" | "read" (absent: "write"), as form.js takes it."""
    found: dict[str, str] = {}
    for field in spec.fields:
        if field.key in access.hidden:
            found[field.key] = "hidden"
        elif field.key in access.read_only:
            found[field.key] = "read"
    return found


# -- the app's home -------------------------------------------------------------------------


@router.get("/apps/{app}", response_model=None, include_in_schema=False)
async def app_home(app: str, request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """The forms of an app the caller may read, with their record counts, and dashboards."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            records = service_for(p, session, who)
            records.require_app(app)
            installed = await p.catalog.get(session, app)
            guard.require_member(who, app)
            forms = []
            for spec in installed.spec.forms:
                access = records.access(installed, spec.key)
                if not access.allows("read"):
                    continue
                # counted up to a cap: a form with millions of records says "10,000+"
                count, more = await listing.capped_count(records, app, spec.key, None, HOME_CAP)
                forms.append(
                    {
                        "key": spec.key,
                        "label": label_text(spec.label, lang),
                        "description": label_text(spec.description, lang)
                        if spec.description
                        else "",
                        "count": count,
                        "more": more,
                        "can_create": access.allows("create"),
                    }
                )
    except Problem as problem:
        return await _problem_page(request, who, problem)
    return render_page(
        request,
        "runtime/app.html",
        who,
        app={"key": app, "label": label_text(installed.spec.label, lang)},
        description=label_text(installed.spec.description, lang)
        if getattr(installed.spec, "description", None)
        else "",
        forms=forms,
        dashboards=[
            {"key": d.key, "label": label_text(d.label, lang)} for d in installed.spec.dashboards
        ],
        design=_is_app_admin(who, app, installed),
    )


# -- lists -----------------------------------------------------------------------------------


async def _list_context(
    request: Request, p: Platform, who: Principal, app: str, form: str, params: ListParams
) -> dict[str, Any]:
    filter, sort, cursor, drill, limit, q = (
        params.filter,
        params.sort,
        params.cursor,
        params.drill,
        params.limit,
        params.q,
    )
    lang = request_locale(request)
    zone = clinic_zone(p)
    parsed_drill = listing.parse_drill(drill, form)
    bad_filter: str | None = None
    try:
        rule = listing.parse_json_param(filter, "filter")
    except BadRequest as problem:  # said on the page, like a filter the API refuses
        rule, filter, bad_filter = {"==": [1, 0]}, None, problem.detail
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        records.require_app(app)
        # the reader's order, else the form's own (its definition's `sort`), else newest first
        default_sort = (await p.catalog.latest_known(session, app)).form(form).sort or DEFAULT_SORT
        sort = sort or default_sort
        condition, capped = await listing.combined_filter(records, app, parsed_drill, rule)
        limit = max(1, min(limit or PAGE_ROWS, records.max_page_size))
        error = None
        try:
            page = await records.list(
                app,
                form,
                ListQuery(filter=condition, sort=sort, limit=limit, cursor=cursor, q=q),
            )
        except BadRequest as problem:
            if not (filter or sort != default_sort or cursor or q):
                raise
            # the caller's own filter or sort is refused: say why on the page (and audit a
            # probe of hidden fields as the API does)
            error = problem.detail
            page = None
            if problem.audit is not None:
                records.audit_after_success(outcome="denied", **problem.audit)
        # the definition the list has just read (no second query for it)
        installed = await p.catalog.latest_known(session, app)
        spec = installed.form(form)
        access = records.allowed(installed, form, "read")
        if bad_filter is not None:
            error, page = bad_filter, None
        count, more_than = 0, False
        titles: dict[str, str] = {}
        if page is not None:
            if cursor is None:
                # One page says it all when there is no next one. Otherwise a drill-down
                # (whose related ids only the server knows) is counted here, up to a cap;
                # a plain list says "100+" and the page asks the API for the exact figure
                # once it is shown, so the list opens as fast as the API page.
                count, more_than = len(page.items), page.next_cursor is not None
                if more_than and parsed_drill is not None:
                    count, more_than = await listing.capped_count(records, app, form, condition)
            titles = await listing.titles_for(
                records, installed, spec, [i["data"] for i in page.items], lang, zone
            )
        # each row's zone (its branch's, platform/rules/zones.py): one query for the page
        row_zones = await zones.record_zones(
            session, installed, form, [i["data"] for i in page.items] if page else [],
            zone_name(zone),
        )  # fmt: skip
        app_meta = _app_meta(installed, records, lang)
    ctx = _shown(request, p, installed, titles)
    fields = listing.listed_fields(spec, access.hidden)
    title_key = app_meta["forms"].get(form, {}).get("title_field")
    title_field = spec.field(title_key) if title_key else None
    t = Translator(lang)
    columns = [
        {
            "key": f.key,
            "label": field_label(f, lang),
            "type": f.field_type,
            "sortable": f.field_type not in ("multiselect", "file", "image", "signature"),
            "default": i < DEFAULT_COLUMNS
            and f.field_type not in ("textarea", "richtext")
            and f.key != title_key,
        }
        for i, f in enumerate(fields)
    ]
    columns += [
        {"key": key, "label": t(text), "type": "system", "sortable": True, "default": False}
        for key, text in listing.SYSTEM_LABELS.items()
    ]
    extra = list(listing.SYSTEM_LABELS)
    renders = [(f.key, listing.renderer(f, ctx)) for f in fields]
    page_items: list[dict[str, Any]] = page.items if page is not None else []
    # on a phone the rows are cards: the title, two summary fields and the status
    card = listing.card_of(spec, access.hidden).roles()
    unbroken = frozenset(f.key for f in fields if f.field_type in listing.UNBROKEN)
    names = listing.actor_namer(installed, lang)
    layout: dict[str, Any] = {"card": card, "unbroken": unbroken, "actor_name": names}
    write = listing.row_writer(app, form, renders, extra, zone, **layout)
    writers: dict[str, tuple[Any, tzinfo, bool]] = {zone_name(zone): (write, zone, False)}

    def writer_for(name: str) -> tuple[Any, tzinfo, bool]:
        """The row writer of rows in zone ``name``: a zone other than the deployment's is
        named in each time of the row (a list may mix branches in several zones)."""
        if name not in writers:
            own = zone_of(name)
            shown = replace(ctx, zone=own, named=True)
            own_renders = [(f.key, listing.renderer(f, shown)) for f in fields]
            own_write = listing.row_writer(app, form, own_renders, extra, own, True, **layout)
            writers[name] = (own_write, own, True)
        return writers[name]

    rows = []
    for item, name in zip(page_items, row_zones, strict=True):
        row_write, row_zone, named = writer_for(name)
        title = listing.record_title(spec, item["data"], lang, item["id"], row_zone, named=named)
        rows.append(row_write(item, title))
    filter_fields = [
        _field_meta(f, lang) for f in spec.value_fields() if f.key not in access.hidden
    ]
    filter_fields = [
        m for m in filter_fields if m["type"] not in ("table", "file", "image", "signature")
    ]
    filter_fields += [
        {"key": "created_at", "label": t("Created"), "type": "datetime"},
        {"key": "updated_at", "label": t("Updated"), "type": "datetime"},
        {"key": "created_by", "label": t("Created by"), "type": "text"},
    ]
    next_cursor = page.next_cursor if page is not None else None
    base = {k: v for k, v in (("q", q), ("filter", filter), ("sort", sort), ("drill", drill)) if v}
    if limit != PAGE_ROWS:
        base["limit"] = str(limit)
    if base.get("sort") == default_sort:
        base.pop("sort")
    return {
        "app": app_meta,
        "form": {"key": form, "label": label_text(spec.label, lang)},
        "columns": columns,
        "rows": rows,
        # one string for the template (rows are written escaped by listing.row_writer)
        "rows_html": Markup("\n".join(rows)),
        "count": count,
        "more_than": more_than,
        "paged": cursor is not None,
        "next_cursor": next_cursor,
        "next_href": f"?{urlencode({**base, 'cursor': next_cursor})}" if next_cursor else None,
        "first_href": f"?{urlencode(base)}" if base else "?",
        "sort": sort,
        "title_sort": title_key
        if title_field is not None
        and title_field.field_type not in ("multiselect", "file", "image")
        else None,
        "filter": filter or "",
        "q": q or "",
        "search_fields": [
            field_label(f, lang)
            for key, _kind in search.search_fields(spec)
            if key not in access.hidden and (f := spec.field(key)) is not None
        ],
        "drill": drill or "",
        "error": error,
        "capped": listing.MAX_RELATED_IDS if capped else None,
        "can_create": access.allows("create"),
        "can_export": access.allows("export"),
        "design": _is_app_admin(who, app, installed),
        "filter_fields": filter_fields,
        "export_href": f"/api/exports/{app}/{form}?{urlencode(base)}",
        "sort_href": lambda key: (
            "?" + urlencode({**base, "sort": key if sort != key else f"-{key}"})
        ),
        "user_key": who.username,
        "title_key": title_key if title_key not in access.hidden else None,
    }


def show_time(value: str, zone: tzinfo | None = None, named: bool = False) -> Markup:
    """A stored instant on the clinic's clock (``zone``; ``named``: a record's own zone
    other than the deployment's, named), for a template."""
    return Markup(listing.time_html(value, zone, named))


FilterParam = Annotated[str | None, Query(description="JsonLogic filter, as JSON")]
SortParam = Annotated[
    str | None, Query(description="e.g. `-created_at,name`; absent: the form's own order")
]
CursorParam = Annotated[str | None, Query(description="A page cursor")]
DrillParam = Annotated[str | None, Query(description="A drill-down from a report cell")]
LimitParam = Annotated[int | None, Query(description="Rows per page")]
SearchParam = Annotated[str | None, Query(description="A quick-search term")]


@dataclass(frozen=True)
class ListParams:
    """The query of a list page and of its "load more" rows."""

    filter: str | None
    sort: str | None
    cursor: str | None
    drill: str | None
    limit: int | None
    q: str | None = None


def _list_params(
    filter: FilterParam = None,
    sort: SortParam = None,
    cursor: CursorParam = None,
    drill: DrillParam = None,
    limit: LimitParam = None,
    q: SearchParam = None,
) -> ListParams:
    return ListParams(filter, sort, cursor, drill, limit, q)


ListParamsDep = Annotated[ListParams, Depends(_list_params)]


@router.get("/apps/{app}/forms/{form}", response_model=None, include_in_schema=False)
@router.get("/apps/{app}/records/{form}", response_model=None, include_in_schema=False)
async def list_page(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    params: ListParamsDep,
) -> Response:
    """A form's records: the caller's columns, sorting, a filter bar, "load more", CSV.
    ``/apps/{app}/records/{form}`` (report drill-downs link there) is the same page."""
    if not who.authenticated:
        return signin_redirect(request)
    try:
        context = await _list_context(request, p, who, app, form, params)
    except Problem as problem:
        return await _problem_page(request, who, problem)
    return render_page(request, "runtime/list.html", who, **context)


@router.get("/apps/{app}/forms/{form}/rows", response_model=None, include_in_schema=False)
async def list_rows(
    app: str,
    form: str,
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    params: ListParamsDep,
) -> Response:
    """The rows of one more page, as HTML for "load more"; the cursor of the page after it
    comes in ``X-Next-Cursor`` (absent on the last page)."""
    context = await _list_context(request, p, who, app, form, params)
    if context["error"]:
        raise BadRequest(context["error"])
    response = render_page(request, "runtime/rows.html", who, **context)
    if context["next_cursor"]:
        response.headers["X-Next-Cursor"] = context["next_cursor"]
    return response


# -- generated forms --------------------------------------------------------------------------


async def _form_page(
    request: Request,
    p: Platform,
    who: Principal,
    app: str,
    form: str,
    record_id: str | None,
) -> Response:
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        async with p.db.transaction(write=False) as session:
            records = service_for(p, session, who)
            installed, spec = await records.load_form(app, form)
            record: dict[str, Any] | None = None
            if record_id is None:
                access = records.allowed(installed, form, "create")
            else:
                access = records.allowed(installed, form, "update")
                found = await records.get(app, form, record_id)
                record = records.view(found)
                if not _admits(access, "update", record, records.now):
                    raise Forbidden("Your roles do not allow you to change this record.")
            # "+ New" from a record's related list: `?patient=<id>` fills that relation
            prefill = {
                key: value
                for key, value in request.query_params.items()
                if record is None
                and isinstance(spec.field(key), RelationField)
                and key not in access.hidden
                and is_id(value)
            }
            values = record["data"] if record else prefill
            titles = await listing.titles_for(
                records, installed, spec, [values], lang, clinic_zone(p)
            )
            app_meta = _app_meta(installed, records, lang)
            typed_in = await _typing_zone(session, installed, form, record, who, p)
    except Problem as problem:
        return await _problem_page(request, who, problem)
    data = {
        "form": form_document(installed, form, access.hidden),
        "values": values,
        "access": access_map(spec, access),
        "app": app_meta,
        "mode": "edit" if record else "create",
        "now": iso(p.clock.now()),
        "titles": titles,
        "record": None
        if record is None
        else {
            "id": record["id"],
            "version": record["version"],
            "updated_by": record["updated_by"],
            "updated_at": record["updated_at"],
        },
    }
    form_label = label_text(spec.label, lang)
    title = (
        listing.record_title(spec, record["data"], lang, record["id"], clinic_zone(p))
        if record
        else None
    )
    return render_page(
        request,
        "runtime/form.html",
        who,
        app=app_meta,
        form={"key": form, "label": form_label},
        record=record,
        record_title=title,
        page_data=data,
        # a form where times are typed says on whose clock (form-values.js reads them so)
        zoned=_has_datetime(spec, access.hidden),
        timezone=typed_in,
    )


async def _typing_zone(
    session: Any,
    installed: Any,
    form: str,
    record: dict[str, Any] | None,
    who: Principal,
    p: Platform,
) -> str:
    """On whose clock a form's times are typed and shown: a record's own zone (its
    branch's, docs/time-zones.md); for a new record, the zone of the related record the
    user's attribute of the same name points at (a user's ``branch``: the branch the
    clinic's rules give what they register), else the deployment's."""
    home = p.settings.timezone
    source = zones.source_of(installed)
    if source is None or source.target_of(form) is None:
        return home
    data = record["data"] if record is not None else None
    if data is None:
        mine = who.attributes.get(source.relation)
        data = {source.relation: mine} if isinstance(mine, str) else {}
    return await zones.record_zone(session, installed, form, data, home)


@router.get("/apps/{app}/forms/{form}/new", response_model=None, include_in_schema=False)
async def new_page(
    app: str, form: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    return await _form_page(request, p, who, app, form, None)


@router.get(
    "/apps/{app}/forms/{form}/{record_id}/edit", response_model=None, include_in_schema=False
)
async def edit_page(
    app: str, form: str, record_id: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    return await _form_page(request, p, who, app, form, record_id)


# -- the record page ----------------------------------------------------------------------------


def _related_card(
    installed: InstalledApp,
    group: dict[str, Any],
    lang: str,
    zone: tzinfo,
    access: FormAccess,
    own_zones: list[str] | None = None,
) -> dict[str, Any]:
    """A one-hop group of ``RelatedReader`` (records of a form pointing at this record) as
    the page's card shows it, with "View all" and "+ New" prefilled with this record; an
    item in a zone of its own (``own_zones``, e.g. its branch's) shows its times there,
    named."""
    home = zone_name(zone)
    own = own_zones or [home] * len(group["items"])
    clocks = [(zone_of(name), True) if name != home else (zone, False) for name in own]
    other = installed.form(group["form"])
    field = other.field(group["path"][0]["field"])
    rule = group["list_filter"]
    return {
        "form": other.key,
        "label": label_text(other.label, lang),
        "via": field_label(field, lang) if field is not None else group["path"][0]["label"],
        "count": group["count"],
        "can_create": access.allows("create"),
        "field": group["path"][0]["field"],
        "all_href": f"/apps/{installed.key}/forms/{other.key}?"
        + urlencode({"filter": json.dumps(rule, separators=(",", ":"))}),
        "items": [
            {
                "id": item["record"]["id"],
                "title": listing.record_title(
                    other, item["record"]["data"], lang, item["record"]["id"], clock, named=named
                ),
                "updated_at": show_time(item["record"]["updated_at"], clock, named),
            }
            for item, (clock, named) in zip(group["items"], clocks, strict=True)
        ],
    }


def _history_rows(
    spec: FormSpec,
    entries: list[dict[str, Any]],
    ctx: Shown,
    lang: str,
    actor_name: Callable[[str | None], str],
) -> list[dict[str, Any]]:
    """The record's versions, newest first, each with who made it in the reader's words
    (a rule by its label, listing.actor_namer) and what it changed, old and new values."""
    rows = []
    previous: dict[str, Any] = {}
    for entry in entries:
        data = entry["data"]
        changes = []
        for key in entry["changed"]:
            field = spec.field(key)
            if field is None or isinstance(field, SectionField):
                continue
            simple = not isinstance(field, TableField)
            changes.append(
                {
                    "key": key,
                    "label": field_label(field, lang),
                    "old": show(field, previous.get(key), ctx) if simple else None,
                    "new": show(field, data.get(key), ctx) if simple else None,
                    "created": entry["operation"] == "create",
                }
            )
        at_html = show_time(entry["at"], ctx.zone, ctx.named)
        rows.append(
            {
                **entry,
                "changes": changes,
                "at_html": at_html,
                "actor_name": actor_name(entry.get("actor")),
            }
        )
        previous = data
    rows.reverse()
    return rows


def _timeline_rows(around: dict[str, Any], lang: str) -> list[dict[str, Any]]:
    """The record's timeline (``RelatedReader.around``) as the page shows it: each time on
    the clinic's clock, tasks, flows and messages with their state."""
    t = Translator(lang)
    kinds = {"task": t("Task"), "flow": t("Flow"), "message": t("Message")}
    states = {
        **{task["id"]: task["status"] for task in around["tasks"]},
        **{flow["id"]: flow["status"] for flow in around["flows"]},
        **{message["id"]: message["status"] for message in around["messages"]},
    }
    channels = {message["id"]: message["channel"] for message in around["messages"]}
    clock = zone_of(around["zone"])
    return [
        {
            **entry,
            "kind_label": entry["form_label"] or kinds.get(entry["kind"], entry["kind"]),
            "time_text": local_text(entry["at"], clock),
            "status": states.get(entry["id"]) if entry["kind"] != "record" else None,
            "channel": channels.get(entry["id"]),
        }
        for entry in around["timeline"]
    ]


@router.get("/apps/{app}/forms/{form}/{record_id}", response_model=None, include_in_schema=False)
async def record_page(
    app: str, form: str, record_id: str, request: Request, p: PlatformDep, who: PrincipalDep
) -> Response:
    """One record: its readable fields by section, the records that point at it, and its
    history."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    zone = clinic_zone(p)
    try:
        async with p.db.transaction(write=False) as session:
            records = service_for(p, session, who)
            installed, spec = await records.load_form(app, form)
            access = records.allowed(installed, form, "read")
            record = records.view(await records.get(app, form, record_id))
            history = await records.history(app, form, record_id)
            # the records pointing at this one (one and two hops) and the timeline, in one
            # query per relation path (platform/records/related.py)
            around = await RelatedReader(
                records, locale=lang, zone=p.settings.timezone, group_size=RELATED_ROWS
            ).around(installed, spec, record)
            home = zone_name(zone)
            related = []
            for group in around["groups"]:
                if len(group["path"]) != 1:
                    continue
                # each related record's own zone (its branch's): one query per group
                own = await zones.record_zones(
                    session, installed, group["form"],
                    [item["record"]["data"] for item in group["items"]], home,
                )  # fmt: skip
                access_there = records.access(installed, group["form"])
                related.append(_related_card(installed, group, lang, zone, access_there, own))
            snapshots = [record["data"], *[entry["data"] for entry in history]]
            titles = await listing.titles_for(records, installed, spec, snapshots, lang, zone)
            # the record's own zone: its times are shown there, named, when it is not ours
            own_zone = await zones.record_zone(session, installed, form, record["data"], home)
            app_meta = _app_meta(installed, records, lang)
    except Problem as problem:
        return await _problem_page(request, who, problem)
    named = own_zone != home
    if named:
        zone = zone_of(own_zone)
    ctx = _shown(request, p, installed, titles, record_id=record_id, zone=zone, named=named)
    actor_name = listing.actor_namer(installed, lang)
    groups = []
    for section, fields in listing.sections(spec, access.hidden):
        groups.append(
            {
                "key": section.key if section else "",
                "label": field_label(section, lang) if section else "",
                "fields": [
                    {
                        "key": f.key,
                        "label": field_label(f, lang),
                        "type": f.field_type,
                        "wide": isinstance(f, TableField)
                        or f.field_type in ("textarea", "richtext", "signature"),
                        "width": f.width,
                        "html": show(f, record["data"].get(f.key), ctx),
                        "empty": record["data"].get(f.key) in (None, "", []),
                    }
                    for f in fields
                ],
            }
        )
    return render_page(
        request,
        "runtime/record.html",
        who,
        app=app_meta,
        form={"key": form, "label": label_text(spec.label, lang), "layout": spec.layout},
        record=record,
        record_title=listing.record_title(spec, record["data"], lang, record_id, zone, named=named),
        groups=groups,
        related=related,
        deep_related=[
            {
                **group,
                "all_href": f"/apps/{app}/forms/{group['form']}?"
                + urlencode({"filter": json.dumps(group["list_filter"], separators=(",", ":"))})
                if group["list_filter"] is not None
                else None,
            }
            for group in around["groups"]
            if len(group["path"]) == 2
        ],
        timeline=_timeline_rows(around, lang),
        timeline_zone=around["zone"],
        left_out=around["left_out"],
        history=_history_rows(spec, history, ctx, lang, actor_name),
        created_by=actor_name(record["created_by"]),
        updated_by=actor_name(record["updated_by"]),
        can_edit=_admits(access, "update", record, p.clock.now()),
        can_delete=_admits(access, "delete", record, p.clock.now()),
        created_at=show_time(record["created_at"], zone, named),
        updated_at=show_time(record["updated_at"], zone, named),
    )
