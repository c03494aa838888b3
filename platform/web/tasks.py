"""The task inbox and the task page: where people do the work flows and rules hand them.

* ``/tasks`` — the caller's inbox in three tabs (*assigned to me*, *claimable by my roles*,
  *done*), filtered by app and due window (today, this week, overdue; on the clinic's clock),
  paged by the API's keyset cursor; ``/tasks/rows`` answers the next page as HTML rows
  (``X-Next-Cursor``) for "load more". Beside it, the caller's in-app notifications.
* ``/tasks/{id}`` — one task: its record in the step's form (only the step's ``edit`` fields
  are inputs, the rest read-only, hidden fields absent), outcomes, claim / unclaim / return /
  delegate, and the flow's timeline in business words.

Invariants: every read goes through the inbox API's own functions (``list_tasks``,
``get_task``, ``get_instance`` of ``platform/flows/endpoints.py``), so a page shows exactly what
the API shows the caller — someone else's task is the API's 404. Every action is the API's
(``/api/tasks/{id}/...``), called by ``ui/static/task.js``; the pages only read. Times are on the
clinic's clock (``settings.timezone``), never UTC stamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select

from formloom.engines.forms import label_text
from formloom.engines.forms.localtime import zone_name, zone_of
from formloom.platform.apps.service import InstalledApp
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import NotFound, Problem
from formloom.platform.flows.endpoints import get_instance, get_task, list_tasks
from formloom.platform.i18n import Translator, request_locale
from formloom.platform.models.auth import User, UserRole
from formloom.platform.models.automation import Notification, Task
from formloom.platform.records.cursor import encode
from formloom.platform.records.ids import is_id
from formloom.platform.records.service import ListQuery, iso, service_for
from formloom.platform.rules import zones
from formloom.platform.web import listing
from formloom.platform.web.pages import render_page, signin_redirect
from formloom.platform.web.runtime import clinic_zone, form_document

router = APIRouter(include_in_schema=False)

#: Rows per page of the inbox.
PAGE_ROWS = 25
#: Notifications shown beside the inbox (newest first).
NOTES_SHOWN = 20
Tab = Literal["assigned", "claimable", "done"]
Due = Literal["", "today", "week", "overdue"]
#: tab -> (the API's scope, status, sort)
Scope = Literal["assigned", "claimable", "mine"]
TABS: dict[str, tuple[Scope, Literal["open", "done"], Literal["due", "-created"]]] = {
    "assigned": ("assigned", "open", "due"),
    "claimable": ("claimable", "open", "due"),
    "done": ("mine", "done", "-created"),
}
#: Flow events the timeline leaves out: the engine's bookkeeping, not anyone's doing.
QUIET_EVENTS = frozenset(
    {"node_entered", "step_completed", "timer_armed", "timer_cancelled", "actions_planned",
     "timer_fired", "record_changed", "task_done", "subflow_ended"}
)  # fmt: skip


# -- due times in words ----------------------------------------------------------------------


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def due_words(due: datetime | None, now: datetime, zone: tzinfo, t: Translator) -> str:
    """``today 15:00``, ``tomorrow 09:00``, ``Mon 12-07 09:00``, ``overdue 2 days`` — on the
    clinic's clock, counted in its calendar days."""
    if due is None:
        return t("No due time")
    local = due.astimezone(zone)
    today = now.astimezone(zone).date()
    clock = local.strftime("%H:%M")
    if due < now:
        days = (today - local.date()).days
        if days <= 0:
            return t("overdue since {time}", time=clock)
        return t("overdue 1 day") if days == 1 else t("overdue {n} days", n=days)
    if local.date() == today:
        return t("today {time}", time=clock)
    if local.date() == today + timedelta(days=1):
        return t("tomorrow {time}", time=clock)
    shown = local.strftime("%m-%d") if local.year == today.year else local.strftime("%Y-%m-%d")
    return f"{shown} {clock}"


