"""The demo's flow instances: the clinic's three flows caught at every stage, so that a new
user's inbox has work in it.

Everything goes through the real services on the demo's clock, moved back: records are
written with :class:`~formloom.platform.records.service.RecordService` (the clinic's rules
start the flows), tasks are claimed and completed with
:class:`~formloom.platform.flows.service.FlowService` as the demo users, and the flows'
timers fire as the worker would fire them, each at its own due moment, in time order. So
the timelines, due times and escalations are the ones a real clinic would have seen, and no
timer is left already due.

What a new user finds (the department is the demo nurse's, the patients are of the demo
users' branch, Xuhui):

* follow-up plans: two whose day-3 call is waiting for a nurse (``demo_nurse`` or
  ``demo_head_nurse`` claims it), one still before day 3, one whose day-3 call went
  unanswered, was reminded and moved to the head nurse, and one whose call found a pain
  score of 8: a follow-up alert for ``demo_doctor``;
* complaints: one to classify (``demo_manager``), one being handled (``demo_nurse``), one
  handled and waiting for the manager's review, and one worked through to the end a week
  ago (so the dashboard's time to close has a complaint to count);
* an MDT consultation ``demo_doctor`` asked for, waiting on two departments (general:
  ``demo_doctor``; surgery: ``demo_surgeon``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from formloom.platform.auth.principal import Principal
from formloom.platform.deps import Platform
from formloom.platform.flows.service import FlowService
from formloom.platform.models import Record
from formloom.platform.models.automation import OutboxMessage, Task, Timer
from formloom.platform.records.service import RecordService

__all__ = ["load"]

APP = "clinic_crm"
#: Flows and the worker act as this principal.
FLOWS = Principal(username="flows", is_admin=True, via="system")

Step = Callable[[datetime], Awaitable[None]]


class _Clinic:
    """One unit of work in which the demo plays the clinic's last days, step by step."""

    def __init__(self, state: Platform, session: AsyncSession, people: Mapping[str, Principal]):
        self.state = state
        self.session = session
        self.people = people
        self.zone = ZoneInfo(state.settings.timezone)

    def records(self, now: datetime, who: str | None = None) -> RecordService:
        principal = self.people[who] if who else None
        return RecordService(
            self.session, self.state.catalog, now=now, actor="demo", principal=principal
        )

    def flows(self, now: datetime, who: str | None = None) -> FlowService:
        principal = self.people[who] if who else FLOWS
        return FlowService(self.session, self.state.catalog, now=now, principal=principal)

    async def create(self, now: datetime, who: str, form: str, data: dict[str, Any]) -> str:
        return (await self.records(now, who).create(APP, form, data)).id

    async def fire_due(self, until: datetime) -> None:
        """Fire the flows' timers due by ``until`` as the worker does, each at its due time
        (what one fires may arm another that is due too)."""
        while True:
            timer = (
                await self.session.scalars(
                    select(Timer)
                    .where(Timer.kind == "flow", Timer.status == "pending", Timer.due_at <= until)
                    .order_by(Timer.due_at, Timer.id)
                    .limit(1)
                )
            ).first()
            if timer is None:
                return
            due = timer.due_at if timer.due_at.tzinfo else timer.due_at.replace(tzinfo=UTC)
            await self.flows(due.astimezone(self.zone)).fire_timer(timer)
            timer.status, timer.fired_at = "fired", due
            await self.session.flush()

    async def task(self, record_id: str, node: str) -> str:
        found = await self.session.scalar(
            select(Task.id).where(
                Task.record_id == record_id, Task.node == node, Task.status == "open"
            )
        )
        assert found is not None, f"no open {node} task on {record_id}"
        return str(found)

    async def complete(
        self,
        now: datetime,
        who: str,
        record_id: str,
        node: str,
        outcome: str | None = None,
        values: dict[str, Any] | None = None,
        comment: str | None = None,
    ) -> None:
        service = self.flows(now, who)
        task_id = await self.task(record_id, node)
        task = await service.task(task_id)
        if task.claim_required and task.assignee is None:
            await service.claim(task_id)
        await service.complete(task_id, outcome, comment, values)


