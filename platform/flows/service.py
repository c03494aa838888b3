"""Running flows: instances in the database, advanced one event at a time (docs/flows.md).

The engine (:mod:`formloom.engines.flows`) decides; this module loads what it needs, calls
:func:`~formloom.engines.flows.advance` and carries the effects out, all in the caller's
unit of work, so an instance is always before or after a step:

* the instance row is locked (``FOR UPDATE`` on PostgreSQL; SQLite has one writer) and its
  state rewritten with ``lock_version`` bumped; every effect becomes a ``flow_events`` row
  (the timeline);
* tasks are rows of ``tasks`` (one lifecycle with the rules' tasks) with their candidates
  in ``task_candidates``; timers are rows of ``timers`` (kind ``flow``) fired by the worker,
  exactly once (it claims them with ``SKIP LOCKED`` and fires each in its transaction);
* action nodes' plans go through the rules' :func:`~formloom.platform.rules.automation.run_action`
  (outbound ones to the outbox); ``set`` values are written to the record through the record
  service, acting as ``flow:<key>``;
* subflows are instances with a ``parent_id``; when one ends its parent is advanced;
* the related records a flow reads (``record.patient.name``; the engine's
  :func:`~formloom.engines.flows.related.reads`, worked out once per flow spec) are loaded
  for each advance with the rules' :func:`~formloom.platform.rules.related.load_related`
  (one query per target form and hop level, as the flow reads them: every field) and
  handed to the engine in its ``Context``; a flow that reads none costs no query, so a
  batch of timers of such flows stays as it was. ``simulate`` loads them as its caller
  sees them (a ``Sight``); a start's ``when`` loads the ones it reads.

Record writes made by an advance are not reported back to the flows while the advance runs
(a context variable holds them); when it is done, every running instance on the record sees
the change, once. Flows change records and records change flows only this deep
(:data:`MAX_DEPTH`): a longer chain is refused with the write.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Executable, bindparam, delete, insert, inspect, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from formloom.engines.flows import (
    Advance,
    BusinessCalendar,
    Cancel,
    Context,
    Event,
    FlowInputError,
    FlowRuntimeError,
    FlowSpec,
    MessageSent,
    Person,
    RecordChanged,
    SignerAdded,
    Start,
    StaticDirectory,
    SubflowEnded,
    TaskDone,
    TaskReturned,
    TimerFired,
    advance,
    new_instance,
    state_from_dict,
)
from formloom.engines.flows.related import reads as flow_reads
from formloom.engines.flows.related import start_reads
from formloom.engines.flows.spec import Assignee, UserTaskNode
from formloom.engines.flows.state import (
    ActionsPlanned,
    Candidates,
    Effect,
    InstanceEnded,
    NodeEntered,
    RecordSet,
    StepCompleted,
    SubflowCancelled,
    SubflowStarted,
    TaskClosed,
    TaskCompleted,
    TaskOpened,
    TaskReassigned,
    TaskReminded,
    TimerArmed,
    TimerCancelled,
)
from formloom.engines.forms import RecordInvalid, label_text
from formloom.engines.forms.fields import UserField
from formloom.engines.logic import evaluate
from formloom.engines.logic.coercion import truthy
from formloom.engines.logic.dates import format_datetime
from formloom.engines.rules import PlannedSet, render_template
from formloom.engines.rules.related import RELATED, read_related
from formloom.platform.apps.service import AppCatalog, InstalledApp
from formloom.platform.auth.principal import Principal
from formloom.platform.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Unprocessable,
    record_invalid,
)
from formloom.platform.models import Record, User, UserRole
from formloom.platform.models.automation import Notification, Task, Timer
from formloom.platform.models.flow import FlowEvent, FlowInstance, TaskCandidate
from formloom.platform.records.ids import IdSequence, is_id, new_id
from formloom.platform.records.service import RecordService
from formloom.platform.records.watchers import start_flows_with, watch
from formloom.platform.rules import automation, zones
from formloom.platform.rules.related import Sight, load_related

__all__ = ["FlowFailed", "FlowService", "TaskRefused", "on_record_write"]

#: How deep flows and record writes may set each other off.
MAX_DEPTH = 8
#: One per process: timeline rows sort in the order they were written.
_EVENT_IDS = IdSequence()
_BUSY: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("flows_busy", default=())


#: Which part of a task request an engine refusal is about.
_INPUT_FIELDS = {
    "outcome": "outcome",
    "comment": "comment",
    "return_target": "to",
    "not_returnable": "to",
    "signer_exists": "user",
}


class FlowFailed(Unprocessable):
    """The flow cannot go on (its definition meets data it did not foresee)."""

    slug = "flow-failed"
    title = "The flow cannot go on"


class TaskRefused(Unprocessable):
    slug = "task-refused"
    title = "The task cannot be done that way"


@dataclass
class _Loaded:
    row: FlowInstance
    installed: InstalledApp
    flow: FlowSpec
    #: The instance's record's zone (its branch's, docs/time-zones.md), once a context has
    #: been built: its tasks' texts are written on that clock.
    zone: str | None = None


class FlowService:
    """Flow use cases for one unit of work (``now`` in the clinic's zone)."""

    def __init__(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        *,
        now: datetime,
        principal: Principal,
    ) -> None:
        self.session = session
        self.catalog = catalog
        self.now = now
        self.principal = principal
        self._event_ids = _EVENT_IDS
        #: Rows inserted by :meth:`_flush` in one statement per table: the tasks an advance
        #: opens, their candidates, timeline entries.
        self._rows: dict[Any, list[dict[str, Any]]] = {Task: [], TaskCandidate: [], FlowEvent: []}
        #: Rows added since the last flush that a later effect of the advance may read.
        self._unflushed = False
        #: A batch of timers' instances, locked by :meth:`begin_batch`, and their records'
        #: data, each given once to the advance that reads it (until something writes
        #: records: then none is trusted).
        self._locked: dict[str, FlowInstance] = {}
        self._prefetched: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: In a batch: advanced instances' new values, written with the
        #: queued rows by the next :meth:`_flush` rather than one statement each.
        self._batch = False
        self._deferred: dict[str, dict[str, Any]] = {}
        bind = session.bind
        self.dialect = bind.dialect.name if bind is not None else "sqlite"

    # -- starting --------------------------------------------------------------------

    async def start(
        self,
        app: str,
        flow_key: str,
        record_id: str,
        *,
        vars: Mapping[str, Any] | None = None,
        by_rule: bool = False,
    ) -> FlowInstance:
        """Start ``flow_key`` on a record. People need a start role (or admin) and must be
        able to read the record; a rule (``by_rule``) may always start a flow."""
        installed = await self.catalog.get(self.session, app)
        flow = _flow(installed, flow_key)
        record = await self._record(app, flow.form, record_id)
        if record is None:
            raise NotFound(f"No {flow.form} record '{record_id[:40]}' in app '{app}'.")
        if not by_rule:
            allowed = self.principal.is_admin or bool(
                set(flow.start.roles) & self.principal.roles_in(app)
            )
            if not allowed:
                raise Forbidden(
                    f"Your roles in app '{app}' may not start the flow '{flow.key}'.",
                    audit={"action": "auth.denied", "app": app, "form": flow.form,
                           "record_id": record_id, "detail": {"reason": "flow_start",
                                                              "flow": flow.key}},
                )  # fmt: skip
            await self._records().require_readable(app, flow.form, record_id)
            if flow.start.when is not None and not await self._start_holds(
                installed, flow, {**record.data, "id": record.id}
            ):
                raise Conflict(
                    f"The flow '{flow.key}' does not start on this record (its start "
                    "condition does not hold)."
                )
        if flow.single:
            running = await self.session.scalar(
                select(FlowInstance.id).where(
                    FlowInstance.record_id == record_id,
                    FlowInstance.app == app,
                    FlowInstance.flow == flow.key,
                    FlowInstance.status == "running",
                    FlowInstance.parent_id.is_(None),
                )
            )
            if running is not None:
                raise Conflict(
                    f"The flow '{flow.key}' already runs on this record (instance {running}).",
                    instance=running,
                )
        starter = None if by_rule else self.principal.username
        row = self._new_row(installed, flow, record_id, parent=None, parent_key=None)
        # a rule's start is nobody's: the person whose write set it off may not cancel it
        row.started_by = starter
        await self._advance(
            _Loaded(row, installed, flow), Start(starter=starter, vars=dict(vars or {})),
            actor=self.principal.username, record=record,
        )  # fmt: skip
        return row

    async def _start_holds(
        self, installed: InstalledApp, flow: FlowSpec, data: Mapping[str, Any]
    ) -> bool:
        """Whether the start's ``when`` holds on the record, reading the related records it
        names as a run would (every field: the condition is the flow's, not the caller's)."""
        context: dict[str, Any] = {"record": data}
        when = flow.start.when
        hops = start_reads(flow, installed.forms)
        if hops:
            related = await load_related(self.session, installed.key, installed.spec, hops, data)
            context[RELATED] = related
            when = read_related(when, related)
        return truthy(evaluate(when, context, now=self.now))

    def _new_row(
        self,
        installed: InstalledApp,
        flow: FlowSpec,
        record_id: str,
        *,
        parent: str | None,
        parent_key: str | None,
    ) -> FlowInstance:
        instance_id = new_id()
        row = FlowInstance(
            id=instance_id,
            app=installed.key,
            flow=flow.key,
            app_version=installed.version,
            form=flow.form,
            record_id=record_id,
            parent_id=parent,
            parent_key=parent_key,
            status="running",
            state=new_instance(instance_id, flow).to_dict(),
            lock_version=0,
            started_by=self.principal.username,
            started_at=self.now,
            updated_at=self.now,
        )
        self.session.add(row)
        return row

    # -- events from people and the worker -------------------------------------------

    async def cancel(self, instance_id: str, reason: str | None = None) -> FlowInstance:
        loaded = await self._load(instance_id)
        self._require_manager(loaded)
        if loaded.row.status != "running":
            raise Conflict(f"The instance is {loaded.row.status}; only a running one is cancelled.")
        await self._advance(
            loaded, Cancel(self.principal.username, reason), actor=self.principal.username
        )
        return loaded.row

    async def message(self, instance_id: str, name: str, data: Any) -> FlowInstance:
        loaded = await self._load(instance_id)
        self._require_manager(loaded)
        await self._advance(loaded, MessageSent(name, data), actor=self.principal.username)
        return loaded.row

    async def begin_batch(self, timers: Iterable[Timer]) -> None:
        """Start firing a batch of due flow timers: lock their instances in one statement
        (in id order, so two workers' batches never wait on each other in a cycle) and read
        their records in one more, for :meth:`fire_timer`. Until :meth:`settle`, what the
        advances write waits in memory and goes to the database together whenever
        something reads it back."""
        self._batch = True
        ids = sorted({str(timer.payload.get("instance", "")) for timer in timers})
        ids = [instance_id for instance_id in ids if is_id(instance_id)]
        if not ids:
            return
        statement = select(FlowInstance).where(FlowInstance.id.in_(ids)).order_by(FlowInstance.id)
        if self.dialect == "postgresql":
            statement = statement.with_for_update()
        rows = (await self.session.scalars(statement)).all()
        self._locked.update((row.id, row) for row in rows)
        records = sorted({row.record_id for row in rows if row.status == "running"})
        if not records:
            return
        found = await self.session.execute(
            select(Record.app, Record.form, Record.id, Record.data).where(
                Record.id.in_(records), Record.deleted_at.is_(None)
            )
        )
        self._prefetched = {(app, form, key): data for app, form, key, data in found.all()}

    async def settle(self) -> None:
        """Write what the batch's advances left in memory, and read records afresh from now
        on: before anything else reads the flow tables or writes records, and at the end."""
        self._prefetched.clear()
        if self._unflushed:
            await self._flush()

    async def fire_timer(self, timer: Timer) -> None:
        """A due ``flow`` timer (the worker's transaction; it marks the timer fired)."""
        payload = timer.payload
        instance_id = str(payload.get("instance", ""))
        row = self._locked.get(instance_id) or await self._lock(instance_id)
        if row is None or row.status != "running":
            return
        loaded = await self._loaded(row)
        await self._advance(loaded, TimerFired(str(payload["timer"])), actor=None)

    async def record_written(
        self, app: str, record_id: str, kind: Literal["updated", "deleted"]
    ) -> None:
        """Every running instance on the record sees the change (or is cancelled: its
        record was deleted)."""
        busy = _BUSY.get()
        if len(busy) >= MAX_DEPTH:
            raise FlowFailed(
                "Flows and record changes set each other off too deeply: " + " -> ".join(busy[-4:])
            )
        ids = (
            await self.session.scalars(
                select(FlowInstance.id)
                .where(
                    FlowInstance.record_id == record_id,
                    FlowInstance.app == app,
                    FlowInstance.status == "running",
                )
                .order_by(FlowInstance.id)
            )
        ).all()
        for instance_id in ids:
            if instance_id in busy:
                continue
            row = await self._lock(instance_id)
            if row is None or row.status != "running":
                continue
            loaded = await self._loaded(row)
            event: Event = RecordChanged() if kind == "updated" else Cancel(reason="record deleted")
            await self._advance(loaded, event, actor=None)

    # -- tasks -----------------------------------------------------------------------

    async def task(self, task_id: str, *, lock: bool = False) -> Task:
        statement = select(Task).where(Task.id == task_id[:32])
        if lock and self.dialect == "postgresql":
            statement = statement.with_for_update()
        task = (await self.session.scalars(statement)).first() if is_id(task_id) else None
        if task is None or not await self.may_see(task):
            raise NotFound(f"No task '{task_id[:40]}'.")
        return task

    async def candidates(self, task_id: str) -> list[tuple[str, str]]:
        rows = await self.session.execute(
            select(TaskCandidate.kind, TaskCandidate.value).where(TaskCandidate.task_id == task_id)
        )
        return [(kind, value) for kind, value in rows.all()]

    async def may_see(self, task: Task) -> bool:
        """Admins, the assignee and the candidates (and whoever completed it) see a task."""
        who = self.principal
        if who.is_admin and (who.app_scope in (None, task.app)):
            return True
        if who.app_scope not in (None, task.app):
            return False
        if who.username in (task.assignee, task.completed_by):
            return True
        return self._is_candidate(task, await self.candidates(task.id))

    def _is_candidate(self, task: Task, found: Iterable[tuple[str, str]]) -> bool:
        roles = self.principal.roles_in(task.app)
        return any(
            (kind == "user" and value == self.principal.username)
            or (kind == "role" and value in roles)
            for kind, value in found
        )

    async def _may_act(self, task: Task) -> None:
        if task.status != "open":
            raise Conflict(f"The task is {task.status}.", code="task_closed")
        who = self.principal
        if who.is_admin and who.app_scope in (None, task.app):
            return
        if task.assignee is not None:
            if task.assignee != who.username:
                raise Forbidden(
                    f"The task is assigned to {task.assignee}.",
                    audit={"action": "auth.denied", "app": task.app,
                           "detail": {"reason": "task_assignee", "task": task.id}},
                )  # fmt: skip
            return
        if not self._is_candidate(task, await self.candidates(task.id)):
            raise Forbidden(
                "You are not among the people this task is for.",
                audit={"action": "auth.denied", "app": task.app,
                       "detail": {"reason": "task_candidate", "task": task.id}},
            )  # fmt: skip

    async def claim(self, task_id: str) -> Task:
        task = await self.task(task_id, lock=True)
        await self._may_act(task)
        if task.assignee == self.principal.username:
            return task
        task.assignee, task.claimed_at = self.principal.username, self.now
        self._event(task.instance_id, "task_claimed", task.node, task.id, {})
        await self._flush()
        return task

    async def unclaim(self, task_id: str) -> Task:
        task = await self.task(task_id, lock=True)
        await self._may_act(task)
        if task.claimed_at is None:
            raise Conflict("The task is not claimed.", code="not_claimed")
        task.assignee, task.claimed_at = None, None
        self._event(task.instance_id, "task_unclaimed", task.node, task.id, {})
        await self._flush()
        return task

    async def delegate(self, task_id: str, username: str) -> Task:
        task = await self.task(task_id, lock=True)
        await self._may_act(task)
        await self._active_user(username)
        await self.session.execute(delete(TaskCandidate).where(TaskCandidate.task_id == task.id))
        await self.session.execute(
            insert(TaskCandidate), [{"task_id": task.id, "kind": "user", "value": username,
                                     "app": task.app}]
        )  # fmt: skip
        task.assignee, task.claimed_at = username, self.now
        self._event(task.instance_id, "task_delegated", task.node, task.id, {"to": username})
        await self._flush()
        return task

    async def complete(
        self,
        task_id: str,
        outcome: str | None,
        comment: str | None,
        values: Mapping[str, Any] | None,
    ) -> Task:
        task = await self.task(task_id, lock=True)
        await self._may_act(task)
        if task.claim_required and task.assignee is None and not self.principal.is_admin:
            raise Conflict("Claim the task before completing it.", code="claim_first")
        step = task.step or {}
        offered = [o["key"] for o in step.get("outcomes", [])] or ["done"]
        if outcome is None:
            if len(offered) > 1:
                raise TaskRefused(
                    f"Choose an outcome: {', '.join(offered)}.",
                    errors=[{"field": "outcome", "path": "/outcome", "code": "required",
                             "message": f"choose one of {', '.join(offered)}"}],
                )  # fmt: skip
            outcome = offered[0]
        if task.instance_id is None:  # a rule's task: done is done
            if values:
                raise TaskRefused("A rule's task has no fields to fill in.")
            task.status, task.outcome, task.comment = "done", outcome, comment
            task.completed_at, task.completed_by = self.now, self.principal.username
            return task
        loaded = await self._load(task.instance_id)
        await self._write_step_values(loaded, task, step, values or {})
        event = TaskDone(_engine_key(task), outcome, self.principal.username, comment)
        await self._advance(loaded, event, actor=self.principal.username, task=task)
        return task

    async def add_signer(self, task_id: str, username: str) -> Task:
        """One more person must also do the task's step (加签)."""
        task = await self.task(task_id, lock=True)
        await self._may_act(task)
        if task.instance_id is None:
            raise TaskRefused("A rule's task has no step to add a signer to.")
        await self._active_user(username)
        loaded = await self._load(task.instance_id)
        event = SignerAdded(_engine_key(task), username, self.principal.username)
        await self._advance(loaded, event, actor=self.principal.username, task=task)
        return task

    async def _active_user(self, username: str) -> None:
        user = await self.session.scalar(
            select(User.id).where(User.username == username, User.disabled_at.is_(None))
        )
        if user is None:
            raise Unprocessable(
                f"There is no active user '{username[:64]}'.",
                errors=[{"field": "user", "path": "/user", "code": "unknown_user",
                         "message": f"there is no active user {username[:64]!r}"}],
            )  # fmt: skip

    async def return_task(self, task_id: str, to: str, comment: str | None) -> Task:
        task = await self.task(task_id, lock=True)
        await self._may_act(task)
        if task.instance_id is None:
            raise TaskRefused("A rule's task cannot be returned.")
        loaded = await self._load(task.instance_id)
        event = TaskReturned(_engine_key(task), to, self.principal.username, comment)
        await self._advance(loaded, event, actor=self.principal.username, task=task)
        return task

    async def _write_step_values(
        self, loaded: _Loaded, task: Task, step: Mapping[str, Any], values: Mapping[str, Any]
    ) -> None:
        editable = set(step.get("edit", []))
        errors = [
            {"field": name, "path": f"/values/{name}", "code": "not_editable",
             "message": f"this step may not change {name!r}"}
            for name in values if name not in editable
        ]  # fmt: skip
        if errors:
            raise TaskRefused("The step may not change these fields.", errors=errors)
        record = await self._record(loaded.row.app, loaded.row.form, loaded.row.record_id)
        if record is None:
            raise Conflict("The task's record was deleted.")
        merged = {**record.data, **values}
        missing = [
            {"field": name, "path": f"/values/{name}", "code": "required",
             "message": "required to complete this step"}
            for name in step.get("required", []) if merged.get(name) in (None, "", [])
        ]  # fmt: skip
        if missing:
            raise TaskRefused("Fill in the fields this step needs.", errors=missing)
        if values:
            token = _BUSY.set((*_BUSY.get(), loaded.row.id))
            try:
                acting = self._records(f"flow:{loaded.flow.key}")
                try:
                    await acting.update(
                        loaded.row.app, loaded.row.form, loaded.row.record_id, dict(values),
                        if_match=None,
                    )  # fmt: skip
                except RecordInvalid as invalid:
                    raise _at_values(record_invalid(invalid)) from None
                except Unprocessable as problem:
                    raise _at_values(problem) from None
            finally:
                _BUSY.reset(token)

    # -- advancing -------------------------------------------------------------------

    async def _lock(self, instance_id: str) -> FlowInstance | None:
        if not is_id(instance_id):
            return None
        statement = _LOCK_INSTANCE if self.dialect == "postgresql" else _INSTANCE
        return (await self.session.scalars(statement, {"id": instance_id})).first()

    async def _load(self, instance_id: str) -> _Loaded:
        row = await self._lock(instance_id)
        if row is None:
            raise NotFound(f"No flow instance '{instance_id[:40]}'.")
        return await self._loaded(row)

    async def _loaded(self, row: FlowInstance) -> _Loaded:
        installed = await self.catalog.get_version(self.session, row.app, row.app_version)
        return _Loaded(row, installed, _flow(installed, row.flow))

    def _require_manager(self, loaded: _Loaded) -> None:
        who = self.principal
        if who.is_admin and who.app_scope in (None, loaded.row.app):
            return
        if who.username == loaded.row.started_by and loaded.row.parent_id is None:
            return
        raise Forbidden(
            "Only the flow's starter or an admin may do that.",
            audit={"action": "auth.denied", "app": loaded.row.app,
                   "detail": {"reason": "flow_manage", "instance": loaded.row.id}},
        )  # fmt: skip

    async def simulation_context(
        self,
        installed: InstalledApp,
        flow: FlowSpec,
        record: Mapping[str, Any],
        sight: Callable[[str], Sight] | None = None,
    ) -> Context:
        """The context a real run of ``flow`` would see on ``record`` (``simulate``), its
        related records limited to what ``sight`` shows (the caller's grants)."""
        row = FlowInstance(
            app=installed.key, flow=flow.key, form=flow.form, record_id=str(record.get("id", ""))
        )
        return await self._context(_Loaded(row, installed, flow), record, sight)

    async def stored_record(self, app: str, form: str, record_id: str) -> Record | None:
        """A live record of the form (no permission check: the caller made one)."""
        return await self._record(app, form, record_id)

    async def _context(
        self,
        loaded: _Loaded,
        given: Mapping[str, Any] | None = None,
        sight: Callable[[str], Sight] | None = None,
    ) -> Context:
        row = loaded.row
        if given is not None:
            data = dict(given)
        else:
            stored = await self._record_data(row.app, row.form, row.record_id)
            data = {**(stored if stored is not None else {}), "id": row.record_id}
        # the record's own clock: its branch's zone, else the deployment's
        zone_name = await zones.record_zone(
            self.session, loaded.installed, row.form, data, zones.home_zone(self.now)
        )
        loaded.zone = zone_name
        spec = loaded.installed.spec
        calendar = (
            _calendar(spec.calendar, zone_name, own=zone_name != zones.home_zone(self.now))
            if spec.calendar is not None
            else None
        )
        hops = flow_reads(loaded.flow, loaded.installed.forms)
        related = await load_related(self.session, row.app, spec, hops, data, sight) if hops else {}
        return Context(
            app=row.app,
            record=data,
            now=self.now,
            zone=zone_name,
            calendar=calendar,
            directory=await self._directory(loaded, data),
            related=related,
        )

    async def _directory(self, loaded: _Loaded, record: Mapping[str, Any]) -> StaticDirectory:
        """The app's people (by role, with their attributes) and the users of the staff
        records the flow's assignee fields point at.

        The engine asks for a role's members only for an assignee that names people one by
        one (a role narrowed by ``where``; mode all or N); a flow without such an assignee
        is given no members, and the query is saved on every advance."""
        roles: dict[str, list[Person]] = {}
        if _lists_role_members(loaded.flow):
            rows = await self.session.execute(
                select(UserRole.role, User.username, User.attributes)
                .join(User, User.id == UserRole.user_id)
                .where(UserRole.app == loaded.row.app, User.disabled_at.is_(None))
                .order_by(User.username)
            )
            for role, username, attributes in rows.all():
                roles.setdefault(role, []).append(Person(username, attributes or {}))
        staff: dict[str, str] = {}
        for target, field in _assignee_fields(loaded):
            form = loaded.installed.spec.form(target)
            if form is None or form.user_field is None:
                continue
            value = record.get(field)
            ids = [str(v) for v in (value if isinstance(value, list) else [value]) if v]
            if not ids:
                continue
            found = await self.session.execute(
                select(Record.id, Record.data).where(
                    Record.id.in_(ids), Record.app == loaded.row.app, Record.form == target,
                    Record.deleted_at.is_(None),
                )
            )  # fmt: skip
            for staff_id, data in found.all():
                name = data.get(form.user_field)
                if isinstance(name, str) and name:
                    staff[staff_id] = name
        # a member field holds user ids: each names its user (disabled users name nobody)
        members: list[str] = []
        for key in _member_fields(loaded):
            value = record.get(key)
            members += [str(v) for v in (value if isinstance(value, list) else [value]) if v]
        if members:
            found_users = await self.session.execute(
                select(User.id, User.username).where(
                    User.id.in_(members), User.disabled_at.is_(None)
                )
            )
            staff.update({user_id: username for user_id, username in found_users.all()})
        return StaticDirectory(roles=roles, staff=staff)

    async def _advance(
        self,
        loaded: _Loaded,
        event: Event,
        *,
        actor: str | None,
        task: Task | None = None,
        record: Record | None = None,
    ) -> Advance:
        """Advance the instance by ``event`` and carry the effects out. ``record``: the
        instance's record as the caller just read it in this session (the same object the
        session would give again), to save reading it twice."""
        row = loaded.row
        state = state_from_dict(row.state)
        given = None if record is None else {**record.data, "id": row.record_id}
        context = await self._context(loaded, given)
        try:
            done = advance(loaded.flow, state, event, context)
        except FlowInputError as error:
            where = _INPUT_FIELDS.get(error.code)
            if error.code in ("closed", "not_open", "started"):
                raise Conflict(str(error), code=error.code) from None
            raise TaskRefused(
                str(error),
                errors=[{"field": where or "", "path": f"/{where}" if where else "",
                         "code": error.code, "message": str(error)}],
            ) from None  # fmt: skip
        except FlowRuntimeError as error:
            raise FlowFailed(
                f"Flow '{loaded.flow.key}' cannot go on at step '{error.node or '?'}': "
                f"{error.message}",
                flow=loaded.flow.key,
                node=error.node,
            ) from None
        self._event(row.id, _event_kind(event), None, task.id if task else None,
                    _event_data(event), actor=actor)  # fmt: skip
        token = _BUSY.set((*_BUSY.get(), row.id))
        try:
            for effect in done.effects:
                await self._carry_out(loaded, effect, done, actor)
        finally:
            _BUSY.reset(token)
        ended = row.ended_at
        if done.state.status != "running" and ended is None:
            ended = self.now
        values = {"state": done.state.to_dict(), "status": done.state.status,
                  "lock_version": row.lock_version + 1, "updated_at": self.now,
                  "ended_at": ended}  # fmt: skip
        if self._batch and inspect(row).persistent:
            self._deferred[row.id] = {**values, "id": row.id}
            for name, value in values.items():
                set_committed_value(row, name, value)
            self._unflushed = True
        else:
            await self._flush(row, values)
        if done.record_changes:
            await self.settle()
            await self.record_written(row.app, row.record_id, "updated")
        if row.status != "running" and row.parent_id is not None:
            await self.settle()
            await self._tell_parent(row, done)
        return done

    async def _tell_parent(self, row: FlowInstance, done: Advance) -> None:
        if row.parent_key is None or row.parent_id is None:
            return
        parent = await self._lock(row.parent_id)
        if parent is None or parent.status != "running":
            return  # the parent ended (and withdrew this one) first
        # a child the parent withdrew is no longer among its token's children: the engine
        # ignores it; one that ended on its own (cancel_when too) moves the parent on
        loaded = await self._loaded(parent)
        await self._advance(
            loaded, SubflowEnded(row.parent_key, row.status, dict(done.state.vars)), actor=None
        )

    async def _carry_out(
        self, loaded: _Loaded, effect: Effect, done: Advance, actor: str | None
    ) -> None:
        row = loaded.row
        task_id: str | None = None
        if self._unflushed and not isinstance(effect, _ADDS_ONLY):
            # what follows reads the tables (a task opened earlier in this advance may be
            # closed, its timer cancelled, the record written): the opened tasks go first
            await self._flush()
        match effect:
            case TaskOpened():
                task_id = await self._open_task(loaded, effect)
            case TaskCompleted():
                task_id = await self._close_task(effect.task, "done", effect.outcome,
                                                 effect.comment, effect.actor)  # fmt: skip
            case TaskClosed():
                task_id = await self._close_task(effect.task, "cancelled", None, effect.reason,
                                                 actor)  # fmt: skip
            case TaskReassigned():
                task_id = await self._reassign(loaded, effect.task, effect.candidates,
                                               effect.assignee)  # fmt: skip
            case TaskReminded():
                task_id = await self._remind(loaded, effect.task, effect.candidates)
            case TimerArmed():
                self.session.add(
                    Timer(
                        id=new_id(), key=f"flow:{effect.timer}", kind="flow", app=row.app,
                        rule=row.flow, form=row.form, record_id=row.record_id,
                        due_at=effect.due,
                        payload={"instance": row.id, "timer": effect.timer,
                                 "purpose": effect.purpose},
                        status="pending", attempts=0, created_at=self.now,
                    )
                )  # fmt: skip
            case TimerCancelled():
                await self.session.execute(
                    update(Timer)
                    .where(Timer.key == f"flow:{effect.timer}", Timer.status == "pending")
                    .values(status="cancelled", fired_at=self.now)
                )
            case ActionsPlanned():
                self._prefetched.clear()  # the actions may write records
                acting = self._records(f"flow:{loaded.flow.key}")
                for action in effect.actions:
                    if isinstance(action, PlannedSet) and action.due is None:
                        continue  # the values come as RecordSet
                    await automation.run_action(
                        acting, loaded.installed, action, form=row.form, record_id=row.record_id
                    )
            case RecordSet():
                self._prefetched.clear()
                acting = self._records(f"flow:{loaded.flow.key}")
                await acting.update(
                    row.app, row.form, row.record_id, dict(effect.values), if_match=None
                )
            case SubflowStarted():
                child_flow = _flow(loaded.installed, effect.flow)
                child = self._new_row(loaded.installed, child_flow, row.record_id,
                                      parent=row.id, parent_key=effect.child)  # fmt: skip
                child.started_by = done.state.starter
                await self.session.flush()
                await self._advance(
                    _Loaded(child, loaded.installed, child_flow),
                    Start(starter=done.state.starter, vars=dict(effect.vars)),
                    actor=None,
                )
            case SubflowCancelled():
                child_id = await self.session.scalar(
                    select(FlowInstance.id).where(
                        FlowInstance.parent_id == row.id,
                        FlowInstance.parent_key == effect.child,
                        FlowInstance.status == "running",
                    )
                )
                if child_id is not None:
                    withdrawn = await self._load(child_id)
                    await self._advance(withdrawn, Cancel(reason="withdrawn by its parent"),
                                        actor=None)  # fmt: skip
            case InstanceEnded():
                pass
        self._event(row.id, effect.kind, getattr(effect, "node", None), task_id,
                    effect.to_dict(), actor=actor)  # fmt: skip

    async def _open_task(self, loaded: _Loaded, effect: TaskOpened) -> str:
        row = loaded.row
        locale = automation.app_locale(loaded.installed)
        node = loaded.flow.node(effect.node)
        assert isinstance(node, UserTaskNode)
        context = {**effect.context, "task": {"due": format_datetime(effect.due)
                                              if effect.due else None}}  # fmt: skip
        home = zones.home_zone(self.now)
        zone, named = loaded.zone or home, (loaded.zone or home) != home
        title = _render(effect.title, context, locale, zone, named) or node.key
        task_id = new_id()
        first_role = effect.candidates.roles[0] if effect.candidates.roles else None
        self._rows[Task].append(
            dict(
                id=task_id, app=row.app, title=title[:500],
                description=_render(effect.description, context, locale, zone, named),
                role=first_role, assignee=effect.assignee, form=row.form,
                record_id=row.record_id, rule=None, source_key=f"flow:{effect.task}",
                due=format_datetime(effect.due) if effect.due else None, status="open",
                created_at=self.now, instance_id=row.id, node=effect.node,
                due_at=effect.due, claim_required=effect.claim,
                step={
                    "flow": row.flow,
                    "outcomes": [{"key": o.key, "label": o.label, "comment": o.comment}
                                 for o in node.outcomes],
                    "edit": list(effect.edit), "required": list(effect.required),
                    "hide": list(effect.hide), "item": effect.item,
                    "returnable": node.returnable,
                },
            )
        )  # fmt: skip
        self._set_candidates(task_id, row.app, effect.candidates)
        if effect.candidates.empty and effect.assignee is None:
            # the assignee field was empty or a role had no member: admins find it among
            # the unassigned tasks (GET /api/tasks?scope=unassigned) and hand it on
            self._event(row.id, "task_unassigned", effect.node, task_id, {"task": effect.task})
        return task_id

    def _set_candidates(self, task_id: str, app: str, candidates: Candidates) -> None:
        """Queue the task's candidate rows (see :meth:`_flush`)."""
        rows = self._rows[TaskCandidate]
        rows += [{"task_id": task_id, "kind": "role", "value": r, "app": app}
                 for r in dict.fromkeys(candidates.roles)]  # fmt: skip
        rows += [{"task_id": task_id, "kind": "user", "value": u, "app": app}
                 for u in dict.fromkeys(candidates.users)]  # fmt: skip
        self._unflushed = True

    async def _flush(
        self, row: FlowInstance | None = None, values: Mapping[str, Any] | None = None
    ) -> None:
        """Write what the service did: the session's objects (new instances, timers,
        changed tasks), then the queued rows — the tasks an advance opened, their candidates,
        the timeline entries — and the advanced instance's new ``values``.

        The queued rows skip the ORM's unit of work (most of the cost of an advance): on
        SQLite one INSERT per table; on PostgreSQL one statement for all of them and the
        instance's UPDATE (a data-modifying CTE, the rows passed as JSON), so an advance
        costs one round trip to write however many rows it adds."""
        if (
            row is not None
            and values is not None
            and (self.dialect != "postgresql" or not inspect(row).persistent)
        ):
            for name, value in values.items():
                setattr(row, name, value)  # the ORM writes it (a new instance: inserts it)
            row = None
        await self.session.flush()
        self._unflushed = False
        queued, self._rows = self._rows, {Task: [], TaskCandidate: [], FlowEvent: []}
        updates, self._deferred = self._deferred, {}
        if self.dialect != "postgresql":
            for model, rows in queued.items():
                if rows:  # Core inserts: the ORM's bulk path costs more than the statement
                    await self.session.execute(insert(model.__table__), rows)
            if updates:
                renamed = [{f"new_{k}": v for k, v in u.items()} for u in updates.values()]
                await self.session.execute(_SQLITE_UPDATE, renamed)
            return
        if row is not None and values is not None:
            updates[row.id] = {**values, "id": row.id}
        if not updates and not any(queued.values()):
            return
        params: dict[str, Any] = {
            _TABLE_PARAMS[model]: [_json_row(item) for item in rows]
            for model, rows in queued.items()
        }
        params["instances"] = [_json_row(item) for item in updates.values()]
        await self.session.execute(_pg_write(), params)
        if row is not None and values is not None:
            for name, value in values.items():
                set_committed_value(row, name, value)

    async def _task_by_key(self, key: str) -> Task | None:
        return (
            await self.session.scalars(select(Task).where(Task.source_key == f"flow:{key}"))
        ).first()

    async def _close_task(
        self, key: str, status: str, outcome: str | None, comment: str | None, actor: str | None
    ) -> str | None:
        task = await self._task_by_key(key)
        if task is None:
            return None
        if task.status == "open":
            task.status, task.outcome, task.comment = status, outcome, comment
            task.completed_at = self.now
            task.completed_by = actor if status == "done" else None
        return task.id

    async def _reassign(
        self, loaded: _Loaded, key: str, candidates: Candidates, assignee: str | None
    ) -> str | None:
        task = await self._task_by_key(key)
        if task is None:
            return None
        await self.session.execute(delete(TaskCandidate).where(TaskCandidate.task_id == task.id))
        self._set_candidates(task.id, task.app, candidates)
        task.assignee, task.claimed_at = assignee, None
        task.role = candidates.roles[0] if candidates.roles else None
        # several people may take it now: one claims it first, as when it opened
        node = loaded.flow.node(task.node or "")
        mode = node.mode if isinstance(node, UserTaskNode) else "any"
        task.claim_required = mode == "claim" and assignee is None
        return task.id

    async def _remind(self, loaded: _Loaded, key: str, candidates: Candidates) -> str | None:
        task = await self._task_by_key(key)
        if task is None:
            return None
        names = set(candidates.users)
        if task.assignee:
            names = {task.assignee}
        elif candidates.roles:
            found = await self.session.scalars(
                select(User.username).join(UserRole, UserRole.user_id == User.id).where(
                    UserRole.app == task.app, UserRole.role.in_(candidates.roles),
                    User.disabled_at.is_(None),
                )
            )  # fmt: skip
            names |= set(found.all())
        users = (await self.session.execute(
            select(User.id, User.username, User.locale).where(User.username.in_(sorted(names)))
        )).all()  # fmt: skip
        stamp = format_datetime(self.now)
        for user_id, _, user_locale in users:
            locale = user_locale or automation.app_locale(loaded.installed)
            self.session.add(
                Notification(
                    id=new_id(), user_id=user_id, app=task.app, rule=None,
                    subject=_OVERDUE.get(locale.split("-")[0], _OVERDUE["en"]),
                    body=task.title, form=task.form, record_id=task.record_id,
                    source_key=f"flow-remind:{task.id}:{user_id}:{stamp}"[:340],
                    created_at=self.now,
                )
            )  # fmt: skip
        return task.id

    # -- pieces ----------------------------------------------------------------------

    def _records(self, actor: str | None = None) -> RecordService:
        principal = (
            self.principal if actor is None
            else Principal(username=actor, is_admin=True, via="system")
        )  # fmt: skip
        return RecordService(self.session, self.catalog, now=self.now, principal=principal)

    async def _record(self, app: str, form: str, record_id: str) -> Record | None:
        if not is_id(record_id):
            return None
        return (
            await self.session.scalars(
                select(Record).where(
                    Record.id == record_id, Record.app == app, Record.form == form,
                    Record.deleted_at.is_(None),
                )
            )
        ).first()  # fmt: skip

    async def _record_data(self, app: str, form: str, record_id: str) -> dict[str, Any] | None:
        """A live record's data (what :meth:`_record` would give, without loading the row
        as an object: the advance only reads it)."""
        if not is_id(record_id):
            return None
        prefetched = self._prefetched.pop((app, form, record_id), None)
        if prefetched is not None:
            return prefetched
        data: dict[str, Any] | None = await self.session.scalar(
            _RECORD_DATA, {"id": record_id, "app": app, "form": form}
        )
        return data

    def _event(
        self,
        instance_id: str | None,
        kind: str,
        node: str | None,
        task_id: str | None,
        data: Mapping[str, Any],
        *,
        actor: str | None = None,
    ) -> None:
        if instance_id is None:
            return
        self._rows[FlowEvent].append(
            dict(
                id=self._event_ids.next(), instance_id=instance_id, at=self.now,
                actor=actor if actor is not None else (self.principal.username
                                                       if kind.startswith("task_") else None),
                kind=kind[:32], node=node, task_id=task_id, data=dict(data),
            )
        )  # fmt: skip


_OVERDUE = {"en": "Overdue task", "zh": "任务已逾期"}

# Statements of every advance, built once (building one and its cache key cost as much as
# running it): the instance (locked on PostgreSQL) and its record's data.
_INSTANCE = select(FlowInstance).where(FlowInstance.id == bindparam("id"))
_LOCK_INSTANCE = _INSTANCE.with_for_update()
_RECORD_DATA = select(Record.data).where(
    Record.id == bindparam("id"), Record.app == bindparam("app"),
    Record.form == bindparam("form"), Record.deleted_at.is_(None),
)  # fmt: skip

#: The queued rows' columns, and the parameter that carries them (PostgreSQL).
_QUEUED_COLUMNS: dict[Any, tuple[str, ...]] = {
    Task: (
        "id", "app", "title", "description", "role", "assignee", "form", "record_id", "rule",
        "source_key", "due", "status", "created_at", "instance_id", "node", "due_at",
        "claim_required", "step",
    ),
    TaskCandidate: ("task_id", "kind", "value", "app"),
    FlowEvent: ("id", "instance_id", "at", "actor", "kind", "node", "task_id", "data"),
}  # fmt: skip
_TABLE_PARAMS = {Task: "tasks", TaskCandidate: "candidates", FlowEvent: "events"}
_PG_WRITE: list[Executable] = []
#: A batch's advanced instances on SQLite: one UPDATE run for each (executemany).
_SQLITE_UPDATE = (
    update(FlowInstance.__table__)  # type: ignore[arg-type]
    .where(FlowInstance.__table__.c.id == bindparam("new_id"))
    .values(
        {name: bindparam(f"new_{name}")
         for name in ("state", "status", "lock_version", "updated_at", "ended_at")}
    )
)  # fmt: skip


def _pg_write() -> Executable:
    """The PostgreSQL statement of :meth:`FlowService._flush`, built once: each table's
    rows come as one JSONB array (``jsonb_to_recordset``), so the statement's text is the
    same however many rows there are and stays prepared; the advanced instances' new
    values (one or a batch's) come the same way."""
    if _PG_WRITE:
        return _PG_WRITE[0]
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def typed(table: Any, columns: Iterable[str]) -> str:
        return ", ".join(f"{name} {table.c[name].type.compile(dialect=dialect)}"
                         for name in columns)  # fmt: skip

    parts = []
    for model, columns in _QUEUED_COLUMNS.items():
        names = ", ".join(columns)
        parts.append(
            f"{_TABLE_PARAMS[model]}_in AS (INSERT INTO {model.__table__.name} ({names}) "
            f"SELECT {names} FROM jsonb_to_recordset(:{_TABLE_PARAMS[model]}) "
            f"AS queued({typed(model.__table__, columns)}))"
        )
    updated = ("id", "state", "status", "lock_version", "updated_at", "ended_at")
    main = (
        "UPDATE flow_instances SET state = new.state, status = new.status, "
        "lock_version = new.lock_version, updated_at = new.updated_at, "
        "ended_at = new.ended_at "
        f"FROM jsonb_to_recordset(:instances) AS new({typed(FlowInstance.__table__, updated)}) "
        "WHERE flow_instances.id = new.id"
    )
    binds = [bindparam(name, type_=JSONB()) for name in (*_TABLE_PARAMS.values(), "instances")]
    _PG_WRITE.append(text(f"WITH {', '.join(parts)} {main}").bindparams(*binds))
    return _PG_WRITE[0]


def _json_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A queued row as JSON (datetimes as ISO 8601 with their offset)."""
    return {
        name: value.isoformat() if isinstance(value, datetime) else value
        for name, value in row.items()
    }


#: Effects whose carrying out only adds or queues rows (reads and updates nothing), so the
#: tasks queued before them need not be written first.
_ADDS_ONLY = (TaskOpened, TimerArmed, InstanceEnded, NodeEntered, StepCompleted)


def _render(
    text: Any, context: Mapping[str, Any], locale: str, zone: str, named: bool = False
) -> str | None:
    """A task's title or description, rendered now with times on the record's clock
    (``zone``, named when it is not the deployment's); a wording error keeps the raw text."""
    if text is None:
        return None
    try:
        return render_template(text, context, locale, zone, named=named)
    except Exception:  # noqa: BLE001 - a wording error never stops the flow
        return label_text(text, locale)


_CALENDARS: dict[tuple[int, str, bool], tuple[Any, BusinessCalendar]] = {}


def _calendar(spec: Any, zone: str, *, own: bool = False) -> BusinessCalendar:
    """An app's business calendar, built once per definition and zone (it keeps a cache of
    working intervals by day). ``own``: the record is on its own clock (its branch's zone,
    not the deployment's), and works its hours there whatever zone the calendar names."""
    cached = _CALENDARS.get((id(spec), zone, own))
    if cached is not None and cached[0] is spec:
        return cached[1]
    if len(_CALENDARS) > 64:
        _CALENDARS.clear()
    local = spec.model_copy(update={"zone": zone}) if own and spec.zone != zone else spec
    calendar = BusinessCalendar(local, ZoneInfo(zone))
    _CALENDARS[(id(spec), zone, own)] = (spec, calendar)
    return calendar


def _flow(installed: InstalledApp, key: str) -> FlowSpec:
    for flow in installed.spec.flows:
        if flow.key == key:
            return flow
    raise NotFound(f"No flow '{key[:63]}' in app '{installed.key}'.")


def _engine_key(task: Task) -> str:
    return (task.source_key or "").removeprefix("flow:")


def _lists_role_members(flow: FlowSpec) -> bool:
    """Whether advancing ``flow`` may need the members of a role: the engine lists them for
    a role assignee narrowed by ``where`` (a step's or a reassign escalation's) and for a
    step in mode all or N (one task per person); any other role assignee is the role
    itself (``Candidates.roles``)."""
    for node in flow.nodes:
        if not isinstance(node, UserTaskNode):
            continue
        if node.assignee.role is not None and (
            node.assignee.where is not None or node.mode == "all" or isinstance(node.mode, int)
        ):
            return True
        for escalation in node.escalations:
            if escalation.to is not None and escalation.to.where is not None:
                return True
    return False


def _assignee_fields(loaded: _Loaded) -> list[tuple[str, str]]:
    """(target form, field) of every relation an assignee of the flow reads."""
    form = loaded.installed.spec.form(loaded.flow.form)
    found: list[tuple[str, str]] = []
    assignees: list[Assignee] = []
    for node in loaded.flow.nodes:
        if isinstance(node, UserTaskNode):
            assignees.append(node.assignee)
            assignees += [e.to for e in node.escalations if e.to is not None]
    for assignee in assignees:
        if assignee.field is None or form is None:
            continue
        field = form.field(assignee.field)
        target = getattr(field, "target", None)
        if isinstance(target, str):
            found.append((target, assignee.field))
    return found


def _member_fields(loaded: _Loaded) -> list[str]:
    """Member (user) fields an assignee of the flow reads."""
    form = loaded.installed.spec.form(loaded.flow.form)
    if form is None:
        return []
    found: list[str] = []
    for node in loaded.flow.nodes:
        if isinstance(node, UserTaskNode):
            for assignee in [node.assignee, *[e.to for e in node.escalations if e.to]]:
                if assignee.field and isinstance(form.field(assignee.field), UserField):
                    found.append(assignee.field)
    return found


def _event_kind(event: Event) -> str:
    return {
        Start: "started", TaskDone: "task_done", TaskReturned: "task_returned",
        SignerAdded: "signer_added",
        TimerFired: "timer_fired", MessageSent: "message", RecordChanged: "record_changed",
        SubflowEnded: "subflow_ended", Cancel: "cancel_requested",
    }[type(event)]  # fmt: skip


def _event_data(event: Event) -> dict[str, Any]:
    if isinstance(event, Start):
        return {"vars": dict(event.vars)}
    if isinstance(event, MessageSent):
        return {"name": event.name, "data": event.data}
    if isinstance(event, Cancel):
        return {"reason": event.reason}
    if isinstance(event, TaskDone):
        return {"outcome": event.outcome, "comment": event.comment}
    if isinstance(event, TaskReturned):
        return {"to": event.to, "comment": event.comment}
    if isinstance(event, SignerAdded):
        return {"user": event.user}
    if isinstance(event, SubflowEnded):
        return {"status": event.status}
    if isinstance(event, TimerFired):
        return {"timer": event.timer}
    return {}


def _at_values(problem: Unprocessable) -> Unprocessable:
    """A record error from a step's values, pointed into the request (``/values/<field>``)."""
    for error in problem.errors:
        path = error.get("path")
        if isinstance(path, str):
            error["path"] = "/values" + path.removeprefix("/data")
    return problem


async def on_record_write(
    records: Any, app: str, form: str, record_id: str, kind: Literal["updated", "deleted"]
) -> None:
    """The record service's watcher: the record's running instances see the write."""
    if _BUSY.get() and kind == "updated":
        return  # an advance wrote it; it tells the flows itself when it is done
    service = FlowService(
        records.session,
        records.catalog,
        now=records.now,
        principal=Principal(username="flows", is_admin=True, via="system"),
    )
    await service.record_written(app, record_id, kind)


async def start_for_rule(
    records: Any, app: str, flow: str, record_id: str, vars: dict[str, Any]
) -> None:
    """A rule's ``start_flow``: the flow starts on the record unless it already runs there
    (a rule that fires again does not start a second one)."""
    service = FlowService(
        records.session,
        records.catalog,
        now=records.now,
        principal=Principal(username=f"{records.principal.username}", is_admin=True, via="system"),
    )
    try:
        await service.start(app, flow, record_id, vars=vars, by_rule=True)
    except Conflict:
        return


watch(on_record_write)
start_flows_with(start_for_rule)