def _local_text(moment: datetime | None, zone: tzinfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def due_window(due: str, now: datetime, zone: tzinfo) -> tuple[datetime, datetime] | None:
    """The clinic's today or this week (Monday to Sunday) as UTC instants."""
    if due not in ("today", "week"):
        return None
    today = now.astimezone(zone).date()
    first = today if due == "today" else today - timedelta(days=today.weekday())
    last = first + timedelta(days=1 if due == "today" else 7)

    def start_of(day: date) -> datetime:
        return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)

    return start_of(first), start_of(last)


# -- the inbox ---------------------------------------------------------------------------------


@dataclass
class InboxPage:
    rows: list[dict[str, Any]]
    next_cursor: str | None
    counts: dict[str, int]


async def _record_titles(
    p: Platform, who: Principal, items: list[dict[str, Any]], lang: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Record id -> "Form · title" for the tasks' records the caller may read (one list call
    per form, through their grants, as the record API reads them), and record id -> the
    record's own zone where the app gives its records one (their branch's) and it is not
    the deployment's (one query per form, platform/rules/zones.py)."""
    wanted: dict[tuple[str, str], set[str]] = {}
    for item in items:
        if item.get("form") and item.get("record_id"):
            wanted.setdefault((item["app"], item["form"]), set()).add(item["record_id"])
    titles: dict[str, str] = {}
    own: dict[str, str] = {}
    if not wanted:
        return titles, own
    zone = clinic_zone(p)
    home = zone_name(zone)
    async with p.db.transaction(write=False) as session:
        records = service_for(p, session, who)
        for (app, form), ids in sorted(wanted.items()):
            try:
                installed = await p.catalog.get(session, app)
            except NotFound:
                continue
            spec = installed.forms.get(form)
            if spec is None or not records.access(installed, form).allows("read"):
                continue
            page = await records.list(
                app, form, ListQuery(filter={"in": [{"var": "id"}, sorted(ids)]}, limit=len(ids))
            )
            form_label = label_text(spec.label, lang)
            names = await zones.record_zones(
                session, installed, form, [item["data"] for item in page.items], home
            )
            for item, name in zip(page.items, names, strict=True):
                named = name != home
                title = listing.record_title(
                    spec, item["data"], lang, item["id"], zone_of(name) if named else zone,
                    named=named,
                )  # fmt: skip
                titles[item["id"]] = f"{form_label} · {title}"
                if named:
                    own[item["id"]] = name
    return titles, own


async def _labels(p: Platform, apps: set[str], lang: str) -> dict[str, dict[str, Any]]:
    """app -> {"label", "steps": {(flow, node): label}, "outcomes": {(flow, node, key): label}}."""
    found: dict[str, dict[str, Any]] = {}
    async with p.db.transaction(write=False) as session:
        for app in sorted(apps):
            try:
                installed = await p.catalog.get(session, app)
            except NotFound:
                continue
            found[app] = _app_labels(installed, lang)
    return found


def _app_labels(installed: InstalledApp, lang: str) -> dict[str, Any]:
    steps: dict[tuple[str, str], str] = {}
    for flow in installed.spec.flows:
        for node in flow.nodes:
            steps[(flow.key, node.key)] = label_text(node.label, lang) or node.key
    flows = {flow.key: label_text(flow.label, lang) or flow.key for flow in installed.spec.flows}
    return {"label": label_text(installed.spec.label, lang) or installed.key, "steps": steps,
            "flows": flows}  # fmt: skip


def _outcome_label(task: dict[str, Any], key: str | None, lang: str, t: Translator) -> str:
    for outcome in task.get("outcomes") or []:
        if outcome.get("key") == key:
            return label_text(outcome.get("label"), lang) or (
                t("Done") if key == "done" else str(key)
            )
    return t("Done") if key in (None, "done") else str(key)