async def load(
    state: Platform, people: Mapping[str, Principal], team: list[tuple[str, str, str, str | None]]
) -> None:
    """Play the clinic's last days (see the module) on a freshly seeded demo."""
    now = state.clock.now()
    staff = {username: record_id for record_id, _, _, username in team if username}
    department = next(d for _, _, d, username in team if username == "demo_nurse")
    async with state.db.transaction() as session:
        clinic = _Clinic(state, session, people)
        # the demo users' branch's patients: the demo users may only work on those
        branch = people["demo_doctor"].attributes.get("branch")
        rows = await session.execute(
            select(Record.id, Record.data)
            .where(Record.app == APP, Record.form == "patient", Record.deleted_at.is_(None))
            .order_by(Record.id)
        )
        patients = [row.id for row in rows.all() if row.data.get("branch") == branch][:9]
        ids: dict[str, str] = {}

        def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
            day = now.date() - timedelta(days=days_ago)
            return datetime.combine(day, time(hour, minute), tzinfo=clinic.zone)

        async def visit(when: datetime, name: str, patient: str, complaint: str) -> None:
            """A treatment with the standard follow-up plan, recorded by the doctor."""
            ids[name] = await clinic.create(
                when,
                "demo_doctor",
                "visit",
                {
                    "patient": patient,
                    "doctor": staff["demo_doctor"],
                    "department": department,
                    "visit_date": when.date().isoformat(),
                    "visit_type": "treatment",
                    "complaint": complaint,
                    "procedures": [{"item": "Minor surgery", "quantity": 1, "unit_price": 600}],
                    "total_fee": 600,
                    "follow_up_needed": True,
                    "follow_up_plan": "standard",
                },
            )

        async def complaint(when: datetime, name: str, data: dict[str, Any]) -> None:
            phone = f"+86 139 0000 {len(ids):04d}"
            ids[name] = await clinic.create(
                when, "demo_front_desk", "complaint", {"phone": phone, **data}
            )

        async def complete(
            when: datetime, who: str, name: str, node: str, outcome: str, values: dict[str, Any]
        ) -> None:
            await clinic.complete(when, who, ids[name], node, outcome, values)

        def assign(handler: str, category: str) -> dict[str, Any]:
            """The manager's classification: the category, the department and a handler."""
            return {"category": category, "department": department, "handler": staff[handler]}

        async def consultation(when: datetime, data: dict[str, Any]) -> None:
            await clinic.create(when, "demo_doctor", "consultation", data)

        toenail, cyst = "Ingrown toenail removed", "Cyst excised from the back"
        pain = {
            "followup_pain": 8,
            "wound_problem": False,
            "followup_note": "Throbbing pain since last night, no fever.",
        }
        bill = {
            "summary": "Charged twice for one scan",
            "channel": "phone",
            "patient": patients[5],
            "description": "The bill lists the ultrasound twice.",
        }
        refund = {"resolution": "Billed twice by mistake: refunded, and the patient called back."}
        wait = {
            "summary": "Waited 90 minutes for a dressing change",
            "channel": "in_person",
            "patient": patients[6],
            "description": "Booked for 09:00, seen at 10:30.",
        }
        callback = {
            "summary": "Nobody called back about the blood test",
            "channel": "phone",
            "patient": patients[3],
            "description": "Promised a call within two days; waited a week.",
        }
        explained = {"resolution": "Results explained by phone; lab call-backs are now logged."}
        rude = {
            "summary": "Unfriendly on the phone",
            "channel": "wechat",
            "patient": patients[7],
            "description": "The receptionist hung up on me.",
        }
        mdt = {
            "topic": "Recurrent abdominal pain",
            "patient": patients[8],
            "requested_by": staff["demo_doctor"],
            "departments": [department, "surgery"],
            "question": "Three episodes in two months, ultrasound unclear: operate, or treat "
            "and watch?",
        }
        manager, doctor, nurse = "demo_manager", "demo_doctor", "demo_nurse"
        to_doctor, to_nurse = assign(doctor, "billing"), assign(nurse, "waiting")
        to_lab, desk, happy = assign(nurse, "clinical"), "demo_front_desk", {"satisfaction": 4}
        steps: list[tuple[datetime, Callable[..., Awaitable[None]], tuple[Any, ...]]] = [
            # follow-up plans: day-3 calls waiting (visits 3 days ago), one before day 3, one
            # overdue since day 3 (reminded, then moved to the head nurse: 17 days leave
            # enough working time even across the Spring Festival), one whose call found a
            # pain score of 8 (an alert for the treating doctor)
            (at(3, 10), visit, ("toenail", patients[0], toenail)),
            (at(3, 11), visit, ("cyst", patients[1], cyst)),
            (at(1, 10), visit, ("suture", patients[2], "Wound sutured")),
            (at(20, 10), visit, ("abscess", patients[3], "Abscess drained")),
            (at(4, 10), visit, ("mole", patients[4], "Mole removed")),
            (at(1, 9, 40), complete, (nurse, "mole", "call_day3", "reached", pain)),
            # complaints: closed a week ago, handled and in review, being handled, to classify
            (at(9, 9, 30), complaint, ("callback", callback)),
            (at(9, 10), complete, (manager, "callback", "classify", "assigned", to_lab)),
            (at(8, 11), complete, (nurse, "callback", "handle", "resolved", explained)),
            (at(8, 14), complete, (manager, "callback", "review", "approve", {})),
            (at(8, 16), complete, (desk, "callback", "satisfaction_call", "answered", happy)),
            (at(5, 9, 30), complaint, ("bill", bill)),
            (at(5, 11), complete, (manager, "bill", "classify", "assigned", to_doctor)),
            (at(1, 15), complete, (doctor, "bill", "handle", "resolved", refund)),
            (at(2, 9), complaint, ("wait", wait)),
            (at(2, 11), complete, (manager, "wait", "classify", "assigned", to_nurse)),
            (now - timedelta(hours=2), complaint, ("rude", rude)),
            # an MDT consultation waiting on two departments
            (at(1, 14), consultation, (mdt,)),
        ]
        # in time order, the flows' timers firing in between (nothing is later than now)
        for when, step, args in sorted(steps, key=lambda entry: entry[0]):
            await clinic.fire_due(when)
            await step(when, *args)
        await clinic.fire_due(now)
        # the text the closed complaint's patient was sent a week ago is not sent now, days
        # late, to a made-up number (as the rules' `late` windows skip such messages)
        await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.app == APP,
                OutboxMessage.idempotency_key.startswith(
                    f"{APP}:tell_patient:complaint:{ids['callback']}:"
                ),
            )
        )
