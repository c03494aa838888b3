"""Flows and tasks over HTTP: start, simulate, instances with their timeline, and the inbox.

* ``GET /api/tasks``: the caller's inbox across apps — tasks assigned to them and the open
  ones their roles (or they) may claim — with counts, sorted by due time or newest first,
  keyset-paginated. ``GET /api/tasks/{id}`` adds the record as the step shows it: a
  participant reads it while the task is theirs, without its hidden fields.
* ``POST /api/tasks/{id}/claim | unclaim | complete | return | delegate``: only the
  assignee, a candidate (unclaimed tasks) or an admin acts; a refused action changes nothing.
* ``POST /api/flows/{app}/{flow}/start | simulate``; ``GET /api/flow-instances[/{id}]``;
  ``POST /api/flow-instances/{id}/cancel | messages``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    and_,
    any_,
    exists,
    false,
    func,
    or_,
    select,
    true,
    union_all,
)

from formloom.engines.flows import Script, StaticDirectory, simulate
from formloom.engines.flows.bpmn import to_bpmn
from formloom.engines.logic.dates import format_datetime
from formloom.platform import jsonsafe
from formloom.platform.apps import parts
from formloom.platform.auth.deps import PrincipalDep
from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform, PlatformDep
from formloom.platform.errors import BadRequest, NotFound, Unprocessable
from formloom.platform.flows.schemas import (
    CancelBody,
    CompleteBody,
    DelegateBody,
    InstanceDetail,
    InstanceOut,
    InstancePage,
    MessageBody,
    ReturnBody,
    SimulateBody,
    SimulationOut,
    StartBody,
    TaskCounts,
    TaskDetail,
    TaskOut,
    TaskPage,
    TimelineEntry,
)
from formloom.platform.flows.service import FlowService
from formloom.platform.flows.visibility import Redactor
from formloom.platform.models import Record
from formloom.platform.models.automation import Task
from formloom.platform.models.flow import FlowEvent, FlowInstance, TaskCandidate
from formloom.platform.permissions import guard
from formloom.platform.records.access import sight_for
from formloom.platform.records.cursor import decode, encode
from formloom.platform.records.ids import is_id
from formloom.platform.records.service import RecordService

router = APIRouter(prefix="/api", tags=["flows"])
Limit = Annotated[int, Query(ge=1, le=200, description="Rows per page.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]
#: Sorts tasks without a due time after every due one.
_NEVER = datetime(9999, 12, 31, tzinfo=UTC)


def _service(p: Platform, session: Any, who: Principal) -> FlowService:
    return FlowService(session, p.catalog, now=p.clock.now(), principal=who)


def _time(value: datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def _task_out(task: Task, candidates: list[tuple[str, str]], now: datetime) -> dict[str, Any]:
    step = task.step or {}
    due_at = task.due_at
    return {
        "id": task.id,
        "app": task.app,
        "title": task.title,
        "description": task.description,
        "status": task.status,
        "kind": "flow" if task.instance_id else "rule",
        "form": task.form,
        "record_id": task.record_id,
        "flow": step.get("flow"),
        "instance_id": task.instance_id,
        "node": task.node,
        "role": task.role,
        "assignee": task.assignee,
        "candidates": {
            "roles": [v for k, v in candidates if k == "role"],
            "users": [v for k, v in candidates if k == "user"],
        },
        "claim_required": task.claim_required,
        "due": _time(due_at) if due_at is not None else task.due,
        "overdue": task.status == "open" and due_at is not None and due_at < now,
        "outcomes": step.get("outcomes") or [{"key": "done", "label": None}],
        "edit": step.get("edit", []),
        "required": step.get("required", []),
        "returnable": bool(step.get("returnable")),
        "outcome": task.outcome,
        "comment": task.comment,
        "created_at": format_datetime(task.created_at),
        "claimed_at": _time(task.claimed_at),
        "completed_at": _time(task.completed_at),
        "completed_by": task.completed_by,
    }


async def _candidates_of(session: Any, ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {task_id: [] for task_id in ids}
    if ids:
        rows = await session.execute(
            select(TaskCandidate.task_id, TaskCandidate.kind, TaskCandidate.value)
            .where(TaskCandidate.task_id.in_(ids))
            .order_by(TaskCandidate.task_id, TaskCandidate.kind, TaskCandidate.value)
        )
        for task_id, kind, value in rows.all():
            found[task_id].append((kind, value))
    return found


def _candidate_of(who: Principal, status: str | None = None) -> list[Select[Any]]:
    """The ids of the tasks the caller or a role of theirs (in the task's app) is a
    candidate for: one SELECT on ``ix_task_candidates_who`` for the user and one per app
    they hold roles in (an OR of them made SQLite scan the table); for open tasks, only the
    rows of open tasks (``task_open``), not everything their roles were ever offered."""
    options: list[ColumnElement[bool]] = [
        and_(TaskCandidate.kind == "user", TaskCandidate.value == who.username)
    ]
    for app, roles in who.roles.items():
        if roles and who.app_scope in (None, app):
            options.append(
                and_(
                    TaskCandidate.kind == "role",
                    TaskCandidate.value.in_(sorted(roles)),
                    TaskCandidate.app == app,
                )
            )
    if status == "open":
        options = [and_(option, TaskCandidate.task_open == true()) for option in options]
    return [select(TaskCandidate.task_id).where(option) for option in options]


def _union(selects: list[Select[Any]]) -> Select[Any] | CompoundSelect[Any]:
    return selects[0] if len(selects) == 1 else union_all(*selects)


def _among(ids: Select[Any] | CompoundSelect[Any], dialect: str) -> ColumnElement[bool]:
    """The task is one of ``ids``. On PostgreSQL ``= ANY(ARRAY(subquery))``: the ids are
    read first (once) and each task is fetched by its key. With ``IN (subquery)`` the plan
    depends on how many ids PostgreSQL expects, and it expects a role's history where the
    open candidates are few (13,555 for 50), so it hashes them and scans every open task."""
    if dialect == "postgresql":
        return Task.id == any_(func.array(ids.scalar_subquery()))
    return Task.id.in_(ids)


def _claimable(
    who: Principal, status: str | None = None, dialect: str = "sqlite"
) -> ColumnElement[bool]:
    """An open task the caller may take: unassigned, and they or a role of theirs is a
    candidate (in the task's app). ``status``: the status the query also asks for."""
    return and_(Task.assignee.is_(None), _among(_union(_candidate_of(who, status)), dialect))


def _mine(who: Principal, status: str, dialect: str) -> ColumnElement[bool]:
    """Assigned to the caller or claimable by them.

    Written so the database starts from the caller's tasks (those assigned to them in
    ``status``, by ``ix_tasks_assignee_status``, and those they are a candidate for) and
    looks each up by its key, rather than testing every task of the status: an inbox costs
    what the caller's tasks cost, however many tasks others have. Of those, the assigned
    and the unassigned ones (a candidate's task someone else claimed is not theirs)."""
    theirs = union_all(
        select(Task.id).where(Task.assignee == who.username, Task.status == status),
        *_candidate_of(who, status),
    )
    return and_(
        _among(theirs, dialect), or_(Task.assignee == who.username, Task.assignee.is_(None))
    )


def _scoped(
    statement: Select[Any], who: Principal, scope: str, status: str, dialect: str
) -> Select[Any]:
    if who.app_scope is not None:
        statement = statement.where(Task.app == who.app_scope)
    if scope in ("everyone", "unassigned"):
        if not who.is_admin:
            raise BadRequest(
                f"Only admins list {'everyone' if scope == 'everyone' else 'unassigned'} tasks.",
                errors=[{"in": "query", "parameter": "scope", "code": "admins_only",
                         "message": f"scope={scope} is for admins"}],
            )  # fmt: skip
        if scope == "unassigned":
            # nobody to do it (the assignee field was empty, a role had no member): an
            # admin hands it on with delegate
            return statement.where(
                Task.assignee.is_(None),
                ~exists(select(TaskCandidate.task_id).where(TaskCandidate.task_id == Task.id)),
            )
        return statement
    if scope == "assigned":
        return statement.where(Task.assignee == who.username)
    if scope == "claimable":
        return statement.where(_claimable(who, status, dialect))
    return statement.where(_mine(who, status, dialect))


@router.get("/tasks", response_model=TaskPage)
async def list_tasks(
    p: PlatformDep,
    who: PrincipalDep,
    app: Annotated[str | None, Query(description="Only this app's tasks.")] = None,
    status: Annotated[Literal["open", "done", "cancelled"], Query(description="State.")] = "open",
    scope: Annotated[
        Literal["mine", "assigned", "claimable", "everyone", "unassigned"],
        Query(
            description="mine: assigned to me or claimable by me; everyone: all tasks; "
            "unassigned: tasks nobody may take (admins only, for both)."
        ),
    ] = "mine",
    record_id: Annotated[str | None, Query(description="Only tasks on this record.")] = None,
    instance_id: Annotated[str | None, Query(description="Only this flow instance's.")] = None,
    overdue: Annotated[bool, Query(description="Only tasks past their due time.")] = False,
    sort: Annotated[
        Literal["due", "-created"], Query(description="Soonest due, or newest.")
    ] = "due",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The caller's inbox across apps (or one app), with counts of what is assigned,
    claimable and overdue."""
    guard.require_app(who, app)
    if not who.authenticated:
        guard.require_member(who, app or "")
    now = p.clock.now()
    dialect = p.db.dialect
    statement = _scoped(select(Task), who, scope, status, dialect).where(Task.status == status)
    if app is not None:
        statement = statement.where(Task.app == app)
    if record_id is not None:
        statement = statement.where(Task.record_id == record_id[:32])
    if instance_id is not None:
        statement = statement.where(Task.instance_id == instance_id[:32])
    if overdue:
        statement = statement.where(Task.due_at < now)
    secret = p.settings.cursor_secret.get_secret_value()
    due_key = func.coalesce(Task.due_at, _NEVER)
    if cursor is not None:
        if sort == "due":
            last_due, last_id = decode(cursor, "tasks-due", 2, secret=secret)
            moment = datetime.fromisoformat(str(last_due)) if last_due else _NEVER
            statement = statement.where(
                or_(due_key > moment, and_(due_key == moment, Task.id > last_id))
            )
        else:
            (last,) = decode(cursor, "tasks-new", 1, secret=secret)
            statement = statement.where(Task.id < last)
    ordered = (
        statement.order_by(due_key, Task.id)
        if sort == "due"
        else statement.order_by(Task.id.desc())
    )
    async with p.db.transaction(write=False) as session:
        rows = list((await session.scalars(ordered.limit(limit + 1))).all())
        page = rows[:limit]
        candidates = await _candidates_of(session, [row.id for row in page])
        counts = await _counts(session, who, app, now, dialect)
    following = None
    if len(rows) > limit:
        last_row = page[-1]
        following = (
            encode("tasks-due", [last_row.due_at.isoformat() if last_row.due_at else None,
                                 last_row.id], secret=secret)
            if sort == "due" else encode("tasks-new", [last_row.id], secret=secret)
        )  # fmt: skip
    return {
        "items": [_task_out(row, candidates[row.id], now) for row in page],
        "next_cursor": following,
        "counts": counts,
    }


async def _counts(
    session: Any, who: Principal, app: str | None, now: datetime, dialect: str
) -> TaskCounts:
    def base() -> Select[Any]:
        statement = select(func.count()).select_from(Task).where(Task.status == "open")
        if app is not None:
            statement = statement.where(Task.app == app)
        if who.app_scope is not None:
            statement = statement.where(Task.app == who.app_scope)
        return statement

    assigned = await session.scalar(base().where(Task.assignee == who.username))
    claimable = await session.scalar(base().where(_claimable(who, "open", dialect)))
    overdue = await session.scalar(base().where(_mine(who, "open", dialect), Task.due_at < now))
    return TaskCounts(assigned=assigned or 0, claimable=claimable or 0, overdue=overdue or 0)


async def _task_detail(p: Platform, session: Any, who: Principal, task: Task) -> dict[str, Any]:
    now = p.clock.now()
    candidates = await _candidates_of(session, [task.id])
    out = _task_out(task, candidates[task.id], now)
    record = None
    if task.record_id and task.form:
        row = (
            await session.scalars(
                select(Record).where(Record.id == task.record_id, Record.deleted_at.is_(None))
            )
        ).first()
        if row is not None:
            installed = await p.catalog.get(session, task.app)
            access = RecordService(session, p.catalog, now=now, principal=who).access(
                installed, task.form
            )
            hidden = set((task.step or {}).get("hide", []))
            if access.allows("read"):
                hidden |= set(access.hidden)
            record = {
                "id": row.id,
                "version": row.version,
                **{k: v for k, v in row.data.items() if k not in hidden},
            }
    return {**out, "record": record}


@router.get("/tasks/{task_id}", response_model=TaskDetail)
async def get_task(task_id: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """One task with the record as its step shows it."""
    guard.require_app(who, None)
    async with p.db.transaction(write=False) as session:
        task = await _service(p, session, who).task(task_id)
        return await _task_detail(p, session, who, task)


async def _act(p: Platform, who: Principal, task_id: str, action: str, **kwargs: Any) -> Any:
    guard.require_app(who, None)
    async with p.db.transaction() as session:
        service = _service(p, session, who)
        task = await getattr(service, action)(task_id, **kwargs)
        await session.flush()
        return await _task_detail(p, session, who, task)


@router.post("/tasks/{task_id}/claim", response_model=TaskDetail)
async def claim_task(task_id: str, p: PlatformDep, who: PrincipalDep) -> Any:
    """Take an open task: it becomes the caller's alone."""
    return await _act(p, who, task_id, "claim")


@router.post("/tasks/{task_id}/unclaim", response_model=TaskDetail)
async def unclaim_task(task_id: str, p: PlatformDep, who: PrincipalDep) -> Any:
    """Give a claimed task back to its candidates."""
    return await _act(p, who, task_id, "unclaim")


@router.post("/tasks/{task_id}/complete", response_model=TaskDetail)
async def complete_task(
    task_id: str, p: PlatformDep, who: PrincipalDep, body: Annotated[CompleteBody, Body()]
) -> Any:
    """Finish a task with an outcome, a comment and the step's field values (validated as a
    record write: a 422 names the field); the flow moves on in the same transaction."""
    _json_safe(body.model_dump(mode="json"))
    return await _act(
        p, who, task_id, "complete", outcome=body.outcome, comment=body.comment,
        values=body.values,
    )  # fmt: skip


@router.post("/tasks/{task_id}/return", response_model=TaskDetail)
async def return_task(
    task_id: str, p: PlatformDep, who: PrincipalDep, body: Annotated[ReturnBody, Body()]
) -> Any:
    """Send the work back to an earlier user task of the flow (the step must allow it)."""
    return await _act(p, who, task_id, "return_task", to=body.to, comment=body.comment)


@router.post("/tasks/{task_id}/signers", response_model=TaskDetail)
async def add_signer(
    task_id: str, p: PlatformDep, who: PrincipalDep, body: Annotated[DelegateBody, Body()]
) -> Any:
    """Add a signer (加签): the named active user must also do the task's step; the step
    waits for them too. Returns the task acted on."""
    return await _act(p, who, task_id, "add_signer", username=body.user)


@router.post("/tasks/{task_id}/delegate", response_model=TaskDetail)
async def delegate_task(
    task_id: str, p: PlatformDep, who: PrincipalDep, body: Annotated[DelegateBody, Body()]
) -> Any:
    """Hand the task to another active user (it becomes theirs alone)."""
    return await _act(p, who, task_id, "delegate", username=body.user)


def _json_safe(data: Any) -> None:
    found = jsonsafe.problems(data)
    if found:
        raise Unprocessable(
            "The request holds values that cannot be stored.",
            errors=[{"path": path, "code": "invalid_value", "message": m} for path, m in found],
        )


# -- flows and instances -----------------------------------------------------------------


def _instance_out(row: FlowInstance) -> dict[str, Any]:
    tokens = (row.state or {}).get("tokens", [])
    return {
        "id": row.id,
        "app": row.app,
        "flow": row.flow,
        "app_version": row.app_version,
        "form": row.form,
        "record_id": row.record_id,
        "parent_id": row.parent_id,
        "status": row.status,
        "started_by": row.started_by,
        "started_at": format_datetime(row.started_at),
        "ended_at": _time(row.ended_at),
        "waiting_at": [token.get("node") for token in tokens],
    }


async def _may_read_instance(p: Platform, session: Any, who: Principal, row: FlowInstance) -> None:
    """Admins, the starter, and anyone who may read the record or had a task in it."""
    if who.app_scope not in (None, row.app):
        raise NotFound(f"No flow instance '{row.id}'.")
    if who.is_admin or who.username == row.started_by:
        return
    involved = await session.scalar(
        select(Task.id).where(
            Task.instance_id == row.id,
            or_(Task.assignee == who.username, Task.completed_by == who.username,
                _claimable(who)),
        ).limit(1)
    )  # fmt: skip
    if involved is not None:
        return
    try:
        await RecordService(session, p.catalog, now=p.clock.now(), principal=who).require_readable(
            row.app, row.form, row.record_id
        )
    except Exception:  # noqa: BLE001 - any refusal reads as "no such instance"
        raise NotFound(f"No flow instance '{row.id}'.") from None


async def _redactor(p: Platform, session: Any, who: Principal, row: FlowInstance) -> Redactor:
    """What ``who`` may see of the instance's record-derived values (flows/visibility.py)."""
    try:
        installed = await p.catalog.get_version(session, row.app, row.app_version)
    except NotFound:  # pragma: no cover - versions are never deleted
        return Redactor(None, (), own_start=False)
    flow = next((f for f in installed.spec.flows if f.key == row.flow), None)
    hidden: tuple[str, ...] = ()
    if not who.is_admin:
        latest = await p.catalog.get(session, row.app)
        records = RecordService(session, p.catalog, now=p.clock.now(), principal=who)
        hidden = tuple(records.access(latest, row.form).hidden) if latest.form(row.form) else ()
    return Redactor(flow, hidden, own_start=who.username == row.started_by)


async def _instance_detail(
    p: Platform, session: Any, who: Principal, row: FlowInstance
) -> dict[str, Any]:
    now = p.clock.now()
    redact = await _redactor(p, session, who, row)
    events = (
        await session.scalars(
            select(FlowEvent).where(FlowEvent.instance_id == row.id).order_by(FlowEvent.id)
        )
    ).all()
    tasks = (
        await session.scalars(
            select(Task).where(Task.instance_id == row.id, Task.status == "open").order_by(Task.id)
        )
    ).all()
    candidates = await _candidates_of(session, [task.id for task in tasks])
    state = row.state or {}
    return {
        **_instance_out(row),
        "vars": redact.vars(state.get("vars", {})),
        "steps": redact.steps(state.get("steps", {})),
        "open_tasks": [_task_out(task, candidates[task.id], now) for task in tasks],
        "timeline": [
            TimelineEntry(
                at=format_datetime(e.at),
                kind=e.kind,
                actor=e.actor,
                node=e.node,
                task_id=e.task_id,
                data=redact.effect(e.kind, e.data or {}),
            )
            for e in events
        ],  # fmt: skip
    }


@router.post("/flows/{app}/{flow}/start", response_model=InstanceDetail, status_code=201)
async def start_flow(
    app: str, flow: str, p: PlatformDep, who: PrincipalDep, body: Annotated[StartBody, Body()]
) -> dict[str, Any]:
    """Start a flow on a record (roles the flow lets start it, or admins)."""
    guard.require_app(who, app)
    _json_safe(body.vars)
    async with p.db.transaction() as session:
        row = await _service(p, session, who).start(app, flow, body.record_id, vars=body.vars)
        await session.flush()
        return await _instance_detail(p, session, who, row)


@router.post("/flows/{app}/{flow}/simulate", response_model=SimulationOut)
async def simulate_flow(
    app: str, flow: str, p: PlatformDep, who: PrincipalDep, body: Annotated[SimulateBody, Body()]
) -> dict[str, Any]:
    """The timeline a start would produce with the given choices — tasks, assignees, due
    and escalation times on the business calendar, timers, messages — with nothing
    written. For designers (admins) and the roles that may start the flow.

    The related records the flow reads (``record.<relation>.<field>``) are loaded as a run would
    load them, through the caller's grants: a related record they may not read reads as
    empty, a field hidden from them as ``null``."""
    guard.require_app(who, app)
    _json_safe(body.model_dump(mode="json"))
    async with p.db.transaction(write=False) as session:
        service = _service(p, session, who)
        installed = await p.catalog.get(session, app)
        app_spec = installed.spec
        if body.flow is not None:
            guard.require_design(who, app, app_spec.design, "simulate a draft flow")
            app_spec = parts.draft(installed, parts.FLOWS, flow, body.flow)
        spec = next((f for f in app_spec.flows if f.key == flow), None)
        if spec is None:
            raise NotFound(f"No flow '{flow[:63]}' in app '{app}'.")
        if not (
            who.is_admin
            or set(spec.start.roles) & who.roles_in(app)
            or guard.may_design(who, app, app_spec.design)
        ):
            guard.require_admin(who, app, "simulate this flow")
        record = dict(body.record or {})
        hidden: set[str] = set()  # a stored record's fields the caller may not see
        if body.record_id is not None:
            await RecordService(
                session, p.catalog, now=p.clock.now(), principal=who
            ).require_readable(app, spec.form, body.record_id)
            stored = await service.stored_record(app, spec.form, body.record_id)
            if stored is None:
                raise NotFound(f"No {spec.form} record '{body.record_id[:40]}'.")
            record = {**stored.data, "id": stored.id}
            access = RecordService(session, p.catalog, now=p.clock.now(), principal=who).access(
                installed, spec.form
            )
            hidden = set(access.hidden)
        sight = sight_for(who, installed, p.clock.now(), p.db.dialect)
        context = await service.simulation_context(installed, spec, record, sight)
    try:
        result = simulate(
            app, spec, record,
            Script(choices=body.choices, messages=body.messages, changes=body.changes,
                   default_outcome=body.default_outcome, starter=who.username, vars=body.vars),
            now=context.now, zone=context.zone,
            flows={f.key: f for f in app_spec.flows},
            calendar=context.calendar,
            directory=context.directory if isinstance(context.directory, StaticDirectory)
            else None,
            related=context.related,
            horizon=timedelta(days=body.horizon_days),
        )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - the engine's refusal of this script
        raise Unprocessable(f"The flow cannot be simulated: {error}") from None
    return _without(result.to_dict(), Redactor(spec, hidden, own_start=True))


def _without(result: dict[str, Any], redact: Redactor) -> dict[str, Any]:
    """A simulation of a stored record as its caller may see it: the record without the
    fields hidden from them, each timeline entry redacted as an instance's would be (set
    values, planned actions, variables taken from the record)."""
    if not redact.active:
        return result
    result["timeline"] = [redact.effect(str(entry.get("kind", "")), entry)
                          for entry in result["timeline"]]  # fmt: skip
    result["record"] = {k: v for k, v in result["record"].items() if k not in redact.hidden}
    return result


@router.get(
    "/apps/{app}/flows/{flow}/bpmn",
    response_class=Response,
    responses={200: {"content": {"application/xml": {}}, "description": "BPMN 2.0 XML."}},
)
async def flow_bpmn(
    app: str,
    flow: str,
    p: PlatformDep,
    who: PrincipalDep,
    locale: Annotated[str, Query(max_length=20, description="Language of the names.")] = "en",
) -> Response:
    """The flow as BPMN 2.0 XML with its diagram (opens in bpmn.io and Camunda Modeler);
    Formloom's own settings ride in extension elements. For platform admins, like every
    export of a definition."""
    guard.require_admin(who, app, "export flows")
    async with p.db.transaction(write=False) as session:
        installed = await p.catalog.get(session, app)
    spec = next((f for f in installed.spec.flows if f.key == flow), None)
    if spec is None:
        raise NotFound(f"No flow '{flow[:63]}' in app '{app}'.")
    return Response(
        to_bpmn(spec, app=app, locale=locale),
        media_type="application/xml",
        headers={"Content-Disposition": f'attachment; filename="{app}-{spec.key}.bpmn"'},
    )


@router.get("/flow-instances", response_model=InstancePage)
async def list_instances(
    p: PlatformDep,
    who: PrincipalDep,
    app: Annotated[str, Query(description="The app.")],
    flow: Annotated[str | None, Query(description="Only this flow's instances.")] = None,
    record_id: Annotated[str | None, Query(description="Only instances on this record.")] = None,
    status: Annotated[
        Literal["running", "completed", "terminated", "cancelled"] | None,
        Query(description="State."),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Instances of an app, newest first: all for admins; otherwise those the caller
    started or that run on a record they name (``record_id``) and may read."""
    guard.require_app(who, app)
    statement = select(FlowInstance).where(FlowInstance.app == app)
    if flow is not None:
        statement = statement.where(FlowInstance.flow == flow)
    if status is not None:
        statement = statement.where(FlowInstance.status == status)
    secret = p.settings.cursor_secret.get_secret_value()
    if cursor is not None:
        (last,) = decode(cursor, "instances", 1, secret=secret)
        statement = statement.where(FlowInstance.id < last)
    async with p.db.transaction(write=False) as session:
        if record_id is not None:
            statement = statement.where(FlowInstance.record_id == record_id[:32])
        if not who.is_admin:
            readable: ColumnElement[bool] = false()
            if record_id is not None:
                installed = await p.catalog.get(session, app)
                forms = {f.form for f in installed.spec.flows}
                service = RecordService(session, p.catalog, now=p.clock.now(), principal=who)
                for form in sorted(forms):
                    try:
                        await service.require_readable(app, form, record_id)
                    except Exception:  # noqa: BLE001, S112 - not this form, or not readable
                        continue
                    readable = FlowInstance.record_id == record_id[:32]
                    break
            statement = statement.where(or_(FlowInstance.started_by == who.username, readable))
        rows = list(
            (
                await session.scalars(statement.order_by(FlowInstance.id.desc()).limit(limit + 1))
            ).all()
        )
    following = (
        encode("instances", [rows[limit - 1].id], secret=secret) if len(rows) > limit else None
    )
    return {"items": [_instance_out(row) for row in rows[:limit]], "next_cursor": following}


async def _instance(p: Platform, session: Any, who: Principal, instance_id: str) -> FlowInstance:
    row = await session.get(FlowInstance, instance_id[:32]) if is_id(instance_id) else None
    if row is None:
        raise NotFound(f"No flow instance '{instance_id[:40]}'.")
    await _may_read_instance(p, session, who, row)
    return row  # type: ignore[no-any-return]


@router.get("/flow-instances/{instance_id}", response_model=InstanceDetail)
async def get_instance(instance_id: str, p: PlatformDep, who: PrincipalDep) -> dict[str, Any]:
    """An instance with its timeline (who did what when), its open tasks and what is due."""
    guard.require_app(who, None)
    async with p.db.transaction(write=False) as session:
        row = await _instance(p, session, who, instance_id)
        return await _instance_detail(p, session, who, row)


@router.post("/flow-instances/{instance_id}/cancel", response_model=InstanceDetail)
async def cancel_instance(
    instance_id: str, p: PlatformDep, who: PrincipalDep, body: Annotated[CancelBody, Body()]
) -> dict[str, Any]:
    """Cancel a running instance: its open tasks, timers and subflows are withdrawn."""
    guard.require_app(who, None)
    async with p.db.transaction() as session:
        await _instance(p, session, who, instance_id)
        row = await _service(p, session, who).cancel(instance_id, body.reason)
        await session.flush()
        return await _instance_detail(p, session, who, row)


@router.post("/flow-instances/{instance_id}/messages", response_model=InstanceDetail)
async def send_message(
    instance_id: str, p: PlatformDep, who: PrincipalDep, body: Annotated[MessageBody, Body()]
) -> dict[str, Any]:
    """Send a message to an instance (a wait node for it moves on; one that is not reached
    yet keeps it)."""
    guard.require_app(who, None)
    _json_safe(body.model_dump(mode="json"))
    async with p.db.transaction() as session:
        await _instance(p, session, who, instance_id)
        row = await _service(p, session, who).message(instance_id, body.name, body.data)
        await session.flush()
        return await _instance_detail(p, session, who, row)


__all__ = ["router", "InstanceOut", "TaskOut"]