async def inbox_page(
    p: Platform,
    who: Principal,
    *,
    tab: str,
    app: str | None,
    due: str,
    cursor: str | None,
    lang: str,
) -> InboxPage:
    """One page of a tab, as rows ready for the template."""
    scope, status, sort = TABS[tab]
    now = p.clock.now()
    zone = clinic_zone(p)
    window = due_window(due, now, zone) if status == "open" else None
    if window is not None and cursor is None:
        # start the keyset at the window's first instant: the API's own cursor, made here
        secret = p.settings.cursor_secret.get_secret_value()
        cursor = encode("tasks-due", [window[0].isoformat(), ""], secret=secret)
    answer = await list_tasks(
        p, who, app=app or None, status=status, scope=scope,
        overdue=due == "overdue" and status == "open", sort=sort, limit=PAGE_ROWS, cursor=cursor,
    )  # fmt: skip
    items: list[dict[str, Any]] = list(answer["items"])
    following: str | None = answer["next_cursor"]
    if status == "done":
        # the API's "mine" also has tasks a colleague finished without claiming them (they
        # were our roles'); Done is what the caller did
        items = [i for i in items if i["completed_by"] == who.username]
    if window is not None:
        inside = [i for i in items if (d := _instant(i["due"])) is not None and d < window[1]]
        if len(inside) < len(items):
            following = None
        items = inside
    t = Translator(lang)
    titles, own = await _record_titles(p, who, items, lang)
    labels = await _labels(p, {i["app"] for i in items}, lang)
    rows = []
    for item in items:
        app_labels = labels.get(item["app"], {"label": item["app"], "steps": {}, "flows": {}})
        due_at = _instant(item["due"])
        done_at = _instant(item["completed_at"])
        # on the record's own clock where it has one (its branch's), named
        named = own.get(item["record_id"] or "")
        clock = zone_of(named) if named else zone
        suffix = f" ({named})" if named else ""
        rows.append(
            {
                "id": item["id"],
                "title": item["title"],
                "record": titles.get(item["record_id"] or "", ""),
                "app": app_labels["label"],
                "step": app_labels["steps"].get((item["flow"], item["node"]), ""),
                "due": due_words(due_at, now, clock, t) + suffix if status == "open" else "",
                "due_full": _local_text(due_at, clock),
                "zone": named or zone_name(zone),
                "due_iso": item["due"] or "",
                "overdue": bool(item["overdue"]),
                "claimable": item["assignee"] is None and status == "open",
                "done": status == "done",
                "done_at": _local_text(done_at, clock) + suffix,
                "outcome": _outcome_label(item, item["outcome"], lang, t) if done_at else "",
            }
        )
    return InboxPage(rows, following, answer["counts"].model_dump())


async def _notes(p: Platform, who: Principal) -> tuple[list[dict[str, Any]], int]:
    """The caller's newest notifications, each linked to their open task on its record (if
    they have one) or to the record, and how many are unread."""
    if who.user_id is None:
        return [], 0
    zone = clinic_zone(p)
    async with p.db.transaction(write=False) as session:
        mine = select(Notification).where(Notification.user_id == who.user_id)
        if who.app_scope is not None:
            mine = mine.where(Notification.app == who.app_scope)
        rows = list(
            (await session.scalars(mine.order_by(Notification.id.desc()).limit(NOTES_SHOWN))).all()
        )
        unread = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.user_id == who.user_id, Notification.read_at.is_(None))
            .where(*([Notification.app == who.app_scope] if who.app_scope else []))
        )
        record_ids = sorted({r.record_id for r in rows if r.record_id})
        tasks: dict[str, str] = {}
        if record_ids:
            found = await session.execute(
                select(Task.record_id, Task.id).where(
                    Task.record_id.in_(record_ids),
                    Task.status == "open",
                    Task.assignee == who.username,
                )
            )
            tasks = {record_id: task_id for record_id, task_id in found.all() if record_id}
    notes = []
    for row in rows:
        href = None
        if row.record_id and row.record_id in tasks:
            href = f"/tasks/{tasks[row.record_id]}"
        elif row.record_id and row.form:
            href = f"/apps/{row.app}/forms/{row.form}/{row.record_id}"
        notes.append(
            {
                "id": row.id,
                "subject": row.subject or "",
                "body": row.body,
                "href": href,
                "unread": row.read_at is None,
                "at": _local_text(row.created_at, zone),
                "at_iso": iso(row.created_at),
            }
        )
    return notes, int(unread or 0)


def _query(tab: str, app: str | None, due: str, **extra: str) -> str:
    values = {"tab": tab, "app": app or "", "due": due, **extra}
    return urlencode({k: v for k, v in values.items() if v})


