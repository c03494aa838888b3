"""The worker: fires due timers and delivers the outbox.

Run by ``formloom serve`` (an APScheduler interval job, unless ``worker_in_serve`` is off),
by ``formloom worker`` (the same job in its own process; several may run) and by
``formloom worker --once --now ...`` (everything due as of a given instant, then exit: for
catching up and for tests).

* **Timers** are claimed in batches with ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL
  (SQLite has one writer at a time anyway) and each is fired *in the claiming transaction*,
  together with everything it does, so a timer fires exactly once however many workers
  run. A batch is fired without a savepoint per timer: the flow timers' instances are
  locked and their records read in one statement each, their advances written together
  (``FlowService.begin_batch``). If a timer fails, the batch is rolled back and fired again
  with a savepoint per timer, so the others fire and the failing one is retried with
  backoff, then dead.
* **Outbox messages** are claimed the same way and leased (``lease_until``) in one short
  transaction; delivery happens outside any transaction (a slow webhook holds no lock);
  the outcome is recorded in a second one. Delivery is at-least-once: a worker that dies
  after sending but before recording leaves the lease to expire and the message is sent
  again, with the same idempotency key. Failures back off exponentially
  (``outbox_backoff_seconds`` doubling up to ``outbox_backoff_max_seconds``); after
  ``outbox_max_attempts`` — or at once for a permanent failure — the message is ``dead``:
  listed by the API and retried by hand.
* **Zones.** A date timer's rule runs in its record's zone (platform/rules/zones.py: its
  branch's, else the deployment's), and a yearly one is re-armed on that clock; a schedule
  rule's runs are on the deployment's clock, each matching record's event and texts in
  its own zone (one query per batch of records); a delayed action keeps the zone it was
  planned in.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Select, bindparam, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.engines.logic.dates import format_datetime
from formloom.engines.rules import (
    Cascade,
    DateTrigger,
    Event,
    InvalidTiming,
    PlannedAction,
    PlannedNotify,
    PlannedWebhook,
    RuleSpec,
    ScheduleTrigger,
    date_due,
    next_schedule_run,
)
from formloom.engines.rules.timing import too_late
from formloom.platform.apps.service import AppCatalog, InstalledApp
from formloom.platform.auth.principal import Principal
from formloom.platform.db import Database
from formloom.platform.errors import NotFound, Problem
from formloom.platform.flows.service import FlowService
from formloom.platform.models import Record
from formloom.platform.models.automation import OutboxMessage, RuleRunLog, Timer
from formloom.platform.records import projections
from formloom.platform.records.service import RecordService
from formloom.platform.rules import automation, related, zones
from formloom.platform.rules.delivery import Deliverer, DeliveryFailed, Message
from formloom.platform.settings import Settings

log = logging.getLogger("formloom.worker")
BATCH = 100
#: What a timer's firing may fail with (anything else is a bug and stops the worker).
_FAILURES = (Problem, InvalidTiming, ValueError, KeyError, TypeError)
_FLOWS = Principal(username="flows", is_admin=True, via="system")
# built once: building a statement and its cache key cost as much as running it
_DUE_TIMERS = (
    select(Timer)
    .where(Timer.status == "pending", Timer.due_at <= bindparam("now"))
    .order_by(Timer.due_at, Timer.id)
    .limit(BATCH)
)
_MARK_FIRED = (
    update(Timer)
    .where(Timer.id.in_(bindparam("ids", expanding=True)), Timer.status == "pending")
    .values(status="fired", fired_at=bindparam("now"))
    .execution_options(synchronize_session=False)
)


def _hours(late: timedelta) -> str:
    hours = late.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


class _BatchFailed(Exception):
    """A timer of a batch fired without savepoints failed (the batch is rolled back)."""


@dataclass
class Report:
    """What one run of the worker did."""

    timers_fired: int = 0
    timers_skipped: int = 0
    timers_failed: int = 0
    timers_dead: int = 0
    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, other: Report) -> None:
        for name in ("timers_fired", "timers_skipped", "timers_failed", "timers_dead",
                     "delivered", "retrying"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.dead += other.dead
        self.errors += other.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "timers_fired": self.timers_fired,
            "timers_skipped": self.timers_skipped,
            "timers_failed": self.timers_failed,
            "timers_dead": self.timers_dead,
            "delivered": self.delivered,
            "retrying": self.retrying,
            "dead": self.dead,
            "errors": self.errors[:20],
        }


def backoff(attempts: int, base: float, cap: float) -> timedelta:
    """Wait after the ``attempts``-th failure: base, 2·base, 4·base, … up to ``cap``."""
    return timedelta(seconds=min(cap, base * 2 ** max(0, attempts - 1)))


class Worker:
    def __init__(
        self,
        db: Database,
        catalog: AppCatalog,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.db = db
        self.catalog = catalog
        self.settings = settings
        self._http = http

    def _wait(self, attempts: int) -> timedelta:
        return backoff(
            attempts, self.settings.outbox_backoff_seconds, self.settings.outbox_backoff_max_seconds
        )

    def _claim(self, statement: Select[Any]) -> Select[Any]:
        if self.db.dialect == "postgresql":
            return statement.with_for_update(skip_locked=True)
        return statement

    async def run_once(self, now: datetime) -> Report:
        """Everything due as of ``now``: timers (which may queue messages), then messages."""
        report = Report()
        await projections.resume(self.db, now=now)  # builds a stopped process left
        report.add(await self.fire_timers(now))
        report.add(await self.deliver_outbox(now))
        return report

    # -- timers --------------------------------------------------------------------------

    async def fire_timers(self, now: datetime) -> Report:
        """Claim due timers a batch at a time and fire them. A batch is first fired without
        savepoints; if one of its timers fails, the batch is rolled back and fired again
        with a savepoint per timer, so the failing one is retried later and the others
        fire."""
        report = Report()
        careful = False
        while True:
            batch = Report()
            try:
                async with self.db.transaction() as session:
                    timers = (await session.scalars(self._claim(_DUE_TIMERS), {"now": now})).all()
                    if not timers:
                        return report
                    catalog = self.catalog.pinned()
                    if careful:
                        for timer in timers:
                            await self._fire_one(session, catalog, timer, now, batch)
                    else:
                        await self._fire_batch(session, catalog, timers, now, batch)
            except _BatchFailed:
                careful = True
                continue
            report.add(batch)
            careful = False

    async def _fire_batch(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        timers: Sequence[Timer],
        now: datetime,
        report: Report,
    ) -> None:
        """Fire ``timers`` in one transaction, without a savepoint each: the flow timers'
        instances are locked and their records read for the whole batch, what their
        advances write goes to the database in as few statements as the order of the
        writes allows, and the fired flow timers are marked in one statement. The first
        failure raises :class:`_BatchFailed`."""
        flows = FlowService(session, catalog, now=self._local(now), principal=_FLOWS)
        await flows.begin_batch(timer for timer in timers if timer.kind == "flow")
        fired: list[str] = []
        for timer in timers:
            try:
                if timer.kind == "flow" and await self._installed(session, catalog, timer):
                    await flows.fire_timer(timer)
                    fired.append(timer.id)
                else:
                    await flows.settle()  # a rule's timer may read flows, write records
                    if await self._fire(session, catalog, timer, now) == "skipped":
                        report.timers_skipped += 1
                        continue
            except _FAILURES as error:
                raise _BatchFailed from error
            report.timers_fired += 1
        try:
            await flows.settle()
        except _FAILURES as error:
            raise _BatchFailed from error
        if fired:
            await session.execute(_MARK_FIRED, {"ids": fired, "now": now})

    async def _installed(self, session: AsyncSession, catalog: AppCatalog, timer: Timer) -> bool:
        try:
            await catalog.get(session, timer.app)
        except NotFound:
            return False
        return True

    async def _fire_one(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        timer: Timer,
        now: datetime,
        report: Report,
    ) -> None:
        timer_id, key = timer.id, timer.key
        try:
            async with session.begin_nested():
                outcome = await self._fire(session, catalog, timer, now)
            if outcome == "skipped":
                report.timers_skipped += 1
            else:
                report.timers_fired += 1
        except _FAILURES as error:
            message = getattr(error, "detail", None) or str(error)
            timer = await session.get(Timer, timer_id, populate_existing=True)  # type: ignore[assignment]
            timer.attempts += 1
            timer.last_error = message[:2000]
            if timer.attempts >= self.settings.timer_max_attempts:
                timer.status = "dead"
                report.timers_dead += 1
            else:
                timer.due_at = now + self._wait(timer.attempts)
                report.timers_failed += 1
            report.errors.append(f"timer {key}: {message}")
            log.warning("timer %s failed (attempt %s): %s", key, timer.attempts, message)

    def _records(
        self, session: AsyncSession, catalog: AppCatalog, now: datetime, rule: str, chain: Any
    ) -> RecordService:
        cascade = Cascade(
            self.settings.rule_cascade_depth,
            tuple((link[0], link[1], link[2]) for link in chain or ()),
        )
        return RecordService(
            session,
            catalog,
            now=now,
            principal=Principal(username=f"rule:{rule}", is_admin=True, via="system"),
            max_page_size=self.settings.max_page_size,
            cascade=cascade,
        )

    def _local(self, now: datetime) -> datetime:
        return now.astimezone(ZoneInfo(self.settings.timezone))

    async def _fire(
        self, session: AsyncSession, catalog: AppCatalog, timer: Timer, now: datetime
    ) -> Literal["fired", "skipped"]:
        """Fire one timer; ``"skipped"``: its rule's ``late`` policy said it came too late."""
        try:
            installed = await catalog.get(session, timer.app)
        except NotFound:
            timer.status, timer.last_error = "cancelled", "the app is no longer installed"
            return "fired"
        if timer.kind == "flow":
            flows = FlowService(session, catalog, now=self._local(now), principal=_FLOWS)
            await flows.fire_timer(timer)
            timer.status, timer.fired_at = "fired", now
            return "fired"
        rule = installed.rules.rule(timer.rule)
        if rule is None:
            timer.status, timer.last_error = "cancelled", "the rule was removed"
            return "fired"
        local = self._local(now)
        if timer.kind == "action":
            records = self._records(session, catalog, local, rule.key, timer.payload.get("cascade"))
            action = automation.timer_action(timer.payload)
            await automation.run_action(
                records, installed, action, form=timer.form or "", record_id=timer.record_id,
                delayed=False, zone=timer.payload.get("zone"),
            )  # fmt: skip
            timer.status, timer.fired_at = "fired", now
        elif timer.kind == "date":
            return await self._fire_date(session, catalog, installed, rule, timer, local)
        elif timer.kind == "schedule":
            return await self._fire_schedule(session, catalog, installed, rule, timer, local)
        else:
            raise ValueError(f"unknown timer kind {timer.kind!r}")
        return "fired"

    def _too_late(self, rule: RuleSpec, timer: Timer, now: datetime) -> bool:
        """Whether the rule's ``late`` policy skips this firing (lateness counts from the
        moment, or from when the timer was armed if that was later: a record entered late
        is not late). A skip is logged and noted on the timer."""
        policy = getattr(rule.on, "late", "run")
        armed = timer.created_at if timer.kind == "date" else None
        if not too_late(policy, timer.due_at, now, armed):
            return False
        late = now - max(timer.due_at, armed) if armed is not None else now - timer.due_at
        note = f"skipped: {_hours(late)} late (the rule's late policy is {policy!r})"
        timer.last_error = note
        log.info("timer %s %s", timer.key, note)
        return True

    async def _event(
        self,
        session: AsyncSession,
        installed: InstalledApp,
        rule: RuleSpec,
        kind: str,
        record_id: str,
        data: Mapping[str, Any],
        now: datetime,
        occurrence: datetime,
        zone: str,
    ) -> Event:
        """The event of a timer-fired rule in the record's ``zone``, with the related
        records it reads loaded as a write's rules get them (platform/rules/related.py;
        nothing when it reads none)."""
        hops = related.hops_for(installed.rules, installed.spec, (rule,), (kind, rule.key))
        loaded = (
            await related.load_related(session, installed.key, installed.spec, hops, data)
            if hops
            else {}
        )
        return Event(
            app=installed.key,
            form=rule.on.form,
            kind=kind,  # type: ignore[arg-type]
            record=data,
            now=now,
            record_id=record_id,
            user={"username": f"rule:{rule.key}", "roles": [], "is_admin": True},
            zone=zone,
            occurrence=format_datetime(occurrence),
            cascade=Cascade(self.settings.rule_cascade_depth),
            related=loaded,
        )

    async def _apply(
        self,
        records: RecordService,
        installed: InstalledApp,
        plan: automation.MeasuredPlan,
        record_id: str,
        data: Mapping[str, Any],
    ) -> None:
        """A timer-fired plan: its sets update the record, the rest as on a write."""
        form = plan.event.form
        extra = automation.set_values(plan, data)
        if extra:
            acting = records.for_rule(plan.runs[0].rule, form, record_id)
            await acting.update(installed.key, form, record_id, extra, if_match=None)
        await automation.carry_out(records, installed, plan, form=form, record_id=record_id)

    async def _fire_date(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        installed: InstalledApp,
        rule: RuleSpec,
        timer: Timer,
        now: datetime,
    ) -> Literal["fired", "skipped"]:
        assert isinstance(rule.on, DateTrigger)
        record = (
            await session.execute(
                select(Record.id, Record.data).where(
                    Record.id == timer.record_id, Record.deleted_at.is_(None)
                )
            )
        ).first()
        timer.fired_at = now
        if record is None:
            timer.status = "fired"
            return "fired"
        outcome: Literal["fired", "skipped"] = "fired"
        zone = await zones.record_zone(
            session, installed, rule.on.form, record.data, self.settings.timezone
        )
        if self._too_late(rule, timer, now):
            outcome = "skipped"
        else:
            records = self._records(session, catalog, now, rule.key, None)
            event = await self._event(
                session, installed, rule, "date", record.id, record.data, now, timer.due_at,
                zone,
            )  # fmt: skip
            plan = automation.measured_plan(event, (rule,))
            await self._apply(records, installed, plan, record.id, record.data)
        following = None
        if rule.on.every_year:
            following = date_due(rule, record.data, now=max(now, timer.due_at), zone=ZoneInfo(zone))
        if following is not None and following > timer.due_at:
            timer.due_at, timer.status, timer.attempts = following, "pending", 0
            timer.created_at = now  # armed again: next year's lateness counts from its moment
        else:
            timer.status = outcome
        return outcome

    async def _fire_schedule(
        self,
        session: AsyncSession,
        catalog: AppCatalog,
        installed: InstalledApp,
        rule: RuleSpec,
        timer: Timer,
        now: datetime,
    ) -> Literal["fired", "skipped"]:
        """One SQL query selects the records; outbox rows and log rows are inserted in bulk
        (sync actions run record by record)."""
        assert isinstance(rule.on, ScheduleTrigger)
        if self._too_late(rule, timer, now):
            self._schedule_next(rule, timer, now)
            return "skipped"
        records = self._records(session, catalog, now, rule.key, None)
        statement = await records.matching_statement(installed.key, rule.on.form, rule.on.filter)
        started = time.perf_counter()
        rows = (await session.execute(statement)).all()
        outbox: list[dict[str, Any]] = []
        runs: list[dict[str, Any]] = []
        home = self.settings.timezone
        record_zones = await zones.record_zones(
            session, installed, rule.on.form, [data for _, data in rows], home
        )
        for (record_id, data), zone in zip(rows, record_zones, strict=True):
            event = await self._event(
                session, installed, rule, "schedule", record_id, data, now, timer.due_at, zone
            )
            plan = automation.measured_plan(event, (rule,))
            logged = automation.run_log_values(plan, form=rule.on.form, record_id=record_id, at=now)
            if logged is not None:
                runs.append(logged)
            messages: list[PlannedNotify | PlannedWebhook] = []  # inserted in bulk below
            others: list[PlannedAction] = []
            for action in plan.actions:
                if isinstance(action, PlannedNotify | PlannedWebhook) and action.due is None:
                    messages.append(action)
                else:
                    others.append(action)
            outbox += [
                automation.outbox_values(installed.key, action, now, rule.on.form, record_id, zone)
                for action in messages
            ]
            extra = automation.set_values(plan, data)
            if extra:
                acting = records.for_rule(rule.key, rule.on.form, record_id)
                await acting.update(installed.key, rule.on.form, record_id, extra, if_match=None)
            for action in others:
                await automation.run_action(
                    records, installed, action, form=rule.on.form, record_id=record_id, zone=zone
                )
        await self._insert_ignoring_duplicates(session, OutboxMessage, outbox)
        for start in range(0, len(runs), 5_000):
            await session.execute(insert(RuleRunLog), runs[start : start + 5_000])
        log.info(
            "schedule %s/%s: %d record(s), %d message(s) in %.2f s",
            installed.key,
            rule.key,
            len(rows),
            len(outbox),
            time.perf_counter() - started,
        )
        timer.last_error = None
        self._schedule_next(rule, timer, now)
        return "fired"

    def _schedule_next(self, rule: RuleSpec, timer: Timer, now: datetime) -> None:
        """A schedule's timer moves to its next run after ``now`` (runs missed while the
        worker was down are not made up one by one)."""
        following = next_schedule_run(
            rule, max(now, timer.due_at), ZoneInfo(self.settings.timezone)
        )
        timer.fired_at = now
        if following is None:
            timer.status = "fired"
        else:
            timer.due_at, timer.attempts = following, 0

    async def _insert_ignoring_duplicates(
        self, session: AsyncSession, model: Any, rows: list[dict[str, Any]]
    ) -> None:
        """Bulk insert; a row whose idempotency key exists already is left out (a schedule
        run repeated after a crash does not send twice)."""
        if not rows:
            return
        make = pg_insert if self.db.dialect == "postgresql" else sqlite_insert
        for start in range(0, len(rows), 5_000):
            statement = make(model.__table__).on_conflict_do_nothing(
                index_elements=["idempotency_key"]
            )
            await session.execute(statement, rows[start : start + 5_000])

    # -- outbox --------------------------------------------------------------------------

    async def deliver_outbox(self, now: datetime) -> Report:
        report = Report()
        own_client = self._http is None
        http = self._http or httpx.AsyncClient(follow_redirects=False)
        try:
            deliverer = Deliverer(self.settings, http)
            while True:
                claimed = await self._claim_messages(now)
                if not claimed:
                    return report
                for message in claimed:
                    await self._deliver_one(deliverer, message, now, report)
        finally:
            if own_client:
                await http.aclose()

    async def _claim_messages(self, now: datetime) -> list[Message]:
        lease = now + timedelta(seconds=self.settings.outbox_lease_seconds)
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        self._claim(
                            select(OutboxMessage)
                            .where(
                                OutboxMessage.status == "pending",
                                OutboxMessage.next_attempt_at <= now,
                                or_(
                                    OutboxMessage.lease_until.is_(None),
                                    OutboxMessage.lease_until <= now,
                                ),
                            )
                            .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
                            .limit(BATCH)
                        )
                    )
                )
                .scalars()
                .all()
            )
            claimed = []
            locales: dict[str, str] = {}  # one catalog look-up per app, not per message
            for row in rows:
                row.lease_until = lease
                row.attempts += 1
                if row.app not in locales:
                    try:
                        installed = await self.catalog.get(session, row.app)
                        locales[row.app] = automation.app_locale(installed)
                    except NotFound:
                        locales[row.app] = "en"
                locale = locales[row.app]
                claimed.append(
                    Message(
                        id=row.id,
                        app=row.app,
                        rule=row.rule,
                        kind=row.kind,
                        channel=row.channel,
                        key=row.idempotency_key,
                        payload=row.payload,
                        attempts=row.attempts,
                        locale=locale,
                    )
                )
            return claimed

    async def _deliver_one(
        self, deliverer: Deliverer, message: Message, now: datetime, report: Report
    ) -> None:
        notes: list[Any] = []
        failure: DeliveryFailed | None = None
        try:
            outcome, notes = await deliverer.deliver(self.db, message, now)
        except DeliveryFailed as error:
            failure = error
        async with self.db.transaction() as session:
            row = await session.get(OutboxMessage, message.id)
            if row is None:  # pragma: no cover - rows are never deleted
                return
            row.lease_until = None
            if failure is None:
                session.add_all(notes)
                row.status, row.delivered_at, row.last_error = "done", now, None
                report.delivered += 1
                log.info("delivered %s: %s", message.key, outcome)
                return
            row.last_error = str(failure)[:2000]
            report.errors.append(f"{message.key}: {failure}")
            if failure.permanent or row.attempts >= self.settings.outbox_max_attempts:
                row.status = "dead"
                report.dead += 1
                log.warning("dead letter %s: %s", message.key, failure)
            else:
                row.next_attempt_at = now + self._wait(row.attempts)
                report.retrying += 1
                log.info("retrying %s at %s: %s", message.key, row.next_attempt_at, failure)