async def _problem(request: Request, who: Principal, problem: Problem) -> HTMLResponse:
    response = render_page(request, "runtime/problem.html", who, problem=problem)
    response.status_code = problem.status
    return response


TabParam = Annotated[Tab, Query()]
DueParam = Annotated[Due, Query()]
AppParam = Annotated[str | None, Query(max_length=63)]
CursorParam = Annotated[str | None, Query(max_length=2000)]


@router.get("/tasks", response_model=None)
async def inbox(
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    tab: TabParam = "assigned",
    app: AppParam = None,
    due: DueParam = "",
    completed: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The inbox: a tab of tasks, the filters, and the notifications beside it."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        page = await inbox_page(p, who, tab=tab, app=app, due=due, cursor=None, lang=lang)
    except Problem as problem:
        return await _problem(request, who, problem)
    notes, unread = await _notes(p, who)
    confirmation = None
    if completed and is_id(completed):
        try:
            done = await get_task(completed, p, who)
            confirmation = done["title"] if done["status"] == "done" else None
        except Problem:
            confirmation = None
    async with p.db.transaction(write=False) as session:
        apps = []
        for key in sorted(who.roles):
            if who.holds(key):
                try:
                    installed = await p.catalog.get(session, key)
                except NotFound:
                    continue
                apps.append({"key": key, "label": label_text(installed.spec.label, lang) or key})
    tabs = [
        {"key": "assigned", "href": "/tasks?" + _query("assigned", app, due)},
        {"key": "claimable", "href": "/tasks?" + _query("claimable", app, due)},
        {"key": "done", "href": "/tasks?" + _query("done", app, "")},
    ]
    more = (
        "/tasks/rows?" + _query(tab, app, due, cursor=page.next_cursor)
        if page.next_cursor
        else None
    )
    return render_page(
        request,
        "tasks/inbox.html",
        who,
        tab=tab,
        tabs=tabs,
        app_filter=app or "",
        due=due,
        apps=apps,
        rows=page.rows,
        counts=page.counts,
        more=more,
        notes=notes,
        unread=unread,
        confirmation=confirmation,
    )


@router.get("/tasks/rows", response_model=None)
async def inbox_rows(
    request: Request,
    p: PlatformDep,
    who: PrincipalDep,
    tab: TabParam = "assigned",
    app: AppParam = None,
    due: DueParam = "",
    cursor: CursorParam = None,
) -> Response:
    """The next page of a tab as HTML rows; the page after's link in ``X-Next-Cursor``."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    try:
        page = await inbox_page(p, who, tab=tab, app=app, due=due, cursor=cursor, lang=lang)
    except Problem as problem:
        return await _problem(request, who, problem)
    response = render_page(request, "tasks/rows.html", who, rows=page.rows, tab=tab)
    if page.next_cursor:
        response.headers["X-Next-Cursor"] = "/tasks/rows?" + _query(
            tab, app, due, cursor=page.next_cursor
        )
    return response


# -- one task --------------------------------------------------------------------------------


def _timeline(
    events: list[dict[str, Any]],
    labels: dict[str, Any],
    flow: str | None,
    task: dict[str, Any],
    zone: tzinfo,
    lang: str,
    t: Translator,
) -> list[dict[str, str]]:
    """The flow's events as sentences people say (oldest first), the engine's bookkeeping
    left out."""
    steps: dict[tuple[str, str], str] = labels["steps"]
    flow_label = labels["flows"].get(flow or "", flow or "")
    shown = []
    for event in events:
        kind = event["kind"]
        if kind in QUIET_EVENTS:
            continue
        data = event.get("data") or {}
        step = steps.get((flow or "", event.get("node") or ""), event.get("node") or "")
        actor = event.get("actor") or ""
        person = actor if actor and actor != "flows" else t("the system")
        if kind == "started":
            text = t("{who} started {flow}", who=person, flow=flow_label)
        elif kind == "task_opened":
            text = t("Task “{step}” opened", step=step)
        elif kind == "task_claimed":
            text = t("{who} claimed “{step}”", who=person, step=step)
        elif kind == "task_unclaimed":
            text = t("{who} gave “{step}” back", who=person, step=step)
        elif kind == "task_delegated":
            text = t("{who} handed “{step}” to {to}", who=person, step=step, to=data.get("to", ""))
        elif kind == "task_completed":
            outcome = _outcome_label(task, data.get("outcome"), lang, t)
            person = data.get("actor") or person
            text = t("{who} completed “{step}”: {outcome}", who=person, step=step, outcome=outcome)
            if data.get("comment"):
                text += " — " + str(data["comment"])
        elif kind == "task_returned":
            text = t("{who} sent the work back", who=person)
            if data.get("comment"):
                text += " — " + str(data["comment"])
        elif kind == "task_reassigned":
            text = t("“{step}” moved to {to}", step=step, to=data.get("assignee") or t("the team"))
        elif kind == "task_reminded":
            text = t("Reminder sent for “{step}”", step=step)
        elif kind == "task_closed":
            text = t("“{step}” closed", step=step)
        elif kind == "record_set":
            text = t("{step}: the record was updated", step=step)
        elif kind == "message":
            text = t("Message received: {name}", name=data.get("name", ""))
        elif kind == "signer_added":
            text = t("{who} added a signer", who=person)
        elif kind == "subflow_started":
            text = t("{step}: a sub-flow started", step=step)
        elif kind == "cancel_requested":
            text = t("{who} cancelled the flow", who=person)
        elif kind == "instance_ended":
            text = t("The flow ended")
        else:
            text = step or kind.replace("_", " ")
        at = _instant(event.get("at"))
        shown.append({"at": _local_text(at, zone), "at_iso": event.get("at", ""), "text": text})
    return shown


async def _colleagues(p: Platform, app: str, me: str) -> list[dict[str, str]]:
    """Active people holding a role in ``app`` (not service accounts), for "hand over"."""
    async with p.db.transaction(write=False) as session:
        rows = await session.execute(
            select(User.username, User.display_name)
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                UserRole.app == app,
                User.disabled_at.is_(None),
                User.is_service.is_(False),
                User.username != me,
            )
            .distinct()
            .order_by(User.username)
        )
        return [{"username": u, "name": n or u} for u, n in rows.all()]


def _may_act(task: dict[str, Any], who: Principal) -> bool:
    """Whether the API would let the caller act on the open task (to offer the buttons; the
    API decides again)."""
    if task["status"] != "open":
        return False
    if who.is_admin:
        return True
    if task["assignee"] is not None:
        return bool(task["assignee"] == who.username)
    roles = who.roles_in(task["app"])
    candidates = task["candidates"]
    return who.username in candidates["users"] or bool(roles & set(candidates["roles"]))


def step_first(form: dict[str, Any], edit: list[str], t: Translator) -> dict[str, Any]:
    """The form with the step's fields first, under "This step", and the rest of the record
    after them, under "The record": what the task asks for is at the top of a long form.
    Only the order changes (every field stays, so conditions read what they read)."""
    fields = form.get("fields", [])
    first = [f for f in fields if f.get("key") in edit]
    if not first:
        return form
    rest = [f for f in fields if f.get("key") not in edit]
    heading = {"key": "__this_step", "type": "section", "label": t("This step")}
    record = {"key": "__the_record", "type": "section", "label": t("The record")}
    return {**form, "fields": [heading, *first, record, *rest]}


@router.get("/tasks/{task_id}", response_model=None)
async def task_page(task_id: str, request: Request, p: PlatformDep, who: PrincipalDep) -> Response:
    """One task: the record in the step's form, the outcomes, the flow's timeline."""
    if not who.authenticated:
        return signin_redirect(request)
    lang = request_locale(request)
    t = Translator(lang)
    zone = clinic_zone(p)
    now = p.clock.now()
    try:
        task = await get_task(task_id, p, who)
        instance = await get_instance(task["instance_id"], p, who) if task["instance_id"] else None
        async with p.db.transaction(write=False) as session:
            installed = await p.catalog.get(session, task["app"])
            records = service_for(p, session, who)
            record = task.get("record")
            spec = installed.forms.get(task["form"] or "") if record is not None else None
            form = None
            titles: dict[str, str] = {}
            access: dict[str, str] = {}
            home = zone_name(zone)
            own_zone = home
            if spec is not None and record is not None:
                values = {k: v for k, v in record.items() if k not in ("id", "version")}
                # the record's own clock (its branch's) where the app gives it one
                own_zone = await zones.record_zone(session, installed, spec.key, values, home)
                # what the API left out of the record: the step's hidden fields and, for a
                # reader of the form, the fields their grant hides (flows/endpoints.py)
                row = await session.get(Task, task["id"])
                hidden_set = set(((row.step if row else None) or {}).get("hide", []))
                allowed = records.access(installed, spec.key)
                if allowed.allows("read"):
                    hidden_set |= set(allowed.hidden)
                hidden = frozenset(hidden_set)
                acting = _may_act(task, who) and (
                    task["assignee"] == who.username or not task["claim_required"] or who.is_admin
                )
                editable = set(task["edit"]) if acting else set()
                for field in spec.fields:
                    if field.key in hidden:
                        access[field.key] = "hidden"
                    elif field.key not in editable:
                        access[field.key] = "read"
                form = step_first(form_document(installed, spec.key, hidden), task["edit"], t)
                titles = await listing.titles_for(records, installed, spec, [values], lang, zone)

                def hidden_of(target: str) -> frozenset[str] | None:
                    allowed = records.access(installed, target)
                    return allowed.hidden if allowed.allows("read") else None

                app_meta = listing.forms_meta(installed, lang, hidden_of)
            else:
                values, app_meta = {}, {"key": installed.key, "forms": {}}
    except Problem as problem:
        return await _problem(request, who, problem)
    labels = _app_labels(installed, lang)
    # times on the record's clock; one other than the deployment's is named
    clock = zone_of(own_zone) if own_zone != home else zone
    suffix = f" ({own_zone})" if own_zone != home else ""
    may_act = _may_act(task, who)
    due_at = _instant(task["due"])
    events = [entry.model_dump() for entry in instance["timeline"]] if instance else []
    # "send back to": the earlier user tasks of the flow that someone completed
    back: dict[str, str] = {}
    if task["returnable"] and may_act:
        for event in events:
            node = event.get("node")
            if event["kind"] == "task_completed" and node and node != task["node"]:
                back[node] = labels["steps"].get((task["flow"], node), node)
    outcomes = [
        {
            "key": o["key"],
            "label": _outcome_label(task, o["key"], lang, t),
            "comment": o.get("comment") or "optional",
        }
        for o in task["outcomes"]
    ]
    page_data = {
        "task": {
            "id": task["id"],
            "title": task["title"],
            "edit": [key for key in task["edit"] if form is not None and key not in access],
            "required": task["required"],
            "claim_required": task["claim_required"],
            "assignee": task["assignee"],
        },
        "form": form,
        "values": values,
        "access": access,
        "app": app_meta,
        "now": iso(now),
        "titles": titles,
        "record_id": (record or {}).get("id") if record else None,
        "outcomes": outcomes,
    }
    mine = task["assignee"] == who.username
    return render_page(
        request,
        "tasks/task.html",
        who,
        task=task,
        app_label=labels["label"],
        flow_label=labels["flows"].get(task["flow"] or "", ""),
        step_label=labels["steps"].get((task["flow"] or "", task["node"] or ""), ""),
        due_words=due_words(due_at, now, clock, t) + suffix if task["status"] == "open" else "",
        due_full=_local_text(due_at, clock),
        done_at=_local_text(_instant(task["completed_at"]), clock) + suffix,
        task_zone=own_zone,
        outcome_label=_outcome_label(task, task["outcome"], lang, t) if task["outcome"] else "",
        record_href=(
            f"/apps/{task['app']}/forms/{task['form']}/{record['id']}"
            if record is not None and task["form"]
            else None
        ),
        timeline=_timeline(events, labels, task["flow"], task, clock, lang, t),
        may_act=may_act,
        may_claim=may_act and task["assignee"] is None,
        may_unclaim=may_act and mine and task["claimed_at"] is not None,
        may_complete=may_act and (mine or not task["claim_required"] or who.is_admin),
        back=[{"key": k, "label": v} for k, v in back.items()],
        colleagues=await _colleagues(p, task["app"], who.username) if may_act else [],
        page_data=page_data,
    )
